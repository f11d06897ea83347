//===- Pooling.cpp - qnt_rt_pool2d: oneDNN pooling ------------------------===//
//
// Max and average pooling on NHWC tensors with TOSA's semantics, as one
// oneDNN primitive created on the first call of each call site.
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "Kernel.h"
#include "Profile.h"
#include "Xnnpack.h"

#include <cstdio>

using namespace qnt::rt;

namespace {

class DnnlPool : public Kernel {
public:
  explicit DnnlPool(const qnt_rt_pool2d_params &p) {
    using dims = dnnl::memory::dims;
    dt type = toDnnl(p.dtype);
    srcMd = dnnl::memory::desc({p.n, p.c, p.h, p.w}, type, tag::nhwc);
    dstMd = dnnl::memory::desc({p.n, p.c, p.oh, p.ow}, type, tag::nhwc);
    auto algorithm = p.kind == QNT_RT_POOL_MAX
                         ? dnnl::algorithm::pooling_max
                         : dnnl::algorithm::pooling_avg_exclude_padding;
    dnnl::pooling_v2_forward::desc desc(
        dnnl::prop_kind::forward_inference, algorithm, srcMd, dstMd,
        dims{p.stride_h, p.stride_w}, dims{p.kh, p.kw}, dims{0, 0},
        dims{p.pad_top, p.pad_left}, dims{p.pad_bottom, p.pad_right});
    dnnl::pooling_v2_forward::primitive_desc pd(desc, concurrentAttr(),
                                                cpuEngine());
    primitive = Primitive(pd);
  }

  void run(const void *src, void *dst) override {
    dnnl::memory srcMem(srcMd, cpuEngine(), const_cast<void *>(src));
    dnnl::memory dstMem(dstMd, cpuEngine(), dst);
    std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, srcMem},
                                                  {DNNL_ARG_DST, dstMem}};
    primitive.run(args);
  }

  std::string describe() const override { return primitive.describe(); }

private:
  dnnl::memory::desc srcMd, dstMd;
  Primitive primitive;
};

Kernel *createPool(const qnt_rt_pool2d_params &p) {
  if (p.kind != QNT_RT_POOL_MAX && p.kind != QNT_RT_POOL_AVG)
    fatal("pool2d: unknown kind " + std::to_string(p.kind));
  if (p.kind == QNT_RT_POOL_AVG && p.dtype != QNT_RT_F32)
    fatal("pool2d: average pooling is float only");
  if (p.dtype != QNT_RT_F32 && p.dtype != QNT_RT_U8 && p.dtype != QNT_RT_S8)
    fatal(std::string("pool2d: unsupported dtype ") + dtypeName(p.dtype));
  if ((p.h + p.pad_top + p.pad_bottom - p.kh) / p.stride_h + 1 != p.oh ||
      (p.w + p.pad_left + p.pad_right - p.kw) / p.stride_w + 1 != p.ow)
    fatal("pool2d: output shape does not match the window");
  if (p.backend != QNT_RT_BACKEND_ONEDNN && p.backend != QNT_RT_BACKEND_XNNPACK)
    fatal("pool2d: unknown backend " + std::to_string(p.backend));
  if (p.backend == QNT_RT_BACKEND_XNNPACK) {
    std::string why;
    if (Kernel *k = createXnnMaxPool(p, why))
      return k;
    if (verbose())
      std::fprintf(stderr, "qnt_rt: pool2d: XNNPACK not used: %s\n",
                   why.c_str());
  }
  return new DnnlPool(p);
}

} // namespace

extern "C" void qnt_rt_pool2d(void **slot, const int64_t *params,
                              const void *src, void *dst) {
  const auto &p = *reinterpret_cast<const qnt_rt_pool2d_params *>(params);
  Kernel *k = getOrCreate<Kernel>(slot, [&] {
    Kernel *k = createPool(p);
    if (verbose())
      std::fprintf(stderr,
                   "qnt_rt: pool2d %s %s n%ld c%ld %ldx%ld k%ldx%ld: %s\n",
                   p.kind == QNT_RT_POOL_MAX ? "max" : "avg",
                   dtypeName(p.dtype), long(p.n), long(p.c), long(p.h),
                   long(p.w), long(p.kh), long(p.kw), k->describe().c_str());
    return k;
  });
  prof::timed(
      k, "pool2d", [&] { runKernel(*k, src, dst); },
      [&] {
        char d[160];
        std::snprintf(d, sizeof d,
                      "pool2d %s %s n%ld c%ld %ldx%ld k%ldx%ld (%s)",
                      p.kind == QNT_RT_POOL_MAX ? "max" : "avg",
                      dtypeName(p.dtype), long(p.n), long(p.c), long(p.h),
                      long(p.w), long(p.kh), long(p.kw), k->describe().c_str());
        return prof::SiteInfo{d, 0};
      });
}
