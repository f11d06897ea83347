//===- DepthwiseConvTest.cpp - The runtime's depthwise conv2d kernel ------===//
//
// The depthwise kernel (runtime/lib/Depthwise.cpp) on each of its ISAs,
// through qnt_rt_conv2d_testing, against a scalar reference written from
// qnt/Runtime.h and against the kernel qnt_rt_conv2d would run without it
// (oneDNN or the reference kernel): every output byte must be equal. With
// avx512_vnni, 3x3 convs at stride 1 and 2 run on its vpdpbusd kernel
// (u8 quads, src zero point folded into the bias, padding filled with it),
// the others on the int16 kernel; each case checks which one ran.
//
//===----------------------------------------------------------------------===//

#include "ConvTestUtil.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <strings.h>

using namespace qnt_test;

namespace {

struct DwCase {
  std::string name;
  int64_t n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr;
  int64_t srcDtype, srcZp, srcQmin, srcQmax;
  int64_t dstDtype, dstZp, dstQmin, dstQmax;
  bool perChannel, bias;
  int64_t wmin, wmax;
  float fixedM = 0;          // 0: M spreads the outputs over the dst range
  bool extreme = false;      // inputs only srcQmin / srcQmax
  bool allClampedOk = false; // e.g. a dst zero point outside the dst range
  int64_t oh() const { return (h + pt + pb - kh) / sh + 1; }
  int64_t ow() const { return (w + pl + pr - kw) / sw + 1; }
};

ConvProblem makeProblem(const DwCase &tc, uint32_t seed) {
  std::mt19937 rng(seed);
  ConvProblem pr;
  auto w = randInts(rng, tc.c * tc.kh * tc.kw, tc.wmin, tc.wmax);
  std::vector<int64_t> bias;
  if (tc.bias)
    bias = randInts(rng, tc.c, -20000, 20000);
  auto src = randInts(rng, tc.n * tc.h * tc.w * tc.c, tc.srcQmin, tc.srcQmax);
  if (tc.extreme)
    for (auto &v : src)
      v = v & 1 ? tc.srcQmax : tc.srcQmin;

  qnt_rt_conv2d_params &p = pr.p;
  p.n = tc.n, p.h = tc.h, p.w = tc.w, p.c = tc.c, p.oc = tc.c;
  p.kh = tc.kh, p.kw = tc.kw, p.oh = tc.oh(), p.ow = tc.ow();
  p.stride_h = tc.sh, p.stride_w = tc.sw;
  p.pad_top = tc.pt, p.pad_bottom = tc.pb, p.pad_left = tc.pl,
  p.pad_right = tc.pr;
  p.dilation_h = p.dilation_w = 1, p.groups = tc.c;
  p.src_dtype = tc.srcDtype, p.wei_dtype = QNT_RT_S8, p.dst_dtype = tc.dstDtype;
  p.src_zp = tc.srcZp, p.src_qmin = tc.srcQmin, p.src_qmax = tc.srcQmax;
  p.dst_zp = tc.dstZp, p.dst_qmin = tc.dstQmin, p.dst_qmax = tc.dstQmax;
  p.backend = QNT_RT_BACKEND_ONEDNN;
  finishConvProblem(pr, src, w, bias, tc.perChannel, tc.fixedM, rng);
  return pr;
}

// clang-format off
std::vector<DwCase> handWrittenCases() {
  const int64_t U8 = QNT_RT_U8, S8 = QNT_RT_S8;
  return {
    // name, n h w c, kh kw sh sw, pt pb pl pr,
    // src dtype/zp/qmin/qmax, dst dtype/zp/qmin/qmax, perChannel, bias, wmin, wmax
    {"MobileNet3x3S1", 1, 14, 14, 144, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 0, 0, 255, true, true, -128, 127},
    {"MobileNet3x3S2", 3, 15, 15, 96, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 3, 0, 255, U8, 0, 0, 255, true, true, -128, 127},
    {"OneChannel", 1, 9, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 5, 0, 255, U8, 7, 0, 255, true, true, -128, 127},
    {"SevenChannelsS8", 3, 5, 9, 7, 3, 3, 2, 1, 1, 1, 1, 1,
     S8, -3, -128, 127, S8, 2, -128, 127, true, true, -128, 127},
    {"Channels33Kernel5x5", 1, 11, 13, 33, 5, 5, 1, 1, 2, 2, 2, 2,
     U8, 128, 0, 255, S8, -1, -128, 127, true, false, -128, 127},
    {"Kernel5x5Stride2AsymPad", 2, 12, 11, 24, 5, 5, 2, 2, 2, 1, 1, 2,
     S8, 0, -128, 127, U8, 128, 0, 255, false, true, -128, 127},
    {"Kernel1x1", 3, 7, 5, 40, 1, 1, 1, 1, 0, 0, 0, 0,
     U8, 11, 0, 255, U8, 3, 0, 255, true, true, -128, 127},
    {"Kernel1x1Stride2Padded", 1, 9, 9, 17, 1, 1, 2, 2, 1, 0, 0, 1,
     U8, 9, 0, 255, U8, 5, 0, 255, false, true, -128, 127},
    {"Kernel3x1", 1, 10, 6, 48, 3, 1, 1, 1, 1, 1, 0, 0,
     S8, 4, -128, 127, S8, -9, -128, 127, true, true, -128, 127},
    {"Kernel1x3Stride2", 1, 6, 10, 33, 1, 3, 2, 2, 0, 0, 1, 1,
     U8, 0, 0, 255, U8, 0, 0, 255, true, true, -128, 127},
    {"NoPaddingWide", 1, 8, 37, 64, 3, 3, 1, 1, 0, 0, 0, 0,
     U8, 60, 0, 255, U8, 60, 0, 255, true, false, -128, 127},
    {"ReluRangeU8", 1, 9, 9, 32, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 7, 0, 255, U8, 90, 90, 255, true, true, -128, 127},
    {"ReluRangeS8", 3, 7, 7, 24, 3, 3, 2, 2, 1, 1, 1, 1,
     S8, -128, -128, 127, S8, -20, -20, 127, true, true, -128, 127},
    {"NarrowDstRange", 1, 6, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 100, 50, 200, false, true, -128, 127},
    {"ReduceRangeU8", 1, 8, 8, 144, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 0, 0, 127, U8, 0, 0, 255, true, true, -127, 127},
    // Accumulators beyond int16: inputs at the range ends, weights -128 / 127.
    {"ExtremeU8", 3, 7, 9, 33, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 0, 0, 255, true, false, -128, 127, 0, true},
    {"ExtremeS8ZeroPoint", 1, 7, 7, 20, 5, 5, 1, 1, 2, 2, 2, 2,
     S8, 127, -128, 127, S8, 0, -128, 127, true, true, -128, -128, 0, true},
    {"ExtremeU8ZeroPoint255", 1, 6, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 255, 0, 255, U8, 0, 0, 255, false, true, 127, 127, 0, true},
    // Zero points beyond the src dtype (the runtime accepts |zp| <= 2^14).
    {"LargeSrcZeroPoint", 1, 5, 5, 9, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 16384, 0, 255, S8, 0, -128, 127, true, true, -4, 4},
    {"NegativeSrcZeroPoint", 1, 5, 5, 9, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, -16384, -128, 127, U8, 0, 0, 255, true, true, -4, 4},
    // M = 0.5 / 0.25: many float(acc) * M are exact ties, rounded to even,
    // with odd dst zero points.
    {"TiesHalf", 1, 7, 7, 19, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 11, 0, 255, false, false, -1, 1, 0.5f},
    {"TiesQuarterSrcZp", 1, 6, 6, 35, 3, 3, 2, 2, 1, 1, 1, 1,
     S8, 3, -128, 127, S8, -7, -128, 127, false, true, -1, 1, 0.25f},
    {"TiesHalfClampedS8", 1, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 128, 0, 255, S8, 1, -128, 127, true, true, -2, 2, 0.5f},
    // The 3x3 vpdpbusd kernel: padding filled with the src zero point (as
    // u8 zp, or zp + 128 for s8), which must then contribute nothing.
    {"PadZp200U8S1", 2, 9, 11, 70, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 200, 0, 255, U8, 3, 0, 255, true, true, -128, 127},
    {"PadZp255U8S2OddSize", 1, 13, 9, 33, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 255, 0, 255, U8, 0, 0, 255, true, true, -128, 127},
    {"PadZpMinus100S8S1", 1, 7, 8, 96, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, -100, -128, 127, S8, 5, -128, 127, true, true, -128, 127},
    {"PadZpMinus128S8S2", 2, 10, 10, 144, 3, 3, 2, 2, 1, 1, 1, 1,
     S8, -128, -128, 127, U8, 0, 0, 255, true, true, -128, 127},
    {"PadZp127S8S1", 1, 5, 19, 65, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, 127, -128, 127, S8, -128, -128, 127, true, false, -128, 127},
    // Asymmetric and wider padding; an odd number of output rows (the
    // stride-1 kernel computes rows in pairs).
    {"Pad0Top2Left2S1", 1, 7, 9, 48, 3, 3, 1, 1, 0, 2, 2, 0,
     U8, 77, 0, 255, U8, 9, 0, 255, true, true, -128, 127},
    {"Pad2AllS2", 1, 8, 7, 200, 3, 3, 2, 2, 2, 2, 2, 2,
     S8, 9, -128, 127, S8, 0, -20, 100, true, true, -128, 127},
    {"NoPadS2", 3, 9, 9, 16, 3, 3, 2, 2, 0, 0, 0, 0,
     U8, 13, 0, 255, U8, 0, 0, 255, false, true, -128, 127},
    {"TallS1OddRows", 1, 15, 4, 128, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 0, 0, 255, true, true, -128, 127},
    // 28+ output rows at stride 1: two output rows per item (one quad set
    // for both), with an odd row left over and padding filled with zp'.
    {"PairedRowsOddU8", 2, 31, 6, 80, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 90, 0, 255, U8, 4, 0, 255, true, true, -128, 127},
    {"PairedRowsS8", 1, 30, 5, 33, 3, 3, 1, 1, 0, 0, 1, 1,
     S8, -7, -128, 127, S8, 3, -100, 127, true, true, -128, 127},
    {"PairedRowsExtremeS8", 1, 29, 4, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, 127, -128, 127, U8, 0, 0, 255, true, false, -128, 127, 0, true},
    // u8 255 x -128 in all 9 taps (no zero point): the largest pair sums.
    {"ExtremeMinus128U8S2", 1, 9, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 0, 0, 255, true, true, -128, -127, 0, true},
    {"ExtremeS8ZeroPointS1", 1, 6, 6, 40, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, -128, -128, 127, S8, 0, -128, 127, true, false, -128, 127, 0, true},
    // M = 1e9: float(acc) * M beyond 2^31 (cvtps2dq alone would give
    // INT_MIN), outputs at zp when acc = 0 and clamped otherwise.
    {"HugeScaleU8", 1, 6, 6, 40, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 100, 100, 101, U8, 128, 0, 255, false, false, -1, 1, 1e9f},
    {"HugeScaleS8S2", 1, 8, 8, 72, 3, 3, 2, 2, 1, 1, 1, 1,
     S8, 0, 0, 1, S8, -3, -128, 127, false, false, -1, 1, 1e9f},
    // dst zero points: int16 saturation in the requantization, and beyond
    // what the 3x3 kernel takes (the int16 kernel runs).
    {"DstZp30000", 1, 6, 6, 32, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, U8, 30000, 0, 255, true, true, -128, 127, 0, false,
     true},
    {"DstZpMinus40000", 1, 6, 6, 32, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, 0, 255, S8, -40000, -128, 127, true, true, -128, 127, 0, false,
     true},
  };
}
// clang-format on

/// The random cases' draws from one generator.
struct Draw {
  std::mt19937 rng;
  explicit Draw(unsigned seed) : rng(seed) {}

  int64_t pick(std::initializer_list<int64_t> v) {
    return *(v.begin() +
             std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
  }
  int64_t range(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }

  /// A random case's types, zero points, clamps, weights and bias; with
  /// `varyQmax`, dst_qmax may sit just above the zero point too (so that
  /// not every output clamps).
  void types(DwCase &tc, bool varyQmax) {
    tc.srcDtype = pick({QNT_RT_U8, QNT_RT_S8});
    tc.dstDtype = pick({QNT_RT_U8, QNT_RT_S8});
    const int64_t slo = dtypeMin(tc.srcDtype), shi = dtypeMax(tc.srcDtype);
    const int64_t dlo = dtypeMin(tc.dstDtype), dhi = dtypeMax(tc.dstDtype);
    tc.srcQmin = slo, tc.srcQmax = shi;
    tc.srcZp = pick({0, 1}) ? 0 : range(slo, shi);
    tc.dstZp = pick({0, 1}) ? 0 : range(dlo, dhi);
    tc.dstQmin = pick({0, 1}) ? tc.dstZp : dlo; // relu-like or full
    tc.dstQmax = !varyQmax || pick({0, 1})
                     ? dhi
                     : range(std::min(tc.dstZp + 20, dhi), dhi);
    tc.perChannel = pick({0, 1, 1});
    tc.bias = pick({0, 1});
    tc.wmin = -128, tc.wmax = 127;
    tc.extreme = pick({0, 0, 0, 1});
  }
};

/// Random cases over the shapes, types and ranges the kernel takes.
std::vector<DwCase> randomCases() {
  Draw d(2024);
  std::vector<DwCase> cases;
  for (int i = 0; i < 40; ++i) {
    DwCase tc;
    tc.name = "Random" + std::to_string(i);
    tc.n = d.pick({1, 1, 3});
    tc.c = d.pick({1, 7, 16, 24, 31, 32, 33, 48, 64, 144});
    tc.kh = d.pick({1, 3, 3, 5});
    tc.kw = d.pick({1, 3, 3, 5});
    tc.sh = d.pick({1, 2});
    tc.sw = d.pick({1, 2});
    tc.pt = d.range(0, tc.kh - 1), tc.pb = d.range(0, tc.kh - 1);
    tc.pl = d.range(0, tc.kw - 1), tc.pr = d.range(0, tc.kw - 1);
    tc.h = d.range(std::max<int64_t>(1, tc.kh - tc.pt - tc.pb), 13);
    tc.w = d.range(std::max<int64_t>(1, tc.kw - tc.pl - tc.pr), 19);
    d.types(tc, /*varyQmax=*/false);
    cases.push_back(tc);
  }
  return cases;
}

/// Random 3x3 convs at stride 1 and 2 (the 3x3 kernel's shapes): channel
/// counts around its 64- and 32-channel blocks, rows long enough for
/// several strips, every src zero point that fits its padding byte.
std::vector<DwCase> random3x3Cases() {
  Draw d(77);
  std::vector<DwCase> cases;
  for (int i = 0; i < 30; ++i) {
    DwCase tc;
    tc.name = "Random3x3_" + std::to_string(i);
    tc.n = d.pick({1, 2});
    tc.c = d.pick({1, 8, 16, 31, 32, 33, 63, 64, 65, 96, 144, 160});
    tc.kh = tc.kw = 3;
    tc.sh = tc.sw = d.pick({1, 2});
    tc.pt = d.range(0, 2), tc.pb = d.range(0, 2);
    tc.pl = d.range(0, 2), tc.pr = d.range(0, 2);
    tc.h = d.range(std::max<int64_t>(1, 3 - tc.pt - tc.pb), 12);
    tc.w = d.range(std::max<int64_t>(1, 3 - tc.pl - tc.pr), 45);
    d.types(tc, /*varyQmax=*/true);
    cases.push_back(tc);
  }
  return cases;
}

std::vector<DwCase> allCases() {
  auto cases = handWrittenCases();
  for (const auto &more : {randomCases(), random3x3Cases()})
    cases.insert(cases.end(), more.begin(), more.end());
  return cases;
}

const char *const kIsas[] = {"avx512_vnni", "avx512", "avx2"};

/// Whether the avx512_vnni kernel runs `tc` on its 3x3 vpdpbusd kernel.
bool takes3x3(const DwCase &tc) {
  const int64_t zp = tc.srcZp + (tc.srcDtype == QNT_RT_S8 ? 128 : 0);
  return tc.kh == 3 && tc.kw == 3 && tc.sh == tc.sw &&
         (tc.sh == 1 || tc.sh == 2) && zp >= 0 && zp <= 255 &&
         std::llabs(tc.dstZp) <= 32767 - 255;
}

class DepthwiseConv
    : public ::testing::TestWithParam<std::tuple<DwCase, const char *>> {};

TEST_P(DepthwiseConv, MatchesReferenceExactly) {
  const DwCase &tc = std::get<0>(GetParam());
  const std::string isa = std::get<1>(GetParam());
#if !defined(__x86_64__)
  GTEST_SKIP() << "the depthwise kernel is x86-64 only";
#endif
  ConvProblem pr = makeProblem(tc, 7 + tc.c);
  ConvRun dw = runConvImpl(pr, ("dwconv:" + isa).c_str());
  if (dw.status == -1 && isa != "avx2")
    GTEST_SKIP() << "this CPU has no " << isa << ": " << dw.describe;
  ASSERT_EQ(dw.status, 0) << dw.describe;
  EXPECT_EQ(dw.describe,
            "qnt dwconv " + isa +
                (isa == "avx512_vnni" && takes3x3(tc) ? " 3x3" : ""));
  EXPECT_EQ(convMismatches(dw.out, pr.want, tc.c, "header formula"), 0)
      << "of " << pr.want.size();
  // The kernel qnt_rt_conv2d runs without the depthwise kernel.
  ConvRun fallback = runConvImpl(pr, "fallback");
  ASSERT_EQ(fallback.status, 0) << fallback.describe;
  EXPECT_EQ(convMismatches(dw.out, fallback.out, tc.c, fallback.describe), 0);
  // The data must exercise the real range, not just the clamp.
  int64_t clamped = 0;
  for (int64_t v : pr.want)
    clamped += v == tc.dstQmin || v == tc.dstQmax;
  if (!tc.allClampedOk) {
    EXPECT_LT(clamped, int64_t(pr.want.size())) << "all outputs clamped";
  }
}

INSTANTIATE_TEST_SUITE_P(Conv2d, DepthwiseConv,
                         ::testing::Combine(::testing::ValuesIn(allCases()),
                                            ::testing::ValuesIn(kIsas)),
                         [](const auto &info) {
                           return std::get<0>(info.param).name + "_" +
                                  std::get<1>(info.param);
                         });

/// The kernel qnt_rt_conv2d picks for a depthwise conv follows the
/// environment: QNT_RT_FORCE_REFERENCE, then ONEDNN_MAX_CPU_ISA.
TEST(DepthwiseConvSelection, FollowsEnvironment) {
  const DwCase tc = handWrittenCases()[0];
  ConvProblem pr = makeProblem(tc, 1);
  ConvRun got = runConvImpl(pr, "auto");
  ASSERT_EQ(got.status, 0) << got.describe;
  EXPECT_EQ(convMismatches(got.out, pr.want, tc.c, got.describe), 0);
  // The public entry point gives the same bytes.
  void *slot = nullptr;
  std::vector<uint8_t> dst(pr.want.size());
  qnt_rt_conv2d(&slot, reinterpret_cast<const int64_t *>(&pr.p),
                pr.fparams.data(), pr.src.data(), pr.weight.data(),
                pr.bias.data(), dst.data());
  EXPECT_EQ(convMismatches(unpack(dst, pr.p.dst_dtype), pr.want, tc.c,
                           "qnt_rt_conv2d"),
            0);

  const char *force = std::getenv("QNT_RT_FORCE_REFERENCE");
  const char *maxIsa = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (force && *force && std::strcmp(force, "0") != 0) {
    EXPECT_EQ(got.describe.rfind("reference", 0), 0u) << got.describe;
    return;
  }
#if defined(__x86_64__)
  if (maxIsa && strcasecmp(maxIsa, "avx2") == 0) {
    EXPECT_EQ(got.describe, "qnt dwconv avx2");
    return;
  }
  ConvRun best = runConvImpl(pr, "dwconv");
  ASSERT_EQ(best.status, 0) << best.describe;
  EXPECT_EQ(got.describe, best.describe);
  if (!maxIsa || !*maxIsa || strcasecmp(maxIsa, "all") == 0) {
    const char *widest = "avx2";
    for (const char *isa : kIsas)
      if (runConvImpl(pr, (std::string("dwconv:") + isa).c_str()).status == 0) {
        widest = isa;
        break;
      }
    EXPECT_EQ(
        got.describe,
        runConvImpl(pr, (std::string("dwconv:") + widest).c_str()).describe);
  }
#else
  (void)maxIsa;
#endif
}

/// `auto` takes the depthwise kernel at stride 2 only where its automatic
/// ISA runs the 3x3 vpdpbusd kernel (AVX-512 VNNI, allowed by
/// ONEDNN_MAX_CPU_ISA), or where the fallback would be the reference
/// kernel; elsewhere oneDNN keeps it (it is faster there).
TEST(DepthwiseConvSelection, StrideTwoPerShape) {
  const char *force = std::getenv("QNT_RT_FORCE_REFERENCE");
  if (force && *force && std::strcmp(force, "0") != 0)
    GTEST_SKIP() << "every conv runs on the reference kernel";
  auto check = [](const DwCase &tc, bool wins3x3) {
    ConvProblem pr = makeProblem(tc, 2);
    ConvRun got = runConvImpl(pr, "auto");
    ASSERT_EQ(got.status, 0) << got.describe;
    EXPECT_EQ(convMismatches(got.out, pr.want, tc.c, got.describe), 0);
    ConvRun best = runConvImpl(pr, "dwconv");
    ASSERT_EQ(best.status, 0) << best.describe;
    const std::string fallback = runConvImpl(pr, "fallback").describe;
    if ((wins3x3 && best.describe == "qnt dwconv avx512_vnni 3x3") ||
        fallback.rfind("reference", 0) == 0)
      EXPECT_EQ(got.describe, best.describe) << tc.name;
    else
      EXPECT_EQ(got.describe, fallback) << tc.name;
  };
  const DwCase s2 = handWrittenCases()[1]; // MobileNet3x3S2: u8 src
  ASSERT_EQ(s2.sh, 2);
  check(s2, true);
  // 5x5 at stride 2: oneDNN, whatever the ISA.
  DwCase k5 = s2;
  k5.name = "Kernel5x5S2";
  k5.kh = k5.kw = 5, k5.pt = k5.pb = k5.pl = k5.pr = 2;
  check(k5, false);
}

/// Convs the kernel does not take go to the other kernels, still exact.
TEST(DepthwiseConvSelection, DeclinesUnsupportedConvs) {
  DwCase tc = handWrittenCases()[0];
  tc.c = 16, tc.h = tc.w = 6;
  // An accumulator that may leave int32: the reference kernel saturates it.
  tc.bias = true;
  ConvProblem pr = makeProblem(tc, 3);
  reinterpret_cast<int32_t *>(pr.bias.data())[0] = 2147483000;
  ConvRun r = runConvImpl(pr, "dwconv:avx2");
  EXPECT_EQ(r.status, -2);
  EXPECT_EQ(r.describe, "the accumulator may exceed int32");

  // Channel multiplier 2, dilation 2, float.
  ConvProblem mult = makeProblem(tc, 4);
  mult.p.oc = 2 * tc.c, mult.p.num_scales = 1;
  EXPECT_EQ(runConvImpl(mult, "dwconv").status, -2);
  ConvProblem dil = makeProblem(tc, 5);
  dil.p.dilation_h = 2, dil.p.oh = tc.h + 2 - 5 + 1;
  r = runConvImpl(dil, "dwconv");
  EXPECT_EQ(r.status, -2);
  EXPECT_EQ(r.describe, "dilation");
}

} // namespace
