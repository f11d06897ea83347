//===- DynamicQuantize.cpp - Per-call quantization of float inputs --------===//
//
// The range scan and the quantization are vectorized loops (split across the
// kernels' threads when long).
//
//===----------------------------------------------------------------------===//

#include "DynamicQuantize.h"

#include <algorithm>
#include <cmath>

using namespace qnt::rt;

DynamicParams qnt::rt::chooseQuantizationParams(float min, float max,
                                                int32_t qmin, int32_t qmax) {
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

DynamicParams qnt::rt::chooseOnnxRuntimeParams(float min, float max) {
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  float scale = max == min ? 1.0f : (max - min) / 255.0f;
  float initial = std::clamp(0.0f - min / scale, 0.0f, 255.0f);
  return {scale, int32_t(std::nearbyint(initial))};
}

namespace {

/// Per-call loops at least this long run on the kernels' threads.
constexpr int64_t kParallelElements = 1 << 16;

/// [lo, hi] of `x[0, n)`, NaNs skipped.
QNT_RT_VECTOR_CLONES void range(const float *x, int64_t n, float &lo,
                                float &hi) {
  float l = INFINITY, h = -INFINITY;
#pragma omp parallel for simd reduction(min                                    \
                                        : l)                                   \
    reduction(max                                                              \
              : h) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  lo = l;
  hi = h;
}

/// q[i] = clamp(nearbyint(x[i] * (1 / scale)) + zp, qmin, qmax), PyTorch's
/// quantize of the activation, or with `divide` ONNX's x[i] / scale; a NaN
/// becomes qmin (what PyTorch's float to int conversion gives on x86 for
/// the usual qmin 0, and what MLAS's clamp gives).
QNT_RT_VECTOR_CLONES void quantize(const float *x, int64_t n, float scale,
                                   bool divide, float zp, float qmin,
                                   float qmax, uint8_t *q) {
  const float inverse = 1.0f / scale;
#pragma omp parallel for simd if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(divide ? x[i] / scale : x[i] * inverse) + zp;
    v = v >= qmin ? v : qmin;
    v = v <= qmax ? v : qmax;
    q[i] = static_cast<uint8_t>(v);
  }
}

} // namespace

DynamicParams qnt::rt::quantizeDynamic(const float *x, int64_t n, int64_t kind,
                                       int32_t qmin, int32_t qmax, uint8_t *q) {
  float lo, hi;
  range(x, n, lo, hi);
  if (!(lo <= hi)) // empty or all NaN: quantize around 0
    lo = hi = 0.0f;
  bool onnxRuntime = kind == QNT_RT_DYNAMIC_ONNXRUNTIME;
  DynamicParams p = onnxRuntime ? chooseOnnxRuntimeParams(lo, hi)
                                : chooseQuantizationParams(lo, hi, qmin, qmax);
  quantize(x, n, p.scale, onnxRuntime, float(p.zeroPoint), float(qmin),
           float(qmax), q);
  return p;
}

QNT_RT_VECTOR_CLONES int32_t qnt::rt::dotU8S8(const uint8_t *x, const int8_t *w,
                                              int64_t k) {
  int32_t acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < k; ++i)
    acc += int32_t(x[i]) * int32_t(w[i]);
  return acc;
}
