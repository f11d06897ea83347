//===- ConvTestUtil.h - A conv2d call site run by implementation -*- C++
//-*-===//
//
// The problem of a quantized conv2d test (params, data, the expected
// output) and qnt_rt_conv2d_testing runs of it with a chosen
// implementation, shared by the depthwise and stem kernel tests.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_UNITTESTS_RUNTIME_CONVTESTUTIL_H
#define QNT_UNITTESTS_RUNTIME_CONVTESTUTIL_H

#include "../../runtime/lib/ConvTesting.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

namespace qnt_test {

/// A conv2d call site with its data, and the expected output.
struct ConvProblem {
  qnt_rt_conv2d_params p{};
  std::vector<float> fparams;
  std::vector<uint8_t> src, weight, bias;
  std::vector<int64_t> want;
};

/// Completes `pr`, whose params are set but for bias_kind and num_scales:
/// packs `src`, `w` (OHWI: oc x kh x kw x c / groups) and `bias` (empty:
/// none), draws the multipliers M from `rng` (one per output channel with
/// `perChannel`, else one; `fixedM` if not 0, else spread so that the
/// outputs cover the dst range) and computes `want` from qnt/Runtime.h:
///   acc = bias + sum((src - src_zp) * w) over the taps inside the image
///   want = clamp(rint(float(acc) * M) + dst_zp, dst_qmin, dst_qmax)
inline void finishConvProblem(ConvProblem &pr, const std::vector<int64_t> &src,
                              const std::vector<int64_t> &w,
                              const std::vector<int64_t> &bias, bool perChannel,
                              float fixedM, std::mt19937 &rng) {
  qnt_rt_conv2d_params &p = pr.p;
  const int64_t cpg = p.c / p.groups, opg = p.oc / p.groups;
  std::vector<int64_t> acc(p.n * p.oh * p.ow * p.oc);
  for (int64_t b = 0; b < p.n; ++b)
    for (int64_t y = 0; y < p.oh; ++y)
      for (int64_t x = 0; x < p.ow; ++x)
        for (int64_t o = 0; o < p.oc; ++o) {
          int64_t a = bias.empty() ? 0 : bias[o];
          for (int64_t ky = 0; ky < p.kh; ++ky)
            for (int64_t kx = 0; kx < p.kw; ++kx) {
              int64_t iy = y * p.stride_h - p.pad_top + ky,
                      ix = x * p.stride_w - p.pad_left + kx;
              if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w)
                continue;
              const int64_t at =
                  ((b * p.h + iy) * p.w + ix) * p.c + o / opg * cpg;
              for (int64_t ci = 0; ci < cpg; ++ci)
                a += (src[at + ci] - p.src_zp) *
                     w[((o * p.kh + ky) * p.kw + kx) * cpg + ci];
            }
          acc[((b * p.oh + y) * p.ow + x) * p.oc + o] = a;
        }
  std::vector<float> ms(perChannel ? p.oc : 1, fixedM);
  std::uniform_real_distribution<float> spread(0.6f, 2.5f);
  for (int64_t o = 0; fixedM == 0 && o < int64_t(ms.size()); ++o) {
    int64_t mx = 1;
    for (size_t i = 0; i < acc.size(); ++i)
      if (!perChannel || int64_t(i) % p.oc == o)
        mx = std::max<int64_t>(mx, std::llabs(acc[i]));
    ms[o] = float(p.dst_qmax - p.dst_qmin) / float(mx) * spread(rng);
  }
  pr.want.resize(acc.size());
  for (size_t i = 0; i < acc.size(); ++i)
    pr.want[i] = requant(acc[i], ms[perChannel ? i % p.oc : 0], p.dst_zp,
                         p.dst_qmin, p.dst_qmax);
  p.bias_kind = bias.empty() ? QNT_RT_BIAS_NONE : QNT_RT_BIAS_S32;
  p.num_scales = static_cast<int64_t>(ms.size());
  pr.fparams = {0.0f, 0.0f};
  pr.fparams.insert(pr.fparams.end(), ms.begin(), ms.end());
  pr.src = pack(src, p.src_dtype);
  pr.weight = pack(w, QNT_RT_S8);
  pr.bias = pack(bias, QNT_RT_S32);
}

struct ConvRun {
  int status;
  std::string describe;
  std::vector<int64_t> out;
};

/// Runs `impl` twice on one call site (the second call reuses the kernel).
inline ConvRun runConvImpl(const ConvProblem &pr, const char *impl) {
  ConvRun r;
  char desc[256] = "";
  void *slot = nullptr;
  std::vector<uint8_t> dst(pr.want.size(), 0xAB);
  for (int call = 0; call < 2; ++call) {
    r.status = qnt_rt_conv2d_testing(
        &slot, reinterpret_cast<const int64_t *>(&pr.p), pr.fparams.data(),
        pr.src.data(), pr.weight.data(),
        pr.p.bias_kind ? pr.bias.data() : nullptr, dst.data(), impl, desc,
        sizeof desc);
    if (r.status != 0)
      break;
  }
  r.describe = desc;
  r.out = unpack(dst, pr.p.dst_dtype);
  return r;
}

/// Counts (and reports the first few) elements of `got` that differ from
/// `want`; `channels` is the innermost dimension.
inline int64_t convMismatches(const std::vector<int64_t> &got,
                              const std::vector<int64_t> &want,
                              int64_t channels, const std::string &what) {
  int64_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i] && ++bad <= 5)
      ADD_FAILURE() << what << ": element " << i << " (channel " << i % channels
                    << ") got " << got[i] << " want " << want[i];
  return bad;
}

} // namespace qnt_test

#endif // QNT_UNITTESTS_RUNTIME_CONVTESTUTIL_H
