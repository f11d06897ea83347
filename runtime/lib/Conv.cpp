//===- Conv.cpp - qnt_rt_conv2d -------------------------------------------===//
//
// Float conv2d and quantized conv2d with u8 src run on oneDNN; quantized
// conv2d that oneDNN cannot compute exactly runs on RefConv2d; quantized
// depthwise conv2d and the conv2d on few input channels of an image
// network's first layer run on the runtime's own kernels (Depthwise.cpp,
// StemConv.cpp) where they apply (see docs/runtime.md for the selection
// rules).
//
//===----------------------------------------------------------------------===//

#include "ConvTesting.h"
#include "Depthwise.h"
#include "Dnnl.h"
#include "Kernel.h"
#include "Profile.h"
#include "Reference.h"
#include "StemConv.h"

#include <cstdio>
#include <cstring>

using namespace qnt::rt;
using dnnl::memory;

namespace {

class DnnlConv2d final : public Kernel {
public:
  DnnlConv2d(const qnt_rt_conv2d_params &p, const CommonSpec &s,
             const void *weight, const void *bias) {
    const bool grouped = p.groups > 1;
    memory::dims srcDims = {p.n, p.c, p.h, p.w};
    memory::dims dstDims = {p.n, p.oc, p.oh, p.ow};
    memory::dims weiDims = grouped ? memory::dims{p.groups, p.oc / p.groups,
                                                  p.c / p.groups, p.kh, p.kw}
                                   : memory::dims{p.oc, p.c, p.kh, p.kw};
    srcMd_ = memory::desc(srcDims, toDnnl(s.srcDtype), tag::nhwc);
    dstMd_ = memory::desc(dstDims, toDnnl(s.dstDtype), tag::nhwc);
    memory::desc weiAny(weiDims, toDnnl(s.weiDtype), tag::any);
    memory::desc weiUser(weiDims, toDnnl(s.weiDtype),
                         grouped ? tag::gohwi : tag::ohwi);
    memory::desc biasMd;
    hasBias_ = s.biasKind != QNT_RT_BIAS_NONE;
    if (hasBias_)
      biasMd = memory::desc(
          {p.oc}, s.biasKind == QNT_RT_BIAS_F32 ? dt::f32 : dt::s32, tag::x);
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        srcMd_, weiAny, biasMd, dstMd_, {p.stride_h, p.stride_w},
        {p.dilation_h - 1, p.dilation_w - 1}, {p.pad_top, p.pad_left},
        {p.pad_bottom, p.pad_right});
    dnnl::primitive_attr attr = makeAttr(s, 1 << 1, /*runtimeSrcZp=*/true);
    dnnl::convolution_forward::primitive_desc pd(d, attr, cpuEngine());
    prim_ = Primitive(pd);
    wei_ = packWeights(weiUser, weight, pd.weights_desc());
    if (hasBias_)
      bias_ = copyTo(bias, biasMd);
    hasSrcZp_ = !s.isFloat() && s.srcZp != 0;
    if (hasSrcZp_) {
      int32_t zp = static_cast<int32_t>(s.srcZp);
      srcZp_ = copyTo(&zp, memory::desc({1}, dt::s32, tag::x));
    }
  }

  void run(const void *src, void *dst) override {
    // Only the caller's activations are wrapped per call.
    memory srcMem(srcMd_, cpuEngine(), const_cast<void *>(src));
    memory dstMem(dstMd_, cpuEngine(), dst);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, srcMem},
                                            {DNNL_ARG_WEIGHTS, wei_},
                                            {DNNL_ARG_DST, dstMem}};
    if (hasBias_)
      args[DNNL_ARG_BIAS] = bias_;
    if (hasSrcZp_)
      args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = srcZp_;
    prim_.run(args);
  }

  std::string describe() const override { return prim_.describe(); }
  const std::string &impl() const { return prim_.impl; }

private:
  Primitive prim_;
  memory::desc srcMd_, dstMd_;
  memory wei_, bias_, srcZp_;
  bool hasBias_ = false, hasSrcZp_ = false;
};

class RefConv2dKernel final : public Kernel {
public:
  RefConv2dKernel(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                  const void *weight, const void *bias, std::string why)
      : ref_(p, s, static_cast<const int8_t *>(weight),
             static_cast<const int32_t *>(bias)),
        why_(std::move(why)) {}
  void run(const void *src, void *dst) override { ref_.run(src, dst); }
  std::string describe() const override { return "reference (" + why_ + ")"; }

private:
  RefConv2d ref_;
  std::string why_;
};

/// The implementations createConv2d may choose from.
struct Conv2dChoice {
  enum Kind {
    Auto,      // qnt_rt_conv2d's choice
    Fallback,  // without the runtime's own kernels (depthwise, stem)
    Depthwise, // only the depthwise kernel (with `isa`, or the automatic one)
    Stem,      // only the stem kernel
  } kind = Auto;
  const char *isa = nullptr;
};

/// Creates the kernel of a conv2d call site, or null if `choice` excludes
/// every implementation that takes it (`why` says why).
Kernel *createConv2d(const int64_t *params, const float *fparams,
                     const void *weight, const void *bias,
                     const Conv2dChoice &choice, std::string &why) {
  const auto &p = *reinterpret_cast<const qnt_rt_conv2d_params *>(params);
  checkConv2dShape(p, "conv2d");
  CommonSpec s = readCommon(p, fparams);
  s.validate("conv2d", p.oc);
  // The depthwise kernel serves the oneDNN backend (the one `auto` uses for
  // convolutions); a call site that asks for XNNPACK gets XNNPACK. Where it
  // is not faster than oneDNN (depthwiseBeatsOneDnn, measured with
  // bench/dwconv_bench.cpp), oneDNN keeps the conv unless only the reference
  // kernel would take it.
  auto depthwiseWins = [&] {
    return depthwiseBeatsOneDnn(p, s) ||
           !selectInt8Path(s, static_cast<const int8_t *>(weight), p.oc,
                           p.kh * p.kw * (p.c / p.groups),
                           static_cast<const int32_t *>(bias))
                .empty();
  };
  const bool tryDepthwise =
      choice.kind == Conv2dChoice::Depthwise ||
      (choice.kind == Conv2dChoice::Auto &&
       s.backend == QNT_RT_BACKEND_ONEDNN && !forceReference() &&
       !s.isFloat() && depthwiseWins());
  if (tryDepthwise) {
    if (Kernel *k = createDepthwiseConv2d(p, s, weight, bias, why, choice.isa))
      return k;
    if (!why.empty() && verbose())
      std::fprintf(stderr, "qnt_rt: conv2d: qnt dwconv not used: %s\n",
                   why.c_str());
  }
  if (choice.kind == Conv2dChoice::Depthwise) {
    if (why.empty())
      why = "not a quantized depthwise conv2d";
    return nullptr;
  }
  const bool tryStem =
      choice.kind == Conv2dChoice::Stem ||
      (choice.kind == Conv2dChoice::Auto &&
       s.backend == QNT_RT_BACKEND_ONEDNN && !forceReference() &&
       !s.isFloat() && stemConvBeatsOneDnn(p, s));
  if (tryStem) {
    if (Kernel *k = createStemConv2d(p, s, weight, bias, why))
      return k;
    if (choice.kind == Conv2dChoice::Stem)
      return nullptr;
    if (verbose())
      std::fprintf(stderr, "qnt_rt: conv2d: qnt stemconv not used: %s\n",
                   why.c_str());
  }
  return createWeightedKernel<DnnlConv2d, RefConv2dKernel>(
      "conv2d", p, s, weight, bias, p.oc, p.kh * p.kw * (p.c / p.groups));
}

/// Runs `k` on the call site's profile entry.
void runConv2d(Kernel *k, const int64_t *params, const void *src, void *dst) {
  prof::timed(
      k, "conv2d", [&] { runKernel(*k, src, dst); },
      [&] {
        const auto &p = *reinterpret_cast<const qnt_rt_conv2d_params *>(params);
        char d[160];
        std::snprintf(
            d, sizeof d,
            "conv2d %s n%ld c%ld %ldx%ld -> oc%ld %ldx%ld k%ldx%ld s%ld "
            "g%ld",
            dtypeName(p.src_dtype), long(p.n), long(p.c), long(p.h), long(p.w),
            long(p.oc), long(p.oh), long(p.ow), long(p.kh), long(p.kw),
            long(p.stride_h), long(p.groups));
        return prof::SiteInfo{std::string(d) + " (" + k->describe() + ")",
                              conv2dMacs(p)};
      });
}

} // namespace

void qnt::rt::checkConv2dShape(const qnt_rt_conv2d_params &p,
                               const char *name) {
  auto fail = [&](const std::string &what) {
    fatal(std::string(name) + ": invalid params: " + what);
  };
  if (p.n <= 0 || p.h <= 0 || p.w <= 0 || p.c <= 0 || p.oc <= 0 || p.kh <= 0 ||
      p.kw <= 0 || p.oh <= 0 || p.ow <= 0)
    fail("non-positive dimension");
  if (p.stride_h <= 0 || p.stride_w <= 0 || p.dilation_h <= 0 ||
      p.dilation_w <= 0 || p.pad_top < 0 || p.pad_bottom < 0 ||
      p.pad_left < 0 || p.pad_right < 0)
    fail("bad stride / dilation / padding");
  if (p.groups <= 0 || p.c % p.groups || p.oc % p.groups)
    fail("groups must divide c and oc");
  int64_t oh =
      (p.h + p.pad_top + p.pad_bottom - p.dilation_h * (p.kh - 1) - 1) /
          p.stride_h +
      1;
  int64_t ow =
      (p.w + p.pad_left + p.pad_right - p.dilation_w * (p.kw - 1) - 1) /
          p.stride_w +
      1;
  if (oh != p.oh || ow != p.ow)
    fail("output " + std::to_string(p.oh) + "x" + std::to_string(p.ow) +
         " does not match the computed " + std::to_string(oh) + "x" +
         std::to_string(ow));
}

/// The kernel taps of one output position along an axis of `size` inputs
/// that fall inside it, summed over the `outSize` output positions.
static int64_t tapsInside(int64_t size, int64_t outSize, int64_t kernel,
                          int64_t stride, int64_t dilation, int64_t padBefore) {
  int64_t taps = 0;
  for (int64_t o = 0; o < outSize; ++o)
    for (int64_t k = 0; k < kernel; ++k) {
      int64_t i = o * stride - padBefore + k * dilation;
      taps += i >= 0 && i < size;
    }
  return taps;
}

int64_t qnt::rt::conv2dMacs(const qnt_rt_conv2d_params &p) {
  return p.n * p.oc * (p.c / p.groups) *
         tapsInside(p.h, p.oh, p.kh, p.stride_h, p.dilation_h, p.pad_top) *
         tapsInside(p.w, p.ow, p.kw, p.stride_w, p.dilation_w, p.pad_left);
}

extern "C" void qnt_rt_conv2d(void **slot, const int64_t *params,
                              const float *fparams, const void *src,
                              const void *weight, const void *bias, void *dst) {
  Kernel *k = getOrCreate<Kernel>(slot, [&] {
    std::string why;
    Kernel *k = createConv2d(params, fparams, weight, bias, {}, why);
    if (verbose()) {
      const auto &p = *reinterpret_cast<const qnt_rt_conv2d_params *>(params);
      std::fprintf(stderr,
                   "qnt_rt: conv2d %s n%ld c%ld %ldx%ld -> oc%ld k%ldx%ld "
                   "g%ld: %s\n",
                   dtypeName(p.src_dtype), long(p.n), long(p.c), long(p.h),
                   long(p.w), long(p.oc), long(p.kh), long(p.kw),
                   long(p.groups), k->describe().c_str());
    }
    return k;
  });
  runConv2d(k, params, src, dst);
}

extern "C" int qnt_rt_conv2d_testing(void **slot, const int64_t *params,
                                     const float *fparams, const void *src,
                                     const void *weight, const void *bias,
                                     void *dst, const char *impl,
                                     char *describe, size_t describeLen) {
  Conv2dChoice choice;
  if (std::strcmp(impl, "fallback") == 0) {
    choice.kind = Conv2dChoice::Fallback;
  } else if (std::strncmp(impl, "dwconv", 6) == 0) {
    choice.kind = Conv2dChoice::Depthwise;
    if (impl[6] == ':')
      choice.isa = impl + 7;
    else if (impl[6] != 0)
      fatal(std::string("qnt_rt_conv2d_testing: unknown impl ") + impl);
  } else if (std::strcmp(impl, "stemconv") == 0) {
    choice.kind = Conv2dChoice::Stem;
  } else if (std::strcmp(impl, "auto") != 0) {
    fatal(std::string("qnt_rt_conv2d_testing: unknown impl ") + impl);
  }
  auto report = [&](const std::string &text) {
    if (describeLen)
      std::snprintf(describe, describeLen, "%s", text.c_str());
  };
  if (choice.isa && !cpuHasDepthwiseIsa(choice.isa)) {
    report(std::string("this CPU has no ") + choice.isa);
    return -1;
  }
  if (choice.kind == Conv2dChoice::Stem && !cpuHasStemIsa()) {
    report("this CPU has no avx512_vnni");
    return -1;
  }
  std::string why;
  Kernel *k = getOrCreate<Kernel>(slot, [&] {
    return createConv2d(params, fparams, weight, bias, choice, why);
  });
  if (!k) {
    report(why);
    return -2;
  }
  runConv2d(k, params, src, dst);
  report(k->describe());
  return 0;
}
