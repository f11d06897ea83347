//===- ObserverTest.cpp - calibration observers and the stats JSON --------===//

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace qnt_test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

void observe(const char *id, int64_t kind, int64_t outer, int64_t channels,
             int64_t inner, const std::vector<float> &x) {
  qnt_rt_observe_params p{};
  p.outer = outer, p.channels = channels, p.inner = inner, p.kind = kind;
  void *slot = nullptr;
  qnt_rt_observe(&slot, reinterpret_cast<const int64_t *>(&p), id, x.data());
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

TEST(Threads, SetNumThreads) {
  qnt_rt_set_num_threads(1);
  qnt_rt_set_num_threads(2);
  qnt_rt_set_num_threads(0); // ignored
}

} // namespace
