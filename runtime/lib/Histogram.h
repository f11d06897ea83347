//===- Histogram.h - PyTorch 1.13 HistogramObserver accumulation -*- C++
//-*-===//
//
// The accumulation half of torch.ao.quantization.HistogramObserver (PyTorch
// 1.13, CPU), bit for bit: forward(), _adjust_min_max(),
// _combine_histograms() and the torch.histc they use. Header-only and
// dependency-free: the runtime (qnt_rt_observe) and lib/Calibration (merging
// statistics files) share it.
//
// Every float32 tensor operation of the Python source is one float operation
// here, in the same order; Python floats are doubles. The comments quote the
// Python they replicate. The file must be compiled without FP contraction
// (-ffp-contract=off): no expression here may become an FMA.
//
//===----------------------------------------------------------------------===//

#ifndef QNT_RUNTIME_LIB_HISTOGRAM_H
#define QNT_RUNTIME_LIB_HISTOGRAM_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace qnt {
namespace histogram {

/// Python's int() of a float32 tensor's item(): truncation toward zero.
inline double truncToInt(float v) { return std::trunc(static_cast<double>(v)); }

/// torch.histc(x, bins, min=lo, max=hi) of PyTorch 1.13 on CPU, over the
/// finite values of `x` (non-finite values never fall in a finite range, so
/// skipping them is exact). `dataMin` / `dataMax` are the finite values'
/// min / max (histc uses them when lo == hi). Requires at least one finite
/// value. Returns float counts, as torch.
///
///  * The edges are float(lo) and float(hi) (torch.linspace); lo == hi
///    takes the data's min / max instead, then widens an empty range by
///    +-1 (in double, before the float conversion).
///  * A value v in [left, right] goes to bin
///      int64(((v - left) * float(bins)) / (right - left))   (float32)
///    and v == right (bin == bins) to the last bin. A NaN / infinite bin
///    index (left == right after the float conversion, or a float overflow)
///    is the x86 "integer indefinite" INT64_MIN, which torch's pointer
///    arithmetic wraps to bin 0.
///  * torch counts in float per thread; counting in int64 is identical while
///    a bin receives fewer than 2^24 values per call.
inline std::vector<float> histc(const float *x, int64_t n, int64_t bins,
                                double lo, double hi, float dataMin,
                                float dataMax) {
  if (lo == hi) {
    lo = dataMin;
    hi = dataMax;
  }
  if (lo == hi) {
    lo -= 1;
    hi += 1;
  }
  const float left = static_cast<float>(lo);
  const float right = static_cast<float>(hi);
  const float width = right - left;
  const float nb = static_cast<float>(bins);
  std::vector<int64_t> counts(static_cast<size_t>(bins), 0);
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!(v >= left && v <= right))
      continue;
    const float q = ((v - left) * nb) / width;
    int64_t pos = 0;
    if (q >= 0.0f && q < 9.2e18f)
      pos = static_cast<int64_t>(q);
    if (pos >= bins) // == bins: the right edge; > bins cannot happen
      pos = bins - 1;
    ++counts[static_cast<size_t>(pos)];
  }
  std::vector<float> out(static_cast<size_t>(bins));
  for (int64_t b = 0; b < bins; ++b)
    out[static_cast<size_t>(b)] =
        static_cast<float>(counts[static_cast<size_t>(b)]);
  return out;
}

/// Result of _adjust_min_max().
struct Adjusted {
  float combinedMin, combinedMax;
  int64_t downsampleRate;
  int64_t startIdx;
  /// False if torch would fail: downsample_rate not a finite integer we can
  /// index with (int(inf) raises; a rate this large would also need
  /// bins * rate floats of memory), or the widened range overflows float32
  /// (torch's max_val would become inf).
  bool valid;
};

/// _adjust_min_max(combined_min, combined_max, upsample_rate) of the
/// observer whose state is [minVal, maxVal] with `bins` bins.
inline Adjusted adjustMinMax(float minVal, float maxVal, int64_t bins,
                             float combinedMin, float combinedMax,
                             int64_t upsampleRate) {
  Adjusted a{combinedMin, combinedMax, 0, 0, false};
  // hist_bin_width = (self.max_val - self.min_val) / (self.bins *
  // upsample_rate)
  const float histBinWidth =
      (maxVal - minVal) / static_cast<float>(bins * upsampleRate);
  // self.bins * hist_bin_width
  const float span = static_cast<float>(bins) * histBinWidth;
  // int(torch.ceil((combined_max - combined_min) / (self.bins *
  // hist_bin_width)).item())
  const float rate = std::ceil((combinedMax - combinedMin) / span);
  const double limit = double(int64_t(1) << 62) / double(bins * upsampleRate);
  if (!(rate >= 1.0f && double(rate) < limit))
    return a;
  a.downsampleRate = static_cast<int64_t>(rate);
  // e = downsample_rate * (self.bins * hist_bin_width) - (combined_max -
  // combined_min)
  const float e =
      static_cast<float>(a.downsampleRate) * span - (combinedMax - combinedMin);
  // combined_max = combined_max + e
  a.combinedMax = combinedMax + e;
  // Near FLT_MAX the widened range overflows (torch's becomes inf): fall
  // back as for an unusable rate, keeping the range finite.
  if (!std::isfinite(a.combinedMax))
    return a;
  // int(torch.round((self.min_val - combined_min) / hist_bin_width).item())
  const float start = std::nearbyint((minVal - combinedMin) / histBinWidth);
  if (!(start >= 0.0f && double(start) < limit))
    return a;
  a.startIdx = static_cast<int64_t>(start);
  a.valid = true;
  return a;
}

/// _combine_histograms(orig_hist, new_hist, upsample_rate, downsample_rate,
/// start_idx, Nbins): returns orig_hist + the `newHist` (the *old* state
/// histogram in forward()) upsampled by `upsampleRate`, placed at
/// `startIdx` of a Nbins * downsampleRate grid and summed in groups of
/// `downsampleRate`, exactly as torch computes it:
///   integral = cumsum(upsampled, dtype=double)[rate-1::rate]   (sequential)
///   shifted  = float32(integral[k-1])        (a float32 zeros tensor)
///   result   = orig + float32((integral - shifted) / upsample_rate)
/// without materializing the Nbins * downsampleRate grid. Where torch's
/// slice assignment would fail (the upsampled histogram overhanging the
/// grid by rounding), the overhang is dropped.
inline std::vector<float> combineHistograms(std::vector<float> origHist,
                                            const std::vector<float> &newHist,
                                            int64_t upsampleRate,
                                            int64_t downsampleRate,
                                            int64_t startIdx, int64_t bins) {
  const int64_t gridSize = bins * downsampleRate;
  const int64_t regionBegin = std::min(startIdx, gridSize);
  const int64_t regionEnd = std::min(startIdx + bins * upsampleRate, gridSize);
  double running = 0.0; // cumsum in double, element by element
  int64_t p = regionBegin;
  double previous = 0.0; // float32(integral[k - 1])
  for (int64_t k = 0; k < bins; ++k) {
    const int64_t stop = std::min((k + 1) * downsampleRate, regionEnd);
    for (; p < stop; ++p)
      running += static_cast<double>(
          newHist[static_cast<size_t>((p - startIdx) / upsampleRate)]);
    const double integral = running;
    const double interpolated =
        (integral - previous) / static_cast<double>(upsampleRate);
    origHist[static_cast<size_t>(k)] =
        origHist[static_cast<size_t>(k)] + static_cast<float>(interpolated);
    previous = static_cast<double>(static_cast<float>(integral));
  }
  return origHist;
}

/// HistogramObserver state: histogram (float32), min_val, max_val.
struct State {
  std::vector<float> hist; // `bins` entries
  float minVal = std::numeric_limits<float>::infinity();
  float maxVal = -std::numeric_limits<float>::infinity();

  bool initialized() const {
    return !(minVal == std::numeric_limits<float>::infinity() &&
             maxVal == -std::numeric_limits<float>::infinity());
  }
};

/// HistogramObserver.forward(x) on the finite values of `x` (`n` values,
/// non-finite ones skipped); `batchMin` / `batchMax` are the finite values'
/// min / max (the caller calls this only if there is at least one).
///
/// Where torch would fail (see Adjusted::valid: a range growing by a factor
/// beyond ~2^62 / (bins * upsample_rate)), the old histogram's mass goes to
/// the new histogram's bin holding the old range's centre.
inline void observe(State &s, int64_t bins, int64_t upsampleRate,
                    const float *x, int64_t n, float batchMin, float batchMax) {
  if (s.hist.size() != static_cast<size_t>(bins))
    s.hist.assign(static_cast<size_t>(bins), 0.0f);
  // same_values = min_val.item() == max_val.item()
  if (!s.initialized() || s.minVal == s.maxVal) {
    s.minVal = batchMin;
    s.maxVal = batchMax;
    // torch.histc(x, self.bins, min=int(min_val), max=int(max_val))
    s.hist = histc(x, n, bins, truncToInt(batchMin), truncToInt(batchMax),
                   batchMin, batchMax);
    return;
  }
  const float combinedMin = std::min(batchMin, s.minVal);
  const float combinedMax = std::max(batchMax, s.maxVal);
  Adjusted a = adjustMinMax(s.minVal, s.maxVal, bins, combinedMin, combinedMax,
                            upsampleRate);
  if (!a.valid) {
    std::vector<float> h = histc(x, n, bins, truncToInt(combinedMin),
                                 truncToInt(combinedMax), batchMin, batchMax);
    double mass = 0.0;
    for (float v : s.hist)
      mass += v;
    const double centre = 0.5 * (double(s.minVal) + double(s.maxVal));
    const double width = double(combinedMax) - double(combinedMin);
    int64_t b = static_cast<int64_t>((centre - double(combinedMin)) / width *
                                     double(bins));
    b = std::clamp<int64_t>(b, 0, bins - 1);
    h[static_cast<size_t>(b)] += static_cast<float>(mass);
    s.hist = std::move(h);
    s.minVal = combinedMin;
    s.maxVal = combinedMax;
    return;
  }
  // torch.histc(x, self.bins, min=int(combined_min), max=int(combined_max))
  std::vector<float> combined =
      histc(x, n, bins, truncToInt(a.combinedMin), truncToInt(a.combinedMax),
            batchMin, batchMax);
  if (a.combinedMin == s.minVal && a.combinedMax == s.maxVal) {
    for (int64_t b = 0; b < bins; ++b)
      combined[static_cast<size_t>(b)] += s.hist[static_cast<size_t>(b)];
  } else {
    combined = combineHistograms(std::move(combined), s.hist, upsampleRate,
                                 a.downsampleRate, a.startIdx, bins);
  }
  s.hist = std::move(combined);
  s.minVal = a.combinedMin;
  s.maxVal = a.combinedMax;
}

} // namespace histogram
} // namespace qnt

#endif // QNT_RUNTIME_LIB_HISTOGRAM_H
