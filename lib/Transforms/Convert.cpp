//===- Convert.cpp - --qnt-convert ----------------------------------------===//
//
// Rewrites `dcast -> float compute op -> qcast` into the compute op on
// quantized types, with the weight folded to an i8 constant and the bias to
// an i32 constant in units of S_input * S_weight[c].
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/QParams.h"
#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/UnaryFunction.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/Dialect/Tosa/Utils/ConversionUtils.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

/// A dynamically quantized op (`dynamic_qspec`, from
/// --qnt-prepare="mode=dynamic"): only its weight is quantized here; its
/// input is quantized at run time and its result stays float.
struct ConvertDynamicOp : OpInterfaceRewritePattern<QuantizableOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;

  LogicalResult matchAndRewrite(QuantizableOpInterface op,
                                PatternRewriter &rewriter) const override {
    OpOperand *operand = op.getWeightOperand();
    if (!op.getDynamicQuantization() || !operand ||
        isQuantizedTensor(operand->get().getType()))
      return rewriter.notifyMatchFailure(op, "not a dynamic op to do");
    ChannelParams params;
    Value weight =
        buildQuantizedWeight(rewriter, op.getLoc(), operand->get(), params);
    if (!weight)
      return rewriter.notifyMatchFailure(op, "weight is not a quantized "
                                             "constant");
    rewriter.modifyOpInPlace(op, [&] { operand->set(weight); });
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
    if (op.getDynamicQuantization())
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

/// `qcast(dcast(q))` to q's own type -> `q`: an 8-bit value dequantized and
/// quantized again with the same parameters is itself (|q - Z| <= 255, so
/// `(q - Z) * S * (1 / S)` rounds back to `q - Z`). QDQ models write such
/// pairs where one op's output and the next op's input have their own
/// QuantizeLinear with equal parameters (PyTorch's max pool, flatten).
struct FoldRequantizeToSameType : OpRewritePattern<quant::QuantizeCastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(quant::QuantizeCastOp qcast,
                                PatternRewriter &rewriter) const override {
    auto dcast = qcast.getInput().getDefiningOp<quant::DequantizeCastOp>();
    if (!dcast || dcast.getInput().getType() != qcast.getType() ||
        getStorageWidth(qcast.getType()) != 8)
      return rewriter.notifyMatchFailure(qcast, "not an 8-bit round trip");
    rewriter.replaceOp(qcast, dcast.getInput());
    return success();
  }

  static unsigned getStorageWidth(Type type) {
    auto qtype = dyn_cast<quant::QuantizedType>(getElementTypeOrSelf(type));
    return qtype ? qtype.getStorageTypeIntegralWidth() : 0;
  }
};

//===----------------------------------------------------------------------===//
// Ops without weights: integer forms
//===----------------------------------------------------------------------===//

/// The per-tensor 8-bit quantized element type of `type`, or null.
static quant::UniformQuantizedType get8BitType(Type type) {
  auto qtype =
      dyn_cast<quant::UniformQuantizedType>(getElementTypeOrSelf(type));
  return qtype && qtype.getStorageTypeIntegralWidth() == 8 &&
                 qtype.getExpressedType().isF32()
             ? qtype
             : nullptr;
}

/// The 8-bit quantized value a `quant.dcast` dequantizes, if `value` is one.
static TypedValue<RankedTensorType> get8BitDequantizedSource(Value value) {
  Value source = getDequantizedSource(value);
  if (!source || !get8BitType(source.getType()))
    return nullptr;
  return cast<TypedValue<RankedTensorType>>(source);
}

/// `f32(q - Z) * f32(S)`: quant.dcast as the runtime computes it.
static float dequantizeScalar(int64_t q, quant::UniformQuantizedType type) {
  return static_cast<float>(q - type.getZeroPoint()) *
         static_cast<float>(type.getScale());
}

/// `clamp(rint(y * f32(1/S)) + Z)`: quant.qcast as the runtime computes it
/// (NaN becomes the storage minimum); under `qnt.numerics = "onnxruntime"`
/// `y / S`, as ONNX Runtime quantizes (its lookup tables too).
static int64_t quantizeScalar(float y, quant::UniformQuantizedType type,
                              Numerics numerics) {
  float scale = static_cast<float>(type.getScale());
  float v = numerics == Numerics::onnxruntime ? y / scale : y * (1.0f / scale);
  float lo = static_cast<float>(type.getStorageTypeMin() - type.getZeroPoint());
  float hi = static_cast<float>(type.getStorageTypeMax() - type.getZeroPoint());
  v = !(v >= lo) ? lo : v > hi ? hi : v;
  return static_cast<int64_t>(roundHalfToEven(v)) + type.getZeroPoint();
}

/// `qnt.table` mapping each value of `input` to
/// quantize_out(f(dequantize_in(q))).
static Value buildTable(PatternRewriter &rewriter, Location loc,
                        TypedValue<RankedTensorType> input,
                        RankedTensorType resultType,
                        llvm::function_ref<float(float)> f) {
  auto in = get8BitType(input.getType());
  auto out = get8BitType(resultType);
  Numerics numerics = getNumerics(input.getParentRegion()->getParentOp());
  SmallVector<int8_t> table;
  for (int64_t q = in.getStorageTypeMin(), e = q + 256; q < e; ++q)
    table.push_back(static_cast<int8_t>(
        quantizeScalar(f(dequantizeScalar(q, in)), out, numerics)));
  return TableOp::create(rewriter, loc, resultType, input,
                         rewriter.getDenseI8ArrayAttr(table));
}

/// `qcast(f(dcast(q)))` for a unary function f (sigmoid, hardswish, ...)
/// -> `qnt.table(q)`.
struct ConvertUnaryFunction : OpRewritePattern<quant::QuantizeCastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(quant::QuantizeCastOp qcast,
                                PatternRewriter &rewriter) const override {
    std::optional<UnaryFunction> function = getUnaryFunction(qcast.getInput());
    auto resultType = cast<RankedTensorType>(qcast.getType());
    auto input =
        function ? get8BitDequantizedSource(function->source) : nullptr;
    if (!input || !get8BitType(resultType))
      return rewriter.notifyMatchFailure(qcast, "not an 8-bit unary function");
    if (function->perChannel) {
      // A batch-norm that no conv precedes: per-channel arithmetic.
      std::optional<ChannelAffine> affine = function->getChannelAffine();
      if (!affine || get8BitType(input.getType()).isSigned() !=
                         get8BitType(resultType).isSigned())
        return rewriter.notifyMatchFailure(qcast, "per-channel, not affine");
      auto bound = [&](float v) {
        // relu's upper bound is FLT_MAX: no bound.
        return std::fabs(v) < std::numeric_limits<float>::max()
                   ? rewriter.getF32FloatAttr(v)
                   : FloatAttr();
      };
      rewriter.replaceOpWithNewOp<BatchNormOp>(
          qcast, resultType, input,
          rewriter.getDenseF32ArrayAttr(affine->scale),
          rewriter.getDenseF32ArrayAttr(affine->shift),
          bound(affine->bounds.first), bound(affine->bounds.second));
      return success();
    }
    rewriter.replaceOp(
        qcast, buildTable(rewriter, qcast.getLoc(), input, resultType,
                          [&](float x) { return function->evaluate(x); }));
    return success();
  }
};

/// relu / relu6 / clamp on a dequantized value -> the same clamp on the
/// integers (a table with the input's parameters), dequantized after.
struct ConvertSharedQParamsClamp : OpRewritePattern<tosa::ClampOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::ClampOp op,
                                PatternRewriter &rewriter) const override {
    std::optional<UnaryFunction> function = getUnaryFunction(op.getResult());
    auto input = function && function->ops.size() == 1
                     ? get8BitDequantizedSource(function->source)
                     : nullptr;
    if (!input)
      return rewriter.notifyMatchFailure(op, "not a clamp of an 8-bit value");
    Value table = buildTable(rewriter, op.getLoc(), input, input.getType(),
                             [&](float x) { return function->evaluate(x); });
    rewriter.replaceOpWithNewOp<quant::DequantizeCastOp>(op, op.getType(),
                                                         table);
    return success();
  }
};

/// `qcast(concat(dcast(a), dcast(b), ...))` -> `concat(a', b', ...)` on
/// quantized values, each input requantized (a table) to the result's
/// parameters unless it has them, as PyTorch's quantized cat.
struct ConvertConcat : OpRewritePattern<quant::QuantizeCastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(quant::QuantizeCastOp qcast,
                                PatternRewriter &rewriter) const override {
    auto concat = qcast.getInput().getDefiningOp<tosa::ConcatOp>();
    auto resultType = cast<RankedTensorType>(qcast.getType());
    auto out = get8BitType(resultType);
    if (!concat || !out || !concat->hasOneUse())
      return rewriter.notifyMatchFailure(qcast, "not a quantized concat");
    SmallVector<Value> inputs;
    for (Value operand : concat.getInput1()) {
      auto input = get8BitDequantizedSource(operand);
      if (!input || get8BitType(input.getType()).isSigned() != out.isSigned())
        return rewriter.notifyMatchFailure(qcast, "input is not 8-bit "
                                                  "quantized like the result");
      if (get8BitType(input.getType()) == out) {
        inputs.push_back(input);
        continue;
      }
      inputs.push_back(buildTable(rewriter, concat.getLoc(), input,
                                  input.getType().clone(out),
                                  [](float x) { return x; }));
    }
    rewriter.replaceOpWithNewOp<tosa::ConcatOp>(qcast, resultType, inputs,
                                                concat.getAxis());
    return success();
  }
};

/// `avg_pool2d(dcast(q))` without padding -> `dcast(qnt.avg_pool2d(q))`
/// with the input's parameters (PyTorch shares them), or straight to the
/// parameters of a single `quant.qcast` after it.
struct ConvertAvgPool : OpRewritePattern<tosa::AvgPool2dOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::AvgPool2dOp op,
                                PatternRewriter &rewriter) const override {
    auto input = get8BitDequantizedSource(op.getInput());
    auto resultType = dyn_cast<RankedTensorType>(op.getType());
    if (!input || !resultType || !resultType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "not an 8-bit average pooling");
    if (llvm::any_of(op.getPad(), [](int64_t p) { return p != 0; }))
      return rewriter.notifyMatchFailure(op, "pads (no integer form)");
    if (!matchPattern(op.getInputZp(), m_AnyZeroFloat()) ||
        !matchPattern(op.getOutputZp(), m_AnyZeroFloat()))
      return rewriter.notifyMatchFailure(op, "float zero points not 0");
    auto qcast = op->hasOneUse()
                     ? dyn_cast<quant::QuantizeCastOp>(*op->user_begin())
                     : nullptr;
    auto in = get8BitType(input.getType());
    Type element = in;
    if (qcast) {
      auto out = get8BitType(qcast.getType());
      if (out && out.isSigned() == in.isSigned())
        element = out;
      else
        qcast = nullptr;
    }
    Value pool = AvgPool2DOp::create(
        rewriter, op.getLoc(), resultType.clone(element), input,
        rewriter.getDenseI64ArrayAttr(op.getKernel()),
        rewriter.getDenseI64ArrayAttr(op.getStride()));
    if (qcast) {
      rewriter.replaceOp(qcast, pool);
      rewriter.eraseOp(op);
    } else {
      rewriter.replaceOpWithNewOp<quant::DequantizeCastOp>(op, resultType,
                                                           pool);
    }
    return success();
  }
};

/// `pad(dcast(q), fill)` -> `dcast(pad(q))` with the input's parameters, on
/// the storage integers: the fill quantized to them, clamped to the storage
/// range (as PyTorch's quantized F.pad).
struct ConvertPad : OpRewritePattern<tosa::PadOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::PadOp op,
                                PatternRewriter &rewriter) const override {
    auto input = get8BitDequantizedSource(op.getInput1());
    SplatElementsAttr fill;
    if (!input || !matchPattern(op.getPadConst(), m_Constant(&fill)) ||
        !fill.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "not a constant padding of an "
                                             "8-bit value");
    auto qtype = get8BitType(input.getType());
    Location loc = op.getLoc();
    Type storage = rewriter.getI8Type();
    auto fillType = RankedTensorType::get({1}, storage);
    int8_t fillValue = static_cast<int8_t>(
        quantizeScalar(fill.getSplatValue<float>(), qtype, getNumerics(op)));
    Value fillConst = tosa::ConstOp::create(
        rewriter, loc, fillType,
        DenseElementsAttr::get(fillType, ArrayRef<int8_t>(fillValue)));
    Value integers = quant::StorageCastOp::create(
        rewriter, loc, input.getType().clone(storage), input);
    auto resultType = cast<RankedTensorType>(op.getType());
    Value padded = tosa::PadOp::create(rewriter, loc, resultType.clone(storage),
                                       integers, op.getPadding(), fillConst);
    Value quantized = quant::StorageCastOp::create(
        rewriter, loc, resultType.clone(qtype), padded);
    rewriter.replaceOpWithNewOp<quant::DequantizeCastOp>(op, resultType,
                                                         quantized);
    return success();
  }
};

/// PyTorch's source step along one axis of a tosa.resize that the exporter
/// wrote for F.interpolate (python/qnt/export.py), or nothing for other
/// resize parameters. `alignCorners` is set for bilinear's align_corners.
static std::optional<float> getPyTorchResizeStep(bool nearest, int64_t n,
                                                 int64_t d, int64_t offset,
                                                 int64_t in, int64_t out,
                                                 bool &alignCorners) {
  if (n <= 0 || d <= 0)
    return std::nullopt;
  if (nearest) {
    // offset = -n/2 turns TOSA's rounding into floor(o * d / n).
    alignCorners = false;
    if (n % 2 || offset != -n / 2)
      return std::nullopt;
    return static_cast<float>(d) / static_cast<float>(n);
  }
  // Half-pixel centres: (o + 0.5) * d / n - 0.5.
  if (2 * offset == d - n) {
    alignCorners = false;
    return static_cast<float>(d) / static_cast<float>(n);
  }
  // align_corners: o * (in - 1) / (out - 1); 0 for a size of 1, where
  // every pixel reads the first.
  if (offset == 0 && (in == 1 || out == 1 || n * (in - 1) == d * (out - 1))) {
    alignCorners = true;
    return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                   : 0.0f;
  }
  return std::nullopt;
}

/// `resize(dcast(q))` -> `dcast(qnt.resize(q))` with the input's parameters
/// (PyTorch shares them), for the resizes F.interpolate exports.
struct ConvertResize : OpRewritePattern<tosa::ResizeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::ResizeOp op,
                                PatternRewriter &rewriter) const override {
    auto input = get8BitDequantizedSource(op.getInput());
    auto resultType = dyn_cast<RankedTensorType>(op.getType());
    if (!input || !resultType || !resultType.hasStaticShape() ||
        !input.getType().hasStaticShape())
      return rewriter.notifyMatchFailure(op, "not an 8-bit static resize");
    SmallVector<int64_t> scale, offset;
    if (!tosa::getConstShapeValues(op.getScale().getDefiningOp(), scale) ||
        !tosa::getConstShapeValues(op.getOffset().getDefiningOp(), offset) ||
        scale.size() != 4 || offset.size() != 2)
      return rewriter.notifyMatchFailure(op, "parameters are not constant");
    bool nearest = op.getMode() == tosa::ResizeMode::NEAREST_NEIGHBOR;
    SmallVector<float> steps;
    bool alignCorners[2];
    for (int i = 0; i < 2; ++i) {
      std::optional<float> step =
          getPyTorchResizeStep(nearest, scale[2 * i], scale[2 * i + 1],
                               offset[i], input.getType().getDimSize(1 + i),
                               resultType.getDimSize(1 + i), alignCorners[i]);
      if (!step)
        return rewriter.notifyMatchFailure(op, "not PyTorch's coordinates");
      steps.push_back(*step);
    }
    // An axis of size 1 reads the same pixel either way.
    bool align = alignCorners[0] || alignCorners[1];
    Value resized = ResizeOp::create(
        rewriter, op.getLoc(), resultType.clone(get8BitType(input.getType())),
        input,
        ResizeModeAttr::get(getContext(), nearest ? ResizeMode::nearest
                                                  : ResizeMode::bilinear),
        rewriter.getBoolAttr(align), rewriter.getDenseF32ArrayAttr(steps));
    rewriter.replaceOpWithNewOp<quant::DequantizeCastOp>(op, resultType,
                                                         resized);
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
  using QntConvertPassBase::QntConvertPassBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ConvertComputeOp, ConvertDynamicOp,
                 PushDequantizeThroughSameScale, FoldRequantizeToSameType,
                 ConvertUnaryFunction, ConvertSharedQParamsClamp, ConvertConcat,
                 ConvertAvgPool, ConvertPad, ConvertResize,
                 EraseStub<QuantStubOp>, EraseStub<DequantStubOp>>(
        &getContext());
    if (failed(
            applyPatternsWithoutFolding(getOperation(), std::move(patterns))))
      return signalPassFailure();
    if (reportFloat)
      reportFloatOps();
  }

  /// A remark on every float op that still computes on dequantized values.
  void reportFloatOps() {
    getOperation().walk([](Operation *op) {
      if (isa<quant::DequantizeCastOp, quant::QuantizeCastOp>(op) ||
          op->getNumResults() != 1 ||
          !getElementTypeOrSelf(op->getResult(0).getType()).isF32() ||
          !llvm::any_of(op->getOperands(), [](Value v) {
            return v.getDefiningOp<quant::DequantizeCastOp>();
          }))
        return;
      InFlightDiagnostic remark = op->emitRemark("stays float in the "
                                                 "quantized region: ");
      if (auto pool = dyn_cast<tosa::AvgPool2dOp>(op);
          pool && llvm::any_of(pool.getPad(), [](int64_t p) { return p; }))
        remark << "average pooling with padding has no integer form";
      else if (isa<tosa::ResizeOp>(op))
        remark << "resize parameters other than F.interpolate's (nearest: "
                  "floor, bilinear: half-pixel or align_corners) have no "
                  "integer form";
      else if (isa<ScalarFunctionOpInterface>(op))
        remark << "no integer form for this function of an 8-bit "
                  "activation (per-channel constants outside a multiply-"
                  "add, or not quantized by --qnt-prepare)";
      else
        remark << "no quantized form for '" << op->getName() << "'";
    });
  }
};

} // namespace
