//===- Passes.h - qnt transformation passes -------------------*- C++ -*-===//

#ifndef QNT_TRANSFORMS_PASSES_H
#define QNT_TRANSFORMS_PASSES_H

#include "qnt/Dialect/Qnt/QntOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/Pass/Pass.h"

namespace qnt {

#define GEN_PASS_DECL
#include "qnt/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qnt/Transforms/Passes.h.inc"

} // namespace qnt

#endif // QNT_TRANSFORMS_PASSES_H
