//===- Vnni.h - Shared parts of the runtime's own int8 kernels --*- C++ -*-===//
//
// What the depthwise conv2d (Depthwise.cpp) and the stem conv2d
// (StemConv.cpp) share: ISA checks, the AVX-512 VNNI vector operations, the
// requantization of 64 int32 accumulators held in the in-lane channel order
// (vector g of a block of 64 channels holds channel 16 l + 4 g + i in 32-bit
// lane 4 l + i: the order vpunpck produces and vpack undoes), the int32
// accumulator bound, and the OpenMP runner of a plan's items. x86-64 only
// (QNT_VNNI_X86).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_VNNI_H
#define QNT_RUNTIME_LIB_VNNI_H

#include "Kernel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#define QNT_VNNI_X86 1
#include <immintrin.h>
#endif

#ifdef QNT_VNNI_X86

// The GCC warnings this code provokes (-Wpsabi, -Wmaybe-uninitialized inside
// GCC's intrinsics) are switched off for its two files in
// runtime/CMakeLists.txt, not here, so they stay on for everything else.

#define QNT_TARGET_AVX2 __attribute__((target("avx2")))
#define QNT_TARGET_AVX512                                                      \
  __attribute__((target("avx2,avx512f,avx512bw,avx512vl")))
#define QNT_TARGET_AVX512_VNNI                                                 \
  __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace qnt {
namespace rt {
namespace vnni {

inline bool cpuHasAvx2() { return __builtin_cpu_supports("avx2"); }
inline bool cpuHasAvx512() {
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}
inline bool cpuHasAvx512Vnni() {
  return cpuHasAvx512() && __builtin_cpu_supports("avx512vnni");
}

/// True if ONEDNN_MAX_CPU_ISA (as oneDNN reads it) allows `isa`. oneDNN's ISA
/// values are bit sets, each containing the ISAs below it.
inline bool oneDnnAllows(dnnl::cpu_isa isa) {
  auto bits = static_cast<unsigned>(isa);
  return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & bits) == bits;
}

/// Largest |x - zp| for x in the storage range of `dtype`.
inline int64_t maxAbsShifted(int64_t dtype, int64_t zp) {
  int64_t lo, hi;
  dtypeRange(dtype, lo, hi);
  return std::max(std::abs(lo - zp), std::abs(hi - zp));
}

/// A bound on |acc| of a quantized conv whose outputs sum `taps` products
/// (src - src_zp) * w: the kernels here accumulate in int32 only below
/// INT32_MAX, the bound under which RefConv2d accumulates in int32 as well
/// (beyond it RefConv2d saturates an int64 sum).
inline double accumulatorBound(const CommonSpec &s, const int8_t *w,
                               int64_t weights, const int32_t *bias, int64_t oc,
                               int64_t taps) {
  int64_t maxBias = 0;
  for (int64_t c = 0; bias && c < oc; ++c)
    maxBias = std::max<int64_t>(maxBias, std::abs(int64_t(bias[c])));
  return double(taps) * double(maxAbsShifted(s.srcDtype, s.srcZp)) *
             double(maxAbs(w, weights)) +
         double(maxBias);
}

/// Why a kernel here cannot take a quantized conv2d whatever its shape
/// (dilation, a bias pointer that does not match bias_kind), or null.
inline const char *unsupportedConv2d(const qnt_rt_conv2d_params &p,
                                     const CommonSpec &s, const void *bias) {
  if (p.dilation_h != 1 || p.dilation_w != 1)
    return "dilation";
  if ((s.biasKind != QNT_RT_BIAS_NONE) != (bias != nullptr))
    return "bias pointer does not match bias_kind";
  return nullptr;
}

/// The src zero point as the u8 x s8 kernels see it (u8: src; s8: src + 128,
/// the input read with its top bit flipped).
inline int64_t shiftedSrcZp(const CommonSpec &s) {
  return s.srcZp + (s.srcDtype == QNT_RT_S8 ? 128 : 0);
}

/// The largest |dst_zp| the saturating requantization below takes: int16
/// saturation at +-(2^15 - 1) plus it stays beyond the dst range.
constexpr int64_t kMaxDstZp = 32767 - 255;

/// The requantization constants of a plan (see requantStore).
struct RequantPlan {
  int16_t dstZp;           // |dst_zp| <= kMaxDstZp
  int8_t qmin, qmax;       // dst_qmin, dst_qmax as dst bytes
  bool clampMin, clampMax; // whether they are inside the dst dtype
  bool clampScaled;        // whether float(acc) * M may reach 2^31

  /// For `channels` output channels whose |acc| is at most `accBound`.
  RequantPlan(const CommonSpec &s, int64_t channels, double accBound) {
    dstZp = static_cast<int16_t>(s.dstZp);
    int64_t lo, hi;
    dtypeRange(s.dstDtype, lo, hi);
    qmin = static_cast<int8_t>(s.dstQmin);
    qmax = static_cast<int8_t>(s.dstQmax);
    clampMin = s.dstQmin > lo, clampMax = s.dstQmax < hi;
    double maxScale = 0;
    for (int64_t c = 0; c < channels; ++c)
      maxScale = std::max<double>(maxScale, std::fabs(s.scale(c)));
    // With margin for the float roundings of acc and of the product.
    clampScaled = accBound * maxScale >= double(int64_t(1) << 30);
  }
  RequantPlan() = default;
};

/// Vector operations on 64 channels (Zmm) or 32 (Ymm, for blocks of at most
/// 32 channels: the same lane order on two 128-bit lanes, reading the first
/// half of each zmm-sized entry of a plan).
struct Zmm {
  using V = __m512i;
  using F = __m512;
  using Mask = __mmask64;
  static constexpr int kBytes = 64;
  QNT_TARGET_AVX512_VNNI static V loadBytes(Mask m, const void *p) {
    if (m == Mask(~Mask(0)))
      return _mm512_loadu_si512(p);
    return _mm512_maskz_loadu_epi8(m, p);
  }
  QNT_TARGET_AVX512_VNNI static V load(const void *p) {
    return _mm512_loadu_si512(p);
  }
  QNT_TARGET_AVX512_VNNI static void store(void *p, V v) {
    _mm512_storeu_si512(p, v);
  }
  QNT_TARGET_AVX512_VNNI static F loadF(const float *p) {
    return _mm512_loadu_ps(p);
  }
  QNT_TARGET_AVX512_VNNI static V set32(int32_t v) {
    return _mm512_set1_epi32(v);
  }
  QNT_TARGET_AVX512_VNNI static V set16(int16_t v) {
    return _mm512_set1_epi16(v);
  }
  QNT_TARGET_AVX512_VNNI static V xor8(V a, V b) {
    return _mm512_xor_si512(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V zero() { return _mm512_setzero_si512(); }
  QNT_TARGET_AVX512_VNNI static V unpackLo8(V a, V b) {
    return _mm512_unpacklo_epi8(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V unpackHi8(V a, V b) {
    return _mm512_unpackhi_epi8(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V unpackLo16(V a, V b) {
    return _mm512_unpacklo_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V unpackHi16(V a, V b) {
    return _mm512_unpackhi_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V dpbusd(V acc, V u8, V s8) {
    return _mm512_dpbusd_epi32(acc, u8, s8);
  }
  /// rint(float(acc) * scale) where it is below 2^15, else a value at
  /// least 2^15 - 1: with Clamp, values from 2^31 up, which cvtps2dq would
  /// turn into INT_MIN, are clamped first (those from -2^31 down become
  /// INT_MIN, which is low enough).
  template <bool Clamp> QNT_TARGET_AVX512_VNNI static V scale(V acc, F scale) {
    F f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    if (Clamp)
      f = _mm512_min_ps(f, _mm512_set1_ps(32767.0f));
    return _mm512_cvtps_epi32(f);
  }
  /// Each 32-bit quad (a, b, c, d) as (0, a, b, c).
  QNT_TARGET_AVX512_VNNI static V shiftQuads(V v) {
    return _mm512_slli_epi32(v, 8);
  }
  QNT_TARGET_AVX512_VNNI static V packs32(V a, V b) {
    return _mm512_packs_epi32(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V adds16(V a, V b) {
    return _mm512_adds_epi16(a, b);
  }
  template <bool Signed> QNT_TARGET_AVX512_VNNI static V max8(V a, V b) {
    return Signed ? _mm512_max_epi8(a, b) : _mm512_max_epu8(a, b);
  }
  template <bool Signed> QNT_TARGET_AVX512_VNNI static V min8(V a, V b) {
    return Signed ? _mm512_min_epi8(a, b) : _mm512_min_epu8(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V set8(int8_t v) { return _mm512_set1_epi8(v); }
  QNT_TARGET_AVX512_VNNI static V packs16(V a, V b) {
    return _mm512_packs_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V packus16(V a, V b) {
    return _mm512_packus_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static void storeBytes(void *p, Mask m, V v) {
    if (m == Mask(~Mask(0)))
      _mm512_storeu_si512(p, v);
    else
      _mm512_mask_storeu_epi8(p, m, v);
  }
};

struct Ymm {
  using V = __m256i;
  using F = __m256;
  using Mask = __mmask32;
  static constexpr int kBytes = 32;
  QNT_TARGET_AVX512_VNNI static V loadBytes(Mask m, const void *p) {
    return _mm256_maskz_loadu_epi8(m, p);
  }
  QNT_TARGET_AVX512_VNNI static V load(const void *p) {
    return _mm256_loadu_si256(static_cast<const __m256i *>(p));
  }
  QNT_TARGET_AVX512_VNNI static void store(void *p, V v) {
    _mm256_storeu_si256(static_cast<__m256i *>(p), v);
  }
  QNT_TARGET_AVX512_VNNI static F loadF(const float *p) {
    return _mm256_loadu_ps(p);
  }
  QNT_TARGET_AVX512_VNNI static V set32(int32_t v) {
    return _mm256_set1_epi32(v);
  }
  QNT_TARGET_AVX512_VNNI static V set16(int16_t v) {
    return _mm256_set1_epi16(v);
  }
  QNT_TARGET_AVX512_VNNI static V xor8(V a, V b) {
    return _mm256_xor_si256(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V zero() { return _mm256_setzero_si256(); }
  QNT_TARGET_AVX512_VNNI static V unpackLo8(V a, V b) {
    return _mm256_unpacklo_epi8(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V unpackHi8(V a, V b) {
    return _mm256_unpackhi_epi8(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V unpackLo16(V a, V b) {
    return _mm256_unpacklo_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V unpackHi16(V a, V b) {
    return _mm256_unpackhi_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V dpbusd(V acc, V u8, V s8) {
    return _mm256_dpbusd_epi32(acc, u8, s8);
  }
  template <bool Clamp> QNT_TARGET_AVX512_VNNI static V scale(V acc, F scale) {
    F f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    if (Clamp)
      f = _mm256_min_ps(f, _mm256_set1_ps(32767.0f));
    return _mm256_cvtps_epi32(f);
  }
  QNT_TARGET_AVX512_VNNI static V shiftQuads(V v) {
    return _mm256_slli_epi32(v, 8);
  }
  QNT_TARGET_AVX512_VNNI static V packs32(V a, V b) {
    return _mm256_packs_epi32(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V adds16(V a, V b) {
    return _mm256_adds_epi16(a, b);
  }
  template <bool Signed> QNT_TARGET_AVX512_VNNI static V max8(V a, V b) {
    return Signed ? _mm256_max_epi8(a, b) : _mm256_max_epu8(a, b);
  }
  template <bool Signed> QNT_TARGET_AVX512_VNNI static V min8(V a, V b) {
    return Signed ? _mm256_min_epi8(a, b) : _mm256_min_epu8(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V set8(int8_t v) { return _mm256_set1_epi8(v); }
  QNT_TARGET_AVX512_VNNI static V packs16(V a, V b) {
    return _mm256_packs_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static V packus16(V a, V b) {
    return _mm256_packus_epi16(a, b);
  }
  QNT_TARGET_AVX512_VNNI static void storeBytes(void *p, Mask m, V v) {
    if (m == Mask(~Mask(0)))
      _mm256_storeu_si256(static_cast<__m256i *>(p), v);
    else
      _mm256_mask_storeu_epi8(p, m, v);
  }
};

/// The requantization constants in vectors of W, and the mask of the
/// block's channels.
template <typename W> struct RequantConsts {
  typename W::V zp, qmin, qmax;
  typename W::Mask m;
  bool clampMin, clampMax;

  QNT_TARGET_AVX512_VNNI RequantConsts(const RequantPlan &rq, int64_t count)
      : zp(W::set16(rq.dstZp)), qmin(W::set8(rq.qmin)), qmax(W::set8(rq.qmax)),
        m(count == W::kBytes
              ? typename W::Mask(~typename W::Mask(0))
              : typename W::Mask((typename W::Mask(1) << count) - 1)),
        clampMin(rq.clampMin), clampMax(rq.clampMax) {}
};

/// Requantizes the 4 accumulator vectors of one output pixel (in the in-lane
/// channel order) and stores its channels:
///   dst = clamp(rint(float(acc) * M) + dst_zp, dst_qmin, dst_qmax)
/// cvtps2dq rounds half to even in the default MXCSR mode, as nearbyint.
/// Clamp: whether float(acc) * M may reach 2^31.
template <typename W, bool Clamp, bool DstSigned>
QNT_TARGET_AVX512_VNNI inline void
requantStore(uint8_t *dst, const typename W::V *acc,
             const typename W::F *scales, const RequantConsts<W> &rc) {
  using V = typename W::V;
  V q[4];
  for (int g = 0; g < 4; ++g)
    q[g] = W::template scale<Clamp>(acc[g], scales[g]);
  // Saturating packs and adds: a value beyond int16 keeps its side of the
  // dst range (|dst_zp| <= kMaxDstZp), so saturating to the dst dtype and
  // clamping to [dst_qmin, dst_qmax] gives the clamp of the exact value.
  // The packs also restore the channel order.
  const V q01 = W::adds16(W::packs32(q[0], q[1]), rc.zp);
  const V q23 = W::adds16(W::packs32(q[2], q[3]), rc.zp);
  V bytes = DstSigned ? W::packs16(q01, q23) : W::packus16(q01, q23);
  if (rc.clampMin)
    bytes = W::template max8<DstSigned>(bytes, rc.qmin);
  if (rc.clampMax)
    bytes = W::template min8<DstSigned>(bytes, rc.qmax);
  W::storeBytes(dst, rc.m, bytes);
}

/// Where channel j of a block of 64 sits in its 4 vectors: vector j % 16 / 4,
/// lane j / 16 * 4 + j % 4 (as an index into [4][16] 32-bit entries).
inline int64_t inLaneIndex(int64_t j) {
  return j % 16 / 4 * 16 + j / 16 * 4 + j % 4;
}

/// Runs a plan's items over the OpenMP threads: rowItems() groups of output
/// rows, times groups of its `blocks` channel blocks. The plan's RunFn runs
/// items [begin, end) of that many, given the number of groups.
template <typename Plan> class ItemKernel final : public Kernel {
public:
  using RunFn = void (*)(const Plan &, const void *, void *, int64_t, int64_t,
                         int64_t);
  ItemKernel(Plan plan, RunFn run, std::string name)
      : plan_(std::move(plan)), run_(run), name_(std::move(name)) {}

  void run(const void *src, void *dst) override {
    const int64_t outRows = plan_.rowItems();
    const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    // Few output rows (7x7 layers at batch 1): split the channels too, so
    // every thread gets about the same work.
    const int64_t groups = std::clamp<int64_t>(
        (4 * threads + outRows - 1) / outRows, 1, plan_.blocks);
    const int64_t items = groups * outRows;
    if (threads == 1) {
      run_(plan_, src, dst, 0, items, groups);
      return;
    }
#pragma omp parallel num_threads(static_cast <int>(std::min(threads, items)))
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t begin = items * t / nt, end = items * (t + 1) / nt;
      if (begin < end)
        run_(plan_, src, dst, begin, end, groups);
    }
  }

  std::string describe() const override { return name_; }

private:
  Plan plan_;
  RunFn run_;
  std::string name_;
};

} // namespace vnni
} // namespace rt
} // namespace qnt

#endif // QNT_VNNI_X86

#endif // QNT_RUNTIME_LIB_VNNI_H
