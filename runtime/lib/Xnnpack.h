//===- Xnnpack.h - XNNPACK kernels of the qnt runtime -----------*- C++ -*-===//
//
// Quantized conv2d, linear, add and max pooling on XNNPACK's operator API
// (qc8 convolution: s8 activations, per-channel s8 weights, fp32
// requantization). Each create function returns null and sets `why` when
// XNNPACK cannot compute the kernel as qnt/Runtime.h defines it; the caller
// then uses its oneDNN / reference path.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_XNNPACK_H
#define QNT_RUNTIME_LIB_XNNPACK_H

#include "Common.h"

namespace qnt {
namespace rt {

class Kernel;

Kernel *createXnnKernel(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                        const void *weight, const void *bias, std::string &why);
Kernel *createXnnKernel(const qnt_rt_linear_params &p, const CommonSpec &s,
                        const void *weight, const void *bias, std::string &why);
Kernel *createXnnMaxPool(const qnt_rt_pool2d_params &p, std::string &why);

/// A quantized elementwise add on XNNPACK.
class BinaryKernel {
public:
  virtual ~BinaryKernel() = default;
  virtual void run(const void *a, const void *b, void *dst) = 0;
  virtual std::string describe() const = 0;
};
BinaryKernel *createXnnAdd(const qnt_rt_add_params &p, const float *fparams,
                           std::string &why);

/// Thread count of XNNPACK's thread pool (qnt_rt_set_num_threads).
void setXnnNumThreads(int n);

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_XNNPACK_H
