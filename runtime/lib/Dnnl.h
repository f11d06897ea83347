//===- Dnnl.h - oneDNN helpers of the qnt runtime ---------------*- C++ -*-===//

#ifndef QNT_RUNTIME_LIB_DNNL_H
#define QNT_RUNTIME_LIB_DNNL_H

#include "Common.h"

#include <string>
#include <unordered_map>

namespace qnt {
namespace rt {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dt toDnnl(int64_t dtype);

/// Attributes with a user-managed scratchpad, which every primitive of the
/// runtime is created with, so that a primitive may run from several threads
/// at once (see execute()).
dnnl::primitive_attr concurrentAttr();

/// Builds the primitive attributes of a conv2d / linear kernel (on top of
/// concurrentAttr()).
/// Float: the activation as an eltwise post-op.
/// Quantized (oneDNN computes saturate(round(post_ops(M * (acc + bias))) +
/// dst_zp)): output scales (mask `scaleMask` when per channel), the dst zero
/// point, and as post-ops the clamp [dst_qmin - dst_zp, dst_qmax - dst_zp]
/// (only if narrower than the dtype) and, when dst_zp != 0, an explicit
/// round: oneDNN adds the zero point before rounding, which differs from
/// rint(x) + dst_zp at ties when dst_zp is odd. When src_zp != 0 the source
/// zero point is set too, as a runtime value (passed at execution) if
/// `runtimeSrcZp`, else as a constant.
dnnl::primitive_attr makeAttr(const CommonSpec &s, int scaleMask,
                              bool runtimeSrcZp);

/// Executes `prim` with `args` on the calling thread's stream and waits.
/// `scratchpadMd` is the primitive's scratchpad_desc(): when non-empty, the
/// scratchpad is a buffer of the calling thread.
void execute(const dnnl::primitive &prim,
             const dnnl::memory::desc &scratchpadMd,
             std::unordered_map<int, dnnl::memory> &args);

/// A oneDNN primitive with what running and describing it take: its
/// scratchpad descriptor and implementation name.
struct Primitive {
  dnnl::primitive prim;
  dnnl::memory::desc scratchpad;
  std::string impl;

  Primitive() = default;
  explicit Primitive(const dnnl::primitive_desc &pd)
      : prim(pd), scratchpad(pd.scratchpad_desc()), impl(pd.impl_info_str()) {}
  /// execute() on the calling thread.
  void run(std::unordered_map<int, dnnl::memory> &args) const {
    execute(prim, scratchpad, args);
  }
  /// The kernels' description: "oneDNN <implementation>".
  std::string describe() const { return "oneDNN " + impl; }
};

/// `weights`, laid out as `user`, packed once into `packed` (a primitive's
/// weights_desc(); for the int8 kernels this also computes the zero-point
/// compensation kept next to them).
dnnl::memory packWeights(const dnnl::memory::desc &user, const void *weights,
                         const dnnl::memory::desc &packed);

/// Copies md.get_size() bytes from `data` into a new oneDNN-allocated memory.
dnnl::memory copyTo(const void *data, const dnnl::memory::desc &md);

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_DNNL_H
