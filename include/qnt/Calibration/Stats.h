//===- Stats.h - calibration statistics files -----------------*- C++ -*-===//
//
// Reads the JSON file `quant-run --calibrate` writes (docs/calibration.md).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_CALIBRATION_STATS_H
#define QNT_CALIBRATION_STATS_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <vector>

namespace qnt {

struct ObserverStats {
  std::string kind;       ///< "minmax" or "per_channel_minmax".
  std::vector<float> min; ///< One value, or one per channel; empty when
                          ///< the observer saw no finite value.
  std::vector<float> max;
  int64_t count = 0;     ///< Finite values seen.
  int64_t nonfinite = 0; ///< NaN / Inf values seen (never in min/max).
};

struct StatsFile {
  int64_t numSamples = 0;
  llvm::StringMap<ObserverStats> observers;
};

/// Parses a statistics file; every structural problem is an error that
/// names the file and the observer.
llvm::Expected<StatsFile> readStatsFile(llvm::StringRef path);

} // namespace qnt

#endif // QNT_CALIBRATION_STATS_H
