// A module whose #qnt.qspec parses but fails to verify: a located error
// from quant-run. Reproducer of fuzz/mutate.py (a mutant of
// test/Dialect/Qnt/invalid.mlir): under ASan it reported a use-after-poison
// while parsing the attribute, a false positive of LLVM's allocator
// poisoning shared with uninstrumented libMLIR (scripts/asan.sh).
// RUN: not quant-run %s --print 2>&1 | FileCheck %s

// CHECK: error: 'qnt.fake_quant' op expects 2 scale(s) and zero point(s), got 1 and 1
// CHECK: quant-run: error: cannot parse
func.func @f() -> tensor<2x3xf32> {
  %x = arith.constant dense<1.0> : tensor<2x3xf32>
  %0 = qnt.fake_quant %x {scale = array<f32: 0.1>, zero_point = array<i64: 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
