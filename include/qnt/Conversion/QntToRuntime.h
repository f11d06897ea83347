//===- QntToRuntime.h - qnt to runtime calls ------------------*- C++ -*-===//

#ifndef QNT_CONVERSION_QNTTORUNTIME_H
#define QNT_CONVERSION_QNTTORUNTIME_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Transforms/DialectConversion.h"

#include <optional>

namespace qnt {

#define GEN_PASS_DECL_QNTLOWERTORUNTIMEPASS
#include "qnt/Conversion/Passes.h.inc"

/// Maps tensors of quantized element types to tensors of their storage type.
class QuantStorageTypeConverter : public mlir::TypeConverter {
public:
  QuantStorageTypeConverter();
};

/// Creates what runtime calls need: a private handle global per call site,
/// constant parameter arrays, raw pointers to tensor data (through
/// `bufferization.to_buffer`) and the callee declarations. Symbols are
/// numbered by this builder, so use one per module.
class RuntimeCallBuilder {
public:
  explicit RuntimeCallBuilder(mlir::ModuleOp module) : module(module) {}

  /// A raw pointer to the data of `tensor` (already of storage type).
  mlir::Value getPointer(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value tensor);
  /// A fresh output buffer of `type` and a pointer to it.
  std::pair<mlir::Value, mlir::Value>
  allocate(mlir::OpBuilder &b, mlir::Location loc, mlir::RankedTensorType type);
  /// An output buffer as a tensor again.
  mlir::Value toTensor(mlir::OpBuilder &b, mlir::Location loc,
                       mlir::RankedTensorType type, mlir::Value buffer);
  /// A zero-initialized handle slot for one call site.
  mlir::Value getHandleSlot(mlir::OpBuilder &b, mlir::Location loc);
  mlir::Value getI64Array(mlir::OpBuilder &b, mlir::Location loc,
                          llvm::ArrayRef<int64_t> values);
  mlir::Value getF32Array(mlir::OpBuilder &b, mlir::Location loc,
                          llvm::ArrayRef<float> values);
  /// A NUL-terminated string constant.
  mlir::Value getString(mlir::OpBuilder &b, mlir::Location loc,
                        llvm::StringRef text);
  /// Calls `name(args...)`, declaring it (all pointer arguments) if needed.
  void call(mlir::OpBuilder &b, mlir::Location loc, llvm::StringRef name,
            mlir::ValueRange args);

private:
  mlir::Value getBufferPointer(mlir::OpBuilder &b, mlir::Location loc,
                               mlir::Value buffer);
  mlir::Value getGlobalPointer(mlir::OpBuilder &b, mlir::Location loc,
                               llvm::StringRef prefix, mlir::MemRefType type,
                               mlir::Attribute init, bool constant);

  mlir::ModuleOp module;
  int64_t counter = 0;
};

/// The kernel library the lowering asks the runtime for.
///   onednn:  every kernel on oneDNN (or the runtime's exact reference code).
///   xnnpack: quantized conv2d, linear, add and max pooling on XNNPACK
///            (qc8), everything else as for onednn.
///   auto:    per call site, whichever of the two is faster for its op and
///            shape on x86 (docs/runtime.md, "Choosing a backend").
enum class RuntimeBackend { onednn, xnnpack, automatic };

/// Parses a `backend=` option value; nothing if it is not one of
/// onednn, xnnpack, auto.
std::optional<RuntimeBackend> parseRuntimeBackend(llvm::StringRef name);

/// Patterns that turn qnt compute ops, observers, fake-quant and quant casts
/// into runtime calls, erase region markers and storage casts, and convert
/// function signatures with quantized types.
void populateQntToRuntimePatterns(
    mlir::TypeConverter &converter, RuntimeCallBuilder &calls,
    mlir::RewritePatternSet &patterns,
    RuntimeBackend backend = RuntimeBackend::onednn);

} // namespace qnt

#endif // QNT_CONVERSION_QNTTORUNTIME_H
