//===- ObserverTest.cpp - calibration observers and the stats JSON --------===//

#include "TestUtil.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <dirent.h>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace qnt_test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

void observe(const char *id, int64_t kind, int64_t outer, int64_t channels,
             int64_t inner, const std::vector<float> &x, float c = 0.0f,
             int64_t bins = 0, int64_t upsampleRate = 0) {
  qnt_rt_observe_params p{};
  p.outer = outer, p.channels = channels, p.inner = inner, p.kind = kind;
  p.bins = bins, p.upsample_rate = upsampleRate;
  const float fparams[1] = {c};
  void *slot = nullptr;
  qnt_rt_observe(&slot, reinterpret_cast<const int64_t *>(&p), fparams, id,
                 x.data());
}

/// A histogram observer call on a flat tensor.
void observeHist(const char *id, const std::vector<float> &x, int64_t bins,
                 int64_t upsampleRate) {
  observe(id, QNT_RT_OBS_HISTOGRAM, 1, 1, int64_t(x.size()), x, 0.0f, bins,
          upsampleRate);
}

class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/qnt-rt-test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    for (const auto &f : files())
      ::unlink((path_ + "/" + f).c_str());
    ::rmdir(path_.c_str());
  }
  const std::string &path() const { return path_; }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR *d = opendir(path_.c_str())) {
      while (dirent *e = readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
          out.push_back(e->d_name);
      closedir(d);
    }
    return out;
  }

private:
  std::string path_;
};

std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string writeJson(const TempDir &dir, int64_t samples) {
  std::string path = dir.path() + "/stats.json";
  char err[256] = "untouched";
  EXPECT_EQ(qnt_rt_stats_write_json(path.c_str(), samples, err, sizeof(err)), 0)
      << err;
  return readFile(path);
}

TEST(Observer, MinMaxCountsNonFinite) {
  qnt_rt_stats_reset();
  observe("act", QNT_RT_OBS_MINMAX, 1, 1, 5, {1.0f, -1.5f, kNaN, 2.0f, kInf});
  observe("act", QNT_RT_OBS_MINMAX, 2, 1, 2, {0.5f, 2.25f, -kInf, -1.0f});
  EXPECT_EQ(qnt_rt_stats_nonfinite_count(), 3);
  TempDir dir;
  std::string json = writeJson(dir, 10);
  EXPECT_NE(json.find("\"format\": \"qnt-stats\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"version\": 1"), std::string::npos);
  EXPECT_NE(json.find("\"num_samples\": 10"), std::string::npos);
  EXPECT_NE(json.find("\"act\": {\"kind\": \"minmax\", \"min\": -1.5, "
                      "\"max\": 2.25, \"count\": 6, \"calls\": 2, "
                      "\"nonfinite\": 3}"),
            std::string::npos)
      << json;
  EXPECT_EQ(dir.files(), std::vector<std::string>{"stats.json"});
  qnt_rt_stats_reset();
  EXPECT_EQ(qnt_rt_stats_nonfinite_count(), 0);
}

TEST(Observer, PerChannelAndOrdering) {
  qnt_rt_stats_reset();
  // [outer 2, channels 3, inner 2]
  std::vector<float> x = {1, 2,  -3, 4,    5, kNaN, //
                          0, -7, 8,  0.1f, 5, 6};
  observe("z.weight", QNT_RT_OBS_PER_CHANNEL_MINMAX, 2, 3, 2, x);
  observe("a\"b\\c\n", QNT_RT_OBS_MINMAX, 1, 1, 1, {0.1f});
  observe("m", QNT_RT_OBS_MINMAX, 1, 1, 2, {kNaN, kInf});
  observe("m", QNT_RT_OBS_MINMAX, 1, 3, 1, {-kInf, kNaN, kNaN});
  EXPECT_EQ(qnt_rt_stats_nonfinite_count(), 6);
  TempDir dir;
  std::string json = writeJson(dir, 1);
  EXPECT_NE(json.find("\"z.weight\": {\"kind\": \"per_channel_minmax\", "
                      "\"channels\": 3, \"min\": [-7, -3, 5], \"max\": [2, 8, "
                      "6], \"count\": 11, \"calls\": 1, \"nonfinite\": 1}"),
            std::string::npos)
      << json;
  // Floats round-trip: 0.1f is not 0.1.
  EXPECT_NE(json.find("\"a\\\"b\\\\c\\n\": {\"kind\": \"minmax\", \"min\": "
                      "0.100000001, \"max\": 0.100000001"),
            std::string::npos)
      << json;
  // No finite value: null bounds.
  EXPECT_NE(json.find("\"m\": {\"kind\": \"minmax\", \"min\": null, \"max\": "
                      "null, \"count\": 0, \"calls\": 2, \"nonfinite\": 5}"),
            std::string::npos)
      << json;
  // Sorted by id.
  size_t a = json.find("\"a\\\""), m = json.find("\"m\""),
         z = json.find("\"z.weight\"");
  ASSERT_NE(a, std::string::npos);
  EXPECT_LT(a, m);
  EXPECT_LT(m, z);
  qnt_rt_stats_reset();
}

TEST(Observer, FloatsRoundTrip) {
  qnt_rt_stats_reset();
  std::mt19937 rng(3);
  auto x = randFloats(rng, 1000, -1e-3f, 3e4f);
  observe("r", QNT_RT_OBS_MINMAX, 1, 1, 1000, x);
  TempDir dir;
  std::string json = writeJson(dir, 1);
  float mn = *std::min_element(x.begin(), x.end());
  float mx = *std::max_element(x.begin(), x.end());
  size_t p = json.find("\"min\": ");
  size_t q = json.find("\"max\": ");
  ASSERT_NE(p, std::string::npos);
  EXPECT_EQ(std::strtof(json.c_str() + p + 7, nullptr), mn);
  EXPECT_EQ(std::strtof(json.c_str() + q + 7, nullptr), mx);
  qnt_rt_stats_reset();
}

TEST(Observer, EmptyTable) {
  qnt_rt_stats_reset();
  TempDir dir;
  std::string json = writeJson(dir, 0);
  EXPECT_NE(json.find("\"observers\": {}"), std::string::npos) << json;
}

TEST(Observer, FailedWriteLeavesNoFile) {
  qnt_rt_stats_reset();
  observe("x", QNT_RT_OBS_MINMAX, 1, 1, 1, {1.0f});
  TempDir dir;
  // Directory does not exist.
  std::string missing = dir.path() + "/no/such/dir/stats.json";
  char err[256] = "";
  EXPECT_EQ(qnt_rt_stats_write_json(missing.c_str(), 1, err, sizeof(err)), -1);
  EXPECT_EQ(std::string(err),
            "cannot write '" + missing + "': No such file or directory");
  // The target is a directory: the temporary file is written, rename fails
  // and the temporary file must be removed.
  std::string sub = dir.path() + "/sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  err[0] = '\0';
  EXPECT_EQ(qnt_rt_stats_write_json(sub.c_str(), 1, err, sizeof(err)), -1);
  EXPECT_EQ(std::string(err).rfind("cannot write '" + sub + "': ", 0), 0u)
      << err;
  EXPECT_EQ(dir.files(), std::vector<std::string>{"sub"});
  ::rmdir(sub.c_str());
  // A short error buffer is truncated and NUL-terminated.
  char small[8];
  EXPECT_EQ(qnt_rt_stats_write_json(missing.c_str(), 1, small, sizeof(small)),
            -1);
  EXPECT_EQ(std::string(small), "cannot ");
  qnt_rt_stats_reset();
}

TEST(Observer, OverwritesAtomically) {
  qnt_rt_stats_reset();
  observe("x", QNT_RT_OBS_MINMAX, 1, 1, 1, {1.0f});
  TempDir dir;
  writeJson(dir, 1);
  observe("x", QNT_RT_OBS_MINMAX, 1, 1, 1, {-4.0f});
  std::string json = writeJson(dir, 2);
  EXPECT_NE(json.find("\"min\": -4, \"max\": 1"), std::string::npos) << json;
  EXPECT_EQ(dir.files(), std::vector<std::string>{"stats.json"});
  qnt_rt_stats_reset();
}

TEST(Observer, MovingAverage) {
  qnt_rt_stats_reset();
  // First batch: its min / max. Then m += c * (batch - m) in float32.
  observe("ma", QNT_RT_OBS_MOVING_AVERAGE_MINMAX, 1, 1, 2, {0.0f, 4.0f}, 0.5f);
  observe("ma", QNT_RT_OBS_MOVING_AVERAGE_MINMAX, 1, 1, 3, {2.0f, kNaN, 6.0f},
          0.5f);
  observe("ma", QNT_RT_OBS_MOVING_AVERAGE_MINMAX, 1, 1, 1, {kInf}, 0.5f);
  // 0.1f: the update rounds in float32, as torch.
  observe("mb", QNT_RT_OBS_MOVING_AVERAGE_MINMAX, 1, 1, 1, {kNaN}, 0.1f);
  observe("mb", QNT_RT_OBS_MOVING_AVERAGE_MINMAX, 1, 1, 1, {1.0f}, 0.1f);
  observe("mb", QNT_RT_OBS_MOVING_AVERAGE_MINMAX, 1, 1, 1, {0.0f}, 0.1f);
  TempDir dir;
  std::string json = writeJson(dir, 3);
  EXPECT_NE(json.find("\"ma\": {\"kind\": \"moving_average_minmax\", "
                      "\"averaging_constant\": 0.5, \"min\": 1, \"max\": 5, "
                      "\"count\": 4, \"calls\": 3, \"nonfinite\": 2}"),
            std::string::npos)
      << json;
  // The first finite batch initializes; then both bounds move to
  // 1 + 0.1f * (0 - 1), rounded in float32.
  const float expected = 1.0f + 0.1f * (0.0f - 1.0f);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", double(expected));
  EXPECT_NE(json.find(std::string("\"mb\": {\"kind\": "
                                  "\"moving_average_minmax\", "
                                  "\"averaging_constant\": 0.100000001, "
                                  "\"min\": ") +
                      buf + ", \"max\": " + buf + ","),
            std::string::npos)
      << json;
  qnt_rt_stats_reset();
}

TEST(Observer, MovingAveragePerChannel) {
  qnt_rt_stats_reset();
  // [outer 1, channels 2, inner 2]; channel 1 has no finite value at first.
  observe("pc", QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX, 1, 2, 2,
          {-1, 1, kNaN, kNaN}, 0.25f);
  observe("pc", QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX, 1, 2, 2,
          {-5, 5, 2, 3}, 0.25f);
  TempDir dir;
  std::string json = writeJson(dir, 2);
  EXPECT_NE(json.find("\"pc\": {\"kind\": "
                      "\"moving_average_per_channel_minmax\", \"channels\": 2, "
                      "\"averaging_constant\": 0.25, \"min\": [-2, 2], "
                      "\"max\": [2, 3], \"count\": 6, \"calls\": 2, "
                      "\"nonfinite\": 2}"),
            std::string::npos)
      << json;
  qnt_rt_stats_reset();
}

TEST(Observer, HistogramAccumulates) {
  qnt_rt_stats_reset();
  // First batch: torch.histc over [int(min), int(max)] = [0, 4] with 4
  // bins; 4 (== max) goes to the last bin.
  observeHist("h", {0, 1, 2, 3, 4, kNaN}, 4, 2);
  // Inside the range (_adjust_min_max keeps [0, 4]): histc added.
  observeHist("h", {1, 2}, 4, 2);
  TempDir dir;
  std::string json = writeJson(dir, 2);
  EXPECT_NE(json.find("\"h\": {\"kind\": \"histogram\", \"bins\": 4, "
                      "\"upsample_rate\": 2, \"min\": 0, \"max\": 4, "
                      "\"histogram\": [1, 2, 2, 2], \"count\": 7, "
                      "\"calls\": 2, \"nonfinite\": 1}"),
            std::string::npos)
      << json;
  // Widening to [-4, 4]: downsample 4, start 8; the old histogram
  // upsampled by 2 lands on [2, 4]: [0, 0, 3, 4], plus histc([-4]).
  observeHist("h", {-4}, 4, 2);
  json = writeJson(dir, 3);
  EXPECT_NE(json.find("\"min\": -4, \"max\": 4, \"histogram\": [1, 0, 3, 4]"),
            std::string::npos)
      << json;
  qnt_rt_stats_reset();
}

TEST(Observer, HistogramTorchQuirks) {
  qnt_rt_stats_reset();
  // histc's range is [int(0.5), int(2.5)] = [0, 2]: 2.5 is not counted,
  // though min / max are the true 0.5 / 2.5.
  observeHist("trunc", {0.5f, 1.5f, 2.5f}, 2, 128);
  // All equal: histc of [3, 3] over int(3) == int(3) -> the data's range,
  // widened by 1 -> [2, 4]; the next batch restarts (min == max).
  observeHist("equal", {3, 3}, 4, 128);
  TempDir dir;
  std::string json = writeJson(dir, 1);
  EXPECT_NE(json.find("\"trunc\": {\"kind\": \"histogram\", \"bins\": 2, "
                      "\"upsample_rate\": 128, \"min\": 0.5, \"max\": 2.5, "
                      "\"histogram\": [1, 1], \"count\": 3"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"equal\": {\"kind\": \"histogram\", \"bins\": 4, "
                      "\"upsample_rate\": 128, \"min\": 3, \"max\": 3, "
                      "\"histogram\": [0, 0, 2, 0]"),
            std::string::npos)
      << json;
  observeHist("equal", {1}, 4, 128);
  observeHist("none", {kNaN, -kInf}, 4, 128);
  json = writeJson(dir, 2);
  EXPECT_NE(json.find("\"equal\": {\"kind\": \"histogram\", \"bins\": 4, "
                      "\"upsample_rate\": 128, \"min\": 1, \"max\": 1, "
                      "\"histogram\": [0, 0, 1, 0], \"count\": 3, "
                      "\"calls\": 2"),
            std::string::npos)
      << json;
  // No finite value yet: null range, empty histogram.
  EXPECT_NE(json.find("\"none\": {\"kind\": \"histogram\", \"bins\": 4, "
                      "\"upsample_rate\": 128, \"min\": null, \"max\": null, "
                      "\"histogram\": [0, 0, 0, 0], \"count\": 0, "
                      "\"calls\": 1, \"nonfinite\": 2}"),
            std::string::npos)
      << json;
  qnt_rt_stats_reset();
}

TEST(Observer, ConcurrentCalls) {
  qnt_rt_stats_reset();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 50; ++i) {
        auto x = randFloats(rng, 64, -1.0f - t, 1.0f + t);
        observe("shared", QNT_RT_OBS_MINMAX, 1, 1, 64, x);
        observeHist("hist", x, 64, 8);
        observeHist(t % 2 ? "odd" : "even", x, 64, 8);
      }
    });
  for (auto &th : threads)
    th.join();
  TempDir dir;
  std::string json = writeJson(dir, 200);
  for (const char *id : {"\"shared\"", "\"hist\""})
    EXPECT_NE(json.find(std::string(id) + ": {"), std::string::npos);
  EXPECT_NE(json.find("\"count\": 12800, \"calls\": 200"), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"count\": 6400, \"calls\": 100"), std::string::npos);
  qnt_rt_stats_reset();
}

TEST(ObserverDeathTest, ParameterMismatch) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  qnt_rt_stats_reset();
  observeHist("h", {1, 2}, 4, 2);
  EXPECT_EXIT(observeHist("h", {1, 2}, 8, 2), testing::ExitedWithCode(70),
              "observer 'h' used with a different kind, channel count or "
              "parameters");
  EXPECT_EXIT(observe("h", QNT_RT_OBS_MINMAX, 1, 1, 1, {1.0f}),
              testing::ExitedWithCode(70), "different kind");
  EXPECT_EXIT(observeHist("z", {1, 2}, 0, 2), testing::ExitedWithCode(70),
              "invalid histogram bins");
  qnt_rt_stats_reset();
}

TEST(Threads, SetNumThreads) {
  EXPECT_EQ(qnt_rt_set_num_threads(1), 0);
  EXPECT_EQ(omp_get_max_threads(), 1);
  EXPECT_EQ(qnt_rt_set_num_threads(2), 0);
  EXPECT_EQ(omp_get_max_threads(), 2);
  // Out of range: refused, the count unchanged.
  EXPECT_EQ(qnt_rt_set_num_threads(0), -1);
  EXPECT_EQ(qnt_rt_set_num_threads(-3), -1);
  EXPECT_EQ(qnt_rt_set_num_threads(QNT_RT_MAX_NUM_THREADS + 1), -1);
  EXPECT_EQ(qnt_rt_set_num_threads(100000), -1);
  EXPECT_EQ(omp_get_max_threads(), 2);
  EXPECT_EQ(qnt_rt_set_num_threads(2), 0);
}

} // namespace
