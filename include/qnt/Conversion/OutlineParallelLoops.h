//===- OutlineParallelLoops.h - scf.forall to runtime threads -*- C++ -*-===//

#ifndef QNT_CONVERSION_OUTLINEPARALLELLOOPS_H
#define QNT_CONVERSION_OUTLINEPARALLELLOOPS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Pass/Pass.h"

namespace qnt {

#define GEN_PASS_DECL_QNTOUTLINEPARALLELLOOPSPASS
#include "qnt/Conversion/Passes.h.inc"

} // namespace qnt

#endif // QNT_CONVERSION_OUTLINEPARALLELLOOPS_H
