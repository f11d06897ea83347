//===- LinearTest.cpp - qnt_rt_linear tests -------------------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <string>

using namespace qnt_test;

namespace {

struct QLinearCase {
  const char *name;
  int64_t m, k, n;
  int64_t srcDtype, srcZp, srcQmin, srcQmax;
  int64_t dstDtype, dstZp, dstQmin, dstQmax;
  bool perChannel, bias;
  int64_t wmin, wmax;
  float fixedM;
};

/// Every case runs on both backends: XNNPACK's qc8 kernels are exact too
/// (docs/runtime.md), and a case XNNPACK rejects falls back to oneDNN.
class QuantizedLinear
    : public ::testing::TestWithParam<std::tuple<QLinearCase, int64_t>> {};

TEST_P(QuantizedLinear, MatchesReferenceExactly) {
  const QLinearCase &tc = std::get<0>(GetParam());
  std::mt19937 rng(4321);
  auto w = randInts(rng, tc.n * tc.k, tc.wmin, tc.wmax);
  std::vector<int64_t> bias;
  if (tc.bias)
    bias = randInts(rng, tc.n, -5000, 5000);
  auto refAcc = [&](const std::vector<int64_t> &src) {
    std::vector<int64_t> acc(tc.m * tc.n);
    for (int64_t i = 0; i < tc.m; ++i)
      for (int64_t j = 0; j < tc.n; ++j) {
        int64_t a = tc.bias ? bias[j] : 0;
        for (int64_t t = 0; t < tc.k; ++t)
          a += (src[i * tc.k + t] - tc.srcZp) * w[j * tc.k + t];
        acc[i * tc.n + j] = a;
      }
    return acc;
  };
  auto src1 = randInts(rng, tc.m * tc.k, tc.srcQmin, tc.srcQmax);
  auto src2 = randInts(rng, tc.m * tc.k, tc.srcQmin, tc.srcQmax);
  if (tc.srcQmax == 255 && tc.wmax == 127)
    for (size_t i = 0; i < src1.size(); ++i)
      src1[i] = (i % 5 == 2) ? 0 : 255;
  auto acc1 = refAcc(src1);
  std::vector<float> ms(tc.perChannel ? tc.n : 1);
  std::uniform_real_distribution<float> f(0.6f, 2.5f);
  for (size_t c = 0; c < ms.size(); ++c) {
    int64_t mx = 1;
    for (size_t i = 0; i < acc1.size(); ++i)
      if (!tc.perChannel || int64_t(i % tc.n) == int64_t(c))
        mx = std::max<int64_t>(mx, std::llabs(acc1[i]));
    ms[c] = tc.fixedM != 0
                ? tc.fixedM
                : float(tc.dstQmax - tc.dstQmin) / float(mx) * f(rng);
  }

  qnt_rt_linear_params p{};
  p.m = tc.m, p.k = tc.k, p.n = tc.n;
  p.src_dtype = tc.srcDtype, p.wei_dtype = QNT_RT_S8, p.dst_dtype = tc.dstDtype;
  p.bias_kind = tc.bias ? QNT_RT_BIAS_S32 : QNT_RT_BIAS_NONE;
  p.activation = QNT_RT_ACT_NONE;
  p.src_zp = tc.srcZp, p.src_qmin = tc.srcQmin, p.src_qmax = tc.srcQmax;
  p.dst_zp = tc.dstZp, p.dst_qmin = tc.dstQmin, p.dst_qmax = tc.dstQmax;
  p.num_scales = static_cast<int64_t>(ms.size());
  p.backend = std::get<1>(GetParam());
  std::vector<float> fp = {0.0f, 0.0f};
  fp.insert(fp.end(), ms.begin(), ms.end());
  auto wb = pack(w, QNT_RT_S8);
  auto bb = pack(bias, QNT_RT_S32);

  void *slot = nullptr;
  for (int call = 0; call < 2; ++call) {
    const auto &src = call == 0 ? src1 : src2;
    auto acc = call == 0 ? acc1 : refAcc(src2);
    auto sb = pack(src, tc.srcDtype);
    std::vector<uint8_t> db(tc.m * tc.n, 0xAB);
    qnt_rt_linear(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                  sb.data(), wb.data(), tc.bias ? bb.data() : nullptr,
                  db.data());
    auto got = unpack(db, tc.dstDtype);
    int64_t mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      float m = ms[tc.perChannel ? i % tc.n : 0];
      int64_t want = requant(acc[i], m, tc.dstZp, tc.dstQmin, tc.dstQmax);
      if (got[i] != want && ++mismatches <= 5)
        ADD_FAILURE() << "call " << call << " element " << i << ": acc "
                      << acc[i] << " M " << m << " got " << got[i] << " want "
                      << want;
    }
    EXPECT_EQ(mismatches, 0) << "of " << got.size();
  }
}

// clang-format off
const QLinearCase kQLinearCases[] = {
  // name, m, k, n, src dtype/zp/qmin/qmax, dst dtype/zp/qmin/qmax,
  // perChannel, bias, wmin, wmax, fixedM
  {"SrcZeroPointPerChannel", 4, 67, 33, QNT_RT_U8, 61, 0, 127, QNT_RT_U8, 9, 0, 255, true, true, -127, 127, 0},
  {"SrcZeroPointPerTensorS8Dst", 3, 128, 40, QNT_RT_U8, 17, 0, 127, QNT_RT_S8, -3, -128, 127, false, true, -128, 127, 0},
  {"NoZeroPointsNoBias", 5, 31, 7, QNT_RT_U8, 0, 0, 127, QNT_RT_S8, 0, -128, 127, true, false, -127, 127, 0},
  {"SingleRow", 1, 512, 100, QNT_RT_U8, 64, 0, 127, QNT_RT_U8, 128, 0, 255, true, true, -127, 127, 0},
  {"ReluClamp", 8, 40, 24, QNT_RT_U8, 30, 0, 127, QNT_RT_U8, 20, 20, 255, true, true, -127, 127, 0},
  {"TiesOddDstZeroPoint", 16, 3, 12, QNT_RT_U8, 1, 0, 127, QNT_RT_U8, 33, 0, 255, false, false, -1, 1, 0.5f},
  {"SaturationFullRangeU8", 6, 96, 20, QNT_RT_U8, 0, 0, 255, QNT_RT_U8, 0, 0, 255, true, true, -127, 127, 0},
  {"SaturationFullRangeU8SrcZp", 3, 64, 20, QNT_RT_U8, 130, 0, 255, QNT_RT_S8, 5, -128, 127, false, true, -127, 127, 0},
  {"S8Src", 4, 50, 9, QNT_RT_S8, -2, -128, 127, QNT_RT_S8, 0, -128, 127, true, true, -128, 127, 0},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(
    Linear, QuantizedLinear,
    ::testing::Combine(::testing::ValuesIn(kQLinearCases),
                       ::testing::Values(QNT_RT_BACKEND_ONEDNN,
                                         QNT_RT_BACKEND_XNNPACK)),
    [](const auto &info) { return backendTestName(info.param); });

TEST(LinearExactness, AccumulatorBeyondInt32) {
  // k * |src - zp| * |w| exceeds 2^31: the reference accumulates in int64
  // and saturates to the int32 range before the float conversion.
  const int64_t k = 70000;
  qnt_rt_linear_params p{};
  p.m = 1, p.k = k, p.n = 3;
  p.src_dtype = QNT_RT_S8, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_S8;
  p.bias_kind = QNT_RT_BIAS_S32;
  p.src_zp = 127, p.src_qmin = -128, p.src_qmax = 127;
  p.dst_zp = 0, p.dst_qmin = -128, p.dst_qmax = 127, p.num_scales = 1;
  std::vector<float> fp = {0, 0, 1e-8f};
  std::vector<int8_t> src(k, -128), w(3 * k);
  for (int64_t i = 0; i < k; ++i) {
    w[i] = 127;                       // acc = -255 * 127 * k: saturates
    w[k + i] = i % 2 ? 127 : -127;    // large terms that cancel
    w[2 * k + i] = i < k / 2 ? 3 : 0; // -255 * 3 * 35000, fits
  }
  std::vector<int32_t> bias = {5, -7, 11};
  std::vector<int8_t> dst(3);
  void *slot = nullptr;
  qnt_rt_linear(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                src.data(), w.data(), bias.data(), dst.data());
  EXPECT_EQ(dst[0], requant(INT32_MIN, 1e-8f, 0, -128, 127));
  EXPECT_EQ(dst[0], -21);
  EXPECT_EQ(dst[1], requant(-7, 1e-8f, 0, -128, 127));
  EXPECT_EQ(dst[2], requant(-255LL * 3 * (k / 2) + 11, 1e-8f, 0, -128, 127));
}

TEST(LinearExactness, ZeroPointCompensationBeyond2To24) {
  const int64_t k = 2047;
  qnt_rt_linear_params p{};
  p.m = 2, p.k = k, p.n = 3;
  p.src_dtype = QNT_RT_U8, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_S8;
  p.bias_kind = QNT_RT_BIAS_S32;
  p.src_zp = 127, p.src_qmax = 127;
  p.dst_zp = -3, p.dst_qmin = -128, p.dst_qmax = 127, p.num_scales = 1;
  std::vector<float> fp = {0, 0, 1.0f};
  std::vector<uint8_t> src(2 * k, 127);
  std::vector<int8_t> w(3 * k, 127), dst(6);
  std::vector<int32_t> bias = {7, -9, 0};
  void *slot = nullptr;
  qnt_rt_linear(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                src.data(), w.data(), bias.data(), dst.data());
  for (size_t i = 0; i < dst.size(); ++i)
    EXPECT_EQ(dst[i], -3 + bias[i % 3]) << i;
}

struct FLinearCase {
  const char *name;
  int64_t m, k, n, activation;
  bool bias;
};

class FloatLinear : public ::testing::TestWithParam<FLinearCase> {};

TEST_P(FloatLinear, MatchesDoubleReference) {
  const FLinearCase &tc = GetParam();
  std::mt19937 rng(7);
  auto src = randFloats(rng, tc.m * tc.k, -3.0f, 3.0f);
  auto w = randFloats(rng, tc.n * tc.k, -1.0f, 1.0f);
  std::vector<float> bias;
  if (tc.bias)
    bias = randFloats(rng, tc.n, -2.0f, 2.0f);
  const float cmin = -1.0f, cmax = 2.0f;
  qnt_rt_linear_params p{};
  p.m = tc.m, p.k = tc.k, p.n = tc.n;
  p.src_dtype = p.wei_dtype = p.dst_dtype = QNT_RT_F32;
  p.bias_kind = tc.bias ? QNT_RT_BIAS_F32 : QNT_RT_BIAS_NONE;
  p.activation = tc.activation;
  p.num_scales = 1;
  std::vector<float> fp = {cmin, cmax, 1.0f};
  std::vector<float> dst(tc.m * tc.n);
  void *slot = nullptr;
  for (int call = 0; call < 2; ++call) {
    if (call == 1)
      for (auto &v : src)
        v = v * -0.25f + 0.5f;
    qnt_rt_linear(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                  src.data(), w.data(), tc.bias ? bias.data() : nullptr,
                  dst.data());
    int64_t bad = 0;
    for (int64_t i = 0; i < tc.m; ++i)
      for (int64_t j = 0; j < tc.n; ++j) {
        double acc = tc.bias ? bias[j] : 0.0, mag = std::fabs(acc);
        for (int64_t t = 0; t < tc.k; ++t) {
          double v = double(src[i * tc.k + t]) * double(w[j * tc.k + t]);
          acc += v;
          mag += std::fabs(v);
        }
        if (tc.activation == QNT_RT_ACT_RELU)
          acc = std::max(acc, 0.0);
        else if (tc.activation == QNT_RT_ACT_CLAMP)
          acc = std::min(std::max(acc, double(cmin)), double(cmax));
        float got = dst[i * tc.n + j];
        if (std::fabs(got - acc) > 1e-4 * std::max(mag, 1.0) && ++bad <= 5)
          ADD_FAILURE() << "call " << call << " [" << i << "," << j << "]: got "
                        << got << " want " << acc;
      }
    EXPECT_EQ(bad, 0);
  }
}

const FLinearCase kFLinearCases[] = {
    {"Bias", 4, 37, 19, QNT_RT_ACT_NONE, true},
    {"NoBiasRelu", 1, 256, 64, QNT_RT_ACT_RELU, false},
    {"Clamp", 9, 16, 5, QNT_RT_ACT_CLAMP, true},
};

INSTANTIATE_TEST_SUITE_P(Linear, FloatLinear,
                         ::testing::ValuesIn(kFLinearCases),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

} // namespace
