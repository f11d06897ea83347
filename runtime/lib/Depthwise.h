//===- Depthwise.h - The runtime's int8 depthwise conv2d --------*- C++ -*-===//
//
// The runtime's own quantized depthwise conv2d (Depthwise.cpp), and an entry
// point that lets tests and benchmarks pick a conv2d implementation.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_DEPTHWISE_H
#define QNT_RUNTIME_LIB_DEPTHWISE_H

// As in Common.h: the C entry points are the library's exported symbols.
#pragma GCC visibility push(default)
#include "qnt/Runtime.h"
#pragma GCC visibility pop

#include <cstddef>
#include <string>

namespace qnt {
namespace rt {

class Kernel;
struct CommonSpec;

/// Creates the depthwise kernel for a quantized conv2d with groups == c ==
/// oc and dilation 1, using `isa` ("avx512_vnni", "avx512", "avx2"), or with
/// `isa` null the widest one the CPU and ONEDNN_MAX_CPU_ISA allow. Returns
/// null when the kernel does not apply, with `why` saying why ("" when the
/// conv is not depthwise at all). `s` must be validated.
Kernel *createDepthwiseConv2d(const qnt_rt_conv2d_params &p,
                              const CommonSpec &s, const void *weight,
                              const void *bias, std::string &why,
                              const char *isa = nullptr);

/// True if this CPU can run the depthwise kernel with `isa` (one of the names
/// above).
bool cpuHasDepthwiseIsa(const char *isa);

/// The per-shape rule of qnt_rt_conv2d's `auto` choice, from the measured
/// speed against oneDNN 2.6's brdgmm_dw (docs/runtime.md): the depthwise
/// kernel wins at stride 1, and at other strides where its automatic ISA
/// runs the 3x3 vpdpbusd kernel (3x3, stride 2, AVX-512 VNNI). For a
/// depthwise conv the kernel takes.
bool depthwiseBeatsOneDnn(const qnt_rt_conv2d_params &p, const CommonSpec &s);

} // namespace rt
} // namespace qnt

/// Testing aid: qnt_rt_conv2d with a chosen implementation. `impl` is
/// "auto" (what qnt_rt_conv2d runs), "fallback" (what it runs without the
/// runtime's own kernels: XNNPACK, oneDNN or the reference kernel), "dwconv"
/// (the depthwise kernel with its automatic ISA), "dwconv:<isa>" (the
/// depthwise kernel with that ISA, if this CPU has it, whatever
/// ONEDNN_MAX_CPU_ISA says) or "stemconv" (StemConv.h's kernel). The kernel is
/// cached in `*slot` as by qnt_rt_conv2d, so `impl` is read on the first call
/// only. Returns 0 after running, -1 if this CPU lacks the ISA, -2 if the
/// chosen kernel does not take the conv; `describe`
/// (`describeLen` bytes, may be 0) receives the kernel's description or why
/// it was not created.
extern "C" __attribute__((visibility("default"))) int
qnt_rt_conv2d_testing(void **slot, const int64_t *params, const float *fparams,
                      const void *src, const void *weight, const void *bias,
                      void *dst, const char *impl, char *describe,
                      size_t describeLen);

#endif // QNT_RUNTIME_LIB_DEPTHWISE_H
