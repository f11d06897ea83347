//===- Range.cpp - calibrated ranges from observer statistics -------------===//
//
// histogramL2Range replicates PyTorch 1.13's HistogramObserver search. Each
// float32 tensor operation of the Python source is one float operation here,
// evaluated in torch's order; Python floats are doubles and are converted to
// float32 where torch converts a scalar operand of a float32 tensor
// operation. The library is compiled with -ffp-contract=off.
//
//===----------------------------------------------------------------------===//

#include "qnt/Calibration/Range.h"

#include "Resample.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

using namespace qnt;
using llvm::ArrayRef;
using llvm::createStringError;
using llvm::inconvertibleErrorCode;

//===----------------------------------------------------------------------===//
// torch.sum
//===----------------------------------------------------------------------===//

namespace {

/// utils::CeilLog2 of ATen.
int64_t ceilLog2(int64_t x) {
  if (x <= 2)
    return 1;
  return 64 - __builtin_clzll(static_cast<uint64_t>(x - 1));
}

template <int L> using Lanes = std::array<float, L>;

template <int L> void addLanes(Lanes<L> &a, const Lanes<L> &b) {
  for (int l = 0; l < L; ++l)
    a[l] = a[l] + b[l];
}

/// ATen's multi_row_sum<acc, nrows = 4>: row i, column k is load(i * 4 + k).
template <int L, typename Load>
std::array<Lanes<L>, 4> multiRowSum(Load load, int64_t size) {
  constexpr int64_t numLevels = 4, nrows = 4;
  const int64_t levelPower = std::max<int64_t>(4, ceilLog2(size) / numLevels);
  const int64_t levelStep = int64_t(1) << levelPower;
  const int64_t levelMask = levelStep - 1;
  std::array<std::array<Lanes<L>, nrows>, numLevels> acc{};
  int64_t i = 0;
  for (; i + levelStep <= size;) {
    for (int64_t j = 0; j < levelStep; ++j, ++i)
      for (int64_t k = 0; k < nrows; ++k)
        addLanes<L>(acc[0][k], load(i * nrows + k));
    for (int64_t j = 1; j < numLevels; ++j) {
      for (int64_t k = 0; k < nrows; ++k) {
        addLanes<L>(acc[j][k], acc[j - 1][k]);
        acc[j - 1][k] = Lanes<L>{};
      }
      const int64_t mask = levelMask << (j * levelPower);
      if ((i & mask) != 0)
        break;
    }
  }
  for (; i < size; ++i)
    for (int64_t k = 0; k < nrows; ++k)
      addLanes<L>(acc[0][k], load(i * nrows + k));
  for (int64_t j = 1; j < numLevels; ++j)
    for (int64_t k = 0; k < nrows; ++k)
      addLanes<L>(acc[0][k], acc[j][k]);
  return acc[0];
}

/// ATen's row_sum (ilp_factor 4) over `size` elements load(0 .. size-1).
template <int L, typename Load> Lanes<L> rowSum(Load load, int64_t size) {
  constexpr int64_t ilp = 4;
  const int64_t sizeIlp = size / ilp;
  std::array<Lanes<L>, 4> partial = multiRowSum<L>(load, sizeIlp);
  for (int64_t i = sizeIlp * ilp; i < size; ++i)
    addLanes<L>(partial[0], load(i));
  for (int64_t k = 1; k < ilp; ++k)
    addLanes<L>(partial[0], partial[k]);
  return partial[0];
}

} // namespace

float qnt::torchSum(ArrayRef<float> values) {
  constexpr int W = 8; // Vectorized<float>::size() for AVX2 / DEFAULT
  const int64_t n = int64_t(values.size());
  const float *v = values.data();
  if (n >= W) {
    // vectorized_inner_sum
    const int64_t vecSize = n / W;
    Lanes<W> acc = rowSum<W>(
        [&](int64_t idx) {
          Lanes<W> r;
          for (int l = 0; l < W; ++l)
            r[l] = v[idx * W + l];
          return r;
        },
        vecSize);
    float result = 0.0f;
    for (int64_t k = vecSize * W; k < n; ++k)
      result = result + v[k];
    for (int l = 0; l < W; ++l)
      result = result + acc[l];
    return 0.0f + result; // the output, filled with 0, += the sum
  }
  // scalar_inner_sum
  Lanes<1> acc = rowSum<1>([&](int64_t idx) { return Lanes<1>{v[idx]}; }, n);
  return 0.0f + acc[0];
}

//===----------------------------------------------------------------------===//
// HistogramObserver._non_linear_param_search
//===----------------------------------------------------------------------===//

namespace {

/// torch.div(a, b, rounding_mode='floor') for float32 (div_floor_floating).
float floorDivide(float a, float b) {
  if (b == 0.0f)
    return a / b;
  float mod = std::fmod(a, b);
  float div = (a - mod) / b;
  if (mod != 0.0f && (b < 0.0f) != (mod < 0.0f))
    div = div - 1.0f;
  float floordiv;
  if (div != 0.0f) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5f)
      floordiv = floordiv + 1.0f;
  } else {
    floordiv = std::copysign(0.0f, a / b);
  }
  return floordiv;
}

/// torch.clamp(x, lo, hi) (NaN propagates).
float clampF(float x, float lo, float hi) {
  if (std::isnan(x))
    return x;
  return std::min(std::max(x, lo), hi);
}

/// _compute_quantization_error(next_start_bin, next_end_bin).
double quantizationError(ArrayRef<float> hist, float minVal, float maxVal,
                         int64_t dstBins, int64_t nextStartBin,
                         int64_t nextEndBin, std::vector<float> &norm) {
  const int64_t bins = int64_t(hist.size());
  // bin_width = (self.max_val.item() - self.min_val.item()) / self.bins
  const double binWidth = (double(maxVal) - double(minVal)) / double(bins);
  // dst_bin_width = bin_width * (next_end_bin - next_start_bin + 1) /
  // self.dst_nbins
  const double dstBinWidth =
      binWidth * double(nextEndBin - nextStartBin + 1) / double(dstBins);
  if (dstBinWidth == 0.0)
    return 0.0;
  // Python floats as float32 scalar operands.
  const float bw = float(binWidth);
  const float dbw = float(dstBinWidth);
  const float halfDst = float(dstBinWidth / 2);
  const float negHalfDst = float(-dstBinWidth / 2);
  const float lastDstBin = float(dstBins - 1);
  // _get_norm(torch.tensor(-dst_bin_width / 2),
  //           torch.tensor(dst_bin_width / 2), density) / density
  const float innerNorm =
      (halfDst * halfDst * halfDst - negHalfDst * negHalfDst * negHalfDst) /
      3.0f;
  const float negHalfCube = negHalfDst * negHalfDst * negHalfDst;
  norm.resize(size_t(bins));
  for (int64_t i = 0; i < bins; ++i) {
    // src_bin_begin = (src_bin - next_start_bin) * bin_width
    const float srcBinBegin = float(i - nextStartBin) * bw;
    // src_bin_end = src_bin_begin + bin_width
    const float srcBinEnd = srcBinBegin + bw;
    // dst_bin_of_begin = clamp(div(src_bin_begin, dst_bin_width, 'floor'), 0,
    // dst_nbins - 1)
    const float dstBinOfBegin =
        clampF(floorDivide(srcBinBegin, dbw), 0.0f, lastDstBin);
    // dst_bin_of_begin_center = (dst_bin_of_begin + 0.5) * dst_bin_width
    const float dstBinOfBeginCenter = (dstBinOfBegin + 0.5f) * dbw;
    const float dstBinOfEnd =
        clampF(floorDivide(srcBinEnd, dbw), 0.0f, lastDstBin);
    // density = self.histogram / bin_width
    const float density = hist[size_t(i)] / bw;
    // norm += _get_norm(delta_begin, ones * delta_end, density)
    const float deltaBegin = srcBinBegin - dstBinOfBeginCenter;
    float n = 0.0f;
    n = n + density * ((halfDst * halfDst * halfDst -
                        deltaBegin * deltaBegin * deltaBegin) /
                       3.0f);
    // norm += (dst_bin_of_end - dst_bin_of_begin - 1) * _get_norm(...)
    n = n + ((dstBinOfEnd - dstBinOfBegin) - 1.0f) * (density * innerNorm);
    // dst_bin_of_end_center = dst_bin_of_end * dst_bin_width + dst_bin_width /
    // 2
    const float dstBinOfEndCenter = dstBinOfEnd * dbw + halfDst;
    // norm += _get_norm(torch.tensor(-dst_bin_width / 2), delta_end, density)
    const float deltaEnd = srcBinEnd - dstBinOfEndCenter;
    n = n + density * ((deltaEnd * deltaEnd * deltaEnd - negHalfCube) / 3.0f);
    norm[size_t(i)] = n;
  }
  // norm.sum().item()
  return double(torchSum(norm));
}

} // namespace

std::pair<float, float> qnt::histogramL2Range(ArrayRef<float> hist,
                                              float minVal, float maxVal,
                                              int64_t dstBins) {
  const int64_t bins = int64_t(hist.size());
  // bin_width = (self.max_val - self.min_val) / self.bins   (float32)
  const float binWidth = (maxVal - minVal) / float(bins);
  // total = torch.sum(self.histogram).item()
  const double total = double(torchSum(hist));
  // cSum = torch.cumsum(self.histogram, dim=0): float32 output, accumulated
  // in double (CPU acc_type<float>).
  std::vector<float> cSum(static_cast<size_t>(bins));
  double running = 0.0;
  for (int64_t i = 0; i < bins; ++i) {
    running += double(hist[size_t(i)]);
    cSum[size_t(i)] = float(running);
  }

  const double stepsize = 1e-5;
  double alpha = 0.0, beta = 1.0;
  int64_t startBin = 0, endBin = bins - 1;
  double normMin = std::numeric_limits<double>::infinity();
  std::vector<float> scratch;
  while (alpha < beta) {
    const double nextAlpha = alpha + stepsize;
    const double nextBeta = beta - stepsize;
    // cSum[l] < next_alpha * total: a float32 tensor against a Python
    // float, compared in float32.
    const float lowMass = float(nextAlpha * total);
    const float highMass = float(nextBeta * total);
    int64_t l = startBin, r = endBin;
    while (l < endBin && cSum[size_t(l)] < lowMass)
      ++l;
    while (r > startBin && cSum[size_t(r)] > highMass)
      --r;
    int64_t nextStartBin = startBin, nextEndBin = endBin;
    if ((l - startBin) > (endBin - r)) {
      nextStartBin = l;
      alpha = nextAlpha;
    } else {
      nextEndBin = r;
      beta = nextBeta;
    }
    if (nextStartBin == startBin && nextEndBin == endBin)
      continue;
    const double norm = quantizationError(hist, minVal, maxVal, dstBins,
                                          nextStartBin, nextEndBin, scratch);
    if (norm > normMin)
      break;
    normMin = norm;
    startBin = nextStartBin;
    endBin = nextEndBin;
  }
  // new_min = self.min_val + bin_width * start_bin
  const float newMin = minVal + binWidth * float(startBin);
  // new_max = self.min_val + bin_width * (end_bin + 1)
  const float newMax = minVal + binWidth * float(endBin + 1);
  return {newMin, newMax};
}

//===----------------------------------------------------------------------===//
// Percentile
//===----------------------------------------------------------------------===//

namespace {

/// The histogram as non-negative doubles (torch's interpolation can leave
/// tiny negative residues; they count as empty).
std::vector<double> masses(ArrayRef<float> hist) {
  std::vector<double> m(hist.size());
  for (size_t i = 0; i < hist.size(); ++i)
    m[i] = hist[i] > 0 ? double(hist[i]) : 0.0;
  return m;
}

llvm::Error emptyHistogram() {
  return createStringError(inconvertibleErrorCode(), "the histogram is empty");
}

} // namespace

llvm::Expected<std::pair<float, float>>
qnt::percentileRange(ArrayRef<float> hist, float minVal, float maxVal,
                     double percentile) {
  if (!(percentile >= 50.0 && percentile <= 100.0))
    return createStringError(inconvertibleErrorCode(),
                             "percentile %g is outside [50, 100]", percentile);
  if (hist.empty())
    return emptyHistogram();
  const std::vector<double> h = masses(hist);
  const int64_t bins = int64_t(h.size());
  std::vector<double> cum(h.size());
  double total = 0;
  for (size_t i = 0; i < h.size(); ++i)
    cum[i] = total += h[i];
  if (!(total > 0))
    return emptyHistogram();
  const double lo = minVal, hi = maxVal;
  const double width = (hi - lo) / double(bins);
  auto edge = [&](int64_t i) {
    return i == bins ? hi : lo + double(i) * width;
  };

  // Low end: sup{x : F(x) <= mLow}, F the piecewise-linear CDF.
  const double mLow = (100.0 - percentile) / 100.0 * total;
  double low = hi;
  for (int64_t i = 0; i < bins; ++i) {
    if (cum[size_t(i)] > mLow) {
      double before = i ? cum[size_t(i - 1)] : 0.0;
      double frac = std::clamp((mLow - before) / h[size_t(i)], 0.0, 1.0);
      low = edge(i) + frac * (edge(i + 1) - edge(i));
      break;
    }
  }
  // High end: inf{x : F(x) >= mHigh}.
  const double mHigh = percentile / 100.0 * total;
  double high = hi;
  for (int64_t i = 0; i < bins; ++i) {
    if (cum[size_t(i)] >= mHigh && h[size_t(i)] > 0) {
      double before = i ? cum[size_t(i - 1)] : 0.0;
      double frac = std::clamp((mHigh - before) / h[size_t(i)], 0.0, 1.0);
      high = edge(i) + frac * (edge(i + 1) - edge(i));
      break;
    }
  }
  if (high < low)
    high = low;
  return std::make_pair(float(low), float(high));
}

//===----------------------------------------------------------------------===//
// Entropy
//===----------------------------------------------------------------------===//

namespace {

/// The KL-divergence threshold search of TensorRT's entropy calibration,
/// as NVIDIA's pytorch-quantization implements it (_compute_amax_entropy):
/// over `g` (bins counted from the anchor outwards) with `levels` levels.
/// Returns the number of bins i of the best window [0, i).
int64_t klThresholdBins(ArrayRef<double> g, int64_t levels) {
  const int64_t n = int64_t(g.size());
  std::vector<double> suffix(static_cast<size_t>(n) + 1, 0.0); // sum g[i..n)
  for (int64_t i = n - 1; i >= 0; --i)
    suffix[size_t(i)] = g[size_t(i)] + suffix[size_t(i) + 1];
  std::vector<double> levelSum(static_cast<size_t>(levels));
  std::vector<int64_t> levelNonzero(static_cast<size_t>(levels));
  int64_t best = n;
  double bestKl = std::numeric_limits<double>::infinity();
  for (int64_t i = std::min(levels, n); i <= n; ++i) {
    // Q: bin k of the window belongs to level floor(k * levels / i); a
    // level's mass (without the outliers) is spread evenly over its
    // non-empty bins.
    std::fill(levelSum.begin(), levelSum.end(), 0.0);
    std::fill(levelNonzero.begin(), levelNonzero.end(), 0);
    double sumQ = 0;
    for (int64_t k = 0; k < i; ++k) {
      const int64_t j = k * levels / i;
      levelSum[size_t(j)] += g[size_t(k)];
      levelNonzero[size_t(j)] += g[size_t(k)] > 0;
      sumQ += g[size_t(k)];
    }
    // P: the window with the outliers folded into its last bin.
    const double outliers = suffix[size_t(i)];
    const double sumP = sumQ + outliers;
    if (!(sumQ > 0))
      continue; // Q is empty
    // Q is smoothed over the m bins where P > 0, q' = (1 - eps) q + eps / m,
    // so that P's mass where Q has none (outliers folded into an empty last
    // bin) costs a large but finite divergence.
    int64_t m = 0;
    for (int64_t k = 0; k < i; ++k)
      m += g[size_t(k)] > 0 || (k == i - 1 && outliers > 0);
    constexpr double eps = 1e-4;
    double kl = 0;
    for (int64_t k = 0; k < i; ++k) {
      const double pk = (g[size_t(k)] + (k == i - 1 ? outliers : 0.0)) / sumP;
      if (!(pk > 0))
        continue;
      double qk = 0;
      if (g[size_t(k)] > 0) {
        const int64_t j = k * levels / i;
        qk = levelSum[size_t(j)] / double(levelNonzero[size_t(j)]) / sumQ;
      }
      qk = (1 - eps) * qk + eps / double(m);
      kl += pk * std::log(pk / qk);
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best;
}

} // namespace

llvm::Expected<std::pair<float, float>>
qnt::entropyRange(ArrayRef<float> hist, float minVal, float maxVal,
                  const QTarget &target) {
  if (hist.empty())
    return emptyHistogram();
  const int64_t levels = target.quantMax - target.quantMin + 1;
  if (levels < 2)
    return createStringError(inconvertibleErrorCode(),
                             "the target has fewer than 2 levels");
  const std::vector<double> h = masses(hist);
  double total = 0;
  for (double v : h)
    total += v;
  if (!(total > 0))
    return emptyHistogram();
  const int64_t bins = int64_t(h.size());
  const double lo = minVal, hi = maxVal;

  // The |x| histogram of one side of zero (positive, negative) or of both:
  // `bins` bins over [0, extent], each source bin's mass spread uniformly
  // over its interval (a bin straddling zero split by length).
  auto foldedThreshold = [&](bool positive, bool negative,
                             int64_t levels) -> double {
    const double extent = std::max(positive ? hi : 0.0, negative ? -lo : 0.0);
    if (!(extent > 0))
      return 0.0;
    std::vector<double> g(static_cast<size_t>(bins), 0.0);
    detail::Grid grid{0.0, extent, g};
    for (int64_t j = 0; j < bins; ++j) {
      auto [x0, x1] = detail::binInterval(lo, hi, bins, j);
      const double m = h[size_t(j)];
      if (!(m > 0))
        continue;
      // Share of the bin on each side of zero.
      const double posShare = x1 <= 0 ? 0.0 : x0 >= 0 ? 1.0 : x1 / (x1 - x0);
      if (positive && posShare > 0)
        grid.add(std::max(x0, 0.0), x1, m * posShare);
      if (negative && posShare < 1)
        grid.add(std::max(-x1, 0.0), -x0, m * (1 - posShare));
    }
    double mass = 0;
    for (double v : g)
      mass += v;
    if (!(mass > 0))
      return 0.0;
    // As pytorch-quantization: the bin at zero counts as its neighbour, so
    // that a spike of exact zeros (ReLU) does not dominate the divergence.
    if (bins > 1)
      g[0] = g[1];
    const int64_t i = klThresholdBins(g, levels);
    return i == bins ? extent : double(i) * (extent / double(bins));
  };

  if (target.symmetric) {
    const float t = float(foldedThreshold(true, true, levels / 2));
    return std::make_pair(-t, t);
  }
  // Affine: each side of zero on its own, with half the levels.
  const double top = foldedThreshold(true, false, levels / 2);
  const double bottom = foldedThreshold(false, true, levels / 2);
  return std::make_pair(bottom > 0 ? float(-bottom) : 0.0f, float(top));
}

//===----------------------------------------------------------------------===//
// Observer statistics
//===----------------------------------------------------------------------===//

static const char *methodName(RangeMethod method) {
  switch (method) {
  case RangeMethod::MinMax:
    return "minmax";
  case RangeMethod::HistogramL2:
    return "histogram";
  case RangeMethod::Percentile:
    return "percentile";
  case RangeMethod::Entropy:
    return "entropy";
  }
  return "?";
}

llvm::Expected<std::vector<std::pair<float, float>>>
qnt::computeCalibratedRanges(const ObserverStats &stats,
                             const RangeOptions &options) {
  auto fail = [](const llvm::Twine &message) -> llvm::Error {
    return createStringError(inconvertibleErrorCode(), message);
  };
  if (stats.min.empty() || stats.min.size() != stats.max.size())
    return fail("it saw no finite value");
  for (size_t c = 0; c < stats.min.size(); ++c)
    if (!std::isfinite(stats.min[c]) || !std::isfinite(stats.max[c]) ||
        !(stats.min[c] <= stats.max[c]))
      return fail(stats.min.size() == 1
                      ? llvm::Twine("it saw no finite value")
                      : "channel " + llvm::Twine(c) + " saw no finite value");
  std::vector<std::pair<float, float>> ranges;
  if (options.method == RangeMethod::MinMax) {
    for (size_t c = 0; c < stats.min.size(); ++c)
      ranges.emplace_back(stats.min[c], stats.max[c]);
    return ranges;
  }
  if (!stats.isHistogram())
    return fail(llvm::Twine("the ") + methodName(options.method) +
                " range needs histogram statistics, not '" + stats.kind + "'");
  if (stats.bins <= 0 || stats.histogram.size() != size_t(stats.bins))
    return fail("the histogram does not have 'bins' entries");
  const float lo = stats.min[0], hi = stats.max[0];
  // The searches work in bin widths of float32.
  if (!std::isfinite(hi - lo))
    return fail("the histogram's range [" +
                llvm::Twine(llvm::formatv("{0:e}, {1:e}", lo, hi)) +
                "] is too wide: its width overflows float32");
  switch (options.method) {
  case RangeMethod::MinMax:
    break;
  case RangeMethod::HistogramL2:
    if (options.dstBins < 1)
      return fail("dst_nbins must be positive");
    ranges.push_back(
        histogramL2Range(stats.histogram, lo, hi, options.dstBins));
    break;
  case RangeMethod::Percentile: {
    auto r = percentileRange(stats.histogram, lo, hi, options.percentile);
    if (!r)
      return r.takeError();
    ranges.push_back(*r);
    break;
  }
  case RangeMethod::Entropy: {
    auto r = entropyRange(stats.histogram, lo, hi, options.target);
    if (!r)
      return r.takeError();
    ranges.push_back(*r);
    break;
  }
  }
  if (!std::isfinite(ranges[0].first) || !std::isfinite(ranges[0].second))
    return fail(llvm::Twine("the ") + methodName(options.method) +
                " search gave a non-finite range");
  return ranges;
}

llvm::Expected<std::pair<float, float>>
qnt::computeCalibratedRange(const ObserverStats &stats,
                            const RangeOptions &options) {
  auto ranges = computeCalibratedRanges(stats, options);
  if (!ranges)
    return ranges.takeError();
  if (ranges->size() != 1)
    return createStringError(inconvertibleErrorCode(),
                             "expected per-tensor statistics, got %zu "
                             "channels",
                             ranges->size());
  return ranges->front();
}

llvm::Expected<std::vector<QParams>>
qnt::computeCalibratedQParams(const ObserverStats &stats,
                              const RangeOptions &options) {
  auto ranges = computeCalibratedRanges(stats, options);
  if (!ranges)
    return ranges.takeError();
  std::vector<QParams> params;
  for (auto [lo, hi] : *ranges)
    params.push_back(computeQParams(lo, hi, options.target));
  return params;
}
