//===- Dnnl.cpp - oneDNN helpers of the qnt runtime -----------------------===//

#include "Dnnl.h"

#include <cstring>

namespace qnt {
namespace rt {

dt toDnnl(int64_t dtype) {
  switch (dtype) {
  case QNT_RT_F32:
    return dt::f32;
  case QNT_RT_U8:
    return dt::u8;
  case QNT_RT_S8:
    return dt::s8;
  case QNT_RT_S32:
    return dt::s32;
  default:
    fatal("invalid dtype " + std::to_string(dtype));
  }
}

dnnl::primitive_attr makeAttr(const CommonSpec &s, int scaleMask,
                              bool runtimeSrcZp) {
  dnnl::primitive_attr attr;
  dnnl::post_ops po;
  if (s.isFloat()) {
    if (s.activation == QNT_RT_ACT_RELU)
      po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    else if (s.activation == QNT_RT_ACT_CLAMP)
      po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, s.clampMin,
                        s.clampMax);
    attr.set_post_ops(po);
    return attr;
  }
  attr.set_output_scales(s.scales.size() == 1 ? 0 : scaleMask, s.scales);
  if (s.srcZp != 0)
    attr.set_zero_points(
        DNNL_ARG_SRC, 0,
        {runtimeSrcZp ? DNNL_RUNTIME_S32_VAL : static_cast<int32_t>(s.srcZp)});
  if (s.dstZp != 0)
    attr.set_zero_points(DNNL_ARG_DST, 0, {static_cast<int32_t>(s.dstZp)});
  int64_t lo, hi;
  dtypeRange(s.dstDtype, lo, hi);
  if (s.dstQmin > lo || s.dstQmax < hi)
    po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip,
                      static_cast<float>(s.dstQmin - s.dstZp),
                      static_cast<float>(s.dstQmax - s.dstZp));
  if (s.dstZp != 0)
    po.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
  attr.set_post_ops(po);
  return attr;
}

dnnl::memory reorderTo(dnnl::memory &user, const dnnl::memory::desc &md) {
  if (user.get_desc() == md)
    return copyTo(user.get_data_handle(), md);
  dnnl::memory out(md, cpuEngine());
  dnnl::reorder(user, out).execute(cpuStream(), user, out);
  cpuStream().wait();
  return out;
}

dnnl::memory copyTo(const void *data, const dnnl::memory::desc &md) {
  dnnl::memory out(md, cpuEngine());
  std::memcpy(out.get_data_handle(), data, md.get_size());
  return out;
}

} // namespace rt
} // namespace qnt
