//===- CalibCheck.cpp - qnt-calib-check, a test driver --------------------===//
//
// Used by test/python/test_observers.py to run lib/Calibration on statistics
// files the runtime wrote (not installed; not a user tool).
//
//   qnt-calib-check qparams STATS METHOD QMIN QMAX SCHEME [PERCENTILE]
//     METHOD: minmax | histogram | percentile | entropy, or auto: histogram
//     for histogram statistics, minmax for the others
//     SCHEME: affine | symmetric (signed iff QMIN < 0)
//     Prints one JSON object: per observer id either
//       {"ranges": [[lo_bits, hi_bits], ...], "scales": [bits, ...],
//        "zero_points": [...]}  (float bits as unsigned integers)
//     or {"error": "..."}.
//   qnt-calib-check merge OUT IN...
//     mergeStats(IN...) written to OUT with writeStatsFile.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/Range.h"
#include "qnt/Calibration/Stats.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>

using namespace qnt;

static uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

static int usage() {
  llvm::errs() << "usage: qnt-calib-check qparams STATS METHOD QMIN QMAX "
                  "SCHEME [PERCENTILE]\n"
                  "       qnt-calib-check merge OUT IN...\n";
  return 2;
}

static int qparams(int argc, char **argv) {
  if (argc < 7 || argc > 8)
    return usage();
  RangeOptions options;
  llvm::StringRef method = argv[3];
  const bool autoMethod = method == "auto";
  if (method == "minmax" || autoMethod)
    options.method = RangeMethod::MinMax;
  else if (method == "histogram")
    options.method = RangeMethod::HistogramL2;
  else if (method == "percentile")
    options.method = RangeMethod::Percentile;
  else if (method == "entropy")
    options.method = RangeMethod::Entropy;
  else
    return usage();
  int64_t qmin, qmax;
  if (!llvm::to_integer(argv[4], qmin) || !llvm::to_integer(argv[5], qmax))
    return usage();
  llvm::StringRef scheme = argv[6];
  if (scheme != "affine" && scheme != "symmetric")
    return usage();
  options.target = QTarget{qmin, qmax, scheme == "symmetric", qmin < 0};
  if (argc == 8)
    options.percentile = std::strtod(argv[7], nullptr);

  llvm::Expected<StatsFile> file = readStatsFile(argv[2]);
  if (!file) {
    llvm::errs() << llvm::toString(file.takeError()) << "\n";
    return 1;
  }
  llvm::json::Object out;
  for (const auto &entry : file->observers) {
    const ObserverStats &stats = entry.getValue();
    if (autoMethod)
      options.method =
          stats.isHistogram() ? RangeMethod::HistogramL2 : RangeMethod::MinMax;
    auto ranges = computeCalibratedRanges(stats, options);
    if (!ranges) {
      out[entry.getKey()] =
          llvm::json::Object{{"error", llvm::toString(ranges.takeError())}};
      continue;
    }
    llvm::json::Array rangeBits, scales, zeroPoints;
    for (auto [lo, hi] : *ranges) {
      rangeBits.push_back(llvm::json::Array{bits(lo), bits(hi)});
      QParams p = computeQParams(lo, hi, options.target);
      scales.push_back(bits(p.scale));
      zeroPoints.push_back(p.zeroPoint);
    }
    out[entry.getKey()] =
        llvm::json::Object{{"ranges", std::move(rangeBits)},
                           {"scales", std::move(scales)},
                           {"zero_points", std::move(zeroPoints)}};
  }
  llvm::outs() << llvm::json::Value(std::move(out)) << "\n";
  return 0;
}

static int merge(int argc, char **argv) {
  if (argc < 4)
    return usage();
  llvm::SmallVector<StatsFile> runs;
  for (int i = 3; i < argc; ++i) {
    llvm::Expected<StatsFile> file = readStatsFile(argv[i]);
    if (!file) {
      llvm::errs() << llvm::toString(file.takeError()) << "\n";
      return 1;
    }
    runs.push_back(std::move(*file));
  }
  llvm::Expected<StatsFile> merged = mergeStats(runs);
  if (!merged) {
    llvm::errs() << llvm::toString(merged.takeError()) << "\n";
    return 1;
  }
  if (llvm::Error e = writeStatsFile(*merged, argv[2])) {
    llvm::errs() << llvm::toString(std::move(e)) << "\n";
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  if (!std::strcmp(argv[1], "qparams"))
    return qparams(argc, argv);
  if (!std::strcmp(argv[1], "merge"))
    return merge(argc, argv);
  return usage();
}
