//===- DynamicLinearTest.cpp - qnt_rt_linear_dynamic tests ----------------===//
//
// Every case against an independent scalar model of Runtime.h's formula,
// bit for bit: oneDNN's int8 matmul and the runtime's loop (the suite also
// runs with ONEDNN_MAX_CPU_ISA=AVX2 and QNT_RT_FORCE_REFERENCE=1).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <thread>

using namespace qnt_test;

namespace {

enum class Input { Random, Ties, GridTies, WithNaN, Zeros, Positive };

struct DynCase {
  const char *name;
  int64_t m, k, n, qmax;
  bool perChannel, bias, relu;
  Input input;
  bool onnxRuntime = false; // DynamicQuantizeLinear's parameters
};

/// PyTorch 1.13's ChooseQuantizationParams for [min(lo, 0), max(hi, 0)].
void chooseParams(float lo, float hi, int32_t qmin, int32_t qmax, float &scale,
                  int32_t &zp) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  double s = (double(hi) - lo) / (qmax - qmin);
  if (float(s) == 0.0f || std::isinf(1.0f / float(s)))
    s = 0.1;
  if (s < 6.1e-5f) {
    float original = float(s);
    s = 6.1e-5f;
    if (lo == 0.0f)
      hi = 6.1e-5f * (qmax - qmin);
    else if (hi == 0.0f)
      lo = -6.1e-5f * (qmax - qmin);
    else {
      lo *= 6.1e-5f / original;
      hi *= 6.1e-5f / original;
    }
  }
  double fromMin = qmin - lo / s, fromMax = qmax - hi / s;
  double initial =
      std::abs(qmin) - std::abs(lo / s) < std::abs(qmax) - std::abs(hi / s)
          ? fromMin
          : fromMax;
  zp = initial < qmin   ? qmin
       : initial > qmax ? qmax
                        : int32_t(std::nearbyint(initial));
  scale = float(s);
}

/// ONNX's DynamicQuantizeLinear: S = (max - min) / 255 (1 when max == min),
/// Z = rint(clamp(-min / S, 0, 255)), in f32, for [min(lo, 0), max(hi, 0)].
void chooseOnnxRuntimeParams(float lo, float hi, float &scale, int32_t &zp) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  zp = int32_t(std::nearbyint(std::min(255.0f, std::max(0.0f, -lo / scale))));
}

std::vector<float> model(const DynCase &c, const std::vector<float> &x,
                         const std::vector<int64_t> &w,
                         const std::vector<float> &sw,
                         const std::vector<float> &bias) {
  float lo = INFINITY, hi = -INFINITY;
  for (float v : x)
    if (!std::isnan(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!(lo <= hi))
    lo = hi = 0.0f;
  float scale;
  int32_t zp;
  if (c.onnxRuntime)
    chooseOnnxRuntimeParams(lo, hi, scale, zp);
  else
    chooseParams(lo, hi, 0, int32_t(c.qmax), scale, zp);
  std::vector<int64_t> q(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    float v =
        std::nearbyint(c.onnxRuntime ? x[i] / scale : x[i] * (1.0f / scale)) +
        float(zp);
    q[i] = std::isnan(v) ? 0 : clampI(int64_t(v), 0, c.qmax);
  }
  std::vector<float> y(c.m * c.n);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      int64_t acc = 0;
      for (int64_t t = 0; t < c.k; ++t)
        acc += (q[i * c.k + t] - zp) * w[j * c.k + t];
      float v = float(acc) * (scale * sw[c.perChannel ? j : 0]);
      if (c.bias)
        v += bias[j];
      if (c.relu && v < 0.0f)
        v = 0.0f;
      y[i * c.n + j] = v;
    }
  return y;
}

std::vector<float> makeInput(const DynCase &c, std::mt19937 &rng, float gain) {
  std::normal_distribution<float> normal(0.0f, gain);
  std::vector<float> x(c.m * c.k);
  for (size_t i = 0; i < x.size(); ++i) {
    switch (c.input) {
    case Input::Random:
    case Input::WithNaN:
      x[i] = normal(rng);
      break;
    case Input::Ties: // on .5 steps of a power-of-two grid: rounding ties
      x[i] = (float(int(i % 41) - 20) + 0.5f) * 0.125f;
      break;
    case Input::GridTies: // range [-1, 255 / 64 - 1]: S = 1/64, Z = 64 exactly,
                          // and every other value is a tie of x / S
      x[i] = i == 0   ? -1.0f
             : i == 1 ? 255.0f / 64 - 1.0f
                      : (float(int(i % 254) - 63) - 0.5f) / 64;
      break;
    case Input::Zeros:
      x[i] = 0.0f;
      break;
    case Input::Positive:
      x[i] = std::fabs(normal(rng)) + 1.0f;
      break;
    }
  }
  if (c.input == Input::WithNaN)
    x[x.size() / 3] = NAN;
  return x;
}

class DynamicLinear : public ::testing::TestWithParam<DynCase> {};

TEST_P(DynamicLinear, MatchesModelBitForBit) {
  const DynCase &c = GetParam();
  std::mt19937 rng(99);
  auto w = randInts(rng, c.n * c.k, -127, 127);
  std::uniform_real_distribution<float> u(0.001f, 0.02f), b(-2.0f, 2.0f);
  std::vector<float> sw(c.perChannel ? c.n : 1), bias(c.bias ? c.n : 0);
  for (float &s : sw)
    s = u(rng);
  for (float &v : bias)
    v = b(rng);

  qnt_rt_linear_params p{};
  p.m = c.m, p.k = c.k, p.n = c.n;
  p.src_dtype = QNT_RT_F32, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_F32;
  p.bias_kind = c.bias ? QNT_RT_BIAS_F32 : QNT_RT_BIAS_NONE;
  p.activation = c.relu ? QNT_RT_ACT_RELU : QNT_RT_ACT_NONE;
  p.src_qmin = 0, p.src_qmax = c.qmax;
  p.num_scales = int64_t(sw.size());
  p.dynamic_qparams =
      c.onnxRuntime ? QNT_RT_DYNAMIC_ONNXRUNTIME : QNT_RT_DYNAMIC_PYTORCH;
  std::vector<float> fp = {0.0f, 0.0f};
  fp.insert(fp.end(), sw.begin(), sw.end());
  auto wb = pack(w, QNT_RT_S8);

  void *slot = nullptr;
  // Two calls with other ranges: the parameters are chosen per call.
  for (float gain : {1.0f, 7.0f}) {
    auto x = makeInput(c, rng, gain);
    auto want = model(c, x, w, sw, bias);
    std::vector<float> got(c.m * c.n, -1.0f);
    qnt_rt_linear_dynamic(&slot, reinterpret_cast<const int64_t *>(&p),
                          fp.data(), x.data(), wb.data(),
                          c.bias ? bias.data() : nullptr, got.data());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0)
          << "element " << i << ": got " << got[i] << ", want " << want[i];
  }
}

const DynCase kCases[] = {
    {"mlp_u8", 16, 64, 256, 255, false, true, false, Input::Random},
    {"reduce_range_relu", 16, 256, 64, 127, false, true, true, Input::Random},
    {"per_channel_no_bias", 8, 96, 40, 127, true, false, false, Input::Random},
    {"single_row", 1, 32, 100, 255, false, true, false, Input::Random},
    {"bert_ff", 128, 768, 64, 127, true, true, false, Input::Random},
    {"ties", 4, 82, 16, 255, false, true, false, Input::Ties},
    {"nan_is_qmin", 3, 40, 8, 255, false, true, false, Input::WithNaN},
    {"all_zero", 2, 16, 8, 255, false, true, true, Input::Zeros},
    {"positive_only", 5, 24, 12, 127, false, false, false, Input::Positive},
    {"ort_mlp", 16, 64, 256, 255, false, true, false, Input::Random, true},
    {"ort_per_channel_relu", 8, 96, 40, 255, true, true, true, Input::Random,
     true},
    {"ort_ties", 4, 82, 16, 255, false, true, false, Input::GridTies, true},
    {"ort_nan_is_qmin", 3, 40, 8, 255, false, true, false, Input::WithNaN,
     true},
    {"ort_all_zero", 2, 16, 8, 255, false, true, true, Input::Zeros, true},
    {"ort_positive_only", 5, 24, 12, 255, false, false, false, Input::Positive,
     true},
};

INSTANTIATE_TEST_SUITE_P(Cases, DynamicLinear, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<DynCase> &info) {
                           return std::string(info.param.name);
                         });

TEST(DynamicLinearThreads, ConcurrentCallsMatchSequential) {
  const int64_t m = 32, k = 512, n = 128;
  std::mt19937 rng(5);
  auto w = pack(randInts(rng, n * k, -127, 127), QNT_RT_S8);
  qnt_rt_linear_params p{};
  p.m = m, p.k = k, p.n = n;
  p.src_dtype = QNT_RT_F32, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_F32;
  p.bias_kind = QNT_RT_BIAS_NONE, p.activation = QNT_RT_ACT_NONE;
  p.src_qmin = 0, p.src_qmax = 127, p.num_scales = 1;
  std::vector<float> fp = {0.0f, 0.0f, 0.01f};
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> inputs(8, std::vector<float>(m * k));
  for (size_t i = 0; i < inputs.size(); ++i)
    for (float &v : inputs[i])
      v = normal(rng) * float(i + 1);
  void *slot = nullptr;
  auto run = [&](size_t i) {
    std::vector<float> out(m * n);
    qnt_rt_linear_dynamic(&slot, reinterpret_cast<const int64_t *>(&p),
                          fp.data(), inputs[i].data(), w.data(), nullptr,
                          out.data());
    return out;
  };
  std::vector<std::vector<float>> sequential, concurrent(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    sequential.push_back(run(i));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t i = t; i < inputs.size(); i += 2)
          concurrent[i] = run(i);
    });
  for (auto &t : threads)
    t.join();
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_EQ(concurrent[i], sequential[i]) << "input " << i;
}

} // namespace
