//===- Stats.h - calibration statistics files -----------------*- C++ -*-===//
//
// Reads, merges and writes the JSON file `quant-run --calibrate` writes
// (format in docs/calibration.md).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_CALIBRATION_STATS_H
#define QNT_CALIBRATION_STATS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace qnt {

/// Statistics kinds as written in the file ("kind").
namespace stats_kind {
inline constexpr const char *kMinMax = "minmax";
inline constexpr const char *kPerChannelMinMax = "per_channel_minmax";
inline constexpr const char *kMovingAverageMinMax = "moving_average_minmax";
inline constexpr const char *kMovingAveragePerChannelMinMax =
    "moving_average_per_channel_minmax";
/// HistogramObserver's histogram; the `histogram`, `percentile` and
/// `entropy` observers all record this.
inline constexpr const char *kHistogram = "histogram";
} // namespace stats_kind

/// Limits of what a statistics file may hold (checked before parsing):
/// real files nest 4 levels deep and hold a few histograms of thousands of
/// bins.
inline constexpr int64_t kMaxStatsFileBytes = int64_t(1) << 30;
inline constexpr int64_t kMaxStatsFileDepth = 32;
/// The histogram parameters the runtime accepts (also the qnt.observe
/// verifier's bounds).
inline constexpr int64_t kMaxHistogramBins = int64_t(1) << 24;
inline constexpr int64_t kMaxUpsampleRate = int64_t(1) << 24;

/// True for the kinds above.
bool isKnownStatsKind(llvm::StringRef kind);
/// True for the per-channel kinds (min / max are arrays).
bool isPerChannelStatsKind(llvm::StringRef kind);

struct ObserverStats {
  std::string kind;       ///< One of stats_kind.
  std::vector<float> min; ///< One value, or one per channel; empty when
                          ///< the observer saw no finite value. A channel
                          ///< without finite values has +inf / -inf.
  std::vector<float> max;
  int64_t count = 0;     ///< Finite values seen.
  int64_t nonfinite = 0; ///< NaN / Inf values seen (never in min/max).
  int64_t calls = 0;     ///< Times the observer ran.
  /// Moving averages: the averaging constant (float32, as the runtime
  /// used it), if the file records it.
  std::optional<float> averagingConstant;
  /// "histogram": bin count, upsample rate and the accumulated float32
  /// histogram (`bins` entries) over [min[0], max[0]] (HistogramObserver's
  /// histogram, min_val, max_val).
  int64_t bins = 0;
  int64_t upsampleRate = 0;
  std::vector<float> histogram;

  bool isHistogram() const { return kind == stats_kind::kHistogram; }
  /// Number of channels: min.size() (0 when no finite value was seen).
  size_t numChannels() const { return min.size(); }
};

struct StatsFile {
  int64_t numSamples = 0;
  llvm::StringMap<ObserverStats> observers;
};

/// Parses a statistics file; every structural problem is an error that
/// names the file and the observer. Beyond the structure, the values are
/// checked: finite min <= max, non-negative counts, 'bins' (at most
/// kMaxHistogramBins) histogram entries, finite and non-negative (up to a
/// rounding residue of 2^-20 of the total).
llvm::Expected<StatsFile> readStatsFile(llvm::StringRef path);

/// Parses statistics from a JSON string; `name` stands for the file in
/// error messages.
llvm::Expected<StatsFile> parseStatsFile(llvm::StringRef json,
                                         llvm::StringRef name);

/// The file's JSON text, exactly as the runtime prints it (observers sorted
/// by id, floats with 9 significant digits, null for non-finite bounds).
std::string printStatsFile(const StatsFile &file);

/// Writes `file` to `path` atomically (a temporary file in the same
/// directory renamed into place): `path` is either untouched or complete.
llvm::Error writeStatsFile(const StatsFile &file, llvm::StringRef path);

/// Merges the statistics of several runs (in order) into one
/// (docs/calibration.md, "Merging statistics"): num_samples, count, calls
/// and nonfinite add; an observer present in some runs only is taken from
/// those.
///  * minmax / per_channel_minmax: min of the mins, max of the maxes (per
///    channel); channel counts must agree.
///  * moving averages cannot be merged exactly: an error if more than one
///    run has finite statistics for the observer.
///  * histogram: bins and upsample_rate must agree; runs are folded left to
///    right as HistogramObserver.forward() folds a batch, the next run's
///    histogram standing in for the batch's histc (see mergeHistograms).
/// An observer whose kind differs between runs is an error.
llvm::Expected<StatsFile> mergeStats(llvm::ArrayRef<StatsFile> runs);

/// The "histogram" statistics of a single observer call on `data` (what the
/// runtime records for one batch: HistogramObserver.forward() once, NaN /
/// Inf counted and skipped). For observers of constants.
ObserverStats histogramStatsOf(llvm::ArrayRef<float> data, int64_t bins = 2048,
                               int64_t upsampleRate = 128);

/// Folds histogram statistics `next` into `acc` (both kind "histogram",
/// same bins and upsample_rate). Empty sides (no finite value) are
/// neutral. Otherwise, with lo / hi the min / max of both ranges:
///  * identical ranges: the histograms add bin by bin (float32);
///  * else if acc's range is not a single point: acc's histogram is mapped
///    exactly as HistogramObserver does with its own histogram
///    (_adjust_min_max(lo, hi) then _combine_histograms, bit for bit), the
///    range becoming [lo, adjusted hi];
///  * else (acc is a single point): the range is [lo, hi] and acc's mass
///    goes to the bin holding its point;
/// and `next` is resampled onto that grid assuming uniform density within
/// each of its bins (a single-point `next` goes to the bin holding it),
/// in double, then added in float32.
llvm::Error mergeHistograms(ObserverStats &acc, const ObserverStats &next);

} // namespace qnt

#endif // QNT_CALIBRATION_STATS_H
