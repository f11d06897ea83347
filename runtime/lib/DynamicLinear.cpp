//===- DynamicLinear.cpp - qnt_rt_linear_dynamic --------------------------===//
//
// PyTorch's dynamic quantization of a linear layer: the input's quantization
// parameters are chosen per call from its range, the product is exact in
// int32, the result is float. Weights are widened once, on the first call.
//
//===----------------------------------------------------------------------===//

#include "Kernel.h"

#include <algorithm>
#include <cmath>

using namespace qnt::rt;

namespace {

struct DynamicParams {
  float scale;
  int32_t zeroPoint;
};

/// PyTorch 1.13's quant_utils::ChooseQuantizationParams (no sparsity
/// preservation, no power-of-two scale), with [qmin, qmax] already reduced
/// when reduce_range applies.
DynamicParams chooseQuantizationParams(float min, float max, int32_t qmin,
                                       int32_t qmax) {
  constexpr float kSmallScaleThreshold = 6.1e-5f;
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  double scale = (static_cast<double>(max) - min) / (qmax - qmin);
  if (float(scale) == 0.0f || std::isinf(1.0f / float(scale)))
    scale = 0.1;
  if (scale < kSmallScaleThreshold) {
    float originalScale = scale;
    scale = kSmallScaleThreshold;
    if (min == 0.0f) {
      max = kSmallScaleThreshold * (qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScaleThreshold * (qmax - qmin);
    } else {
      float amplifier = kSmallScaleThreshold / originalScale;
      min *= amplifier;
      max *= amplifier;
    }
  }
  double fromMin = qmin - min / scale;
  double fromMax = qmax - max / scale;
  double fromMinError = std::abs(qmin) - std::abs(min / scale);
  double fromMaxError = std::abs(qmax) - std::abs(max / scale);
  double initial = fromMinError < fromMaxError ? fromMin : fromMax;
  int32_t zeroPoint = initial < qmin   ? qmin
                      : initial > qmax ? qmax
                                       : int32_t(std::nearbyint(initial));
  return {float(scale), zeroPoint};
}

class DynamicLinear {
public:
  DynamicLinear(const qnt_rt_linear_params &p, const CommonSpec &s,
                const int8_t *weight, const float *bias)
      : p_(p), s_(s), weight_(weight, weight + p.n * p.k) {
    if (bias)
      bias_.assign(bias, bias + p.n);
  }

  void run(const float *src, float *dst) const {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < p_.m * p_.k; ++i) {
      lo = std::min(lo, src[i]);
      hi = std::max(hi, src[i]);
    }
    if (!(lo <= hi)) // empty or all NaN: quantize around 0
      lo = hi = 0.0f;
    DynamicParams q = chooseQuantizationParams(lo, hi, int32_t(s_.srcQmin),
                                               int32_t(s_.srcQmax));
    const float inverse = 1.0f / q.scale;
    std::vector<int32_t> x(p_.k);
    for (int64_t m = 0; m < p_.m; ++m) {
      const float *row = src + m * p_.k;
      for (int64_t k = 0; k < p_.k; ++k) {
        float v = std::nearbyint(row[k] * inverse) + float(q.zeroPoint);
        v = std::clamp(v, float(s_.srcQmin), float(s_.srcQmax));
        x[k] = int32_t(v) - q.zeroPoint;
      }
#pragma omp parallel for if (p_.n * p_.k >= (1 << 16))
      for (int64_t n = 0; n < p_.n; ++n) {
        const int8_t *w = weight_.data() + n * p_.k;
        int64_t acc = 0;
        for (int64_t k = 0; k < p_.k; ++k)
          acc += x[k] * int32_t(w[k]);
        float v = float(acc) * (q.scale * s_.scale(n));
        if (!bias_.empty())
          v += bias_[n];
        if (s_.activation == QNT_RT_ACT_RELU)
          v = v < 0.0f ? 0.0f : v;
        dst[m * p_.n + n] = v;
      }
    }
  }

private:
  qnt_rt_linear_params p_;
  CommonSpec s_;
  std::vector<int8_t> weight_;
  std::vector<float> bias_;
};

} // namespace

extern "C" void qnt_rt_linear_dynamic(void **slot, const int64_t *params,
                                      const float *fparams, const void *src,
                                      const void *weight, const void *bias,
                                      void *dst) {
  auto *k = getOrCreate<DynamicLinear>(slot, [&] {
    const auto &p = *reinterpret_cast<const qnt_rt_linear_params *>(params);
    CommonSpec s = readCommon(p, fparams);
    if (p.m <= 0 || p.k <= 0 || p.n <= 0 || s.srcDtype != QNT_RT_F32 ||
        s.weiDtype != QNT_RT_S8 || s.dstDtype != QNT_RT_F32 ||
        (s.biasKind == QNT_RT_BIAS_F32) != (bias != nullptr) ||
        s.biasKind == QNT_RT_BIAS_S32 || s.srcQmin < 0 || s.srcQmax > 255 ||
        s.srcQmin >= s.srcQmax ||
        (s.scales.size() != 1 && int64_t(s.scales.size()) != p.n))
      fatal("linear_dynamic: invalid params");
    return new DynamicLinear(p, s, static_cast<const int8_t *>(weight),
                             static_cast<const float *>(bias));
  });
  k->run(static_cast<const float *>(src), static_cast<float *>(dst));
}
