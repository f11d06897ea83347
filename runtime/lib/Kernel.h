//===- Kernel.h - Kernel objects stored in call-site slots ------*- C++ -*-===//

#ifndef QNT_RUNTIME_LIB_KERNEL_H
#define QNT_RUNTIME_LIB_KERNEL_H

#include "Common.h"
#include "Xnnpack.h"

#include <cstdio>

#include <string>

namespace qnt {
namespace rt {

/// A created conv2d / linear kernel. Weights and bias were consumed at
/// creation; a call only passes the activations.
class Kernel {
public:
  virtual ~Kernel() = default;
  virtual void run(const void *src, void *dst) = 0;
  /// Which implementation runs (for QNT_RT_VERBOSE).
  virtual std::string describe() const = 0;
};

/// Runs `k`, turning oneDNN errors into fatal().
inline void runKernel(Kernel &k, const void *src, void *dst) {
  try {
    k.run(src, dst);
  } catch (const dnnl::error &e) {
    fatal(std::string("oneDNN: ") + e.what());
  }
}

/// Checks a conv2d's shape fields (fatal() naming `name` if invalid).
void checkConv2dShape(const qnt_rt_conv2d_params &p, const char *name);

/// The multiply-accumulates of a conv2d call on input values inside the
/// image: taps that fall on padding are not counted (they add nothing, and
/// oneDNN's kernels skip them). The profiler's GMAC/s are these per second.
int64_t conv2dMacs(const qnt_rt_conv2d_params &p);

/// Why oneDNN may saturate u8 (at most `srcQmax`) x s8 products of the
/// `count` weights `w` on this CPU, or "" if it cannot.
std::string pairSumSaturation(int64_t srcQmax, const int8_t *w, int64_t count);
/// The same for s8 operands of magnitude at most `wmax`.
std::string pairSumSaturation(int64_t srcQmax, int64_t wmax);

/// Decides whether a quantized kernel may run on oneDNN, which is exact
/// only under conditions checked here (see docs/runtime.md). `w` holds
/// `outChannels` rows of `k` weights, `bias` is int32 [outChannels] or null.
/// Returns "" if oneDNN may be used, else why the reference kernel must be.
std::string selectInt8Path(const CommonSpec &s, const int8_t *w,
                           int64_t outChannels, int64_t k, const int32_t *bias);

/// True if a oneDNN implementation name denotes its slow reference code; the
/// runtime's own reference kernel is used instead for quantized kernels.
inline bool isOneDnnReference(const std::string &impl) {
  return impl.rfind("ref", 0) == 0;
}

/// `create()`s a oneDNN kernel (a class with impl()) when `why` is empty and
/// oneDNN has more than its reference code for it; else null, with `why`
/// saying why the runtime's reference kernel is used.
template <typename Create>
auto tryOneDnn(Create create, std::string &why) -> decltype(create()) {
  if (!why.empty())
    return nullptr;
  try {
    auto *kernel = create();
    if (!isOneDnnReference(kernel->impl()))
      return kernel;
    why = "oneDNN has only " + kernel->impl();
    delete kernel;
  } catch (const dnnl::error &e) {
    if (e.status != dnnl_unimplemented)
      throw;
    why = "no oneDNN implementation";
  }
  return nullptr;
}

/// Creates a conv2d / linear kernel from its spec: oneDNN for float; for
/// quantized kernels XNNPACK if the call site asks for it and XNNPACK takes
/// it, else oneDNN where selectInt8Path allows it and oneDNN has more than
/// its reference code, else the exact reference kernel.
/// `outChannels` rows of `k` weights.
template <typename DnnlKernel, typename RefKernel, typename Params>
Kernel *createWeightedKernel(const char *name, const Params &p,
                             const CommonSpec &s, const void *weight,
                             const void *bias, int64_t outChannels, int64_t k) {
  if ((s.biasKind != QNT_RT_BIAS_NONE) != (bias != nullptr))
    fatal(std::string(name) + ": bias pointer does not match bias_kind");
  if (s.isFloat())
    return new DnnlKernel(p, s, weight, bias);
  if (s.backend == QNT_RT_BACKEND_XNNPACK && !forceReference()) {
    std::string why;
    if (Kernel *kernel = createXnnKernel(p, s, weight, bias, why))
      return kernel;
    if (verbose())
      std::fprintf(stderr, "qnt_rt: %s: XNNPACK not used: %s\n", name,
                   why.c_str());
  }
  std::string why =
      selectInt8Path(s, static_cast<const int8_t *>(weight), outChannels, k,
                     static_cast<const int32_t *>(bias));
  if (auto *kernel =
          tryOneDnn([&] { return new DnnlKernel(p, s, weight, bias); }, why))
    return kernel;
  return new RefKernel(p, s, weight, bias, why);
}

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_KERNEL_H
