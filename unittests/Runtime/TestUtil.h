//===- TestUtil.h - Helpers of the runtime unit tests -----------*- C++ -*-===//
//
// Independent scalar references for the kernels of qnt/Runtime.h, written
// straight from the header's formulas (deliberately not sharing code with
// the runtime).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_UNITTESTS_RUNTIME_TESTUTIL_H
#define QNT_UNITTESTS_RUNTIME_TESTUTIL_H

#include "qnt/Runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace qnt_test {

/// Test name of a (case, qnt_rt_backend) parameter: "<case>_<backend>".
template <typename Case>
std::string backendTestName(const std::tuple<Case, int64_t> &param) {
  return std::string(std::get<0>(param).name) +
         (std::get<1>(param) == QNT_RT_BACKEND_XNNPACK ? "_xnnpack"
                                                       : "_onednn");
}

/// rint() in the default rounding mode: half to even.
inline int64_t rintf64(float x) {
  return static_cast<int64_t>(std::nearbyint(x));
}

inline int64_t clampI(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/// dst = clamp(rint(float(acc) * M) + zp, qmin, qmax)
inline int64_t requant(int64_t acc, float m, int64_t zp, int64_t qmin,
                       int64_t qmax) {
  return clampI(rintf64(static_cast<float>(acc) * m) + zp, qmin, qmax);
}

/// Stores integer values as `dtype` (U8 / S8 / S32) bytes.
inline std::vector<uint8_t> pack(const std::vector<int64_t> &v, int64_t dtype) {
  size_t es = dtype == QNT_RT_S32 ? 4 : 1;
  std::vector<uint8_t> out(v.size() * es);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == QNT_RT_U8)
      out[i] = static_cast<uint8_t>(v[i]);
    else if (dtype == QNT_RT_S8)
      reinterpret_cast<int8_t *>(out.data())[i] = static_cast<int8_t>(v[i]);
    else
      reinterpret_cast<int32_t *>(out.data())[i] = static_cast<int32_t>(v[i]);
  }
  return out;
}

inline std::vector<int64_t> unpack(const std::vector<uint8_t> &b,
                                   int64_t dtype) {
  size_t es = dtype == QNT_RT_S32 ? 4 : 1;
  std::vector<int64_t> out(b.size() / es);
  for (size_t i = 0; i < out.size(); ++i) {
    if (dtype == QNT_RT_U8)
      out[i] = b[i];
    else if (dtype == QNT_RT_S8)
      out[i] = reinterpret_cast<const int8_t *>(b.data())[i];
    else
      out[i] = reinterpret_cast<const int32_t *>(b.data())[i];
  }
  return out;
}

inline std::vector<int64_t> randInts(std::mt19937 &rng, size_t n, int64_t lo,
                                     int64_t hi) {
  std::uniform_int_distribution<int64_t> d(lo, hi);
  std::vector<int64_t> v(n);
  for (auto &x : v)
    x = d(rng);
  return v;
}

inline std::vector<float> randFloats(std::mt19937 &rng, size_t n, float lo,
                                     float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto &x : v)
    x = d(rng);
  return v;
}

inline int64_t dtypeMin(int64_t dtype) {
  return dtype == QNT_RT_U8 ? 0 : dtype == QNT_RT_S8 ? -128 : INT32_MIN;
}
inline int64_t dtypeMax(int64_t dtype) {
  return dtype == QNT_RT_U8 ? 255 : dtype == QNT_RT_S8 ? 127 : INT32_MAX;
}

} // namespace qnt_test

#endif // QNT_UNITTESTS_RUNTIME_TESTUTIL_H
