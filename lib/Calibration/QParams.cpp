//===- QParams.cpp - PyTorch-exact quantization parameters ----------------===//

#include "qnt/Calibration/QParams.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>

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
  int64_t zeroPoint =
      target.quantMin - static_cast<int64_t>(roundHalfToEven(minNeg / scale));
  zeroPoint = std::clamp(zeroPoint, target.quantMin, target.quantMax);
  return {scale, zeroPoint};
}
