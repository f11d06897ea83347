// RUN: quant-opt %s --qnt-approximate-math --split-input-file | FileCheck %s --enable-var-scope
// RUN: quant-opt %s --qnt-lower-to-llvm --split-input-file | FileCheck %s --check-prefix=LLVM

// math.erf (tosa.erf: GELU) becomes arithmetic on the same vector type:
// no math.erf and no call is left, so convert-to-llvm can lower it.
// CHECK-LABEL: func.func @erf_vector
// CHECK-NOT: math.erf
// CHECK: arith.select {{.*}} : vector<16xi1>, vector<16xf32>
// CHECK-NOT: math.erf
// CHECK: return {{.*}} : vector<16xf32>
func.func @erf_vector(%x: vector<16xf32>) -> vector<16xf32> {
  %y = math.erf %x : vector<16xf32>
  return %y : vector<16xf32>
}

// -----

// The other math functions are left to their LLVM intrinsics.
// CHECK-LABEL: func.func @others_kept
// CHECK: math.tanh
// CHECK: math.exp
func.func @others_kept(%x: f32) -> f32 {
  %t = math.tanh %x : f32
  %e = math.exp %t : f32
  return %e : f32
}

// -----

// The whole pipeline on a TOSA GELU: no erff call in the LLVM dialect.
// LLVM-LABEL: llvm.func @gelu
// LLVM-NOT: llvm.call @erff
// LLVM-NOT: math.erf
// LLVM: llvm.return
func.func @gelu(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %e = tosa.erf %x : (tensor<4x64xf32>) -> tensor<4x64xf32>
  return %e : tensor<4x64xf32>
}
