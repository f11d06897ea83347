//===- Elementwise.cpp - add, quantize, dequantize, fake_quant ------------===//
//
// Plain loops; they keep no per-call-site state, so `slot` is unused.
//
// Rounding is rint() in the default mode (half to even). For 8-bit results
// the value is clamped to [qmin - Z, qmax - Z] first (exact: the bounds are
// integers) and then rounded with (v + 1.5 * 2^23) - 1.5 * 2^23, which is
// bit-identical to nearbyint for |v| < 2^22 and vectorizes without SSE4.1.
// NaN quantizes to qmin. The library is built with -ffp-contract=off, so
// products and sums are rounded as written (no FMA).
//
//===----------------------------------------------------------------------===//

#include "Common.h"
#include "Profile.h"
#include "Xnnpack.h"

#include <cstdio>

#include <type_traits>

using namespace qnt::rt;

namespace {

/// Maps a scaled value v = x * (1 / S) to clamp(rint(v) + zp, qmin, qmax).
template <typename Q> struct Quantizer;

template <typename Q> struct SmallQuantizer {
  float lo, hi;
  int32_t zp;
  SmallQuantizer(int64_t qmin, int64_t qmax, int64_t z)
      : lo(float(qmin - z)), hi(float(qmax - z)), zp(int32_t(z)) {
    if (z < -(int64_t(1) << 20) || z > (int64_t(1) << 20))
      fatal("zero point " + std::to_string(z) + " out of range");
  }
  int32_t operator()(float v) const {
    v = !(v >= lo) ? lo : v > hi ? hi : v; // NaN -> lo
    v = (v + 12582912.0f) - 12582912.0f;   // rint for |v| < 2^22
    return int32_t(v) + zp;
  }
};
template <> struct Quantizer<uint8_t> : SmallQuantizer<uint8_t> {
  using SmallQuantizer::SmallQuantizer;
};
template <> struct Quantizer<int8_t> : SmallQuantizer<int8_t> {
  using SmallQuantizer::SmallQuantizer;
};
template <> struct Quantizer<int32_t> {
  double lo, hi;
  int64_t zp;
  Quantizer(int64_t qmin, int64_t qmax, int64_t z)
      : lo(double(qmin - z)), hi(double(qmax - z)), zp(z) {}
  int64_t operator()(float v) const {
    double r = std::nearbyint(double(v)); // == nearbyintf(v)
    r = !(r >= lo) ? lo : r > hi ? hi : r;
    return int64_t(r) + zp;
  }
};

void checkRange(const char *op, int64_t dtype, int64_t qmin, int64_t qmax) {
  int64_t lo, hi;
  dtypeRange(dtype, lo, hi);
  if (qmin < lo || qmax > hi || qmin > qmax)
    fatal(std::string(op) + ": invalid range [" + std::to_string(qmin) + ", " +
          std::to_string(qmax) + "] for " + dtypeName(dtype));
}

template <typename F> void dispatchQ(int64_t dtype, const char *op, F f) {
  switch (dtype) {
  case QNT_RT_U8:
    f(uint8_t());
    return;
  case QNT_RT_S8:
    f(int8_t());
    return;
  case QNT_RT_S32:
    f(int32_t());
    return;
  default:
    fatal(std::string(op) + ": unsupported dtype " + dtypeName(dtype));
  }
}

//===----------------------------------------------------------------------===//
// add
//===----------------------------------------------------------------------===//

/// Elements from which a loop is split across the OpenMP threads.
constexpr int64_t kParallelGrain = 1 << 14;

/// Runs f(i) for i in [0, n), split across the OpenMP threads when n is
/// large. Small loops never enter a parallel region: with an `if` clause
/// libgomp is still called (~300 ns), which made per-element loops 100x
/// slower.
template <typename F> inline void parallelFor(int64_t n, const F &f) {
  if (n >= kParallelGrain) {
#pragma omp parallel
    {
      // A private copy of the closure: stores through u8 / s8 pointers may
      // alias anything else, which would stop vectorization.
      const F g = f;
#pragma omp for simd
      for (int64_t i = 0; i < n; ++i)
        g(i);
    }
  } else {
    const F g = f;
    for (int64_t i = 0; i < n; ++i)
      g(i);
  }
}

template <typename Q, bool Relu>
void addQuantizedLoop(const qnt_rt_add_params &p, const float *fp, const Q *a,
                      const Q *b, Q *dst) {
  const float sa = fp[0], sb = fp[1], inv = 1.0f / fp[2];
  // int32 differences convert to float exactly like the int64 ones for
  // 8-bit storage and vectorize (the int32 storage path uses int64).
  using Wide = std::conditional_t<sizeof(Q) == 1, int32_t, int64_t>;
  const Wide az = Wide(p.a_zp), bz = Wide(p.b_zp);
  const Quantizer<Q> quant(p.dst_qmin, p.dst_qmax, p.dst_zp);
  parallelFor(p.numel, [=](int64_t i) {
    float r = float(Wide(a[i]) - az) * sa + float(Wide(b[i]) - bz) * sb;
    if (Relu)
      r = r < 0.0f ? 0.0f : r;
    dst[i] = static_cast<Q>(quant(r * inv));
  });
}

template <typename Q>
void addQuantized(const qnt_rt_add_params &p, const float *fp, const Q *a,
                  const Q *b, Q *dst) {
  if (p.relu)
    addQuantizedLoop<Q, true>(p, fp, a, b, dst);
  else
    addQuantizedLoop<Q, false>(p, fp, a, b, dst);
}

void addQuantizedAny(const qnt_rt_add_params &p, const float *fparams,
                     const void *a, const void *b, void *dst) {
  dispatchQ(p.dtype, "add", [&](auto q) {
    using Q = decltype(q);
    addQuantized<Q>(p, fparams, static_cast<const Q *>(a),
                    static_cast<const Q *>(b), static_cast<Q *>(dst));
  });
}

/// The runtime's own quantized add, for call sites that asked for XNNPACK
/// where XNNPACK rejects the parameters.
class LoopAdd final : public BinaryKernel {
public:
  LoopAdd(const qnt_rt_add_params &p, const float *fparams, std::string why)
      : p_(p), fparams_{fparams[0], fparams[1], fparams[2]},
        why_(std::move(why)) {}
  void run(const void *a, const void *b, void *dst) override {
    addQuantizedAny(p_, fparams_, a, b, dst);
  }
  std::string describe() const override { return "loop (" + why_ + ")"; }

private:
  qnt_rt_add_params p_;
  float fparams_[3];
  std::string why_;
};

BinaryKernel *createAdd(const qnt_rt_add_params &p, const float *fparams) {
  std::string why;
  BinaryKernel *k = forceReference() ? nullptr : createXnnAdd(p, fparams, why);
  if (!k)
    k = new LoopAdd(p, fparams, forceReference() ? "forced" : why);
  if (verbose())
    std::fprintf(stderr, "qnt_rt: add %s numel %ld%s: %s\n", dtypeName(p.dtype),
                 long(p.numel), p.relu ? " relu" : "", k->describe().c_str());
  return k;
}

void addFloat(const qnt_rt_add_params &p, const float *a, const float *b,
              float *dst) {
  if (p.relu) {
    for (int64_t i = 0; i < p.numel; ++i) {
      float r = a[i] + b[i];
      dst[i] = r < 0.0f ? 0.0f : r; // NaN stays NaN
    }
  } else {
    for (int64_t i = 0; i < p.numel; ++i)
      dst[i] = a[i] + b[i];
  }
}

//===----------------------------------------------------------------------===//
// quantize / dequantize / fake_quant
//===----------------------------------------------------------------------===//

// The params are taken by value: a u8 / s8 store may alias any object, so
// through a reference every p.inner would be reloaded after each store and
// the loops would not vectorize (5x slower).
template <typename Q>
void quantizeImpl(const qnt_rt_quant_params p, const float *scales,
                  const int64_t *zps, const float *src, Q *dst) {
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t c = 0; c < p.channels; ++c) {
      const float scale = scales[c], inv = 1.0f / scale;
      const Quantizer<Q> quant(p.qmin, p.qmax, zps[c]);
      const int64_t base = (o * p.channels + c) * p.inner;
      const float *s = src + base;
      Q *d = dst + base;
      if (p.divide)
        parallelFor(p.inner, [=](int64_t i) {
          d[i] = static_cast<Q>(quant(s[i] / scale));
        });
      else
        parallelFor(p.inner, [=](int64_t i) {
          d[i] = static_cast<Q>(quant(s[i] * inv));
        });
    }
}

template <typename Q>
void dequantizeImpl(const qnt_rt_quant_params p, const float *scales,
                    const int64_t *zps, const Q *src, float *dst) {
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t c = 0; c < p.channels; ++c) {
      const float scale = scales[c];
      const int64_t base = (o * p.channels + c) * p.inner;
      const Q *s = src + base;
      float *d = dst + base;
      if (sizeof(Q) == 1) { // q - Z is exact in int32
        const int32_t z = int32_t(zps[c]);
        parallelFor(p.inner, [=](int64_t i) {
          d[i] = float(int32_t(s[i]) - z) * scale;
        });
      } else {
        const int64_t z = zps[c];
        for (int64_t i = 0; i < p.inner; ++i)
          d[i] = float(int64_t(s[i]) - z) * scale;
      }
    }
}

template <typename Q>
void fakeQuantImpl(const qnt_rt_quant_params p, const float *scales,
                   const int64_t *zps, const float *src, float *dst) {
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t c = 0; c < p.channels; ++c) {
      const float scale = scales[c], inv = 1.0f / scale;
      const int64_t z = zps[c];
      const Quantizer<Q> quant(p.qmin, p.qmax, z);
      const int64_t base = (o * p.channels + c) * p.inner;
      const float *s = src + base;
      float *d = dst + base;
      for (int64_t i = 0; i < p.inner; ++i)
        d[i] = float(int64_t(quant(s[i] * inv)) - z) * scale;
    }
}

const qnt_rt_quant_params &quantParams(const int64_t *params, const char *op) {
  const auto &p = *reinterpret_cast<const qnt_rt_quant_params *>(params);
  if (p.outer < 0 || p.channels <= 0 || p.inner < 0)
    fatal(std::string(op) + ": invalid shape");
  checkRange(op, p.qdtype, p.qmin, p.qmax);
  return p;
}

/// Profile key of a stateless kernel: its (per-call-site) slot, else params.
const void *profileKey(void **slot, const int64_t *params) {
  return slot ? static_cast<const void *>(slot) : params;
}

prof::SiteInfo quantInfo(const char *what, const qnt_rt_quant_params &p) {
  char d[128];
  std::snprintf(d, sizeof d, "%s %s numel %ld%s", what, dtypeName(p.qdtype),
                long(p.outer * p.channels * p.inner),
                p.channels > 1 ? " per-channel" : "");
  return prof::SiteInfo{d, 0};
}

} // namespace

extern "C" {

void qnt_rt_add(void **slot, const int64_t *params, const float *fparams,
                const void *a, const void *b, void *dst) {
  const auto &p = *reinterpret_cast<const qnt_rt_add_params *>(params);
  prof::timed(
      profileKey(slot, params), "add",
      [&] {
        if (p.dtype == QNT_RT_F32) {
          addFloat(p, static_cast<const float *>(a),
                   static_cast<const float *>(b), static_cast<float *>(dst));
          return;
        }
        checkRange("add", p.dtype, p.dst_qmin, p.dst_qmax);
        if (p.backend == QNT_RT_BACKEND_XNNPACK && slot) {
          getOrCreate<BinaryKernel>(slot, [&] {
            return createAdd(p, fparams);
          })->run(a, b, dst);
          return;
        }
        if (p.backend != QNT_RT_BACKEND_ONEDNN &&
            p.backend != QNT_RT_BACKEND_XNNPACK)
          fatal("add: unknown backend " + std::to_string(p.backend));
        addQuantizedAny(p, fparams, a, b, dst);
      },
      [&] {
        char d[96];
        std::snprintf(d, sizeof d, "add %s numel %ld%s", dtypeName(p.dtype),
                      long(p.numel), p.relu ? " relu" : "");
        return prof::SiteInfo{d, 0};
      });
}

void qnt_rt_quantize(void **slot, const int64_t *params, const float *scales,
                     const int64_t *zero_points, const float *src, void *dst) {
  const auto &p = quantParams(params, "quantize");
  prof::timed(
      profileKey(slot, params), "quantize",
      [&] {
        dispatchQ(p.qdtype, "quantize", [&](auto q) {
          using Q = decltype(q);
          quantizeImpl<Q>(p, scales, zero_points, src, static_cast<Q *>(dst));
        });
      },
      [&] { return quantInfo("quantize f32 ->", p); });
}

void qnt_rt_dequantize(void **slot, const int64_t *params, const float *scales,
                       const int64_t *zero_points, const void *src,
                       float *dst) {
  const auto &p = quantParams(params, "dequantize");
  prof::timed(
      profileKey(slot, params), "dequantize",
      [&] {
        dispatchQ(p.qdtype, "dequantize", [&](auto q) {
          using Q = decltype(q);
          dequantizeImpl<Q>(p, scales, zero_points, static_cast<const Q *>(src),
                            dst);
        });
      },
      [&] { return quantInfo("dequantize f32 <-", p); });
}

void qnt_rt_fake_quant(void **, const int64_t *params, const float *scales,
                       const int64_t *zero_points, const float *src,
                       float *dst) {
  const auto &p = quantParams(params, "fake_quant");
  dispatchQ(p.qdtype, "fake_quant", [&](auto q) {
    using Q = decltype(q);
    fakeQuantImpl<Q>(p, scales, zero_points, src, dst);
  });
}

} // extern "C"
