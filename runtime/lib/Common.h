//===- Common.h - Internal helpers of the qnt runtime -----------*- C++ -*-===//
//
// Shared by the kernel implementations: fatal errors, the process-wide oneDNN
// engine, call-site slot handling, the common quantization fields of conv2d /
// linear, and exact integer requantization.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_COMMON_H
#define QNT_RUNTIME_LIB_COMMON_H

// The library is built with hidden visibility; the C entry points declared by
// the public header are the only exported symbols.
#pragma GCC visibility push(default)
#include "qnt/Runtime.h"
#pragma GCC visibility pop

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace qnt {
namespace rt {

/// Prints "qnt runtime error: <msg>" to stderr and exits with status 70.
/// Used for conditions that can only come from a compiler bug or a oneDNN
/// failure.
[[noreturn]] void fatal(const std::string &msg);

/// Process-wide CPU engine.
dnnl::engine &cpuEngine();
/// CPU stream of the calling thread.
dnnl::stream &cpuStream();

/// True if QNT_RT_VERBOSE is set: kernel creation prints the chosen path.
bool verbose();
/// True if QNT_RT_FORCE_REFERENCE is set: quantized conv2d / linear always use
/// the exact reference kernels (testing aid).
bool forceReference();
/// True if oneDNN's u8 x s8 kernels on this CPU may saturate intermediate
/// int16 pair sums (AVX2 / AVX-512 without VNNI use vpmaddubsw; non-x86 ISAs
/// are treated conservatively).
bool int8PairSumsMaySaturate();

/// Serializes kernel creation.
std::mutex &creationMutex();

/// Returns the kernel stored in `*slot`, creating it with `create()` (which
/// returns a `T *`) on the first call. Creation is serialized, so concurrent
/// first calls of one call site create the kernel once. Kernels live until
/// the process exits.
template <typename T, typename Create>
T *getOrCreate(void **slot, Create create) {
  void *k = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (k)
    return static_cast<T *>(k);
  std::lock_guard<std::mutex> lock(creationMutex());
  k = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!k) {
    T *created = nullptr;
    try {
      created = create();
    } catch (const dnnl::error &e) {
      fatal(std::string("oneDNN: ") + e.what());
    }
    k = created;
    __atomic_store_n(slot, k, __ATOMIC_RELEASE);
  }
  return static_cast<T *>(k);
}

const char *dtypeName(int64_t dtype);
/// Storage range of a quantized dtype (U8, S8, S32).
void dtypeRange(int64_t dtype, int64_t &lo, int64_t &hi);

/// The QNT_RT_COMMON_FIELDS of conv2d / linear plus their fparams.
struct CommonSpec {
  int64_t srcDtype, weiDtype, dstDtype, biasKind, activation;
  int64_t srcZp, srcQmin, srcQmax, dstZp, dstQmin, dstQmax;
  int64_t backend;
  float clampMin, clampMax;
  std::vector<float> scales; // M, size 1 or the output channel count

  bool isFloat() const { return srcDtype == QNT_RT_F32; }
  /// Checks the fields for a kernel with `outChannels` outputs; fatal() if
  /// the combination is not supported. `what` names the op.
  void validate(const char *what, int64_t outChannels) const;
  float scale(int64_t c) const {
    return scales.size() == 1 ? scales[0] : scales[c];
  }
};

template <typename P> CommonSpec readCommon(const P &p, const float *fparams) {
  CommonSpec s;
  s.srcDtype = p.src_dtype;
  s.weiDtype = p.wei_dtype;
  s.dstDtype = p.dst_dtype;
  s.biasKind = p.bias_kind;
  s.activation = p.activation;
  s.srcZp = p.src_zp;
  s.srcQmin = p.src_qmin;
  s.srcQmax = p.src_qmax;
  s.dstZp = p.dst_zp;
  s.dstQmin = p.dst_qmin;
  s.dstQmax = p.dst_qmax;
  s.backend = p.backend;
  s.clampMin = fparams ? fparams[0] : 0.0f;
  s.clampMax = fparams ? fparams[1] : 0.0f;
  if (p.num_scales >= 1 && fparams)
    s.scales.assign(fparams + 2, fparams + 2 + p.num_scales);
  return s;
}

/// Exact requantization of an int32 accumulator:
///   clamp(rint(float(acc) * M) + dstZp, dstQmin, dstQmax)
/// The accumulator is given as int64 and saturated to the int32 range first.
struct Requant {
  float lo, hi; // dstQmin - dstZp, dstQmax - dstZp (exact in float)
  int32_t zp;

  explicit Requant(const CommonSpec &s)
      : lo(static_cast<float>(s.dstQmin - s.dstZp)),
        hi(static_cast<float>(s.dstQmax - s.dstZp)),
        zp(static_cast<int32_t>(s.dstZp)) {}

  int32_t operator()(int64_t acc, float m) const {
    constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
    int32_t a = static_cast<int32_t>(acc < kMin   ? kMin
                                     : acc > kMax ? kMax
                                                  : acc);
    float x = std::nearbyint(static_cast<float>(a) * m);
    x = x < lo ? lo : x > hi ? hi : x;
    return static_cast<int32_t>(x) + zp;
  }
};

/// Weight statistics used for kernel selection.
int32_t maxAbs(const int8_t *w, int64_t n);

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_COMMON_H
