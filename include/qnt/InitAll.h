//===- InitAll.h - register every qnt dialect and pass --------*- C++ -*-===//
//
// The one place that registers qnt with a tool or an embedding compiler.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_INITALL_H
#define QNT_INITALL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace qnt {

/// Adds the qnt dialect and every dialect its pipelines produce or consume
/// (tosa, quant, func, arith, tensor, linalg, bufferization, memref, llvm...)
/// together with their bufferization / to-llvm interface models.
void registerAllDialects(mlir::DialectRegistry &registry);

/// Registers every qnt pass and named pipeline (qnt-ptq-pipeline,
/// qnt-lower-pipeline, qnt-lower-to-llvm).
void registerAllPasses();

} // namespace qnt

#endif // QNT_INITALL_H
