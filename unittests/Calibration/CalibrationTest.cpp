//===- CalibrationTest.cpp - ranges, statistics files, merging ------------===//
//
// Hand-checkable cases of lib/Calibration. Values marked "torch" were
// computed with PyTorch 1.13 (HistogramObserver with the histogram state set
// directly, torch.sum); test/python/test_observers.py compares against
// PyTorch at scale.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/QParams.h"
#include "qnt/Calibration/Range.h"
#include "qnt/Calibration/Stats.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace qnt;

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

/// Unwraps an Expected, failing the test with its message.
template <typename T> T get(llvm::Expected<T> e) {
  if (!e) {
    ADD_FAILURE() << llvm::toString(e.takeError());
    return T();
  }
  return std::move(*e);
}

template <typename T> std::string errorOf(llvm::Expected<T> e) {
  if (e) {
    ADD_FAILURE() << "expected an error";
    return "";
  }
  return llvm::toString(e.takeError());
}

std::string errorOf(llvm::Error e) {
  if (!e) {
    ADD_FAILURE() << "expected an error";
    return "";
  }
  return llvm::toString(std::move(e));
}

ObserverStats histogramStats(std::vector<float> hist, float lo, float hi,
                             int64_t upsampleRate = 2) {
  ObserverStats s;
  s.kind = "histogram";
  s.bins = int64_t(hist.size());
  s.upsampleRate = upsampleRate;
  s.histogram = std::move(hist);
  s.min = {lo};
  s.max = {hi};
  return s;
}

ObserverStats minmaxStats(std::vector<float> lo, std::vector<float> hi,
                          const char *kind = "minmax") {
  ObserverStats s;
  s.kind = kind;
  s.min = std::move(lo);
  s.max = std::move(hi);
  return s;
}

//===----------------------------------------------------------------------===//
// torch.sum and the HistogramObserver search
//===----------------------------------------------------------------------===//

std::vector<float> sines(int n) {
  std::vector<float> v;
  for (int i = 0; i < n; ++i)
    v.push_back(float(std::sin(double(i)) * std::pow(10.0, i % 7 - 3)));
  return v;
}

TEST(TorchSum, CascadeOrder) {
  // torch.sum bits; a plain double sum rounds differently for 5, 2048, 5000.
  EXPECT_EQ(bits(torchSum(sines(5))), 0xc0ea7b61u);
  EXPECT_EQ(bits(torchSum(sines(37))), 0x451fd35cu);
  EXPECT_EQ(bits(torchSum(sines(2048))), 0x441b6e8cu);
  EXPECT_EQ(bits(torchSum(sines(5000))), 0x44f07565u);
  EXPECT_EQ(torchSum({}), 0.0f);
  EXPECT_EQ(torchSum(std::vector<float>(3000, 1.0f)), 3000.0f);
}

TEST(HistogramL2, MatchesTorch) {
  auto r = histogramL2Range({1, 2, 3, 4, 5, 6, 7, 8}, -1.0f, 3.0f);
  EXPECT_EQ(r.first, -1.0f); // torch
  EXPECT_EQ(r.second, 2.5f);
  r = histogramL2Range(
      {0, 0, 1, 50, 200, 400, 300, 100, 20, 5, 0, 0, 0, 1, 0, 2}, -2.5f, 7.25f);
  EXPECT_EQ(r.first, -1.28125f); // torch
  EXPECT_EQ(r.second, 7.25f);
  // One outlier bin: the search drops it (bin width 1: [0, 7]).
  r = histogramL2Range({1000, 0, 0, 0, 0, 0, 0, 1}, 0.0f, 8.0f);
  EXPECT_EQ(r.first, 0.0f); // torch
  EXPECT_EQ(r.second, 7.0f);
  // A single-point histogram (min == max): every error is 0.
  r = histogramL2Range({0, 0, 3, 0}, 2.0f, 2.0f);
  EXPECT_EQ(r.first, 2.0f); // torch
  EXPECT_EQ(r.second, 2.0f);
}

TEST(HistogramL2, QParamsThroughStats) {
  ObserverStats s = histogramStats({1, 2, 3, 4, 5, 6, 7, 8}, -1.0f, 3.0f);
  RangeOptions options;
  options.method = RangeMethod::HistogramL2;
  options.target = {0, 255, false, false};
  auto params = get(computeCalibratedQParams(s, options));
  ASSERT_EQ(params.size(), 1u);
  QParams expected = computeQParams(-1.0f, 2.5f, options.target);
  EXPECT_EQ(bits(params[0].scale), bits(expected.scale));
  EXPECT_EQ(params[0].zeroPoint, expected.zeroPoint);
  EXPECT_EQ(params[0].zeroPoint, 73); // 0 - round(-1 / (3.5 / 255))
}

//===----------------------------------------------------------------------===//
// Percentile
//===----------------------------------------------------------------------===//

TEST(Percentile, InterpolatesInsideBins) {
  // Bins [0,1) [1,2) [2,3) [3,4]; 10 values in bin 1, 10 in bin 3.
  std::vector<float> h = {0, 10, 0, 10};
  auto r = get(percentileRange(h, 0.0f, 4.0f, 100.0));
  EXPECT_EQ(r.first, 1.0f); // the first occupied bin's lower edge
  EXPECT_EQ(r.second, 4.0f);
  r = get(percentileRange(h, 0.0f, 4.0f, 75.0));
  EXPECT_EQ(r.first, 1.5f); // 5 of 20 values: half way through bin 1
  EXPECT_EQ(r.second, 3.5f);
  r = get(percentileRange(h, 0.0f, 4.0f, 99.0));
  EXPECT_FLOAT_EQ(r.first, 1.02f);
  EXPECT_FLOAT_EQ(r.second, 3.98f);
  // Negative residues count as empty.
  r = get(percentileRange({-1e-7f, 10, 0, 10}, 0.0f, 4.0f, 100.0));
  EXPECT_EQ(r.first, 1.0f);
}

TEST(Percentile, Errors) {
  EXPECT_NE(errorOf(percentileRange({1, 1}, 0, 1, 30.0)).find("outside"),
            std::string::npos);
  EXPECT_NE(errorOf(percentileRange({0, 0}, 0, 1, 99.0)).find("empty"),
            std::string::npos);
  RangeOptions options;
  options.method = RangeMethod::Percentile;
  EXPECT_EQ(errorOf(computeCalibratedRanges(minmaxStats({0}, {1}), options)),
            "the percentile range needs histogram statistics, not 'minmax'");
}

//===----------------------------------------------------------------------===//
// Entropy
//===----------------------------------------------------------------------===//

TEST(Entropy, HandComputed) {
  // 8 bins of width 1 over [0, 8]; a 4-level target has 2 levels per side.
  // KL(P || Q) per window of i bins (docs/calibration.md):
  //   i = 2: 0.290  3: 0.315  4: 0.249  5: 0.152  6: 0.059  7: 0.0022
  //   i = 8: 0.054 (Q = [5,5,5,5,4,4,4,4] against P = [5,5,5,5,5,5,5,1])
  std::vector<float> h = {5, 5, 5, 5, 5, 5, 5, 1};
  auto r = get(entropyRange(h, 0.0f, 8.0f, QTarget{-2, 1, true, true}));
  EXPECT_EQ(r.first, -7.0f);
  EXPECT_EQ(r.second, 7.0f);
  // Affine: each side on its own; nothing below zero.
  r = get(entropyRange(h, 0.0f, 8.0f, QTarget{0, 3, false, false}));
  EXPECT_EQ(r.first, 0.0f);
  EXPECT_EQ(r.second, 7.0f);
  // Mirrored data: the negative side.
  std::vector<float> m(h.rbegin(), h.rend());
  r = get(entropyRange(m, -8.0f, 0.0f, QTarget{0, 3, false, false}));
  EXPECT_EQ(r.first, -7.0f);
  EXPECT_EQ(r.second, 0.0f);
  r = get(entropyRange(m, -8.0f, 0.0f, QTarget{-2, 1, true, true}));
  EXPECT_EQ(r.first, -7.0f);
  EXPECT_EQ(r.second, 7.0f);
}

TEST(Entropy, ClipsAnOutlier) {
  // A bell over the first 300 of 2048 bins and one far outlier.
  std::vector<float> h(2048, 0.0f);
  for (int i = 0; i < 300; ++i)
    h[i] = std::round(1000.0f * std::exp(-float(i * i) / 8000.0f));
  h[2047] = 1;
  auto r = get(entropyRange(h, 0.0f, 2048.0f, QTarget{-128, 127, true, true}));
  EXPECT_EQ(r.first, -r.second);
  EXPECT_GE(r.second, 128.0f); // the smallest window
  EXPECT_LE(r.second, 400.0f);
  // Nothing to search in an empty histogram.
  EXPECT_EQ(errorOf(entropyRange({0, 0}, 0, 1, QTarget{-128, 127, true, true})),
            "the histogram is empty");
}

//===----------------------------------------------------------------------===//
// computeCalibratedRanges
//===----------------------------------------------------------------------===//

TEST(Ranges, MinMaxPerChannel) {
  ObserverStats s =
      minmaxStats({-1, 0.5f, -3}, {1, 2, 0}, "per_channel_minmax");
  RangeOptions options;
  auto ranges = get(computeCalibratedRanges(s, options));
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[1], std::make_pair(0.5f, 2.0f));
  EXPECT_NE(errorOf(computeCalibratedRange(s, options)).find("3 channels"),
            std::string::npos);
  // MinMax of histogram statistics: the histogram's range.
  auto r = get(computeCalibratedRange(histogramStats({1, 1}, -2, 5), options));
  EXPECT_EQ(r, std::make_pair(-2.0f, 5.0f));
}

TEST(Ranges, NoFiniteValue) {
  RangeOptions options;
  EXPECT_EQ(errorOf(computeCalibratedRanges(minmaxStats({}, {}), options)),
            "it saw no finite value");
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(
      errorOf(computeCalibratedRanges(
          minmaxStats({0, inf}, {1, -inf}, "per_channel_minmax"), options)),
      "channel 1 saw no finite value");
}

//===----------------------------------------------------------------------===//
// Statistics files
//===----------------------------------------------------------------------===//

std::string wrap(const std::string &observer) {
  return "{\"format\": \"qnt-stats\", \"version\": 1, \"num_samples\": 3,\n"
         " \"observers\": {\n  \"x\": " +
         observer + "\n }}\n";
}

TEST(StatsFile, ParsesEveryKind) {
  const char *text =
      "{\"format\": \"qnt-stats\", \"version\": 1, \"num_samples\": 3,\n"
      " \"observers\": {\n"
      "  \"h\": {\"kind\": \"histogram\", \"bins\": 4, \"upsample_rate\": 2, "
      "\"min\": -1, \"max\": 3, \"histogram\": [1, 0.5, 0, 2], \"count\": 4, "
      "\"calls\": 2, \"nonfinite\": 1},\n"
      "  \"m\": {\"kind\": \"minmax\", \"min\": -1.5, \"max\": 2.25, "
      "\"count\": 6, \"calls\": 2, \"nonfinite\": 3},\n"
      "  \"ma\": {\"kind\": \"moving_average_minmax\", "
      "\"averaging_constant\": 0.00999999978, \"min\": 0.100000001, "
      "\"max\": 1, \"count\": 1, \"calls\": 1, \"nonfinite\": 0},\n"
      "  \"mapc\": {\"kind\": \"moving_average_per_channel_minmax\", "
      "\"channels\": 2, \"averaging_constant\": 0.5, \"min\": [-1, null], "
      "\"max\": [1, null], \"count\": 2, \"calls\": 1, \"nonfinite\": 2},\n"
      "  \"pc\": {\"kind\": \"per_channel_minmax\", \"channels\": 2, "
      "\"min\": [-7, -3], \"max\": [2, 8], \"count\": 11, \"calls\": 1, "
      "\"nonfinite\": 1}\n"
      " }}\n";
  StatsFile file = get(parseStatsFile(text, "s.json"));
  EXPECT_EQ(file.numSamples, 3);
  const ObserverStats &h = file.observers["h"];
  EXPECT_TRUE(h.isHistogram());
  EXPECT_EQ(h.bins, 4);
  EXPECT_EQ(h.upsampleRate, 2);
  EXPECT_EQ(h.histogram, (std::vector<float>{1, 0.5f, 0, 2}));
  EXPECT_EQ(h.calls, 2);
  EXPECT_EQ(*file.observers["ma"].averagingConstant, 0.01f);
  const ObserverStats &mapc = file.observers["mapc"];
  EXPECT_EQ(mapc.min[1], std::numeric_limits<float>::infinity());
  EXPECT_EQ(mapc.max[1], -std::numeric_limits<float>::infinity());
  // Printing reproduces the runtime's text exactly.
  EXPECT_EQ(printStatsFile(file), text);
}

TEST(StatsFile, Errors) {
  auto err = [](const std::string &observer) {
    return errorOf(parseStatsFile(wrap(observer), "s.json"));
  };
  EXPECT_EQ(err("{\"kind\": \"magic\", \"min\": 0, \"max\": 1}"),
            "statistics file 's.json': observer 'x': unknown kind 'magic'");
  EXPECT_EQ(err("{\"kind\": \"minmax\", \"min\": 2, \"max\": 1}"),
            "statistics file 's.json': observer 'x': 'min' exceeds 'max'");
  EXPECT_EQ(err("{\"kind\": \"minmax\", \"min\": 0, \"max\": null}"),
            "statistics file 's.json': observer 'x': 'min' and 'max' must "
            "both be null or both be numbers");
  EXPECT_EQ(err("{\"kind\": \"minmax\", \"min\": 0, \"max\": 1, \"count\": "
                "-1}"),
            "statistics file 's.json': observer 'x': 'count' must be a "
            "non-negative integer");
  EXPECT_EQ(err("{\"kind\": \"per_channel_minmax\", \"channels\": 3, "
                "\"min\": [0, 1], \"max\": [1, 2]}"),
            "statistics file 's.json': observer 'x': 'channels' must be the "
            "length of 'min' and 'max'");
  EXPECT_EQ(err("{\"kind\": \"histogram\", \"min\": 0, \"max\": 1, "
                "\"histogram\": [1]}"),
            "statistics file 's.json': observer 'x': 'bins' must be an "
            "integer in [1, 16777216]");
  EXPECT_EQ(err("{\"kind\": \"histogram\", \"bins\": 2, \"min\": 0, "
                "\"max\": 1, \"histogram\": [1]}"),
            "statistics file 's.json': observer 'x': 'histogram' has 1 "
            "entries, expected 'bins' = 2");
  EXPECT_EQ(err("{\"kind\": \"histogram\", \"bins\": 1, \"min\": 0, "
                "\"max\": 1}"),
            "statistics file 's.json': observer 'x': missing 'histogram' (an "
            "array of 'bins' numbers)");
  EXPECT_EQ(err("{\"kind\": \"moving_average_minmax\", "
                "\"averaging_constant\": \"a\", \"min\": 0, \"max\": 1}"),
            "statistics file 's.json': observer 'x': 'averaging_constant' "
            "must be a number");
  EXPECT_EQ(err("{\"kind\": \"minmax\", \"min\": [0, 1], \"max\": [1, 2]}"),
            "statistics file 's.json': observer 'x': 'min' and 'max' of a "
            "per-tensor observer must be numbers");
  EXPECT_EQ(errorOf(parseStatsFile("{\"format\": \"qnt-stats\", "
                                   "\"version\": 2}",
                                   "s.json")),
            "statistics file 's.json': unsupported version (expected 1)");
}

TEST(StatsFile, ValueErrors) {
  auto err = [](const std::string &observer) {
    return errorOf(parseStatsFile(wrap(observer), "s.json"));
  };
  EXPECT_EQ(err("{\"kind\": \"histogram\", \"bins\": 2, \"min\": 0, "
                "\"max\": 1, \"histogram\": [5, -1e30]}"),
            "statistics file 's.json': observer 'x': 'histogram' bin 1 is "
            "negative (-1.000000e+30)");
  EXPECT_EQ(err("{\"kind\": \"histogram\", \"bins\": 1000000000000, "
                "\"min\": 0, \"max\": 1, \"histogram\": [1]}"),
            "statistics file 's.json': observer 'x': 'bins' must be an "
            "integer in [1, 16777216]");
  EXPECT_EQ(err("{\"kind\": \"histogram\", \"bins\": 1, "
                "\"upsample_rate\": 99999999999, \"min\": 0, \"max\": 1, "
                "\"histogram\": [1]}"),
            "statistics file 's.json': observer 'x': 'upsample_rate' must be "
            "an integer in [1, 16777216]");
  // Float32 rounding residues of merged histograms are not an error.
  StatsFile file =
      get(parseStatsFile(wrap("{\"kind\": \"histogram\", \"bins\": 2, "
                              "\"min\": 0, \"max\": 1, \"histogram\": "
                              "[1000, -1e-6]}"),
                         "s.json"));
  EXPECT_EQ(file.observers["x"].histogram[1], -1e-6f);
}

TEST(StatsFile, NestingAndSizeLimits) {
  // 40000 levels would overflow the stack of the recursive JSON parser.
  std::string deep = std::string(40000, '[') + std::string(40000, ']');
  EXPECT_EQ(errorOf(parseStatsFile(deep, "s.json")),
            "statistics file 's.json': arrays / objects nest deeper than 32 "
            "levels (at byte 32)");
  // Brackets inside strings do not count.
  std::string id = "a" + std::string(100, '[');
  StatsFile file = get(parseStatsFile(
      "{\"format\": \"qnt-stats\", \"version\": 1, \"observers\": {\"" + id +
          "\": {\"kind\": \"minmax\", \"min\": 0, \"max\": 1}}}",
      "s.json"));
  EXPECT_TRUE(file.observers.count(id));
}

class TempDir {
public:
  TempDir() {
    llvm::SmallString<128> path;
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("qnt-calib", path));
    path_ = std::string(path);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path_); }
  std::string file(const char *name) const { return path_ + "/" + name; }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(path_, ec), end; it != end && !ec;
         it.increment(ec))
      out.push_back(std::string(llvm::sys::path::filename(it->path())));
    return out;
  }

private:
  std::string path_;
};

TEST(StatsFile, TooLargeToRead) {
  TempDir dir;
  std::string path = dir.file("huge.json");
  int fd;
  ASSERT_FALSE(llvm::sys::fs::openFileForWrite(path, fd));
  // Sparse: no disk space is used.
  ASSERT_FALSE(llvm::sys::fs::resize_file(fd, kMaxStatsFileBytes + 1));
  llvm::sys::Process::SafelyCloseFileDescriptor(fd);
  EXPECT_EQ(errorOf(readStatsFile(path)),
            "statistics file '" + path +
                "': it has 1073741825 bytes, more than the limit of "
                "1073741824");
}

TEST(StatsFile, WriteAndReadBack) {
  StatsFile file;
  file.numSamples = 7;
  file.observers["b"] = histogramStats({1, 0, 0.25f, 3}, -0.5f, 0.75f, 128);
  file.observers["a\"q"] = minmaxStats({0.1f}, {2});
  TempDir dir;
  std::string path = dir.file("stats.json");
  ASSERT_FALSE(bool(writeStatsFile(file, path)));
  EXPECT_EQ(dir.files(), std::vector<std::string>{"stats.json"});
  StatsFile back = get(readStatsFile(path));
  EXPECT_EQ(printStatsFile(back), printStatsFile(file));
  EXPECT_EQ(back.observers["b"].histogram, file.observers["b"].histogram);
  // A failed write leaves nothing behind.
  std::string missing = dir.file("no/such/stats.json");
  EXPECT_EQ(errorOf(writeStatsFile(file, missing))
                .rfind("cannot write '" + missing + "': ", 0),
            0u);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"stats.json"});
}

TEST(StatsFile, HistogramOfConstant) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // One forward(): histc over [int(0), int(4)], 4 (== max) in the last bin.
  ObserverStats s = histogramStatsOf({0, 1, 2, nan, 3, 4}, 4, 2);
  EXPECT_EQ(s.kind, "histogram");
  EXPECT_EQ(s.histogram, (std::vector<float>{1, 1, 1, 2}));
  EXPECT_EQ(s.min, std::vector<float>{0});
  EXPECT_EQ(s.max, std::vector<float>{4});
  EXPECT_EQ(s.count, 5);
  EXPECT_EQ(s.nonfinite, 1);
  s = histogramStatsOf({nan}, 4, 2);
  EXPECT_TRUE(s.min.empty());
  EXPECT_EQ(s.histogram, (std::vector<float>{0, 0, 0, 0}));
}

//===----------------------------------------------------------------------===//
// Merging
//===----------------------------------------------------------------------===//

StatsFile single(const char *id, ObserverStats s, int64_t samples = 1) {
  StatsFile f;
  f.numSamples = samples;
  s.count = 10;
  s.calls = 2;
  s.nonfinite = 1;
  f.observers[id] = std::move(s);
  return f;
}

TEST(Merge, MinMaxAndCounters) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<StatsFile> runs = {
      single("pc", minmaxStats({-1, inf}, {1, -inf}, "per_channel_minmax"), 4),
      single("pc", minmaxStats({0, -2}, {3, -1}, "per_channel_minmax"), 6),
  };
  runs[1].observers["only"] = minmaxStats({}, {});
  StatsFile merged = get(mergeStats(runs));
  EXPECT_EQ(merged.numSamples, 10);
  const ObserverStats &pc = merged.observers["pc"];
  EXPECT_EQ(pc.min, (std::vector<float>{-1, -2}));
  EXPECT_EQ(pc.max, (std::vector<float>{3, -1}));
  EXPECT_EQ(pc.count, 20);
  EXPECT_EQ(pc.calls, 4);
  EXPECT_EQ(pc.nonfinite, 2);
  EXPECT_TRUE(merged.observers.count("only"));
}

TEST(Merge, Errors) {
  EXPECT_EQ(errorOf(mergeStats({single("x", minmaxStats({0}, {1})),
                                single("x", histogramStats({1}, 0, 1))})),
            "cannot merge observer 'x': its kind is 'minmax' in one run and "
            "'histogram' in another");
  ObserverStats ma = minmaxStats({0}, {1}, "moving_average_minmax");
  EXPECT_EQ(errorOf(mergeStats({single("x", ma), single("x", ma)})),
            "cannot merge observer 'x': moving-average statistics of several "
            "runs cannot be merged exactly");
  // ... unless only one run has data.
  StatsFile merged = get(
      mergeStats({single("x", ma),
                  single("x", minmaxStats({}, {}, "moving_average_minmax"))}));
  EXPECT_EQ(merged.observers["x"].min, std::vector<float>{0});
  EXPECT_EQ(errorOf(mergeStats({single("x", histogramStats({1, 1}, 0, 1)),
                                single("x", histogramStats({1}, 0, 1))})),
            "cannot merge observer 'x': histograms differ in bins / "
            "upsample_rate (2/2 vs 1/2)");
  EXPECT_EQ(errorOf(mergeStats(
                {single("x", minmaxStats({0, 1}, {1, 2}, "per_channel_minmax")),
                 single("x", minmaxStats({0}, {1}, "per_channel_minmax"))})),
            "cannot merge observer 'x': it has 2 channels in one run and 1 "
            "in another");
}

TEST(QParams, RangesNearFloatMax) {
  QTarget u8{0, 255, /*symmetric=*/false, /*isSigned=*/false};
  EXPECT_EQ(errorOf(computeCheckedQParams(-3.4e38f, 3.4e38f, u8)),
            "the range [-3.39999995e+38, 3.39999995e+38] is too wide to "
            "quantize: its scale overflows float32");
  EXPECT_EQ(errorOf(computeCheckedQParams(
                0, std::numeric_limits<float>::infinity(), u8)),
            "the range [0, inf] is not a finite interval");
  // Wide but representable: scale 3.4e38 / 255, zero point 0.
  QParams p = get(computeCheckedQParams(0, 3.4e38f, u8));
  EXPECT_EQ(p.scale, 3.4e38f / 255.0f);
  EXPECT_EQ(p.zeroPoint, 0);
  // The unchecked form does not convert NaN to an integer (UB).
  EXPECT_EQ(computeQParams(-3.4e38f, 3.4e38f, u8).zeroPoint, 0);
}

TEST(Ranges, HistogramRangeTooWide) {
  RangeOptions options;
  options.method = RangeMethod::HistogramL2;
  EXPECT_EQ(errorOf(computeCalibratedRanges(
                histogramStats({1, 0, 0, 1}, -3.4e38f, 3.4e38f), options)),
            "the histogram's range [-3.400000e+38, 3.400000e+38] is too wide: "
            "its width overflows float32");
}

TEST(Merge, HistogramsNearFloatMax) {
  // Widening [0, 3.3e38] to hold 3.4e38 overflows in _adjust_min_max (torch
  // gets max_val = inf); the merged range stays finite.
  ObserverStats acc = histogramStats({1, 0, 0, 1}, 0, 3.3e38f, 128);
  ASSERT_FALSE(bool(
      mergeHistograms(acc, histogramStats({1, 0, 0, 1}, 0, 3.4e38f, 128))));
  EXPECT_EQ(acc.min, std::vector<float>{0});
  EXPECT_EQ(acc.max, std::vector<float>{3.4e38f});
}

TEST(Merge, Histograms) {
  // Same range: bin by bin.
  ObserverStats acc = histogramStats({1, 1, 1, 2}, 0, 4);
  ASSERT_FALSE(
      bool(mergeHistograms(acc, histogramStats({0, 1, 0.5f, 0}, 0, 4))));
  EXPECT_EQ(acc.histogram, (std::vector<float>{1, 2, 1.5f, 2}));

  // Wider: acc goes through _adjust_min_max / _combine_histograms
  // (upsample 2, downsample 4, start 8: [0, 0, 2, 3]); next's bins
  // [-4,-3] .. [-1,0] are resampled onto [-4,-2], [-2,0]: [2, 2, 0, 0].
  acc = histogramStats({1, 1, 1, 2}, 0, 4);
  ASSERT_FALSE(bool(mergeHistograms(acc, histogramStats({2, 0, 0, 2}, -4, 0))));
  EXPECT_EQ(acc.min, std::vector<float>{-4});
  EXPECT_EQ(acc.max, std::vector<float>{4});
  EXPECT_EQ(acc.histogram, (std::vector<float>{2, 2, 2, 3}));

  // A single-point accumulator keeps its mass in its bin.
  acc = histogramStats({0, 0, 3, 0}, 1, 1);
  ASSERT_FALSE(bool(mergeHistograms(acc, histogramStats({1, 1, 1, 1}, 0, 8))));
  EXPECT_EQ(acc.min, std::vector<float>{0});
  EXPECT_EQ(acc.max, std::vector<float>{8});
  EXPECT_EQ(acc.histogram, (std::vector<float>{4, 1, 1, 1}));

  // Empty sides are neutral.
  ObserverStats empty = histogramStats({0, 0, 0, 0}, 0, 0);
  empty.min.clear();
  empty.max.clear();
  acc = empty;
  ASSERT_FALSE(bool(mergeHistograms(acc, histogramStats({1, 2, 3, 4}, -1, 1))));
  EXPECT_EQ(acc.histogram, (std::vector<float>{1, 2, 3, 4}));
  ASSERT_FALSE(bool(mergeHistograms(acc, empty)));
  EXPECT_EQ(acc.histogram, (std::vector<float>{1, 2, 3, 4}));
}

} // namespace
