//===- Xnnpack.cpp - XNNPACK kernels of the qnt runtime -------------------===//
//
// Quantized conv2d and linear run on XNNPACK's qc8 convolution (per-channel
// weights, fp32 requantization). It is given input and output scale 1 and
// the runtime's multipliers M[c] as the weight scales, so its requantization
// scale is M[c] itself and it computes
//   clamp(rint(float(acc) * M[c]) + dst_zp, dst_qmin, dst_qmax)
// as qnt/Runtime.h defines (docs/runtime.md, "XNNPACK"). qc8 takes s8
// activations: u8 tensors are shifted by 128 on the way in and out (exact).
// Linear is a 1x1 convolution over m pixels (XNNPACK has no per-channel
// fully connected operator). Add uses XNNPACK's qs8 / qu8 add, whose
// fixed-point arithmetic is within 1 LSB of the float formula; max pooling
// is exact.
//
//===----------------------------------------------------------------------===//

#include "Xnnpack.h"
#include "Kernel.h"

#include <pthreadpool.h>
#include <xnnpack.h>

#include <omp.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>

using namespace qnt::rt;

namespace {

const char *statusName(xnn_status status) {
  switch (status) {
  case xnn_status_success:
    return "success";
  case xnn_status_uninitialized:
    return "uninitialized";
  case xnn_status_invalid_parameter:
    return "invalid parameter";
  case xnn_status_invalid_state:
    return "invalid state";
  case xnn_status_unsupported_parameter:
    return "unsupported parameter";
  case xnn_status_unsupported_hardware:
    return "unsupported hardware";
  case xnn_status_out_of_memory:
    return "out of memory";
  }
  return "unknown status";
}

/// Initializes XNNPACK once; "" on success, else why it is unavailable.
std::string initialize() {
  static const xnn_status status = xnn_initialize(/*allocator=*/nullptr);
  if (status == xnn_status_success)
    return "";
  return std::string("XNNPACK initialization failed: ") + statusName(status);
}

/// Fails the run (a setup / run error after a successful creation can only
/// come from a runtime bug).
void check(xnn_status status, const char *what) {
  if (status != xnn_status_success)
    fatal(std::string("XNNPACK: ") + what + ": " + statusName(status));
}

//===----------------------------------------------------------------------===//
// Thread pool
//===----------------------------------------------------------------------===//

/// A pthreadpool, destroyed when its last user lets go of it.
using SharedPool = std::shared_ptr<pthreadpool>;

std::mutex poolMutex;
SharedPool pool;
int poolThreads = 0;
int requestedThreads = 0; // 0: OpenMP's default

/// The shared pool (null: run on the calling thread), held by the caller for
/// the duration of one operator run. pthreadpool runs one parallel call at a
/// time, so runs of different call sites may share it. When the thread count
/// changes, a new pool replaces it; runs on other threads that still use the
/// old one finish on it, and the last of them destroys it (destroying it
/// here, while they ran, was a use after free). Operators are created with
/// XNN_FLAG_YIELD_WORKERS, so idle workers do not spin against oneDNN's
/// OpenMP threads.
SharedPool threadPool() {
  std::lock_guard<std::mutex> lock(poolMutex);
  int want = requestedThreads > 0 ? requestedThreads : omp_get_max_threads();
  if (want != poolThreads) {
    pthreadpool_t created = want > 1 ? pthreadpool_create(want) : nullptr;
    pool = created ? SharedPool(created, pthreadpool_destroy) : nullptr;
    poolThreads = want;
  }
  return pool;
}

//===----------------------------------------------------------------------===//
// Signed views of u8 tensors
//===----------------------------------------------------------------------===//

/// Flips the sign bit: u8 q with zero point z is s8 q - 128 with z - 128.
void flipSign(const void *src, void *dst, int64_t n) {
  const uint8_t *s = static_cast<const uint8_t *>(src);
  uint8_t *d = static_cast<uint8_t *>(dst);
  for (int64_t i = 0; i < n; ++i)
    d[i] = s[i] ^ 0x80;
}

/// Where XNNPACK may read an operand of `bytes` bytes: XNNPACK reads up to
/// XNN_EXTRA_BYTES past the end. That is harmless unless the end lies within
/// XNN_EXTRA_BYTES of a page boundary (the next page may be unmapped); only
/// then is the operand copied into `scratch`.
const void *paddedSource(const void *src, int64_t bytes,
                         std::vector<uint8_t> &scratch) {
  constexpr uintptr_t kPage = 4096;
  uintptr_t last = reinterpret_cast<uintptr_t>(src) + bytes - 1;
  if (last / kPage == (last + XNN_EXTRA_BYTES) / kPage)
    return src;
  std::memcpy(scratch.data(), src, bytes);
  return scratch.data();
}

//===----------------------------------------------------------------------===//
// conv2d / linear
//===----------------------------------------------------------------------===//

/// Shape of a conv2d / linear as an XNNPACK convolution.
struct ConvShape {
  uint32_t padTop, padRight, padBottom, padLeft, kh, kw, strideH, strideW,
      dilationH, dilationW, groups;
  size_t groupIn, groupOut, batch, h, w;
  int64_t srcElems, dstElems;
};

class XnnConv final : public Kernel {
public:
  XnnConv(const ConvShape &shape, const CommonSpec &s, xnn_operator_t op,
          std::string name)
      : shape_(shape), op_(op), srcU8_(s.srcDtype == QNT_RT_U8),
        dstU8_(s.dstDtype == QNT_RT_U8), name_(std::move(name)),
        scratch_(shape.srcElems + XNN_EXTRA_BYTES) {}
  ~XnnConv() override { xnn_delete_operator(op_); }

  void run(const void *src, void *dst) override {
    // An operator holds its setup: one call at a time per call site.
    std::lock_guard<std::mutex> lock(mutex_);
    const void *in = src;
    if (srcU8_) {
      flipSign(src, scratch_.data(), shape_.srcElems);
      in = scratch_.data();
    } else {
      in = paddedSource(src, shape_.srcElems, scratch_);
    }
    SharedPool threads = threadPool();
    check(xnn_setup_convolution2d_nhwc_qc8(
              op_, shape_.batch, shape_.h, shape_.w,
              static_cast<const int8_t *>(in), static_cast<int8_t *>(dst),
              threads.get()),
          "setup convolution");
    check(xnn_run_operator(op_, threads.get()), "run convolution");
    if (dstU8_)
      flipSign(dst, dst, shape_.dstElems);
  }

  std::string describe() const override {
    return "XNNPACK qc8 " + name_ + (srcU8_ || dstU8_ ? " (u8 shifted)" : "");
  }

private:
  ConvShape shape_;
  xnn_operator_t op_;
  bool srcU8_, dstU8_;
  std::string name_;
  std::vector<uint8_t> scratch_;
  std::mutex mutex_;
};

/// Shifts a zero point / bound of `dtype` to its s8 view.
int64_t toSigned(int64_t v, int64_t dtype) {
  return dtype == QNT_RT_U8 ? v - 128 : v;
}

Kernel *createXnnConv(const ConvShape &shape, const CommonSpec &s,
                      const void *weight, const void *bias, int64_t outChannels,
                      std::string name, std::string &why) {
  if (s.isFloat()) {
    why = "float kernels run on oneDNN";
    return nullptr;
  }
  why = initialize();
  if (!why.empty())
    return nullptr;
  int64_t srcZp = toSigned(s.srcZp, s.srcDtype);
  if (srcZp < -128 || srcZp > 127) {
    why = "src zero point outside the int8 range";
    return nullptr;
  }
  int64_t dstZp = toSigned(s.dstZp, s.dstDtype);
  if (dstZp < -128 || dstZp > 127) {
    why = "dst zero point outside the int8 range";
    return nullptr;
  }
  std::vector<float> scales(outChannels);
  for (int64_t c = 0; c < outChannels; ++c) {
    scales[c] = s.scale(c);
    // XNNPACK requires normal positive scales below 256.
    if (!(scales[c] >= std::numeric_limits<float>::min() && scales[c] < 256)) {
      why = "requantization multiplier outside XNNPACK's (0, 256)";
      return nullptr;
    }
  }
  xnn_operator_t op = nullptr;
  xnn_status status = xnn_create_convolution2d_nhwc_qc8(
      shape.padTop, shape.padRight, shape.padBottom, shape.padLeft, shape.kh,
      shape.kw, shape.strideH, shape.strideW, shape.dilationH, shape.dilationW,
      shape.groups, shape.groupIn, shape.groupOut,
      /*input_channel_stride=*/shape.groups * shape.groupIn,
      /*output_channel_stride=*/shape.groups * shape.groupOut,
      static_cast<int8_t>(srcZp), /*input_scale=*/1.0f, scales.data(),
      static_cast<const int8_t *>(weight), static_cast<const int32_t *>(bias),
      static_cast<int8_t>(dstZp), /*output_scale=*/1.0f,
      static_cast<int8_t>(toSigned(s.dstQmin, s.dstDtype)),
      static_cast<int8_t>(toSigned(s.dstQmax, s.dstDtype)),
      XNN_FLAG_YIELD_WORKERS, &op);
  if (status != xnn_status_success) {
    why = std::string("XNNPACK rejects it: ") + statusName(status);
    return nullptr;
  }
  return new XnnConv(shape, s, op, std::move(name));
}

//===----------------------------------------------------------------------===//
// max pooling
//===----------------------------------------------------------------------===//

class XnnMaxPool final : public Kernel {
public:
  XnnMaxPool(const qnt_rt_pool2d_params &p, xnn_operator_t op)
      : p_(p), op_(op), scratch_(p.n * p.h * p.w * p.c + XNN_EXTRA_BYTES) {}
  ~XnnMaxPool() override { xnn_delete_operator(op_); }

  void run(const void *src, void *dst) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const void *in = paddedSource(src, p_.n * p_.h * p_.w * p_.c, scratch_);
    SharedPool threads = threadPool();
    if (p_.dtype == QNT_RT_U8)
      check(xnn_setup_max_pooling2d_nhwc_u8(
                op_, p_.n, p_.h, p_.w, static_cast<const uint8_t *>(in),
                static_cast<uint8_t *>(dst), threads.get()),
            "setup max pooling");
    else
      check(xnn_setup_max_pooling2d_nhwc_s8(
                op_, p_.n, p_.h, p_.w, static_cast<const int8_t *>(in),
                static_cast<int8_t *>(dst), threads.get()),
            "setup max pooling");
    check(xnn_run_operator(op_, threads.get()), "run max pooling");
  }

  std::string describe() const override { return "XNNPACK max pooling"; }

private:
  qnt_rt_pool2d_params p_;
  xnn_operator_t op_;
  std::vector<uint8_t> scratch_;
  std::mutex mutex_;
};

//===----------------------------------------------------------------------===//
// add
//===----------------------------------------------------------------------===//

class XnnAdd final : public BinaryKernel {
public:
  XnnAdd(const qnt_rt_add_params &p, xnn_operator_t op)
      : p_(p), op_(op), scratchA_(p.numel + XNN_EXTRA_BYTES),
        scratchB_(p.numel + XNN_EXTRA_BYTES) {}
  ~XnnAdd() override { xnn_delete_operator(op_); }

  void run(const void *a, const void *b, void *dst) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const void *pa = paddedSource(a, p_.numel, scratchA_);
    const void *pb = paddedSource(b, p_.numel, scratchB_);
    size_t shape[1] = {static_cast<size_t>(p_.numel)};
    SharedPool threads = threadPool();
    if (p_.dtype == QNT_RT_U8)
      check(xnn_setup_add_nd_qu8(op_, 1, shape, 1, shape,
                                 static_cast<const uint8_t *>(pa),
                                 static_cast<const uint8_t *>(pb),
                                 static_cast<uint8_t *>(dst), threads.get()),
            "setup add");
    else
      check(xnn_setup_add_nd_qs8(op_, 1, shape, 1, shape,
                                 static_cast<const int8_t *>(pa),
                                 static_cast<const int8_t *>(pb),
                                 static_cast<int8_t *>(dst), threads.get()),
            "setup add");
    check(xnn_run_operator(op_, threads.get()), "run add");
  }

  std::string describe() const override {
    return p_.dtype == QNT_RT_U8 ? "XNNPACK qu8 add" : "XNNPACK qs8 add";
  }

private:
  qnt_rt_add_params p_;
  xnn_operator_t op_;
  std::vector<uint8_t> scratchA_, scratchB_;
  std::mutex mutex_;
};

} // namespace

namespace qnt {
namespace rt {

Kernel *createXnnKernel(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                        const void *weight, const void *bias,
                        std::string &why) {
  ConvShape shape{};
  shape.padTop = p.pad_top, shape.padRight = p.pad_right;
  shape.padBottom = p.pad_bottom, shape.padLeft = p.pad_left;
  shape.kh = p.kh, shape.kw = p.kw;
  shape.strideH = p.stride_h, shape.strideW = p.stride_w;
  shape.dilationH = p.dilation_h, shape.dilationW = p.dilation_w;
  shape.groups = p.groups;
  shape.groupIn = p.c / p.groups, shape.groupOut = p.oc / p.groups;
  shape.batch = p.n, shape.h = p.h, shape.w = p.w;
  shape.srcElems = p.n * p.h * p.w * p.c;
  shape.dstElems = p.n * p.oh * p.ow * p.oc;
  bool depthwise = p.groups == p.c && p.groups > 1;
  return createXnnConv(shape, s, weight, bias, p.oc,
                       depthwise ? "depthwise conv" : "conv", why);
}

Kernel *createXnnKernel(const qnt_rt_linear_params &p, const CommonSpec &s,
                        const void *weight, const void *bias,
                        std::string &why) {
  ConvShape shape{};
  shape.kh = shape.kw = shape.strideH = shape.strideW = 1;
  shape.dilationH = shape.dilationW = shape.groups = 1;
  shape.groupIn = p.k, shape.groupOut = p.n;
  shape.batch = p.m, shape.h = shape.w = 1;
  shape.srcElems = p.m * p.k;
  shape.dstElems = p.m * p.n;
  return createXnnConv(shape, s, weight, bias, p.n, "1x1 conv (linear)", why);
}

Kernel *createXnnMaxPool(const qnt_rt_pool2d_params &p, std::string &why) {
  if (p.kind != QNT_RT_POOL_MAX ||
      (p.dtype != QNT_RT_U8 && p.dtype != QNT_RT_S8)) {
    why = "XNNPACK serves quantized max pooling only";
    return nullptr;
  }
  why = initialize();
  if (!why.empty())
    return nullptr;
  xnn_operator_t op = nullptr;
  xnn_status status;
  if (p.dtype == QNT_RT_U8)
    status = xnn_create_max_pooling2d_nhwc_u8(
        p.pad_top, p.pad_right, p.pad_bottom, p.pad_left, p.kh, p.kw,
        p.stride_h, p.stride_w, 1, 1, p.c, p.c, p.c, 0, 255,
        XNN_FLAG_YIELD_WORKERS, &op);
  else
    status = xnn_create_max_pooling2d_nhwc_s8(
        p.pad_top, p.pad_right, p.pad_bottom, p.pad_left, p.kh, p.kw,
        p.stride_h, p.stride_w, 1, 1, p.c, p.c, p.c, -128, 127,
        XNN_FLAG_YIELD_WORKERS, &op);
  if (status != xnn_status_success) {
    why = std::string("XNNPACK rejects it: ") + statusName(status);
    return nullptr;
  }
  return new XnnMaxPool(p, op);
}

BinaryKernel *createXnnAdd(const qnt_rt_add_params &p, const float *fparams,
                           std::string &why) {
  if (p.dtype != QNT_RT_U8 && p.dtype != QNT_RT_S8) {
    why = "XNNPACK serves u8 / s8 add only";
    return nullptr;
  }
  why = initialize();
  if (!why.empty())
    return nullptr;
  int64_t lo = p.dtype == QNT_RT_U8 ? 0 : -128;
  int64_t hi = p.dtype == QNT_RT_U8 ? 255 : 127;
  for (int64_t zp : {p.a_zp, p.b_zp, p.dst_zp})
    if (zp < lo || zp > hi) {
      why = "zero point outside the storage range";
      return nullptr;
    }
  // ReLU: the float result is clamped at 0, which quantizes to dst_zp.
  int64_t qmin = p.relu ? std::max(p.dst_qmin, p.dst_zp) : p.dst_qmin;
  xnn_operator_t op = nullptr;
  xnn_status status;
  if (p.dtype == QNT_RT_U8)
    status = xnn_create_add_nd_qu8(p.a_zp, fparams[0], p.b_zp, fparams[1],
                                   p.dst_zp, fparams[2], qmin, p.dst_qmax,
                                   XNN_FLAG_YIELD_WORKERS, &op);
  else
    status = xnn_create_add_nd_qs8(p.a_zp, fparams[0], p.b_zp, fparams[1],
                                   p.dst_zp, fparams[2], qmin, p.dst_qmax,
                                   XNN_FLAG_YIELD_WORKERS, &op);
  if (status != xnn_status_success) {
    why = std::string("XNNPACK rejects it: ") + statusName(status);
    return nullptr;
  }
  return new XnnAdd(p, op);
}

void setXnnNumThreads(int n) {
  std::lock_guard<std::mutex> lock(poolMutex);
  requestedThreads = n;
}

} // namespace rt
} // namespace qnt
