//===- dwconv_bench.cpp - The runtime's own conv2d kernels against oneDNN -===//
//
// Times mobilenet_v2's 17 depthwise convs (3x3, pad 1, u8 -> u8, per-channel
// M, s32 bias) at batch 1 and 8 with the runtime's depthwise kernel and with
// the kernel qnt_rt_conv2d runs without it (oneDNN), alternating the two,
// and prints per-layer medians, GMAC/s and the totals. Both must give the
// same bytes; a difference is reported and fails the run. The "stream"
// column is the memory floor: the time the same threads take to read the
// layer's src bytes and write its dst bytes, and the GB/s of that traffic.
// `--layers stem` times the first convs of image networks (3 input
// channels; 1 for a grey image) with the stem kernel (StemConv.cpp) instead.
//
//   build/bin/qnt-dwconv-bench [--runs 15] [--threads 2] [--batches 1,8]
//                              [--impl dwconv|dwconv:avx2|...] [--src-zp 0]
//                              [--layers depthwise|stem]
//
//===----------------------------------------------------------------------===//

#include "../runtime/lib/ConvTesting.h"
#include "qnt/Runtime.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <immintrin.h>

namespace {

struct Layer {
  int64_t c, hw, stride, count; // count: how often the network has it
  int64_t k = 3, oc = 0;        // oc 0: depthwise (oc = groups = c)
  const char *net = nullptr;
};

const Layer kMobileNetV2[] = {
    {32, 112, 1, 1}, {96, 112, 2, 1}, {144, 56, 1, 1}, {144, 56, 2, 1},
    {192, 28, 1, 2}, {192, 28, 2, 1}, {384, 14, 1, 4}, {576, 14, 1, 2},
    {576, 14, 2, 1}, {960, 7, 1, 3},
};

// The first conv of torchvision's image networks (pad k / 2).
const Layer kStems[] = {
    {3, 224, 2, 1, 7, 64, "resnet18"},
    {3, 224, 2, 1, 3, 32, "mobilenet_v2"},
    {3, 224, 2, 1, 3, 16, "mobilenet_v3"},
    {3, 224, 1, 1, 3, 64, "vgg"},
    {1, 28, 1, 1, 3, 64, "grey 28x28"},
};

/// One call site: its params, data and the slot its kernel lives in.
struct Site {
  qnt_rt_conv2d_params p{};
  std::vector<float> fparams;
  std::vector<uint8_t> src, dst;
  std::vector<int8_t> weight;
  std::vector<int32_t> bias;
  void *slot = nullptr;
  std::string impl, describe;

  /// Runs once; exits on an error.
  void run() {
    char desc[256];
    int rc = qnt_rt_conv2d_testing(&slot, reinterpret_cast<const int64_t *>(&p),
                                   fparams.data(), src.data(), weight.data(),
                                   bias.data(), dst.data(), impl.c_str(), desc,
                                   sizeof desc);
    if (rc != 0) {
      std::fprintf(stderr, "%s: %s\n", impl.c_str(), desc);
      std::exit(1);
    }
    describe = desc;
  }
};

Site makeSite(const Layer &l, int64_t n, int64_t srcZp,
              const std::string &impl) {
  std::mt19937 rng(l.c * 1000 + l.hw);
  Site s;
  qnt_rt_conv2d_params &p = s.p;
  const int64_t oc = l.oc ? l.oc : l.c;
  p.n = n, p.h = p.w = l.hw, p.c = l.c, p.oc = oc;
  p.groups = l.oc ? 1 : l.c;
  p.kh = p.kw = l.k, p.stride_h = p.stride_w = l.stride;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = l.k / 2;
  p.oh = p.ow = (l.hw + 2 * (l.k / 2) - l.k) / l.stride + 1;
  p.dilation_h = p.dilation_w = 1;
  p.src_dtype = QNT_RT_U8, p.wei_dtype = QNT_RT_S8, p.dst_dtype = QNT_RT_U8;
  p.bias_kind = QNT_RT_BIAS_S32;
  p.src_zp = srcZp, p.src_qmin = 0, p.src_qmax = 255;
  p.dst_zp = 0, p.dst_qmin = 0, p.dst_qmax = 255;
  p.num_scales = oc;
  p.backend = QNT_RT_BACKEND_ONEDNN;
  std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127), b(-5000, 5000);
  std::uniform_real_distribution<float> m(1e-4f, 3e-3f);
  s.fparams = {0.0f, 0.0f};
  for (int64_t c = 0; c < oc; ++c)
    s.fparams.push_back(m(rng));
  s.src.resize(n * l.hw * l.hw * l.c);
  for (auto &v : s.src)
    v = static_cast<uint8_t>(u8(rng));
  s.weight.resize(oc * l.k * l.k * (l.c / p.groups));
  for (auto &v : s.weight)
    v = static_cast<int8_t>(s8(rng));
  s.bias.resize(oc);
  for (auto &v : s.bias)
    v = b(rng);
  s.dst.assign(n * p.oh * p.ow * oc, 0);
  s.impl = impl;
  return s;
}

double nowUs() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Reads `src` and writes `dst` on the OpenMP threads, as a conv's memory
/// traffic at its least; returns a sum of the bytes read so that the reads
/// stay.
__attribute__((target("avx2"))) uint64_t
streamPass(const std::vector<uint8_t> &src, std::vector<uint8_t> &dst) {
  uint64_t total = 0;
#pragma omp parallel reduction(+ : total)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t in = static_cast<int64_t>(src.size()) / 32;
    __m256i sum = _mm256_setzero_si256();
    for (int64_t i = in * t / nt; i < in * (t + 1) / nt; ++i)
      sum = _mm256_add_epi64(
          sum,
          _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(
                              src.data() + 32 * i)),
                          _mm256_setzero_si256()));
    const int64_t out = static_cast<int64_t>(dst.size());
    std::memset(dst.data() + out * t / nt, int(t),
                out * (t + 1) / nt - out * t / nt);
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i *>(lanes), sum);
    total += lanes[0] + lanes[1] + lanes[2] + lanes[3];
  }
  return total;
}

/// Median over `runs` of the time of one call, each timed over `reps` calls.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

} // namespace

int main(int argc, char **argv) {
  int runs = 15, threads = 2;
  int64_t srcZp = 0;
  std::string impl, batches = "1,8", layers = "depthwise";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--impl")
      impl = argv[i + 1];
    else if (a == "--batches")
      batches = argv[i + 1];
    else if (a == "--src-zp")
      srcZp = std::atoll(argv[i + 1]);
    else if (a == "--layers")
      layers = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const bool stem = layers == "stem";
  if (!stem && layers != "depthwise") {
    std::fprintf(stderr, "--layers: depthwise or stem, not %s\n",
                 layers.c_str());
    return 2;
  }
  if (impl.empty())
    impl = stem ? "stemconv" : "dwconv";
  std::vector<Layer> list(std::begin(kMobileNetV2), std::end(kMobileNetV2));
  if (stem)
    list.assign(std::begin(kStems), std::end(kStems));
  if (qnt_rt_set_num_threads(threads) != 0)
    return 2;
  omp_set_num_threads(threads);
  bool mismatch = false;
  for (size_t at = 0; at < batches.size();) {
    const int64_t n = std::atoll(batches.c_str() + at);
    at = batches.find(',', at);
    at = at == std::string::npos ? batches.size() : at + 1;
    std::printf("batch %ld, %d threads, src_zp %ld (us per call, median of "
                "%d; GMAC/s)\n",
                long(n), threads, long(srcZp), runs);
    std::printf("%-26s %6s %9s %7s %9s %7s %7s %7s %5s %5s\n", "layer", "MMAC",
                "oneDNN", "GMAC/s", "qnt", "GMAC/s", "speedup", "stream",
                "GB/s", "qGB/s");
    double totalBase = 0, totalNew = 0, totalStream = 0, totalMacs = 0;
    std::string baseDesc, newDesc;
    for (const Layer &l : list) {
      Site base = makeSite(l, n, srcZp, "fallback");
      Site fast = makeSite(l, n, srcZp, impl);
      base.run(), fast.run(); // create the kernels
      if (base.dst != fast.dst) {
        std::printf("OUTPUTS DIFFER for c%ld %ldx%ld s%ld\n", long(l.c),
                    long(l.hw), long(l.hw), long(l.stride));
        mismatch = true;
      }
      const double macs = double(n * base.p.oh * base.p.ow * base.p.oc * l.k *
                                 l.k * (l.c / base.p.groups));
      std::vector<uint8_t> streamDst(fast.dst.size());
      uint64_t sink = 0;
      // The three timed passes, alternated.
      const std::function<void()> passes[] = {
          [&] { base.run(); }, [&] { fast.run(); },
          [&] { sink += streamPass(fast.src, streamDst); }};
      // About 2 ms per timing, at least one call.
      double t0 = nowUs();
      base.run();
      const int reps = std::max(1, int(2000 / std::max(1.0, nowUs() - t0)));
      std::vector<double> times[3];
      for (int r = 0; r < runs; ++r)
        for (int i = 0; i < 3; ++i) {
          double t = nowUs();
          for (int k = 0; k < reps; ++k)
            passes[i]();
          times[i].push_back((nowUs() - t) / reps);
        }
      if (sink == 1)
        std::printf(" "); // keeps the stream reads
      const double mb = median(times[0]), mf = median(times[1]);
      const double ms = median(times[2]);
      const double bytes = double(fast.src.size() + fast.dst.size());
      char name[64];
      if (l.net)
        std::snprintf(name, sizeof name, "%s c%ld>%ld k%ld s%ld", l.net,
                      long(l.c), long(l.oc), long(l.k), long(l.stride));
      else
        std::snprintf(name, sizeof name, "c%ld %ldx%ld s%ld%s", long(l.c),
                      long(l.hw), long(l.hw), long(l.stride),
                      l.count > 1 ? (" x" + std::to_string(l.count)).c_str()
                                  : "");
      std::printf("%-26s %6.1f %9.1f %7.1f %9.1f %7.1f %6.2fx %7.1f %5.1f "
                  "%5.1f\n",
                  name, macs / 1e6, mb, macs / mb / 1e3, mf, macs / mf / 1e3,
                  mb / mf, ms, bytes / ms / 1e3, bytes / mf / 1e3);
      totalBase += mb * l.count, totalNew += mf * l.count;
      totalStream += ms * l.count;
      totalMacs += macs * l.count;
      baseDesc = base.describe, newDesc = fast.describe;
    }
    std::printf("%-26s %6.1f %9.1f %7.1f %9.1f %7.1f %6.2fx %7.1f\n",
                stem ? "total" : "total (17 layers)", totalMacs / 1e6,
                totalBase, totalMacs / totalBase / 1e3, totalNew,
                totalMacs / totalNew / 1e3, totalBase / totalNew, totalStream);
    std::printf("(oneDNN column: %s; qnt column: %s)\n\n", baseDesc.c_str(),
                newDesc.c_str());
  }
  return mismatch ? 1 : 0;
}
