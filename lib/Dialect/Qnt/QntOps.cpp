//===- QntOps.cpp - qnt operations and their verifiers --------------------===//

#include "qnt/Dialect/Qnt/QntOps.h"
// Only for the histogram limits the runtime shares (header-only).
#include "qnt/Calibration/Stats.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace qnt;
namespace quant = mlir::quant;

#include "qnt/Dialect/Qnt/QntInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "qnt/Dialect/Qnt/QntOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

std::pair<float, float>
qnt::getActivationBounds(Activation activation, std::optional<float> clampMin,
                         std::optional<float> clampMax) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  switch (activation) {
  case Activation::none:
    return {-inf, inf};
  case Activation::relu:
    return {0.0f, inf};
  case Activation::relu6:
    return {0.0f, 6.0f};
  case Activation::clamp:
    return {clampMin.value_or(-inf), clampMax.value_or(inf)};
  }
  llvm_unreachable("unknown activation");
}

bool qnt::isQuantizedTensor(Type type) {
  return isa<quant::QuantizedType>(getElementTypeOrSelf(type));
}

LogicalResult qnt::verifyZeroPointsInStorageRange(Operation *op) {
  auto check = [&](Type type) -> LogicalResult {
    auto qtype = dyn_cast<quant::QuantizedType>(getElementTypeOrSelf(type));
    if (!qtype)
      return success();
    SmallVector<int64_t> zeroPoints;
    if (auto perTensor = dyn_cast<quant::UniformQuantizedType>(qtype))
      zeroPoints.push_back(perTensor.getZeroPoint());
    else if (auto perAxis = dyn_cast<quant::UniformQuantizedPerAxisType>(qtype))
      llvm::append_range(zeroPoints, perAxis.getZeroPoints());
    for (int64_t z : zeroPoints)
      if (z < qtype.getStorageTypeMin() || z > qtype.getStorageTypeMax())
        return op->emitOpError("zero point ")
               << z << " of " << type << " is outside its storage range ["
               << qtype.getStorageTypeMin() << ", " << qtype.getStorageTypeMax()
               << "]";
    return success();
  };
  for (Type type : op->getOperandTypes())
    if (failed(check(type)))
      return failure();
  for (Type type : op->getResultTypes())
    if (failed(check(type)))
      return failure();
  return success();
}

/// Checks the fused activation attributes shared by the compute ops.
static LogicalResult verifyActivation(Operation *op, Activation activation,
                                      std::optional<float> clampMin,
                                      std::optional<float> clampMax) {
  bool hasBounds = clampMin || clampMax;
  if (activation != Activation::clamp) {
    if (hasBounds)
      return op->emitOpError("clamp_min/clamp_max are only allowed with "
                             "activation = clamp");
    return success();
  }
  if (!clampMin || !clampMax)
    return op->emitOpError("activation = clamp requires clamp_min and "
                           "clamp_max");
  if (std::isnan(*clampMin) || std::isnan(*clampMax) || *clampMin > *clampMax)
    return op->emitOpError("clamp_min (")
           << *clampMin << ") must not exceed clamp_max (" << *clampMax << ")";
  return success();
}

/// A per-tensor uniform quantized type expressed in f32, or null.
static quant::UniformQuantizedType getPerTensorType(Type type) {
  auto qtype =
      dyn_cast<quant::UniformQuantizedType>(getElementTypeOrSelf(type));
  if (qtype && !qtype.getExpressedType().isF32())
    return nullptr;
  return qtype;
}

/// Type rules shared by conv2d and linear: all float, or quantized input and
/// output per tensor, a symmetric i8 weight (per tensor or per output
/// channel on `weightAxis`) and an i32 or f32 bias.
static LogicalResult verifyWeightedOpTypes(Operation *op, Value input,
                                           Value weight, Value bias,
                                           Value output, int64_t weightAxis,
                                           bool dynamic) {
  Type inElt = getElementTypeOrSelf(input.getType());
  Type wElt = getElementTypeOrSelf(weight.getType());
  Type outElt = getElementTypeOrSelf(output.getType());
  Type biasElt = bias ? getElementTypeOrSelf(bias.getType()) : Type();
  if (failed(verifyZeroPointsInStorageRange(op)))
    return failure();

  if (dynamic) {
    // Before --qnt-convert the weight is still float.
    if (!inElt.isF32() || !outElt.isF32() ||
        !(wElt.isF32() || isQuantizedTensor(weight.getType())))
      return op->emitOpError("dynamic quantization needs an f32 input and "
                             "output and an f32 or quantized weight");
    if (biasElt && !biasElt.isF32())
      return op->emitOpError("dynamic quantization needs an f32 bias, got ")
             << biasElt;
    if (wElt.isF32())
      return success();
  } else if (inElt.isF32() && wElt.isF32() && outElt.isF32()) {
    if (biasElt && !biasElt.isF32())
      return op->emitOpError("float op requires an f32 bias, got ") << biasElt;
    return success();
  } else if (!isQuantizedTensor(input.getType()) ||
             !isQuantizedTensor(weight.getType()) ||
             !isQuantizedTensor(output.getType())) {
    return op->emitOpError("input, weight and output must be all f32 or all "
                           "quantized");
  } else if (!getPerTensorType(input.getType())) {
    return op->emitOpError("quantized input must be per-tensor "
                           "!quant.uniform expressed in f32");
  } else if (!getPerTensorType(output.getType())) {
    return op->emitOpError("quantized output must be per-tensor "
                           "!quant.uniform expressed in f32");
  }

  auto wq = cast<quant::QuantizedType>(wElt);
  if (!wq.isSigned() || wq.getStorageTypeIntegralWidth() != 8)
    return op->emitOpError("quantized weight must have signed i8 storage");
  if (auto perTensor = dyn_cast<quant::UniformQuantizedType>(wq)) {
    if (perTensor.getZeroPoint() != 0)
      return op->emitOpError("quantized weight must be symmetric (zero "
                             "point 0), got ")
             << perTensor.getZeroPoint();
  } else if (auto perAxis = dyn_cast<quant::UniformQuantizedPerAxisType>(wq)) {
    if (perAxis.getQuantizedDimension() != weightAxis)
      return op->emitOpError("per-axis weight must be quantized along its "
                             "output-channel axis ")
             << weightAxis << ", got " << perAxis.getQuantizedDimension();
    if (llvm::any_of(perAxis.getZeroPoints(), [](int64_t z) { return z; }))
      return op->emitOpError("quantized weight must be symmetric (zero "
                             "points 0)");
  } else {
    return op->emitOpError("quantized weight must be !quant.uniform");
  }
  if (!dynamic && biasElt && !biasElt.isInteger(32) && !biasElt.isF32())
    return op->emitOpError("quantized op requires an i32 or f32 bias, got ")
           << biasElt;
  return success();
}

static LogicalResult verifyBiasShape(Operation *op, Value bias,
                                     int64_t channels) {
  if (!bias)
    return success();
  auto type = cast<RankedTensorType>(bias.getType());
  if (type.getRank() != 1 || type.getDimSize(0) != channels)
    return op->emitOpError("bias must have shape [")
           << channels << "], got " << type;
  return success();
}

static LogicalResult verifyRank(Operation *op, StringRef what, Value value,
                                int64_t rank) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() != rank)
    return op->emitOpError()
           << what << " must have rank " << rank << ", got " << type;
  if (!type.hasStaticShape())
    return op->emitOpError()
           << what << " must have a static shape, got " << type;
  return success();
}

/// What conv2d and linear check after their shapes: bias, activation and
/// types.
/// The bias, the activation and the types of conv2d / linear; a dynamically
/// quantized one's `dynamic_qspec` too.
template <typename OpTy>
static LogicalResult verifyWeightedOpRest(OpTy op, int64_t channels) {
  QSpecAttr dynamic = op.getDynamicQspecAttr();
  if (dynamic &&
      (dynamic.getDtype() != QuantDType::u8 || dynamic.isPerChannel() ||
       dynamic.getScheme() != QuantScheme::affine))
    return op.emitOpError("dynamic_qspec must be u8, affine and per tensor");
  if (failed(verifyBiasShape(op, op.getBias(), channels)) ||
      failed(verifyActivation(op, op.getActivation(), op.getClampMinValue(),
                              op.getClampMaxValue())))
    return failure();
  return verifyWeightedOpTypes(op, op.getInput(), op.getWeight(), op.getBias(),
                               op.getOutput(), /*weightAxis=*/0,
                               /*dynamic=*/bool(dynamic));
}

//===----------------------------------------------------------------------===//
// ObserveOp / FakeQuantOp
//===----------------------------------------------------------------------===//

static LogicalResult verifyAxis(Operation *op, QSpecAttr qspec, Type type) {
  if (!qspec.getAxis())
    return success();
  int64_t rank = cast<RankedTensorType>(type).getRank();
  if (*qspec.getAxis() >= rank)
    return op->emitOpError("qspec axis ")
           << *qspec.getAxis() << " is out of range for rank " << rank;
  return success();
}

LogicalResult ObserveOp::verify() {
  if (!isa<RankedTensorType>(getInput().getType()))
    return emitOpError("requires a ranked tensor");
  if (getId().empty())
    return emitOpError("requires a non-empty id");
  ObserverKind kind = getKind();
  bool movingAverage = kind == ObserverKind::moving_average_minmax ||
                       kind == ObserverKind::moving_average_per_channel_minmax;
  if (getAveragingConstant()) {
    if (!movingAverage)
      return emitOpError("averaging_constant is only allowed on "
                         "moving-average observers");
    float c = getAveragingConstant()->convertToFloat();
    if (!(c > 0.0f && c <= 1.0f))
      return emitOpError("averaging_constant must be in (0, 1], got ") << c;
  }
  if ((getBins() || getUpsampleRate()) && !isHistogramKind())
    return emitOpError("bins/upsample_rate are only allowed on histogram, "
                       "percentile and entropy observers");
  // The runtime accepts at most 2^24 of each (qnt_rt_observe). The
  // accessors return the attributes' bits unsigned.
  if (getBins()) {
    int64_t bins = static_cast<int64_t>(*getBins());
    if (bins < 2 || bins > kMaxHistogramBins)
      return emitOpError("bins must be in [2, ")
             << kMaxHistogramBins << "], got " << bins;
  }
  if (getUpsampleRate()) {
    int64_t rate = static_cast<int64_t>(*getUpsampleRate());
    if (rate < 1 || rate > kMaxUpsampleRate)
      return emitOpError("upsample_rate must be in [1, ")
             << kMaxUpsampleRate << "], got " << rate;
  }
  if (getPercentile()) {
    if (kind != ObserverKind::percentile)
      return emitOpError("percentile is only allowed on percentile "
                         "observers");
    float p = getPercentile()->convertToFloat();
    if (!(p > 50.0f && p <= 100.0f))
      return emitOpError("percentile must be in (50, 100], got ") << p;
  }
  bool fixed = kind == ObserverKind::fixed_qparams;
  if (fixed != (getFixedScale() && getFixedZeroPoint()) ||
      (!fixed && (getFixedScale() || getFixedZeroPoint())))
    return emitOpError("fixed_scale and fixed_zero_point are required on, "
                       "and only allowed on, fixed_qparams observers");
  if (fixed) {
    double scale = getFixedScale()->convertToDouble();
    if (!(scale > 0.0) || std::isinf(scale))
      return emitOpError("fixed_scale must be positive and finite, got ")
             << scale;
    int64_t zp = *getFixedZeroPoint();
    if (zp < getQspec().getQuantMin() || zp > getQspec().getQuantMax())
      return emitOpError("fixed_zero_point ")
             << zp << " is outside the qspec range ["
             << getQspec().getQuantMin() << ", " << getQspec().getQuantMax()
             << "]";
  }
  bool perChannelKind = kind == ObserverKind::per_channel_minmax ||
                        kind == ObserverKind::moving_average_per_channel_minmax;
  if (perChannelKind != getQspec().isPerChannel())
    return emitOpError("observer kind '")
           << stringifyObserverKind(getKind()) << "' "
           << (perChannelKind ? "requires" : "must not have")
           << " a qspec axis";
  return verifyAxis(*this, getQspec(), getInput().getType());
}

LogicalResult FakeQuantOp::verify() {
  auto type = dyn_cast<RankedTensorType>(getInput().getType());
  if (!type)
    return emitOpError("requires a ranked tensor");
  if (failed(verifyAxis(*this, getQspec(), type)))
    return failure();
  size_t expected = 1;
  if (auto axis = getQspec().getAxis())
    expected = type.getDimSize(*axis);
  if (getScale().size() != expected || getZeroPoint().size() != expected)
    return emitOpError("expects ")
           << expected << " scale(s) and zero point(s), got "
           << getScale().size() << " and " << getZeroPoint().size();
  for (float s : getScale())
    if (!(s > 0.0f) || std::isinf(s))
      return emitOpError("scales must be positive and finite, got ") << s;
  for (int64_t z : getZeroPoint())
    if (z < getQspec().getQuantMin() || z > getQspec().getQuantMax())
      return emitOpError("zero point ")
             << z << " is outside the quant range [" << getQspec().getQuantMin()
             << ", " << getQspec().getQuantMax() << "]";
  return success();
}

quant::QuantizedType
FakeQuantOp::getQuantizedElementType(bool clampToQuantRange) {
  QSpecAttr qspec = getQspec();
  unsigned flags = qspec.isSigned() ? quant::QuantizationFlags::Signed : 0;
  Builder b(getContext());
  Type storage = b.getI8Type(), f32 = b.getF32Type();
  int64_t lo = qspec.isSigned() ? -128 : 0, hi = qspec.isSigned() ? 127 : 255;
  if (clampToQuantRange)
    lo = qspec.getQuantMin(), hi = qspec.getQuantMax();
  SmallVector<double> scales(getScale().begin(), getScale().end());
  if (auto axis = qspec.getAxis())
    return quant::UniformQuantizedPerAxisType::get(
        flags, storage, f32, scales, getZeroPoint(), *axis, lo, hi);
  return quant::UniformQuantizedType::get(flags, storage, f32, scales[0],
                                          getZeroPoint()[0], lo, hi);
}

//===----------------------------------------------------------------------===//
// Conv2DOp
//===----------------------------------------------------------------------===//

LogicalResult Conv2DOp::verify() {
  if (failed(verifyRank(*this, "input", getInput(), 4)) ||
      failed(verifyRank(*this, "weight", getWeight(), 4)) ||
      failed(verifyRank(*this, "output", getOutput(), 4)))
    return failure();
  if (getStride().size() != 2 || getDilation().size() != 2 ||
      getPad().size() != 4)
    return emitOpError("expects 2 strides, 2 dilations and 4 paddings "
                       "[top, bottom, left, right]");
  if (llvm::any_of(getStride(), [](int64_t s) { return s < 1; }) ||
      llvm::any_of(getDilation(), [](int64_t d) { return d < 1; }))
    return emitOpError("strides and dilations must be at least 1");
  if (llvm::any_of(getPad(), [](int64_t p) { return p < 0; }))
    return emitOpError("paddings must be non-negative");

  ArrayRef<int64_t> in = getInput().getType().getShape();
  ArrayRef<int64_t> w = getWeight().getType().getShape();
  ArrayRef<int64_t> out = getOutput().getType().getShape();
  int64_t groups = getGroups();
  if (groups < 1 || in[3] % groups || w[0] % groups)
    return emitOpError("groups (")
           << groups << ") must divide the input channels (" << in[3]
           << ") and the output channels (" << w[0] << ")";
  if (w[1] < 1 || w[2] < 1)
    return emitOpError("kernel must be at least 1x1, got ")
           << w[1] << "x" << w[2];
  if (w[3] != in[3] / groups)
    return emitOpError("weight (OHWI) has ")
           << w[3] << " input channels, expected " << in[3] / groups;

  int64_t expected[4] = {in[0], 0, 0, w[0]};
  for (int i = 0; i < 2; ++i) {
    // Checked: the attributes are user input (a pad of INT64_MAX).
    std::optional<int64_t> padded =
        llvm::checkedAdd(in[1 + i], getPad()[2 * i]);
    if (padded)
      padded = llvm::checkedAdd(*padded, getPad()[2 * i + 1]);
    std::optional<int64_t> window =
        llvm::checkedMul(getDilation()[i], w[1 + i] - 1);
    if (window)
      window = llvm::checkedAdd(*window, int64_t(1));
    if (!padded || !window)
      return emitOpError("padded input or dilated kernel size overflows "
                         "int64 in spatial dimension ")
             << i;
    if (*padded < *window)
      return emitOpError("kernel window (")
             << *window << ") exceeds the padded input (" << *padded << ")";
    expected[1 + i] = (*padded - *window) / getStride()[i] + 1;
  }
  if (ArrayRef<int64_t>(expected) != out)
    return emitOpError("output shape must be [")
           << expected[0] << ", " << expected[1] << ", " << expected[2] << ", "
           << expected[3] << "], got " << getOutput().getType();
  return verifyWeightedOpRest(*this, /*channels=*/w[0]);
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  if (failed(verifyRank(*this, "input", getInput(), 2)) ||
      failed(verifyRank(*this, "weight", getWeight(), 2)) ||
      failed(verifyRank(*this, "output", getOutput(), 2)))
    return failure();
  ArrayRef<int64_t> in = getInput().getType().getShape();
  ArrayRef<int64_t> w = getWeight().getType().getShape();
  ArrayRef<int64_t> out = getOutput().getType().getShape();
  if (w[1] != in[1])
    return emitOpError("weight [N, K] has K = ")
           << w[1] << ", but the input has K = " << in[1];
  if (out[0] != in[0] || out[1] != w[0])
    return emitOpError("output shape must be [")
           << in[0] << ", " << w[0] << "], got " << getOutput().getType();
  if (getDynamicQspecAttr() && getActivation() != Activation::none &&
      getActivation() != Activation::relu)
    return emitOpError("a dynamically quantized linear fuses only relu");
  return verifyWeightedOpRest(*this, /*channels=*/w[0]);
}

//===----------------------------------------------------------------------===//
// AddOp
//===----------------------------------------------------------------------===//

/// Type rules of the binary elementwise ops: all f32, or all per-tensor
/// !quant.uniform with one storage type.
static LogicalResult verifyBinaryOpTypes(Operation *op, Type lhs, Type rhs,
                                         Type out) {
  if (getElementTypeOrSelf(lhs).isF32() && getElementTypeOrSelf(rhs).isF32() &&
      getElementTypeOrSelf(out).isF32())
    return success();
  auto lq = getPerTensorType(lhs), rq = getPerTensorType(rhs),
       oq = getPerTensorType(out);
  if (!lq || !rq || !oq)
    return op->emitOpError("operands and result must be all f32 or all "
                           "per-tensor !quant.uniform expressed in f32");
  if (lq.getStorageType() != oq.getStorageType() ||
      rq.getStorageType() != oq.getStorageType() ||
      lq.isSigned() != oq.isSigned() || rq.isSigned() != oq.isSigned())
    return op->emitOpError("quantized operands and result must share one "
                           "storage type");
  if (oq.getStorageTypeIntegralWidth() != 8)
    return op->emitOpError("quantized operands must have 8-bit storage");
  return success();
}

LogicalResult AddOp::verify() {
  Type lhs = getLhs().getType(), rhs = getRhs().getType(),
       out = getOutput().getType();
  if (cast<ShapedType>(lhs).getShape() != cast<ShapedType>(rhs).getShape() ||
      cast<ShapedType>(lhs).getShape() != cast<ShapedType>(out).getShape())
    return emitOpError("operands and result must have the same shape");
  if (!canFuseActivation(getActivation()))
    return emitOpError("activation must be none or relu, got ")
           << stringifyActivation(getActivation());
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  return verifyBinaryOpTypes(*this, lhs, rhs, out);
}

//===----------------------------------------------------------------------===//
// MulOp
//===----------------------------------------------------------------------===//

LogicalResult MulOp::verify() {
  auto lhs = cast<ShapedType>(getLhs().getType()),
       rhs = cast<ShapedType>(getRhs().getType()),
       out = cast<ShapedType>(getOutput().getType());
  if (lhs.getRank() != out.getRank() || rhs.getRank() != out.getRank())
    return emitOpError("operands and result must have the same rank");
  for (int64_t d = 0; d < out.getRank(); ++d)
    for (ShapedType operand : {lhs, rhs})
      if (operand.getDimSize(d) != out.getDimSize(d) &&
          operand.getDimSize(d) != 1)
        return emitOpError("operand dimension ")
               << d << " (" << operand.getDimSize(d)
               << ") must be 1 or the result's (" << out.getDimSize(d) << ")";
  if (!canFuseActivation(getActivation()))
    return emitOpError("activation must be none or relu, got ")
           << stringifyActivation(getActivation());
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  return verifyBinaryOpTypes(*this, lhs, rhs, out);
}

//===----------------------------------------------------------------------===//
// BatchMatmulOp
//===----------------------------------------------------------------------===//

LogicalResult BatchMatmulOp::verify() {
  auto lhs = cast<RankedTensorType>(getLhs().getType()),
       rhs = cast<RankedTensorType>(getRhs().getType()),
       out = cast<RankedTensorType>(getOutput().getType());
  for (auto [what, type] : {std::pair<StringRef, RankedTensorType>("lhs", lhs),
                            {"rhs", rhs},
                            {"result", out}})
    if (type.getRank() != 3 || !type.hasStaticShape())
      return emitOpError() << what << " must be a static rank-3 tensor, got "
                           << type;
  int64_t batch = lhs.getDimSize(0), m = lhs.getDimSize(1),
          k = lhs.getDimSize(2);
  int64_t rk = rhs.getDimSize(getTransposeB() ? 2 : 1),
          n = rhs.getDimSize(getTransposeB() ? 1 : 2);
  if (rhs.getDimSize(0) != batch || rk != k)
    return emitOpError("rhs must be [")
           << batch << ", " << (getTransposeB() ? "N, " : "") << k
           << (getTransposeB() ? "" : ", N") << "], got " << rhs;
  if (out.getShape() != ArrayRef<int64_t>{batch, m, n})
    return emitOpError("result must be [")
           << batch << ", " << m << ", " << n << "], got " << out;
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  return verifyBinaryOpTypes(*this, lhs, rhs, out);
}

//===----------------------------------------------------------------------===//
// TableOp, AvgPool2DOp
//===----------------------------------------------------------------------===//

/// A per-tensor quantized type with 8-bit storage, or null.
static quant::UniformQuantizedType get8BitType(Type type) {
  auto qtype = getPerTensorType(type);
  return qtype && qtype.getStorageTypeIntegralWidth() == 8 ? qtype : nullptr;
}

LogicalResult TableOp::verify() {
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  if (!get8BitType(getInput().getType()) || !get8BitType(getOutput().getType()))
    return emitOpError("input and result must be per-tensor !quant.uniform "
                       "with 8-bit storage");
  if (getTable().size() != 256)
    return emitOpError("table must have 256 entries, got ")
           << getTable().size();
  return success();
}

LogicalResult AvgPool2DOp::verify() {
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  auto in = get8BitType(getInput().getType()),
       out = get8BitType(getOutput().getType());
  if (!in || !out)
    return emitOpError("input and result must be per-tensor !quant.uniform "
                       "with 8-bit storage");
  if (in.getStorageType() != out.getStorageType() ||
      in.isSigned() != out.isSigned())
    return emitOpError("input and result must share one storage type");
  auto inType = cast<ShapedType>(getInput().getType()),
       outType = cast<ShapedType>(getOutput().getType());
  if (inType.getRank() != 4 || outType.getRank() != 4 ||
      !inType.hasStaticShape() || !outType.hasStaticShape())
    return emitOpError("input and result must be static NHWC tensors");
  if (getKernel().size() != 2 || getStride().size() != 2)
    return emitOpError("kernel and stride must have 2 entries");
  for (int i = 0; i < 2; ++i) {
    int64_t k = getKernel()[i], s = getStride()[i];
    if (k < 1 || s < 1)
      return emitOpError("kernel and stride must be positive");
    int64_t expected = (inType.getDimSize(1 + i) - k) / s + 1;
    if (k > inType.getDimSize(1 + i) || outType.getDimSize(1 + i) != expected)
      return emitOpError("result dimension ")
             << 1 + i << " must be " << expected << " for kernel " << k
             << " and stride " << s;
  }
  if (outType.getDimSize(0) != inType.getDimSize(0) ||
      outType.getDimSize(3) != inType.getDimSize(3))
    return emitOpError("result batch and channels must be the input's");
  return success();
}

LogicalResult BatchNormOp::verify() {
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  auto in = get8BitType(getInput().getType()),
       out = get8BitType(getOutput().getType());
  if (!in || !out || in.isSigned() != out.isSigned())
    return emitOpError("input and result must be per-tensor !quant.uniform "
                       "with one 8-bit storage type");
  auto type = cast<ShapedType>(getInput().getType());
  int64_t channels = type.getRank() ? type.getShape().back() : 1;
  if ((int64_t)getScale().size() != channels ||
      (int64_t)getShift().size() != channels)
    return emitOpError("expects ")
           << channels << " scales and shifts (the last dimension), got "
           << getScale().size() << " and " << getShift().size();
  for (float v : llvm::concat<const float>(getScale(), getShift()))
    if (!std::isfinite(v))
      return emitOpError("scales and shifts must be finite, got ") << v;
  if (getClampMin() && getClampMax() &&
      !(getClampMin()->convertToFloat() <= getClampMax()->convertToFloat()))
    return emitOpError("clamp_min must not exceed clamp_max");
  return success();
}

LogicalResult ResizeOp::verify() {
  if (failed(verifyZeroPointsInStorageRange(*this)))
    return failure();
  auto in = get8BitType(getInput().getType());
  if (!in || getInput().getType().getElementType() !=
                 getOutput().getType().getElementType())
    return emitOpError("input and result must have one per-tensor "
                       "!quant.uniform type with 8-bit storage");
  auto inType = cast<ShapedType>(getInput().getType()),
       outType = cast<ShapedType>(getOutput().getType());
  if (inType.getRank() != 4 || outType.getRank() != 4 ||
      !inType.hasStaticShape() || !outType.hasStaticShape())
    return emitOpError("input and result must be static NHWC tensors");
  if (outType.getDimSize(0) != inType.getDimSize(0) ||
      outType.getDimSize(3) != inType.getDimSize(3))
    return emitOpError("result batch and channels must be the input's");
  if (getScale().size() != 2)
    return emitOpError("scale must have 2 entries (H, W)");
  for (int i = 0; i < 2; ++i) {
    float scale = getScale()[i];
    if (!std::isfinite(scale) || scale < 0 || scale > inType.getDimSize(1 + i))
      return emitOpError("scale ") << i << " must be finite and in [0, "
                                   << inType.getDimSize(1 + i) << "]";
    if (inType.getDimSize(1 + i) < 1 || outType.getDimSize(1 + i) < 1)
      return emitOpError("input and result must not be empty");
  }
  return success();
}
