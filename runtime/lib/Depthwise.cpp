//===- Depthwise.cpp - The runtime's int8 depthwise conv2d ----------------===//
//
// Quantized depthwise conv2d (groups == c == oc, dilation 1, NHWC) with
// AVX-512 or AVX2, bit-exact to qnt/Runtime.h and RefConv2d:
//
//   acc[c] = bias[c] + sum_{ky, kx} (src[iy, ix, c] - src_zp) * w[c, ky, kx]
//            (taps in the padding contribute nothing)
//   dst[c] = clamp(rint(float(acc[c]) * M[c]) + dst_zp, dst_qmin, dst_qmax)
//
// with rint rounding half to even. Both kernels below are used only when
// K * max|src - src_zp| * max|w| + max|bias| fits in int32, the bound under
// which RefConv2d accumulates in int32 (beyond it RefConv2d saturates an
// int64 sum and is used instead). Speed: docs/runtime.md, "Depthwise
// conv2d".
//
// 3x3 kernel (AVX-512 VNNI; 3x3 at stride 1 or 2, 0 <= zp' <= 255 and
// |dst_zp| <= 32512), on u8 x s8 vpdpbusd:
// 1. The input is read as bytes x' = src (u8 src) or src + 128 (s8 src, an
//    xor with 0x80), zp' = src_zp likewise, and
//      acc = (bias - zp' * sum_{ky, kx} w) + sum_{ky, kx} x' * w
//    which equals the formula above because x - src_zp = x' - zp'. Rows and
//    columns outside the image read as zp' (a row of src_zp bytes, a
//    constant vector), so they contribute (zp' - zp') * w = 0.
// 2. vpdpbusd adds four u8 x s8 products per 32-bit lane to an int32
//    without saturation. A lane holds channel c of four input rows at one
//    column, (r0, r1, r2, r3), and the weights of kernel column kx as
//    (w[0][kx], w[1][kx], w[2][kx], 0) for the output row whose window
//    starts at r0 and (0, w[0][kx], w[1][kx], w[2][kx]) for the next one: at
//    stride 1 with 28+ output rows one set of quads serves two output rows
//    (else r3 = 0 and one row). 3 vpdpbusd per 16 channels and output. The sums
//    are exact modulo 2^32, and the result, within the int32 bound, is exact.
// 3. The quads of a column come from the row vectors by vpunpck[lh]bw and
//    vpunpck[lh]wd, which work within 128-bit lanes: vector g of a block of
//    64 channels holds channel 16 l + 4 g + i in lane 4 l + i. Weights, bias
//    and M are stored in that order, and the requantization's packs, also
//    within lanes, restore the channel order. A column's quads stay in
//    registers for the 3 - stride outputs that share it. Blocks of at most
//    32 channels use 256-bit vectors (the same order on two lanes).
// 4. Requantization of 64 outputs: cvtdq2ps, mulps by M[c] (vminps with
//    32767 first where float(acc) * M may reach 2^31, which cvtps2dq would
//    turn into INT_MIN), cvtps2dq (half to even in the default MXCSR mode,
//    as nearbyint), vpackssdw (saturates to int16), vpaddsw dst_zp
//    (saturating), vpackuswb / vpacksswb (saturates to the dst dtype) and
//    vpmaxub / vpminub (epi8 for s8) with dst_qmin / dst_qmax where they lie
//    inside the dtype; one 64-byte store. A value saturated on the way stays
//    beyond the dst range on its side (as |dst_zp| <= 32512), so the result
//    is the clamp of rint(float(acc) * M) + dst_zp.
// 5. An item is one (or two, as above) output rows of a group of channel
//    blocks; while its first block computes a column it prefetches all
//    channels of that column of the input rows the next item adds into L2
//    (measured 5-25 % faster at batch 8, whose inputs come from L3).
//
// Generic kernel (other shapes, AVX-512 without VNNI, AVX2): vectors run over
// channels, in blocks of CB = 2L channels (L int32 lanes: 16 with AVX-512, 8
// with AVX2).
// 1. Every input row an output row needs is converted once per thread into a
//    row buffer of int16 (src - src_zp): a ring of kh rows. The padding
//    columns hold 0, and rows outside the image are a row of zeros, so the
//    padding contributes nothing without a test in the inner loop. A pixel's
//    CB values are stored as pairs (channel i, channel L + i): 32-bit lane i
//    of a vector holds both.
// 2. vpmaddwd (vpdpwssd with VNNI) of that vector with the weights packed as
//    (w[i], 0) gives channel i's product in lane i, with (0, w[L + i]) channel
//    L + i's: two int32 vectors of L channels each, in channel order. Products
//    are at most 16639 * 128 in magnitude and the sums are exact in int32 by
//    the bound.
// 3. A strip of outputs along a row accumulates in registers, starting from
//    the bias. Requantization is cvtdq2ps, mulps by M[c], a clamp to
//    [dst_qmin - dst_zp, dst_qmax - dst_zp] (integral floats, so clamping
//    before rint equals clamping after it), cvtps2dq (rounds half to even in
//    the default MXCSR mode, as nearbyint does), + dst_zp, and the low byte
//    is stored (the value is in the dst dtype's range; this is the
//    conversion static_cast<D> performs in Requant as well).
//
// Threads: OpenMP, over (channel-block group, output rows) items in chunks
// of consecutive output rows, so that each thread reads (the generic kernel:
// converts) an input row about once.
// ISA: chosen at kernel creation from the CPU (__builtin_cpu_supports) and
// the ISA oneDNN may use (ONEDNN_MAX_CPU_ISA). The ISA-specific operations
// are functions with target attributes; one `flatten` function per ISA
// inlines the shared templates into code for that ISA, so the library itself
// keeps the baseline ISA.
//
//===----------------------------------------------------------------------===//

#include "Depthwise.h"
#include "Vnni.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

using namespace qnt::rt;

#ifdef QNT_VNNI_X86

using namespace qnt::rt::vnni;

namespace {

/// Shape, packed weights and requantization constants of a kernel.
struct DwPlan {
  int64_t n, h, w, c, oh, ow, kh, kw, sh, sw, pt, pl;
  int64_t blocks;  // channel blocks of CB
  int64_t paddedW; // pl + w + pr: columns of a converted row
  int16_t srcZp;
  int32_t dstZp;
  float lo, hi;                 // dst_qmin - dst_zp, dst_qmax - dst_zp
  std::vector<int16_t> weights; // [block][ky][kx][2][CB]
  std::vector<int32_t> bias;    // [blocks * CB]
  std::vector<float> scales;    // [blocks * CB]
  int64_t rowItems() const { return n * oh; }
};

//===----------------------------------------------------------------------===//
// ISA operations
//===----------------------------------------------------------------------===//

struct Avx2 {
  using V = __m256i;
  using F = __m256;
  static constexpr int kLanes = 8;
  /// Outputs accumulated at once: 2 * kStrip accumulators of 16 registers.
  static constexpr int kStrip = 4;

  /// Requantization constants of a channel block.
  struct Q {
    F scaleLo, scaleHi, lo, hi;
    V zp;
    int64_t count; // valid channels in the block
  };

  QNT_TARGET_AVX2 static V load(const int16_t *p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  }
  QNT_TARGET_AVX2 static V load(const int32_t *p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  }
  QNT_TARGET_AVX2 static V madd(V acc, V x, V w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
  }
  QNT_TARGET_AVX2 static Q requantConsts(const DwPlan &p, int64_t b) {
    const int64_t c = b * 2 * kLanes;
    return {
        _mm256_loadu_ps(&p.scales[c]), _mm256_loadu_ps(&p.scales[c + kLanes]),
        _mm256_set1_ps(p.lo),          _mm256_set1_ps(p.hi),
        _mm256_set1_epi32(p.dstZp),    std::min<int64_t>(2 * kLanes, p.c - c)};
  }

  /// src[0, 2L) - zp as int16 pairs (channel i, channel L + i).
  template <typename S>
  QNT_TARGET_AVX2 static void convert(int16_t *dst, const S *src, V zp) {
    __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(src));
    __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(src + 8));
    __m128i ab = _mm_unpacklo_epi8(a, b);
    V x = std::is_signed<S>::value ? _mm256_cvtepi8_epi16(ab)
                                   : _mm256_cvtepu8_epi16(ab);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst),
                        _mm256_sub_epi16(x, zp));
  }
  /// The same for the first `count` < 2L channels (the rest meet zero
  /// weights and are not stored).
  template <typename S>
  QNT_TARGET_AVX2 static void convertPartial(int16_t *dst, const S *src, V zp,
                                             int64_t count) {
    S tmp[2 * kLanes] = {};
    std::memcpy(tmp, src, count * sizeof(S));
    convert(dst, tmp, zp);
  }
  QNT_TARGET_AVX2 static V broadcast16(int16_t v) {
    return _mm256_set1_epi16(v);
  }

  QNT_TARGET_AVX2 static V requant(V acc, F scale, const Q &q) {
    F f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    f = _mm256_min_ps(_mm256_max_ps(f, q.lo), q.hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(f), q.zp);
  }
  /// Requantizes and stores the low bytes of channels [0, q.count).
  QNT_TARGET_AVX2 static void store(uint8_t *dst, V accLo, V accHi,
                                    const Q &q) {
    const V byte = _mm256_set1_epi32(0xFF);
    V lo = _mm256_and_si256(requant(accLo, q.scaleLo, q), byte);
    V hi = _mm256_and_si256(requant(accHi, q.scaleHi, q), byte);
    // In-lane packing gives channels [0-3, 8-11 | 4-7, 12-15]; restore order.
    V w = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(w),
                                     _mm256_extracti128_si256(w, 1));
    if (q.count == 2 * kLanes) {
      _mm_storeu_si128(reinterpret_cast<__m128i *>(dst), bytes);
      return;
    }
    alignas(16) uint8_t tmp[2 * kLanes];
    _mm_store_si128(reinterpret_cast<__m128i *>(tmp), bytes);
    std::memcpy(dst, tmp, q.count);
  }
};

struct Avx512 {
  using V = __m512i;
  using F = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kStrip = 8;

  struct Q {
    F scaleLo, scaleHi, lo, hi;
    V zp;
    __mmask16 maskLo, maskHi;
  };

  QNT_TARGET_AVX512 static V load(const int16_t *p) {
    return _mm512_loadu_si512(p);
  }
  QNT_TARGET_AVX512 static V load(const int32_t *p) {
    return _mm512_loadu_si512(p);
  }
  QNT_TARGET_AVX512 static V madd(V acc, V x, V w) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w));
  }
  QNT_TARGET_AVX512 static Q requantConsts(const DwPlan &p, int64_t b) {
    const int64_t c = b * 2 * kLanes;
    auto mask = [](int64_t n) {
      return n >= kLanes ? __mmask16(0xFFFF)
                         : __mmask16((1u << std::max<int64_t>(n, 0)) - 1);
    };
    return {
        _mm512_loadu_ps(&p.scales[c]), _mm512_loadu_ps(&p.scales[c + kLanes]),
        _mm512_set1_ps(p.lo),          _mm512_set1_ps(p.hi),
        _mm512_set1_epi32(p.dstZp),    mask(p.c - c),
        mask(p.c - c - kLanes)};
  }

  template <typename S>
  QNT_TARGET_AVX512 static void convert(int16_t *dst, const S *src, V zp) {
    convertBytes<S>(
        dst, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src)), zp);
  }
  template <typename S>
  QNT_TARGET_AVX512 static void convertPartial(int16_t *dst, const S *src, V zp,
                                               int64_t count) {
    convertBytes<S>(dst, _mm256_maskz_loadu_epi8((1u << count) - 1, src), zp);
  }
  template <typename S>
  QNT_TARGET_AVX512 static void convertBytes(int16_t *dst, __m256i raw, V zp) {
    // Word 2i takes channel i, word 2i + 1 channel 16 + i.
    static const int16_t kPairs[32] = {
        0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    V x = std::is_signed<S>::value ? _mm512_cvtepi8_epi16(raw)
                                   : _mm512_cvtepu8_epi16(raw);
    x = _mm512_permutexvar_epi16(_mm512_loadu_si512(kPairs),
                                 _mm512_sub_epi16(x, zp));
    _mm512_storeu_si512(dst, x);
  }
  QNT_TARGET_AVX512 static V broadcast16(int16_t v) {
    return _mm512_set1_epi16(v);
  }

  QNT_TARGET_AVX512 static V requant(V acc, F scale, const Q &q) {
    F f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    f = _mm512_min_ps(_mm512_max_ps(f, q.lo), q.hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), q.zp);
  }
  QNT_TARGET_AVX512 static void store(uint8_t *dst, V accLo, V accHi,
                                      const Q &q) {
    _mm512_mask_cvtepi32_storeu_epi8(dst, q.maskLo,
                                     requant(accLo, q.scaleLo, q));
    _mm512_mask_cvtepi32_storeu_epi8(dst + kLanes, q.maskHi,
                                     requant(accHi, q.scaleHi, q));
  }
};

struct Avx512Vnni : Avx512 {
  QNT_TARGET_AVX512_VNNI static V madd(V acc, V x, V w) {
    return _mm512_dpwssd_epi32(acc, x, w);
  }
};

//===----------------------------------------------------------------------===//
// Shared kernel
//===----------------------------------------------------------------------===//

/// Converts the channel blocks [b0, b1) of the input row `src` into `row`.
template <typename Isa, typename S>
inline void convertRow(const DwPlan &p, const S *src, int16_t *row, int64_t b0,
                       int64_t b1) {
  constexpr int64_t kBlock = 2 * Isa::kLanes;
  const auto zp = Isa::broadcast16(p.srcZp);
  for (int64_t b = b0; b < b1; ++b) {
    int16_t *d = row + (b * p.paddedW + p.pl) * kBlock;
    const S *s = src + b * kBlock;
    const int64_t count = std::min(kBlock, p.c - b * kBlock);
    if (count == kBlock) {
      for (int64_t x = 0; x < p.w; ++x)
        Isa::template convert<S>(d + x * kBlock, s + x * p.c, zp);
      continue;
    }
    for (int64_t x = 0; x < p.w; ++x)
      Isa::template convertPartial<S>(d + x * kBlock, s + x * p.c, zp, count);
  }
}

/// Computes NX consecutive outputs from column `ox` of one channel block.
/// rows[ky] points at the block in the converted row of tap row ky, `w` at
/// the block's weights, `out` at the block's channels of output `ox`.
template <typename Isa, int NX>
inline void convStrip(const DwPlan &p, const int16_t *const *rows,
                      const int16_t *w, typename Isa::V biasLo,
                      typename Isa::V biasHi, const typename Isa::Q &q,
                      int64_t ox, uint8_t *out) {
  using V = typename Isa::V;
  constexpr int64_t kBlock = 2 * Isa::kLanes;
  V lo[NX], hi[NX];
#pragma GCC unroll 16
  for (int j = 0; j < NX; ++j) {
    lo[j] = biasLo;
    hi[j] = biasHi;
  }
  const int64_t step = p.sw * kBlock;
  for (int64_t ky = 0; ky < p.kh; ++ky) {
    const int16_t *r = rows[ky] + ox * step;
    for (int64_t kx = 0; kx < p.kw; ++kx, w += 2 * kBlock) {
      const V wLo = Isa::load(w), wHi = Isa::load(w + kBlock);
#pragma GCC unroll 16
      for (int j = 0; j < NX; ++j) {
        const V x = Isa::load(r + j * step + kx * kBlock);
        lo[j] = Isa::madd(lo[j], x, wLo);
        hi[j] = Isa::madd(hi[j], x, wHi);
      }
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < NX; ++j)
    Isa::store(out + j * p.c, lo[j], hi[j], q);
}

/// Per-thread row buffers: `slots` ring rows of [blocks][paddedW][CB] int16
/// and one row of zeros, 64-byte aligned.
struct RowRing {
  int16_t *rows;
  int16_t *zeros;
  int64_t rowSize;
};

template <int64_t kBlock> RowRing rowRing(const DwPlan &p) {
  static thread_local std::vector<int16_t> buffer;
  const int64_t rowSize = p.blocks * p.paddedW * kBlock;
  const int64_t need = (p.kh + 1) * rowSize + 32;
  if (static_cast<int64_t>(buffer.size()) < need)
    buffer.resize(need);
  auto at = reinterpret_cast<uintptr_t>(buffer.data());
  auto *rows = reinterpret_cast<int16_t *>((at + 63) & ~uintptr_t(63));
  // The padding columns of the ring rows and the zero row. The buffer is
  // shared by the thread's kernels, so this is redone for each run.
  int16_t *zeros = rows + p.kh * rowSize;
  std::fill(zeros, zeros + p.paddedW * kBlock, int16_t(0));
  const int64_t right = p.pl + p.w;
  for (int64_t r = 0; r < p.kh * p.blocks; ++r) {
    int16_t *row = rows + r * p.paddedW * kBlock;
    std::fill(row, row + p.pl * kBlock, int16_t(0));
    std::fill(row + right * kBlock, row + p.paddedW * kBlock, int16_t(0));
  }
  return {rows, zeros, rowSize};
}

/// Runs items [begin, end) of `groups * n * oh`: item i is output row
/// i % (n * oh) of channel-block group i / (n * oh).
template <typename Isa, typename S>
inline void runItems(const DwPlan &p, const S *src, uint8_t *dst, int64_t begin,
                     int64_t end, int64_t groups) {
  constexpr int64_t kBlock = 2 * Isa::kLanes;
  const RowRing ring = rowRing<kBlock>(p);
  // tags[slot]: which (group, image, input row) the ring slot holds.
  std::vector<int64_t> tags(p.kh, -1);
  std::vector<const int16_t *> base(p.kh), rows(p.kh);
  std::vector<int64_t> blockStride(p.kh);
  const int64_t outRows = p.n * p.oh;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t g = item / outRows, r = item % outRows;
    const int64_t img = r / p.oh, oy = r % p.oh;
    const int64_t b0 = g * p.blocks / groups, b1 = (g + 1) * p.blocks / groups;
    for (int64_t ky = 0; ky < p.kh; ++ky) {
      const int64_t iy = oy * p.sh - p.pt + ky;
      if (iy < 0 || iy >= p.h) {
        base[ky] = ring.zeros;
        blockStride[ky] = 0;
        continue;
      }
      const int64_t slot = iy % p.kh, tag = (g * p.n + img) * p.h + iy;
      int16_t *row = ring.rows + slot * ring.rowSize;
      if (tags[slot] != tag) {
        convertRow<Isa>(p, src + (img * p.h + iy) * p.w * p.c, row, b0, b1);
        tags[slot] = tag;
      }
      base[ky] = row;
      blockStride[ky] = p.paddedW * kBlock;
    }
    uint8_t *outRow = dst + r * p.ow * p.c;
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t ky = 0; ky < p.kh; ++ky)
        rows[ky] = base[ky] + b * blockStride[ky];
      const int16_t *w = p.weights.data() + b * p.kh * p.kw * 2 * kBlock;
      const auto biasLo = Isa::load(&p.bias[b * kBlock]);
      const auto biasHi = Isa::load(&p.bias[b * kBlock + Isa::kLanes]);
      const typename Isa::Q q = Isa::requantConsts(p, b);
      uint8_t *out = outRow + b * kBlock;
      auto strips = [&](auto width) {
        constexpr int kWidth = decltype(width)::value;
        // The last strip ends at ow, overlapping the one before: its
        // outputs are computed twice, with the same result.
        for (int64_t ox = 0; ox < p.ow; ox += kWidth) {
          const int64_t at = std::min(ox, p.ow - kWidth);
          convStrip<Isa, kWidth>(p, rows.data(), w, biasLo, biasHi, q, at,
                                 out + at * p.c);
        }
      };
      // Strips of kStrip outputs; narrower rows (7x7 layers) use halves.
      if (p.ow >= Isa::kStrip)
        strips(std::integral_constant<int, Isa::kStrip>());
      else if (p.ow >= Isa::kStrip / 2)
        strips(std::integral_constant<int, Isa::kStrip / 2>());
      else
        strips(std::integral_constant<int, 1>());
    }
  }
}

//===----------------------------------------------------------------------===//
// 3x3 kernel with vpdpbusd (AVX-512 VNNI)
//===----------------------------------------------------------------------===//

/// The 3x3 kernel's data, in the in-lane channel order of its vectors
/// (Vnni.h: vector g of a block of 64 channels holds channel 16 * l + 4 * g
/// + i in 32-bit lane 4 * l + i).
struct Dw3x3Plan {
  int64_t n, h, w, c, oh, ow, pt, pl;
  int64_t blocks;  // blocks of 64 channels
  int32_t padQuad; // a column outside the image: 4 x zp'
  RequantPlan rq;
  std::vector<int8_t> weights; // [block][kx][g][lane]: (w[0..2][kx], 0)
  std::vector<int32_t> bias;   // [block][g][lane]: bias - zp' * sum(w)
  std::vector<float> scales;   // [block][g][lane]
  std::vector<uint8_t> padRow; // c bytes of src_zp: a row outside the image
  int64_t rowsPerItem;         // output rows an item computes
  int64_t rowItems() const {
    return n * ((oh + rowsPerItem - 1) / rowsPerItem);
  }
};

/// The 3x3 kernel for stride S, src and dst signedness.
template <int S, bool SrcSigned, bool DstSigned> struct Dw3x3 {
  /// The loop invariants of outputRows. Copied out of the plan: the stores
  /// through uint8_t pointers would make the compiler reload its fields.
  template <typename W> struct Invariants {
    typename W::V padQuad;
    RequantConsts<W> rc; // with the block's channels
    int64_t w, c;
  };

  /// The 4 vectors of byte quads (r0, r1, r2, r3) at column `x` of the
  /// input rows `row[k] + x * step[k]` (R + 2 rows; r3 is 0 when R == 1).
  template <typename W, int R>
  static inline void column(typename W::V *t, const Invariants<W> &in,
                            const uint8_t *const *row, const int64_t *step,
                            int64_t x) {
    using V = typename W::V;
    if (x < 0 || x >= in.w) {
      t[0] = t[1] = t[2] = t[3] = in.padQuad;
      return;
    }
    V r[4];
    for (int k = 0; k < R + 2; ++k) {
      r[k] = W::loadBytes(in.rc.m, row[k] + x * step[k]);
      if (SrcSigned) // s8 -> u8: x + 128
        r[k] = W::xor8(r[k], W::set32(int32_t(0x80808080)));
    }
    if (R == 1)
      r[3] = W::zero();
    const V r01Lo = W::unpackLo8(r[0], r[1]), r01Hi = W::unpackHi8(r[0], r[1]);
    const V r23Lo = W::unpackLo8(r[2], r[3]), r23Hi = W::unpackHi8(r[2], r[3]);
    t[0] = W::unpackLo16(r01Lo, r23Lo);
    t[1] = W::unpackHi16(r01Lo, r23Lo);
    t[2] = W::unpackLo16(r01Hi, r23Hi);
    t[3] = W::unpackHi16(r01Hi, r23Hi);
  }

  /// R output rows (`out[j]`, at the block in output 0) for the `count`
  /// channels of block `b`. `row[k]` points at the block in input row k of
  /// the window (or at the pad row, with step 0).
  template <typename W, int R, bool Clamp>
  static inline void outputRows(const Dw3x3Plan &p, const uint8_t *const *row,
                                const int64_t *step, int64_t b, int64_t count,
                                const uint8_t *const *ahead,
                                uint8_t *const *out) {
    using V = typename W::V;
    const Invariants<W> in = {W::set32(p.padQuad),
                              RequantConsts<W>(p.rq, count), p.w, p.c};
    // w[0]: (w[0..2][kx], 0) for the first output row; w[1]: (0, w[0..2][kx])
    // for the second, whose window starts a row lower. Read from memory in
    // the loop (the columns take the registers).
    const int8_t *w[R] = {&p.weights[b * 3 * 4 * 64]};
    alignas(64) int8_t shifted[R == 2 ? 3 * 4 * 64 : 1];
    if (R == 2) {
      for (int i = 0; i < 3 * 4; ++i)
        W::store(shifted + 64 * i, W::shiftQuads(W::load(w[0] + 64 * i)));
      w[R - 1] = shifted;
    }
    V bias[4];
    typename W::F scales[4];
    for (int g = 0; g < 4; ++g) {
      bias[g] = W::load(&p.bias[(b * 4 + g) * 16]);
      scales[g] = W::loadF(&p.scales[(b * 4 + g) * 16]);
    }
    // cols[k]: the quads of input column ox * S - pl + k; a step keeps the
    // 3 - S columns the next output shares.
    V cols[3][4];
    for (int k = 0; k < 3; ++k)
      column<W, R>(cols[k], in, row, step, k - p.pl);
    for (int64_t ox = 0; ox < p.ow; ++ox) {
      if (ox > 0) {
        const int64_t x = ox * S - p.pl;
        for (int k = 0; k < 3 - S; ++k)
          for (int g = 0; g < 4; ++g)
            cols[k][g] = cols[k + S][g];
        for (int k = 3 - S; k < 3; ++k)
          column<W, R>(cols[k], in, row, step, x + k);
      }
      // All channels of the same columns of the rows the next item adds
      // (`ahead`, given to the item's first block), into L2 while this one
      // computes.
      for (int k = 0; k < S * R; ++k)
        for (int64_t at = ox * S * in.c; ahead[k] && at < (ox + 1) * S * in.c;
             at += 64)
          _mm_prefetch(reinterpret_cast<const char *>(ahead[k] + at),
                       _MM_HINT_T1);
      for (int j = 0; j < R; ++j) {
        V acc[4];
        for (int g = 0; g < 4; ++g) {
          acc[g] = bias[g];
          for (int kx = 0; kx < 3; ++kx)
            acc[g] = W::dpbusd(acc[g], cols[kx][g],
                               W::load(w[j] + (kx * 4 + g) * 64));
        }
        requantStore<W, Clamp, DstSigned>(out[j] + ox * in.c, acc, scales,
                                          in.rc);
      }
    }
  }

  /// outputRows with the vector width for `count` and the plan's Clamp.
  template <int R>
  static inline void
  outputRows(const Dw3x3Plan &p, const uint8_t *const *row, const int64_t *step,
             int64_t b, const uint8_t *const *ahead, uint8_t *const *out) {
    const int64_t count = std::min<int64_t>(64, p.c - 64 * b);
    if (count > 32) {
      if (p.rq.clampScaled)
        outputRows<Zmm, R, true>(p, row, step, b, count, ahead, out);
      else
        outputRows<Zmm, R, false>(p, row, step, b, count, ahead, out);
    } else if (p.rq.clampScaled) {
      outputRows<Ymm, R, true>(p, row, step, b, count, ahead, out);
    } else {
      outputRows<Ymm, R, false>(p, row, step, b, count, ahead, out);
    }
  }

  /// Runs items [begin, end) of `groups * n * ceil(oh / kRows)`: item i is
  /// the output rows [kRows * y, kRows * y + kRows) of image `img`, where
  /// i % (n * ceil(oh / kRows)) = img * ceil(oh / kRows) + y, for the
  /// channel blocks of group i / (n * ceil(oh / kRows)).
  template <int kRows>
  static inline void runRows(const Dw3x3Plan &p, const void *srcV, void *dstV,
                             int64_t begin, int64_t end, int64_t groups) {
    const auto *src = static_cast<const uint8_t *>(srcV);
    auto *dst = static_cast<uint8_t *>(dstV);
    const int64_t perImage = (p.oh + kRows - 1) / kRows;
    const int64_t outRows = p.n * perImage;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t g = item / outRows, r = item % outRows;
      const int64_t img = r / perImage, oy = r % perImage * kRows;
      const int64_t b0 = g * p.blocks / groups,
                    b1 = (g + 1) * p.blocks / groups;
      const int rows = static_cast<int>(std::min<int64_t>(kRows, p.oh - oy));
      // The window's input rows (the pad row, step 0, outside the image)
      // and the rows the next item adds to it (null outside).
      const uint8_t *base[kRows + 2], *next[S * kRows];
      int64_t step[kRows + 2];
      for (int k = 0; k < kRows + 2 + S * kRows; ++k) {
        const int64_t iy = oy * S - p.pt + k;
        const bool inside = iy >= 0 && iy < p.h;
        const uint8_t *at = src + (img * p.h + iy) * p.w * p.c;
        if (k >= kRows + 2) {
          next[k - kRows - 2] = inside && oy + kRows < p.oh ? at : nullptr;
          continue;
        }
        base[k] = inside ? at : p.padRow.data();
        step[k] = inside ? p.c : 0;
      }
      uint8_t *out[kRows];
      for (int j = 0; j < kRows; ++j)
        out[j] = dst + (img * p.oh + oy + std::min(j, rows - 1)) * p.ow * p.c;
      for (int64_t b = b0; b < b1; ++b) {
        const uint8_t *row[kRows + 2];
        for (int k = 0; k < kRows + 2; ++k)
          row[k] = base[k] + 64 * b;
        const uint8_t *ahead[S * kRows];
        for (int k = 0; k < S * kRows; ++k)
          ahead[k] = b == b0 ? next[k] : nullptr;
        uint8_t *outB[kRows];
        for (int j = 0; j < kRows; ++j)
          outB[j] = out[j] + 64 * b;
        if (kRows == 2 && rows == 2)
          outputRows<2>(p, row, step, b, ahead, outB);
        else
          outputRows<1>(p, row, step, b, ahead, outB);
      }
    }
  }

  /// runRows with the plan's rows per item (two only at stride 1).
  QNT_TARGET_AVX512_VNNI __attribute__((flatten)) static void
  run(const Dw3x3Plan &p, const void *src, void *dst, int64_t begin,
      int64_t end, int64_t groups) {
    if (S == 1 && p.rowsPerItem == 2)
      runRows<2>(p, src, dst, begin, end, groups);
    else
      runRows<1>(p, src, dst, begin, end, groups);
  }
};

using RunItemsFn = void (*)(const DwPlan &, const void *, void *, int64_t,
                            int64_t, int64_t);

// One function per ISA and src type, compiled for that ISA; `flatten`
// inlines the templates above (and the ISA operations) into it.
#define QNT_DWCONV_ENTRY(NAME, ISA, TARGET)                                    \
  template <typename S>                                                        \
  TARGET __attribute__((flatten)) void NAME(const DwPlan &p, const void *src,  \
                                            void *dst, int64_t begin,          \
                                            int64_t end, int64_t groups) {     \
    runItems<ISA>(p, static_cast<const S *>(src), static_cast<uint8_t *>(dst), \
                  begin, end, groups);                                         \
  }
QNT_DWCONV_ENTRY(runAvx2, Avx2, QNT_TARGET_AVX2)
QNT_DWCONV_ENTRY(runAvx512, Avx512, QNT_TARGET_AVX512)
QNT_DWCONV_ENTRY(runAvx512Vnni, Avx512Vnni, QNT_TARGET_AVX512_VNNI)
#undef QNT_DWCONV_ENTRY

//===----------------------------------------------------------------------===//
// ISA selection
//===----------------------------------------------------------------------===//

struct IsaInfo {
  const char *name;
  int64_t block; // channels per block
  RunItemsFn u8, s8;
  bool (*cpuHas)();
  dnnl::cpu_isa oneDnnIsa; // the oneDNN ISA that must be allowed
  bool has3x3;             // runs 3x3 strides 1 and 2 on Dw3x3
};

// Widest first.
const IsaInfo kIsas[] = {
    {"avx512_vnni", 32, runAvx512Vnni<uint8_t>, runAvx512Vnni<int8_t>,
     cpuHasAvx512Vnni, dnnl::cpu_isa::avx512_core_vnni, true},
    {"avx512", 32, runAvx512<uint8_t>, runAvx512<int8_t>, cpuHasAvx512,
     dnnl::cpu_isa::avx512_core, false},
    {"avx2", 16, runAvx2<uint8_t>, runAvx2<int8_t>, cpuHasAvx2,
     dnnl::cpu_isa::avx2, false},
};

//===----------------------------------------------------------------------===//
// Kernel
//===----------------------------------------------------------------------===//

/// The generic kernel's plan for blocks of `cb` channels.
DwPlan makePlan(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                const int8_t *w, const int32_t *bias, int64_t cb) {
  DwPlan plan;
  plan.n = p.n, plan.h = p.h, plan.w = p.w, plan.c = p.c;
  plan.oh = p.oh, plan.ow = p.ow, plan.kh = p.kh, plan.kw = p.kw;
  plan.sh = p.stride_h, plan.sw = p.stride_w;
  plan.pt = p.pad_top, plan.pl = p.pad_left;
  plan.paddedW = p.pad_left + p.w + p.pad_right;
  plan.srcZp = static_cast<int16_t>(s.srcZp);
  plan.dstZp = static_cast<int32_t>(s.dstZp);
  Requant rq(s);
  plan.lo = rq.lo, plan.hi = rq.hi;
  const int64_t lanes = cb / 2, taps = p.kh * p.kw;
  plan.blocks = (p.c + cb - 1) / cb;
  const int64_t padded = plan.blocks * cb;
  // OHWI [c][kh][kw][1] -> [block][tap][2][CB]: the first vector holds
  // (w[i], 0) in lane i, the second (0, w[L + i]).
  plan.weights.assign(padded * taps * 2, 0);
  for (int64_t c = 0; c < p.c; ++c) {
    const int64_t b = c / cb, i = c % cb;
    const int64_t at = i < lanes ? 2 * i : cb + 2 * (i - lanes) + 1;
    for (int64_t t = 0; t < taps; ++t)
      plan.weights[(b * taps + t) * 2 * cb + at] = w[c * taps + t];
  }
  plan.bias.assign(padded, 0);
  if (bias)
    std::copy(bias, bias + p.c, plan.bias.begin());
  plan.scales.assign(padded, 0.0f);
  for (int64_t c = 0; c < p.c; ++c)
    plan.scales[c] = s.scale(c);
  return plan;
}

/// Whether the 3x3 kernel takes the conv: its padding must be a u8 byte
/// (zp') and dst_zp small enough.
bool dw3x3Applies(const qnt_rt_conv2d_params &p, const CommonSpec &s) {
  const int64_t zp = shiftedSrcZp(s);
  return p.kh == 3 && p.kw == 3 && p.stride_h == p.stride_w &&
         (p.stride_h == 1 || p.stride_h == 2) && zp >= 0 && zp <= 255 &&
         std::abs(s.dstZp) <= kMaxDstZp;
}

/// `accBound` bounds |acc| (see createDepthwiseConv2d).
Dw3x3Plan make3x3Plan(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                      const int8_t *w, const int32_t *bias, double accBound) {
  Dw3x3Plan plan;
  // At stride 1 two output rows share the quads of four input rows; on
  // small images (14x14, 7x7) one row per item spreads better over the
  // threads (measured 2x faster there on two threads).
  plan.rowsPerItem = p.stride_h == 1 && p.oh >= 28 ? 2 : 1;
  plan.n = p.n, plan.h = p.h, plan.w = p.w, plan.c = p.c;
  plan.oh = p.oh, plan.ow = p.ow, plan.pt = p.pad_top, plan.pl = p.pad_left;
  plan.blocks = (p.c + 63) / 64;
  const int64_t zp = shiftedSrcZp(s);
  plan.padQuad = static_cast<int32_t>(zp * 0x01010101);
  plan.rq = RequantPlan(s, p.c, accBound);
  plan.weights.assign(plan.blocks * 3 * 4 * 64, 0);
  plan.bias.assign(plan.blocks * 64, 0);
  plan.scales.assign(plan.blocks * 64, 0.0f);
  for (int64_t c = 0; c < p.c; ++c) {
    const int64_t b = c / 64, at = b * 64 + inLaneIndex(c % 64);
    const int64_t g = at % 64 / 16, lane = at % 16;
    int64_t sum = 0;
    for (int64_t ky = 0; ky < 3; ++ky)
      for (int64_t kx = 0; kx < 3; ++kx) {
        const int8_t v = w[c * 9 + ky * 3 + kx];
        plan.weights[((b * 3 + kx) * 4 + g) * 64 + lane * 4 + ky] = v;
        sum += v;
      }
    // sum((x' - zp') * w) = sum(x' * w) - zp' * sum(w): in range by the
    // int32 bound (zp' <= max|x - src_zp|).
    plan.bias[at] = static_cast<int32_t>((bias ? bias[c] : 0) - zp * sum);
    plan.scales[at] = s.scale(c);
  }
  plan.padRow.assign(p.c, static_cast<uint8_t>(s.srcZp));
  return plan;
}

/// The 3x3 kernel's entry for the conv's stride and dtypes.
ItemKernel<Dw3x3Plan>::RunFn dw3x3Entry(int64_t stride, bool srcSigned,
                                        bool dstSigned) {
  static const ItemKernel<Dw3x3Plan>::RunFn kEntries[2][2][2] = {
      {{Dw3x3<1, false, false>::run, Dw3x3<1, false, true>::run},
       {Dw3x3<1, true, false>::run, Dw3x3<1, true, true>::run}},
      {{Dw3x3<2, false, false>::run, Dw3x3<2, false, true>::run},
       {Dw3x3<2, true, false>::run, Dw3x3<2, true, true>::run}}};
  return kEntries[stride - 1][srcSigned][dstSigned];
}

/// The kernel for `isa` (which this CPU has).
Kernel *makeDwConv2d(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                     const int8_t *w, const int32_t *bias, double accBound,
                     const IsaInfo &isa) {
  const std::string name = std::string("qnt dwconv ") + isa.name;
  if (isa.has3x3 && dw3x3Applies(p, s))
    return new ItemKernel<Dw3x3Plan>(make3x3Plan(p, s, w, bias, accBound),
                                     dw3x3Entry(p.stride_h,
                                                s.srcDtype == QNT_RT_S8,
                                                s.dstDtype == QNT_RT_S8),
                                     name + " 3x3");
  return new ItemKernel<DwPlan>(makePlan(p, s, w, bias, isa.block),
                                s.srcDtype == QNT_RT_U8 ? isa.u8 : isa.s8,
                                name);
}

} // namespace

bool qnt::rt::depthwiseBeatsOneDnn(const qnt_rt_conv2d_params &p,
                                   const CommonSpec &s) {
  if (p.stride_h == 1 && p.stride_w == 1)
    return true;
  // Stride 2 only on the 3x3 kernel: the first ISA createDepthwiseConv2d
  // would take must be one with it.
  for (const IsaInfo &info : kIsas)
    if (oneDnnAllows(info.oneDnnIsa) && info.cpuHas())
      return info.has3x3 && dw3x3Applies(p, s);
  return false;
}

bool qnt::rt::cpuHasDepthwiseIsa(const char *isa) {
  for (const IsaInfo &info : kIsas)
    if (std::strcmp(isa, info.name) == 0)
      return info.cpuHas();
  return false;
}

Kernel *qnt::rt::createDepthwiseConv2d(const qnt_rt_conv2d_params &p,
                                       const CommonSpec &s, const void *weight,
                                       const void *bias, std::string &why,
                                       const char *isa) {
  why.clear();
  if (s.isFloat() || p.groups != p.c || p.oc != p.c)
    return nullptr; // not a quantized depthwise conv (multiplier 1)
  if (const char *reason = unsupportedConv2d(p, s, bias)) {
    why = reason;
    return nullptr;
  }
  const auto *w = static_cast<const int8_t *>(weight);
  const auto *b = static_cast<const int32_t *>(bias);
  const double bound =
      accumulatorBound(s, w, p.c * p.kh * p.kw, b, p.c, p.kh * p.kw);
  if (bound > double(std::numeric_limits<int32_t>::max())) {
    why = "the accumulator may exceed int32";
    return nullptr;
  }
  for (const IsaInfo &info : kIsas) {
    if (isa ? std::strcmp(isa, info.name) != 0 : !oneDnnAllows(info.oneDnnIsa))
      continue;
    if (!info.cpuHas()) {
      if (isa) {
        why = std::string("this CPU has no ") + isa;
        return nullptr;
      }
      continue;
    }
    return makeDwConv2d(p, s, w, b, bound, info);
  }
  why = isa ? std::string("unknown ISA ") + isa
            : "neither AVX2 nor AVX-512 (CPU or ONEDNN_MAX_CPU_ISA)";
  return nullptr;
}

#else // !QNT_VNNI_X86

Kernel *qnt::rt::createDepthwiseConv2d(const qnt_rt_conv2d_params &p,
                                       const CommonSpec &s, const void *,
                                       const void *, std::string &why,
                                       const char *) {
  why.clear();
  if (!s.isFloat() && p.groups == p.c && p.oc == p.c)
    why = "not x86-64";
  return nullptr;
}

bool qnt::rt::cpuHasDepthwiseIsa(const char *) { return false; }

bool qnt::rt::depthwiseBeatsOneDnn(const qnt_rt_conv2d_params &,
                                   const CommonSpec &) {
  return false;
}

#endif // QNT_VNNI_X86
