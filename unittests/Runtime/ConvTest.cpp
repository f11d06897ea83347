//===- ConvTest.cpp - qnt_rt_conv2d tests ---------------------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <string>

using namespace qnt_test;

namespace {

struct ConvShape {
  int64_t n, h, w, c, oc, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, g;
  int64_t oh() const { return (h + pt + pb - dh * (kh - 1) - 1) / sh + 1; }
  int64_t ow() const { return (w + pl + pr - dw * (kw - 1) - 1) / sw + 1; }
  int64_t icg() const { return c / g; }
  int64_t ocg() const { return oc / g; }
  size_t srcSize() const { return n * h * w * c; }
  size_t weiSize() const { return oc * kh * kw * icg(); }
  size_t dstSize() const { return n * oh() * ow() * oc; }
};

struct QConvCase {
  const char *name;
  ConvShape s;
  int64_t srcDtype, srcZp, srcQmin, srcQmax;
  int64_t dstDtype, dstZp, dstQmin, dstQmax;
  bool perChannel, bias;
  int64_t wmin, wmax; // weight value range
  float fixedM;       // 0: chosen from the accumulators
};

qnt_rt_conv2d_params convParams(const ConvShape &s) {
  qnt_rt_conv2d_params p{};
  p.n = s.n, p.h = s.h, p.w = s.w, p.c = s.c;
  p.oc = s.oc, p.kh = s.kh, p.kw = s.kw, p.oh = s.oh(), p.ow = s.ow();
  p.stride_h = s.sh, p.stride_w = s.sw;
  p.pad_top = s.pt, p.pad_bottom = s.pb, p.pad_left = s.pl, p.pad_right = s.pr;
  p.dilation_h = s.dh, p.dilation_w = s.dw, p.groups = s.g;
  return p;
}

/// acc[n, oh, ow, oc] = sum((src - zp) * w) + bias, straight from the header.
std::vector<int64_t> refAcc(const ConvShape &s, const std::vector<int64_t> &src,
                            int64_t zp, const std::vector<int64_t> &w,
                            const std::vector<int64_t> &bias) {
  std::vector<int64_t> acc(s.dstSize());
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t y = 0; y < s.oh(); ++y)
      for (int64_t x = 0; x < s.ow(); ++x)
        for (int64_t o = 0; o < s.oc; ++o) {
          int64_t g = o / s.ocg();
          int64_t a = bias.empty() ? 0 : bias[o];
          for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx)
              for (int64_t i = 0; i < s.icg(); ++i) {
                int64_t iy = y * s.sh - s.pt + ky * s.dh;
                int64_t ix = x * s.sw - s.pl + kx * s.dw;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w)
                  continue;
                int64_t v =
                    src[((b * s.h + iy) * s.w + ix) * s.c + g * s.icg() + i];
                a += (v - zp) * w[((o * s.kh + ky) * s.kw + kx) * s.icg() + i];
              }
          acc[((b * s.oh() + y) * s.ow() + x) * s.oc + o] = a;
        }
  return acc;
}

/// Every case runs on both backends: XNNPACK's qc8 kernels are exact too
/// (docs/runtime.md), and a case XNNPACK rejects falls back to oneDNN.
class QuantizedConv
    : public ::testing::TestWithParam<std::tuple<QConvCase, int64_t>> {};

TEST_P(QuantizedConv, MatchesReferenceExactly) {
  const QConvCase &tc = std::get<0>(GetParam());
  const ConvShape &s = tc.s;
  std::mt19937 rng(1234);
  auto w = randInts(rng, s.weiSize(), tc.wmin, tc.wmax);
  std::vector<int64_t> bias;
  if (tc.bias)
    bias = randInts(rng, s.oc, -3000, 3000);
  auto src1 = randInts(rng, s.srcSize(), tc.srcQmin, tc.srcQmax);
  auto src2 = randInts(rng, s.srcSize(), tc.srcQmin, tc.srcQmax);
  // Saturation-style cases: extreme inputs everywhere.
  if (tc.wmax == 127 && tc.wmin == -127 && tc.srcQmax == 255)
    for (size_t i = 0; i < src1.size(); ++i)
      src1[i] = (i % 7 == 3) ? 0 : 255;

  // M per channel: spread the outputs over (a bit more than) the dst range.
  auto acc1 = refAcc(s, src1, tc.srcZp, w, bias);
  std::vector<float> ms(tc.perChannel ? s.oc : 1);
  std::uniform_real_distribution<float> f(0.6f, 2.5f);
  for (size_t c = 0; c < ms.size(); ++c) {
    int64_t mx = 1;
    for (size_t i = 0; i < acc1.size(); ++i)
      if (!tc.perChannel || int64_t(i % s.oc) == int64_t(c))
        mx = std::max<int64_t>(mx, std::llabs(acc1[i]));
    ms[c] = tc.fixedM != 0
                ? tc.fixedM
                : float(tc.dstQmax - tc.dstQmin) / float(mx) * f(rng);
  }

  qnt_rt_conv2d_params p = convParams(s);
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
    auto acc = call == 0 ? acc1 : refAcc(s, src2, tc.srcZp, w, bias);
    auto sb = pack(src, tc.srcDtype);
    std::vector<uint8_t> db(s.dstSize(), 0xAB);
    void *before = slot;
    qnt_rt_conv2d(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                  sb.data(), wb.data(), tc.bias ? bb.data() : nullptr,
                  db.data());
    ASSERT_NE(slot, nullptr);
    if (call > 0) {
      EXPECT_EQ(slot, before) << "kernel re-created";
    }
    auto got = unpack(db, tc.dstDtype);
    int64_t mismatches = 0, clamped = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      float m = ms[tc.perChannel ? i % s.oc : 0];
      int64_t want = requant(acc[i], m, tc.dstZp, tc.dstQmin, tc.dstQmax);
      clamped += want == tc.dstQmin || want == tc.dstQmax;
      if (got[i] != want && ++mismatches <= 5)
        ADD_FAILURE() << "call " << call << " element " << i << " (oc "
                      << i % s.oc << "): acc " << acc[i] << " M " << m
                      << " got " << got[i] << " want " << want;
    }
    EXPECT_EQ(mismatches, 0) << "of " << got.size();
    // The data must exercise the real range, not just the clamp.
    EXPECT_LT(clamped, int64_t(got.size())) << "all outputs clamped";
  }
}

// clang-format off
const QConvCase kQConvCases[] = {
  // name, shape{n,h,w,c,oc,kh,kw,sh,sw,pt,pb,pl,pr,dh,dw,g},
  // src dtype/zp/qmin/qmax, dst dtype/zp/qmin/qmax, perChannel, bias,
  // wmin, wmax, fixedM
  {"Basic3x3", {1, 9, 11, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 0, 0, 127, QNT_RT_U8, 3, 0, 255, false, true, -127, 127, 0},
  {"Stride2AsymPadDilationOddChannelsBatch2",
   {2, 13, 10, 5, 7, 3, 2, 2, 2, 0, 2, 1, 3, 2, 3, 1},
   QNT_RT_U8, 64, 0, 127, QNT_RT_S8, -5, -128, 127, true, true, -127, 127, 0},
  {"SrcZeroPointPerTensor", {1, 8, 8, 24, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 37, 0, 127, QNT_RT_U8, 128, 0, 255, false, true, -128, 127, 0},
  {"SrcZeroPointPerChannelNoBias",
   {2, 7, 9, 13, 11, 3, 3, 2, 1, 1, 0, 0, 1, 1, 1, 1},
   QNT_RT_U8, 5, 0, 127, QNT_RT_U8, 17, 0, 255, true, false, -127, 127, 0},
  {"Groups3", {2, 8, 8, 6, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
   QNT_RT_U8, 10, 0, 127, QNT_RT_U8, 100, 0, 255, true, true, -127, 127, 0},
  {"Groups4Wide", {1, 6, 7, 64, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4},
   QNT_RT_U8, 0, 0, 127, QNT_RT_S8, 0, -128, 127, true, true, -127, 127, 0},
  {"Depthwise", {2, 10, 9, 24, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 24},
   QNT_RT_U8, 20, 0, 127, QNT_RT_U8, 60, 0, 255, true, true, -127, 127, 0},
  {"DepthwiseStride2", {1, 11, 11, 17, 17, 5, 5, 2, 2, 2, 1, 1, 2, 1, 1, 17},
   QNT_RT_U8, 0, 0, 127, QNT_RT_U8, 0, 0, 255, false, true, -127, 127, 0},
  {"DepthwiseMultiplier2", {1, 7, 7, 5, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5},
   QNT_RT_U8, 3, 0, 127, QNT_RT_U8, 7, 0, 255, true, true, -127, 127, 0},
  {"Pointwise1x1", {2, 6, 5, 33, 19, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
   QNT_RT_U8, 11, 0, 127, QNT_RT_S8, 1, -128, 127, true, true, -127, 127, 0},
  {"Pointwise1x1Stride2Padded", {1, 9, 9, 8, 16, 1, 1, 2, 2, 1, 0, 0, 1, 1, 1, 1},
   QNT_RT_U8, 9, 0, 127, QNT_RT_U8, 5, 0, 255, false, true, -127, 127, 0},
  {"ReluClamp", {1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 12, 0, 127, QNT_RT_U8, 40, 40, 255, true, true, -127, 127, 0},
  {"ReluClampS8", {1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 0, 0, 127, QNT_RT_S8, -20, -20, 127, false, true, -127, 127, 0},
  {"NarrowDstRange", {1, 6, 6, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 0, 0, 127, QNT_RT_U8, 100, 50, 200, false, true, -127, 127, 0},
  // M = 0.5 / 0.25 make many float(acc) * M exact ties; odd dst zero point.
  {"TiesOddDstZeroPoint", {1, 5, 5, 3, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
   QNT_RT_U8, 0, 0, 127, QNT_RT_U8, 11, 0, 255, false, false, -1, 1, 0.5f},
  {"TiesOddDstZeroPointSrcZp", {1, 6, 6, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 3, 0, 127, QNT_RT_S8, -7, -128, 127, false, true, -1, 1, 0.25f},
  // u8 255 x s8 +-127 overflows vpmaddubsw's int16 pair sums on AVX2.
  {"SaturationFullRangeU8", {1, 6, 6, 64, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 0, 0, 255, QNT_RT_U8, 0, 0, 255, true, true, -127, 127, 0},
  {"SaturationFullRangeU8SrcZp", {2, 5, 5, 48, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 128, 0, 255, QNT_RT_S8, 0, -128, 127, false, true, -127, 127, 0},
  {"FullRangeU8SmallWeights", {1, 6, 6, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   QNT_RT_U8, 0, 0, 255, QNT_RT_U8, 0, 0, 255, true, true, -64, 64, 0},
  // K * max|src - zp| * max|w| > 2^24 with a bias: tiny M goes to the
  // reference, M = 2^-13 stays on oneDNN (see selectInt8Path).
  {"LargeKBiasTinyM", {1, 3, 3, 2048, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
   QNT_RT_U8, 0, 0, 127, QNT_RT_U8, 3, 0, 255, false, true, -127, 127, 2e-6f},
  {"LargeKBiasSmallM", {1, 3, 3, 2048, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
   QNT_RT_U8, 64, 0, 127, QNT_RT_U8, 128, 0, 255, true, true, -127, 127, 0x1p-13f},
  {"S8Src", {2, 7, 6, 12, 10, 3, 3, 1, 2, 1, 1, 0, 1, 1, 1, 1},
   QNT_RT_S8, -3, -128, 127, QNT_RT_S8, 2, -128, 127, true, true, -128, 127, 0},
  {"S8SrcDepthwise", {1, 7, 7, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 9},
   QNT_RT_S8, 0, -128, 127, QNT_RT_U8, 128, 0, 255, false, true, -127, 127, 0},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(
    Conv2d, QuantizedConv,
    ::testing::Combine(::testing::ValuesIn(kQConvCases),
                       ::testing::Values(QNT_RT_BACKEND_ONEDNN,
                                         QNT_RT_BACKEND_XNNPACK)),
    [](const auto &info) { return backendTestName(info.param); });

//===----------------------------------------------------------------------===//
// Float conv2d
//===----------------------------------------------------------------------===//

struct FConvCase {
  const char *name;
  ConvShape s;
  int64_t activation;
  bool bias;
};

class FloatConv : public ::testing::TestWithParam<FConvCase> {};

TEST_P(FloatConv, MatchesDoubleReference) {
  const FConvCase &tc = GetParam();
  const ConvShape &s = tc.s;
  std::mt19937 rng(99);
  auto src = randFloats(rng, s.srcSize(), -2.0f, 2.0f);
  auto w = randFloats(rng, s.weiSize(), -1.0f, 1.0f);
  std::vector<float> bias;
  if (tc.bias)
    bias = randFloats(rng, s.oc, -1.0f, 1.0f);
  const float cmin = -0.75f, cmax = 1.5f;

  qnt_rt_conv2d_params p = convParams(s);
  p.src_dtype = p.wei_dtype = p.dst_dtype = QNT_RT_F32;
  p.bias_kind = tc.bias ? QNT_RT_BIAS_F32 : QNT_RT_BIAS_NONE;
  p.activation = tc.activation;
  p.num_scales = 1;
  std::vector<float> fp = {cmin, cmax, 1.0f};
  std::vector<float> dst(s.dstSize(), -99.0f);
  void *slot = nullptr;
  for (int call = 0; call < 2; ++call) {
    if (call == 1)
      for (auto &v : src)
        v = -v * 0.5f;
    qnt_rt_conv2d(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                  src.data(), w.data(), tc.bias ? bias.data() : nullptr,
                  dst.data());
    int64_t bad = 0;
    for (int64_t b = 0; b < s.n; ++b)
      for (int64_t y = 0; y < s.oh(); ++y)
        for (int64_t x = 0; x < s.ow(); ++x)
          for (int64_t o = 0; o < s.oc; ++o) {
            double acc = tc.bias ? bias[o] : 0.0;
            double mag = std::fabs(acc);
            int64_t g = o / s.ocg();
            for (int64_t ky = 0; ky < s.kh; ++ky)
              for (int64_t kx = 0; kx < s.kw; ++kx)
                for (int64_t i = 0; i < s.icg(); ++i) {
                  int64_t iy = y * s.sh - s.pt + ky * s.dh;
                  int64_t ix = x * s.sw - s.pl + kx * s.dw;
                  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w)
                    continue;
                  double t =
                      double(src[((b * s.h + iy) * s.w + ix) * s.c +
                                 g * s.icg() + i]) *
                      double(w[((o * s.kh + ky) * s.kw + kx) * s.icg() + i]);
                  acc += t;
                  mag += std::fabs(t);
                }
            if (tc.activation == QNT_RT_ACT_RELU)
              acc = std::max(acc, 0.0);
            else if (tc.activation == QNT_RT_ACT_CLAMP)
              acc = std::min(std::max(acc, double(cmin)), double(cmax));
            float got = dst[((b * s.oh() + y) * s.ow() + x) * s.oc + o];
            if (std::fabs(got - acc) > 1e-4 * std::max(mag, 1.0) && ++bad <= 5)
              ADD_FAILURE()
                  << "call " << call << " at " << b << "," << y << "," << x
                  << "," << o << ": got " << got << " want " << acc;
          }
    EXPECT_EQ(bad, 0);
  }
}

// clang-format off
const FConvCase kFConvCases[] = {
  {"Basic", {1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, QNT_RT_ACT_NONE, true},
  {"Stride2AsymPadDilation", {2, 11, 9, 5, 7, 3, 3, 2, 2, 0, 2, 1, 0, 2, 2, 1}, QNT_RT_ACT_RELU, true},
  {"GroupsClamp", {1, 7, 7, 12, 18, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3}, QNT_RT_ACT_CLAMP, true},
  {"DepthwiseRelu", {2, 9, 9, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 16}, QNT_RT_ACT_RELU, false},
  {"Pointwise", {1, 5, 6, 32, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, QNT_RT_ACT_NONE, false},
  {"Wide7x7", {1, 20, 20, 3, 8, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1}, QNT_RT_ACT_CLAMP, true},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Conv2d, FloatConv, ::testing::ValuesIn(kFConvCases),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

TEST(Conv2dExactness, BiasBeyond2To24) {
  // acc = 1 + (2^24 + 1): float(acc) = 2^24 + 2, whereas oneDNN would compute
  // float(1) + float(2^24 + 1) = 2^24. With M ~ 100.5 / (2^24 + 1) the two
  // round to 101 and 100.
  ConvShape s{1, 1, 1, 8, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
  qnt_rt_conv2d_params p = convParams(s);
  p.src_dtype = QNT_RT_U8, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_U8;
  p.bias_kind = QNT_RT_BIAS_S32;
  p.src_qmax = 127, p.dst_qmax = 255, p.num_scales = 1;
  const float m = 100.5f / 16777217.0f;
  std::vector<float> fp = {0, 0, m};
  std::vector<uint8_t> src(8, 0), dst(8);
  src[0] = 1;
  std::vector<int8_t> w(64, 0);
  for (int o = 0; o < 8; ++o)
    w[o * 8] = 1;
  std::vector<int32_t> bias(8, 16777217);
  void *slot = nullptr;
  qnt_rt_conv2d(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                src.data(), w.data(), bias.data(), dst.data());
  const int64_t want = requant(16777218, m, 0, 0, 255);
  EXPECT_EQ(want, 101);
  for (int o = 0; o < 8; ++o)
    EXPECT_EQ(dst[o], want) << o;
}

TEST(Conv2dExactness, ZeroPointCompensationBeyond2To24) {
  // src == src_zp == 127 everywhere: acc = bias exactly, although
  // sum(src * w) = 127 * 127 * 2047 is odd and beyond 2^24.
  const int64_t c = 2047;
  ConvShape s{1, 2, 2, c, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
  qnt_rt_conv2d_params p = convParams(s);
  p.src_dtype = QNT_RT_U8, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_U8;
  p.bias_kind = QNT_RT_BIAS_S32;
  p.src_zp = 127, p.src_qmax = 127;
  p.dst_zp = 100, p.dst_qmax = 255, p.num_scales = 1;
  std::vector<float> fp = {0, 0, 1.0f};
  std::vector<uint8_t> src(s.srcSize(), 127), dst(s.dstSize());
  std::vector<int8_t> w(s.weiSize(), 127);
  std::vector<int32_t> bias = {7, -9, 0, 100};
  void *slot = nullptr;
  qnt_rt_conv2d(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
                src.data(), w.data(), bias.data(), dst.data());
  for (size_t i = 0; i < dst.size(); ++i)
    EXPECT_EQ(dst[i], 100 + bias[i % 4]) << i;
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST(Conv2dDeathTest, InvalidParamsExitWith70) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ConvShape s{1, 4, 4, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4}; // 4 !| 6
  qnt_rt_conv2d_params p = convParams(s);
  p.src_dtype = p.wei_dtype = p.dst_dtype = QNT_RT_F32;
  p.num_scales = 1;
  std::vector<float> fp = {0, 0, 1}, buf(1024);
  void *slot = nullptr;
  EXPECT_EXIT(qnt_rt_conv2d(&slot, reinterpret_cast<const int64_t *>(&p),
                            fp.data(), buf.data(), buf.data(), nullptr,
                            buf.data()),
              ::testing::ExitedWithCode(70), "qnt runtime error: conv2d");
}

} // namespace
