//===- StemConv.cpp - The runtime's int8 conv2d on few input channels -----===//
//
// Quantized conv2d (groups 1, dilation 1, NHWC) on AVX-512 VNNI for the
// first layer of an image network: few input channels (RGB), where oneDNN
// 2.6 runs at 40-65 % of the INT8 ceiling (resnet18's 7x7 stem: jit_int8,
// 315 GMAC/s; docs/runtime.md, "Stem conv2d"). Bit-exact
// to qnt/Runtime.h and RefConv2d:
//
//   acc[o] = bias[o] + sum_{ky, kx, ci} (src[iy, ix, ci] - src_zp) * w[o, ky,
//   kx, ci]
//            (taps in the padding contribute nothing)
//   dst[o] = clamp(rint(float(acc[o]) * M[o]) + dst_zp, dst_qmin, dst_qmax)
//
// 1. In NHWC, the inputs one kernel row of an output pixel reads are
//    kw * c consecutive bytes (a "span": 21 for 7x7 on 3 channels), and the
//    span of the next output pixel starts stride_w * c bytes later. Each
//    input row an output row needs is copied into a row buffer with the
//    padding columns filled with zp' (the src zero point; s8 inputs are
//    read as x + 128, an xor with 0x80, and zp' = src_zp + 128), so the
//    spans of every output pixel lie in the buffer; rows outside the image
//    are all zp'.
// 2. The span is read as ceil(span / 4) 4-byte quads. vpdpbusd multiplies a
//    quad, broadcast to all lanes, by 16 channels' 4 weights and adds the
//    four products to each lane's int32 without saturation. The weights of
//    the bytes past the span (the next pixel's) are 0.
// 3. acc = (bias - zp' * sum(w)) + sum(x' * w) over all taps, padding
//    included: the padding taps read zp', so they add zp' * w and the
//    folded bias takes it away again. Exact in int32 modulo 2^32, and the
//    result is within the int32 bound createStemConv2d checks.
// 4. A strip of kStrip output pixels times 64 output channels accumulates
//    in 4 * kStrip zmm registers (ymm and 32 channels for a block of at most
//    32); each quad's 4 weight vectors are loaded once per strip. The last
//    strip of a row overlaps the one before it (it recomputes, and rewrites,
//    the same values).
// 5. The channels sit in the in-lane order of Vnni.h, so requantStore packs
//    them back to channel order; one 64-byte (masked) store per pixel.
//
// Threads: ItemKernel (Vnni.h) over output rows.
//
//===----------------------------------------------------------------------===//

#include "StemConv.h"
#include "Vnni.h"

#include <cstring>
#include <utility>
#include <vector>

using namespace qnt::rt;

#ifdef QNT_VNNI_X86

using namespace qnt::rt::vnni;

namespace {

/// Output pixels a strip accumulates at once: 4 * kStrip accumulators and
/// 4 weight vectors fit in the 32 zmm registers.
constexpr int kStrip = 6;

/// Shape, packed weights and requantization constants of a kernel.
struct StemPlan {
  int64_t n, h, w, c, oc, oh, ow, kh, sh, sw, pt, pl;
  int64_t quads;    // ceil(kw * c / 4): quads of a span
  int64_t rowBytes; // bytes of a row buffer
  int64_t blocks;   // blocks of 64 output channels
  uint8_t padByte;  // zp'
  bool srcSigned;
  RequantPlan rq;
  std::vector<int8_t> weights; // [block][ky][quad][4 vectors][16 lanes][4]
  std::vector<int32_t> bias;   // [block][64, in-lane order]: bias - zp' sum(w)
  std::vector<float> scales;   // [block][64, in-lane order]
  int64_t rowItems() const { return n * oh; }
};

template <bool Clamp, bool DstSigned> struct Stem {
  /// Output pixels [ox, ox + NX) of one row, channel block `b` (W::kBytes
  /// channels or fewer, rc.m), from the row buffers `rows` (kh of them).
  template <typename W, int NX>
  static inline void strip(const StemPlan &p, const uint8_t *const *rows,
                           int64_t b, const RequantConsts<W> &rc, int64_t ox,
                           uint8_t *out) {
    using V = typename W::V;
    V acc[NX][4];
    const int32_t *bias = &p.bias[b * 64];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const V init = W::load(bias + 16 * v);
#pragma GCC unroll 8
      for (int j = 0; j < NX; ++j)
        acc[j][v] = init;
    }
    const int64_t step = p.sw * p.c;
    const int8_t *w = &p.weights[b * p.kh * p.quads * 256];
    for (int64_t ky = 0; ky < p.kh; ++ky) {
      const uint8_t *span = rows[ky] + ox * step;
      for (int64_t q = 0; q < p.quads; ++q, w += 256) {
        V wv[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v)
          wv[v] = W::load(w + 64 * v);
#pragma GCC unroll 8
        for (int j = 0; j < NX; ++j) {
          int32_t quad;
          std::memcpy(&quad, span + j * step + 4 * q, 4);
          const V x = W::set32(quad);
#pragma GCC unroll 4
          for (int v = 0; v < 4; ++v)
            acc[j][v] = W::dpbusd(acc[j][v], x, wv[v]);
        }
      }
    }
    typename W::F scales[4];
    for (int v = 0; v < 4; ++v)
      scales[v] = W::loadF(&p.scales[b * 64 + 16 * v]);
#pragma GCC unroll 8
    for (int j = 0; j < NX; ++j)
      requantStore<W, Clamp, DstSigned>(out + (ox + j) * p.oc, acc[j], scales,
                                        rc);
  }

  /// One output row of channel block `b` (`count` channels, at `out`).
  template <typename W>
  static inline void outputRow(const StemPlan &p, const uint8_t *const *rows,
                               int64_t b, int64_t count, uint8_t *out) {
    const RequantConsts<W> rc(p.rq, count);
    if (p.ow < kStrip) {
      for (int64_t ox = 0; ox < p.ow; ++ox)
        strip<W, 1>(p, rows, b, rc, ox, out);
      return;
    }
    for (int64_t ox = 0; ox < p.ow; ox += kStrip)
      strip<W, kStrip>(p, rows, b, rc, std::min<int64_t>(ox, p.ow - kStrip),
                       out);
  }

  /// Copies input row `iy` of image `img` into `row` (see 1. above).
  static inline void fillRow(const StemPlan &p, const uint8_t *src, int64_t img,
                             int64_t iy, uint8_t *row) {
    // Columns [0, w) land at (x + pl) * c, as far as the buffer goes.
    const int64_t bytes =
        iy < 0 || iy >= p.h
            ? 0
            : std::max<int64_t>(0,
                                std::min(p.w * p.c, p.rowBytes - p.pl * p.c));
    if (bytes == 0) {
      std::memset(row, p.padByte, p.rowBytes);
      return;
    }
    uint8_t *at = row + p.pl * p.c;
    std::memset(row, p.padByte, p.pl * p.c);
    std::memset(at + bytes, p.padByte, p.rowBytes - p.pl * p.c - bytes);
    const uint8_t *in = src + (img * p.h + iy) * p.w * p.c;
    if (p.srcSigned) {
      for (int64_t i = 0; i < bytes; ++i)
        at[i] = in[i] ^ 0x80;
    } else {
      std::memcpy(at, in, bytes);
    }
  }

  /// Runs items [begin, end) of `groups * n * oh`: item i is output row
  /// i % (n * oh) for the channel blocks of group i / (n * oh).
  QNT_TARGET_AVX512_VNNI __attribute__((flatten)) static void
  run(const StemPlan &p, const void *srcV, void *dstV, int64_t begin,
      int64_t end, int64_t groups) {
    const auto *src = static_cast<const uint8_t *>(srcV);
    auto *dst = static_cast<uint8_t *>(dstV);
    // The row buffers are a ring: input row iy lives in slot iy mod kh, so
    // the next output row (a thread's items are consecutive) refills only
    // the sh rows it does not share with this one.
    std::vector<uint8_t> buffer(p.kh * p.rowBytes);
    std::vector<std::pair<int64_t, int64_t>> held(p.kh, {-1, 0}); // img, iy
    std::vector<const uint8_t *> rows(p.kh);
    const int64_t outRows = p.rowItems();
    for (int64_t item = begin; item < end; ++item) {
      const int64_t g = item / outRows, r = item % outRows;
      const int64_t img = r / p.oh, oy = r % p.oh;
      for (int64_t ky = 0; ky < p.kh; ++ky) {
        const int64_t iy = oy * p.sh - p.pt + ky;
        const int64_t slot = (iy % p.kh + p.kh) % p.kh;
        uint8_t *row = &buffer[slot * p.rowBytes];
        if (held[slot] != std::make_pair(img, iy)) {
          fillRow(p, src, img, iy, row);
          held[slot] = {img, iy};
        }
        rows[ky] = row;
      }
      uint8_t *out = dst + (img * p.oh + oy) * p.ow * p.oc;
      const int64_t b0 = g * p.blocks / groups,
                    b1 = (g + 1) * p.blocks / groups;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t count = std::min<int64_t>(64, p.oc - 64 * b);
        if (count > 32)
          outputRow<Zmm>(p, rows.data(), b, count, out + 64 * b);
        else
          outputRow<Ymm>(p, rows.data(), b, count, out + 64 * b);
      }
    }
  }
};

ItemKernel<StemPlan>::RunFn stemEntry(bool clamp, bool dstSigned) {
  static const ItemKernel<StemPlan>::RunFn kEntries[2][2] = {
      {Stem<false, false>::run, Stem<false, true>::run},
      {Stem<true, false>::run, Stem<true, true>::run}};
  return kEntries[clamp][dstSigned];
}

StemPlan makePlan(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                  const int8_t *w, const int32_t *bias, double accBound) {
  StemPlan plan;
  plan.n = p.n, plan.h = p.h, plan.w = p.w, plan.c = p.c, plan.oc = p.oc;
  plan.oh = p.oh, plan.ow = p.ow, plan.kh = p.kh;
  plan.sh = p.stride_h, plan.sw = p.stride_w;
  plan.pt = p.pad_top, plan.pl = p.pad_left;
  const int64_t span = p.kw * p.c;
  plan.quads = (span + 3) / 4;
  // The last pixel's span starts at (ow - 1) * sw * c and reads 4 * quads.
  plan.rowBytes = (p.ow - 1) * p.stride_w * p.c + 4 * plan.quads;
  plan.blocks = (p.oc + 63) / 64;
  const int64_t zp = shiftedSrcZp(s);
  plan.padByte = static_cast<uint8_t>(zp);
  plan.srcSigned = s.srcDtype == QNT_RT_S8;
  plan.rq = RequantPlan(s, p.oc, accBound);
  plan.weights.assign(plan.blocks * p.kh * plan.quads * 256, 0);
  plan.bias.assign(plan.blocks * 64, 0);
  plan.scales.assign(plan.blocks * 64, 0.0f);
  for (int64_t o = 0; o < p.oc; ++o) {
    const int64_t b = o / 64, at = inLaneIndex(o % 64);
    int64_t sum = 0;
    for (int64_t ky = 0; ky < p.kh; ++ky)
      for (int64_t k = 0; k < span; ++k) {
        // OHWI: the span of kernel row ky is w[o][ky][0..kw)[0..c).
        const int8_t v = w[(o * p.kh + ky) * span + k];
        plan.weights[((b * p.kh + ky) * plan.quads + k / 4) * 256 + at * 4 +
                     k % 4] = v;
        sum += v;
      }
    plan.bias[b * 64 + at] =
        static_cast<int32_t>((bias ? bias[o] : 0) - zp * sum);
    plan.scales[b * 64 + at] = s.scale(o);
  }
  return plan;
}

} // namespace

bool qnt::rt::cpuHasStemIsa() { return cpuHasAvx512Vnni(); }

bool qnt::rt::stemConvBeatsOneDnn(const qnt_rt_conv2d_params &p,
                                  const CommonSpec &) {
  // Measured against oneDNN 2.6 (qnt-dwconv-bench --layers stem,
  // docs/runtime.md): ahead on 1-4 input channels (1.07-2.7x) where at
  // least 3/4 of the vector lanes hold output channels (64-channel zmm
  // blocks, a last block of at most 32 in ymm): 24, 32, 48, 64, 96, 100,
  // ... but not 16 (0.5x) or 33-40 (0.88-0.93x).
  const int64_t full = p.oc / 64, rest = p.oc % 64;
  const int64_t lanes = 64 * full + (rest > 32 ? 64 : rest > 0 ? 32 : 0);
  return p.c <= 4 && p.groups == 1 && 4 * p.oc >= 3 * lanes &&
         cpuHasAvx512Vnni() && oneDnnAllows(dnnl::cpu_isa::avx512_core_vnni);
}

Kernel *qnt::rt::createStemConv2d(const qnt_rt_conv2d_params &p,
                                  const CommonSpec &s, const void *weight,
                                  const void *bias, std::string &why) {
  why.clear();
  if (s.isFloat() || p.groups != 1) {
    why = "not a quantized conv2d with groups 1";
    return nullptr;
  }
  if (const char *reason = unsupportedConv2d(p, s, bias)) {
    why = reason;
    return nullptr;
  }
  const int64_t zp = shiftedSrcZp(s);
  if (zp < 0 || zp > 255 || std::abs(s.dstZp) > kMaxDstZp) {
    why = "zero points out of the kernel's range";
    return nullptr;
  }
  if (!cpuHasAvx512Vnni()) {
    why = "this CPU has no avx512_vnni";
    return nullptr;
  }
  const auto *w = static_cast<const int8_t *>(weight);
  const auto *b = static_cast<const int32_t *>(bias);
  const int64_t taps = p.kh * p.kw * p.c;
  const double bound = accumulatorBound(s, w, p.oc * taps, b, p.oc, taps);
  if (bound > double(std::numeric_limits<int32_t>::max())) {
    why = "the accumulator may exceed int32";
    return nullptr;
  }
  StemPlan plan = makePlan(p, s, w, b, bound);
  const auto run = stemEntry(plan.rq.clampScaled, s.dstDtype == QNT_RT_S8);
  return new ItemKernel<StemPlan>(std::move(plan), run,
                                  "qnt stemconv avx512_vnni");
}

#else // !QNT_VNNI_X86

bool qnt::rt::cpuHasStemIsa() { return false; }

bool qnt::rt::stemConvBeatsOneDnn(const qnt_rt_conv2d_params &,
                                  const CommonSpec &) {
  return false;
}

Kernel *qnt::rt::createStemConv2d(const qnt_rt_conv2d_params &,
                                  const CommonSpec &, const void *,
                                  const void *, std::string &why) {
  why = "not x86-64";
  return nullptr;
}

#endif // QNT_VNNI_X86
