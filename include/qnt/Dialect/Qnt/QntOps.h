//===- QntOps.h - qnt dialect ---------------------------------*- C++ -*-===//

#ifndef QNT_DIALECT_QNT_QNTOPS_H
#define QNT_DIALECT_QNT_QNTOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Quant/IR/QuantTypes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "qnt/Dialect/Qnt/QntOpsDialect.h.inc"
#include "qnt/Dialect/Qnt/QntOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "qnt/Dialect/Qnt/QntOpsAttributes.h.inc"

#include "qnt/Dialect/Qnt/QntInterfaces.h.inc"

#define GET_OP_CLASSES
#include "qnt/Dialect/Qnt/QntOps.h.inc"

namespace qnt {

/// The float interval a fused activation clamps to ([-inf, inf] for none).
std::pair<float, float> getActivationBounds(Activation activation,
                                            std::optional<float> clampMin,
                                            std::optional<float> clampMax);

/// True if `type` is a tensor of an upstream quantized type.
bool isQuantizedTensor(mlir::Type type);

/// Fails with an error at `op` if one of its operand or result types is
/// quantized with a zero point outside its storage range (upstream's
/// !quant.uniform<u8:f32, 0.1:300> parses; no kernel can compute with it).
llvm::LogicalResult verifyZeroPointsInStorageRange(mlir::Operation *op);

/// Whose integer arithmetic `op`'s lowering reproduces: the `qnt.numerics`
/// attribute of its enclosing module, `Numerics::qnt` when absent.
Numerics getNumerics(mlir::Operation *op);

} // namespace qnt

#endif // QNT_DIALECT_QNT_QNTOPS_H
