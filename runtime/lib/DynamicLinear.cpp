//===- DynamicLinear.cpp - qnt_rt_linear_dynamic --------------------------===//
//
// Dynamic quantization of a linear layer: the input's quantization parameters
// are chosen per call from its range, as PyTorch's quantize_dynamic or ONNX's
// DynamicQuantizeLinear does, the product is exact in int32, the result is
// float. The input is quantized as DynamicQuantize.h says; the product runs
// on oneDNN's int8 matmul (weights packed once, the source zero point passed
// at execution, the dequantization fused into its output) where oneDNN is
// exact, else on the runtime's loop.
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "DynamicQuantize.h"
#include "Kernel.h"
#include "Profile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace qnt::rt;
using dnnl::memory;

namespace {

class DynamicLinear {
public:
  DynamicLinear(const qnt_rt_linear_params &p, const CommonSpec &s)
      : p_(p), s_(s) {}
  virtual ~DynamicLinear() = default;

  void run(const float *src, float *dst) const {
    uint8_t *x = threadBuffer<uint8_t>(size_t(p_.m * p_.k));
    DynamicParams q =
        quantizeDynamic(src, p_.m * p_.k, p_.dynamic_qparams,
                        int32_t(s_.srcQmin), int32_t(s_.srcQmax), x);
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
    prim_ = Primitive(pd);
    wei_ = packWeights(weiUser, weight, pd.weights_desc());
  }

  const std::string &impl() const { return prim_.impl; }
  std::string describe() const override { return prim_.describe(); }

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
    prim_.run(args);
  }

  Primitive prim_;
  memory::desc srcMd_, dstMd_, rowMd_;
  memory wei_, bias_;
};

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
        int64_t acc = int64_t(dotU8S8(x + m * k, w, k)) - offset;
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
    if (p.m <= 0 || p.k <= 0 || p.n <= 0 ||
        !isDynamicSpec(s, p.dynamic_qparams, bias, p.n))
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
