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

// exp, tanh and log (softmax, sigmoid, tanh-GELU, log_softmax), whose LLVM
// intrinsics are a libm call per element, become arithmetic too; sqrt
// (an instruction) is kept.
// CHECK-LABEL: func.func @exp_tanh_log
// CHECK-NOT: math.tanh
// CHECK-NOT: math.exp
// CHECK-NOT: math.log
// CHECK: math.sqrt
// CHECK-NOT: math.
// CHECK: return
func.func @exp_tanh_log(%x: vector<8xf32>) -> vector<8xf32> {
  %t = math.tanh %x : vector<8xf32>
  %e = math.exp %t : vector<8xf32>
  %l = math.log %e : vector<8xf32>
  %s = math.sqrt %l : vector<8xf32>
  return %s : vector<8xf32>
}

// -----

// The whole pipeline on a TOSA GELU and a sigmoid: no libm call and no
// libm intrinsic in the LLVM dialect.
// LLVM-LABEL: llvm.func @gelu
// LLVM-NOT: llvm.call @erff
// LLVM-NOT: math.erf
// LLVM: llvm.return
func.func @gelu(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %e = tosa.erf %x : (tensor<4x64xf32>) -> tensor<4x64xf32>
  return %e : tensor<4x64xf32>
}

// -----

// LLVM-LABEL: llvm.func @sigmoid_tanh
// LLVM-NOT: llvm.intr.exp
// LLVM-NOT: llvm.intr.tanh
// LLVM-NOT: llvm.call @{{[a-z]+f}}(
// LLVM: llvm.return
func.func @sigmoid_tanh(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %s = tosa.sigmoid %x : (tensor<4x64xf32>) -> tensor<4x64xf32>
  %t = tosa.tanh %s : (tensor<4x64xf32>) -> tensor<4x64xf32>
  return %t : tensor<4x64xf32>
}
