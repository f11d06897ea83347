//===- Utils.h - helpers shared by the qnt passes -------------*- C++ -*-===//

#ifndef QNT_TRANSFORMS_UTILS_H
#define QNT_TRANSFORMS_UTILS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Value.h"

#include <optional>
#include <vector>

namespace qnt {

/// The elements of a float constant (arith.constant, tosa.const, ...), or
/// nothing when `value` is not produced by a dense f32 constant.
std::optional<std::vector<float>> getConstantFloats(mlir::Value value);

/// An `arith.constant` holding `data` with the given f32 tensor shape.
mlir::Value createF32Constant(mlir::OpBuilder &builder, mlir::Location loc,
                              llvm::ArrayRef<int64_t> shape,
                              llvm::ArrayRef<float> data);

/// Number of elements of a statically shaped type.
int64_t getNumElements(mlir::Type type);

} // namespace qnt

#endif // QNT_TRANSFORMS_UTILS_H
