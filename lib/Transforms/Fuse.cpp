//===- Fuse.cpp - --qnt-fuse ----------------------------------------------===//
//
// Lifts TOSA conv2d / matmul-based linear layers into qnt compute ops, then
// folds what follows them: a per-channel multiply (batch-norm scale) into
// the weights and bias, a per-channel add (batch-norm shift, linear bias)
// into the bias, and a clamp into the fused activation.
//
//===----------------------------------------------------------------------===//

#include "qnt/Support/SizeLimits.h"
#include "qnt/Transforms/Passes.h"
#include "qnt/Transforms/UnaryFunction.h"
#include "qnt/Transforms/Utils.h"

#include "mlir/Dialect/Tosa/Utils/ConversionUtils.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <limits>

namespace qnt {
#define GEN_PASS_DEF_QNTFUSEPASS
#include "qnt/Transforms/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

/// True if `value` is a constant whose every element is zero.
static bool isZeroConstant(Value value) {
  DenseElementsAttr attr;
  if (!matchPattern(value, m_Constant(&attr)))
    return false;
  if (attr.getElementType().isF32())
    return llvm::all_of(attr.getValues<float>(),
                        [](float v) { return v == 0.0f; });
  if (isa<IntegerType>(attr.getElementType()))
    return llvm::all_of(attr.getValues<APInt>(),
                        [](const APInt &v) { return v.isZero(); });
  return false;
}

static bool isF32Tensor(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  return type && type.getElementType().isF32() && type.hasStaticShape();
}

/// Whether `op` adds or multiplies a scalar as an inner step of a longer
/// unary function (hardsigmoid's `x + 3`): folding it into the producer
/// would change what PyTorch quantizes (the producer's output, then the
/// function). Batch-norm constants have one value per channel.
static bool isScalarStepOfUnaryFunction(Operation *op) {
  bool scalar = llvm::any_of(op->getOperands(), [](Value v) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    return type && type.getElementType().isF32() &&
           type.getNumElements() == 1 && matchPattern(v, m_Constant());
  });
  if (!scalar)
    return false;
  std::optional<UnaryFunction> function = getUnaryFunction(op->getResult(0));
  return function && !isUnaryFunctionResult(*function);
}

/// The OHWI weight and group count of a lifted convolution: tosa.conv2d's
/// weight is already OHWI.
static FailureOr<std::pair<Value, int64_t>> getLiftedWeight(tosa::Conv2DOp op,
                                                            PatternRewriter &) {
  return std::pair<Value, int64_t>(op.getWeight(), 1);
}

/// tosa.depthwise_conv2d's weight [KH, KW, C, M] becomes the OHWI weight
/// [C * M, KH, KW, 1] of a conv with C groups (output channel c * M + m);
/// this needs a constant weight.
static FailureOr<std::pair<Value, int64_t>>
getLiftedWeight(tosa::DepthwiseConv2DOp op, PatternRewriter &rewriter) {
  std::optional<std::vector<float>> data = getConstantFloats(op.getWeight());
  if (!data)
    return failure();
  ArrayRef<int64_t> shape =
      cast<RankedTensorType>(op.getWeight().getType()).getShape();
  int64_t kh = shape[0], kw = shape[1], c = shape[2], m = shape[3];
  std::vector<float> ohwi(data->size());
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x)
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t mi = 0; mi < m; ++mi)
          ohwi[((ci * m + mi) * kh + y) * kw + x] =
              (*data)[((y * kw + x) * c + ci) * m + mi];
  Value weight =
      createF32Constant(rewriter, op.getLoc(), {c * m, kh, kw, 1}, ohwi);
  return std::pair<Value, int64_t>(weight, c);
}

/// Lifts `tosa.conv2d` / `tosa.depthwise_conv2d` (f32, zero points 0) into
/// `qnt.conv2d`.
template <typename ConvOp> struct LiftConvolution : OpRewritePattern<ConvOp> {
  using OpRewritePattern<ConvOp>::OpRewritePattern;

  LogicalResult matchAndRewrite(ConvOp op,
                                PatternRewriter &rewriter) const override {
    if (!isF32Tensor(op.getInput()) || !isF32Tensor(op.getOutput()))
      return rewriter.notifyMatchFailure(op, "not an f32 convolution");
    if (!isZeroConstant(op.getInputZp()) || !isZeroConstant(op.getWeightZp()))
      return rewriter.notifyMatchFailure(op, "non-zero zero points");
    int64_t channels = op.getOutput().getType().getDimSize(3);
    Value bias = op.getBias();
    std::optional<std::vector<float>> biasValues;
    if (cast<RankedTensorType>(bias.getType()).getDimSize(0) != channels) {
      // TOSA broadcasts a one-element bias; qnt wants one per channel.
      biasValues = getConstantFloats(bias);
      if (!biasValues || biasValues->size() != 1)
        return rewriter.notifyMatchFailure(op, "bias is not per-channel");
    }
    FailureOr<std::pair<Value, int64_t>> weight = getLiftedWeight(op, rewriter);
    if (failed(weight))
      return rewriter.notifyMatchFailure(op, "weight is not a constant");
    if (biasValues)
      bias = createF32Constant(rewriter, op.getLoc(), {channels},
                               std::vector<float>(channels, (*biasValues)[0]));
    rewriter.replaceOpWithNewOp<Conv2DOp>(
        op, op.getOutput().getType(), op.getInput(), weight->first, bias,
        op.getStrideAttr(), op.getPadAttr(), op.getDilationAttr(),
        weight->second, Activation::none, /*clamp_min=*/nullptr,
        /*clamp_max=*/nullptr, /*dynamic_qspec=*/nullptr);
    return success();
  }
};

/// Lifts `tosa.matmul(a: [1, M, K], const [1, K, N])` into
/// `reshape(qnt.linear(reshape(a) : [M, K], W^T : [N, K], 0))`; the reshapes
/// fold away against the ones a producer emits around the matmul.
struct LiftMatmulLinear : OpRewritePattern<tosa::MatMulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::MatMulOp op,
                                PatternRewriter &rewriter) const override {
    auto aType = cast<RankedTensorType>(op.getA().getType());
    auto bType = cast<RankedTensorType>(op.getB().getType());
    if (!isF32Tensor(op.getA()) || !isF32Tensor(op.getB()) ||
        aType.getDimSize(0) != 1)
      return rewriter.notifyMatchFailure(op, "not a batch-1 f32 matmul");
    if (!isZeroConstant(op.getAZp()) || !isZeroConstant(op.getBZp()))
      return rewriter.notifyMatchFailure(op, "non-zero zero points");
    std::optional<std::vector<float>> b = getConstantFloats(op.getB());
    if (!b)
      return rewriter.notifyMatchFailure(op, "weight is not a constant");

    int64_t m = aType.getDimSize(1), k = aType.getDimSize(2),
            n = bType.getDimSize(2);
    std::vector<float> weight(n * k);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < n; ++j)
        weight[j * k + i] = (*b)[i * n + j];

    Location loc = op.getLoc();
    Type f32 = rewriter.getF32Type();
    Value input = tosa::ReshapeOp::create(
        rewriter, loc, RankedTensorType::get({m, k}, f32), op.getA(),
        tosa::getTosaConstShape(rewriter, loc, {m, k}));
    Value weightValue = createF32Constant(rewriter, loc, {n, k}, weight);
    Value bias =
        createF32Constant(rewriter, loc, {n}, std::vector<float>(n, 0.0f));
    auto linear =
        LinearOp::create(rewriter, loc, RankedTensorType::get({m, n}, f32),
                         input, weightValue, bias, Activation::none,
                         /*clamp_min=*/nullptr, /*clamp_max=*/nullptr,
                         /*dynamic_qspec=*/nullptr);
    // The frontend's marks (qnt.float_in_pytorch) stay with the layer.
    linear->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.replaceOpWithNewOp<tosa::ReshapeOp>(
        op, op.getType(), linear,
        tosa::getTosaConstShape(rewriter, loc, {1, m, n}));
    return success();
  }
};

/// Lifts `tosa.matmul` of two computed tensors (attention's scores and
/// context) into `qnt.batch_matmul`; a transpose of the last two dimensions
/// of the right operand (`q k^T`) becomes its `transpose_b`.
struct LiftBatchMatmul : OpRewritePattern<tosa::MatMulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::MatMulOp op,
                                PatternRewriter &rewriter) const override {
    Value lhs = op.getA(), rhs = op.getB();
    if (!isF32Tensor(lhs) || !isF32Tensor(rhs) ||
        !cast<RankedTensorType>(lhs.getType()).hasStaticShape() ||
        !cast<RankedTensorType>(rhs.getType()).hasStaticShape())
      return rewriter.notifyMatchFailure(op, "not a static f32 matmul");
    if (!isZeroConstant(op.getAZp()) || !isZeroConstant(op.getBZp()))
      return rewriter.notifyMatchFailure(op, "non-zero zero points");
    if (matchPattern(lhs, m_Constant()) || matchPattern(rhs, m_Constant()))
      return rewriter.notifyMatchFailure(op, "multiplies by a constant");
    bool transposeB = false;
    if (auto transpose = rhs.getDefiningOp<tosa::TransposeOp>();
        transpose && transpose.getPerms() == ArrayRef<int32_t>{0, 2, 1}) {
      rhs = transpose.getInput1();
      transposeB = true;
    }
    // The frontend's marks (qnt.float_in_pytorch) stay with the op, as with
    // every lifted op (read before `op` is erased).
    DictionaryAttr marks = op->getDiscardableAttrDictionary();
    auto matmul = rewriter.replaceOpWithNewOp<BatchMatmulOp>(
        op, op.getType(), lhs, rhs, transposeB);
    matmul->setDiscardableAttrs(marks);
    return success();
  }
};

/// Lifts the addition of two computed tensors of one shape (a residual
/// connection; PyTorch's FloatFunctional.add) into `qnt.add`. Adding a
/// constant is a bias, left to FoldChannelAdd.
struct LiftAdd : OpRewritePattern<tosa::AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::AddOp op,
                                PatternRewriter &rewriter) const override {
    Value lhs = op.getInput1(), rhs = op.getInput2();
    if (isInFloatComposite(op))
      return rewriter.notifyMatchFailure(op, "inside a float composite");
    if (!isF32Tensor(lhs) || lhs.getType() != rhs.getType() ||
        lhs.getType() != op.getType())
      return rewriter.notifyMatchFailure(op, "not a same-shape f32 add");
    if (matchPattern(lhs, m_Constant()) || matchPattern(rhs, m_Constant()))
      return rewriter.notifyMatchFailure(op, "adds a constant");
    // The frontend's marks (qnt.float_in_pytorch) stay with the op.
    DictionaryAttr marks = op->getDiscardableAttrDictionary();
    auto add = rewriter.replaceOpWithNewOp<AddOp>(op, op.getType(), lhs, rhs,
                                                  Activation::none);
    add->setDiscardableAttrs(marks);
    return success();
  }
};

/// Lifts the product of two computed tensors (squeeze-excite scaling, a
/// gate times a value) into `qnt.mul`. A product inside one unary function
/// (hardswish's `x * relu6(x + 3)`, SiLU's `x * sigmoid(x)`) stays: it is
/// tabulated with the rest of the function.
struct LiftMul : OpRewritePattern<tosa::MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::MulOp op,
                                PatternRewriter &rewriter) const override {
    Value lhs = op.getInput1(), rhs = op.getInput2();
    auto type = dyn_cast<RankedTensorType>(op.getType());
    if (isInFloatComposite(op))
      return rewriter.notifyMatchFailure(op, "inside a float composite");
    if (!isZeroConstant(op.getShift()) || !isF32Tensor(lhs) ||
        !isF32Tensor(rhs) || !type || !type.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "not an f32 multiply");
    if (matchPattern(lhs, m_Constant()) || matchPattern(rhs, m_Constant()))
      return rewriter.notifyMatchFailure(op, "multiplies by a constant");
    if (getUnaryFunction(op.getResult()))
      return rewriter.notifyMatchFailure(op, "part of a unary function");
    // The frontend's marks (qnt.float_in_pytorch) stay with the op.
    DictionaryAttr marks = op->getDiscardableAttrDictionary();
    auto mul = rewriter.replaceOpWithNewOp<MulOp>(op, op.getType(), lhs, rhs,
                                                  Activation::none);
    mul->setDiscardableAttrs(marks);
    return success();
  }
};

/// reshape(reshape(x)) -> reshape(x), and a reshape to the same type -> x:
/// the reshapes around a lifted linear layer cancel. (TOSA's own folders do
/// this, but this pass runs without folding.)
struct CollapseReshapes : OpRewritePattern<tosa::ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    Value source = op.getInput1();
    if (auto inner = source.getDefiningOp<tosa::ReshapeOp>())
      source = inner.getInput1();
    if (source.getType() == op.getType()) {
      rewriter.replaceOp(op, source);
      return success();
    }
    if (source == op.getInput1())
      return rewriter.notifyMatchFailure(op, "nothing to collapse");
    rewriter.modifyOpInPlace(op, [&] { op.getInput1Mutable().set(source); });
    return success();
  }
};

/// A weighted compute op (float, constant weights, no activation yet) that
/// `value` is the single result of, used only once: the op an elementwise
/// multiply / add after it may be folded into.
static QuantizableOpInterface getFoldableProducer(Value value) {
  auto op = value.getDefiningOp<QuantizableOpInterface>();
  if (!op || !op->hasOneUse() || !op.getWeightOperand() ||
      !op.getBiasOperand() || op.getFusedActivation() != Activation::none ||
      !isF32Tensor(op->getResult(0)))
    return nullptr;
  return op;
}

/// The per-channel values of a constant that broadcasts along the channel
/// (last) axis of a `channels`-wide result: shape [1, ..., 1, C] or all ones.
static std::optional<std::vector<float>>
getPerChannelConstant(Value value, int64_t channels) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.hasStaticShape())
    return std::nullopt;
  ArrayRef<int64_t> shape = type.getShape();
  if (llvm::any_of(shape.drop_back(), [](int64_t d) { return d != 1; }))
    return std::nullopt;
  std::optional<std::vector<float>> values = getConstantFloats(value);
  if (!values)
    return std::nullopt;
  if (values->size() == 1)
    return std::vector<float>(channels, (*values)[0]);
  if ((int64_t)values->size() != channels)
    return std::nullopt;
  return values;
}

/// Finds the (producer, per-channel constant) pair of a binary elementwise op
/// in either operand order.
static std::pair<QuantizableOpInterface, std::optional<std::vector<float>>>
matchProducerAndChannelConstant(Value lhs, Value rhs) {
  for (auto [a, b] : {std::pair(lhs, rhs), std::pair(rhs, lhs)}) {
    QuantizableOpInterface producer = getFoldableProducer(a);
    if (!producer)
      continue;
    int64_t axis = producer.getResultChannelAxis();
    int64_t channels =
        cast<ShapedType>(producer->getResult(0).getType()).getDimSize(axis);
    if (auto values = getPerChannelConstant(b, channels))
      return {producer, values};
  }
  return {nullptr, std::nullopt};
}

/// Replaces the weight and bias operands of `op` by new constants.
static void setWeightAndBias(PatternRewriter &rewriter,
                             QuantizableOpInterface op, ArrayRef<float> weight,
                             ArrayRef<float> bias) {
  Location loc = op.getLoc();
  OpOperand *w = op.getWeightOperand(), *b = op.getBiasOperand();
  auto wType = cast<ShapedType>(w->get().getType());
  auto bType = cast<ShapedType>(b->get().getType());
  Value newW = createF32Constant(rewriter, loc, wType.getShape(), weight);
  Value newB = createF32Constant(rewriter, loc, bType.getShape(), bias);
  rewriter.modifyOpInPlace(op, [&] {
    w->set(newW);
    b->set(newB);
  });
}

/// Folds `tosa.mul(op, per-channel constant)` into op's weights and bias.
struct FoldChannelMul : OpRewritePattern<tosa::MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::MulOp mul,
                                PatternRewriter &rewriter) const override {
    if (!isZeroConstant(mul.getShift()))
      return rewriter.notifyMatchFailure(mul, "non-zero shift");
    if (isScalarStepOfUnaryFunction(mul))
      return rewriter.notifyMatchFailure(mul, "inside a unary function");
    auto [op, scale] =
        matchProducerAndChannelConstant(mul.getInput1(), mul.getInput2());
    if (!op)
      return rewriter.notifyMatchFailure(
          mul, "not a foldable compute op times a per-channel constant");
    auto weight = getConstantFloats(op.getWeightOperand()->get());
    auto bias = getConstantFloats(op.getBiasOperand()->get());
    if (!weight || !bias)
      return rewriter.notifyMatchFailure(mul, "weight or bias not constant");
    if (op->getResult(0).getType() != mul.getType())
      return rewriter.notifyMatchFailure(mul, "multiply broadcasts");

    int64_t channels = scale->size();
    int64_t perChannel = weight->size() / channels;
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t i = 0; i < perChannel; ++i)
        (*weight)[c * perChannel + i] *= (*scale)[c];
      (*bias)[c] *= (*scale)[c];
    }
    setWeightAndBias(rewriter, op, *weight, *bias);
    rewriter.replaceOp(mul, op->getResult(0));
    return success();
  }
};

/// Folds `tosa.add(op, per-channel constant)` into op's bias.
struct FoldChannelAdd : OpRewritePattern<tosa::AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::AddOp add,
                                PatternRewriter &rewriter) const override {
    if (isScalarStepOfUnaryFunction(add))
      return rewriter.notifyMatchFailure(add, "inside a unary function");
    auto [op, shift] =
        matchProducerAndChannelConstant(add.getInput1(), add.getInput2());
    if (!op)
      return rewriter.notifyMatchFailure(
          add, "not a foldable compute op plus a per-channel constant");
    auto weight = getConstantFloats(op.getWeightOperand()->get());
    auto bias = getConstantFloats(op.getBiasOperand()->get());
    if (!weight || !bias)
      return rewriter.notifyMatchFailure(add, "weight or bias not constant");
    if (op->getResult(0).getType() != add.getType())
      return rewriter.notifyMatchFailure(add, "add broadcasts");

    for (size_t c = 0; c < shift->size(); ++c)
      (*bias)[c] += (*shift)[c];
    setWeightAndBias(rewriter, op, *weight, *bias);
    rewriter.replaceOp(add, op->getResult(0));
    return success();
  }
};

/// Absorbs `tosa.clamp` after a compute op as relu, relu6 or clamp, also
/// through a single-use reshape between them (a lifted linear layer of a
/// rank-3 activation: `clamp(reshape(qnt.linear))`; an elementwise clamp
/// commutes with the reshape).
struct AbsorbClamp : OpRewritePattern<tosa::ClampOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::ClampOp clamp,
                                PatternRewriter &rewriter) const override {
    Value input = clamp.getInput();
    if (auto reshape = input.getDefiningOp<tosa::ReshapeOp>();
        reshape && reshape->hasOneUse())
      input = reshape.getInput1();
    auto op = input.getDefiningOp<QuantizableOpInterface>();
    if (!op || !op->hasOneUse() ||
        op.getFusedActivation() != Activation::none ||
        !isF32Tensor(clamp.getInput()))
      return rewriter.notifyMatchFailure(clamp,
                                         "input is not a single-use compute "
                                         "op without activation");
    auto minAttr = dyn_cast<FloatAttr>(clamp.getMinValAttr());
    auto maxAttr = dyn_cast<FloatAttr>(clamp.getMaxValAttr());
    if (!minAttr || !maxAttr)
      return rewriter.notifyMatchFailure(clamp, "not a float clamp");
    float lo = minAttr.getValueAsDouble(), hi = maxAttr.getValueAsDouble();

    Activation activation = Activation::clamp;
    if (lo == 0.0f && hi >= std::numeric_limits<float>::max())
      activation = Activation::relu;
    else if (lo == 0.0f && hi == 6.0f)
      activation = Activation::relu6;
    if (!op.canFuseActivation(activation))
      return rewriter.notifyMatchFailure(clamp, "activation not fusable");
    rewriter.modifyOpInPlace(op, [&] {
      if (activation == Activation::clamp)
        op.setFusedActivation(activation, lo, hi);
      else
        op.setFusedActivation(activation, std::nullopt, std::nullopt);
    });
    rewriter.replaceOp(clamp, clamp.getInput());
    return success();
  }
};

struct QntFusePass : qnt::impl::QntFusePassBase<QntFusePass> {
  void runOnOperation() override {
    // Folding materializes constants, splats included.
    if (failed(verifyConstantSizes(getOperation())))
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    patterns.add<LiftConvolution<tosa::Conv2DOp>,
                 LiftConvolution<tosa::DepthwiseConv2DOp>, LiftMatmulLinear,
                 LiftBatchMatmul, LiftAdd, LiftMul, CollapseReshapes,
                 FoldChannelMul, FoldChannelAdd, AbsorbClamp>(&getContext());
    if (failed(
            applyPatternsWithoutFolding(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
