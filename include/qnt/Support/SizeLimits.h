//===- SizeLimits.h - Bounds on tensor sizes the tools accept ---*- C++ -*-===//
//
// Element counts and byte sizes of tensor types, checked for int64 overflow
// and against one limit, so that a huge shape is a located error before any
// pass or tool materializes its data (a splat constant expands to all of its
// elements when folded, lowered to LLVM IR or allocated at run time).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_SUPPORT_SIZELIMITS_H
#define QNT_SUPPORT_SIZELIMITS_H

#include "mlir/Dialect/Quant/IR/QuantTypes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"

#include "llvm/Support/CheckedArithmetic.h"

#include <optional>

namespace qnt {

/// The largest tensor (constant, argument or result) the tools accept: 2 GiB.
inline constexpr int64_t kMaxTensorBytes = int64_t(1) << 31;

/// The product of `shape`, or nothing if it overflows int64 (or a dimension
/// is negative, i.e. dynamic).
inline std::optional<int64_t>
getCheckedNumElements(llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    std::optional<int64_t> product = llvm::checkedMul(n, d);
    if (!product)
      return std::nullopt;
    n = *product;
  }
  return n;
}

/// Bytes of one element of `type` as stored (quantized types: their
/// storage type; i1 as a byte).
inline int64_t getElementStorageBytes(mlir::Type type) {
  if (auto qtype = llvm::dyn_cast<mlir::quant::QuantizedType>(type))
    type = qtype.getStorageType();
  if (type.isIntOrFloat())
    return std::max<int64_t>(1, (type.getIntOrFloatBitWidth() + 7) / 8);
  return 8; // index and anything else: at most a word
}

/// Fails with an error from `emitError` (naming `what`, the size and the
/// limit) if `type`'s element count overflows int64 or its data exceeds
/// kMaxTensorBytes.
inline mlir::LogicalResult
checkTensorSize(llvm::function_ref<mlir::InFlightDiagnostic()> emitError,
                mlir::ShapedType type, const llvm::Twine &what) {
  if (!type.hasRank() || !type.hasStaticShape())
    return mlir::success();
  std::optional<int64_t> elements = getCheckedNumElements(type.getShape());
  if (!elements)
    return emitError() << what << " " << type
                       << ": its element count overflows int64";
  std::optional<int64_t> bytes = llvm::checkedMul(
      *elements, getElementStorageBytes(type.getElementType()));
  if (!bytes || *bytes > kMaxTensorBytes)
    return emitError() << what << " " << type << " has " << *elements
                       << " elements ("
                       << (bytes ? std::to_string(*bytes) : "> 2^63")
                       << " bytes), more than the limit of " << kMaxTensorBytes
                       << " bytes";
  return mlir::success();
}

/// Checks every dense constant attribute (arith.constant, tosa.const, ...)
/// under `root` with checkTensorSize, reporting at the op that holds it.
inline mlir::LogicalResult verifyConstantSizes(mlir::Operation *root) {
  mlir::WalkResult result = root->walk([](mlir::Operation *op) {
    for (mlir::NamedAttribute attr : op->getAttrs()) {
      auto elements = llvm::dyn_cast<mlir::ElementsAttr>(attr.getValue());
      if (!elements)
        continue;
      if (mlir::failed(checkTensorSize([&] { return op->emitError(); },
                                       elements.getShapedType(),
                                       "constant of type")))
        return mlir::WalkResult::interrupt();
    }
    return mlir::WalkResult::advance();
  });
  return mlir::failure(result.wasInterrupted());
}

} // namespace qnt

#endif // QNT_SUPPORT_SIZELIMITS_H
