//===- DynamicQuantize.h - Per-call quantization of float inputs -*- C++
//-*-===//
//
// Shared by the dynamically quantized kernels (qnt_rt_linear_dynamic,
// qnt_rt_conv2d_dynamic): the input's u8 parameters chosen per call from its
// range, as PyTorch's quantize_dynamic or ONNX's DynamicQuantizeLinear does,
// the quantization itself, and the exact u8 x s8 dot product of the
// reference loops.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_DYNAMICQUANTIZE_H
#define QNT_RUNTIME_LIB_DYNAMICQUANTIZE_H

#include "Common.h"

#include <cstdint>
#include <vector>

// The per-call loops get AVX2 and AVX-512 clones on x86 (rounding is one
// vroundps there; baseline x86-64 has no vector round), picked at load time
// by an ifunc resolver. Not under the sanitizers: an instrumented resolver
// runs before their runtime is initialized and crashes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&         \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define QNT_RT_VECTOR_CLONES                                                   \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QNT_RT_VECTOR_CLONES
#endif

namespace qnt {
namespace rt {

struct DynamicParams {
  float scale;
  int32_t zeroPoint;
};

/// PyTorch 1.13's quant_utils::ChooseQuantizationParams (no sparsity
/// preservation, no power-of-two scale), with [qmin, qmax] already reduced
/// when reduce_range applies.
DynamicParams chooseQuantizationParams(float min, float max, int32_t qmin,
                                       int32_t qmax);

/// ONNX's DynamicQuantizeLinear (u8), as ONNX Runtime computes it: all in
/// f32, the zero point clamped before it is rounded.
DynamicParams chooseOnnxRuntimeParams(float min, float max);

/// Quantizes the `n` floats `x` into `q` with parameters chosen from their
/// range [min(x, 0), max(x, 0)] (NaNs skipped; none left: around 0) as
/// `kind` (qnt_rt_dynamic_qparams) says: PyTorch's (q = clamp(rint(x * (1 /
/// S)) + Z, qmin, qmax)) or DynamicQuantizeLinear's (x / S, [0, 255]). A NaN
/// becomes qmin. Long inputs are split across the kernels' threads.
DynamicParams quantizeDynamic(const float *x, int64_t n, int64_t kind,
                              int32_t qmin, int32_t qmax, uint8_t *q);

/// sum_i x[i] * w[i] of u8 x s8 in int32: exact for k <= kMaxExactK (255 *
/// 128 * k < 2^31), and a loop the compiler vectorizes with widening
/// multiplies (NEON smlal / umlal on AArch64, vpmaddwd on x86).
constexpr int64_t kMaxExactK = (int64_t(1) << 31) / (255 * 128) - 1;
int32_t dotU8S8(const uint8_t *x, const int8_t *w, int64_t k);

/// A per-thread buffer of at least `count` elements (calls on one thread
/// run one at a time; concurrent calls on other threads have their own).
template <typename T> T *threadBuffer(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count)
    buffer.resize(count);
  return buffer.data();
}

/// Whether the spec of a dynamic linear / conv2d with `channels` output
/// channels is one its kernels take: f32 in and out, s8 weights, an f32
/// bias exactly when `bias` is given, a u8 range for the input
/// ([0, 255] with ONNX Runtime's `dynamicQparams`), one scale or one per
/// channel.
inline bool isDynamicSpec(const CommonSpec &s, int64_t dynamicQparams,
                          const void *bias, int64_t channels) {
  return s.srcDtype == QNT_RT_F32 && s.weiDtype == QNT_RT_S8 &&
         s.dstDtype == QNT_RT_F32 &&
         (s.biasKind == QNT_RT_BIAS_F32) == (bias != nullptr) &&
         s.biasKind != QNT_RT_BIAS_S32 && s.srcQmin >= 0 && s.srcQmax <= 255 &&
         s.srcQmin < s.srcQmax &&
         (dynamicQparams == QNT_RT_DYNAMIC_PYTORCH ||
          (dynamicQparams == QNT_RT_DYNAMIC_ONNXRUNTIME && s.srcQmin == 0 &&
           s.srcQmax == 255)) &&
         (s.scales.size() == 1 || int64_t(s.scales.size()) == channels);
}

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_DYNAMICQUANTIZE_H
