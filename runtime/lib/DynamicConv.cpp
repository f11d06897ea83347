//===- DynamicConv.cpp - qnt_rt_conv2d_dynamic ----------------------------===//
//
// Dynamic quantization of a conv2d, ONNX Runtime's DynamicQuantizeLinear ->
// ConvInteger -> Cast -> Mul form: the input is quantized per call as
// DynamicQuantize.h says, the convolution is exact in int32, the result is
// float. The convolution runs on oneDNN's int8 conv (u8 NHWC source, weights
// packed once, the source zero point passed at execution, s32 result) where
// oneDNN is exact, else on the runtime's loop; the float epilogue is a
// vectorized loop over the int32 accumulators (oneDNN's int8 conv takes its
// output scales only at creation on AVX2, and S_in changes per call).
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "DynamicQuantize.h"
#include "Kernel.h"
#include "Profile.h"

#include <cstdio>

using namespace qnt::rt;
using dnnl::memory;

namespace {

/// Loops over at least this many accumulators run on the kernels' threads.
constexpr int64_t kParallelElements = 1 << 16;

/// dst[r, c] = act(float(acc[r, c]) * scales[c] + bias[c]) over `rows` rows
/// of `channels`: multiply, then add, then clamp, each rounded in f32 (ONNX
/// Runtime's Cast, Mul, Add, Relu / Clip).
QNT_RT_VECTOR_CLONES void dequantize(const int32_t *acc, int64_t rows,
                                     int64_t channels, const float *scales,
                                     const float *bias, int64_t activation,
                                     float lo, float hi, float *dst) {
  const bool relu = activation == QNT_RT_ACT_RELU;
  const bool clamp = activation == QNT_RT_ACT_CLAMP;
#pragma omp parallel for if (rows * channels >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t *a = acc + r * channels;
    float *d = dst + r * channels;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) {
      float v = float(a[c]) * scales[c];
      if (bias)
        v += bias[c];
      if (relu)
        v = v < 0.0f ? 0.0f : v;
      if (clamp) {
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
      }
      d[c] = v;
    }
  }
}

class DynamicConv {
public:
  DynamicConv(const qnt_rt_conv2d_params &p, const CommonSpec &s,
              const float *bias)
      : p_(p), s_(s) {
    if (bias)
      bias_.assign(bias, bias + p.oc);
  }
  virtual ~DynamicConv() = default;

  void run(const float *src, float *dst) const {
    const int64_t in = p_.n * p_.h * p_.w * p_.c;
    const int64_t rows = p_.n * p_.oh * p_.ow;
    uint8_t *x = threadBuffer<uint8_t>(size_t(in));
    DynamicParams q =
        quantizeDynamic(src, in, p_.dynamic_qparams, int32_t(s_.srcQmin),
                        int32_t(s_.srcQmax), x);
    int32_t *acc = threadBuffer<int32_t>(size_t(rows * p_.oc));
    accumulate(x, q.zeroPoint, acc);
    // S_in * S_w[c] in f32: ONNX Runtime's Mul of the two scales.
    float *scales = threadBuffer<float>(size_t(p_.oc));
    for (int64_t c = 0; c < p_.oc; ++c)
      scales[c] = q.scale * s_.scale(c);
    dequantize(acc, rows, p_.oc, scales, bias_.empty() ? nullptr : bias_.data(),
               s_.activation, s_.clampMin, s_.clampMax, dst);
  }
  virtual std::string describe() const = 0;

protected:
  /// acc = the int32 convolution of (x - zp) and the weights, NHWC.
  virtual void accumulate(const uint8_t *x, int32_t zp, int32_t *acc) const = 0;

  qnt_rt_conv2d_params p_;
  CommonSpec s_;
  std::vector<float> bias_;
};

/// oneDNN's int8 convolution with an s32 result: the source zero point is a
/// runtime value (its padding is the zero point, i.e. 0 after the shift).
class DnnlDynamicConv final : public DynamicConv {
public:
  DnnlDynamicConv(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                  const int8_t *weight, const float *bias)
      : DynamicConv(p, s, bias) {
    const bool grouped = p.groups > 1;
    memory::dims weiDims = grouped ? memory::dims{p.groups, p.oc / p.groups,
                                                  p.c / p.groups, p.kh, p.kw}
                                   : memory::dims{p.oc, p.c, p.kh, p.kw};
    srcMd_ = memory::desc({p.n, p.c, p.h, p.w}, dt::u8, tag::nhwc);
    dstMd_ = memory::desc({p.n, p.oc, p.oh, p.ow}, dt::s32, tag::nhwc);
    memory::desc weiAny(weiDims, dt::s8, tag::any);
    memory::desc weiUser(weiDims, dt::s8, grouped ? tag::gohwi : tag::ohwi);
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        srcMd_, weiAny, memory::desc(), dstMd_, {p.stride_h, p.stride_w},
        {p.dilation_h - 1, p.dilation_w - 1}, {p.pad_top, p.pad_left},
        {p.pad_bottom, p.pad_right});
    dnnl::primitive_attr attr = concurrentAttr();
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    dnnl::convolution_forward::primitive_desc pd(d, attr, cpuEngine());
    prim_ = Primitive(pd);
    wei_ = packWeights(weiUser, weight, pd.weights_desc());
  }

  const std::string &impl() const { return prim_.impl; }
  std::string describe() const override { return prim_.describe(); }

private:
  void accumulate(const uint8_t *x, int32_t zp, int32_t *acc) const override {
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(srcMd_, cpuEngine(), const_cast<uint8_t *>(x))},
        {DNNL_ARG_WEIGHTS, wei_},
        {DNNL_ARG_DST, memory(dstMd_, cpuEngine(), acc)},
        {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
         memory(memory::desc({1}, dt::s32, tag::x), cpuEngine(), &zp)}};
    prim_.run(args);
  }

  Primitive prim_;
  memory::desc srcMd_, dstMd_;
  memory wei_;
};

/// The convolution as portable loops (exact on every CPU; the path on
/// AArch64 and where oneDNN's u8 x s8 pair sums may saturate): per output
/// pixel and channel, a dot product per kernel tap inside the input, minus
/// zp times that tap's weight sum. Threads over output rows.
class RefDynamicConv final : public DynamicConv {
public:
  RefDynamicConv(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                 const int8_t *weight, const float *bias, std::string why)
      : DynamicConv(p, s, bias), icg_(p.c / p.groups), ocg_(p.oc / p.groups),
        weight_(weight, weight + p.oc * p.kh * p.kw * (p.c / p.groups)),
        tapSums_(p.oc * p.kh * p.kw), why_(std::move(why)) {
    if (icg_ > kMaxExactK)
      fatal("conv2d_dynamic: c / groups = " + std::to_string(icg_) +
            " exceeds " + std::to_string(kMaxExactK) + " (int32 accumulator)");
    for (size_t t = 0; t < tapSums_.size(); ++t)
      for (int64_t i = 0; i < icg_; ++i)
        tapSums_[t] += weight[int64_t(t) * icg_ + i];
  }

  std::string describe() const override { return "reference (" + why_ + ")"; }

private:
  void accumulate(const uint8_t *x, int32_t zp, int32_t *acc) const override {
    const qnt_rt_conv2d_params &p = p_;
#pragma omp parallel for collapse(                                             \
    2) if (p.n * p.oh * p.ow * p.oc * p.kh * p.kw * icg_ >= kParallelElements)
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t oy = 0; oy < p.oh; ++oy)
        for (int64_t ox = 0; ox < p.ow; ++ox) {
          int32_t *out = acc + ((n * p.oh + oy) * p.ow + ox) * p.oc;
          for (int64_t oc = 0; oc < p.oc; ++oc) {
            const int64_t g = oc / ocg_;
            int64_t sum = 0; // |zp * tap sums| may exceed int32
            for (int64_t ky = 0; ky < p.kh; ++ky) {
              const int64_t iy =
                  oy * p.stride_h - p.pad_top + ky * p.dilation_h;
              if (iy < 0 || iy >= p.h)
                continue;
              for (int64_t kx = 0; kx < p.kw; ++kx) {
                const int64_t ix =
                    ox * p.stride_w - p.pad_left + kx * p.dilation_w;
                if (ix < 0 || ix >= p.w)
                  continue;
                const int64_t tap = (oc * p.kh + ky) * p.kw + kx;
                sum += dotU8S8(x + ((n * p.h + iy) * p.w + ix) * p.c + g * icg_,
                               weight_.data() + tap * icg_, icg_) -
                       int64_t(zp) * tapSums_[tap];
              }
            }
            // Beyond int32 saturates (Runtime.h).
            out[oc] = int32_t(std::clamp<int64_t>(sum, INT32_MIN, INT32_MAX));
          }
        }
  }

  int64_t icg_, ocg_;
  std::vector<int8_t> weight_;   // OHWI
  std::vector<int64_t> tapSums_; // [oc][kh][kw]
  std::string why_;
};

DynamicConv *createDynamicConv(const qnt_rt_conv2d_params &p,
                               const CommonSpec &s, const int8_t *weight,
                               const float *bias) {
  std::string why =
      forceReference()
          ? "QNT_RT_FORCE_REFERENCE"
          : pairSumSaturation(s.srcQmax, weight,
                              p.oc * p.kh * p.kw * (p.c / p.groups));
  if (auto *kernel = tryOneDnn(
          [&] { return new DnnlDynamicConv(p, s, weight, bias); }, why))
    return kernel;
  return new RefDynamicConv(p, s, weight, bias, why);
}

} // namespace

extern "C" void qnt_rt_conv2d_dynamic(void **slot, const int64_t *params,
                                      const float *fparams, const void *src,
                                      const void *weight, const void *bias,
                                      void *dst) {
  const auto &p = *reinterpret_cast<const qnt_rt_conv2d_params *>(params);
  auto *k = getOrCreate<DynamicConv>(slot, [&] {
    checkConv2dShape(p, "conv2d_dynamic");
    CommonSpec s = readCommon(p, fparams);
    if (!isDynamicSpec(s, p.dynamic_qparams, bias, p.oc) ||
        (s.activation != QNT_RT_ACT_NONE && s.activation != QNT_RT_ACT_RELU &&
         s.activation != QNT_RT_ACT_CLAMP))
      fatal("conv2d_dynamic: invalid params");
    DynamicConv *k =
        createDynamicConv(p, s, static_cast<const int8_t *>(weight),
                          static_cast<const float *>(bias));
    if (verbose())
      std::fprintf(stderr,
                   "qnt_rt: conv2d_dynamic %ldx%ldx%ldx%ld -> oc%ld k%ldx%ld "
                   "g%ld: %s\n",
                   long(p.n), long(p.h), long(p.w), long(p.c), long(p.oc),
                   long(p.kh), long(p.kw), long(p.groups),
                   k->describe().c_str());
    return k;
  });
  prof::timed(
      k, "conv2d_dynamic",
      [&] {
        try {
          k->run(static_cast<const float *>(src), static_cast<float *>(dst));
        } catch (const dnnl::error &e) {
          fatal(std::string("oneDNN: ") + e.what());
        }
      },
      [&] {
        char d[160];
        std::snprintf(d, sizeof d,
                      "conv2d_dynamic %ldx%ldx%ldx%ld oc%ld k%ldx%ld s%ld",
                      long(p.n), long(p.h), long(p.w), long(p.c), long(p.oc),
                      long(p.kh), long(p.kw), long(p.stride_h));
        return prof::SiteInfo{std::string(d) + " (" + k->describe() + ")",
                              conv2dMacs(p)};
      });
}
