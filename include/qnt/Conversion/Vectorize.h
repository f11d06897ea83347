//===- Vectorize.h - vector codegen for generated loops -------*- C++ -*-===//

#ifndef QNT_CONVERSION_VECTORIZE_H
#define QNT_CONVERSION_VECTORIZE_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace qnt {

#define GEN_PASS_DECL_QNTVECTORIZEPASS
#include "qnt/Conversion/Passes.h.inc"

} // namespace qnt

#endif // QNT_CONVERSION_VECTORIZE_H
