//===- Observers.cpp - Calibration statistics -----------------------------===//
//
// qnt_rt_observe folds a tensor into a process-wide table keyed by observer
// id; qnt_rt_stats_write_json writes the table, qnt_rt_stats_restore refills
// it from such a file (a calibration continued over more data). A call first
// reduces its tensor (min / max) without any lock, then updates its observer
// under that observer's own mutex (the histogram update is the expensive part),
// so different observers never wait for each other.
//
// Each call is one forward() of the PyTorch 1.13 observer, replicated bit for
// bit (float32 arithmetic in torch's order; see Histogram.h), except that
// NaN / Inf values are counted and left out of every statistic.
//
//===----------------------------------------------------------------------===//

#include "Common.h"
#include "Histogram.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

using namespace qnt::rt;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

bool isPerChannel(int64_t kind) {
  return kind == QNT_RT_OBS_PER_CHANNEL_MINMAX ||
         kind == QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX;
}
bool isMovingAverage(int64_t kind) {
  return kind == QNT_RT_OBS_MOVING_AVERAGE_MINMAX ||
         kind == QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX;
}

/// Statistics of one observer. A channel that saw no finite value has
/// min = +inf and max = -inf (PyTorch's initial state).
struct Stats {
  std::mutex mutex; // guards everything below
  int64_t kind = QNT_RT_OBS_MINMAX;
  std::vector<float> min, max;        // one entry, or one per channel
  float averagingConstant = 0.0f;     // moving averages
  int64_t bins = 0, upsampleRate = 0; // histogram
  qnt::histogram::State histogram;    // histogram (min / max there)
  int64_t count = 0;                  // finite values
  int64_t calls = 0;
  int64_t nonfinite = 0;

  Stats(int64_t k, int64_t channels, float c, int64_t b, int64_t u)
      : kind(k), averagingConstant(c), bins(b), upsampleRate(u) {
    min.assign(channels, kInf);
    max.assign(channels, -kInf);
    if (kind == QNT_RT_OBS_HISTOGRAM)
      histogram.hist.assign(static_cast<size_t>(bins), 0.0f);
  }
};

struct Table {
  std::mutex mutex; // guards `observers` (the map, not the entries)
  std::map<std::string, std::shared_ptr<Stats>> observers;
  std::atomic<int64_t> nonfinite{0};
};

Table &table() {
  static Table *t = new Table; // never destroyed: usable from atexit
  return *t;
}

/// Finite min / max of `n` values at `p` (stride 1) into mn / mx (+inf / -inf
/// if none); adds the finite and non-finite counts.
void reduce(const float *p, int64_t n, float &mn, float &mx, int64_t &count,
            int64_t &nonfinite) {
  float lo = mn, hi = mx;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = p[i];
    if (!std::isfinite(v)) {
      ++bad;
      continue;
    }
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  mn = lo;
  mx = hi;
  count += n - bad;
  nonfinite += bad;
}

/// old + c * (batch - old) in float32 as PyTorch; where the difference of
/// two finite values near FLT_MAX overflows (torch's result is inf), in
/// double, which keeps the average finite between them.
float movingAverage(float old, float batch, float c) {
  float average = old + c * (batch - old);
  if (std::isfinite(average))
    return average;
  return static_cast<float>(double(old) + double(c) * (double(batch) - old));
}

void appendEscaped(std::string &out, const std::string &s) {
  out += '"';
  for (unsigned char ch : s) {
    switch (ch) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (ch < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
        out += buf;
      } else {
        out += static_cast<char>(ch);
      }
    }
  }
  out += '"';
}

void appendFloat(std::string &out, float v) {
  if (!std::isfinite(v)) { // a bound that saw no finite value
    out += "null";
    return;
  }
  // -0.0 keeps its sign when read back (JSON readers take "-0" for the
  // integer 0), so that a resumed run continues from the same bits.
  if (v == 0.0f && std::signbit(v)) {
    out += "-0.0";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", double(v)); // round-trips a float
  out += buf;
}

void appendFloats(std::string &out, const std::vector<float> &v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i)
      out += ", ";
    appendFloat(out, v[i]);
  }
  out += ']';
}

const char *kindName(int64_t kind) {
  switch (kind) {
  case QNT_RT_OBS_MINMAX:
    return "minmax";
  case QNT_RT_OBS_PER_CHANNEL_MINMAX:
    return "per_channel_minmax";
  case QNT_RT_OBS_MOVING_AVERAGE_MINMAX:
    return "moving_average_minmax";
  case QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX:
    return "moving_average_per_channel_minmax";
  default:
    return "histogram";
  }
}

/// One observer's JSON object (docs/calibration.md). Called with its mutex
/// held.
void appendObserver(std::string &out, const Stats &s) {
  out += "{\"kind\": \"";
  out += kindName(s.kind);
  out += '"';
  if (s.kind == QNT_RT_OBS_HISTOGRAM) {
    out += ", \"bins\": " + std::to_string(s.bins) +
           ", \"upsample_rate\": " + std::to_string(s.upsampleRate) +
           ", \"min\": ";
    appendFloat(out, s.histogram.minVal);
    out += ", \"max\": ";
    appendFloat(out, s.histogram.maxVal);
    out += ", \"histogram\": ";
    appendFloats(out, s.histogram.hist);
  } else {
    if (isPerChannel(s.kind))
      out += ", \"channels\": " + std::to_string(s.min.size());
    if (isMovingAverage(s.kind)) {
      out += ", \"averaging_constant\": ";
      appendFloat(out, s.averagingConstant);
    }
    out += ", \"min\": ";
    if (isPerChannel(s.kind)) {
      appendFloats(out, s.min);
      out += ", \"max\": ";
      appendFloats(out, s.max);
    } else {
      appendFloat(out, s.min[0]);
      out += ", \"max\": ";
      appendFloat(out, s.max[0]);
    }
  }
  out += ", \"count\": " + std::to_string(s.count) +
         ", \"calls\": " + std::to_string(s.calls) +
         ", \"nonfinite\": " + std::to_string(s.nonfinite) + "}";
}

std::string toJson(Table &t, int64_t numSamples) {
  std::string out = "{\"format\": \"qnt-stats\", \"version\": 1, "
                    "\"num_samples\": " +
                    std::to_string(numSamples) + ",\n \"observers\": {";
  bool first = true;
  for (const auto &[id, s] : t.observers) { // std::map: sorted by id
    out += first ? "\n  " : ",\n  ";
    first = false;
    appendEscaped(out, id);
    out += ": ";
    std::lock_guard<std::mutex> lock(s->mutex);
    appendObserver(out, *s);
  }
  out += first ? "}}\n" : "\n }}\n";
  return out;
}

void setError(char *err, int64_t errLen, const std::string &msg) {
  if (!err || errLen <= 0)
    return;
  size_t n = std::min<size_t>(msg.size(), size_t(errLen - 1));
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

/// Writes all of `text` to `fd`; 0 or the errno of the failed write.
int writeAll(int fd, const std::string &text) {
  const char *data = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t w = ::write(fd, data, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    data += w;
    left -= size_t(w);
  }
  return 0;
}

} // namespace

extern "C" {

void qnt_rt_observe(void **, const int64_t *params, const float *fparams,
                    const char *id, const float *src) {
  const auto &p = *reinterpret_cast<const qnt_rt_observe_params *>(params);
  if (p.outer < 0 || p.channels <= 0 || p.inner < 0 || p.kind < 0 ||
      p.kind > QNT_RT_OBS_HISTOGRAM)
    fatal("observe: invalid params");
  if (p.kind == QNT_RT_OBS_HISTOGRAM &&
      (p.bins <= 0 || p.upsample_rate <= 0 || p.bins > (int64_t(1) << 24) ||
       p.upsample_rate > (int64_t(1) << 24)))
    fatal("observe: invalid histogram bins / upsample_rate");
  if (!id)
    fatal("observe: null id");
  const bool perChannel = isPerChannel(p.kind);
  const int64_t channels = perChannel ? p.channels : 1;
  const int64_t numel = p.outer * p.channels * p.inner;
  float averagingConstant = 0.0f;
  if (isMovingAverage(p.kind)) {
    if (!fparams)
      fatal("observe: moving average without fparams");
    averagingConstant = fparams[0];
  }
  const int64_t bins = p.kind == QNT_RT_OBS_HISTOGRAM ? p.bins : 0;
  const int64_t upsampleRate =
      p.kind == QNT_RT_OBS_HISTOGRAM ? p.upsample_rate : 0;

  // This batch's finite min / max (per channel or over the tensor).
  std::vector<float> mn(channels, kInf), mx(channels, -kInf);
  int64_t count = 0, nonfinite = 0;
  if (perChannel) {
    for (int64_t o = 0; o < p.outer; ++o)
      for (int64_t c = 0; c < p.channels; ++c)
        reduce(src + (o * p.channels + c) * p.inner, p.inner, mn[c], mx[c],
               count, nonfinite);
  } else {
    reduce(src, numel, mn[0], mx[0], count, nonfinite);
  }

  Table &t = table();
  std::shared_ptr<Stats> entry;
  {
    std::lock_guard<std::mutex> lock(t.mutex);
    auto &slot = t.observers[id];
    if (!slot)
      slot = std::make_shared<Stats>(p.kind, channels, averagingConstant, bins,
                                     upsampleRate);
    entry = slot;
  }
  t.nonfinite += nonfinite;

  Stats &s = *entry;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.kind != p.kind || int64_t(s.min.size()) != channels || s.bins != bins ||
      s.upsampleRate != upsampleRate ||
      !(s.averagingConstant == averagingConstant))
    fatal(std::string("observe: observer '") + id +
          "' used with a different kind, channel count or parameters");
  s.count += count;
  s.nonfinite += nonfinite;
  s.calls += 1;
  // PyTorch's forward() returns at once for an empty tensor; a batch (or a
  // channel) without finite values leaves the statistics alone as well.
  switch (p.kind) {
  case QNT_RT_OBS_MINMAX:
  case QNT_RT_OBS_PER_CHANNEL_MINMAX:
    // min_val = torch.min(min_val_cur, self.min_val)
    for (int64_t c = 0; c < channels; ++c) {
      s.min[c] = std::min(mn[c], s.min[c]);
      s.max[c] = std::max(mx[c], s.max[c]);
    }
    break;
  case QNT_RT_OBS_MOVING_AVERAGE_MINMAX:
  case QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX:
    for (int64_t c = 0; c < channels; ++c) {
      if (!(mn[c] <= mx[c])) // no finite value in this batch / channel
        continue;
      if (s.min[c] == kInf && s.max[c] == -kInf) {
        // First batch: min_val, max_val = torch.aminmax(x)
        s.min[c] = mn[c];
        s.max[c] = mx[c];
      } else {
        // min_val = min_val + averaging_constant * (min_val_cur - min_val)
        // (float32; averaging_constant is a Python float, so float32 here)
        s.min[c] = movingAverage(s.min[c], mn[c], averagingConstant);
        s.max[c] = movingAverage(s.max[c], mx[c], averagingConstant);
      }
    }
    break;
  case QNT_RT_OBS_HISTOGRAM:
    if (mn[0] <= mx[0])
      qnt::histogram::observe(s.histogram, bins, upsampleRate, src, numel,
                              mn[0], mx[0]);
    break;
  }
}

int qnt_rt_stats_restore(const char *id, const int64_t *params,
                         float averaging_constant, const float *min,
                         const float *max, const float *hist,
                         const int64_t *counts, char *err, int64_t err_len) {
  const auto &p = *reinterpret_cast<const qnt_rt_observe_params *>(params);
  const std::string name = id ? id : "";
  auto fail = [&](const std::string &message) {
    setError(err, err_len, "observer '" + name + "': " + message);
    return -1;
  };
  if (!id || p.kind < 0 || p.kind > QNT_RT_OBS_HISTOGRAM || p.channels <= 0)
    return fail("invalid kind or channel count");
  const bool histogram = p.kind == QNT_RT_OBS_HISTOGRAM;
  if (histogram &&
      (p.bins <= 0 || p.upsample_rate <= 0 || p.bins > (int64_t(1) << 24) ||
       p.upsample_rate > (int64_t(1) << 24)))
    return fail("invalid histogram bins / upsample_rate");
  if (!histogram && p.channels > 1 && !isPerChannel(p.kind))
    return fail("a per-tensor observer with several channels");
  if (counts[0] < 0 || counts[1] < 0 || counts[2] < 0)
    return fail("negative count");
  // The same constructor arguments as qnt_rt_observe's, so that its check
  // of kind and parameters holds for the observer's next call.
  auto stats = std::make_shared<Stats>(
      p.kind, p.channels, isMovingAverage(p.kind) ? averaging_constant : 0.0f,
      histogram ? p.bins : 0, histogram ? p.upsample_rate : 0);
  if (histogram) {
    stats->histogram.hist.assign(hist, hist + p.bins);
    stats->histogram.minVal = min[0];
    stats->histogram.maxVal = max[0];
  } else {
    stats->min.assign(min, min + p.channels);
    stats->max.assign(max, max + p.channels);
  }
  stats->count = counts[0];
  stats->calls = counts[1];
  stats->nonfinite = counts[2];
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.observers[name] = std::move(stats);
  return 0;
}

void qnt_rt_stats_reset(void) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.observers.clear();
  t.nonfinite = 0;
}

int64_t qnt_rt_stats_nonfinite_count(void) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.nonfinite;
}

int qnt_rt_stats_write_json(const char *path, int64_t num_samples, char *err,
                            int64_t err_len) {
  std::string json;
  {
    Table &t = table();
    std::lock_guard<std::mutex> lock(t.mutex);
    json = toJson(t, num_samples);
  }
  const std::string target = path ? path : "";
  auto fail = [&](int e, const std::string &tmp) {
    if (!tmp.empty())
      ::unlink(tmp.c_str());
    setError(err, err_len,
             "cannot write '" + target + "': " + std::strerror(e));
    return -1;
  };
  if (target.empty())
    return fail(ENOENT, "");
  // A device or pipe (/dev/null) is written in place: renaming over it
  // would replace it.
  struct stat status;
  if (::stat(target.c_str(), &status) == 0 && !S_ISREG(status.st_mode)) {
    int fd = ::open(target.c_str(), O_WRONLY);
    if (fd < 0)
      return fail(errno, "");
    int e = writeAll(fd, json);
    if (::close(fd) != 0 && !e)
      e = errno;
    return e ? fail(e, "") : 0;
  }
  std::string tmpl = target + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    return fail(errno, "");
  if (int e = writeAll(fd, json)) {
    ::close(fd);
    return fail(e, tmpl);
  }
  // mkstemp creates the file 0600.
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return fail(e, tmpl);
  }
  if (::close(fd) != 0)
    return fail(errno, tmpl);
  if (std::rename(tmpl.c_str(), target.c_str()) != 0)
    return fail(errno, tmpl);
  return 0;
}

} // extern "C"
