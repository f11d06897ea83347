//===- Observers.cpp - Calibration statistics -----------------------------===//
//
// qnt_rt_observe folds a tensor into a process-wide table keyed by observer
// id; qnt_rt_stats_write_json writes the table. A call first reduces its
// tensor without the lock, then merges under it.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

using namespace qnt::rt;

namespace {

/// Statistics of one observer. A channel that saw no finite value has
/// min = +inf and max = -inf.
struct Stats {
  int64_t kind = QNT_RT_OBS_MINMAX;
  std::vector<float> min, max; // one entry, or one per channel
  int64_t count = 0;           // finite values
  int64_t calls = 0;
  int64_t nonfinite = 0;

  void init(int64_t k, int64_t channels) {
    kind = k;
    min.assign(channels, INFINITY);
    max.assign(channels, -INFINITY);
  }
};

struct Table {
  std::mutex mutex;
  std::map<std::string, Stats> observers;
  int64_t nonfinite = 0;
};

Table &table() {
  static Table *t = new Table; // never destroyed: usable from atexit
  return *t;
}

/// Reduces channel `c`'s `n` values at `p` (stride 1) into `s`.
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
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", double(v)); // round-trips a float
  out += buf;
}

std::string toJson(const Table &t, int64_t numSamples) {
  std::string out = "{\"format\": \"qnt-stats\", \"version\": 1, "
                    "\"num_samples\": " +
                    std::to_string(numSamples) + ",\n \"observers\": {";
  bool first = true;
  for (const auto &[id, s] : t.observers) { // std::map: sorted by id
    out += first ? "\n  " : ",\n  ";
    first = false;
    appendEscaped(out, id);
    out += ": {\"kind\": ";
    if (s.kind == QNT_RT_OBS_MINMAX) {
      out += "\"minmax\", \"min\": ";
      appendFloat(out, s.min[0]);
      out += ", \"max\": ";
      appendFloat(out, s.max[0]);
    } else {
      out += "\"per_channel_minmax\", \"channels\": " +
             std::to_string(s.min.size()) + ", \"min\": [";
      for (size_t c = 0; c < s.min.size(); ++c) {
        if (c)
          out += ", ";
        appendFloat(out, s.min[c]);
      }
      out += "], \"max\": [";
      for (size_t c = 0; c < s.max.size(); ++c) {
        if (c)
          out += ", ";
        appendFloat(out, s.max[c]);
      }
      out += "]";
    }
    out += ", \"count\": " + std::to_string(s.count) +
           ", \"calls\": " + std::to_string(s.calls) +
           ", \"nonfinite\": " + std::to_string(s.nonfinite) + "}";
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

} // namespace

extern "C" {

void qnt_rt_observe(void **, const int64_t *params, const char *id,
                    const float *src) {
  const auto &p = *reinterpret_cast<const qnt_rt_observe_params *>(params);
  if (p.outer < 0 || p.channels <= 0 || p.inner < 0 ||
      (p.kind != QNT_RT_OBS_MINMAX && p.kind != QNT_RT_OBS_PER_CHANNEL_MINMAX))
    fatal("observe: invalid params");
  if (!id)
    fatal("observe: null id");
  const bool perChannel = p.kind == QNT_RT_OBS_PER_CHANNEL_MINMAX;
  const int64_t channels = perChannel ? p.channels : 1;

  Stats local;
  local.init(p.kind, channels);
  if (perChannel) {
    for (int64_t o = 0; o < p.outer; ++o)
      for (int64_t c = 0; c < p.channels; ++c)
        reduce(src + (o * p.channels + c) * p.inner, p.inner, local.min[c],
               local.max[c], local.count, local.nonfinite);
  } else {
    reduce(src, p.outer * p.channels * p.inner, local.min[0], local.max[0],
           local.count, local.nonfinite);
  }

  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto [it, inserted] = t.observers.try_emplace(id);
  Stats &s = it->second;
  if (inserted)
    s.init(p.kind, channels);
  else if (s.kind != p.kind || int64_t(s.min.size()) != channels)
    fatal(std::string("observe: observer '") + id +
          "' used with a different kind or channel count");
  for (int64_t c = 0; c < channels; ++c) {
    s.min[c] = std::min(s.min[c], local.min[c]);
    s.max[c] = std::max(s.max[c], local.max[c]);
  }
  s.count += local.count;
  s.nonfinite += local.nonfinite;
  s.calls += 1;
  t.nonfinite += local.nonfinite;
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
  std::string tmpl = target + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    return fail(errno, "");
  const char *data = json.data();
  size_t left = json.size();
  while (left > 0) {
    ssize_t w = ::write(fd, data, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      ::close(fd);
      return fail(e, tmpl);
    }
    data += w;
    left -= size_t(w);
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
