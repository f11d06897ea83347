//===- EarlyDealloc.h - free buffers after their last use ------*- C++ -*-===//

#ifndef QNT_CONVERSION_EARLYDEALLOC_H
#define QNT_CONVERSION_EARLYDEALLOC_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Pass/Pass.h"

namespace qnt {

#define GEN_PASS_DECL_QNTEARLYDEALLOCPASS
#include "qnt/Conversion/Passes.h.inc"

} // namespace qnt

#endif // QNT_CONVERSION_EARLYDEALLOC_H
