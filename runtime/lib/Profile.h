//===- Profile.h - Per-call-site kernel timing (QNT_RT_PROFILE) -*- C++ -*-===//
//
// With QNT_RT_PROFILE=1 the runtime accumulates, per call site (kernel object,
// or the slot of a stateless kernel), the number of calls and the wall time
// of each kernel execution, plus MACs per call and a description. At exit it
// prints a table to stderr, or writes JSON to $QNT_RT_PROFILE_JSON if set.
// When the variable is unset the cost is one load of a flag per call.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_PROFILE_H
#define QNT_RUNTIME_LIB_PROFILE_H

#include <chrono>
#include <cstdint>
#include <string>

namespace qnt {
namespace rt {
namespace prof {

/// Set once at library load from QNT_RT_PROFILE.
extern bool gEnabled;

/// What a call site is, computed on its first profiled call only.
struct SiteInfo {
  std::string desc;
  int64_t macs = 0; // per call (conv2d / linear), 0 otherwise
};

struct Site;
/// Finds or creates the entry of `key` (thread-safe).
Site *lookup(const void *key);
Site *create(const void *key, const char *op, SiteInfo info);
void add(Site *site, uint64_t ns);

/// Runs `run()`; when profiling, times it and records it under `key`.
/// `describe()` returns the SiteInfo, called on the site's first call.
template <typename Run, typename Describe>
inline void timed(const void *key, const char *op, Run &&run,
                  Describe &&describe) {
  if (__builtin_expect(!gEnabled, 1)) {
    run();
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  run();
  auto t1 = std::chrono::steady_clock::now();
  Site *s = lookup(key);
  if (!s)
    s = create(key, op, describe());
  add(s, uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                      .count()));
}

} // namespace prof
} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_PROFILE_H
