//===- ConvTesting.h - Choosing a conv2d implementation ---------*- C++ -*-===//
//
// An entry point (defined in Conv.cpp) that lets tests and benchmarks run a
// conv2d call site on an implementation of their choice.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_CONVTESTING_H
#define QNT_RUNTIME_LIB_CONVTESTING_H

#include <cstddef>
#include <cstdint>

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

#endif // QNT_RUNTIME_LIB_CONVTESTING_H
