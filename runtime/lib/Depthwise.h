//===- Depthwise.h - The runtime's int8 depthwise conv2d --------*- C++ -*-===//
//
// The runtime's own quantized depthwise conv2d (Depthwise.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_DEPTHWISE_H
#define QNT_RUNTIME_LIB_DEPTHWISE_H

// As in Common.h: the C entry points are the library's exported symbols.
#pragma GCC visibility push(default)
#include "qnt/Runtime.h"
#pragma GCC visibility pop

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

#endif // QNT_RUNTIME_LIB_DEPTHWISE_H
