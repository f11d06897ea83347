//===- Reference.h - Exact reference int8 kernels ---------------*- C++ -*-===//
//
// Plain C++ quantized conv2d / linear that implement the formula of
// qnt/Runtime.h exactly: integer accumulation, then Requant. They are used
// when oneDNN cannot be exact (s8 src, or u8 src whose pair sums may saturate
// int16 on CPUs without VNNI) or when oneDNN has no implementation.
//
// Accumulation is in int32 when a bound computed from the weights proves it
// cannot overflow, else in int64; the int64 sum is saturated to the int32
// range before the float conversion.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_REFERENCE_H
#define QNT_RUNTIME_LIB_REFERENCE_H

#include "Common.h"

namespace qnt {
namespace rt {

class RefConv2d {
public:
  /// `w` is OHWI [oc, kh, kw, c / groups], `bias` int32 [oc] or null.
  RefConv2d(const qnt_rt_conv2d_params &p, const CommonSpec &s, const int8_t *w,
            const int32_t *bias);
  void run(const void *src, void *dst) const;

private:
  template <typename S, typename D, typename A>
  void runImpl(const S *src, D *dst) const;

  int64_t n_, h_, w_, c_, oc_, kh_, kw_, oh_, ow_;
  int64_t sh_, sw_, pt_, pl_, dh_, dw_, g_, icg_, ocg_;
  int64_t srcDtype_, dstDtype_;
  int32_t srcZp_;
  bool wide_;                  // accumulate in int64
  std::vector<int32_t> wpack_; // [kh][kw][g][icg][ocg]
  std::vector<int32_t> bias_;  // [oc]
  std::vector<float> scales_;  // [oc]
  Requant rq_;
};

class RefLinear {
public:
  /// `w` is [n, k], `bias` int32 [n] or null.
  RefLinear(const qnt_rt_linear_params &p, const CommonSpec &s, const int8_t *w,
            const int32_t *bias);
  void run(const void *src, void *dst) const;

private:
  template <typename S, typename D, typename A>
  void runImpl(const S *src, D *dst) const;

  int64_t m_, k_, n_;
  int64_t srcDtype_, dstDtype_;
  int32_t srcZp_;
  bool wide_;
  std::vector<int16_t> wpack_; // [n][k]
  std::vector<int32_t> bias_;  // [n]
  std::vector<float> scales_;  // [n]
  Requant rq_;
};

} // namespace rt
} // namespace qnt

#endif // QNT_RUNTIME_LIB_REFERENCE_H
