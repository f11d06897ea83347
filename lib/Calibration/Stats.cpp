//===- Stats.cpp - calibration statistics files ---------------------------===//

#include "qnt/Calibration/Stats.h"

#include "qnt/Support/AtomicFile.h"

#include "Resample.h"
// The runtime's header-only replica of HistogramObserver's accumulation
// (merging folds histograms the way forward() does).
#include "../../runtime/lib/Histogram.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <limits>

using namespace qnt;
using llvm::createStringError;
using llvm::inconvertibleErrorCode;

static constexpr float kInf = std::numeric_limits<float>::infinity();
/// How far below zero a histogram count may be, relative to the total.
static constexpr double kNegativeResidue = 1.0 / (1 << 20);

bool qnt::isKnownStatsKind(llvm::StringRef kind) {
  return kind == stats_kind::kMinMax || kind == stats_kind::kPerChannelMinMax ||
         kind == stats_kind::kMovingAverageMinMax ||
         kind == stats_kind::kMovingAveragePerChannelMinMax ||
         kind == stats_kind::kHistogram;
}

bool qnt::isPerChannelStatsKind(llvm::StringRef kind) {
  return kind == stats_kind::kPerChannelMinMax ||
         kind == stats_kind::kMovingAveragePerChannelMinMax;
}

static bool isMovingAverageKind(llvm::StringRef kind) {
  return kind == stats_kind::kMovingAverageMinMax ||
         kind == stats_kind::kMovingAveragePerChannelMinMax;
}

static llvm::Error error(const llvm::Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

/// Where `text` nests arrays / objects deeper than kMaxStatsFileDepth: the
/// byte offset of the bracket that does, or nothing. (llvm::json::parse
/// recurses once per level and would overflow the stack.)
static std::optional<size_t> findExcessiveNesting(llvm::StringRef text) {
  int64_t depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxStatsFileDepth)
        return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

/// Reads a number, null or an array of numbers / nulls. A null element is
/// a channel without finite values: `nullValue` (+inf for min, -inf for
/// max).
static llvm::Expected<std::vector<float>>
readFloats(const llvm::json::Value *value, llvm::StringRef what,
           float nullValue) {
  std::vector<float> result;
  if (!value)
    return error("missing '" + what + "'");
  // null: the observer saw no finite value; the folding pass reports it.
  if (value->getAsNull())
    return result;
  if (std::optional<double> number = value->getAsNumber()) {
    result.push_back(static_cast<float>(*number));
    return result;
  }
  if (const llvm::json::Array *array = value->getAsArray()) {
    for (const llvm::json::Value &element : *array) {
      if (element.getAsNull()) {
        result.push_back(nullValue);
        continue;
      }
      std::optional<double> number = element.getAsNumber();
      if (!number)
        return error("'" + what + "' must hold numbers");
      result.push_back(static_cast<float>(*number));
    }
    if (!result.empty())
      return result;
  }
  return error("'" + what +
               "' must be null, a number or a non-empty array of numbers");
}

/// llvm::json::Value::getAsInteger without its undefined behaviour: it
/// converts a double up to double(INT64_MAX), which is 2^63, to int64_t.
static std::optional<int64_t> getInteger(const llvm::json::Value &value) {
  if (!value.getAsUINT64())
    if (std::optional<double> d = value.getAsNumber(); d && !(*d < 0x1p63))
      return std::nullopt;
  return value.getAsInteger();
}

/// An optional non-negative integer field (0 if absent).
static llvm::Expected<int64_t> readCount(const llvm::json::Object &object,
                                         llvm::StringRef key) {
  const llvm::json::Value *value = object.get(key);
  if (!value)
    return 0;
  std::optional<int64_t> n = getInteger(*value);
  if (!n || *n < 0)
    return error("'" + key + "' must be a non-negative integer");
  return *n;
}

static llvm::Expected<ObserverStats>
readObserver(const llvm::json::Object &object) {
  ObserverStats stats;
  std::optional<llvm::StringRef> kind = object.getString("kind");
  if (!kind)
    return error("missing 'kind'");
  if (!isKnownStatsKind(*kind))
    return error("unknown kind '" + *kind + "'");
  stats.kind = kind->str();
  auto min = readFloats(object.get("min"), "min", kInf);
  if (!min)
    return min.takeError();
  auto max = readFloats(object.get("max"), "max", -kInf);
  if (!max)
    return max.takeError();
  if (min->empty() != max->empty())
    return error("'min' and 'max' must both be null or both be numbers");
  if (min->size() != max->size())
    return error("'min' and 'max' differ in length");
  stats.min = std::move(*min);
  stats.max = std::move(*max);
  for (size_t c = 0; c < stats.min.size(); ++c) {
    const bool finite = std::isfinite(stats.min[c]);
    if (finite != bool(std::isfinite(stats.max[c])))
      return error("'min' and 'max' must both be null or both be numbers");
    if (finite && stats.min[c] > stats.max[c])
      return error("'min' exceeds 'max'");
  }
  for (const char *key : {"count", "calls", "nonfinite"}) {
    auto n = readCount(object, key);
    if (!n)
      return n.takeError();
    (llvm::StringRef(key) == "count"   ? stats.count
     : llvm::StringRef(key) == "calls" ? stats.calls
                                       : stats.nonfinite) = *n;
  }

  if (isPerChannelStatsKind(stats.kind)) {
    if (const llvm::json::Value *channels = object.get("channels")) {
      std::optional<int64_t> n = getInteger(*channels);
      // Not checked against a limit: it must match 'min', which is there.
      if (!n || *n <= 0 ||
          (!stats.min.empty() && size_t(*n) != stats.min.size()))
        return error("'channels' must be the length of 'min' and 'max'");
    }
  } else if (stats.min.size() > 1) {
    return error("'min' and 'max' of a per-tensor observer must be numbers");
  }

  if (isMovingAverageKind(stats.kind)) {
    if (const llvm::json::Value *c = object.get("averaging_constant")) {
      if (std::optional<double> number = c->getAsNumber())
        stats.averagingConstant = static_cast<float>(*number);
      else
        return error("'averaging_constant' must be a number");
    }
  }

  if (stats.isHistogram()) {
    std::optional<int64_t> bins =
        object.get("bins") ? getInteger(*object.get("bins")) : std::nullopt;
    if (!bins || *bins <= 0 || *bins > kMaxHistogramBins)
      return error("'bins' must be an integer in [1, " +
                   llvm::Twine(kMaxHistogramBins) + "]");
    stats.bins = *bins;
    stats.upsampleRate = 128;
    if (const llvm::json::Value *u = object.get("upsample_rate")) {
      std::optional<int64_t> rate = getInteger(*u);
      if (!rate || *rate <= 0 || *rate > kMaxUpsampleRate)
        return error("'upsample_rate' must be an integer in [1, " +
                     llvm::Twine(kMaxUpsampleRate) + "]");
      stats.upsampleRate = *rate;
    }
    const llvm::json::Array *hist = object.getArray("histogram");
    if (!hist)
      return error("missing 'histogram' (an array of 'bins' numbers)");
    if (int64_t(hist->size()) != stats.bins)
      return error("'histogram' has " + llvm::Twine(hist->size()) +
                   " entries, expected 'bins' = " + llvm::Twine(stats.bins));
    stats.histogram.reserve(hist->size());
    double mass = 0;
    for (const llvm::json::Value &element : *hist) {
      std::optional<double> number = element.getAsNumber();
      if (!number || !std::isfinite(static_cast<float>(*number)))
        return error("'histogram' must hold finite numbers");
      stats.histogram.push_back(static_cast<float>(*number));
      mass += std::max(0.0, *number);
    }
    // Counts are non-negative; merging rounds in float32 and can leave
    // residues of a few ulps of the total below zero, which are tolerated.
    for (size_t b = 0; b < stats.histogram.size(); ++b)
      if (stats.histogram[b] < 0 &&
          -double(stats.histogram[b]) > mass * kNegativeResidue)
        return error("'histogram' bin " + llvm::Twine(b) + " is negative (" +
                     llvm::formatv("{0:e}", stats.histogram[b]) + ")");
  }
  return stats;
}

llvm::Expected<StatsFile> qnt::parseStatsFile(llvm::StringRef text,
                                              llvm::StringRef name) {
  auto fail = [&](const llvm::Twine &message) {
    return error("statistics file '" + name + "': " + message);
  };
  if (text.size() > kMaxStatsFileBytes)
    return fail("it has " + llvm::Twine(text.size()) +
                " bytes, more than the limit of " +
                llvm::Twine(kMaxStatsFileBytes));
  if (std::optional<size_t> offset = findExcessiveNesting(text))
    return fail("arrays / objects nest deeper than " +
                llvm::Twine(kMaxStatsFileDepth) + " levels (at byte " +
                llvm::Twine(*offset) + ")");
  llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
  if (!json)
    return fail("invalid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *root = json->getAsObject();
  if (!root || root->getString("format") != "qnt-stats")
    return fail("not a qnt statistics file (expected \"format\": "
                "\"qnt-stats\")");
  auto getField = [&](llvm::StringRef key) -> std::optional<int64_t> {
    const llvm::json::Value *value = root->get(key);
    return value ? getInteger(*value) : std::nullopt;
  };
  if (getField("version") != 1)
    return fail("unsupported version (expected 1)");
  const llvm::json::Object *observers = root->getObject("observers");
  if (!observers)
    return fail("missing 'observers'");

  StatsFile file;
  file.numSamples = getField("num_samples").value_or(0);
  for (const auto &[id, value] : *observers) {
    const llvm::json::Object *object = value.getAsObject();
    if (!object)
      return fail("observer '" + id.str() + "' is not an object");
    llvm::Expected<ObserverStats> stats = readObserver(*object);
    if (!stats)
      return fail("observer '" + id.str() +
                  "': " + llvm::toString(stats.takeError()));
    file.observers[id.str()] = std::move(*stats);
  }
  return file;
}

llvm::Expected<StatsFile> qnt::readStatsFile(llvm::StringRef path) {
  uint64_t size = 0;
  if (!llvm::sys::fs::file_size(path, size) && size > kMaxStatsFileBytes)
    return error("statistics file '" + path + "': it has " + llvm::Twine(size) +
                 " bytes, more than the limit of " +
                 llvm::Twine(kMaxStatsFileBytes));
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return error("statistics file '" + path +
                 "': cannot read: " + buffer.getError().message());
  return parseStatsFile((*buffer)->getBuffer(), path);
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

static void printFloat(llvm::raw_ostream &os, float v) {
  if (!std::isfinite(v)) {
    os << "null";
    return;
  }
  // As the runtime: "-0.0", which JSON readers keep negative ("-0" would
  // read as the integer 0).
  if (v == 0.0f && std::signbit(v)) {
    os << "-0.0";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", double(v)); // round-trips a float
  os << buf;
}

static void printFloats(llvm::raw_ostream &os, const std::vector<float> &v) {
  os << '[';
  llvm::interleave(
      v, os, [&](float f) { printFloat(os, f); }, ", ");
  os << ']';
}

/// A JSON string literal, escaped as the runtime escapes it.
static void printString(llvm::raw_ostream &os, llvm::StringRef s) {
  os << '"';
  for (unsigned char ch : s) {
    switch (ch) {
    case '"':
      os << "\\\"";
      break;
    case '\\':
      os << "\\\\";
      break;
    case '\n':
      os << "\\n";
      break;
    case '\r':
      os << "\\r";
      break;
    case '\t':
      os << "\\t";
      break;
    default:
      if (ch < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
        os << buf;
      } else {
        os << static_cast<char>(ch);
      }
    }
  }
  os << '"';
}

static void printObserver(llvm::raw_ostream &os, const ObserverStats &s) {
  os << "{\"kind\": ";
  printString(os, s.kind);
  const bool perChannel = isPerChannelStatsKind(s.kind);
  auto printBound = [&](const std::vector<float> &v) {
    if (v.empty())
      os << "null";
    else if (perChannel)
      printFloats(os, v);
    else
      printFloat(os, v[0]);
  };
  if (s.isHistogram()) {
    os << ", \"bins\": " << s.bins << ", \"upsample_rate\": " << s.upsampleRate
       << ", \"min\": ";
    printBound(s.min);
    os << ", \"max\": ";
    printBound(s.max);
    os << ", \"histogram\": ";
    printFloats(os, s.histogram);
  } else {
    if (perChannel && !s.min.empty())
      os << ", \"channels\": " << s.min.size();
    if (isMovingAverageKind(s.kind) && s.averagingConstant) {
      os << ", \"averaging_constant\": ";
      printFloat(os, *s.averagingConstant);
    }
    os << ", \"min\": ";
    printBound(s.min);
    os << ", \"max\": ";
    printBound(s.max);
  }
  os << ", \"count\": " << s.count << ", \"calls\": " << s.calls
     << ", \"nonfinite\": " << s.nonfinite << "}";
}

std::string qnt::printStatsFile(const StatsFile &file) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "{\"format\": \"qnt-stats\", \"version\": 1, \"num_samples\": "
     << file.numSamples << ",\n \"observers\": {";
  llvm::SmallVector<llvm::StringRef> ids;
  for (const auto &entry : file.observers)
    ids.push_back(entry.getKey());
  llvm::sort(ids); // byte order, as the runtime's std::map
  bool first = true;
  for (llvm::StringRef id : ids) {
    os << (first ? "\n  " : ",\n  ");
    first = false;
    printString(os, id);
    os << ": ";
    printObserver(os, file.observers.find(id)->second);
  }
  os << (first ? "}}\n" : "\n }}\n");
  return text;
}

llvm::Error qnt::writeStatsFile(const StatsFile &file, llvm::StringRef path) {
  std::string text = printStatsFile(file);
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os << text;
    return llvm::Error::success();
  });
}

//===----------------------------------------------------------------------===//
// Merging
//===----------------------------------------------------------------------===//

/// True if some channel saw a finite value.
static bool hasData(const ObserverStats &s) {
  for (size_t c = 0; c < s.min.size(); ++c)
    if (std::isfinite(s.min[c]))
      return true;
  return false;
}

ObserverStats qnt::histogramStatsOf(llvm::ArrayRef<float> data, int64_t bins,
                                    int64_t upsampleRate) {
  ObserverStats s;
  s.kind = stats_kind::kHistogram;
  s.bins = bins;
  s.upsampleRate = upsampleRate;
  s.calls = 1;
  float lo = kInf, hi = -kInf;
  for (float v : data) {
    if (!std::isfinite(v)) {
      ++s.nonfinite;
      continue;
    }
    ++s.count;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  histogram::State state;
  state.hist.assign(size_t(bins), 0.0f);
  if (s.count)
    histogram::observe(state, bins, upsampleRate, data.data(),
                       int64_t(data.size()), lo, hi);
  s.histogram = std::move(state.hist);
  if (s.count) {
    s.min = {state.minVal};
    s.max = {state.maxVal};
  }
  return s;
}

llvm::Error qnt::mergeHistograms(ObserverStats &acc,
                                 const ObserverStats &next) {
  if (!acc.isHistogram() || !next.isHistogram())
    return error("not histogram statistics");
  if (acc.bins != next.bins || acc.upsampleRate != next.upsampleRate)
    return error("histograms differ in bins / upsample_rate (" +
                 llvm::Twine(acc.bins) + "/" + llvm::Twine(acc.upsampleRate) +
                 " vs " + llvm::Twine(next.bins) + "/" +
                 llvm::Twine(next.upsampleRate) + ")");
  if (acc.histogram.size() != size_t(acc.bins) ||
      next.histogram.size() != size_t(next.bins))
    return error("the histogram does not have 'bins' entries");
  if (!hasData(next))
    return llvm::Error::success();
  if (!hasData(acc)) {
    acc.min = next.min;
    acc.max = next.max;
    acc.histogram = next.histogram;
    return llvm::Error::success();
  }
  const int64_t bins = acc.bins, rate = acc.upsampleRate;
  const float aMin = acc.min[0], aMax = acc.max[0];
  const float nMin = next.min[0], nMax = next.max[0];
  if (aMin == nMin && aMax == nMax) {
    // forward()'s `combined_histogram += self.histogram`
    for (int64_t b = 0; b < bins; ++b)
      acc.histogram[size_t(b)] =
          next.histogram[size_t(b)] + acc.histogram[size_t(b)];
    return llvm::Error::success();
  }
  const float lo = std::min(aMin, nMin), hi = std::max(aMax, nMax);
  float newMax = hi;
  std::vector<float> accPart;
  std::vector<double> resampled(size_t(bins), 0.0);
  bool accDone = false;
  if (aMin < aMax) {
    histogram::Adjusted a =
        histogram::adjustMinMax(aMin, aMax, bins, lo, hi, rate);
    if (a.valid) {
      newMax = a.combinedMax;
      if (a.combinedMin == aMin && a.combinedMax == aMax)
        accPart = acc.histogram;
      else
        accPart = histogram::combineHistograms(
            std::vector<float>(size_t(bins), 0.0f), acc.histogram, rate,
            a.downsampleRate, a.startIdx, bins);
      accDone = true;
    }
  }
  detail::Grid grid{lo, newMax, resampled};
  if (!accDone) {
    accPart.assign(size_t(bins), 0.0f);
    for (int64_t j = 0; j < bins; ++j) {
      auto [x0, x1] = detail::binInterval(aMin, aMax, bins, j);
      grid.add(x0, x1, acc.histogram[size_t(j)]);
    }
  }
  for (int64_t j = 0; j < bins; ++j) {
    auto [x0, x1] = detail::binInterval(nMin, nMax, bins, j);
    grid.add(x0, x1, next.histogram[size_t(j)]);
  }
  for (int64_t b = 0; b < bins; ++b)
    accPart[size_t(b)] =
        static_cast<float>(resampled[size_t(b)]) + accPart[size_t(b)];
  acc.histogram = std::move(accPart);
  acc.min = {lo};
  acc.max = {newMax};
  return llvm::Error::success();
}

/// acc += v, false (acc unchanged) if the sum overflows int64 (the stats
/// fuzzer merged two files of count 2^63-1: signed overflow).
static bool addCount(int64_t &acc, int64_t v) {
  int64_t sum;
  if (llvm::AddOverflow(acc, v, sum))
    return false;
  acc = sum;
  return true;
}

llvm::Expected<StatsFile> qnt::mergeStats(llvm::ArrayRef<StatsFile> runs) {
  StatsFile out;
  for (const StatsFile &run : runs) {
    if (!addCount(out.numSamples, run.numSamples))
      return error("cannot merge: 'num_samples' overflows int64");
    for (const auto &entry : run.observers) {
      llvm::StringRef id = entry.getKey();
      const ObserverStats &s = entry.getValue();
      auto fail = [&](const llvm::Twine &message) {
        return error("cannot merge observer '" + id + "': " + message);
      };
      auto it = out.observers.find(id);
      if (it == out.observers.end()) {
        out.observers[id] = s;
        continue;
      }
      ObserverStats &acc = it->second;
      if (acc.kind != s.kind)
        return fail("its kind is '" + acc.kind + "' in one run and '" + s.kind +
                    "' in another");
      if (acc.isHistogram()) {
        if (llvm::Error e = mergeHistograms(acc, s))
          return fail(llvm::toString(std::move(e)));
      } else if (isMovingAverageKind(acc.kind)) {
        if (hasData(acc) && hasData(s))
          return fail("moving-average statistics of several runs cannot be "
                      "merged exactly");
        if (!hasData(acc)) {
          acc.min = s.min;
          acc.max = s.max;
          acc.averagingConstant = s.averagingConstant;
        }
      } else if (!s.min.empty()) {
        if (acc.min.empty()) {
          acc.min = s.min;
          acc.max = s.max;
        } else if (acc.min.size() != s.min.size()) {
          return fail("it has " + llvm::Twine(acc.min.size()) +
                      " channels in one run and " + llvm::Twine(s.min.size()) +
                      " in another");
        } else {
          for (size_t c = 0; c < acc.min.size(); ++c) {
            acc.min[c] = std::min(acc.min[c], s.min[c]);
            acc.max[c] = std::max(acc.max[c], s.max[c]);
          }
        }
      }
      if (!addCount(acc.count, s.count) || !addCount(acc.calls, s.calls) ||
          !addCount(acc.nonfinite, s.nonfinite))
        return fail("'count', 'calls' or 'nonfinite' overflows int64");
    }
  }
  return out;
}
