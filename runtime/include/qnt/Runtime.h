/*===- qnt/Runtime.h - C ABI of the qnt kernel runtime ---------*- C -*-===*\
|*                                                                          *|
|* The compiler (--qnt-lower-to-runtime) emits calls to these functions.    *|
|* Every kernel entry point has the same shape:                             *|
|*                                                                          *|
|*   void qnt_rt_X(void **slot, const int64_t *params, const float *fparams, *|
|*                 <data pointers>);                                        *|
|*                                                                          *|
|* `slot` is a per-call-site global, zero at load time: the runtime creates *|
|* the kernel (primitive, prepacked weights) on the first call and keeps it *|
|* there. `params` is a constant array laid out exactly as the matching     *|
|* `qnt_rt_X_params` struct below (every field int64_t, so the struct and   *|
|* the array agree), `fparams` a constant float array whose layout each     *|
|* struct documents. All tensors are dense, row-major, NHWC for images.     *|
|* Every function may be called from several threads at once, kernels also  *|
|* at one call site (docs/runtime.md, "Threads").                           *|
|*                                                                          *|
\*===----------------------------------------------------------------------===*/

#ifndef QNT_RUNTIME_H
#define QNT_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of kernel operands. */
enum qnt_rt_dtype {
  QNT_RT_F32 = 0,
  QNT_RT_U8 = 1,
  QNT_RT_S8 = 2,
  QNT_RT_S32 = 3,
};

/* Kernel library a call site asks for (the last field of the conv2d,
 * linear, add and pool2d params). XNNPACK serves quantized (u8/s8) conv2d,
 * linear, add and max pooling; other kernels, and any that XNNPACK rejects
 * (QNT_RT_VERBOSE says why), run on oneDNN / the reference kernels. */
enum qnt_rt_backend {
  QNT_RT_BACKEND_ONEDNN = 0,
  QNT_RT_BACKEND_XNNPACK = 1,
};

/* Fused activation of a float kernel. Quantized kernels express their
 * activation as the integer clamp [dst_qmin, dst_qmax] instead. */
enum qnt_rt_activation {
  QNT_RT_ACT_NONE = 0,
  QNT_RT_ACT_RELU = 1,
  QNT_RT_ACT_CLAMP = 2, /* clamp to [fparams[0], fparams[1]] */
};

/* Bias operand of conv2d / linear. */
enum qnt_rt_bias {
  QNT_RT_BIAS_NONE = 0,
  QNT_RT_BIAS_F32 = 1, /* float, added to the float result */
  QNT_RT_BIAS_S32 = 2, /* int32 in units of S_in * S_w[c], added to acc */
};

/* Fields shared by conv2d and linear after their shapes.
 *
 * Float kernel (src_dtype == F32): dst = act(conv(src, w) + bias).
 * Quantized kernel (u8/s8 src, s8 weights, u8/s8 dst):
 *   acc[c] = sum((src - src_zp) * w)  + bias_s32[c]          (exact int32)
 *   dst    = clamp(rint(float(acc[c]) * M[c]) + dst_zp, dst_qmin, dst_qmax)
 * with rint rounding half to even and M = fparams[2 .. 2 + num_scales).
 * Weights are symmetric (zero point 0).
 * (Runtime notes, docs/runtime.md: `params`, `fparams`, `weight` and
 * `bias` are read on the first call of a call site only, so they must be
 * constant; an accumulator beyond the int32 range saturates to it. The float
 * kernel uses fparams[0..1] only for QNT_RT_ACT_CLAMP.) */
#define QNT_RT_COMMON_FIELDS                                                   \
  int64_t src_dtype;  /* qnt_rt_dtype */                                       \
  int64_t wei_dtype;  /* qnt_rt_dtype */                                       \
  int64_t dst_dtype;  /* qnt_rt_dtype */                                       \
  int64_t bias_kind;  /* qnt_rt_bias */                                        \
  int64_t activation; /* qnt_rt_activation (float kernels only) */             \
  int64_t src_zp;                                                              \
  int64_t src_qmin;                                                            \
  int64_t src_qmax;                                                            \
  int64_t dst_zp;                                                              \
  int64_t dst_qmin;                                                            \
  int64_t dst_qmax;                                                            \
  int64_t num_scales; /* 1 (per tensor) or the output channel count */         \
  int64_t backend;    /* qnt_rt_backend */

/* fparams: [clamp_min, clamp_max, M[0], ..., M[num_scales - 1]].
 * dynamic_qparams (qnt_rt_dynamic_qparams) is read by
 * qnt_rt_conv2d_dynamic only. */
typedef struct qnt_rt_conv2d_params {
  int64_t n, h, w, c; /* input, NHWC */
  int64_t oc, kh, kw; /* weight, OHWI: [oc, kh, kw, c / groups] */
  int64_t oh, ow;     /* output, NHWC: [n, oh, ow, oc] */
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t dilation_h, dilation_w;
  int64_t groups;
  QNT_RT_COMMON_FIELDS
  int64_t dynamic_qparams; /* qnt_rt_conv2d_dynamic only */
} qnt_rt_conv2d_params;

/* How qnt_rt_linear_dynamic / qnt_rt_conv2d_dynamic choose their input's
 * per-call parameters. */
enum qnt_rt_dynamic_qparams {
  QNT_RT_DYNAMIC_PYTORCH = 0,     /* ChooseQuantizationParams, x * (1 / S) */
  QNT_RT_DYNAMIC_ONNXRUNTIME = 1, /* DynamicQuantizeLinear, x / S */
};

/* dst[m, n] = src[m, :] . weight[n, :] (+ bias[n]); weight is [n, k].
 * dynamic_qparams (qnt_rt_dynamic_qparams) is read by qnt_rt_linear_dynamic
 * only. */
typedef struct qnt_rt_linear_params {
  int64_t m, k, n;
  QNT_RT_COMMON_FIELDS
  int64_t dynamic_qparams;
} qnt_rt_linear_params;

void qnt_rt_conv2d(void **slot, const int64_t *params, const float *fparams,
                   const void *src, const void *weight, const void *bias,
                   void *dst);
void qnt_rt_linear(void **slot, const int64_t *params, const float *fparams,
                   const void *src, const void *weight, const void *bias,
                   void *dst);

/* Dynamic quantization (PyTorch's quantize_dynamic) of a linear layer: per
 * call, the float input's range [min(x, 0), max(x, 0)] gives u8 parameters
 * as PyTorch's ChooseQuantizationParams computes them (in double, qmin =
 * src_qmin, qmax = src_qmax: 255, or 127 for reduce_range; a scale below
 * 6.1e-5 is raised to it) and q = clamp(rint(x * f32(1 / S)) + Z); or, with
 * dynamic_qparams QNT_RT_DYNAMIC_ONNXRUNTIME, as ONNX's
 * DynamicQuantizeLinear (src_qmin 0, src_qmax 255, all in f32):
 *   S = max == min ? 1 : (max - min) / 255,  Z = rint(clamp(0 - min / S,
 *   0, 255)),  q = clamp(rint(x / S) + Z, 0, 255).
 * The input is quantized, multiplied with the s8 weights exactly in int32,
 * and the result is float:
 *   dst[m, n] = act(float(acc[m, n]) * (S_in * S_w[n]) + bias[n])
 * params: qnt_rt_linear_params with src_dtype F32, wei_dtype S8, dst_dtype
 * F32, bias_kind NONE or F32, activation NONE or RELU; fparams:
 * [clamp_min, clamp_max, S_w[0], ..., S_w[num_scales - 1]]. */
void qnt_rt_linear_dynamic(void **slot, const int64_t *params,
                           const float *fparams, const void *src,
                           const void *weight, const void *bias, void *dst);

/* Dynamic quantization of a conv2d (ONNX Runtime's DynamicQuantizeLinear ->
 * ConvInteger -> Cast -> Mul form): the f32 NHWC input is quantized per call
 * as qnt_rt_linear_dynamic's is (dynamic_qparams), convolved with the OHWI
 * s8 weights exactly in int32 (padding contributes 0, i.e. the input's zero
 * point), and the result is float:
 *   dst[n, oh, ow, c] = act(float(acc) * (S_in * S_w[c]) + bias[c])
 * params: qnt_rt_conv2d_params with src_dtype F32, wei_dtype S8, dst_dtype
 * F32, bias_kind NONE or F32, activation NONE, RELU or CLAMP; fparams:
 * [clamp_min, clamp_max, S_w[0], ..., S_w[num_scales - 1]]. */
void qnt_rt_conv2d_dynamic(void **slot, const int64_t *params,
                           const float *fparams, const void *src,
                           const void *weight, const void *bias, void *dst);

/* 2-D pooling, NHWC, with TOSA's semantics: max over the window (padding
 * never wins), or the average over the window's elements inside the input
 * (padding excluded from the divisor, TOSA avg_pool2d). F32, or U8/S8 for
 * max (the quantization parameters pass through unchanged). */
enum qnt_rt_pool_kind {
  QNT_RT_POOL_MAX = 0,
  QNT_RT_POOL_AVG = 1,
};
typedef struct qnt_rt_pool2d_params {
  int64_t n, h, w, c; /* input, NHWC */
  int64_t oh, ow;     /* output [n, oh, ow, c] */
  int64_t kh, kw;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t kind;    /* qnt_rt_pool_kind */
  int64_t dtype;   /* qnt_rt_dtype */
  int64_t backend; /* qnt_rt_backend */
} qnt_rt_pool2d_params;
void qnt_rt_pool2d(void **slot, const int64_t *params, const void *src,
                   void *dst);

/* Batched matmul of two activations (attention scores q k^T and context
 * p v): dst[i] = a[i] x b[i] for i < batch, with a [batch, m, k], b
 * [batch, k, n] (b_transposed: [batch, n, k], b[i]^T is used) and dst
 * [batch, m, n], row-major.
 * Float (dtype F32): dst = a x b; fparams may be null.
 * Quantized (dtype U8 or S8 for a, b and dst, per tensor):
 *   acc = sum_t (a[r, t] - a_zp) * (b[t, j] - b_zp)            exact int32
 *   dst = clamp(rint(float(acc) * M) + dst_zp, dst_qmin, dst_qmax)
 * with fparams [M] = [Sa * Sb / Sdst]. [a_qmin, a_qmax] and [b_qmin,
 * b_qmax] are the ranges the operands' values lie in (their quantized
 * types' ranges); kernels are chosen by them. */
typedef struct qnt_rt_batch_matmul_params {
  int64_t batch, m, k, n;
  int64_t dtype; /* qnt_rt_dtype */
  int64_t b_transposed;
  int64_t a_zp, a_qmin, a_qmax;
  int64_t b_zp, b_qmin, b_qmax;
  int64_t dst_zp, dst_qmin, dst_qmax;
} qnt_rt_batch_matmul_params;
void qnt_rt_batch_matmul(void **slot, const int64_t *params,
                         const float *fparams, const void *a, const void *b,
                         void *dst);

/* Elementwise add of two tensors of the same shape.
 * Float: dst = a + b (then relu).
 * Quantized: r = float(a - a_zp) * Sa + float(b - b_zp) * Sb  (relu: max(r,0))
 *            dst = clamp(rint(r * (1 / Sout)) + dst_zp, dst_qmin, dst_qmax)
 * fparams: [Sa, Sb, Sout]. */
typedef struct qnt_rt_add_params {
  int64_t numel;
  int64_t dtype; /* of a, b and dst */
  int64_t relu;
  int64_t a_zp, b_zp, dst_zp, dst_qmin, dst_qmax;
  int64_t backend; /* qnt_rt_backend */
} qnt_rt_add_params;
void qnt_rt_add(void **slot, const int64_t *params, const float *fparams,
                const void *a, const void *b, void *dst);

/* Affine (de)quantization, per tensor or per axis. (add, quantize,
 * dequantize, fake_quant and observe keep no per-call-site state: their slot
 * is unused. NaN quantizes to qmin.)
 * The tensor is viewed as [outer, channels, inner]; channel i uses
 * scale fparams[i] and zero point zero_points[i] (channels == 1: per tensor).
 *   quantize:   q = clamp(rint(x * (1 / S)) + Z, qmin, qmax), or with
 *               `divide` clamp(rint(x / S) + Z, qmin, qmax) (ONNX's
 *               QuantizeLinear, for qnt.numerics = "onnxruntime")
 *   dequantize: x = float(q - Z) * S
 *   fake_quant: dequantize(quantize(x)), float in and out. */
typedef struct qnt_rt_quant_params {
  int64_t outer, channels, inner;
  int64_t qdtype; /* U8 / S8 / S32 */
  int64_t qmin, qmax;
  int64_t divide; /* quantize only: 1 divides by S */
} qnt_rt_quant_params;
void qnt_rt_quantize(void **slot, const int64_t *params, const float *scales,
                     const int64_t *zero_points, const float *src, void *dst);
void qnt_rt_dequantize(void **slot, const int64_t *params, const float *scales,
                       const int64_t *zero_points, const void *src, float *dst);
void qnt_rt_fake_quant(void **slot, const int64_t *params, const float *scales,
                       const int64_t *zero_points, const float *src,
                       float *dst);

/* Calibration observers. `id` is the observer's NUL-terminated id. The
 * tensor is viewed as [outer, channels, inner]; a per-tensor observer has
 * channels == 1. Statistics accumulate in a process-wide table; each call
 * is one "batch" in PyTorch's sense (its forward()).
 *   MINMAX / PER_CHANNEL_MINMAX: running min / max (MinMaxObserver,
 *     PerChannelMinMaxObserver).
 *   MOVING_AVERAGE_(PER_CHANNEL_)MINMAX: the first batch sets min / max,
 *     later ones move them by `averaging_constant` (fparams[0]), as
 *     MovingAverage(PerChannel)MinMaxObserver.
 *   HISTOGRAM: PyTorch's HistogramObserver accumulation (`bins` bins,
 *     upsample rate `upsample_rate`), bit for bit; the range search happens
 *     in the compiler (percentile and entropy observers use it too). */
enum qnt_rt_observer_kind {
  QNT_RT_OBS_MINMAX = 0,
  QNT_RT_OBS_PER_CHANNEL_MINMAX = 1,
  QNT_RT_OBS_MOVING_AVERAGE_MINMAX = 2,
  QNT_RT_OBS_MOVING_AVERAGE_PER_CHANNEL_MINMAX = 3,
  QNT_RT_OBS_HISTOGRAM = 4,
};
typedef struct qnt_rt_observe_params {
  int64_t outer, channels, inner;
  int64_t kind;          /* qnt_rt_observer_kind */
  int64_t bins;          /* HISTOGRAM only */
  int64_t upsample_rate; /* HISTOGRAM only */
} qnt_rt_observe_params;
/* fparams: [averaging_constant] (moving-average kinds; unused otherwise). */
void qnt_rt_observe(void **slot, const int64_t *params, const float *fparams,
                    const char *id, const float *src);

/* Heap buffers of compiled code. The lowering allocates intermediate and
 * result tensors through these (finalize-memref-to-llvm with
 * use-generic-functions); the runtime keeps freed blocks of 64 KiB and more
 * per size for reuse, so steady-state inference takes no memory from the
 * kernel. A buffer a compiled function returns is released with
 * qnt_rt_buffer_free (which also accepts malloc'ed pointers). */
#include <stddef.h>
void *_mlir_memref_to_llvm_alloc(size_t size);
void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t size);
void _mlir_memref_to_llvm_free(void *ptr);
void qnt_rt_buffer_free(void *ptr);

/* Host API (used by quant-run and tests, never by compiled code). */
/* The most threads the runtime accepts: libgomp crashes creating 100000. */
#define QNT_RT_MAX_NUM_THREADS 1024
/* Sets the kernels' thread count (OpenMP pool of the calling thread, and
 * XNNPACK's pool). Returns 0, or -1 leaving the count unchanged if `n` is
 * not in [1, QNT_RT_MAX_NUM_THREADS]. */
int qnt_rt_set_num_threads(int n);
/* Runs body(context, begin, end) over [0, n) split into one contiguous
 * range per thread of the kernels' OpenMP pool (the loops qnt generates
 * itself; --qnt-outline-parallel-loops). Inside a parallel region, or with
 * one thread, it runs body(context, 0, n) on the calling thread. */
typedef void (*qnt_rt_parallel_body)(void *context, int64_t begin, int64_t end);
void qnt_rt_parallel_for(qnt_rt_parallel_body body, void *context, int64_t n);
void qnt_rt_stats_reset(void);
/* Number of NaN/Inf values seen by all observers so far. */
int64_t qnt_rt_stats_nonfinite_count(void);
/* Writes the statistics table as JSON (docs/calibration.md) to `path`,
 * atomically (temporary file + rename). Returns 0 on success, else -1 with a
 * message in `err` (at most `err_len` bytes). */
int qnt_rt_stats_write_json(const char *path, int64_t num_samples, char *err,
                            int64_t err_len);
/* Sets the statistics of observer `id` to those a statistics file holds
 * (a calibration continued over more data: quant-run --resume-stats), as
 * if the runtime had recorded them: `params` a qnt_rt_observe_params
 * (kind, channels, bins, upsample_rate; outer / inner unused), `min` /
 * `max` one value per channel (+inf / -inf where no finite value was
 * seen; the histogram's range for HISTOGRAM), `hist` `bins` counts
 * (HISTOGRAM only), `counts` {count, calls, nonfinite}. Returns 0, or -1
 * with a message in `err` (at most `err_len` bytes). */
int qnt_rt_stats_restore(const char *id, const int64_t *params,
                         float averaging_constant, const float *min,
                         const float *max, const float *hist,
                         const int64_t *counts, char *err, int64_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* QNT_RUNTIME_H */
