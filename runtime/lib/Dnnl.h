//===- Dnnl.h - oneDNN helpers of the qnt runtime ---------------*- C++ -*-===//

#ifndef QNT_RUNTIME_LIB_DNNL_H
#define QNT_RUNTIME_LIB_DNNL_H

#include "Common.h"

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

/// Reorders user memory `user` into a new memory of descriptor `md`.
dnnl::memory reorderTo(dnnl::memory &user, const dnnl::memory::desc &md);

/// Copies md.get_size() bytes from `data` into a new oneDNN-allocated memory.
dnnl::memory copyTo(const void *data, const dnnl::memory::desc &md);

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_DNNL_H
