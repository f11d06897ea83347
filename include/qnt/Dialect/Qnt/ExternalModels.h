//===- ExternalModels.h - qnt interfaces on upstream ops --------*- C++ -*-===//

#ifndef QNT_DIALECT_QNT_EXTERNALMODELS_H
#define QNT_DIALECT_QNT_EXTERNALMODELS_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace qnt {

/// Attaches SameScaleOpInterface to the TOSA ops that only move values
/// (max_pool2d, reshape, transpose, slice) and ScalarFunctionOpInterface to
/// the elementwise float ones (add, mul, clamp, sigmoid, ...).
void registerTosaExternalModels(mlir::DialectRegistry &registry);

} // namespace qnt

#endif // QNT_DIALECT_QNT_EXTERNALMODELS_H
