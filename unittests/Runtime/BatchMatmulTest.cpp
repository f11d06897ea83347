//===- BatchMatmulTest.cpp - qnt_rt_batch_matmul tests --------------------===//
//
// Float cases against a double reference; quantized cases bit for bit
// against the header's formula (the suite also runs with
// ONEDNN_MAX_CPU_ISA=AVX2 and QNT_RT_FORCE_REFERENCE=1).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace qnt_test;

namespace {

struct BmmCase {
  int64_t batch, m, k, n;
};

class BatchMatmul : public ::testing::TestWithParam<BmmCase> {};

/// Float kernels agree with a double reference to 1e-5 of the largest output
/// (the summation order differs).
TEST_P(BatchMatmul, MatchesReference) {
  const BmmCase &c = GetParam();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> a(c.batch * c.m * c.k), b(c.batch * c.k * c.n);
  for (float &v : a)
    v = normal(rng);
  for (float &v : b)
    v = normal(rng);
  qnt_rt_batch_matmul_params p{};
  p.batch = c.batch, p.m = c.m, p.k = c.k, p.n = c.n, p.dtype = QNT_RT_F32;
  std::vector<float> got(c.batch * c.m * c.n, NAN);
  void *slot = nullptr;
  for (int call = 0; call < 2; ++call) // the second call reuses the primitive
    qnt_rt_batch_matmul(&slot, reinterpret_cast<const int64_t *>(&p), nullptr,
                        a.data(), b.data(), got.data());
  double largest = 0, worst = 0;
  for (int64_t i = 0; i < c.batch; ++i)
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t j = 0; j < c.n; ++j) {
        double want = 0;
        for (int64_t t = 0; t < c.k; ++t)
          want += double(a[(i * c.m + r) * c.k + t]) *
                  double(b[(i * c.k + t) * c.n + j]);
        largest = std::max(largest, std::fabs(want));
        worst = std::max(worst, std::fabs(got[(i * c.m + r) * c.n + j] - want));
      }
  EXPECT_LE(worst, 1e-5 * largest);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchMatmul,
                         ::testing::Values(BmmCase{12, 128, 64, 128},
                                           BmmCase{1, 3, 5, 7},
                                           BmmCase{8, 1, 33, 2}));

struct QBmmCase {
  const char *name;
  int64_t batch, m, k, n, dtype;
  bool transposed;
  int64_t aQmin, aQmax, aZp, bQmin, bQmax, bZp, dstQmin, dstQmax, dstZp;
  float multiplier;
};

class QuantizedBatchMatmul : public ::testing::TestWithParam<QBmmCase> {};

/// Exact: the integers of the header's formula, with random operands over
/// their whole ranges (their extremes included).
TEST_P(QuantizedBatchMatmul, MatchesFormula) {
  const QBmmCase &c = GetParam();
  std::mt19937 rng(11);
  std::vector<int64_t> a = randInts(rng, c.batch * c.m * c.k, c.aQmin, c.aQmax);
  std::vector<int64_t> b = randInts(rng, c.batch * c.k * c.n, c.bQmin, c.bQmax);
  a[0] = c.aQmax, a[1] = c.aQmin, b[0] = c.bQmax, b[1] = c.bQmin;
  qnt_rt_batch_matmul_params p{};
  p.batch = c.batch, p.m = c.m, p.k = c.k, p.n = c.n, p.dtype = c.dtype;
  p.b_transposed = c.transposed;
  p.a_zp = c.aZp, p.a_qmin = c.aQmin, p.a_qmax = c.aQmax;
  p.b_zp = c.bZp, p.b_qmin = c.bQmin, p.b_qmax = c.bQmax;
  p.dst_zp = c.dstZp, p.dst_qmin = c.dstQmin, p.dst_qmax = c.dstQmax;
  std::vector<uint8_t> aBytes = pack(a, c.dtype), bBytes = pack(b, c.dtype);
  std::vector<uint8_t> got(c.batch * c.m * c.n, 0xAB);
  void *slot = nullptr;
  for (int call = 0; call < 2; ++call)
    qnt_rt_batch_matmul(&slot, reinterpret_cast<const int64_t *>(&p),
                        &c.multiplier, aBytes.data(), bBytes.data(),
                        got.data());
  std::vector<int64_t> out = unpack(got, c.dtype);
  int64_t wrong = 0;
  for (int64_t i = 0; i < c.batch; ++i)
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t j = 0; j < c.n; ++j) {
        int64_t acc = 0;
        for (int64_t t = 0; t < c.k; ++t) {
          int64_t bv = c.transposed ? b[(i * c.n + j) * c.k + t]
                                    : b[(i * c.k + t) * c.n + j];
          acc += (a[(i * c.m + r) * c.k + t] - c.aZp) * (bv - c.bZp);
        }
        int64_t want =
            requant(acc, c.multiplier, c.dstZp, c.dstQmin, c.dstQmax);
        if (out[(i * c.m + r) * c.n + j] != want && wrong++ < 5)
          ADD_FAILURE() << "dst[" << i << ", " << r << ", " << j
                        << "] = " << out[(i * c.m + r) * c.n + j] << ", want "
                        << want << " (acc " << acc << ")";
      }
  EXPECT_EQ(wrong, 0);
}

// Ties: M = 0.5 makes every odd accumulator a .5 (rounded to even before
// the zero point is added).
INSTANTIATE_TEST_SUITE_P(
    Cases, QuantizedBatchMatmul,
    ::testing::Values(QBmmCase{"scores_u8", 12, 17, 16, 17, QNT_RT_U8, false, 0,
                               255, 131, 0, 255, 120, 0, 255, 77, 0.0123f},
                      QBmmCase{"scores_u8_transposed", 4, 9, 8, 13, QNT_RT_U8,
                               true, 0, 255, 3, 0, 255, 250, 0, 255, 0, 0.02f},
                      QBmmCase{"reduce_range", 3, 5, 64, 7, QNT_RT_U8, false, 0,
                               127, 60, 0, 127, 64, 0, 127, 10, 0.001f},
                      QBmmCase{"context_probabilities", 2, 8, 33, 6, QNT_RT_U8,
                               false, 0, 255, 0, 0, 255, 128, 0, 255, 128,
                               0.004f},
                      QBmmCase{"ties", 2, 3, 5, 4, QNT_RT_U8, false, 0, 255,
                               101, 0, 255, 99, 0, 255, 101, 0.5f},
                      QBmmCase{"s8", 3, 6, 10, 5, QNT_RT_S8, true, -128, 127,
                               -5, -128, 127, 7, -128, 127, -3, 0.01f},
                      QBmmCase{"narrow_dst", 1, 4, 12, 4, QNT_RT_U8, false, 0,
                               255, 100, 0, 255, 100, 20, 200, 110, 0.05f}),
    [](const ::testing::TestParamInfo<QBmmCase> &info) {
      return std::string(info.param.name);
    });

} // namespace
