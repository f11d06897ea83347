//===- BatchMatmul.cpp - qnt_rt_batch_matmul ------------------------------===//
//
// Batched float matmul of two activations (attention's q k^T and p v) on
// oneDNN's matmul primitive, created on the first call of each call site:
// neither operand is a constant, so nothing is packed ahead.
//
//===----------------------------------------------------------------------===//

#include "Dnnl.h"
#include "Profile.h"

#include <cstdio>

using namespace qnt::rt;
using dnnl::memory;

namespace {

class DnnlBatchMatmul {
public:
  explicit DnnlBatchMatmul(const qnt_rt_batch_matmul_params &p) {
    aMd_ = memory::desc({p.batch, p.m, p.k}, dt::f32, tag::abc);
    bMd_ = memory::desc({p.batch, p.k, p.n}, dt::f32, tag::abc);
    dstMd_ = memory::desc({p.batch, p.m, p.n}, dt::f32, tag::abc);
    dnnl::matmul::desc d(aMd_, bMd_, dstMd_);
    dnnl::matmul::primitive_desc pd(d, concurrentAttr(), cpuEngine());
    impl_ = pd.impl_info_str();
    prim_ = dnnl::matmul(pd);
    scratchpadMd_ = pd.scratchpad_desc();
  }

  void run(const void *a, const void *b, void *dst) const {
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, memory(aMd_, cpuEngine(), const_cast<void *>(a))},
        {DNNL_ARG_WEIGHTS, memory(bMd_, cpuEngine(), const_cast<void *>(b))},
        {DNNL_ARG_DST, memory(dstMd_, cpuEngine(), dst)}};
    execute(prim_, scratchpadMd_, args);
  }

  std::string describe() const { return "oneDNN " + impl_; }

private:
  dnnl::matmul prim_;
  memory::desc aMd_, bMd_, dstMd_, scratchpadMd_;
  std::string impl_;
};

} // namespace

extern "C" void qnt_rt_batch_matmul(void **slot, const int64_t *params,
                                    const void *a, const void *b, void *dst) {
  const auto &p = *reinterpret_cast<const qnt_rt_batch_matmul_params *>(params);
  auto *k = getOrCreate<DnnlBatchMatmul>(slot, [&] {
    if (p.batch <= 0 || p.m <= 0 || p.k <= 0 || p.n <= 0)
      fatal("batch_matmul: invalid params: non-positive dimension");
    if (p.dtype != QNT_RT_F32)
      fatal(std::string("batch_matmul: unsupported dtype ") +
            dtypeName(p.dtype));
    auto *k = new DnnlBatchMatmul(p);
    if (verbose())
      std::fprintf(stderr, "qnt_rt: batch_matmul b%ld m%ld k%ld n%ld: %s\n",
                   long(p.batch), long(p.m), long(p.k), long(p.n),
                   k->describe().c_str());
    return k;
  });
  prof::timed(
      k, "batch_matmul",
      [&] {
        try {
          k->run(a, b, dst);
        } catch (const dnnl::error &e) {
          fatal(std::string("oneDNN: ") + e.what());
        }
      },
      [&] {
        char d[120];
        std::snprintf(d, sizeof d, "batch_matmul f32 b%ld m%ld k%ld n%ld (%s)",
                      long(p.batch), long(p.m), long(p.k), long(p.n),
                      k->describe().c_str());
        return prof::SiteInfo{d, p.batch * p.m * p.k * p.n};
      });
}
