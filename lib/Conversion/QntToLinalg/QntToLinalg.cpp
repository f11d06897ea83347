//===- QntToLinalg.cpp - --qnt-lower-to-linalg ----------------------------===//
//
// Integer codegen: the quantized ops that no kernel library serves become
// linalg.generic ops on the storage integers, with the arithmetic of
// docs/numerics.md in their bodies. Upstream passes fuse and vectorize them.
//
//===----------------------------------------------------------------------===//

#include "qnt/Conversion/Passes.h"
#include "qnt/Dialect/Qnt/QntOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <type_traits>

namespace qnt {
#define GEN_PASS_DEF_QNTLOWERTOLINALGPASS
#include "qnt/Conversion/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

namespace {

static quant::UniformQuantizedType getUniformType(Type type) {
  return cast<quant::UniformQuantizedType>(getElementTypeOrSelf(type));
}

/// `quant.scast` of a quantized tensor to its storage type.
static Value toStorage(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  return quant::StorageCastOp::create(
      b, loc, type.clone(getUniformType(type).getStorageType()), value);
}

/// `quant.scast` of storage integers back to quantized `type`.
static Value fromStorage(OpBuilder &b, Location loc, Value value, Type type) {
  return quant::StorageCastOp::create(b, loc, type, value);
}

/// An 8-bit storage value as i32 (zero- or sign-extended).
static Value extendToI32(OpBuilder &b, Location loc, Value value,
                         bool isSigned) {
  Type i32 = b.getI32Type();
  if (isSigned)
    return arith::ExtSIOp::create(b, loc, i32, value);
  return arith::ExtUIOp::create(b, loc, i32, value);
}

static Value f32Constant(OpBuilder &b, Location loc, float value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

/// `f32(q - Z) * f32(S)`: dequantize one storage value.
static Value dequantize(OpBuilder &b, Location loc, Value q,
                        quant::UniformQuantizedType type) {
  Value wide = extendToI32(b, loc, q, type.isSigned());
  Value zp = arith::ConstantOp::create(
      b, loc, b.getI32IntegerAttr(type.getZeroPoint()));
  Value centered = arith::SubIOp::create(b, loc, wide, zp);
  Value f = arith::SIToFPOp::create(b, loc, b.getF32Type(), centered);
  return arith::MulFOp::create(
      b, loc, f, f32Constant(b, loc, static_cast<float>(type.getScale())));
}

/// `clamp(rint(v) + Z, lo, hi)` as storage: `v` is already divided by the
/// scale (`withZeroPoint`: `v` already includes Z, and this is
/// `clamp(rint(v), lo, hi)`, which differs at ties when Z is odd). As the
/// runtime's quantizer: clamp to [lo - Z, hi - Z] first (NaN becomes lo -
/// Z), then round half to even with `(v + 1.5 * 2^23) - 1.5 * 2^23`, which
/// is rint for |v| < 2^22 on every ISA (math.roundeven is a libm call
/// without SSE4.1, e.g. for a portable x86-64 library, and keeps the loop
/// scalar).
static Value roundToStorage(OpBuilder &b, Location loc, Value v,
                            quant::UniformQuantizedType type, int64_t lo,
                            std::optional<int64_t> hi = std::nullopt,
                            bool withZeroPoint = false) {
  int64_t zp = withZeroPoint ? 0 : type.getZeroPoint();
  int64_t top = hi.value_or(type.getStorageTypeMax());
  Value r = arith::MaxNumFOp::create(
      b, loc, v, f32Constant(b, loc, static_cast<float>(lo - zp)));
  r = arith::MinNumFOp::create(
      b, loc, r, f32Constant(b, loc, static_cast<float>(top - zp)));
  Value magic = f32Constant(b, loc, 12582912.0f);
  r = arith::SubFOp::create(b, loc, arith::AddFOp::create(b, loc, r, magic),
                            magic);
  Value i = arith::FPToSIOp::create(b, loc, b.getI32Type(), r);
  i = arith::AddIOp::create(
      b, loc, i, arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(zp)));
  return arith::TruncIOp::create(b, loc, type.getStorageType(), i);
}

/// Indexing map of an operand that broadcasts its size-1 dimensions to the
/// result's shape.
static AffineMap getBroadcastMap(MLIRContext *ctx, ShapedType operand,
                                 ShapedType result) {
  SmallVector<AffineExpr> exprs;
  for (int64_t d = 0; d < result.getRank(); ++d)
    exprs.push_back(operand.getDimSize(d) == 1 && result.getDimSize(d) != 1
                        ? getAffineConstantExpr(0, ctx)
                        : getAffineDimExpr(d, ctx));
  return AffineMap::get(result.getRank(), 0, exprs, ctx);
}

/// A parallel linalg.generic making `resultType` from `inputs`, one
/// indexing map each (the result's is the identity); a quantized result is
/// computed on its storage integers and cast back.
static Value
buildElementwise(OpBuilder &b, Location loc, RankedTensorType resultType,
                 ValueRange inputs, ArrayRef<AffineMap> inputMaps,
                 function_ref<void(OpBuilder &, Location, ValueRange)> body) {
  bool quantized = isQuantizedTensor(resultType);
  RankedTensorType type =
      quantized ? resultType.clone(getUniformType(resultType).getStorageType())
                : resultType;
  Value init =
      tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType());
  SmallVector<AffineMap> maps(inputMaps);
  maps.push_back(b.getMultiDimIdentityMap(type.getRank()));
  auto generic = linalg::GenericOp::create(
      b, loc, type, inputs, init, maps,
      SmallVector<utils::IteratorType>(type.getRank(),
                                       utils::IteratorType::parallel),
      body);
  Value result = generic.getResult(0);
  return quantized ? fromStorage(b, loc, result, resultType) : result;
}

/// `qnt.table`: output = table[q - qmin], a tensor.extract from a constant.
struct TableLowering : OpRewritePattern<TableOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(TableOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto in = getUniformType(op.getInput().getType());
    auto resultType = op.getOutput().getType();
    auto tableType = RankedTensorType::get({256}, rewriter.getI8Type());
    Value table = arith::ConstantOp::create(
        rewriter, loc, tableType,
        DenseElementsAttr::get(tableType, op.getTable()));
    AffineMap id = rewriter.getMultiDimIdentityMap(resultType.getRank());
    rewriter.replaceOp(
        op,
        buildElementwise(
            rewriter, loc, resultType, toStorage(rewriter, loc, op.getInput()),
            {id}, [&](OpBuilder &b, Location loc, ValueRange args) {
              Value index = extendToI32(b, loc, args[0], in.isSigned());
              if (in.isSigned())
                index = arith::AddIOp::create(
                    b, loc, index,
                    arith::ConstantOp::create(b, loc,
                                              b.getI32IntegerAttr(128)));
              index =
                  arith::IndexCastOp::create(b, loc, b.getIndexType(), index);
              Value v = tensor::ExtractOp::create(b, loc, table, index);
              linalg::YieldOp::create(b, loc, v);
            }));
    return success();
  }
};

/// `qnt.mul`, with broadcasting: quantized as PyTorch's vectorized
/// `quantized::mul`, `clamp(rint(dq(a) * dq(b) * f32(1/S_out)) + Z_out)`;
/// float as a product.
struct MulLowering : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = op.getContext();
    auto resultType = cast<RankedTensorType>(op.getType());
    auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
    auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
    bool quantized = isQuantizedTensor(resultType);
    bool relu = op.getActivation() == Activation::relu;
    Value lhs = op.getLhs(), rhs = op.getRhs();
    if (quantized) {
      lhs = toStorage(rewriter, loc, lhs);
      rhs = toStorage(rewriter, loc, rhs);
    }
    Value result = buildElementwise(
        rewriter, loc, resultType, ValueRange{lhs, rhs},
        {getBroadcastMap(ctx, lhsType, resultType),
         getBroadcastMap(ctx, rhsType, resultType)},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          if (!quantized) {
            Value p = arith::MulFOp::create(b, loc, args[0], args[1]);
            if (relu)
              p = arith::MaximumFOp::create(b, loc, p,
                                            f32Constant(b, loc, 0.0f));
            linalg::YieldOp::create(b, loc, p);
            return;
          }
          auto out = getUniformType(resultType);
          Value a = dequantize(b, loc, args[0], getUniformType(lhsType));
          Value c = dequantize(b, loc, args[1], getUniformType(rhsType));
          Value p = arith::MulFOp::create(b, loc, a, c);
          p = arith::MulFOp::create(
              b, loc, p,
              f32Constant(b, loc, 1.0f / static_cast<float>(out.getScale())));
          int64_t lo =
              relu ? std::max(out.getZeroPoint(), out.getStorageTypeMin())
                   : out.getStorageTypeMin();
          linalg::YieldOp::create(b, loc, roundToStorage(b, loc, p, out, lo));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// MLAS's QLinearAdd, what ONNX Runtime runs for a quantized add (measured
/// in test/python/test_ort_numerics.py): with `r_a = f32(S_a / S_c)`, `r_b =
/// f32(S_b / S_c)` and `k = f32(Z_c - fma(r_a, Z_a, f32(r_b Z_b)))`,
/// `t = fma(a, r_a, fma(b, r_b, k))` on the storage integers, then
/// `clamp(rint(t))`: `t` includes Z_c, which is added before rounding.
static Value addLikeOnnxRuntime(OpBuilder &b, Location loc, Value a, Value bv,
                                quant::UniformQuantizedType aType,
                                quant::UniformQuantizedType bType,
                                quant::UniformQuantizedType out, int64_t lo) {
  float sc = static_cast<float>(out.getScale());
  float ra = static_cast<float>(aType.getScale()) / sc;
  float rb = static_cast<float>(bType.getScale()) / sc;
  float zc = static_cast<float>(out.getZeroPoint());
  float rbZb = rb * static_cast<float>(bType.getZeroPoint());
  float k = zc - std::fma(ra, static_cast<float>(aType.getZeroPoint()), rbZb);
  auto toF32 = [&](Value q, quant::UniformQuantizedType type) -> Value {
    return arith::SIToFPOp::create(b, loc, b.getF32Type(),
                                   extendToI32(b, loc, q, type.isSigned()));
  };
  Value t =
      math::FmaOp::create(b, loc, toF32(bv, bType), f32Constant(b, loc, rb),
                          f32Constant(b, loc, k));
  t = math::FmaOp::create(b, loc, toF32(a, aType), f32Constant(b, loc, ra), t);
  return roundToStorage(b, loc, t, out, lo, std::nullopt,
                        /*withZeroPoint=*/true);
}

/// Quantized `qnt.add` (a residual connection): the runtime's exact formula
/// `clamp(rint(act(dq(a) + dq(b)) * f32(1/S_out)) + Z_out)` in generated
/// code, which fuses with its neighbours and vectorizes (float adds stay
/// with the kernel library). Under `qnt.numerics = "onnxruntime"`, MLAS's
/// formula instead, a ReLU clamping at Z_out (ORT folds a ReLU into the
/// saturation of a quantize whose zero point is its minimum).
struct AddLowering : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp op,
                                PatternRewriter &rewriter) const override {
    auto resultType = cast<RankedTensorType>(op.getType());
    if (!isQuantizedTensor(resultType))
      return rewriter.notifyMatchFailure(op, "float add: a kernel call");
    Location loc = op.getLoc();
    auto out = getUniformType(resultType);
    auto lhsType = getUniformType(op.getLhs().getType());
    auto rhsType = getUniformType(op.getRhs().getType());
    bool relu = op.getActivation() == Activation::relu;
    bool onnxRuntime = getNumerics(op) == Numerics::onnxruntime;
    AffineMap id = rewriter.getMultiDimIdentityMap(resultType.getRank());
    Value result = buildElementwise(
        rewriter, loc, resultType,
        ValueRange{toStorage(rewriter, loc, op.getLhs()),
                   toStorage(rewriter, loc, op.getRhs())},
        {id, id}, [&](OpBuilder &b, Location loc, ValueRange args) {
          if (onnxRuntime) {
            int64_t lo = out.getStorageTypeMin();
            if (relu)
              lo = std::max(lo, out.getZeroPoint());
            linalg::YieldOp::create(b, loc,
                                    addLikeOnnxRuntime(b, loc, args[0], args[1],
                                                       lhsType, rhsType, out,
                                                       lo));
            return;
          }
          Value sum = arith::AddFOp::create(
              b, loc, dequantize(b, loc, args[0], lhsType),
              dequantize(b, loc, args[1], rhsType));
          if (relu)
            sum = arith::MaximumFOp::create(b, loc, sum,
                                            f32Constant(b, loc, 0.0f));
          Value v = arith::MulFOp::create(
              b, loc, sum,
              f32Constant(b, loc, 1.0f / static_cast<float>(out.getScale())));
          linalg::YieldOp::create(
              b, loc, roundToStorage(b, loc, v, out, out.getStorageTypeMin()));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// `qnt.avg_pool2d`: an i32 window sum (channels innermost, so the loop
/// over channels vectorizes), then
/// `clamp(rint(f32(sum - Z_in * K) * f32(S_in / (S_out * K))) + Z_out)`.
/// Under `qnt.numerics = "onnxruntime"` a window covering the image (not
/// padded: a `tosa.pad` of the storage integers in front is the pooling's
/// count_include_pad padding) is ORT's QLinearGlobalAveragePool, the same with
/// the multiplier `f32(S_in / f32(S_out * K))`; other windows are its
/// QLinearAveragePool (contrib_ops/cpu/qlinear_pool.cc), in floats: the sum of
/// `f32(S_in * f32(q - Z_in))` in window order (rows, then columns) from 0,
/// divided by K, then `clamp(rint(f32(y / S_out) + Z_out))`.
struct AvgPoolLowering : OpRewritePattern<AvgPool2DOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AvgPool2DOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = op.getContext();
    auto resultType = cast<RankedTensorType>(op.getType());
    auto inputType = cast<RankedTensorType>(op.getInput().getType());
    auto in = getUniformType(inputType);
    auto out = getUniformType(resultType);
    int64_t kh = op.getKernel()[0], kw = op.getKernel()[1];
    int64_t sh = op.getStride()[0], sw = op.getStride()[1];
    const bool ort = getNumerics(op) == Numerics::onnxruntime;
    Value source = op.getInput();
    if (auto cast = source.getDefiningOp<quant::StorageCastOp>())
      source = cast.getInput();
    const bool global = kh == inputType.getDimSize(1) &&
                        kw == inputType.getDimSize(2) &&
                        !source.getDefiningOp<tosa::PadOp>();
    const bool floatWindow = ort && !global;
    Type accType =
        floatWindow ? Type(rewriter.getF32Type()) : Type(rewriter.getI32Type());

    // Dimensions (n, oh, ow, kh, kw, c).
    AffineExpr n, oh, ow, dh, dw, c;
    bindDims(ctx, n, oh, ow, dh, dw, c);
    auto inputMap =
        AffineMap::get(6, 0, {n, oh * sh + dh, ow * sw + dw, c}, ctx);
    auto windowMap = AffineMap::get(6, 0, {dh, dw}, ctx);
    auto outMap = AffineMap::get(6, 0, {n, oh, ow, c}, ctx);
    Value window = tensor::EmptyOp::create(rewriter, loc, {kh, kw}, accType);
    Value zero =
        arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(accType));
    Value accInit = linalg::FillOp::create(
                        rewriter, loc, zero,
                        ValueRange{tensor::EmptyOp::create(
                            rewriter, loc, resultType.getShape(), accType)})
                        .getResult(0);
    using utils::IteratorType;
    SmallVector<IteratorType> iterators = {
        IteratorType::parallel,  IteratorType::parallel,
        IteratorType::parallel,  IteratorType::reduction,
        IteratorType::reduction, IteratorType::parallel};
    auto sum = linalg::GenericOp::create(
        rewriter, loc, accInit.getType(),
        ValueRange{toStorage(rewriter, loc, op.getInput()), window}, accInit,
        ArrayRef<AffineMap>{inputMap, windowMap, outMap}, iterators,
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Value x = extendToI32(b, loc, args[0], in.isSigned());
          Value acc;
          if (floatWindow) {
            // ORT's dequantize_value: x_scale * (int(x) - x_zero_point).
            Value centered = arith::SubIOp::create(
                b, loc, x,
                arith::ConstantOp::create(
                    b, loc, b.getI32IntegerAttr(in.getZeroPoint())));
            Value v = arith::SIToFPOp::create(b, loc, b.getF32Type(), centered);
            v = arith::MulFOp::create(
                b, loc, f32Constant(b, loc, static_cast<float>(in.getScale())),
                v);
            acc = arith::AddFOp::create(b, loc, args[2], v);
          } else {
            acc = arith::AddIOp::create(b, loc, args[2], x);
          }
          linalg::YieldOp::create(b, loc, acc);
        });

    int64_t count = kh * kw;
    Value result;
    if (floatWindow) {
      result = buildElementwise(
          rewriter, loc, resultType, sum.getResult(0),
          {rewriter.getMultiDimIdentityMap(4)},
          [&](OpBuilder &b, Location loc, ValueRange args) {
            Value y = arith::DivFOp::create(
                b, loc, args[0],
                f32Constant(b, loc, static_cast<float>(count)));
            y = arith::DivFOp::create(
                b, loc, y,
                f32Constant(b, loc, static_cast<float>(out.getScale())));
            y = arith::AddFOp::create(
                b, loc, y,
                f32Constant(b, loc, static_cast<float>(out.getZeroPoint())));
            linalg::YieldOp::create(
                b, loc,
                roundToStorage(b, loc, y, out, out.getStorageTypeMin(),
                               std::nullopt, /*withZeroPoint=*/true));
          });
      rewriter.replaceOp(op, result);
      return success();
    }
    float multiplier = static_cast<float>(in.getScale() / out.getScale() /
                                          static_cast<double>(count));
    // ONNX Runtime's QLinearGlobalAveragePool: f32(S_in / f32(S_out * K)).
    if (ort)
      multiplier =
          static_cast<float>(in.getScale()) /
          (static_cast<float>(out.getScale()) * static_cast<float>(count));
    result = buildElementwise(
        rewriter, loc, resultType, sum.getResult(0),
        {rewriter.getMultiDimIdentityMap(4)},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Value offset = arith::ConstantOp::create(
              b, loc, b.getI32IntegerAttr(in.getZeroPoint() * count));
          Value centered = arith::SubIOp::create(b, loc, args[0], offset);
          Value v = arith::SIToFPOp::create(b, loc, b.getF32Type(), centered);
          v = arith::MulFOp::create(b, loc, v, f32Constant(b, loc, multiplier));
          linalg::YieldOp::create(
              b, loc, roundToStorage(b, loc, v, out, out.getStorageTypeMin()));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// `qnt.batch_norm`: per channel `rint(f32(q - Z_in) * A[c] + B[c]) + Z_out`,
/// A and B constants indexed by the last dimension, clamped to the float
/// bounds mapped onto the output's integers.
struct BatchNormLowering : OpRewritePattern<BatchNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BatchNormOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = op.getContext();
    auto resultType = cast<RankedTensorType>(op.getType());
    auto in = getUniformType(op.getInput().getType());
    auto out = getUniformType(resultType);
    int64_t rank = resultType.getRank();
    int64_t channels = resultType.getShape().back();
    SmallVector<float> a, b;
    for (int64_t c = 0; c < channels; ++c) {
      a.push_back(static_cast<float>(in.getScale() * op.getScale()[c] /
                                     out.getScale()));
      b.push_back(static_cast<float>(op.getShift()[c] / out.getScale()));
    }
    auto channelType = RankedTensorType::get({channels}, rewriter.getF32Type());
    auto constant = [&](ArrayRef<float> values) -> Value {
      return arith::ConstantOp::create(
          rewriter, loc, channelType,
          DenseElementsAttr::get(channelType, values));
    };
    // The clamp bounds on the output's integers.
    int64_t lo = out.getStorageTypeMin(), hi = out.getStorageTypeMax();
    float inverse = 1.0f / static_cast<float>(out.getScale());
    auto toInteger = [&](FloatAttr v) {
      return out.getZeroPoint() + static_cast<int64_t>(std::nearbyint(
                                      v.getValueAsDouble() * inverse));
    };
    if (FloatAttr v = op.getClampMinAttr())
      lo = std::max(lo, toInteger(v));
    if (FloatAttr v = op.getClampMaxAttr())
      hi = std::min(hi, toInteger(v));
    hi = std::max(lo, hi);

    AffineMap id = rewriter.getMultiDimIdentityMap(rank);
    AffineMap channel =
        AffineMap::get(rank, 0, {getAffineDimExpr(rank - 1, ctx)}, ctx);
    Value result = buildElementwise(
        rewriter, loc, resultType,
        ValueRange{toStorage(rewriter, loc, op.getInput()), constant(a),
                   constant(b)},
        {id, channel, channel},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Value wide = extendToI32(b, loc, args[0], in.isSigned());
          Value zp = arith::ConstantOp::create(
              b, loc, b.getI32IntegerAttr(in.getZeroPoint()));
          Value centered = arith::SubIOp::create(b, loc, wide, zp);
          Value x = arith::SIToFPOp::create(b, loc, b.getF32Type(), centered);
          Value scaled = arith::MulFOp::create(b, loc, x, args[1]);
          Value v = arith::AddFOp::create(b, loc, scaled, args[2]);
          linalg::YieldOp::create(b, loc,
                                  roundToStorage(b, loc, v, out, lo, hi));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// A concatenation of quantized values (same parameters, after
/// --qnt-convert): each input inserted into one result tensor, so that
/// bufferization (with empty-tensor elimination) lets the producers write
/// straight into the result buffer.
struct ConcatLowering : OpRewritePattern<tosa::ConcatOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tosa::ConcatOp op,
                                PatternRewriter &rewriter) const override {
    auto resultType = dyn_cast<RankedTensorType>(op.getType());
    if (!resultType || !isQuantizedTensor(resultType) ||
        !resultType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "not a static quantized concat");
    Location loc = op.getLoc();
    auto storageType =
        resultType.clone(getUniformType(resultType).getStorageType());
    Value result = tensor::EmptyOp::create(
        rewriter, loc, storageType.getShape(), storageType.getElementType());
    int64_t axis = op.getAxis(), offset = 0, rank = resultType.getRank();
    for (Value input : op.getInput1()) {
      auto type = cast<RankedTensorType>(input.getType());
      SmallVector<int64_t> offsets(rank, 0), strides(rank, 1);
      offsets[axis] = offset;
      offset += type.getDimSize(axis);
      result = tensor::InsertSliceOp::create(
          rewriter, loc, toStorage(rewriter, loc, input), result, ValueRange{},
          ValueRange{}, ValueRange{}, rewriter.getDenseI64ArrayAttr(offsets),
          rewriter.getDenseI64ArrayAttr(type.getShape()),
          rewriter.getDenseI64ArrayAttr(strides));
    }
    rewriter.replaceOp(op, fromStorage(rewriter, loc, result, resultType));
    return success();
  }
};

/// PyTorch's source pixels along one axis of `qnt.resize` (the tables of
/// upsample_nearest2d / upsample_bilinear2d, in f32 as PyTorch computes
/// them): for nearest only `index0`; for bilinear also the next pixel and
/// the two weights.
struct ResizeAxis {
  SmallVector<int32_t> index0, index1;
  SmallVector<float> lambda0, lambda1;
};

static ResizeAxis getResizeAxis(ResizeMode mode, bool alignCorners, float scale,
                                int64_t in, int64_t out) {
  ResizeAxis axis;
  for (int64_t o = 0; o < out; ++o) {
    if (mode == ResizeMode::nearest) {
      int64_t i =
          static_cast<int64_t>(std::floor(static_cast<float>(o) * scale));
      axis.index0.push_back(static_cast<int32_t>(std::min(i, in - 1)));
      continue;
    }
    float source = alignCorners ? scale * static_cast<float>(o)
                                : scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    if (!alignCorners && source < 0)
      source = 0;
    int64_t i = static_cast<int64_t>(source);
    float l1 = source - static_cast<float>(i);
    axis.index0.push_back(static_cast<int32_t>(i));
    axis.index1.push_back(static_cast<int32_t>(i < in - 1 ? i + 1 : i));
    axis.lambda1.push_back(l1);
    axis.lambda0.push_back(1.0f - l1);
  }
  return axis;
}

/// `qnt.resize`: a gather of the input through per-row and per-column
/// tables (constants), and for bilinear PyTorch's f32 weighting,
/// `clamp(rint(l0h * (l0w * q00 + l1w * q01) + l1h * (l0w * q10 + l1w *
/// q11) - Z) + Z)`.
struct ResizeLowering : OpRewritePattern<ResizeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ResizeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = op.getContext();
    auto type = getUniformType(op.getInput().getType());
    auto inType = cast<RankedTensorType>(op.getInput().getType());
    auto resultType = cast<RankedTensorType>(op.getType());
    ResizeAxis axes[2];
    for (int i = 0; i < 2; ++i)
      axes[i] =
          getResizeAxis(op.getMode(), op.getAlignCorners(), op.getScale()[i],
                        inType.getDimSize(1 + i), resultType.getDimSize(1 + i));
    bool bilinear = op.getMode() == ResizeMode::bilinear;
    // Operands: the tables of H (indexed by d1), then of W (by d2).
    SmallVector<Value> tables;
    SmallVector<AffineMap> maps;
    auto addTable = [&](auto values, unsigned dim) {
      using T = typename decltype(values)::value_type;
      Type element = std::is_same_v<T, float> ? Type(rewriter.getF32Type())
                                              : Type(rewriter.getI32Type());
      auto tableType =
          RankedTensorType::get({static_cast<int64_t>(values.size())}, element);
      tables.push_back(arith::ConstantOp::create(
          rewriter, loc, tableType,
          DenseElementsAttr::get(tableType, ArrayRef<T>(values))));
      maps.push_back(AffineMap::get(4, 0, getAffineDimExpr(dim, ctx)));
    };
    for (unsigned i = 0; i < 2; ++i) {
      addTable(axes[i].index0, 1 + i);
      if (bilinear) {
        addTable(axes[i].index1, 1 + i);
        addTable(axes[i].lambda0, 1 + i);
        addTable(axes[i].lambda1, 1 + i);
      }
    }
    Value input = toStorage(rewriter, loc, op.getInput());
    unsigned perAxis = bilinear ? 4 : 1;
    Value result = buildElementwise(
        rewriter, loc, resultType, tables, maps,
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Value n = linalg::IndexOp::create(b, loc, 0);
          Value c = linalg::IndexOp::create(b, loc, 3);
          auto toIndex = [&](Value v) {
            return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
          };
          auto at = [&](Value y, Value x) -> Value {
            return tensor::ExtractOp::create(
                b, loc, input, ValueRange{n, toIndex(y), toIndex(x), c});
          };
          ValueRange h = args.take_front(perAxis), w = args.drop_front(perAxis);
          if (!bilinear) {
            linalg::YieldOp::create(b, loc, at(h[0], w[0]));
            return;
          }
          auto value = [&](Value y, Value x) -> Value {
            Value q = extendToI32(b, loc, at(y, x), type.isSigned());
            return arith::SIToFPOp::create(b, loc, b.getF32Type(), q);
          };
          auto mul = [&](Value a, Value c) -> Value {
            return arith::MulFOp::create(b, loc, a, c);
          };
          auto add = [&](Value a, Value c) -> Value {
            return arith::AddFOp::create(b, loc, a, c);
          };
          Value top =
              add(mul(w[2], value(h[0], w[0])), mul(w[3], value(h[0], w[1])));
          Value bottom =
              add(mul(w[2], value(h[1], w[0])), mul(w[3], value(h[1], w[1])));
          Value r = add(mul(h[2], top), mul(h[3], bottom));
          r = arith::SubFOp::create(
              b, loc, r,
              f32Constant(b, loc, static_cast<float>(type.getZeroPoint())));
          linalg::YieldOp::create(
              b, loc,
              roundToStorage(b, loc, r, type, type.getStorageTypeMin()));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// A static tensor of per-tensor 8-bit quantized type, or null.
static RankedTensorType get8BitPerTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  auto qtype =
      tensor ? dyn_cast<quant::UniformQuantizedType>(tensor.getElementType())
             : nullptr;
  if (!qtype || !tensor.hasStaticShape() ||
      qtype.getStorageTypeIntegralWidth() != 8 ||
      !qtype.getExpressedType().isF32())
    return nullptr;
  return tensor;
}

/// Per-tensor 8-bit `quant.qcast` as the runtime's quantize,
/// `clamp(rint(x * f32(1/S)) + Z)` (NaN to qmin; under `qnt.numerics =
/// "onnxruntime"` ONNX's `rint(x / S)`), in generated code: it fuses with
/// the float code that makes `x` (a layer norm's or softmax's last step)
/// instead of being one more pass over memory.
struct QuantizeCastLowering : OpRewritePattern<quant::QuantizeCastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(quant::QuantizeCastOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType resultType = get8BitPerTensor(op.getType());
    if (!resultType || !getElementTypeOrSelf(op.getInput().getType()).isF32())
      return rewriter.notifyMatchFailure(op, "not f32 to 8-bit per tensor");
    auto out = getUniformType(resultType);
    bool divides = getNumerics(op) == Numerics::onnxruntime;
    AffineMap id = rewriter.getMultiDimIdentityMap(resultType.getRank());
    rewriter.replaceOp(
        op, buildElementwise(
                rewriter, op.getLoc(), resultType, op.getInput(), id,
                [&](OpBuilder &b, Location loc, ValueRange args) {
                  float scale = static_cast<float>(out.getScale());
                  Value v;
                  if (divides)
                    v = arith::DivFOp::create(b, loc, args[0],
                                              f32Constant(b, loc, scale));
                  else
                    v = arith::MulFOp::create(
                        b, loc, args[0], f32Constant(b, loc, 1.0f / scale));
                  linalg::YieldOp::create(
                      b, loc,
                      roundToStorage(b, loc, v, out, out.getStorageTypeMin()));
                }));
    return success();
  }
};

/// Per-tensor 8-bit `quant.dcast`, `f32(q - Z) * f32(S)` as the runtime
/// computes it, in generated code that fuses with its float consumer.
struct DequantizeCastLowering : OpRewritePattern<quant::DequantizeCastOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(quant::DequantizeCastOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType inputType = get8BitPerTensor(op.getInput().getType());
    if (!inputType)
      return rewriter.notifyMatchFailure(op, "not 8-bit per tensor");
    auto in = getUniformType(inputType);
    auto resultType = cast<RankedTensorType>(op.getType());
    AffineMap id = rewriter.getMultiDimIdentityMap(resultType.getRank());
    rewriter.replaceOp(
        op,
        buildElementwise(rewriter, op.getLoc(), resultType,
                         toStorage(rewriter, op.getLoc(), op.getInput()), id,
                         [&](OpBuilder &b, Location loc, ValueRange args) {
                           linalg::YieldOp::create(
                               b, loc, dequantize(b, loc, args[0], in));
                         }));
    return success();
  }
};

struct QntLowerToLinalgPass
    : qnt::impl::QntLowerToLinalgPassBase<QntLowerToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateQntToLinalgPatterns(patterns);
    // No folding: quant.dcast(quant.qcast(x)) would fold to x.
    GreedyRewriteConfig config;
    config.enableFolding(false);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace

void qnt::populateQntToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<TableLowering, MulLowering, AddLowering, AvgPoolLowering,
               BatchNormLowering, ConcatLowering, ResizeLowering,
               QuantizeCastLowering, DequantizeCastLowering>(
      patterns.getContext());
}
