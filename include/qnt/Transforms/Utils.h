//===- Utils.h - helpers shared by the qnt passes -------------*- C++ -*-===//

#ifndef QNT_TRANSFORMS_UTILS_H
#define QNT_TRANSFORMS_UTILS_H

#include "qnt/Calibration/QParams.h"
#include "qnt/Calibration/Stats.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/Value.h"

#include <optional>
#include <vector>

namespace qnt {

/// Whether `op` is part of a float composite (the `qnt.float_composite`
/// attribute: a decomposed layer norm or softmax), which quantization
/// treats as one float op.
bool isInFloatComposite(mlir::Operation *op);

/// The elements of a float constant (arith.constant, tosa.const, ...), or
/// nothing when `value` is not produced by a dense f32 constant.
std::optional<std::vector<float>> getConstantFloats(mlir::Value value);

/// An `arith.constant` holding `data` with the given f32 tensor shape.
mlir::Value createF32Constant(mlir::OpBuilder &builder, mlir::Location loc,
                              llvm::ArrayRef<int64_t> shape,
                              llvm::ArrayRef<float> data);

/// The user-facing name a location carries (`loc("layer1.0.conv1")`, also
/// inside fused locations), if any.
std::optional<std::string> getLocationName(mlir::Location loc);

/// Number of elements of a statically shaped type.
int64_t getNumElements(mlir::Type type);

/// applyPatternsGreedily without folding: folding would also turn
/// quant.dcast(quant.qcast(x)) into x, dropping a quantization the IR asks
/// for.
llvm::LogicalResult
applyPatternsWithoutFolding(mlir::Operation *op,
                            mlir::RewritePatternSet &&patterns);

/// qnt.observe ops under `root` that share an id are one observer (its
/// statistics accumulate the values of every site, as PyTorch's shared
/// observer instances): fails with an error at the first one whose kind,
/// qspec, other attributes or per-channel channel count differ.
llvm::LogicalResult verifyObserverIds(mlir::Operation *root);

/// verifyZeroPointsInStorageRange on every op under `root` (upstream ops
/// such as quant.qcast included): what the tools check before lowering.
llvm::LogicalResult verifyQuantizedTypes(mlir::Operation *root);

/// Min/max of constant data, per index of `axis` or over the whole tensor;
/// NaN/Inf are counted and left out.
ObserverStats computeConstantStats(llvm::ArrayRef<float> data,
                                   mlir::ShapedType type,
                                   std::optional<int64_t> axis);

/// The !quant.uniform type (per axis when `axis` is set) whose parameters
/// computeQParams derives from each [min, max] for `target`. Its storage
/// range is the whole 8-bit range, as PyTorch clamps quantized tensors to
/// their dtype (quant_min / quant_max only shape the parameters), or
/// [quantMin, quantMax] with `clampToQuantRange`. An error (naming the
/// channel) if a range has no valid parameters (computeCheckedQParams).
llvm::Expected<mlir::Type>
buildUniformQuantizedType(mlir::MLIRContext *ctx, const QTarget &target,
                          llvm::ArrayRef<float> mins,
                          llvm::ArrayRef<float> maxs,
                          std::optional<int64_t> axis, bool clampToQuantRange);

/// The same type from given scales and zero points (one each per channel
/// along `axis`, or one each).
mlir::Type buildUniformQuantizedType(mlir::MLIRContext *ctx,
                                     const QTarget &target,
                                     llvm::ArrayRef<double> scales,
                                     llvm::ArrayRef<int64_t> zeroPoints,
                                     std::optional<int64_t> axis,
                                     bool clampToQuantRange);

/// The operand whose quantization parameters `value` shares, as PyTorch 1.13
/// FX shares them: what a same-scale op (max pooling, reshape, ...) moves,
/// the input of average pooling, constant padding, resizing (interpolate),
/// relu / relu6 / clamp; else null.
mlir::Value getSharedQParamsSource(mlir::Value value);

} // namespace qnt

#endif // QNT_TRANSFORMS_UTILS_H
