//===- Profile.cpp - Per-call-site kernel timing (QNT_RT_PROFILE) ---------===//
//
// Sites are kept in first-call order (which is the network's layer order).
// Output at exit: a table on stderr, or JSON at $QNT_RT_PROFILE_JSON:
//
//   {"format": "qnt-profile", "version": 1, "sites": [
//     {"index": 0, "op": "conv2d", "desc": "...", "calls": 35,
//      "total_ns": 123456, "first_ns": 2345, "macs_per_call": 118013952}, ...]}
//
// The first call of each site (cold caches, OpenMP thread start-up, page
// faults of fresh buffers) is kept apart in `first_ns`; `calls` and
// `total_ns` count the later calls only (all calls if there was only one).
//
//===----------------------------------------------------------------------===//

#include "Profile.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace qnt {
namespace rt {
namespace prof {

struct Site {
  const char *op;
  SiteInfo info;
  std::atomic<uint64_t> all{0}; // every call, the first included
  std::atomic<uint64_t> firstNs{0};
  std::atomic<uint64_t> calls{0}; // calls after the first
  std::atomic<uint64_t> ns{0};

  /// Steady-state calls and time: after the first call, if there were more.
  uint64_t steadyCalls() const {
    uint64_t c = calls.load();
    return c ? c : all.load();
  }
  uint64_t steadyNs() const {
    return calls.load() ? ns.load() : firstNs.load();
  }
};

namespace {

std::mutex &siteMutex() {
  static std::mutex *m = new std::mutex; // leaked: used from atexit
  return *m;
}
std::unordered_map<const void *, Site *> &siteMap() {
  static auto *m = new std::unordered_map<const void *, Site *>;
  return *m;
}
std::vector<Site *> &siteList() {
  static auto *v = new std::vector<Site *>;
  return *v;
}

void jsonString(FILE *f, const std::string &s) {
  std::fputc('"', f);
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      std::fprintf(f, "\\%c", c);
    else if (c < 0x20)
      std::fprintf(f, "\\u%04x", c);
    else
      std::fputc(c, f);
  }
  std::fputc('"', f);
}

void writeJson(FILE *f, const std::vector<Site *> &sites) {
  std::fprintf(f, "{\"format\": \"qnt-profile\", \"version\": 1, \"sites\": [");
  for (size_t i = 0; i < sites.size(); ++i) {
    const Site &s = *sites[i];
    std::fprintf(f, "%s\n {\"index\": %zu, \"op\": \"%s\", \"desc\": ",
                 i ? "," : "", i, s.op);
    jsonString(f, s.info.desc);
    std::fprintf(f,
                 ", \"calls\": %llu, \"total_ns\": %llu, \"first_ns\": %llu, "
                 "\"macs_per_call\": %lld}",
                 (unsigned long long)s.steadyCalls(),
                 (unsigned long long)s.steadyNs(),
                 (unsigned long long)s.firstNs.load(), (long long)s.info.macs);
  }
  std::fprintf(f, "\n]}\n");
}

void writeTable(FILE *f, const std::vector<Site *> &sites) {
  double total = 0;
  for (Site *s : sites)
    total += double(s->steadyNs());
  std::fprintf(f,
               "qnt_rt profile (per call site, first-call order; the first "
               "call of each site is excluded)\n"
               "%4s %-10s %8s %11s %10s %6s %9s  %s\n",
               "#", "op", "calls", "total ms", "us/call", "%", "GMAC/s",
               "description");
  for (size_t i = 0; i < sites.size(); ++i) {
    const Site &s = *sites[i];
    uint64_t calls = s.steadyCalls(), ns = s.steadyNs();
    double perCall = calls ? double(ns) / double(calls) : 0;
    double gmacs = s.info.macs && perCall > 0 ? double(s.info.macs) / perCall
                                              : 0; // MAC per ns == GMAC/s
    std::fprintf(f, "%4zu %-10s %8llu %11.3f %10.2f %6.2f ", i, s.op,
                 (unsigned long long)calls, double(ns) * 1e-6, perCall * 1e-3,
                 total > 0 ? 100.0 * double(ns) / total : 0.0);
    if (gmacs > 0)
      std::fprintf(f, "%9.1f", gmacs);
    else
      std::fprintf(f, "%9s", "-");
    std::fprintf(f, "  %s\n", s.info.desc.c_str());
  }
  std::fprintf(f, "total kernel time %.3f ms\n", total * 1e-6);
}

void report() {
  std::vector<Site *> sites;
  {
    std::lock_guard<std::mutex> lock(siteMutex());
    sites = siteList();
  }
  const char *path = std::getenv("QNT_RT_PROFILE_JSON");
  if (path && *path) {
    FILE *f = std::fopen(path, "w");
    if (!f) {
      std::fprintf(stderr, "qnt_rt: cannot write profile to '%s'\n", path);
      writeTable(stderr, sites);
      return;
    }
    writeJson(f, sites);
    std::fclose(f);
    return;
  }
  writeTable(stderr, sites);
  std::fflush(stderr);
}

bool init() {
  const char *v = std::getenv("QNT_RT_PROFILE");
  bool on = v && *v && std::string(v) != "0";
  if (on)
    std::atexit(report);
  return on;
}

} // namespace

bool gEnabled = init();

Site *lookup(const void *key) {
  std::lock_guard<std::mutex> lock(siteMutex());
  auto it = siteMap().find(key);
  return it == siteMap().end() ? nullptr : it->second;
}

Site *create(const void *key, const char *op, SiteInfo info) {
  std::lock_guard<std::mutex> lock(siteMutex());
  auto &slot = siteMap()[key];
  if (!slot) {
    slot = new Site;
    slot->op = op;
    slot->info = std::move(info);
    siteList().push_back(slot);
  }
  return slot;
}

void add(Site *site, uint64_t ns) {
  if (site->all.fetch_add(1, std::memory_order_relaxed) == 0) {
    site->firstNs.store(ns, std::memory_order_relaxed);
    return;
  }
  site->calls.fetch_add(1, std::memory_order_relaxed);
  site->ns.fetch_add(ns, std::memory_order_relaxed);
}

} // namespace prof
} // namespace rt
} // namespace qnt
