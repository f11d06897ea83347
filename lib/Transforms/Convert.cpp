//===- Convert.cpp - --qnt-convert ----------------------------------------===//
//
// Rewrites `dcast -> float compute op -> qcast` into the compute op on
// quantized types, with the weight folded to an i8 constant and the bias to
// an i32 constant in units of S_input * S_weight[c].
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/QParams.h"
#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <algorithm>
#include <cmath>

namespace qnt {
#define GEN_PASS_DEF_QNTCONVERTPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

/// Per-channel (or single) scales and zero points of a quantized type.
struct ChannelParams {
  SmallVector<double> scales;
  SmallVector<int64_t> zeroPoints;
  int64_t axis = -1; ///< -1: per tensor.
  int64_t quantMin, quantMax;
};

static ChannelParams getChannelParams(quant::QuantizedType type) {
  ChannelParams params;
  params.quantMin = type.getStorageTypeMin();
  params.quantMax = type.getStorageTypeMax();
  if (auto perAxis = dyn_cast<quant::UniformQuantizedPerAxisType>(type)) {
    params.scales.assign(perAxis.getScales().begin(),
                         perAxis.getScales().end());
    params.zeroPoints.assign(perAxis.getZeroPoints().begin(),
                             perAxis.getZeroPoints().end());
    params.axis = perAxis.getQuantizedDimension();
  } else {
    auto uniform = cast<quant::UniformQuantizedType>(type);
    params.scales = {uniform.getScale()};
    params.zeroPoints = {uniform.getZeroPoint()};
  }
  return params;
}

/// Quantizes float constant data: q = clamp(rint(x * (1/S)) + Z) per
/// channel, the formula of docs/numerics.md.
static std::vector<int8_t> quantizeConstant(ArrayRef<float> data,
                                            ShapedType type,
                                            const ChannelParams &params) {
  int64_t channels = params.scales.size(), inner = 1;
  if (params.axis >= 0)
    for (int64_t d = params.axis + 1; d < type.getRank(); ++d)
      inner *= type.getDimSize(d);
  std::vector<int8_t> result(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    int64_t c = (i / inner) % channels;
    float inverse = 1.0f / static_cast<float>(params.scales[c]);
    int64_t q = static_cast<int64_t>(roundHalfToEven(data[i] * inverse)) +
                params.zeroPoints[c];
    result[i] =
        static_cast<int8_t>(std::clamp(q, params.quantMin, params.quantMax));
  }
  return result;
}

/// The i8 constant (behind a quant.scast to its quantized type) that
/// `weight` = dcast(qcast(float constant)) stands for, or null; sets
/// `params` to its scales and zero points.
static Value buildQuantizedWeight(PatternRewriter &rewriter, Location loc,
                                  Value weight, ChannelParams &params) {
  auto dcast = weight.getDefiningOp<quant::DequantizeCastOp>();
  auto qcast =
      dcast ? dcast.getInput().getDefiningOp<quant::QuantizeCastOp>() : nullptr;
  std::optional<std::vector<float>> data =
      qcast ? getConstantFloats(qcast.getInput()) : std::nullopt;
  if (!data)
    return nullptr;
  auto qtype = cast<RankedTensorType>(qcast.getType());
  params = getChannelParams(cast<quant::QuantizedType>(qtype.getElementType()));
  std::vector<int8_t> q = quantizeConstant(*data, qtype, params);
  auto storageType = qtype.clone(rewriter.getI8Type());
  Value storage = arith::ConstantOp::create(
      rewriter, loc, storageType,
      DenseElementsAttr::get(storageType, ArrayRef<int8_t>(q)));
  return quant::StorageCastOp::create(rewriter, loc, qtype, storage);
}

/// A dynamically quantized linear layer (`dynamic_qspec`, from
/// --qnt-prepare="mode=dynamic"): only its weight is quantized here; its
/// input is quantized at run time and its result stays float.
struct ConvertDynamicLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getDynamicQspecAttr() ||
        isQuantizedTensor(op.getWeight().getType()))
      return rewriter.notifyMatchFailure(op, "not a dynamic linear to do");
    ChannelParams params;
    Value weight =
        buildQuantizedWeight(rewriter, op.getLoc(), op.getWeight(), params);
    if (!weight)
      return rewriter.notifyMatchFailure(op, "weight is not a quantized "
                                             "constant");
    rewriter.modifyOpInPlace(op, [&] { op.getWeightMutable().set(weight); });
    return success();
  }
};

/// The quantized value a `quant.dcast` dequantizes, if `value` is one.
static Value getDequantizedSource(Value value) {
  auto dcast = value.getDefiningOp<quant::DequantizeCastOp>();
  if (!dcast)
    return nullptr;
  return dcast.getInput();
}

struct ConvertComputeOp : OpInterfaceRewritePattern<QuantizableOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;

  LogicalResult matchAndRewrite(QuantizableOpInterface op,
                                PatternRewriter &rewriter) const override {
    if (isQuantizedTensor(op->getResult(0).getType()))
      return rewriter.notifyMatchFailure(op, "already quantized");
    if (auto linear = dyn_cast<LinearOp>(op.getOperation());
        linear && linear.getDynamicQspecAttr())
      return rewriter.notifyMatchFailure(op, "dynamically quantized");
    SmallVector<Value> inputs;
    for (OpOperand *operand : op.getActivationOperands()) {
      Value source = getDequantizedSource(operand->get());
      if (!source)
        return rewriter.notifyMatchFailure(op, "activation is not a dcast");
      inputs.push_back(source);
    }
    Value result = op->getResult(0);
    if (!result.hasOneUse())
      return rewriter.notifyMatchFailure(op, "result has several uses");
    auto qcast = dyn_cast<quant::QuantizeCastOp>(*result.getUsers().begin());
    if (!qcast)
      return rewriter.notifyMatchFailure(op, "result is not quantized");

    // Weight: dcast(qcast(constant)).
    Value weight;
    ChannelParams weightParams;
    if (OpOperand *operand = op.getWeightOperand()) {
      weight = buildQuantizedWeight(rewriter, op.getLoc(), operand->get(),
                                    weightParams);
      if (!weight)
        return rewriter.notifyMatchFailure(op, "weight is not a quantized "
                                               "constant");
    }

    // Bias: int32 in units of S_in * S_w[c].
    Value bias;
    if (OpOperand *operand = op.getBiasOperand()) {
      std::optional<std::vector<float>> data =
          getConstantFloats(operand->get());
      if (!data)
        return rewriter.notifyMatchFailure(op, "bias is not a constant");
      auto inputType = cast<quant::UniformQuantizedType>(
          cast<ShapedType>(inputs[0].getType()).getElementType());
      std::vector<int32_t> q(data->size());
      int64_t clamped = 0, first = -1;
      for (size_t c = 0; c < data->size(); ++c) {
        double scale =
            inputType.getScale() *
            weightParams.scales[weightParams.scales.size() == 1 ? 0 : c];
        double v = std::nearbyint((*data)[c] / scale);
        if (v < INT32_MIN || v > INT32_MAX) {
          if (!clamped++)
            first = c;
        }
        q[c] =
            static_cast<int32_t>(std::clamp<double>(v, INT32_MIN, INT32_MAX));
      }
      // One warning per op, however many channels.
      if (clamped)
        op->emitWarning("bias of ")
            << clamped << " channel(s) exceeds int32 in units of "
            << "S_in * S_w[c] and is clamped (first: channel " << first << ", "
            << (*data)[first] << ")";
      auto type =
          RankedTensorType::get({(int64_t)q.size()}, rewriter.getI32Type());
      bias = arith::ConstantOp::create(
          rewriter, op.getLoc(), type,
          DenseElementsAttr::get(type, ArrayRef<int32_t>(q)));
    }

    rewriter.modifyOpInPlace(op, [&] {
      for (auto [operand, input] :
           llvm::zip(op.getActivationOperands(), inputs))
        operand->set(input);
      if (weight)
        op.getWeightOperand()->set(weight);
      if (bias)
        op.getBiasOperand()->set(bias);
      result.setType(qcast.getType());
    });
    rewriter.replaceOp(qcast, result);
    return success();
  }
};

/// `op(dcast(q))` -> `dcast(op(q))` for a same-scale op (max pool, reshape,
/// ...): it runs on the quantized values and keeps their parameters.
struct PushDequantizeThroughSameScale
    : OpInterfaceRewritePattern<SameScaleOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;

  LogicalResult matchAndRewrite(SameScaleOpInterface op,
                                PatternRewriter &rewriter) const override {
    OpOperand &operand = op.getSameScaleOperand();
    auto dcast = operand.get().getDefiningOp<quant::DequantizeCastOp>();
    if (!dcast || op->getNumResults() != 1)
      return rewriter.notifyMatchFailure(op, "operand is not dequantized");
    auto qtype = dyn_cast<quant::UniformQuantizedType>(
        getElementTypeOrSelf(dcast.getInput().getType()));
    auto resultType = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    if (!qtype || !resultType || !resultType.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "not a per-tensor quantization");

    Operation *quantized = rewriter.clone(*op);
    rewriter.modifyOpInPlace(quantized, [&] {
      quantized->setOperand(operand.getOperandNumber(), dcast.getInput());
      quantized->getResult(0).setType(resultType.clone(qtype));
    });
    rewriter.replaceOpWithNewOp<quant::DequantizeCastOp>(
        op, resultType, quantized->getResult(0));
    return success();
  }
};

/// Region markers have done their job once the IR is quantized.
template <typename StubOp> struct EraseStub : OpRewritePattern<StubOp> {
  using OpRewritePattern<StubOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(StubOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, op.getInput());
    return success();
  }
};

struct QntConvertPass : qnt::impl::QntConvertPassBase<QntConvertPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ConvertComputeOp, ConvertDynamicLinear,
                 PushDequantizeThroughSameScale, EraseStub<QuantStubOp>,
                 EraseStub<DequantStubOp>>(&getContext());
    if (failed(
            applyPatternsWithoutFolding(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
