//===- Range.h - calibrated ranges from observer statistics ----*- C++ -*-===//
//
// Turns the statistics of one observer (Stats.h) into the range [min, max]
// that computeQParams (QParams.h) quantizes, per observer kind:
//
//   minmax-like statistics   their min / max (per channel)
//   histogram, HistogramL2   PyTorch 1.13 HistogramObserver's
//                            _non_linear_param_search, bit for bit
//   histogram, Percentile    [p(100 - P), p(P)] of the histogram's CDF
//   histogram, Entropy       TensorRT-style KL-divergence threshold search
//
// docs/calibration.md defines the percentile and entropy searches exactly.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_CALIBRATION_RANGE_H
#define QNT_CALIBRATION_RANGE_H

#include "qnt/Calibration/QParams.h"
#include "qnt/Calibration/Stats.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <utility>
#include <vector>

namespace qnt {

enum class RangeMethod {
  /// The statistics' own min / max (for "histogram" statistics: the
  /// histogram's range).
  MinMax,
  /// HistogramObserver.calculate_qparams()'s range search (L2 norm).
  HistogramL2,
  /// Percentiles of the histogram.
  Percentile,
  /// KL-divergence (entropy) threshold search over the histogram.
  Entropy,
};

struct RangeOptions {
  RangeMethod method = RangeMethod::MinMax;
  /// The integer target. Entropy derives its level count from it
  /// (quantMax - quantMin + 1, halved for symmetric targets) and searches
  /// |x| for symmetric targets; computeCalibratedQParams uses it for the
  /// scale and zero point. MinMax, HistogramL2 and Percentile ranges do not
  /// depend on it.
  QTarget target{0, 255, /*symmetric=*/false, /*isSigned=*/false};
  /// HistogramL2: PyTorch's dst_nbins = 2 ** torch.iinfo(dtype).bits, 256
  /// for quint8 and qint8. In PyTorch 1.13 it ignores reduce_range and
  /// quant_min / quant_max (those only enter _calculate_qparams).
  int64_t dstBins = 256;
  /// Percentile: P in [50, 100]; the range is [p(100 - P), p(P)].
  double percentile = 99.99;
};

/// The calibrated range of every channel of `stats` (one entry for a
/// per-tensor observer). Errors: no finite value seen (a channel without
/// one), a histogram method on non-histogram statistics, an empty
/// histogram (Percentile / Entropy), invalid options.
llvm::Expected<std::vector<std::pair<float, float>>>
computeCalibratedRanges(const ObserverStats &stats,
                        const RangeOptions &options);

/// computeCalibratedRanges for a per-tensor observer (an error if `stats`
/// has more than one channel).
llvm::Expected<std::pair<float, float>>
computeCalibratedRange(const ObserverStats &stats, const RangeOptions &options);

/// computeQParams(range, options.target) for every channel: for
/// RangeMethod::HistogramL2 equal (float bits of the scale, zero point) to
/// HistogramObserver.calculate_qparams() of PyTorch 1.13, for MinMax to
/// the minmax / moving-average observers' calculate_qparams().
llvm::Expected<std::vector<QParams>>
computeCalibratedQParams(const ObserverStats &stats,
                         const RangeOptions &options);

//===----------------------------------------------------------------------===//
// The searches on a bare histogram (`hist` over [minVal, maxVal]), exposed
// for tests and tools.
//===----------------------------------------------------------------------===//

/// HistogramObserver._non_linear_param_search() of PyTorch 1.13 (with
/// _compute_quantization_error and _get_norm), bit for bit: float32 tensor
/// arithmetic as torch evaluates it (torch.sum's cascade summation,
/// torch.cumsum accumulating in double), Python floats as doubles.
/// Returns (new_min, new_max).
std::pair<float, float> histogramL2Range(llvm::ArrayRef<float> hist,
                                         float minVal, float maxVal,
                                         int64_t dstBins = 256);

/// [p(100 - percentile), p(percentile)] of the histogram (see
/// docs/calibration.md). Requires a non-empty histogram and percentile in
/// [50, 100].
llvm::Expected<std::pair<float, float>>
percentileRange(llvm::ArrayRef<float> hist, float minVal, float maxVal,
                double percentile);

/// TensorRT-style entropy calibration (see docs/calibration.md). Requires a
/// non-empty histogram.
llvm::Expected<std::pair<float, float>> entropyRange(llvm::ArrayRef<float> hist,
                                                     float minVal, float maxVal,
                                                     const QTarget &target);

/// torch.sum() of a contiguous float32 CPU tensor in PyTorch 1.13 (AVX2 /
/// default CPU capability: 8-lane vectors): its cascade summation order,
/// single-threaded (exact for fewer than 32768 elements, torch's grain
/// size; longer tensors may be split across threads by torch).
float torchSum(llvm::ArrayRef<float> values);

} // namespace qnt

#endif // QNT_CALIBRATION_RANGE_H
