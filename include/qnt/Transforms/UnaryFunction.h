//===- UnaryFunction.h - elementwise functions of one activation -*- C++
//-*-===//
//
// Chains of elementwise float ops (ScalarFunctionOpInterface) computed from
// one activation and constants are one unary function of that activation:
// hardswish `x * relu6(x + 3) * (1/6)` is four TOSA ops. --qnt-prepare
// observes such a function's result once (as PyTorch observes the module's
// output), --qnt-convert tabulates it for 8-bit inputs (qnt.table).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_TRANSFORMS_UNARYFUNCTION_H
#define QNT_TRANSFORMS_UNARYFUNCTION_H

#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"

#include <limits>
#include <optional>

namespace qnt {

/// What PyTorch 1.13 FX calls the function, where it has rules for it.
enum class UnaryFunctionKind {
  sigmoid,     ///< fixed parameters (1/256, 0)
  hardsigmoid, ///< fixed parameters (1/256, 0)
  tanh,        ///< fixed parameters (2/256, 128)
  clamp,       ///< relu, relu6, hardtanh, clamp: shares its input's parameters
  silu,        ///< left in float by PyTorch 1.13
  gelu,        ///< left in float by PyTorch 1.13
  other,       ///< hardswish, arithmetic with constants, ...: observed
};

/// `y = clamp(scale[c] * x + shift[c], bounds)` per channel (the last
/// dimension): a batch-norm that no conv precedes, with its relu.
struct ChannelAffine {
  llvm::SmallVector<float> scale, shift;
  std::pair<float, float> bounds = {-std::numeric_limits<float>::infinity(),
                                    std::numeric_limits<float>::infinity()};
};

/// `result = f(source)`, computed by `ops` (in program order) from `source`
/// and constants: splats, or (`perChannel`) one value per channel of the
/// last dimension.
struct UnaryFunction {
  mlir::Value source;
  mlir::Value result;
  llvm::SmallVector<mlir::Operation *> ops;
  bool perChannel = false;

  /// f(x) in f32 at `channel`, op by op as the float code computes it.
  float evaluate(float x, int64_t channel = 0) const;
  UnaryFunctionKind classify() const;
  /// The per-channel affine form, if f is multiplies and adds by constants
  /// with at most a final clamp.
  std::optional<ChannelAffine> getChannelAffine() const;
};

/// The unary function whose result is `value`, if `value` is computed by
/// elementwise float ops from a single non-constant value of its shape.
std::optional<UnaryFunction> getUnaryFunction(mlir::Value value);

/// Whether `value` is a unary function's final result: some user of it is
/// not part of a longer function of the same source (or it is returned).
bool isUnaryFunctionResult(const UnaryFunction &function);

} // namespace qnt

#endif // QNT_TRANSFORMS_UNARYFUNCTION_H
