//===- BatchMatmulTest.cpp - qnt_rt_batch_matmul tests --------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>

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
  qnt_rt_batch_matmul_params p{c.batch, c.m, c.k, c.n, QNT_RT_F32};
  std::vector<float> got(c.batch * c.m * c.n, NAN);
  void *slot = nullptr;
  for (int call = 0; call < 2; ++call) // the second call reuses the primitive
    qnt_rt_batch_matmul(&slot, reinterpret_cast<const int64_t *>(&p), a.data(),
                        b.data(), got.data());
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

} // namespace
