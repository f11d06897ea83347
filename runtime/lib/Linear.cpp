//===- Linear.cpp - qnt_rt_linear -----------------------------------------===//
//
// linear runs on the oneDNN matmul primitive (inner_product has no zero
// points): src [m, k] x weight^T ([n, k] stored, i.e. a {k, n} matrix in
// `ba` order) -> dst [m, n]. Quantized linear that oneDNN cannot compute
// exactly runs on RefLinear.
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "Kernel.h"
#include "Profile.h"
#include "Reference.h"

#include <cstdio>

using namespace qnt::rt;
using dnnl::memory;

namespace {

class DnnlLinear final : public Kernel {
public:
  DnnlLinear(const qnt_rt_linear_params &p, const CommonSpec &s,
             const void *weight, const void *bias) {
    srcMd_ = memory::desc({p.m, p.k}, toDnnl(s.srcDtype), tag::ab);
    dstMd_ = memory::desc({p.m, p.n}, toDnnl(s.dstDtype), tag::ab);
    memory::desc weiAny({p.k, p.n}, toDnnl(s.weiDtype), tag::any);
    memory::desc weiUser({p.k, p.n}, toDnnl(s.weiDtype), tag::ba);
    memory::desc biasMd;
    hasBias_ = s.biasKind != QNT_RT_BIAS_NONE;
    if (hasBias_)
      biasMd = memory::desc(
          {1, p.n}, s.biasKind == QNT_RT_BIAS_F32 ? dt::f32 : dt::s32, tag::ab);
    dnnl::matmul::desc d(srcMd_, weiAny, biasMd, dstMd_);
    dnnl::primitive_attr attr = makeAttr(s, 1 << 1, /*runtimeSrcZp=*/false);
    dnnl::matmul::primitive_desc pd(d, attr, cpuEngine());
    prim_ = Primitive(pd);
    wei_ = packWeights(weiUser, weight, pd.weights_desc());
    if (hasBias_)
      bias_ = copyTo(bias, biasMd);
  }

  void run(const void *src, void *dst) override {
    memory srcMem(srcMd_, cpuEngine(), const_cast<void *>(src));
    memory dstMem(dstMd_, cpuEngine(), dst);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, srcMem},
                                            {DNNL_ARG_WEIGHTS, wei_},
                                            {DNNL_ARG_DST, dstMem}};
    if (hasBias_)
      args[DNNL_ARG_BIAS] = bias_;
    prim_.run(args);
  }

  std::string describe() const override { return prim_.describe(); }
  const std::string &impl() const { return prim_.impl; }

private:
  Primitive prim_;
  memory::desc srcMd_, dstMd_;
  memory wei_, bias_;
  bool hasBias_ = false;
};

class RefLinearKernel final : public Kernel {
public:
  RefLinearKernel(const qnt_rt_linear_params &p, const CommonSpec &s,
                  const void *weight, const void *bias, std::string why)
      : ref_(p, s, static_cast<const int8_t *>(weight),
             static_cast<const int32_t *>(bias)),
        why_(std::move(why)) {}
  void run(const void *src, void *dst) override { ref_.run(src, dst); }
  std::string describe() const override { return "reference (" + why_ + ")"; }

private:
  RefLinear ref_;
  std::string why_;
};

Kernel *createLinear(const int64_t *params, const float *fparams,
                     const void *weight, const void *bias) {
  const auto &p = *reinterpret_cast<const qnt_rt_linear_params *>(params);
  if (p.m <= 0 || p.k <= 0 || p.n <= 0)
    fatal("linear: invalid params: non-positive dimension");
  CommonSpec s = readCommon(p, fparams);
  s.validate("linear", p.n);
  return createWeightedKernel<DnnlLinear, RefLinearKernel>(
      "linear", p, s, weight, bias, p.n, p.k);
}

} // namespace

extern "C" void qnt_rt_linear(void **slot, const int64_t *params,
                              const float *fparams, const void *src,
                              const void *weight, const void *bias, void *dst) {
  Kernel *k = getOrCreate<Kernel>(slot, [&] {
    Kernel *k = createLinear(params, fparams, weight, bias);
    if (verbose()) {
      const auto &p = *reinterpret_cast<const qnt_rt_linear_params *>(params);
      std::fprintf(stderr, "qnt_rt: linear %s m%ld k%ld n%ld: %s\n",
                   dtypeName(p.src_dtype), long(p.m), long(p.k), long(p.n),
                   k->describe().c_str());
    }
    return k;
  });
  prof::timed(
      k, "linear", [&] { runKernel(*k, src, dst); },
      [&] {
        const auto &p = *reinterpret_cast<const qnt_rt_linear_params *>(params);
        char d[120];
        std::snprintf(d, sizeof d, "linear %s m%ld k%ld n%ld",
                      dtypeName(p.src_dtype), long(p.m), long(p.k), long(p.n));
        return prof::SiteInfo{std::string(d) + " (" + k->describe() + ")",
                              p.m * p.k * p.n};
      });
}
