//===- Reference.cpp - Exact reference int8 kernels -----------------------===//

#include "Reference.h"

#include <algorithm>

// Hot loops get an AVX2 clone on x86-64 (selected at load time), so the
// library itself keeps the baseline ISA. Not under ThreadSanitizer: the
// clones' ifunc resolvers run while the library is relocated, before the
// TSan runtime is initialized, and the instrumented resolvers crash there
// (scripts/tsan.sh).
#if defined(__x86_64__) && defined(__has_attribute) &&                         \
    !defined(__SANITIZE_THREAD__)
#if __has_attribute(target_clones) && !defined(__clang__)
#define QNT_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef QNT_MULTIVERSION
#define QNT_MULTIVERSION
#endif

namespace qnt {
namespace rt {

namespace {

// acc[j] += s * w[j]
QNT_MULTIVERSION void axpy(int32_t *acc, int32_t s, const int32_t *w,
                           int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    acc[j] += s * w[j];
}
QNT_MULTIVERSION void axpy(int64_t *acc, int32_t s, const int32_t *w,
                           int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    acc[j] += int64_t(s) * w[j];
}
// acc[j] += x[j] * w[j]
QNT_MULTIVERSION void mac(int32_t *acc, const int32_t *x, const int32_t *w,
                          int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    acc[j] += x[j] * w[j];
}
QNT_MULTIVERSION void mac(int64_t *acc, const int32_t *x, const int32_t *w,
                          int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    acc[j] += int64_t(x[j]) * w[j];
}
QNT_MULTIVERSION int32_t dot32(const int16_t *a, const int16_t *b, int64_t n) {
  int32_t s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += int32_t(a[i]) * int32_t(b[i]);
  return s;
}
QNT_MULTIVERSION int64_t dot64(const int16_t *a, const int16_t *b, int64_t n) {
  int64_t s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += int32_t(a[i]) * int32_t(b[i]);
  return s;
}
inline int32_t dot(int32_t, const int16_t *a, const int16_t *b, int64_t n) {
  return dot32(a, b, n);
}
inline int64_t dot(int64_t, const int16_t *a, const int16_t *b, int64_t n) {
  return dot64(a, b, n);
}

/// Largest |x - zp| for x in the storage range of `dtype`.
int64_t maxAbsShifted(int64_t dtype, int64_t zp) {
  int64_t lo, hi;
  dtypeRange(dtype, lo, hi);
  return std::max(std::abs(lo - zp), std::abs(hi - zp));
}

int64_t maxAbs32(const std::vector<int32_t> &v) {
  int64_t m = 0;
  for (int32_t x : v)
    m = std::max<int64_t>(m, std::abs(int64_t(x)));
  return m;
}

/// Thread-local scratch buffer of at least `n` elements.
template <typename T, int Tag> T *scratch(int64_t n) {
  static thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n)
    buf.resize(n);
  return buf.data();
}

/// Calls f(S *, D *) with the storage types of src / dst.
template <typename F>
void dispatchTypes(int64_t srcDtype, int64_t dstDtype, const void *src,
                   void *dst, F f) {
  bool su = srcDtype == QNT_RT_U8, du = dstDtype == QNT_RT_U8;
  if (su && du)
    f(static_cast<const uint8_t *>(src), static_cast<uint8_t *>(dst));
  else if (su)
    f(static_cast<const uint8_t *>(src), static_cast<int8_t *>(dst));
  else if (du)
    f(static_cast<const int8_t *>(src), static_cast<uint8_t *>(dst));
  else
    f(static_cast<const int8_t *>(src), static_cast<int8_t *>(dst));
}

} // namespace

//===----------------------------------------------------------------------===//
// conv2d
//===----------------------------------------------------------------------===//

RefConv2d::RefConv2d(const qnt_rt_conv2d_params &p, const CommonSpec &s,
                     const int8_t *w, const int32_t *bias)
    : n_(p.n), h_(p.h), w_(p.w), c_(p.c), oc_(p.oc), kh_(p.kh), kw_(p.kw),
      oh_(p.oh), ow_(p.ow), sh_(p.stride_h), sw_(p.stride_w), pt_(p.pad_top),
      pl_(p.pad_left), dh_(p.dilation_h), dw_(p.dilation_w), g_(p.groups),
      icg_(p.c / p.groups), ocg_(p.oc / p.groups), srcDtype_(s.srcDtype),
      dstDtype_(s.dstDtype), srcZp_(static_cast<int32_t>(s.srcZp)), rq_(s) {
  // OHWI [g][ocg][kh][kw][icg] -> [kh][kw][g][icg][ocg].
  wpack_.resize(oc_ * kh_ * kw_ * icg_);
  for (int64_t g = 0; g < g_; ++g)
    for (int64_t o = 0; o < ocg_; ++o)
      for (int64_t y = 0; y < kh_; ++y)
        for (int64_t x = 0; x < kw_; ++x)
          for (int64_t i = 0; i < icg_; ++i)
            wpack_[((((y * kw_ + x) * g_ + g) * icg_ + i) * ocg_) + o] =
                w[(((g * ocg_ + o) * kh_ + y) * kw_ + x) * icg_ + i];
  bias_.assign(oc_, 0);
  if (bias)
    bias_.assign(bias, bias + oc_);
  scales_.resize(oc_);
  for (int64_t c = 0; c < oc_; ++c)
    scales_[c] = s.scale(c);
  // |acc| <= K * max|src - zp| * max|w| + max|bias|.
  double bound = double(kh_ * kw_ * icg_) *
                     double(maxAbsShifted(srcDtype_, srcZp_)) *
                     double(maxAbs32(wpack_)) +
                 double(maxAbs32(bias_));
  wide_ = bound > double(std::numeric_limits<int32_t>::max());
}

template <typename S, typename D, typename A>
void RefConv2d::runImpl(const S *src, D *dst) const {
  const int64_t rows = n_ * oh_;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    A *acc = scratch<A, 0>(oc_);
    int32_t *x = scratch<int32_t, 1>(c_);
    const int64_t b = r / oh_, oy = r % oh_;
    for (int64_t ox = 0; ox < ow_; ++ox) {
      for (int64_t c = 0; c < oc_; ++c)
        acc[c] = bias_[c];
      for (int64_t ky = 0; ky < kh_; ++ky) {
        const int64_t iy = oy * sh_ - pt_ + ky * dh_;
        if (iy < 0 || iy >= h_)
          continue; // padding: (0 - 0) * w contributes nothing
        for (int64_t kx = 0; kx < kw_; ++kx) {
          const int64_t ix = ox * sw_ - pl_ + kx * dw_;
          if (ix < 0 || ix >= w_)
            continue;
          const S *sp = src + ((b * h_ + iy) * w_ + ix) * c_;
          for (int64_t c = 0; c < c_; ++c)
            x[c] = int32_t(sp[c]) - srcZp_;
          const int32_t *wp = wpack_.data() + (ky * kw_ + kx) * c_ * ocg_;
          if (icg_ == 1 && ocg_ == 1) { // depthwise
            mac(acc, x, wp, c_);
            continue;
          }
          for (int64_t g = 0; g < g_; ++g)
            for (int64_t i = 0; i < icg_; ++i) {
              const int32_t v = x[g * icg_ + i];
              if (v != 0)
                axpy(acc + g * ocg_, v, wp + (g * icg_ + i) * ocg_, ocg_);
            }
        }
      }
      D *dp = dst + ((b * oh_ + oy) * ow_ + ox) * oc_;
      for (int64_t c = 0; c < oc_; ++c)
        dp[c] = static_cast<D>(rq_(acc[c], scales_[c]));
    }
  }
}

void RefConv2d::run(const void *src, void *dst) const {
  dispatchTypes(srcDtype_, dstDtype_, src, dst, [&](auto *s, auto *d) {
    using S = std::remove_const_t<std::remove_pointer_t<decltype(s)>>;
    using D = std::remove_pointer_t<decltype(d)>;
    if (wide_)
      runImpl<S, D, int64_t>(s, d);
    else
      runImpl<S, D, int32_t>(s, d);
  });
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

RefLinear::RefLinear(const qnt_rt_linear_params &p, const CommonSpec &s,
                     const int8_t *w, const int32_t *bias)
    : m_(p.m), k_(p.k), n_(p.n), srcDtype_(s.srcDtype), dstDtype_(s.dstDtype),
      srcZp_(static_cast<int32_t>(s.srcZp)), rq_(s) {
  wpack_.assign(w, w + n_ * k_);
  bias_.assign(n_, 0);
  if (bias)
    bias_.assign(bias, bias + n_);
  scales_.resize(n_);
  for (int64_t c = 0; c < n_; ++c)
    scales_[c] = s.scale(c);
  int64_t wmax = 0;
  for (int16_t v : wpack_)
    wmax = std::max<int64_t>(wmax, std::abs(int64_t(v)));
  double bound =
      double(k_) * double(maxAbsShifted(srcDtype_, srcZp_)) * double(wmax) +
      double(maxAbs32(bias_));
  wide_ = bound > double(std::numeric_limits<int32_t>::max());
}

template <typename S, typename D, typename A>
void RefLinear::runImpl(const S *src, D *dst) const {
  // Blocks of output columns, so a single row still runs in parallel.
  const int64_t kBlock = 64;
  const int64_t nb = (n_ + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < m_; ++i)
    for (int64_t jb = 0; jb < nb; ++jb) {
      int16_t *x = scratch<int16_t, 2>(k_);
      const S *sp = src + i * k_;
      for (int64_t t = 0; t < k_; ++t)
        x[t] = static_cast<int16_t>(int32_t(sp[t]) - srcZp_);
      const int64_t jEnd = std::min(n_, (jb + 1) * kBlock);
      for (int64_t j = jb * kBlock; j < jEnd; ++j) {
        A acc = dot(A(0), x, wpack_.data() + j * k_, k_) + A(bias_[j]);
        dst[i * n_ + j] = static_cast<D>(rq_(acc, scales_[j]));
      }
    }
}

void RefLinear::run(const void *src, void *dst) const {
  dispatchTypes(srcDtype_, dstDtype_, src, dst, [&](auto *s, auto *d) {
    using S = std::remove_const_t<std::remove_pointer_t<decltype(s)>>;
    using D = std::remove_pointer_t<decltype(d)>;
    if (wide_)
      runImpl<S, D, int64_t>(s, d);
    else
      runImpl<S, D, int32_t>(s, d);
  });
}

} // namespace rt
} // namespace qnt
