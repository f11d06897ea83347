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

namespace qnt {

#define GEN_PASS_DECL_QNTLOWERTORUNTIMEPASS
#include "qnt/Conversion/Passes.h.inc"

/// Maps tensors of quantized element types to tensors of their storage type.
class QuantStorageTypeConverter : public mlir::TypeConverter {
public:
  QuantStorageTypeConverter();
};

/// Patterns that turn qnt compute ops, observers, fake-quant and quant casts
/// into runtime calls (and erase region markers).
void populateQntToRuntimePatterns(mlir::TypeConverter &converter,
                                  mlir::RewritePatternSet &patterns);

} // namespace qnt

#endif // QNT_CONVERSION_QNTTORUNTIME_H
