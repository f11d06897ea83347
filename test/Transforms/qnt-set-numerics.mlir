// RUN: quant-opt %s --qnt-set-numerics=numerics=onnxruntime | FileCheck %s
// RUN: quant-opt %s --qnt-set-numerics=numerics=qnt | FileCheck %s --check-prefix=QNT
// RUN: not quant-opt %s --qnt-set-numerics=numerics=fast 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not quant-opt %s --qnt-set-numerics 2>&1 | FileCheck %s --check-prefix=EMPTY

// The module's qnt.numerics is set (replacing what it had); a value other
// than qnt or onnxruntime is an error and nothing is printed.
// CHECK: module attributes {qnt.numerics = "onnxruntime"}
// QNT: module attributes {qnt.numerics = "qnt"}
// BAD: error: --qnt-set-numerics: numerics must be qnt or onnxruntime, got 'fast'
// BAD-NOT: module
// EMPTY: error: --qnt-set-numerics: numerics must be qnt or onnxruntime, got ''
module attributes {qnt.numerics = "qnt"} {
  func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
    return %x : tensor<2xf32>
  }
}
