//===- DynamicLinear.cpp - qnt_rt_linear_dynamic --------------------------===//
//
// Dynamic quantization of a linear layer: the input's quantization parameters
// are chosen per call from its range, as PyTorch's quantize_dynamic or ONNX's
// DynamicQuantizeLinear does, the product is exact in int32, the result is
// float. The range scan and the quantization are vectorized loops (split
// across the kernels' threads when long); the product runs on oneDNN's int8
// matmul (weights packed once, the source zero point passed at execution, the
// dequantization fused into its output) where oneDNN is exact, else on the
// runtime's loop.
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "Kernel.h"
#include "Profile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace qnt::rt;
using dnnl::memory;

// The per-call loops get AVX2 and AVX-512 clones on x86 (rounding is one
// vroundps there; baseline x86-64 has no vector round), picked at load time
// by an ifunc resolver. Not under the sanitizers: an instrumented resolver
// runs before their runtime is initialized and crashes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&         \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define QNT_RT_VECTOR_CLONES                                                   \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QNT_RT_VECTOR_CLONES
#endif

namespace {

struct DynamicParams {
  float scale;
  int32_t zeroPoint;
};

/// PyTorch 1.13's quant_utils::ChooseQuantizationParams (no sparsity
/// preservation, no power-of-two scale), with [qmin, qmax] already reduced
/// when reduce_range applies.
DynamicParams chooseQuantizationParams(float min, float max, int32_t qmin,
                                       int32_t qmax) {
  constexpr float kSmallScaleThreshold = 6.1e-5f;
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  double scale = (static_cast<double>(max) - min) / (qmax - qmin);
  if (float(scale) == 0.0f || std::isinf(1.0f / float(scale)))
    scale = 0.1;
  if (scale < kSmallScaleThreshold) {
    float originalScale = scale;
    scale = kSmallScaleThreshold;
    if (min == 0.0f) {
      max = kSmallScaleThreshold * (qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScaleThreshold * (qmax - qmin);
    } else {
      float amplifier = kSmallScaleThreshold / originalScale;
      min *= amplifier;
      max *= amplifier;
    }
  }
  double fromMin = qmin - min / scale;
  double fromMax = qmax - max / scale;
  double fromMinError = std::abs(qmin) - std::abs(min / scale);
  double fromMaxError = std::abs(qmax) - std::abs(max / scale);
  double initial = fromMinError < fromMaxError ? fromMin : fromMax;
  int32_t zeroPoint = initial < qmin   ? qmin
                      : initial > qmax ? qmax
                                       : int32_t(std::nearbyint(initial));
  return {float(scale), zeroPoint};
}

/// ONNX's DynamicQuantizeLinear (u8), as ONNX Runtime computes it: all in
/// f32, the zero point clamped before it is rounded.
DynamicParams chooseOnnxRuntimeParams(float min, float max) {
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  float scale = max == min ? 1.0f : (max - min) / 255.0f;
  float initial = std::clamp(0.0f - min / scale, 0.0f, 255.0f);
  return {scale, int32_t(std::nearbyint(initial))};
}

/// Per-call loops at least this long run on the kernels' threads.
constexpr int64_t kParallelElements = 1 << 16;

/// [lo, hi] of `x[0, n)`, NaNs skipped.
QNT_RT_VECTOR_CLONES void range(const float *x, int64_t n, float &lo,
                                float &hi) {
  float l = INFINITY, h = -INFINITY;
#pragma omp parallel for simd reduction(min                                    \
                                        : l)                                   \
    reduction(max                                                              \
              : h) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  lo = l;
  hi = h;
}

/// q[i] = clamp(nearbyint(x[i] * (1 / scale)) + zp, qmin, qmax), PyTorch's
/// quantize of the activation, or with `divide` ONNX's x[i] / scale; a NaN
/// becomes qmin (what PyTorch's float to int conversion gives on x86 for
/// the usual qmin 0, and what MLAS's clamp gives).
QNT_RT_VECTOR_CLONES void quantize(const float *x, int64_t n, float scale,
                                   bool divide, float zp, float qmin,
                                   float qmax, uint8_t *q) {
  const float inverse = 1.0f / scale;
#pragma omp parallel for simd if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(divide ? x[i] / scale : x[i] * inverse) + zp;
    v = v >= qmin ? v : qmin;
    v = v <= qmax ? v : qmax;
    q[i] = static_cast<uint8_t>(v);
  }
}

/// A per-thread buffer of at least `count` elements (calls on one thread
/// run one at a time; concurrent calls on other threads have their own).
template <typename T> T *threadBuffer(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count)
    buffer.resize(count);
  return buffer.data();
}

class DynamicLinear {
public:
  DynamicLinear(const qnt_rt_linear_params &p, const CommonSpec &s)
      : p_(p), s_(s) {}
  virtual ~DynamicLinear() = default;

  void run(const float *src, float *dst) const {
    float lo, hi;
    range(src, p_.m * p_.k, lo, hi);
    if (!(lo <= hi)) // empty or all NaN: quantize around 0
      lo = hi = 0.0f;
    bool onnxRuntime = p_.dynamic_qparams == QNT_RT_DYNAMIC_ONNXRUNTIME;
    DynamicParams q =
        onnxRuntime ? chooseOnnxRuntimeParams(lo, hi)
                    : chooseQuantizationParams(lo, hi, int32_t(s_.srcQmin),
                                               int32_t(s_.srcQmax));
    uint8_t *x = threadBuffer<uint8_t>(size_t(p_.m * p_.k));
    quantize(src, p_.m * p_.k, q.scale, onnxRuntime, float(q.zeroPoint),
             float(s_.srcQmin), float(s_.srcQmax), x);
    multiply(x, q, dst);
  }
  virtual std::string describe() const = 0;

protected:
  /// dst = act(float(acc) * (S_in * S_w[n]) + bias[n]), acc = the int32
  /// product of (x - zero point) and the weights.
  virtual void multiply(const uint8_t *x, DynamicParams q,
                        float *dst) const = 0;

  qnt_rt_linear_params p_;
  CommonSpec s_;
};

/// The product and the epilogue in one oneDNN int8 matmul: the source zero
/// point is a runtime value, and the dequantization runs on the int32
/// accumulators as they leave the kernel (dst = float(acc), then binary
/// post-ops * scales[n] and + bias[n], then relu), so no int32 product is
/// written to memory and read again. The per-call scales S_in * S_w[n] are a
/// post-op operand, passed at execution: oneDNN's brgemm kernels take output
/// scales only at creation, and S_in changes per call. Multiply, then add,
/// then clamp, each rounded: the portable epilogue's order.
class DnnlDynamicLinear final : public DynamicLinear {
public:
  DnnlDynamicLinear(const qnt_rt_linear_params &p, const CommonSpec &s,
                    const int8_t *weight, const float *bias)
      : DynamicLinear(p, s) {
    srcMd_ = memory::desc({p.m, p.k}, dt::u8, tag::ab);
    dstMd_ = memory::desc({p.m, p.n}, dt::f32, tag::ab);
    rowMd_ = memory::desc({1, p.n}, dt::f32, tag::ab);
    memory::desc weiAny({p.k, p.n}, dt::s8, tag::any);
    memory::desc weiUser({p.k, p.n}, dt::s8, tag::ba);
    dnnl::primitive_attr attr = concurrentAttr();
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_mul, rowMd_);
    if (bias) {
      ops.append_binary(dnnl::algorithm::binary_add, rowMd_);
      bias_ = copyTo(bias, rowMd_);
    }
    if (s.activation == QNT_RT_ACT_RELU)
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
    dnnl::matmul::desc d(srcMd_, weiAny, memory::desc(), dstMd_);
    dnnl::matmul::primitive_desc pd(d, attr, cpuEngine());
    impl_ = pd.impl_info_str();
    prim_ = dnnl::matmul(pd);
    scratchpadMd_ = pd.scratchpad_desc();
    memory user(weiUser, cpuEngine(), const_cast<int8_t *>(weight));
    wei_ = reorderTo(user, pd.weights_desc());
  }

  const std::string &impl() const { return impl_; }
  std::string describe() const override { return "oneDNN " + impl_; }

private:
  void multiply(const uint8_t *x, DynamicParams q, float *dst) const override {
    float *scales = threadBuffer<float>(size_t(p_.n));
    for (int64_t n = 0; n < p_.n; ++n)
      scales[n] = q.scale * s_.scale(n);
    int32_t zp = q.zeroPoint;
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(srcMd_, cpuEngine(), const_cast<uint8_t *>(x))},
        {DNNL_ARG_WEIGHTS, wei_},
        {DNNL_ARG_DST, memory(dstMd_, cpuEngine(), dst)},
        {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
         memory(memory::desc({1}, dt::s32, tag::x), cpuEngine(), &zp)},
        {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
         memory(rowMd_, cpuEngine(), scales)}};
    if (bias_)
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, bias_);
    execute(prim_, scratchpadMd_, args);
  }

  dnnl::matmul prim_;
  memory::desc srcMd_, dstMd_, rowMd_, scratchpadMd_;
  memory wei_, bias_;
  std::string impl_;
};

/// sum_k x[k] * w[k] of u8 x s8 in int32: exact for k <= kMaxExactK (255 *
/// 128 * k < 2^31), and a loop the compiler vectorizes with widening
/// multiplies (NEON smlal / umlal on AArch64, vpmaddwd on x86).
constexpr int64_t kMaxExactK = (int64_t(1) << 31) / (255 * 128) - 1;

QNT_RT_VECTOR_CLONES int32_t dot(const uint8_t *x, const int8_t *w, int64_t k) {
  int32_t acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < k; ++i)
    acc += int32_t(x[i]) * int32_t(w[i]);
  return acc;
}

/// The product as portable loops (exact on every CPU; the path on
/// AArch64, where XNNPACK 2022 has no dynamically quantized fully
/// connected operator): acc[m, n] = x[m] . w[n] - zp * sum(w[n]), threads
/// over output channels, each weight row reused across all input rows.
class RefDynamicLinear final : public DynamicLinear {
public:
  RefDynamicLinear(const qnt_rt_linear_params &p, const CommonSpec &s,
                   const int8_t *weight, const float *bias, std::string why)
      : DynamicLinear(p, s), weight_(weight, weight + p.n * p.k), rowSums_(p.n),
        why_(std::move(why)) {
    if (p.k > kMaxExactK)
      fatal("linear_dynamic: k = " + std::to_string(p.k) + " exceeds " +
            std::to_string(kMaxExactK) + " (int32 accumulator)");
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t k = 0; k < p.k; ++k)
        rowSums_[n] += weight[n * p.k + k];
    if (bias)
      bias_.assign(bias, bias + p.n);
  }

  std::string describe() const override { return "reference (" + why_ + ")"; }

private:
  void multiply(const uint8_t *x, DynamicParams q, float *dst) const override {
    const int64_t rows = p_.m, cols = p_.n, k = p_.k;
#pragma omp parallel for if (rows * cols * k >= (1 << 16))
    for (int64_t n = 0; n < cols; ++n) {
      const int8_t *w = weight_.data() + n * k;
      // acc = x . w - zp * sum(w), in int64: |zp * sum(w)| may exceed int32.
      const int64_t offset = int64_t(q.zeroPoint) * rowSums_[n];
      const float scale = q.scale * s_.scale(n);
      for (int64_t m = 0; m < rows; ++m) {
        int64_t acc = int64_t(dot(x + m * k, w, k)) - offset;
        float v = float(acc) * scale;
        if (!bias_.empty())
          v += bias_[n];
        if (s_.activation == QNT_RT_ACT_RELU)
          v = v < 0.0f ? 0.0f : v;
        dst[m * cols + n] = v;
      }
    }
  }

  std::vector<int8_t> weight_;
  std::vector<int64_t> rowSums_;
  std::vector<float> bias_;
  std::string why_;
};

DynamicLinear *createDynamicLinear(const qnt_rt_linear_params &p,
                                   const CommonSpec &s, const int8_t *weight,
                                   const float *bias) {
  std::string why = forceReference()
                        ? "QNT_RT_FORCE_REFERENCE"
                        : pairSumSaturation(s.srcQmax, weight, p.n * p.k);
  if (auto *kernel = tryOneDnn(
          [&] { return new DnnlDynamicLinear(p, s, weight, bias); }, why))
    return kernel;
  return new RefDynamicLinear(p, s, weight, bias, why);
}

} // namespace

extern "C" void qnt_rt_linear_dynamic(void **slot, const int64_t *params,
                                      const float *fparams, const void *src,
                                      const void *weight, const void *bias,
                                      void *dst) {
  const auto &p = *reinterpret_cast<const qnt_rt_linear_params *>(params);
  auto *k = getOrCreate<DynamicLinear>(slot, [&] {
    CommonSpec s = readCommon(p, fparams);
    if (p.m <= 0 || p.k <= 0 || p.n <= 0 || s.srcDtype != QNT_RT_F32 ||
        s.weiDtype != QNT_RT_S8 || s.dstDtype != QNT_RT_F32 ||
        (s.biasKind == QNT_RT_BIAS_F32) != (bias != nullptr) ||
        s.biasKind == QNT_RT_BIAS_S32 || s.srcQmin < 0 || s.srcQmax > 255 ||
        s.srcQmin >= s.srcQmax ||
        (p.dynamic_qparams != QNT_RT_DYNAMIC_PYTORCH &&
         p.dynamic_qparams != QNT_RT_DYNAMIC_ONNXRUNTIME) ||
        (p.dynamic_qparams == QNT_RT_DYNAMIC_ONNXRUNTIME &&
         (s.srcQmin != 0 || s.srcQmax != 255)) ||
        (s.scales.size() != 1 && int64_t(s.scales.size()) != p.n))
      fatal("linear_dynamic: invalid params");
    DynamicLinear *k =
        createDynamicLinear(p, s, static_cast<const int8_t *>(weight),
                            static_cast<const float *>(bias));
    if (verbose())
      std::fprintf(stderr, "qnt_rt: linear_dynamic m%ld k%ld n%ld: %s\n",
                   long(p.m), long(p.k), long(p.n), k->describe().c_str());
    return k;
  });
  prof::timed(
      k, "linear_dynamic",
      [&] {
        try {
          k->run(static_cast<const float *>(src), static_cast<float *>(dst));
        } catch (const dnnl::error &e) {
          fatal(std::string("oneDNN: ") + e.what());
        }
      },
      [&] {
        char d[120];
        std::snprintf(d, sizeof d, "linear_dynamic m%ld k%ld n%ld", long(p.m),
                      long(p.k), long(p.n));
        return prof::SiteInfo{std::string(d) + " (" + k->describe() + ")",
                              p.m * p.k * p.n};
      });
}
