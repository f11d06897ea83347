//===- QntToRuntime.cpp - --qnt-lower-to-runtime --------------------------===//
//
// Lowers qnt compute ops, observers, fake-quant and quant casts to calls into
// the C runtime (runtime/include/qnt/Runtime.h). Quantized tensors become
// tensors of their storage type. Each call site gets its own handle global
// (the runtime's kernel cache) and constant parameter arrays.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/QParams.h"
#include "qnt/Conversion/Passes.h"
#include "qnt/Dialect/Qnt/QntOps.h"
#include "qnt/Runtime.h"

#include "mlir/Dialect/Func/Transforms/FuncConversions.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/StringSwitch.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace qnt {
#define GEN_PASS_DEF_QNTLOWERTORUNTIMEPASS
#include "qnt/Conversion/Passes.h.inc"
} // namespace qnt

using namespace mlir;
using namespace qnt;

//===----------------------------------------------------------------------===//
// Type conversion
//===----------------------------------------------------------------------===//

QuantStorageTypeConverter::QuantStorageTypeConverter() {
  addConversion([](Type type) { return type; });
  addConversion([](RankedTensorType type) -> Type {
    if (auto qtype = dyn_cast<quant::QuantizedType>(type.getElementType()))
      return type.clone(qtype.getStorageType());
    return type;
  });
}

//===----------------------------------------------------------------------===//
// RuntimeCallBuilder
//===----------------------------------------------------------------------===//

Value RuntimeCallBuilder::getPointer(OpBuilder &b, Location loc, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  Value buffer = bufferization::ToBufferOp::create(b, loc, memrefType, tensor,
                                                   /*read_only=*/true);
  return getBufferPointer(b, loc, buffer);
}

std::pair<Value, Value> RuntimeCallBuilder::allocate(OpBuilder &b, Location loc,
                                                     RankedTensorType type) {
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  Value buffer =
      memref::AllocOp::create(b, loc, memrefType, b.getI64IntegerAttr(64));
  return {buffer, getBufferPointer(b, loc, buffer)};
}

Value RuntimeCallBuilder::toTensor(OpBuilder &b, Location loc,
                                   RankedTensorType type, Value buffer) {
  return bufferization::ToTensorOp::create(b, loc, type, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

Value RuntimeCallBuilder::getHandleSlot(OpBuilder &b, Location loc) {
  auto type = MemRefType::get({1}, b.getI64Type());
  auto init = DenseElementsAttr::get(RankedTensorType::get({1}, b.getI64Type()),
                                     int64_t(0));
  return getGlobalPointer(b, loc, "__qnt_handle", type, init,
                          /*constant=*/false);
}

Value RuntimeCallBuilder::getI64Array(OpBuilder &b, Location loc,
                                      ArrayRef<int64_t> values) {
  auto type = MemRefType::get({(int64_t)values.size()}, b.getI64Type());
  auto init = DenseElementsAttr::get(
      RankedTensorType::get(type.getShape(), b.getI64Type()), values);
  return getGlobalPointer(b, loc, "__qnt_params", type, init, true);
}

Value RuntimeCallBuilder::getF32Array(OpBuilder &b, Location loc,
                                      ArrayRef<float> values) {
  auto type = MemRefType::get({(int64_t)values.size()}, b.getF32Type());
  auto init = DenseElementsAttr::get(
      RankedTensorType::get(type.getShape(), b.getF32Type()), values);
  return getGlobalPointer(b, loc, "__qnt_fparams", type, init, true);
}

Value RuntimeCallBuilder::getString(OpBuilder &b, Location loc,
                                    StringRef text) {
  SmallVector<int8_t> bytes(text.begin(), text.end());
  bytes.push_back(0);
  auto type = MemRefType::get({(int64_t)bytes.size()}, b.getI8Type());
  auto init = DenseElementsAttr::get(
      RankedTensorType::get(type.getShape(), b.getI8Type()),
      ArrayRef<int8_t>(bytes));
  return getGlobalPointer(b, loc, "__qnt_str", type, init, true);
}

void RuntimeCallBuilder::call(OpBuilder &b, Location loc, StringRef name,
                              ValueRange args) {
  auto ptr = LLVM::LLVMPointerType::get(b.getContext());
  SmallVector<Type> argTypes(args.size(), ptr);
  auto fnType = b.getFunctionType(argTypes, {});
  if (!module.lookupSymbol<func::FuncOp>(name)) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    auto fn = func::FuncOp::create(b, loc, name, fnType);
    fn.setPrivate();
  }
  func::CallOp::create(b, loc, name, TypeRange(), args);
}

Value RuntimeCallBuilder::getBufferPointer(OpBuilder &b, Location loc,
                                           Value buffer) {
  Value index = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
  return LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), i64);
}

Value RuntimeCallBuilder::getGlobalPointer(OpBuilder &b, Location loc,
                                           StringRef prefix, MemRefType type,
                                           Attribute init, bool constant) {
  std::string name = (prefix + "_" + Twine(counter++)).str();
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    memref::GlobalOp::create(b, loc, name, b.getStringAttr("private"), type,
                             init, constant,
                             /*alignment=*/b.getI64IntegerAttr(64));
  }
  Value global = memref::GetGlobalOp::create(b, loc, type, name);
  return getBufferPointer(b, loc, global);
}

namespace {

/// Views a runtime parameter struct (all int64_t fields) as an array.
template <typename Params>
static ArrayRef<int64_t> asArray(const Params &params) {
  static_assert(sizeof(Params) % sizeof(int64_t) == 0 &&
                    std::is_standard_layout_v<Params>,
                "runtime parameter structs hold only int64_t fields");
  return {reinterpret_cast<const int64_t *>(&params),
          sizeof(Params) / sizeof(int64_t)};
}

//===----------------------------------------------------------------------===//
// Quantization parameters of tensors
//===----------------------------------------------------------------------===//

static int64_t getRuntimeDType(Type type) {
  Type element = getElementTypeOrSelf(type);
  if (element.isF32())
    return QNT_RT_F32;
  if (auto qtype = dyn_cast<quant::QuantizedType>(element)) {
    if (qtype.getStorageTypeIntegralWidth() == 32)
      return QNT_RT_S32;
    return qtype.isSigned() ? QNT_RT_S8 : QNT_RT_U8;
  }
  if (element.isInteger(32))
    return QNT_RT_S32;
  return -1;
}

static quant::UniformQuantizedType getUniformType(Type type) {
  return dyn_cast<quant::UniformQuantizedType>(getElementTypeOrSelf(type));
}

/// Scales and zero points of a quantized tensor, in the runtime's
/// [outer, channels, inner] view.
struct QuantLayout {
  qnt_rt_quant_params params;
  SmallVector<float> scales;
  SmallVector<int64_t> zeroPoints;
};

static QuantLayout getQuantLayout(RankedTensorType type) {
  auto qtype = cast<quant::QuantizedType>(type.getElementType());
  QuantLayout layout;
  int64_t axis = -1;
  if (auto perAxis = dyn_cast<quant::UniformQuantizedPerAxisType>(qtype)) {
    axis = perAxis.getQuantizedDimension();
    for (double s : perAxis.getScales())
      layout.scales.push_back(static_cast<float>(s));
    layout.zeroPoints.assign(perAxis.getZeroPoints().begin(),
                             perAxis.getZeroPoints().end());
  } else {
    auto uniform = cast<quant::UniformQuantizedType>(qtype);
    layout.scales = {static_cast<float>(uniform.getScale())};
    layout.zeroPoints = {uniform.getZeroPoint()};
  }
  int64_t outer = 1, channels = 1, inner = 1;
  // Per tensor: one run of `inner` elements (the runtime vectorizes the
  // inner loop; 150k outer iterations of one element were 7x slower).
  for (int64_t d = 0; d < type.getRank(); ++d) {
    int64_t size = type.getDimSize(d);
    if (axis >= 0 && d < axis)
      outer *= size;
    else if (d == axis)
      channels = size;
    else
      inner *= size;
  }
  layout.params = {outer,
                   channels,
                   inner,
                   getRuntimeDType(type),
                   qtype.getStorageTypeMin(),
                   qtype.getStorageTypeMax()};
  return layout;
}

/// The requantization multiplier M = S_a * S_b / S_out of an integer
/// product, each scale first rounded to f32 (docs/numerics.md): computed in
/// double and rounded once, or under `qnt.numerics = "onnxruntime"` as ONNX
/// Runtime computes it, `f32(f32(S_a * S_b) / S_out)`.
static float getMultiplier(double aScale, double bScale, double outScale,
                           Numerics numerics) {
  float a = static_cast<float>(aScale), b = static_cast<float>(bScale);
  float out = static_cast<float>(outScale);
  if (numerics == Numerics::onnxruntime)
    return a * b / out;
  return static_cast<float>((double)a * (double)b / (double)out);
}

/// Integer bounds of the output once the fused activation's float bounds
/// are mapped through the output's scale and zero point.
static std::pair<int64_t, int64_t>
getQuantizedActivationRange(std::pair<float, float> bounds,
                            quant::UniformQuantizedType out) {
  int64_t lo = out.getStorageTypeMin(), hi = out.getStorageTypeMax();
  float inverse = 1.0f / static_cast<float>(out.getScale());
  if (std::isfinite(bounds.first))
    lo = std::max<int64_t>(
        lo,
        out.getZeroPoint() + (int64_t)roundHalfToEven(bounds.first * inverse));
  if (std::isfinite(bounds.second))
    hi = std::min<int64_t>(
        hi,
        out.getZeroPoint() + (int64_t)roundHalfToEven(bounds.second * inverse));
  return {lo, std::max(lo, hi)};
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// Backend selection
//===----------------------------------------------------------------------===//

/// Whether XNNPACK beats oneDNN on x86 for quantized `op` (backend=auto).
/// Measured per layer on resnet18, mobilenet_v2 and an MLP at batch 1
/// (docs/runtime.md, "Choosing a backend"): XNNPACK's add is 3-8x faster
/// than the runtime's own, its convolutions and linears 2-10x slower than
/// oneDNN's (no VNNI / vpmaddubsw kernels in Debian's XNNPACK), and oneDNN
/// max pooling is 6x faster.
static bool prefersXnnpack(Operation *op) { return isa<AddOp>(op); }

/// The qnt_rt_backend of the call site lowering `op` under `policy`: only
/// quantized kernels ever go to XNNPACK.
static int64_t selectBackend(RuntimeBackend policy, Operation *op) {
  if (policy == RuntimeBackend::onednn ||
      !getUniformType(op->getResult(0).getType()))
    return QNT_RT_BACKEND_ONEDNN;
  if (policy == RuntimeBackend::xnnpack || prefersXnnpack(op))
    return QNT_RT_BACKEND_XNNPACK;
  return QNT_RT_BACKEND_ONEDNN;
}

template <typename OpTy> struct RuntimePattern : OpConversionPattern<OpTy> {
  RuntimePattern(const TypeConverter &converter, MLIRContext *ctx,
                 RuntimeCallBuilder &calls, RuntimeBackend backend)
      : OpConversionPattern<OpTy>(converter, ctx), calls(calls),
        backend(backend) {}

  RankedTensorType convertTensor(Type type) const {
    return cast<RankedTensorType>(this->getTypeConverter()->convertType(type));
  }

  RuntimeCallBuilder &calls;
  RuntimeBackend backend;
};

/// Fields common to conv2d and linear: dtypes, zero points, integer clamp
/// bounds, requantization multipliers M[c] = S_in * S_w[c] / S_out, and the
/// float activation of float kernels (fparams[0..1]).
template <typename Params>
static LogicalResult fillWeightedOpParams(QuantizableOpInterface op, Params &p,
                                          SmallVector<float> &fparams) {
  Value input = op.getActivationOperands()[0]->get();
  Value weight = op.getWeightOperand()->get();
  OpOperand *bias = op.getBiasOperand();
  Type resultType = op->getResult(0).getType();
  auto bounds = op.getFusedActivationBounds();
  p.src_dtype = getRuntimeDType(input.getType());
  p.wei_dtype = getRuntimeDType(weight.getType());
  p.dst_dtype = getRuntimeDType(resultType);
  fparams = {bounds.first, bounds.second};

  if (p.src_dtype == QNT_RT_F32) {
    p.bias_kind = bias ? QNT_RT_BIAS_F32 : QNT_RT_BIAS_NONE;
    switch (op.getFusedActivation()) {
    case Activation::none:
      p.activation = QNT_RT_ACT_NONE;
      break;
    case Activation::relu:
      p.activation = QNT_RT_ACT_RELU;
      break;
    case Activation::relu6:
    case Activation::clamp:
      p.activation = QNT_RT_ACT_CLAMP;
      break;
    }
    p.num_scales = 0;
    if (p.wei_dtype == QNT_RT_F32)
      return success();
    // Dynamic quantization: the input's u8 range, the weight's scales.
    QSpecAttr dynamic = op.getDynamicQuantization();
    if (!dynamic)
      return op.emitOpError("a quantized weight with a float input needs "
                            "dynamic_qspec");
    p.src_qmin = dynamic.getQuantMin();
    p.src_qmax = dynamic.getQuantMax();
    // Under ONNX Runtime's numerics the input is quantized as
    // DynamicQuantizeLinear does, which knows only u8 [0, 255].
    if (getNumerics(op) == Numerics::onnxruntime) {
      if (p.src_qmin != 0 || p.src_qmax != 255)
        return op.emitOpError("ONNX Runtime's DynamicQuantizeLinear "
                              "(qnt.numerics = \"onnxruntime\") quantizes to "
                              "u8 [0, 255], not dynamic_qspec's [")
               << p.src_qmin << ", " << p.src_qmax << "]";
      p.dynamic_qparams = QNT_RT_DYNAMIC_ONNXRUNTIME;
    }
    QuantLayout w = getQuantLayout(cast<RankedTensorType>(weight.getType()));
    p.num_scales = w.scales.size();
    fparams.append(w.scales.begin(), w.scales.end());
    return success();
  }

  if (bias && !getElementTypeOrSelf(bias->get().getType()).isInteger(32))
    return op.emitOpError("the onednn backend needs an i32 bias on "
                          "quantized ops (run --qnt-convert)");
  auto in = getUniformType(input.getType());
  auto out = getUniformType(resultType);
  p.bias_kind = bias ? QNT_RT_BIAS_S32 : QNT_RT_BIAS_NONE;
  p.activation = QNT_RT_ACT_NONE;
  p.src_zp = in.getZeroPoint();
  p.src_qmin = in.getStorageTypeMin();
  p.src_qmax = in.getStorageTypeMax();
  p.dst_zp = out.getZeroPoint();
  std::tie(p.dst_qmin, p.dst_qmax) = getQuantizedActivationRange(bounds, out);
  QuantLayout w = getQuantLayout(cast<RankedTensorType>(weight.getType()));
  p.num_scales = w.scales.size();
  Numerics numerics = getNumerics(op);
  for (float ws : w.scales)
    fparams.push_back(
        getMultiplier(in.getScale(), ws, out.getScale(), numerics));
  return success();
}

/// conv2d / linear: kernel(handle, params, fparams, src, weight, bias, dst).
template <typename OpTy> struct WeightedOpLowering : RuntimePattern<OpTy> {
  using RuntimePattern<OpTy>::RuntimePattern;
  using OpAdaptor = typename OpTy::Adaptor;

  LogicalResult
  matchAndRewrite(OpTy op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto [params, name] = getShapeParams(op);
    SmallVector<float> fparams;
    if (failed(fillWeightedOpParams(
            cast<QuantizableOpInterface>(op.getOperation()), params, fparams)))
      return failure();

    RuntimeCallBuilder &calls = this->calls;
    RankedTensorType resultType = this->convertTensor(op.getType());
    auto [buffer, dst] = calls.allocate(rewriter, loc, resultType);
    auto null = LLVM::ZeroOp::create(
        rewriter, loc, LLVM::LLVMPointerType::get(op.getContext()));
    Value bias = adaptor.getBias()
                     ? calls.getPointer(rewriter, loc, adaptor.getBias())
                     : Value(null);
    std::string callee = name.str();
    if (params.src_dtype == QNT_RT_F32 && params.wei_dtype != QNT_RT_F32)
      callee += "_dynamic";
    params.backend = selectBackend(this->backend, op);
    calls.call(rewriter, loc, callee,
               {calls.getHandleSlot(rewriter, loc),
                calls.getI64Array(rewriter, loc, asArray(params)),
                calls.getF32Array(rewriter, loc, fparams),
                calls.getPointer(rewriter, loc, adaptor.getInput()),
                calls.getPointer(rewriter, loc, adaptor.getWeight()), bias,
                dst});
    rewriter.replaceOp(op, calls.toTensor(rewriter, loc, resultType, buffer));
    return success();
  }

  static std::pair<qnt_rt_conv2d_params, StringRef>
  getShapeParams(Conv2DOp op) {
    qnt_rt_conv2d_params p{};
    ArrayRef<int64_t> in = op.getInput().getType().getShape();
    ArrayRef<int64_t> w = op.getWeight().getType().getShape();
    ArrayRef<int64_t> out = op.getOutput().getType().getShape();
    p.n = in[0], p.h = in[1], p.w = in[2], p.c = in[3];
    p.oc = w[0], p.kh = w[1], p.kw = w[2];
    p.oh = out[1], p.ow = out[2];
    p.stride_h = op.getStride()[0], p.stride_w = op.getStride()[1];
    p.pad_top = op.getPad()[0], p.pad_bottom = op.getPad()[1];
    p.pad_left = op.getPad()[2], p.pad_right = op.getPad()[3];
    p.dilation_h = op.getDilation()[0], p.dilation_w = op.getDilation()[1];
    p.groups = op.getGroups();
    return {p, "qnt_rt_conv2d"};
  }

  static std::pair<qnt_rt_linear_params, StringRef>
  getShapeParams(LinearOp op) {
    qnt_rt_linear_params p{};
    ArrayRef<int64_t> in = op.getInput().getType().getShape();
    p.m = in[0], p.k = in[1];
    p.n = op.getWeight().getType().getDimSize(0);
    return {p, "qnt_rt_linear"};
  }
};

struct AddLowering : RuntimePattern<AddOp> {
  using RuntimePattern::RuntimePattern;

  LogicalResult
  matchAndRewrite(AddOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    if (getUniformType(op.getType()) &&
        getNumerics(op) == Numerics::onnxruntime)
      return op.emitOpError(
          "the runtime's quantized add computes qnt's arithmetic, not ONNX "
          "Runtime's (qnt.numerics = \"onnxruntime\"): lower it with "
          "--qnt-lower-to-linalg first");
    qnt_rt_add_params p{};
    p.numel = op.getType().getNumElements();
    p.dtype = getRuntimeDType(op.getType());
    p.relu = op.getActivation() == Activation::relu;
    p.backend = selectBackend(backend, op);
    SmallVector<float> fparams = {1.0f, 1.0f, 1.0f};
    if (auto out = getUniformType(op.getType())) {
      auto a = getUniformType(op.getLhs().getType());
      auto b = getUniformType(op.getRhs().getType());
      p.a_zp = a.getZeroPoint(), p.b_zp = b.getZeroPoint();
      p.dst_zp = out.getZeroPoint();
      p.dst_qmin = out.getStorageTypeMin(),
      p.dst_qmax = out.getStorageTypeMax();
      fparams = {(float)a.getScale(), (float)b.getScale(),
                 (float)out.getScale()};
    }
    RankedTensorType resultType = convertTensor(op.getType());
    auto [buffer, dst] = calls.allocate(rewriter, loc, resultType);
    calls.call(rewriter, loc, "qnt_rt_add",
               {calls.getHandleSlot(rewriter, loc),
                calls.getI64Array(rewriter, loc, asArray(p)),
                calls.getF32Array(rewriter, loc, fparams),
                calls.getPointer(rewriter, loc, adaptor.getLhs()),
                calls.getPointer(rewriter, loc, adaptor.getRhs()), dst});
    rewriter.replaceOp(op, calls.toTensor(rewriter, loc, resultType, buffer));
    return success();
  }
};

/// tosa.max_pool2d / tosa.avg_pool2d on f32: oneDNN pooling (the upstream
/// lowering is scalar loops).
template <typename PoolOp> struct PoolLowering : RuntimePattern<PoolOp> {
  using RuntimePattern<PoolOp>::RuntimePattern;
  using OpAdaptor = typename PoolOp::Adaptor;

  /// Whether this pattern lowers `op`: static NHWC tensors, f32 or (max
  /// pooling) per-tensor quantized, and for average pooling zero points 0.
  static bool isSupported(PoolOp op) {
    auto in = cast<RankedTensorType>(op.getInput().getType());
    auto out = cast<RankedTensorType>(op.getType());
    if (!in.hasStaticShape() || !out.hasStaticShape())
      return false;
    if (getUniformType(in))
      return std::is_same_v<PoolOp, tosa::MaxPool2dOp>;
    if (!in.getElementType().isF32())
      return false;
    if constexpr (std::is_same_v<PoolOp, tosa::AvgPool2dOp>) {
      auto inZp = op.getInputZeroPoint(), outZp = op.getOutputZeroPoint();
      return succeeded(inZp) && succeeded(outZp) && *inZp == 0 && *outZp == 0;
    }
    return true;
  }

  LogicalResult
  matchAndRewrite(PoolOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (!isSupported(op))
      return failure();
    Location loc = op.getLoc();
    ArrayRef<int64_t> in =
        cast<RankedTensorType>(op.getInput().getType()).getShape();
    ArrayRef<int64_t> out = cast<RankedTensorType>(op.getType()).getShape();
    qnt_rt_pool2d_params p{};
    p.n = in[0], p.h = in[1], p.w = in[2], p.c = in[3];
    p.oh = out[1], p.ow = out[2];
    p.kh = op.getKernel()[0], p.kw = op.getKernel()[1];
    p.stride_h = op.getStride()[0], p.stride_w = op.getStride()[1];
    p.pad_top = op.getPad()[0], p.pad_bottom = op.getPad()[1];
    p.pad_left = op.getPad()[2], p.pad_right = op.getPad()[3];
    p.kind = std::is_same_v<PoolOp, tosa::MaxPool2dOp> ? QNT_RT_POOL_MAX
                                                       : QNT_RT_POOL_AVG;
    p.dtype = getRuntimeDType(op.getInput().getType());
    p.backend = selectBackend(this->backend, op);
    RuntimeCallBuilder &calls = this->calls;
    RankedTensorType resultType = this->convertTensor(op.getType());
    auto [buffer, dst] = calls.allocate(rewriter, loc, resultType);
    calls.call(rewriter, loc, "qnt_rt_pool2d",
               {calls.getHandleSlot(rewriter, loc),
                calls.getI64Array(rewriter, loc, asArray(p)),
                calls.getPointer(rewriter, loc, adaptor.getInput()), dst});
    rewriter.replaceOp(op, calls.toTensor(rewriter, loc, resultType, buffer));
    return success();
  }
};

/// One qnt_rt_batch_matmul call of `a` x `b` (`b` [batch, k, n], or
/// [batch, n, k] with `p.b_transposed`), the shapes and `p.dtype` filled
/// in here.
static Value lowerBatchMatmul(ConversionPatternRewriter &rewriter,
                              RuntimeCallBuilder &calls, Location loc,
                              qnt_rt_batch_matmul_params p,
                              ArrayRef<float> fparams, Value a, Value b,
                              RankedTensorType resultType) {
  ArrayRef<int64_t> aShape = cast<RankedTensorType>(a.getType()).getShape();
  p.batch = aShape[0], p.m = aShape[1], p.k = aShape[2];
  p.n = resultType.getDimSize(2);
  auto [buffer, dst] = calls.allocate(rewriter, loc, resultType);
  calls.call(rewriter, loc, "qnt_rt_batch_matmul",
             {calls.getHandleSlot(rewriter, loc),
              calls.getI64Array(rewriter, loc, asArray(p)),
              calls.getF32Array(rewriter, loc, fparams),
              calls.getPointer(rewriter, loc, a),
              calls.getPointer(rewriter, loc, b), dst});
  return calls.toTensor(rewriter, loc, resultType, buffer);
}

/// `qnt.batch_matmul`, float or quantized: oneDNN's batched matmul.
struct BatchMatmulLowering : RuntimePattern<BatchMatmulOp> {
  using RuntimePattern::RuntimePattern;

  LogicalResult
  matchAndRewrite(BatchMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    qnt_rt_batch_matmul_params p{};
    p.dtype = getRuntimeDType(op.getType());
    p.b_transposed = op.getTransposeB();
    SmallVector<float> fparams = {1.0f};
    if (auto out = getUniformType(op.getType())) {
      auto a = getUniformType(op.getLhs().getType());
      auto b = getUniformType(op.getRhs().getType());
      p.a_zp = a.getZeroPoint(), p.a_qmin = a.getStorageTypeMin();
      p.a_qmax = a.getStorageTypeMax();
      p.b_zp = b.getZeroPoint(), p.b_qmin = b.getStorageTypeMin();
      p.b_qmax = b.getStorageTypeMax();
      p.dst_zp = out.getZeroPoint(), p.dst_qmin = out.getStorageTypeMin();
      p.dst_qmax = out.getStorageTypeMax();
      fparams = {getMultiplier(a.getScale(), b.getScale(), out.getScale(),
                               getNumerics(op))};
    }
    rewriter.replaceOp(op, lowerBatchMatmul(rewriter, calls, op.getLoc(), p,
                                            fparams, adaptor.getLhs(),
                                            adaptor.getRhs(),
                                            convertTensor(op.getType())));
    return success();
  }
};

/// tosa.matmul on f32 of two computed tensors (what qnt-fuse lifts into
/// qnt.batch_matmul, when this pass runs without it): the same call.
struct TosaMatmulLowering : RuntimePattern<tosa::MatMulOp> {
  using RuntimePattern::RuntimePattern;

  /// Whether this pattern lowers `op`: static f32 operands, zero points 0.
  static bool isSupported(tosa::MatMulOp op) {
    auto a = cast<RankedTensorType>(op.getA().getType());
    auto b = cast<RankedTensorType>(op.getB().getType());
    if (!a.hasStaticShape() || !b.hasStaticShape() ||
        !a.getElementType().isF32() || !b.getElementType().isF32())
      return false;
    FailureOr<int64_t> aZp = op.getAZeroPoint(), bZp = op.getBZeroPoint();
    return succeeded(aZp) && succeeded(bZp) && *aZp == 0 && *bZp == 0;
  }

  LogicalResult
  matchAndRewrite(tosa::MatMulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (!isSupported(op))
      return failure();
    qnt_rt_batch_matmul_params p{};
    p.dtype = QNT_RT_F32;
    rewriter.replaceOp(op,
                       lowerBatchMatmul(rewriter, calls, op.getLoc(), p, {1.0f},
                                        adaptor.getA(), adaptor.getB(),
                                        convertTensor(op.getType())));
    return success();
  }
};

/// quant.qcast / quant.dcast / qnt.fake_quant: one elementwise runtime call
/// with the (per-tensor or per-axis) scales and zero points of `qtype`
/// (`divide`: quantize as ONNX's `rint(x / S)`).
static Value lowerElementwiseQuant(ConversionPatternRewriter &rewriter,
                                   RuntimeCallBuilder &calls, Location loc,
                                   StringRef name, RankedTensorType qtype,
                                   Value src, RankedTensorType resultType,
                                   bool divide = false) {
  QuantLayout layout = getQuantLayout(qtype);
  layout.params.divide = divide;
  auto [buffer, dst] = calls.allocate(rewriter, loc, resultType);
  calls.call(rewriter, loc, name,
             {calls.getHandleSlot(rewriter, loc),
              calls.getI64Array(rewriter, loc, asArray(layout.params)),
              calls.getF32Array(rewriter, loc, layout.scales),
              calls.getI64Array(rewriter, loc, layout.zeroPoints),
              calls.getPointer(rewriter, loc, src), dst});
  return calls.toTensor(rewriter, loc, resultType, buffer);
}

struct QuantizeCastLowering : RuntimePattern<quant::QuantizeCastOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(quant::QuantizeCastOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto qtype = cast<RankedTensorType>(op.getType());
    rewriter.replaceOp(
        op, lowerElementwiseQuant(
                rewriter, calls, op.getLoc(), "qnt_rt_quantize", qtype,
                adaptor.getInput(), convertTensor(qtype),
                /*divide=*/getNumerics(op) == Numerics::onnxruntime));
    return success();
  }
};

struct DequantizeCastLowering : RuntimePattern<quant::DequantizeCastOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(quant::DequantizeCastOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto qtype = cast<RankedTensorType>(op.getInput().getType());
    rewriter.replaceOp(op, lowerElementwiseQuant(
                               rewriter, calls, op.getLoc(),
                               "qnt_rt_dequantize", qtype, adaptor.getInput(),
                               cast<RankedTensorType>(op.getType())));
    return success();
  }
};

struct FakeQuantLowering : RuntimePattern<FakeQuantOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(FakeQuantOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Type element = op.getQuantizedElementType();
    auto type = cast<RankedTensorType>(op.getType());
    rewriter.replaceOp(op, lowerElementwiseQuant(rewriter, calls, op.getLoc(),
                                                 "qnt_rt_fake_quant",
                                                 type.clone(element),
                                                 adaptor.getInput(), type));
    return success();
  }
};

static int64_t getRuntimeObserverKind(ObserverKind kind) {
  switch (kind) {
  case ObserverKind::minmax:
    return QNT_RT_OBS_MINMAX;
  case ObserverKind::per_channel_minmax:
    return QNT_RT_OBS_PER_CHANNEL_MINMAX;
  case ObserverKind::moving_average_minmax:
    return QNT_RT_OBS_MOVING_AVERAGE_MINMAX;
  case ObserverKind::moving_average_per_channel_minmax:
    return QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX;
  case ObserverKind::histogram:
  case ObserverKind::percentile:
  case ObserverKind::entropy:
    // They differ only in how the compiler picks the range.
    return QNT_RT_OBS_HISTOGRAM;
  case ObserverKind::fixed_qparams:
    break;
  }
  llvm_unreachable("unknown observer kind");
}

struct ObserveLowering : RuntimePattern<ObserveOp> {
  using RuntimePattern::RuntimePattern;
  LogicalResult
  matchAndRewrite(ObserveOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    // Fixed parameters need no statistics.
    if (op.getKind() == ObserverKind::fixed_qparams) {
      rewriter.replaceOp(op, adaptor.getInput());
      return success();
    }
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    qnt_rt_observe_params p{};
    p.outer = 1;
    p.channels = 1;
    p.inner = type.getNumElements();
    p.kind = getRuntimeObserverKind(op.getKind());
    if (op.isHistogramKind()) {
      p.bins = op.getBinsOrDefault();
      p.upsample_rate = op.getUpsampleRateOrDefault();
    }
    if (auto axis = op.getQspec().getAxis()) {
      for (int64_t d = 0; d < *axis; ++d)
        p.outer *= type.getDimSize(d);
      p.channels = type.getDimSize(*axis);
      p.inner = type.getNumElements() / (p.outer * p.channels);
    }
    calls.call(
        rewriter, loc, "qnt_rt_observe",
        {calls.getHandleSlot(rewriter, loc),
         calls.getI64Array(rewriter, loc, asArray(p)),
         calls.getF32Array(rewriter, loc, {op.getAveragingConstantOrDefault()}),
         calls.getString(rewriter, loc, op.getId()),
         calls.getPointer(rewriter, loc, adaptor.getInput())});
    rewriter.replaceOp(op, adaptor.getInput());
    return success();
  }
};

/// Same-scale TOSA ops (reshape, transpose, slice, and concat once its inputs
/// share the result's parameters) on quantized tensors only move storage
/// values: the same op on the storage type.
template <typename OpTy>
struct ConvertStorageTypes : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  LogicalResult
  matchAndRewrite(OpTy op, typename OpTy::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    SmallVector<Type> types;
    if (failed(this->getTypeConverter()->convertTypes(op->getResultTypes(),
                                                      types)))
      return failure();
    Operation *clone = rewriter.clone(*op);
    rewriter.modifyOpInPlace(clone, [&] {
      clone->setOperands(adaptor.getOperands());
      for (auto [result, type] : llvm::zip(clone->getResults(), types))
        result.setType(type);
    });
    rewriter.replaceOp(op, clone->getResults());
    return success();
  }
};

/// Ops that vanish: region markers and storage casts (both sides already
/// have the storage type).
template <typename OpTy> struct ForwardOperand : OpConversionPattern<OpTy> {
  using OpConversionPattern<OpTy>::OpConversionPattern;
  LogicalResult
  matchAndRewrite(OpTy op, typename OpTy::Adaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOp(op, adaptor.getOperands()[0]);
    return success();
  }
};

struct QntLowerToRuntimePass
    : qnt::impl::QntLowerToRuntimePassBase<QntLowerToRuntimePass> {
  using QntLowerToRuntimePassBase::QntLowerToRuntimePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<RuntimeBackend> kind = parseRuntimeBackend(backend);
    if (!kind) {
      module.emitError("unknown backend '")
          << backend << "'; expected one of: onednn, xnnpack, auto";
      return signalPassFailure();
    }
    MLIRContext *ctx = &getContext();
    QuantStorageTypeConverter converter;
    RuntimeCallBuilder calls(module);
    RewritePatternSet patterns(ctx);
    populateQntToRuntimePatterns(converter, calls, patterns, *kind);

    ConversionTarget target(*ctx);
    target.addIllegalDialect<QntDialect, quant::QuantDialect>();
    target.addDynamicallyLegalOp<func::FuncOp>([&](func::FuncOp op) {
      return converter.isSignatureLegal(op.getFunctionType()) &&
             converter.isLegal(&op.getBody());
    });
    target.markUnknownOpDynamicallyLegal(
        [&](Operation *op) { return converter.isLegal(op); });
    target.addDynamicallyLegalOp<tosa::MaxPool2dOp>([](tosa::MaxPool2dOp op) {
      return !PoolLowering<tosa::MaxPool2dOp>::isSupported(op);
    });
    target.addDynamicallyLegalOp<tosa::AvgPool2dOp>([](tosa::AvgPool2dOp op) {
      return !PoolLowering<tosa::AvgPool2dOp>::isSupported(op);
    });
    target.addDynamicallyLegalOp<tosa::MatMulOp>(
        [](tosa::MatMulOp op) { return !TosaMatmulLowering::isSupported(op); });
    // Never fold: quant.dcast(quant.qcast(x)) folds to x, which would drop
    // a quantization the program asked for.
    ConversionConfig config;
    config.foldingMode = DialectConversionFoldingMode::Never;
    if (failed(applyPartialConversion(module, target, std::move(patterns),
                                      config)))
      signalPassFailure();
  }
};

} // namespace

std::optional<RuntimeBackend> qnt::parseRuntimeBackend(StringRef name) {
  return llvm::StringSwitch<std::optional<RuntimeBackend>>(name)
      .Case("onednn", RuntimeBackend::onednn)
      .Case("xnnpack", RuntimeBackend::xnnpack)
      .Case("auto", RuntimeBackend::automatic)
      .Default(std::nullopt);
}

void qnt::populateQntToRuntimePatterns(TypeConverter &converter,
                                       RuntimeCallBuilder &calls,
                                       RewritePatternSet &patterns,
                                       RuntimeBackend backend) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<WeightedOpLowering<Conv2DOp>, WeightedOpLowering<LinearOp>,
               AddLowering, QuantizeCastLowering, DequantizeCastLowering,
               FakeQuantLowering, ObserveLowering,
               PoolLowering<tosa::MaxPool2dOp>, PoolLowering<tosa::AvgPool2dOp>,
               BatchMatmulLowering, TosaMatmulLowering>(converter, ctx, calls,
                                                        backend);
  patterns.add<ForwardOperand<QuantStubOp>, ForwardOperand<DequantStubOp>,
               ForwardOperand<quant::StorageCastOp>,
               ConvertStorageTypes<tosa::ReshapeOp>,
               ConvertStorageTypes<tosa::TransposeOp>,
               ConvertStorageTypes<tosa::SliceOp>,
               ConvertStorageTypes<tosa::ConcatOp>>(converter, ctx);
  populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns,
                                                                 converter);
  populateCallOpTypeConversionPattern(patterns, converter);
  populateReturnOpTypeConversionPattern(patterns, converter);
}
