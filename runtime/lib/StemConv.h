//===- StemConv.h - The runtime's int8 conv2d on few channels ---*- C++ -*-===//
//
// The runtime's own quantized conv2d for few input channels (StemConv.cpp):
// the first layer of an image network.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_STEMCONV_H
#define QNT_RUNTIME_LIB_STEMCONV_H

// As in Common.h: the C entry points are the library's exported symbols.
#pragma GCC visibility push(default)
#include "qnt/Runtime.h"
#pragma GCC visibility pop

#include <string>

namespace qnt {
namespace rt {

class Kernel;
struct CommonSpec;

/// Creates the stem kernel (AVX-512 VNNI) for a quantized conv2d with
/// groups 1 and dilation 1, or returns null with `why` saying why it does
/// not apply. `s` must be validated.
Kernel *createStemConv2d(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                         const void *weight, const void *bias,
                         std::string &why);

/// True if this CPU has the kernel's ISA (AVX-512 VNNI).
bool cpuHasStemIsa();

/// The per-shape rule of qnt_rt_conv2d's `auto` choice, from the measured
/// speed against oneDNN 2.6 (docs/runtime.md, "Stem conv2d"); false where
/// the CPU or ONEDNN_MAX_CPU_ISA lacks AVX-512 VNNI.
bool stemConvBeatsOneDnn(const qnt_rt_conv2d_params &p, const CommonSpec &s);

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_STEMCONV_H
