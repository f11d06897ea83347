//===- ElementwiseTest.cpp - add / quantize / dequantize / fake_quant -----===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <limits>

using namespace qnt_test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

qnt_rt_quant_params quantParams(int64_t outer, int64_t channels, int64_t inner,
                                int64_t dtype, int64_t qmin, int64_t qmax) {
  qnt_rt_quant_params p{};
  p.outer = outer, p.channels = channels, p.inner = inner;
  p.qdtype = dtype, p.qmin = qmin, p.qmax = qmax;
  return p;
}

std::vector<int64_t> quantize(const qnt_rt_quant_params &p,
                              const std::vector<float> &s,
                              const std::vector<int64_t> &z,
                              const std::vector<float> &x) {
  std::vector<uint8_t> buf(x.size() * (p.qdtype == QNT_RT_S32 ? 4 : 1));
  void *slot = nullptr;
  qnt_rt_quantize(&slot, reinterpret_cast<const int64_t *>(&p), s.data(),
                  z.data(), x.data(), buf.data());
  return unpack(buf, p.qdtype);
}

/// q = clamp(rint(x * (1 / S)) + Z, qmin, qmax), in float like the header.
int64_t refQuantize(float x, float s, int64_t z, int64_t qmin, int64_t qmax) {
  const float inv = 1.0f / s;
  return clampI(rintf64(x * inv) + z, qmin, qmax);
}

TEST(Quantize, TiesRoundHalfToEven) {
  const float s = 0.5f; // x * 2 is exact
  const int64_t z = 10;
  auto p = quantParams(1, 1, 8, QNT_RT_U8, 0, 255);
  std::vector<float> x = {2.5f * s,  3.5f * s, -2.5f * s, 0.5f * s,
                          -0.5f * s, 1.5f * s, -1.5f * s, 4.5f * s};
  auto q = quantize(p, {s}, {z}, x);
  EXPECT_EQ(q, (std::vector<int64_t>{12, 14, 8, 10, 10, 12, 8, 14}));
}

TEST(Quantize, DivideIsOnnxQuantizeLinear) {
  // Values a hair around .5 steps, where x / S and x * f32(1 / S) round to
  // different integers: `divide` must give ONNX's rint(x / S) on each.
  const float s = 0.0123f;
  const int64_t z = 128;
  auto p = quantParams(1, 1, 0, QNT_RT_U8, 0, 255);
  p.divide = 1;
  std::vector<float> x;
  for (int q = -100; q < 100; ++q)
    for (float eps : {-1e-7f, 0.0f, 1e-7f})
      x.push_back(static_cast<float>((q + 0.5) * double(s)) + eps);
  p.inner = static_cast<int64_t>(x.size());
  auto got = quantize(p, {s}, {z}, x);
  int differs = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(got[i], clampI(rintf64(x[i] / s) + z, 0, 255)) << x[i];
    differs += got[i] != refQuantize(x[i], s, z, 0, 255);
  }
  EXPECT_GT(differs, 0) << "no input tells division from the reciprocal";
}

TEST(Quantize, TiesS8AndS32) {
  const float s = 0.25f;
  std::vector<float> x = {2.5f * s, 3.5f * s, -2.5f * s, -3.5f * s};
  auto q8 = quantize(quantParams(1, 1, 4, QNT_RT_S8, -128, 127), {s}, {-1}, x);
  EXPECT_EQ(q8, (std::vector<int64_t>{1, 3, -3, -5}));
  auto q32 = quantize(quantParams(1, 1, 4, QNT_RT_S32, INT32_MIN, INT32_MAX),
                      {s}, {0}, x);
  EXPECT_EQ(q32, (std::vector<int64_t>{2, 4, -2, -4}));
}

TEST(Quantize, ClampsAndNonFinite) {
  auto p = quantParams(1, 1, 7, QNT_RT_U8, 0, 127); // reduce_range
  auto q = quantize(p, {0.1f}, {3},
                    {100.0f, -100.0f, 12.7f, -0.3f, kInf, -kInf, kNaN});
  // NaN quantizes to qmin (documented in docs/runtime.md).
  EXPECT_EQ(q, (std::vector<int64_t>{127, 0, 127, 0, 127, 0, 0}));
  auto q8 = quantize(quantParams(1, 1, 3, QNT_RT_S8, -127, 127), {1.0f}, {0},
                     {-1000.0f, 1000.0f, -127.5f});
  EXPECT_EQ(q8, (std::vector<int64_t>{-127, 127, -127}));
  auto q32 = quantize(quantParams(1, 1, 3, QNT_RT_S32, INT32_MIN, INT32_MAX),
                      {1e-3f}, {0}, {1e30f, -1e30f, 1.0f});
  EXPECT_EQ(q32, (std::vector<int64_t>{INT32_MAX, INT32_MIN,
                                       rintf64(1.0f * (1.0f / 1e-3f))}));
}

TEST(Quantize, PerAxisRandomMatchesReference) {
  std::mt19937 rng(5);
  const int64_t outer = 3, ch = 5, inner = 37;
  for (int64_t dtype : {QNT_RT_U8, QNT_RT_S8, QNT_RT_S32}) {
    auto x = randFloats(rng, outer * ch * inner, -20.0f, 20.0f);
    // Some exact ties: multiples of S / 2.
    std::vector<float> s = {0.07f, 0.5f, 0.013f, 0.25f, 1.3f};
    for (int64_t i = 0; i < outer * ch * inner; i += 3) {
      int64_t c = (i / inner) % ch;
      x[i] = float(int64_t(i % 41) - 20) * 0.5f * s[c];
    }
    std::vector<int64_t> z = {0, 3, -2, 100, 7};
    if (dtype == QNT_RT_U8)
      z = {0, 3, 128, 100, 255};
    const int64_t qmin = dtypeMin(dtype), qmax = dtypeMax(dtype);
    auto p = quantParams(outer, ch, inner, dtype, qmin, qmax);
    auto q = quantize(p, s, z, x);
    int64_t bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      int64_t c = (i / inner) % ch;
      int64_t want = refQuantize(x[i], s[c], z[c], qmin, qmax);
      if (q[i] != want && ++bad <= 5)
        ADD_FAILURE() << "dtype " << dtype << " x " << x[i] << " got " << q[i]
                      << " want " << want;
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST(Dequantize, MatchesFormula) {
  std::mt19937 rng(8);
  const int64_t outer = 2, ch = 3, inner = 10;
  std::vector<float> s = {0.1f, 0.02f, 3.0f};
  for (int64_t dtype : {QNT_RT_U8, QNT_RT_S8, QNT_RT_S32}) {
    std::vector<int64_t> z = dtype == QNT_RT_U8
                                 ? std::vector<int64_t>{0, 128, 7}
                                 : std::vector<int64_t>{0, -5, 9};
    auto q = randInts(rng, outer * ch * inner,
                      dtype == QNT_RT_S32 ? -100000 : dtypeMin(dtype),
                      dtype == QNT_RT_S32 ? 100000 : dtypeMax(dtype));
    auto qb = pack(q, dtype);
    auto p =
        quantParams(outer, ch, inner, dtype, dtypeMin(dtype), dtypeMax(dtype));
    std::vector<float> x(q.size());
    void *slot = nullptr;
    qnt_rt_dequantize(&slot, reinterpret_cast<const int64_t *>(&p), s.data(),
                      z.data(), qb.data(), x.data());
    for (size_t i = 0; i < q.size(); ++i) {
      int64_t c = (i / inner) % ch;
      ASSERT_EQ(x[i], float(q[i] - z[c]) * s[c]) << i;
    }
  }
}

TEST(FakeQuant, MatchesQuantizeThenDequantize) {
  std::mt19937 rng(9);
  const int64_t outer = 4, ch = 2, inner = 50;
  auto x = randFloats(rng, outer * ch * inner, -3.0f, 3.0f);
  x[0] = 2.5f * 0.5f, x[1] = -2.5f * 0.5f, x[2] = 1e9f; // channel 0: S = 0.5
  std::vector<float> s = {0.5f, 0.011f};
  std::vector<int64_t> z = {1, -7};
  auto p = quantParams(outer, ch, inner, QNT_RT_S8, -128, 127);
  std::vector<float> y(x.size());
  void *slot = nullptr;
  qnt_rt_fake_quant(&slot, reinterpret_cast<const int64_t *>(&p), s.data(),
                    z.data(), x.data(), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    int64_t c = (i / inner) % ch;
    float want = float(refQuantize(x[i], s[c], z[c], -128, 127) - z[c]) * s[c];
    ASSERT_EQ(y[i], want) << i << " x " << x[i];
  }
  EXPECT_EQ(y[0], 1.0f);  // rint(2.5) = 2
  EXPECT_EQ(y[1], -1.0f); // rint(-2.5) = -2
  EXPECT_EQ(y[2], 63.0f); // 127 - 1
}

//===----------------------------------------------------------------------===//
// add
//===----------------------------------------------------------------------===//

/// XNNPACK's add requantizes in fixed point: within 1 LSB of the float
/// formula (docs/runtime.md); the runtime's own loop is exact.
void checkQuantizedAdd(int64_t dtype, bool relu, int64_t qmin, int64_t qmax,
                       int64_t backend = QNT_RT_BACKEND_ONEDNN) {
  std::mt19937 rng(11 + dtype * 2 + relu);
  const int64_t n = 1000;
  const int64_t lo = dtypeMin(dtype) < -1000 ? -1000 : dtypeMin(dtype);
  const int64_t hi = dtypeMax(dtype) > 1000 ? 1000 : dtypeMax(dtype);
  auto a = randInts(rng, n, lo, hi), b = randInts(rng, n, lo, hi);
  const float sa = 0.05f, sb = 0.0375f, so = 0.0625f;
  const int64_t az = dtype == QNT_RT_U8 ? 120 : -3,
                bz = dtype == QNT_RT_U8 ? 7 : 5,
                dz = dtype == QNT_RT_U8 ? 65 : 1;
  qnt_rt_add_params p{};
  p.numel = n, p.dtype = dtype, p.relu = relu;
  p.a_zp = az, p.b_zp = bz, p.dst_zp = dz, p.dst_qmin = qmin, p.dst_qmax = qmax;
  p.backend = backend;
  std::vector<float> fp = {sa, sb, so};
  auto ab = pack(a, dtype), bb = pack(b, dtype);
  std::vector<uint8_t> db(ab.size());
  void *slot = nullptr;
  qnt_rt_add(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(), ab.data(),
             bb.data(), db.data());
  auto got = unpack(db, dtype);
  const float inv = 1.0f / so;
  int64_t ties = 0, offByOne = 0;
  const int64_t tolerance = backend == QNT_RT_BACKEND_XNNPACK ? 1 : 0;
  for (int64_t i = 0; i < n; ++i) {
    float r = float(a[i] - az) * sa + float(b[i] - bz) * sb;
    if (relu)
      r = std::max(r, 0.0f);
    float v = r * inv;
    ties += v - std::floor(v) == 0.5f;
    int64_t want = clampI(rintf64(v) + dz, qmin, qmax);
    ASSERT_LE(std::llabs(got[i] - want), tolerance)
        << "dtype " << dtype << " i " << i << " a " << a[i] << " b " << b[i]
        << " got " << got[i] << " want " << want;
    offByOne += got[i] != want;
  }
  (void)ties;
  // Off by one only rarely (at near-ties), never systematically.
  EXPECT_LE(offByOne, n / 20);
}

TEST(Add, QuantizedU8) { checkQuantizedAdd(QNT_RT_U8, false, 0, 255); }
TEST(Add, QuantizedU8Relu) { checkQuantizedAdd(QNT_RT_U8, true, 65, 255); }
TEST(Add, QuantizedS8NarrowRange) {
  checkQuantizedAdd(QNT_RT_S8, false, -100, 100);
}
TEST(Add, QuantizedS32) {
  checkQuantizedAdd(QNT_RT_S32, true, INT32_MIN, INT32_MAX);
}

TEST(Add, XnnpackU8) {
  checkQuantizedAdd(QNT_RT_U8, false, 0, 255, QNT_RT_BACKEND_XNNPACK);
}
TEST(Add, XnnpackU8Relu) {
  checkQuantizedAdd(QNT_RT_U8, true, 65, 255, QNT_RT_BACKEND_XNNPACK);
}
TEST(Add, XnnpackS8NarrowRange) {
  checkQuantizedAdd(QNT_RT_S8, false, -100, 100, QNT_RT_BACKEND_XNNPACK);
}
TEST(Add, XnnpackS32FallsBackExactly) {
  checkQuantizedAdd(QNT_RT_S32, true, INT32_MIN, INT32_MAX,
                    QNT_RT_BACKEND_XNNPACK);
}

TEST(Add, QuantizedTies) {
  // (a - a_zp) * 0.5 + (b - b_zp) * 0.25 with Sout = 1: many exact .5 ties.
  qnt_rt_add_params p{};
  p.numel = 6, p.dtype = QNT_RT_U8, p.relu = 0;
  p.a_zp = 0, p.b_zp = 0, p.dst_zp = 3, p.dst_qmin = 0, p.dst_qmax = 255;
  std::vector<float> fp = {0.5f, 0.25f, 1.0f};
  std::vector<uint8_t> a = {5, 7, 1, 3, 0, 9}, b = {0, 0, 0, 2, 2, 0}, d(6);
  void *slot = nullptr;
  qnt_rt_add(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(), a.data(),
             b.data(), d.data());
  // 2.5 -> 2, 3.5 -> 4, 0.5 -> 0, 2.0 -> 2, 0.5 -> 0, 4.5 -> 4; + 3
  EXPECT_EQ(d, (std::vector<uint8_t>{5, 7, 3, 5, 3, 7}));
}

TEST(Add, Float) {
  std::mt19937 rng(12);
  auto a = randFloats(rng, 333, -5, 5), b = randFloats(rng, 333, -5, 5);
  a[0] = kNaN;
  for (int relu = 0; relu < 2; ++relu) {
    qnt_rt_add_params p{};
    p.numel = 333, p.dtype = QNT_RT_F32, p.relu = relu;
    std::vector<float> d(333), fp = {1, 1, 1};
    void *slot = nullptr;
    qnt_rt_add(&slot, reinterpret_cast<const int64_t *>(&p), fp.data(),
               a.data(), b.data(), d.data());
    EXPECT_TRUE(std::isnan(d[0]));
    for (size_t i = 1; i < d.size(); ++i) {
      float want = a[i] + b[i];
      if (relu)
        want = std::max(want, 0.0f);
      ASSERT_EQ(d[i], want);
    }
  }
}

} // namespace
