//===- Resample.h - moving histogram mass between grids --------*- C++ -*-===//
//
// Internal to lib/Calibration: spreads the mass of an interval over the bins
// of a uniform grid, assuming uniform density (merging histograms, folding a
// histogram onto |x|).
//
//===----------------------------------------------------------------------===//

#ifndef QNT_LIB_CALIBRATION_RESAMPLE_H
#define QNT_LIB_CALIBRATION_RESAMPLE_H

#include "llvm/ADT/ArrayRef.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace qnt {
namespace detail {

/// A uniform grid of `dst.size()` bins over [lo, hi] (hi > lo, or a single
/// point lo == hi whose mass all goes to bin 0).
struct Grid {
  double lo, hi;
  llvm::MutableArrayRef<double> dst;

  double width() const { return (hi - lo) / double(dst.size()); }

  /// The bin holding x (the last bin holds hi; outside values clamp).
  int64_t binOf(double x) const {
    const int64_t n = int64_t(dst.size());
    if (!(hi > lo))
      return 0;
    double q = std::floor((x - lo) / width());
    if (!(q >= 0))
      return 0;
    if (q >= double(n))
      return n - 1;
    return int64_t(q);
  }

  /// Adds mass `m` spread uniformly over [x0, x1] (x0 <= x1; a point if
  /// equal). The part outside [lo, hi] (rounding) goes to the bins inside,
  /// so the mass is kept.
  void add(double x0, double x1, double m) {
    if (m == 0)
      return;
    if (!(x1 > x0) || !(hi > lo)) {
      dst[size_t(binOf(0.5 * (x0 + x1)))] += m;
      return;
    }
    const int64_t k0 = binOf(x0), k1 = binOf(x1);
    const int64_t n = int64_t(dst.size());
    const double w = width();
    double covered = 0;
    for (int64_t k = k0; k <= k1; ++k) {
      double e0 = lo + double(k) * w,
             e1 = k == n - 1 ? hi : lo + double(k + 1) * w;
      covered += std::max(0.0, std::min(x1, e1) - std::max(x0, e0));
    }
    if (!(covered > 0)) {
      dst[size_t(binOf(0.5 * (x0 + x1)))] += m;
      return;
    }
    for (int64_t k = k0; k <= k1; ++k) {
      double e0 = lo + double(k) * w,
             e1 = k == n - 1 ? hi : lo + double(k + 1) * w;
      double overlap = std::max(0.0, std::min(x1, e1) - std::max(x0, e0));
      if (overlap > 0)
        dst[size_t(k)] += m * (overlap / covered);
    }
  }
};

/// The interval of bin j of `bins` bins over [a, b].
inline std::pair<double, double> binInterval(double a, double b, int64_t bins,
                                             int64_t j) {
  const double w = (b - a) / double(bins);
  return {a + double(j) * w, j == bins - 1 ? b : a + double(j + 1) * w};
}

} // namespace detail
} // namespace qnt

#endif // QNT_LIB_CALIBRATION_RESAMPLE_H
