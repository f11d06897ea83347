//===- Dnnl.cpp - oneDNN helpers of the qnt runtime -----------------------===//

#include "Dnnl.h"

#include <cstdint>
#include <cstring>
#include <vector>

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

dnnl::primitive_attr concurrentAttr() {
  // With oneDNN's default (library) scratchpad and Debian's build
  // (DNNL_ENABLE_CONCURRENT_EXEC off), a primitive gets at creation the
  // scratchpad of the creating thread, which all primitives created on that
  // thread share. A kernel is created once per call site, by whichever thread
  // calls it first, and then runs from every thread: concurrent runs of
  // different call sites, or of one, wrote the same scratchpad and gave
  // wrong results (the CNN on four threads: 125-190 of 3200 results). With a
  // user scratchpad every execution brings its own.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::primitive_attr makeAttr(const CommonSpec &s, int scaleMask,
                              bool runtimeSrcZp) {
  dnnl::primitive_attr attr = concurrentAttr();
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

/// A scratchpad of at least `bytes` for the calling thread, 64-byte aligned.
/// It is reused by every primitive the thread runs (one at a time) and grows
/// to the largest size asked for.
static void *threadScratchpad(size_t bytes) {
  constexpr uintptr_t kAlign = 64;
  thread_local std::vector<unsigned char> buffer;
  if (buffer.size() < bytes + kAlign)
    buffer.resize(bytes + kAlign);
  auto at = reinterpret_cast<uintptr_t>(buffer.data());
  return reinterpret_cast<void *>((at + kAlign - 1) & ~(kAlign - 1));
}

void execute(const dnnl::primitive &prim,
             const dnnl::memory::desc &scratchpadMd,
             std::unordered_map<int, dnnl::memory> &args) {
  if (size_t bytes = scratchpadMd.get_size())
    args[DNNL_ARG_SCRATCHPAD] =
        dnnl::memory(scratchpadMd, cpuEngine(), threadScratchpad(bytes));
  prim.execute(cpuStream(), args);
  cpuStream().wait();
}

dnnl::memory packWeights(const dnnl::memory::desc &user, const void *weights,
                         const dnnl::memory::desc &packed) {
  if (user == packed)
    return copyTo(weights, packed);
  dnnl::memory from(user, cpuEngine(), const_cast<void *>(weights));
  dnnl::memory out(packed, cpuEngine());
  dnnl::reorder(from, out).execute(cpuStream(), from, out);
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
