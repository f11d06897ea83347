//===- QntToLinalg.h - integer codegen for qnt ops ------------*- C++ -*-===//

#ifndef QNT_CONVERSION_QNTTOLINALG_H
#define QNT_CONVERSION_QNTTOLINALG_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace qnt {

#define GEN_PASS_DECL_QNTLOWERTOLINALGPASS
#include "qnt/Conversion/Passes.h.inc"

/// Patterns lowering qnt.table, qnt.mul and qnt.avg_pool2d to linalg.generic
/// on storage integers (quant.scast at the boundaries).
void populateQntToLinalgPatterns(mlir::RewritePatternSet &patterns);

} // namespace qnt

#endif // QNT_CONVERSION_QNTTOLINALG_H
