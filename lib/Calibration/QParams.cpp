//===- QParams.cpp - PyTorch-exact quantization parameters ----------------===//

#include "qnt/Calibration/QParams.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

using namespace qnt;

float qnt::roundHalfToEven(float x) {
  // std::nearbyint rounds with the current mode, which is to-nearest-even
  // unless someone changed it; say so explicitly.
  int previous = std::fegetround();
  std::fesetround(FE_TONEAREST);
  float r = std::nearbyint(x);
  std::fesetround(previous);
  return r;
}

QParams qnt::computeQParams(float minVal, float maxVal, const QTarget &target) {
  const float eps = target.eps;
  float minNeg = std::min(minVal, 0.0f);
  float maxPos = std::max(maxVal, 0.0f);
  float qmin = static_cast<float>(target.quantMin);
  float qmax = static_cast<float>(target.quantMax);

  if (target.symmetric) {
    maxPos = std::max(-minNeg, maxPos);
    float scale = std::max(maxPos / ((qmax - qmin) / 2.0f), eps);
    int64_t zeroPoint = 0;
    if (!target.isSigned)
      zeroPoint = (target.quantMin == 0 && target.quantMax == 255)
                      ? 128
                      : (target.quantMin + target.quantMax) / 2;
    return {scale, zeroPoint};
  }
  float scale = std::max((maxPos - minNeg) / (qmax - qmin), eps);
  // |minNeg / scale| <= qmax - qmin unless the scale overflowed (NaN or
  // Inf, which computeCheckedQParams rejects): never convert NaN to int.
  float shift = roundHalfToEven(minNeg / scale);
  if (!std::isfinite(shift))
    shift = 0.0f;
  int64_t zeroPoint = target.quantMin - static_cast<int64_t>(shift);
  zeroPoint = std::clamp(zeroPoint, target.quantMin, target.quantMax);
  return {scale, zeroPoint};
}

llvm::Expected<QParams> qnt::computeCheckedQParams(float minVal, float maxVal,
                                                   const QTarget &target) {
  auto range = [&] {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "the range [%.9g, %.9g]", double(minVal),
                  double(maxVal));
    return std::string(buf);
  };
  auto fail = [](const std::string &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
  if (!std::isfinite(minVal) || !std::isfinite(maxVal) || !(minVal <= maxVal))
    return fail(range() + " is not a finite interval");
  QParams params = computeQParams(minVal, maxVal, target);
  if (!std::isfinite(params.scale) || !(params.scale > 0.0f))
    return fail(range() + " is too wide to quantize: its scale overflows "
                          "float32");
  if (params.zeroPoint < target.quantMin || params.zeroPoint > target.quantMax)
    return fail("the zero point " + std::to_string(params.zeroPoint) + " of " +
                range() + " is outside [" + std::to_string(target.quantMin) +
                ", " + std::to_string(target.quantMax) + "]");
  return params;
}
