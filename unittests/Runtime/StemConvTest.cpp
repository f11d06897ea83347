//===- StemConvTest.cpp - The runtime's conv2d on few input channels ------===//
//
// The stem kernel (runtime/lib/StemConv.cpp), through qnt_rt_conv2d_testing,
// against a scalar conv2d written from qnt/Runtime.h and against the kernel
// qnt_rt_conv2d runs without it (oneDNN or the reference kernel): every
// output byte must be equal. The cases cover its spans (kw * c bytes read
// as 4-byte quads, the bytes past the span meeting zero weights), the
// padding filled with the src zero point, strips of 6 pixels with an
// overlapping last strip (and rows shorter than a strip), 64- and 32-
// channel blocks with partial ones, and the requantization's edges.
//
//===----------------------------------------------------------------------===//

#include "ConvTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <strings.h>

using namespace qnt_test;

namespace {

struct StemCase {
  std::string name;
  int64_t n, h, w, c, oc, kh, kw, sh, sw, pt, pb, pl, pr;
  int64_t srcDtype, srcZp, dstDtype, dstZp, dstQmin, dstQmax;
  bool bias = true;
  float fixedM = 0;          // 0: M spreads the outputs over the dst range
  bool extreme = false;      // inputs and weights at the ends of their ranges
  bool perTensor = false;    // one M for every output channel
  bool allClampedOk = false; // e.g. a dst zero point outside the dst range
  int64_t oh() const { return (h + pt + pb - kh) / sh + 1; }
  int64_t ow() const { return (w + pl + pr - kw) / sw + 1; }
};

void PrintTo(const StemCase &tc, std::ostream *os) { *os << tc.name; }

ConvProblem makeProblem(const StemCase &tc, uint32_t seed) {
  std::mt19937 rng(seed);
  ConvProblem pr;
  const int64_t taps = tc.kh * tc.kw * tc.c;
  const int64_t slo = dtypeMin(tc.srcDtype), shi = dtypeMax(tc.srcDtype);
  auto w = randInts(rng, tc.oc * taps, -128, 127);
  auto src = randInts(rng, tc.n * tc.h * tc.w * tc.c, slo, shi);
  if (tc.extreme) {
    for (auto &v : src)
      v = v & 1 ? shi : slo;
    for (auto &v : w)
      v = v & 1 ? 127 : -128;
  }
  std::vector<int64_t> bias;
  if (tc.bias)
    bias = randInts(rng, tc.oc, -30000, 30000);

  qnt_rt_conv2d_params &p = pr.p;
  p.n = tc.n, p.h = tc.h, p.w = tc.w, p.c = tc.c, p.oc = tc.oc;
  p.kh = tc.kh, p.kw = tc.kw, p.oh = tc.oh(), p.ow = tc.ow();
  p.stride_h = tc.sh, p.stride_w = tc.sw;
  p.pad_top = tc.pt, p.pad_bottom = tc.pb, p.pad_left = tc.pl,
  p.pad_right = tc.pr;
  p.dilation_h = p.dilation_w = 1, p.groups = 1;
  p.src_dtype = tc.srcDtype, p.wei_dtype = QNT_RT_S8, p.dst_dtype = tc.dstDtype;
  p.src_zp = tc.srcZp, p.src_qmin = slo, p.src_qmax = shi;
  p.dst_zp = tc.dstZp, p.dst_qmin = tc.dstQmin, p.dst_qmax = tc.dstQmax;
  p.backend = QNT_RT_BACKEND_ONEDNN;
  finishConvProblem(pr, src, w, bias, !tc.perTensor, tc.fixedM, rng);
  return pr;
}

bool cpuHasVnni() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

// clang-format off
std::vector<StemCase> handWrittenCases() {
  const int64_t U8 = QNT_RT_U8, S8 = QNT_RT_S8;
  return {
    // name, n h w c oc, kh kw sh sw, pt pb pl pr,
    // src dtype/zp, dst dtype/zp/qmin/qmax
    // resnet18's stem (span 21: 6 quads, 3 bytes of the next pixel).
    {"ResNetStem", 2, 30, 34, 3, 64, 7, 7, 2, 2, 3, 3, 3, 3,
     U8, 127, U8, 0, 0, 255},
    // mobilenet_v2's (a 32-channel block: ymm) and 16 channels.
    {"MobileNetStem", 1, 17, 23, 3, 32, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 0, U8, 0, 0, 255},
    {"Sixteen", 1, 9, 13, 3, 16, 3, 3, 2, 2, 1, 1, 1, 1,
     S8, -5, S8, 3, -128, 127},
    // Partial blocks: 64 + 1, 64 + 36, 48 (zmm, 16 idle lanes).
    {"Oc65", 1, 8, 9, 3, 65, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 200, U8, 7, 0, 255},
    {"Oc100S8", 2, 7, 11, 2, 100, 5, 3, 2, 1, 2, 2, 1, 1,
     S8, 17, S8, -4, -128, 127},
    {"Oc48", 1, 6, 14, 4, 48, 3, 5, 1, 2, 0, 2, 2, 2,
     U8, 9, S8, 0, -128, 127},
    // One channel (span = kw), four (span a multiple of 4), five.
    {"Grey", 3, 12, 12, 1, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 33, U8, 0, 0, 255},
    {"FourChannels", 1, 10, 10, 4, 128, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, -128, U8, 50, 50, 255},
    {"FiveChannels1x1", 1, 5, 9, 5, 64, 1, 1, 1, 1, 0, 0, 0, 0,
     U8, 1, U8, 0, 0, 255},
    // One channel, spans of 7 and 5 bytes (their last quad reads 1 and 3
    // bytes of the next pixel).
    {"Grey7x7Tail3", 2, 15, 17, 1, 64, 7, 7, 2, 2, 3, 3, 3, 3,
     U8, 40, U8, 0, 0, 255},
    {"Grey5x5Tail1", 1, 11, 10, 1, 96, 5, 5, 1, 1, 2, 2, 2, 2,
     S8, 3, S8, -1, -128, 127},
    // Rows shorter than a strip; exactly one; one more (overlapping strip).
    {"Ow4", 1, 5, 4, 3, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 255, U8, 0, 0, 255},
    {"Ow6", 1, 4, 11, 3, 64, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 0, U8, 0, 0, 255},
    {"Ow7", 1, 4, 7, 3, 32, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, 0, S8, 0, -128, 127},
    // Asymmetric and wide padding; no padding; an input wider than the
    // windows reach (its last column unread).
    {"AsymPad", 1, 9, 10, 3, 64, 7, 7, 2, 2, 3, 2, 1, 3,
     S8, 100, U8, 0, 0, 255},
    {"NoPad", 2, 9, 9, 3, 64, 3, 3, 2, 2, 0, 0, 0, 0,
     U8, 70, U8, 0, 0, 255},
    {"InputWiderThanUsed", 1, 8, 14, 3, 64, 3, 3, 3, 3, 0, 0, 0, 0,
     U8, 5, U8, 0, 0, 255},
    // Narrow dst range, relu range, no bias.
    {"NarrowDst", 1, 6, 8, 3, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, U8, 100, 50, 200, false},
    // Ties (M = 0.5, half to even) and a huge M (float(acc) * M beyond
    // 2^31: clamped).
    {"TiesHalf", 1, 6, 7, 3, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 3, U8, 11, 0, 255, false, 0.5f},
    {"HugeScale", 1, 6, 7, 2, 32, 3, 3, 1, 1, 1, 1, 1, 1,
     S8, 1, S8, -3, -128, 127, true, 1e9f},
    {"HugeScaleZmm", 1, 6, 9, 3, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 100, U8, 128, 0, 255, true, 1e9f},
    // One M for all channels; a dst zero point at the kernel's limit
    // (32512: int16 saturation in the requantization; all outputs clamp).
    {"PerTensorM", 1, 7, 8, 3, 96, 3, 3, 2, 2, 1, 1, 1, 1,
     U8, 9, U8, 2, 0, 255, true, 0, false, true},
    {"DstZp32512", 1, 5, 6, 3, 64, 3, 3, 1, 1, 1, 1, 1, 1,
     U8, 0, U8, 32512, 0, 255, true, 0, false, false, true},
    // One output row and 200 channels: the threads split the row's
    // 64-channel blocks among them.
    {"Oc200OneRow", 2, 3, 12, 3, 200, 3, 3, 1, 1, 0, 0, 1, 1,
     U8, 17, U8, 0, 0, 255},
    // Accumulators far beyond int16: every product 255 * -128 or 127.
    {"Extreme7x7", 1, 9, 9, 3, 64, 7, 7, 2, 2, 3, 3, 3, 3,
     U8, 0, U8, 0, 0, 255, true, 0, true},
    {"ExtremeS8", 1, 7, 9, 4, 64, 5, 5, 1, 1, 2, 2, 2, 2,
     S8, -128, S8, 0, -128, 127, false, 0, true},
  };
}
// clang-format on

class StemConv : public ::testing::TestWithParam<StemCase> {};

TEST_P(StemConv, MatchesReferenceExactly) {
  const StemCase &tc = GetParam();
  if (!cpuHasVnni())
    GTEST_SKIP() << "the stem kernel needs AVX-512 VNNI, which this CPU lacks";
  ConvProblem pr = makeProblem(tc, 11 + tc.oc);
  ConvRun stem = runConvImpl(pr, "stemconv");
  ASSERT_EQ(stem.status, 0) << stem.describe;
  EXPECT_EQ(stem.describe, "qnt stemconv avx512_vnni");
  EXPECT_EQ(convMismatches(stem.out, pr.want, tc.oc, "header formula"), 0)
      << "of " << pr.want.size();
  ConvRun fallback = runConvImpl(pr, "fallback");
  ASSERT_EQ(fallback.status, 0) << fallback.describe;
  EXPECT_EQ(convMismatches(stem.out, fallback.out, tc.oc, fallback.describe),
            0);
  // The data must exercise the real range, not just the clamp.
  int64_t clamped = 0;
  for (int64_t v : pr.want)
    clamped += v == tc.dstQmin || v == tc.dstQmax;
  if (tc.fixedM < 1e6f && !tc.allClampedOk) {
    EXPECT_LT(clamped, int64_t(pr.want.size())) << "all outputs clamped";
  }
}

INSTANTIATE_TEST_SUITE_P(Conv2d, StemConv,
                         ::testing::ValuesIn(handWrittenCases()),
                         [](const auto &info) { return info.param.name; });

/// qnt_rt_conv2d takes the stem kernel for 1-4 input channels where 3/4 of
/// the vector lanes hold output channels (64, 32, 48, 96, 100, ... but not
/// 16 or 65) on AVX-512 VNNI, when ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA)
/// allows it and the reference kernels are not forced.
TEST(StemConvSelection, PerShapeAndEnvironment) {
  const char *force = std::getenv("QNT_RT_FORCE_REFERENCE");
  const bool forced = force && *force && std::strcmp(force, "0") != 0;
  bool limited = false;
  for (const char *var : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"}) {
    const char *isa = std::getenv(var);
    limited |= isa && *isa && strcasecmp(isa, "all") != 0 &&
               strcasecmp(isa, "avx512_core_vnni") != 0 &&
               strcasecmp(isa, "avx512_core_bf16") != 0 &&
               strcasecmp(isa, "avx512_core_amx") != 0;
  }
  auto cases = handWrittenCases();
  for (const char *name :
       {"ResNetStem", "MobileNetStem", "Sixteen", "Oc48", "Oc65", "Oc100S8"}) {
    const StemCase &tc =
        *std::find_if(cases.begin(), cases.end(),
                      [&](const StemCase &c) { return c.name == name; });
    ConvProblem pr = makeProblem(tc, 5);
    ConvRun got = runConvImpl(pr, "auto");
    ASSERT_EQ(got.status, 0) << got.describe;
    EXPECT_EQ(convMismatches(got.out, pr.want, tc.oc, got.describe), 0);
    const bool fullEnough = tc.oc != 16 && tc.oc != 65;
    const bool stem = fullEnough && cpuHasVnni() && !forced && !limited;
    if (stem)
      EXPECT_EQ(got.describe, "qnt stemconv avx512_vnni") << name;
    else
      EXPECT_NE(got.describe, "qnt stemconv avx512_vnni") << name;
  }
}

/// Convs the kernel does not take are declined with the reason.
TEST(StemConvSelection, DeclinesUnsupportedConvs) {
  if (!cpuHasVnni())
    GTEST_SKIP() << "the stem kernel needs AVX-512 VNNI, which this CPU lacks";
  const StemCase tc = handWrittenCases()[0];
  ConvProblem big = makeProblem(tc, 3);
  reinterpret_cast<int32_t *>(big.bias.data())[0] = 2147483000;
  ConvRun r = runConvImpl(big, "stemconv");
  EXPECT_EQ(r.status, -2);
  EXPECT_EQ(r.describe, "the accumulator may exceed int32");

  ConvProblem zp = makeProblem(tc, 3);
  zp.p.src_zp = 300;
  r = runConvImpl(zp, "stemconv");
  EXPECT_EQ(r.status, -2);
  EXPECT_EQ(r.describe, "zero points out of the kernel's range");

  ConvProblem dil = makeProblem(tc, 3);
  dil.p.dilation_h = 2, dil.p.oh = (tc.h + 6 - 13) / 2 + 1;
  r = runConvImpl(dil, "stemconv");
  EXPECT_EQ(r.status, -2);
  EXPECT_EQ(r.describe, "dilation");
}

} // namespace
