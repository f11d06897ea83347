//===- Common.cpp - Internal helpers of the qnt runtime -------------------===//

#include "Common.h"
#include "Kernel.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace qnt {
namespace rt {

void fatal(const std::string &msg) {
  std::fprintf(stderr, "qnt runtime error: %s\n", msg.c_str());
  std::fflush(stderr);
  std::exit(70);
}

dnnl::engine &cpuEngine() {
  static dnnl::engine *eng = [] {
    try {
      return new dnnl::engine(dnnl::engine::kind::cpu, 0);
    } catch (const dnnl::error &e) {
      fatal(std::string("oneDNN: cannot create the CPU engine: ") + e.what());
    }
  }();
  return *eng;
}

namespace {
thread_local dnnl::stream *threadStream = nullptr;

/// Frees the calling thread's stream when the thread ends (LeakSanitizer
/// reported one per thread that ran a oneDNN kernel). Not for the main
/// thread: kernels may run from atexit handlers of other code, after its
/// thread-local destructors.
struct StreamReaper {
  ~StreamReaper() {
    delete threadStream;
    threadStream = nullptr;
  }
};
} // namespace

dnnl::stream &cpuStream() {
  if (!threadStream) {
    try {
      threadStream = new dnnl::stream(cpuEngine());
    } catch (const dnnl::error &e) {
      fatal(std::string("oneDNN: cannot create a stream: ") + e.what());
    }
    if (gettid() != getpid()) {
      thread_local StreamReaper reaper;
      (void)reaper;
    }
  }
  return *threadStream;
}

static bool envFlag(const char *name) {
  const char *v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

bool verbose() {
  static const bool v = envFlag("QNT_RT_VERBOSE");
  return v;
}

bool forceReference() {
  static const bool v = envFlag("QNT_RT_FORCE_REFERENCE");
  return v;
}

bool int8PairSumsMaySaturate() {
#if defined(__x86_64__) || defined(_M_X64)
  switch (dnnl::get_effective_cpu_isa()) {
  case dnnl::cpu_isa::avx512_core_vnni:
  case dnnl::cpu_isa::avx512_core_bf16:
  case dnnl::cpu_isa::avx512_core_amx:
    return false; // vpdpbusd accumulates into int32 without saturation
  default:
    return true;
  }
#else
  return true;
#endif
}

std::mutex &creationMutex() {
  static std::mutex m;
  return m;
}

const char *dtypeName(int64_t dtype) {
  switch (dtype) {
  case QNT_RT_F32:
    return "f32";
  case QNT_RT_U8:
    return "u8";
  case QNT_RT_S8:
    return "s8";
  case QNT_RT_S32:
    return "s32";
  default:
    return "<invalid dtype>";
  }
}

void dtypeRange(int64_t dtype, int64_t &lo, int64_t &hi) {
  switch (dtype) {
  case QNT_RT_U8:
    lo = 0;
    hi = 255;
    return;
  case QNT_RT_S8:
    lo = -128;
    hi = 127;
    return;
  case QNT_RT_S32:
    lo = std::numeric_limits<int32_t>::min();
    hi = std::numeric_limits<int32_t>::max();
    return;
  default:
    fatal(std::string("not a quantized dtype: ") + dtypeName(dtype));
  }
}

void CommonSpec::validate(const char *what, int64_t outChannels) const {
  std::string op(what);
  if (backend != QNT_RT_BACKEND_ONEDNN && backend != QNT_RT_BACKEND_XNNPACK)
    fatal(op + ": unknown backend " + std::to_string(backend));
  if (isFloat()) {
    if (weiDtype != QNT_RT_F32 || dstDtype != QNT_RT_F32)
      fatal(op + ": float kernel needs f32 weights and dst, got " +
            dtypeName(weiDtype) + " / " + dtypeName(dstDtype));
    if (biasKind != QNT_RT_BIAS_NONE && biasKind != QNT_RT_BIAS_F32)
      fatal(op + ": float kernel needs no bias or an f32 bias");
    if (activation < QNT_RT_ACT_NONE || activation > QNT_RT_ACT_CLAMP)
      fatal(op + ": invalid activation " + std::to_string(activation));
    return;
  }
  if (srcDtype != QNT_RT_U8 && srcDtype != QNT_RT_S8)
    fatal(op + ": unsupported src dtype " + dtypeName(srcDtype));
  if (weiDtype != QNT_RT_S8)
    fatal(op + ": quantized kernel needs s8 weights, got " +
          dtypeName(weiDtype));
  if (dstDtype != QNT_RT_U8 && dstDtype != QNT_RT_S8)
    fatal(op + ": unsupported quantized dst dtype " + dtypeName(dstDtype));
  if (biasKind != QNT_RT_BIAS_NONE && biasKind != QNT_RT_BIAS_S32)
    fatal(op + ": quantized kernel needs no bias or an s32 bias");
  if (activation != QNT_RT_ACT_NONE)
    fatal(op + ": quantized kernels express activations as the dst clamp");
  if (scales.size() != 1 && static_cast<int64_t>(scales.size()) != outChannels)
    fatal(op + ": num_scales must be 1 or " + std::to_string(outChannels) +
          ", got " + std::to_string(scales.size()));
  for (float m : scales)
    if (!std::isfinite(m))
      fatal(op + ": non-finite output scale");
  int64_t lo, hi;
  dtypeRange(srcDtype, lo, hi);
  if (srcQmin < lo || srcQmax > hi || srcQmin > srcQmax)
    fatal(op + ": invalid src range [" + std::to_string(srcQmin) + ", " +
          std::to_string(srcQmax) + "]");
  // Keeps src - src_zp within int16 (reference linear packs it so).
  if (srcZp < -(int64_t(1) << 14) || srcZp > (int64_t(1) << 14))
    fatal(op + ": src zero point out of range");
  dtypeRange(dstDtype, lo, hi);
  if (dstQmin < lo || dstQmax > hi || dstQmin > dstQmax)
    fatal(op + ": invalid dst range [" + std::to_string(dstQmin) + ", " +
          std::to_string(dstQmax) + "]");
  if (dstZp < -(int64_t(1) << 24) || dstZp > (int64_t(1) << 24))
    fatal(op + ": dst zero point out of range");
}

int32_t maxAbs(const int8_t *w, int64_t n) {
  int32_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    int32_t a = w[i] < 0 ? -int32_t(w[i]) : int32_t(w[i]);
    m = a > m ? a : m;
  }
  return m;
}

std::string pairSumSaturation(int64_t srcQmax, const int8_t *w, int64_t count) {
  return pairSumSaturation(srcQmax, maxAbs(w, count));
}

std::string pairSumSaturation(int64_t srcQmax, int64_t wmax) {
  // Without VNNI, oneDNN sums pairs of u8 * s8 products in int16 with
  // saturation (vpmaddubsw); the pairs are of raw src values.
  if (int8PairSumsMaySaturate() && 2 * srcQmax * wmax > 32767)
    return "u8 pair sums may saturate: 2 * src_qmax * max|w| = " +
           std::to_string(2 * srcQmax * wmax) + " > 32767";
  return "";
}

std::string selectInt8Path(const CommonSpec &s, const int8_t *w,
                           int64_t outChannels, int64_t k,
                           const int32_t *bias) {
  if (forceReference())
    return "QNT_RT_FORCE_REFERENCE";
  if (s.srcDtype != QNT_RT_U8)
    return "s8 src";
  std::string why = pairSumSaturation(s.srcQmax, w, outChannels * k);
  if (!why.empty())
    return why;
  if (!bias)
    return "";
  // oneDNN computes float(acc') + float(bias) (acc' = the accumulator
  // without bias) where the header says float(acc' + bias). The two agree
  // when |acc'| <= 2^24 and |bias| <= 2^24. A channel whose |acc'| may
  // exceed 2^24 is still exact if then |acc| >= 2^24 - |bias| is so large
  // that both results clamp to the same bound:
  // (2^24 - |bias|) * M >= R + 1, with R the larger distance from dst_zp to
  // dst_qmin / dst_qmax (the +1 absorbs the float rounding of the product).
  const int64_t a =
      std::max({s.srcQmax, std::abs(s.srcQmin - s.srcZp),
                std::abs(s.srcQmax - s.srcZp), std::abs(s.srcZp)});
  const double r = double(
      std::max(std::abs(s.dstQmin - s.dstZp), std::abs(s.dstQmax - s.dstZp)));
  const int64_t two24 = int64_t(1) << 24;
  for (int64_t c = 0; c < outChannels; ++c) {
    const int64_t b = std::abs(int64_t(bias[c]));
    if (b > two24)
      return "bias beyond 2^24 (oneDNN adds it in float)";
    int64_t l1 = 0;
    for (int64_t i = 0; i < k; ++i)
      l1 += std::abs(int32_t(w[c * k + i]));
    if (a * l1 <= two24)
      continue;
    if (double(two24 - b) * double(std::fabs(s.scale(c))) >= r + 1.0)
      continue;
    return "accumulator may exceed 2^24 with a bias and a tiny M (oneDNN "
           "adds the bias in float)";
  }
  return "";
}

} // namespace rt
} // namespace qnt
