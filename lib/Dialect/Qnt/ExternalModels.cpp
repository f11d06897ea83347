//===- ExternalModels.cpp - qnt interfaces on upstream ops ----------------===//

#include "qnt/Dialect/Qnt/ExternalModels.h"
#include "qnt/Dialect/Qnt/QntOps.h"

#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Matchers.h"

#include <cmath>

using namespace mlir;

namespace {

/// The op carries the values of its first operand.
template <typename OpTy>
struct FirstOperandSameScale
    : qnt::SameScaleOpInterface::ExternalModel<FirstOperandSameScale<OpTy>,
                                               OpTy> {
  OpOperand &getSameScaleOperand(Operation *op) const {
    return op->getOpOperand(0);
  }
};

template <typename... OpTys>
void attachFirstOperandSameScale(MLIRContext *ctx) {
  (OpTys::template attachInterface<FirstOperandSameScale<OpTys>>(*ctx), ...);
}

/// An elementwise TOSA op computing `Fn` on its operands' values (the f32
/// formulas of upstream's TosaToLinalg lowering).
template <typename OpTy, typename Fn>
struct ScalarFunction
    : qnt::ScalarFunctionOpInterface::ExternalModel<ScalarFunction<OpTy, Fn>,
                                                    OpTy> {
  float evaluateScalar(Operation *op, ArrayRef<float> operands) const {
    return Fn()(operands);
  }
};

struct AddFn {
  float operator()(ArrayRef<float> v) const { return v[0] + v[1]; }
};
struct SubFn {
  float operator()(ArrayRef<float> v) const { return v[0] - v[1]; }
};
struct MaximumFn {
  float operator()(ArrayRef<float> v) const { return std::fmax(v[0], v[1]); }
};
struct MinimumFn {
  float operator()(ArrayRef<float> v) const { return std::fmin(v[0], v[1]); }
};
struct PowFn {
  float operator()(ArrayRef<float> v) const { return std::pow(v[0], v[1]); }
};
struct SigmoidFn {
  float operator()(ArrayRef<float> v) const {
    return 1.0f / (1.0f + std::exp(-v[0]));
  }
};
struct TanhFn {
  float operator()(ArrayRef<float> v) const { return std::tanh(v[0]); }
};
struct ErfFn {
  float operator()(ArrayRef<float> v) const { return std::erf(v[0]); }
};
struct ExpFn {
  float operator()(ArrayRef<float> v) const { return std::exp(v[0]); }
};
struct LogFn {
  float operator()(ArrayRef<float> v) const { return std::log(v[0]); }
};
struct AbsFn {
  float operator()(ArrayRef<float> v) const { return std::fabs(v[0]); }
};
struct ReciprocalFn {
  float operator()(ArrayRef<float> v) const { return 1.0f / v[0]; }
};
struct RsqrtFn {
  float operator()(ArrayRef<float> v) const { return 1.0f / std::sqrt(v[0]); }
};
struct FloorFn {
  float operator()(ArrayRef<float> v) const { return std::floor(v[0]); }
};
struct CeilFn {
  float operator()(ArrayRef<float> v) const { return std::ceil(v[0]); }
};

/// tosa.mul: a function of its two inputs when the shift is zero.
struct MulScalarFunction
    : qnt::ScalarFunctionOpInterface::ExternalModel<MulScalarFunction,
                                                    tosa::MulOp> {
  SmallVector<Value> getScalarOperands(Operation *op) const {
    auto mul = cast<tosa::MulOp>(op);
    return {mul.getInput1(), mul.getInput2()};
  }
  bool isScalarFunction(Operation *op) const {
    return matchPattern(cast<tosa::MulOp>(op).getShift(), m_Zero());
  }
  float evaluateScalar(Operation *op, ArrayRef<float> v) const {
    return v[0] * v[1];
  }
};

/// tosa.clamp with float bounds (NaN propagates, as upstream lowers it).
struct ClampScalarFunction
    : qnt::ScalarFunctionOpInterface::ExternalModel<ClampScalarFunction,
                                                    tosa::ClampOp> {
  static std::optional<std::pair<float, float>> getBounds(Operation *op) {
    auto clamp = cast<tosa::ClampOp>(op);
    auto lo = dyn_cast<FloatAttr>(clamp.getMinValAttr());
    auto hi = dyn_cast<FloatAttr>(clamp.getMaxValAttr());
    if (!lo || !hi)
      return std::nullopt;
    return std::make_pair((float)lo.getValueAsDouble(),
                          (float)hi.getValueAsDouble());
  }
  SmallVector<Value> getScalarOperands(Operation *op) const {
    return {cast<tosa::ClampOp>(op).getInput()};
  }
  bool isScalarFunction(Operation *op) const {
    return getBounds(op).has_value();
  }
  float evaluateScalar(Operation *op, ArrayRef<float> v) const {
    auto [lo, hi] = *getBounds(op);
    if (std::isnan(v[0]))
      return v[0];
    return std::min(std::max(v[0], lo), hi);
  }
};

/// tosa.negate with zero points 0.
struct NegateScalarFunction
    : qnt::ScalarFunctionOpInterface::ExternalModel<NegateScalarFunction,
                                                    tosa::NegateOp> {
  SmallVector<Value> getScalarOperands(Operation *op) const {
    return {cast<tosa::NegateOp>(op).getInput1()};
  }
  bool isScalarFunction(Operation *op) const {
    auto negate = cast<tosa::NegateOp>(op);
    return matchPattern(negate.getInput1Zp(), m_AnyZeroFloat()) &&
           matchPattern(negate.getOutputZp(), m_AnyZeroFloat());
  }
  float evaluateScalar(Operation *op, ArrayRef<float> v) const { return -v[0]; }
};

} // namespace

void qnt::registerTosaExternalModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, tosa::TosaDialect *) {
    attachFirstOperandSameScale<tosa::MaxPool2dOp, tosa::ReshapeOp,
                                tosa::TransposeOp, tosa::SliceOp>(ctx);
    tosa::AddOp::attachInterface<ScalarFunction<tosa::AddOp, AddFn>>(*ctx);
    tosa::SubOp::attachInterface<ScalarFunction<tosa::SubOp, SubFn>>(*ctx);
    tosa::MaximumOp::attachInterface<
        ScalarFunction<tosa::MaximumOp, MaximumFn>>(*ctx);
    tosa::MinimumOp::attachInterface<
        ScalarFunction<tosa::MinimumOp, MinimumFn>>(*ctx);
    tosa::PowOp::attachInterface<ScalarFunction<tosa::PowOp, PowFn>>(*ctx);
    tosa::SigmoidOp::attachInterface<
        ScalarFunction<tosa::SigmoidOp, SigmoidFn>>(*ctx);
    tosa::TanhOp::attachInterface<ScalarFunction<tosa::TanhOp, TanhFn>>(*ctx);
    tosa::ErfOp::attachInterface<ScalarFunction<tosa::ErfOp, ErfFn>>(*ctx);
    tosa::ExpOp::attachInterface<ScalarFunction<tosa::ExpOp, ExpFn>>(*ctx);
    tosa::LogOp::attachInterface<ScalarFunction<tosa::LogOp, LogFn>>(*ctx);
    tosa::AbsOp::attachInterface<ScalarFunction<tosa::AbsOp, AbsFn>>(*ctx);
    tosa::ReciprocalOp::attachInterface<
        ScalarFunction<tosa::ReciprocalOp, ReciprocalFn>>(*ctx);
    tosa::RsqrtOp::attachInterface<ScalarFunction<tosa::RsqrtOp, RsqrtFn>>(
        *ctx);
    tosa::FloorOp::attachInterface<ScalarFunction<tosa::FloorOp, FloorFn>>(
        *ctx);
    tosa::CeilOp::attachInterface<ScalarFunction<tosa::CeilOp, CeilFn>>(*ctx);
    tosa::MulOp::attachInterface<MulScalarFunction>(*ctx);
    tosa::ClampOp::attachInterface<ClampScalarFunction>(*ctx);
    tosa::NegateOp::attachInterface<NegateScalarFunction>(*ctx);
  });
}
