//===- DynamicConvTest.cpp - qnt_rt_conv2d_dynamic tests ------------------===//
//
// Every case against an independent scalar model of Runtime.h's formula,
// bit for bit: oneDNN's int8 conv and the runtime's loop (the suite also
// runs with ONEDNN_MAX_CPU_ISA=AVX2 and QNT_RT_FORCE_REFERENCE=1).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace qnt_test;

namespace {

enum class Input { Random, GridTies, Positive, Negative, Extreme };
enum class Act { None, Relu, Clamp };

struct ConvCase {
  const char *name;
  int64_t n, h, w, c, oc, kh, kw, stride, pad, dilation, groups;
  bool perChannel, bias;
  Act act;
  Input input;
  bool onnxRuntime = true; // DynamicQuantizeLinear's parameters
  int64_t wmin = -127, wmax = 127;
};

/// DynamicQuantizeLinear (u8, f32) or PyTorch's ChooseQuantizationParams
/// (u8 [0, 255], double) for [min(lo, 0), max(hi, 0)].
void chooseParams(const ConvCase &c, float lo, float hi, float &scale,
                  int32_t &zp) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (c.onnxRuntime) {
    scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    zp = int32_t(
        std::nearbyint(std::min(255.0f, std::max(0.0f, 0.0f - lo / scale))));
    return;
  }
  double s = (double(hi) - lo) / 255.0;
  if (float(s) == 0.0f)
    s = 0.1;
  double fromMin = 0 - lo / s, fromMax = 255 - hi / s;
  double initial =
      std::abs(0.0) - std::abs(lo / s) < std::abs(255.0) - std::abs(hi / s)
          ? fromMin
          : fromMax;
  zp = initial < 0 ? 0 : initial > 255 ? 255 : int32_t(std::nearbyint(initial));
  scale = float(s);
}

int64_t outSize(int64_t in, int64_t k, int64_t stride, int64_t pad,
                int64_t dilation) {
  return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
}

std::vector<float> model(const ConvCase &c, const std::vector<float> &x,
                         const std::vector<int64_t> &w,
                         const std::vector<float> &sw,
                         const std::vector<float> &bias, float lo6, float hi6) {
  float lo = INFINITY, hi = -INFINITY;
  for (float v : x) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  float scale;
  int32_t zp;
  chooseParams(c, lo, hi, scale, zp);
  std::vector<int64_t> q(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    float v =
        std::nearbyint(c.onnxRuntime ? x[i] / scale : x[i] * (1.0f / scale)) +
        float(zp);
    q[i] = clampI(int64_t(v), 0, 255);
  }
  const int64_t oh = outSize(c.h, c.kh, c.stride, c.pad, c.dilation);
  const int64_t ow = outSize(c.w, c.kw, c.stride, c.pad, c.dilation);
  const int64_t icg = c.c / c.groups, ocg = c.oc / c.groups;
  std::vector<float> y(c.n * oh * ow * c.oc);
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t o = 0; o < c.oc; ++o) {
          int64_t acc = 0, g = o / ocg;
          for (int64_t ky = 0; ky < c.kh; ++ky)
            for (int64_t kx = 0; kx < c.kw; ++kx)
              for (int64_t i = 0; i < icg; ++i) {
                int64_t iy = oy * c.stride - c.pad + ky * c.dilation;
                int64_t ix = ox * c.stride - c.pad + kx * c.dilation;
                // Padding is the zero point: 0 after the shift.
                int64_t xv =
                    iy < 0 || iy >= c.h || ix < 0 || ix >= c.w
                        ? zp
                        : q[((n * c.h + iy) * c.w + ix) * c.c + g * icg + i];
                acc += (xv - zp) * w[((o * c.kh + ky) * c.kw + kx) * icg + i];
              }
          float v = float(acc) * (scale * sw[c.perChannel ? o : 0]);
          if (c.bias)
            v += bias[o];
          if (c.act == Act::Relu && v < 0.0f)
            v = 0.0f;
          if (c.act == Act::Clamp)
            v = std::min(std::max(v, lo6), hi6);
          y[((n * oh + oy) * ow + ox) * c.oc + o] = v;
        }
  return y;
}

std::vector<float> makeInput(const ConvCase &c, std::mt19937 &rng, float gain) {
  std::normal_distribution<float> normal(0.0f, gain);
  std::vector<float> x(c.n * c.h * c.w * c.c);
  for (size_t i = 0; i < x.size(); ++i) {
    switch (c.input) {
    case Input::Random:
      x[i] = normal(rng);
      break;
    case Input::GridTies: // range [-1, 255 / 64 - 1]: S = 1/64, Z = 64, and
                          // every other value is a tie of x / S
      x[i] = i == 0   ? -1.0f
             : i == 1 ? 255.0f / 64 - 1.0f
                      : (float(int(i % 254) - 63) - 0.5f) / 64;
      break;
    case Input::Positive:
      x[i] = std::abs(normal(rng));
      break;
    case Input::Negative:
      x[i] = -std::abs(normal(rng));
      break;
    case Input::Extreme: // 0 and 255 only (with Z = 0): the largest u8 pairs
      x[i] = i % 3 == 0 ? 0.0f : gain;
      break;
    }
  }
  return x;
}

class DynamicConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(DynamicConv, MatchesModelBitForBit) {
  const ConvCase &c = GetParam();
  std::mt19937 rng(7);
  const int64_t icg = c.c / c.groups;
  auto w = randInts(rng, c.oc * c.kh * c.kw * icg, c.wmin, c.wmax);
  if (c.input == Input::Extreme)
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = i % 2 ? c.wmax : c.wmin;
  std::uniform_real_distribution<float> u(0.001f, 0.02f), b(-2.0f, 2.0f);
  std::vector<float> sw(c.perChannel ? c.oc : 1), bias(c.bias ? c.oc : 0);
  for (float &s : sw)
    s = u(rng);
  for (float &v : bias)
    v = b(rng);
  const float lo6 = -0.5f, hi6 = 6.0f;

  qnt_rt_conv2d_params p{};
  p.n = c.n, p.h = c.h, p.w = c.w, p.c = c.c;
  p.oc = c.oc, p.kh = c.kh, p.kw = c.kw;
  p.oh = outSize(c.h, c.kh, c.stride, c.pad, c.dilation);
  p.ow = outSize(c.w, c.kw, c.stride, c.pad, c.dilation);
  p.stride_h = p.stride_w = c.stride;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = c.pad;
  p.dilation_h = p.dilation_w = c.dilation;
  p.groups = c.groups;
  p.src_dtype = QNT_RT_F32, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_F32;
  p.bias_kind = c.bias ? QNT_RT_BIAS_F32 : QNT_RT_BIAS_NONE;
  p.activation = c.act == Act::Relu    ? QNT_RT_ACT_RELU
                 : c.act == Act::Clamp ? QNT_RT_ACT_CLAMP
                                       : QNT_RT_ACT_NONE;
  p.src_qmin = 0, p.src_qmax = 255;
  p.num_scales = int64_t(sw.size());
  p.dynamic_qparams =
      c.onnxRuntime ? QNT_RT_DYNAMIC_ONNXRUNTIME : QNT_RT_DYNAMIC_PYTORCH;
  std::vector<float> fp = {lo6, hi6};
  fp.insert(fp.end(), sw.begin(), sw.end());
  auto wb = pack(w, QNT_RT_S8);

  void *slot = nullptr;
  // Two calls with other ranges: the parameters are chosen per call.
  for (float gain : {1.0f, 5.0f}) {
    auto x = makeInput(c, rng, gain);
    auto want = model(c, x, w, sw, bias, lo6, hi6);
    std::vector<float> got(want.size(), -1.0f);
    qnt_rt_conv2d_dynamic(&slot, reinterpret_cast<const int64_t *>(&p),
                          fp.data(), x.data(), wb.data(),
                          c.bias ? bias.data() : nullptr, got.data());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0)
          << "element " << i << ": got " << got[i] << ", want " << want[i];
  }
}

const ConvCase kCases[] = {
    {"ort_3x3_pad", 1, 9, 9, 8, 16, 3, 3, 1, 1, 1, 1, false, true, Act::None,
     Input::Random},
    {"ort_per_channel_stride2_relu", 2, 12, 10, 16, 24, 3, 3, 2, 1, 1, 1, true,
     true, Act::Relu, Input::Random},
    {"ort_1x1_no_bias", 1, 7, 7, 32, 8, 1, 1, 1, 0, 1, 1, false, false,
     Act::None, Input::Random},
    {"ort_grouped_dilated_clamp", 1, 11, 11, 12, 12, 3, 3, 1, 2, 2, 3, true,
     true, Act::Clamp, Input::Random},
    {"ort_stem_3ch", 1, 16, 16, 3, 8, 5, 5, 2, 2, 1, 1, true, true, Act::None,
     Input::Random},
    {"ort_ties", 1, 8, 8, 16, 8, 3, 3, 1, 1, 1, 1, false, true, Act::None,
     Input::GridTies},
    {"ort_positive_only", 1, 6, 6, 8, 8, 3, 3, 1, 1, 1, 1, false, true,
     Act::None, Input::Positive},
    {"ort_negative_only", 1, 6, 6, 8, 8, 3, 3, 1, 1, 1, 1, true, true,
     Act::None, Input::Negative},
    // u8 255 next to s8 -128 / 127: vpmaddubsw would saturate (AVX2).
    {"ort_extreme_pairs", 1, 5, 5, 64, 16, 3, 3, 1, 1, 1, 1, false, false,
     Act::None, Input::Extreme, true, -128, 127},
    {"pytorch_params", 1, 9, 9, 8, 16, 3, 3, 1, 1, 1, 1, true, true, Act::Relu,
     Input::Random, false},
};

INSTANTIATE_TEST_SUITE_P(Cases, DynamicConv, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ConvCase> &info) {
                           return std::string(info.param.name);
                         });

} // namespace
