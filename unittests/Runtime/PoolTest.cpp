//===- PoolTest.cpp - qnt_rt_pool2d tests ---------------------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <string>

using namespace qnt_test;

namespace {

struct QMaxPoolCase {
  const char *name;
  int64_t n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr;
  int64_t dtype;
};

/// Quantized max pooling is exact on both backends (padding never wins).
class QuantizedMaxPool
    : public ::testing::TestWithParam<std::tuple<QMaxPoolCase, int64_t>> {};

TEST_P(QuantizedMaxPool, MatchesReferenceExactly) {
  const QMaxPoolCase &tc = std::get<0>(GetParam());
  qnt_rt_pool2d_params p{};
  p.n = tc.n, p.h = tc.h, p.w = tc.w, p.c = tc.c;
  p.kh = tc.kh, p.kw = tc.kw, p.stride_h = tc.sh, p.stride_w = tc.sw;
  p.pad_top = tc.pt, p.pad_bottom = tc.pb, p.pad_left = tc.pl,
  p.pad_right = tc.pr;
  p.oh = (tc.h + tc.pt + tc.pb - tc.kh) / tc.sh + 1;
  p.ow = (tc.w + tc.pl + tc.pr - tc.kw) / tc.sw + 1;
  p.kind = QNT_RT_POOL_MAX, p.dtype = tc.dtype;
  p.backend = std::get<1>(GetParam());

  std::mt19937 rng(77);
  // Mostly minimum values, so a zero-valued padding would show up.
  auto src = randInts(rng, tc.n * tc.h * tc.w * tc.c, dtypeMin(tc.dtype),
                      dtypeMin(tc.dtype) + 40);
  auto sb = pack(src, tc.dtype);
  std::vector<uint8_t> db(p.n * p.oh * p.ow * p.c, 0xAB);
  void *slot = nullptr;
  qnt_rt_pool2d(&slot, reinterpret_cast<const int64_t *>(&p), sb.data(),
                db.data());
  auto got = unpack(db, tc.dtype);
  for (int64_t b = 0; b < p.n; ++b)
    for (int64_t y = 0; y < p.oh; ++y)
      for (int64_t x = 0; x < p.ow; ++x)
        for (int64_t ch = 0; ch < p.c; ++ch) {
          int64_t want = INT64_MIN;
          for (int64_t ky = 0; ky < tc.kh; ++ky)
            for (int64_t kx = 0; kx < tc.kw; ++kx) {
              int64_t iy = y * tc.sh - tc.pt + ky, ix = x * tc.sw - tc.pl + kx;
              if (iy >= 0 && iy < tc.h && ix >= 0 && ix < tc.w)
                want = std::max(want,
                                src[((b * tc.h + iy) * tc.w + ix) * tc.c + ch]);
            }
          ASSERT_EQ(got[((b * p.oh + y) * p.ow + x) * p.c + ch], want)
              << "at " << b << "," << y << "," << x << "," << ch;
        }
}

// clang-format off
const QMaxPoolCase kQMaxPoolCases[] = {
  // name, n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr, dtype
  {"ResNetStemU8", 1, 12, 12, 8, 3, 3, 2, 2, 1, 1, 1, 1, QNT_RT_U8},
  {"AsymmetricPaddingS8", 2, 9, 7, 5, 3, 2, 2, 1, 0, 2, 1, 0, QNT_RT_S8},
  {"Window2x2U8", 1, 8, 8, 17, 2, 2, 2, 2, 0, 0, 0, 0, QNT_RT_U8},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(
    Pool2d, QuantizedMaxPool,
    ::testing::Combine(::testing::ValuesIn(kQMaxPoolCases),
                       ::testing::Values(QNT_RT_BACKEND_ONEDNN,
                                         QNT_RT_BACKEND_XNNPACK)),
    [](const auto &info) { return backendTestName(info.param); });

} // namespace
