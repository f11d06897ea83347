//===- ApproximateMath.h - --qnt-approximate-math ---------------*- C++ -*-===//
//
// Polynomial approximations of the math functions LLVM has no intrinsic
// for.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_CONVERSION_APPROXIMATEMATH_H
#define QNT_CONVERSION_APPROXIMATEMATH_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace qnt {

#define GEN_PASS_DECL_QNTAPPROXIMATEMATHPASS
#include "qnt/Conversion/Passes.h.inc"

} // namespace qnt

#endif // QNT_CONVERSION_APPROXIMATEMATH_H
