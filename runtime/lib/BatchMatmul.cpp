//===- BatchMatmul.cpp - qnt_rt_batch_matmul ------------------------------===//
//
// Batched matmul of two activations (attention's q k^T and p v) on oneDNN's
// matmul primitive, created on the first call of each call site: neither
// operand is a constant, so nothing is packed ahead. Float, or quantized
// per tensor: oneDNN's int8 matmul takes u8 x s8, so an s8 `a` or a `b`
// with values above 127 has its sign bit flipped per call (q ^ 0x80 =
// q -+ 128, its zero point moved with it), which leaves every difference
// q - Z and so the result unchanged. Where oneDNN would not be exact (pair
// sums saturating without VNNI) the exact reference kernel runs.
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "Kernel.h"
#include "Profile.h"

#include <cstdio>

using namespace qnt::rt;
using dnnl::memory;

namespace {

using Params = qnt_rt_batch_matmul_params;

bool isQuantized(const Params &p) { return p.dtype != QNT_RT_F32; }

/// `a` as oneDNN's u8 source: s8 values flipped into u8.
bool flipsA(const Params &p) { return p.dtype == QNT_RT_S8; }
/// `b` as oneDNN's s8 weights: u8 values above 127 flipped into s8 (u8
/// values in [0, 127] are the same s8 values).
bool flipsB(const Params &p) { return p.dtype == QNT_RT_U8 && p.b_qmax > 127; }

/// The common fields of the int8 source (a, after flipping) and result.
CommonSpec int8Spec(const Params &p, float multiplier) {
  CommonSpec s{};
  s.srcDtype = QNT_RT_U8;
  s.weiDtype = QNT_RT_S8;
  s.dstDtype = p.dtype;
  s.biasKind = QNT_RT_BIAS_NONE;
  s.activation = QNT_RT_ACT_NONE;
  s.srcZp = p.a_zp + (flipsA(p) ? 128 : 0);
  s.srcQmin = p.a_qmin + (flipsA(p) ? 128 : 0);
  s.srcQmax = p.a_qmax + (flipsA(p) ? 128 : 0);
  s.dstZp = p.dst_zp;
  s.dstQmin = p.dst_qmin;
  s.dstQmax = p.dst_qmax;
  s.backend = QNT_RT_BACKEND_ONEDNN;
  s.scales = {multiplier};
  return s;
}

/// `data ^ 0x80` into a buffer of the calling thread, reused by later calls.
const void *flipSignBits(const void *data, int64_t bytes,
                         std::vector<uint8_t> &buffer) {
  buffer.resize(bytes);
  const auto *in = static_cast<const uint8_t *>(data);
  uint8_t *out = buffer.data();
  for (int64_t i = 0; i < bytes; ++i)
    out[i] = in[i] ^ 0x80;
  return out;
}

class BatchMatmulKernel {
public:
  virtual ~BatchMatmulKernel() = default;
  virtual void run(const void *a, const void *b, void *dst) = 0;
  virtual std::string describe() const = 0;
};

class DnnlBatchMatmul final : public BatchMatmulKernel {
public:
  DnnlBatchMatmul(const Params &p, float multiplier) : p_(p) {
    bool quantized = isQuantized(p);
    dt aType = quantized ? dt::u8 : dt::f32;
    dt bType = quantized ? dt::s8 : dt::f32;
    aMd_ = memory::desc({p.batch, p.m, p.k}, aType, tag::abc);
    bMd_ = memory::desc({p.batch, p.k, p.n}, bType,
                        p.b_transposed ? tag::acb : tag::abc);
    dstMd_ = memory::desc({p.batch, p.m, p.n}, toDnnl(p.dtype), tag::abc);
    dnnl::primitive_attr attr = concurrentAttr();
    if (quantized) {
      attr = makeAttr(int8Spec(p, multiplier), 0, /*runtimeSrcZp=*/false);
      int64_t bZp = p.b_zp - (flipsB(p) ? 128 : 0);
      if (bZp != 0)
        attr.set_zero_points(DNNL_ARG_WEIGHTS, 0, {static_cast<int32_t>(bZp)});
    }
    dnnl::matmul::desc d(aMd_, bMd_, dstMd_);
    dnnl::matmul::primitive_desc pd(d, attr, cpuEngine());
    prim_ = Primitive(pd);
  }

  void run(const void *a, const void *b, void *dst) override {
    thread_local std::vector<uint8_t> aFlipped, bFlipped;
    if (flipsA(p_))
      a = flipSignBits(a, p_.batch * p_.m * p_.k, aFlipped);
    if (flipsB(p_))
      b = flipSignBits(b, p_.batch * p_.k * p_.n, bFlipped);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(aMd_, cpuEngine(), const_cast<void *>(a))},
        {DNNL_ARG_WEIGHTS, memory(bMd_, cpuEngine(), const_cast<void *>(b))},
        {DNNL_ARG_DST, memory(dstMd_, cpuEngine(), dst)}};
    prim_.run(args);
  }

  std::string describe() const override { return prim_.describe(); }
  const std::string &impl() const { return prim_.impl; }

private:
  Params p_;
  Primitive prim_;
  memory::desc aMd_, bMd_, dstMd_;
};

/// The header's formula, one output at a time.
class RefBatchMatmul final : public BatchMatmulKernel {
public:
  RefBatchMatmul(const Params &p, float multiplier, std::string why)
      : p_(p), m_(multiplier), rq_(int8Spec(p, multiplier)),
        why_(std::move(why)) {}

  void run(const void *a, const void *b, void *dst) override {
    if (p_.dtype == QNT_RT_U8)
      runImpl(static_cast<const uint8_t *>(a), static_cast<const uint8_t *>(b),
              static_cast<uint8_t *>(dst));
    else
      runImpl(static_cast<const int8_t *>(a), static_cast<const int8_t *>(b),
              static_cast<int8_t *>(dst));
  }

  std::string describe() const override { return "reference (" + why_ + ")"; }

private:
  template <typename T> void runImpl(const T *a, const T *b, T *dst) const {
    const int64_t m = p_.m, k = p_.k, n = p_.n;
    for (int64_t i = 0; i < p_.batch; ++i) {
      const T *ai = a + i * m * k, *bi = b + i * k * n;
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) {
          int64_t acc = 0;
          for (int64_t t = 0; t < k; ++t) {
            int64_t bv = p_.b_transposed ? bi[j * k + t] : bi[t * n + j];
            acc += (int64_t(ai[r * k + t]) - p_.a_zp) * (bv - p_.b_zp);
          }
          dst[(i * m + r) * n + j] = static_cast<T>(rq_(acc, m_));
        }
    }
  }

  Params p_;
  float m_;
  Requant rq_;
  std::string why_;
};

/// Checks what only a compiler bug can get wrong.
void validate(const Params &p, const float *fparams) {
  if (p.batch <= 0 || p.m <= 0 || p.k <= 0 || p.n <= 0)
    fatal("batch_matmul: invalid params: non-positive dimension");
  if (p.dtype == QNT_RT_F32)
    return;
  if (p.dtype != QNT_RT_U8 && p.dtype != QNT_RT_S8)
    fatal(std::string("batch_matmul: unsupported dtype ") + dtypeName(p.dtype));
  if (!fparams || !(fparams[0] > 0.0f) || !std::isfinite(fparams[0]))
    fatal("batch_matmul: the multiplier M must be finite and positive");
  int64_t lo, hi;
  dtypeRange(p.dtype, lo, hi);
  auto check = [&](const char *what, int64_t zp, int64_t qmin, int64_t qmax) {
    if (qmin < lo || qmax > hi || qmin > qmax || zp < lo || zp > hi)
      fatal(std::string("batch_matmul: invalid ") + what + " range [" +
            std::to_string(qmin) + ", " + std::to_string(qmax) +
            "] or zero point " + std::to_string(zp));
  };
  check("a", p.a_zp, p.a_qmin, p.a_qmax);
  check("b", p.b_zp, p.b_qmin, p.b_qmax);
  check("dst", p.dst_zp, p.dst_qmin, p.dst_qmax);
}

BatchMatmulKernel *create(const Params &p, const float *fparams) {
  validate(p, fparams);
  if (!isQuantized(p))
    return new DnnlBatchMatmul(p, 1.0f);
  float multiplier = fparams[0];
  std::string why;
  if (forceReference()) {
    why = "QNT_RT_FORCE_REFERENCE";
  } else {
    // The largest |b| oneDNN sees as s8, after flipping.
    int64_t shift = flipsB(p) ? 128 : 0;
    int64_t bMax =
        std::max(std::abs(p.b_qmin - shift), std::abs(p.b_qmax - shift));
    why = pairSumSaturation(int8Spec(p, multiplier).srcQmax, bMax);
  }
  if (auto *kernel =
          tryOneDnn([&] { return new DnnlBatchMatmul(p, multiplier); }, why))
    return kernel;
  return new RefBatchMatmul(p, multiplier, why);
}

} // namespace

extern "C" void qnt_rt_batch_matmul(void **slot, const int64_t *params,
                                    const float *fparams, const void *a,
                                    const void *b, void *dst) {
  const auto &p = *reinterpret_cast<const Params *>(params);
  auto *k = getOrCreate<BatchMatmulKernel>(slot, [&] {
    auto *k = create(p, fparams);
    if (verbose())
      std::fprintf(stderr, "qnt_rt: batch_matmul %s b%ld m%ld k%ld n%ld: %s\n",
                   dtypeName(p.dtype), long(p.batch), long(p.m), long(p.k),
                   long(p.n), k->describe().c_str());
    return k;
  });
  prof::timed(
      k, "batch_matmul",
      [&] {
        try {
          k->run(a, b, dst);
        } catch (const dnnl::error &e) {
          fatal(std::string("oneDNN: ") + e.what());
        }
      },
      [&] {
        char d[120];
        std::snprintf(d, sizeof d, "batch_matmul %s b%ld m%ld k%ld n%ld%s (",
                      dtypeName(p.dtype), long(p.batch), long(p.m), long(p.k),
                      long(p.n), p.b_transposed ? " b^T" : "");
        return prof::SiteInfo{d + k->describe() + ")",
                              p.batch * p.m * p.k * p.n};
      });
}
