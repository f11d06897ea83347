//===- stats-fuzzer.cpp - libFuzzer target for the statistics-file parser -===//
//
// Feeds arbitrary text to parseStatsFile (what --qnt-fold-calibration and
// --merge-stats read). Any input must give statistics or an llvm::Error. An
// accepted file must print and parse back (printStatsFile is what the
// runtime writes), and merging it with itself must not crash.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/Stats.h"

#include "llvm/Support/Error.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<qnt::StatsFile> file = qnt::parseStatsFile(text, "fuzz.json");
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  llvm::Expected<qnt::StatsFile> again =
      qnt::parseStatsFile(qnt::printStatsFile(*file), "printed.json");
  if (!again) {
    llvm::consumeError(again.takeError());
    abort();
  }
  qnt::StatsFile runs[] = {*file, *file};
  llvm::Expected<qnt::StatsFile> merged = qnt::mergeStats(runs);
  if (!merged)
    llvm::consumeError(merged.takeError());
  return 0;
}
