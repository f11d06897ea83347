//===- QParams.h - quantization parameters from observed ranges -*- C++ -*-===//

#ifndef QNT_CALIBRATION_QPARAMS_H
#define QNT_CALIBRATION_QPARAMS_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <limits>

namespace qnt {

struct QParams {
  float scale;
  int64_t zeroPoint;
};

/// The integer target of an observer: its range, scheme and signedness.
struct QTarget {
  int64_t quantMin;
  int64_t quantMax;
  bool symmetric;
  bool isSigned;
  /// The smallest scale (PyTorch's observer `eps`, default
  /// torch.finfo(torch.float32).eps = 2^-23).
  float eps = std::numeric_limits<float>::epsilon();
};

/// Scale and zero point for the range [minVal, maxVal], computed exactly as
/// PyTorch 1.13's `_ObserverBase._calculate_qparams` does: in float32, the
/// range widened to include 0, eps = 2^-23 as the smallest scale, symmetric
/// scale max(|min|, |max|) / ((qmax - qmin) / 2), affine zero point
/// qmin - round_half_even(min / scale) clamped to [qmin, qmax].
QParams computeQParams(float minVal, float maxVal, const QTarget &target);

/// computeQParams with its result checked: an error (naming the range) if
/// the range is not finite, its scale is not a positive finite float32 (a
/// range wider than float32 represents, e.g. [-3.4e38, 3.4e38]) or the zero
/// point falls outside [quantMin, quantMax].
llvm::Expected<QParams> computeCheckedQParams(float minVal, float maxVal,
                                              const QTarget &target);

/// round(x / scale) with ties to even, as torch.round: the rounding used
/// throughout (quantize, bias, zero points).
float roundHalfToEven(float x);

} // namespace qnt

#endif // QNT_CALIBRATION_QPARAMS_H
