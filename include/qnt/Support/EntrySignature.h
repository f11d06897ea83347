//===- EntrySignature.h - Tensor signature of an entry function -*- C++ -*-===//
//
// The arguments and results of the function a tool runs or compiles
// (quant-run, quant-compile), with their user-facing names.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_SUPPORT_ENTRYSIGNATURE_H
#define QNT_SUPPORT_ENTRYSIGNATURE_H

#include "qnt/Support/SizeLimits.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qnt {

/// One tensor argument or result of an entry function.
struct TensorSignature {
  std::string name;
  llvm::SmallVector<int64_t> shape;
  mlir::Type elementType; ///< As declared (quantized types keep theirs).
  /// The values an integer argument may hold, [first, second): the
  /// argument attribute `qnt.valid_range` (token ids of an embedding, set
  /// by the frontend). The tools check inputs against it before a run.
  std::optional<std::pair<int64_t, int64_t>> validRange;

  /// Checked by readEntrySignature not to overflow (or exceed
  /// kMaxTensorBytes).
  int64_t getNumElements() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

struct EntrySignature {
  std::vector<TensorSignature> arguments, results;
};

/// Reads the signature of `func`: every argument and result must be a
/// statically shaped ranked tensor of at most kMaxTensorBytes (else an error
/// at `func` and failure).
/// Names come from `qnt.name` attributes, else `arg<i>` for arguments and
/// `output` (one result) or `output<i>` for results.
inline mlir::FailureOr<EntrySignature>
readEntrySignature(mlir::func::FuncOp func) {
  EntrySignature sig;
  auto read = [&](mlir::Type type, std::string name,
                  std::vector<TensorSignature> &into) -> mlir::LogicalResult {
    auto tensor = llvm::dyn_cast<mlir::RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape())
      return func.emitError("'")
             << func.getSymName() << "': " << name
             << " must be a statically shaped tensor, got " << type;
    if (mlir::failed(qnt::checkTensorSize(
            [&] { return func.emitError(); }, tensor,
            "'" + func.getSymName() + "': " + name + " of type")))
      return mlir::failure();
    into.push_back({std::move(name),
                    llvm::SmallVector<int64_t>(tensor.getShape()),
                    tensor.getElementType()});
    return mlir::success();
  };
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    std::string name = "arg" + std::to_string(i);
    if (auto attr = func.getArgAttrOfType<mlir::StringAttr>(i, "qnt.name"))
      name = attr.str();
    if (mlir::failed(read(func.getArgumentTypes()[i], name, sig.arguments)))
      return mlir::failure();
    mlir::Attribute range = func.getArgAttr(i, "qnt.valid_range");
    if (!range)
      continue;
    auto bounds = llvm::dyn_cast<mlir::DenseI64ArrayAttr>(range);
    mlir::Type element = sig.arguments.back().elementType;
    if (!bounds || bounds.size() != 2 || bounds[0] >= bounds[1] ||
        !element.isSignlessInteger() || element.isInteger(1))
      return func.emitError("'")
             << func.getSymName() << "': " << name
             << ": qnt.valid_range must be array<i64: lo, hi> with lo < hi on "
                "an integer argument, got "
             << range << " on " << element;
    sig.arguments.back().validRange = {bounds[0], bounds[1]};
  }
  unsigned numResults = func.getNumResults();
  for (unsigned i = 0; i < numResults; ++i) {
    std::string name =
        numResults == 1 ? "output" : "output" + std::to_string(i);
    if (auto attr = func.getResultAttrOfType<mlir::StringAttr>(i, "qnt.name"))
      name = attr.str();
    if (mlir::failed(read(func.getResultTypes()[i], name, sig.results)))
      return mlir::failure();
  }
  return sig;
}

} // namespace qnt

#endif // QNT_SUPPORT_ENTRYSIGNATURE_H
