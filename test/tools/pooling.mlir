// Max and average pooling (TOSA semantics: padding never wins a max and is
// left out of an average's divisor) run on oneDNN and match numpy.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "import numpy as np; np.savez('%t/in.npz', x=np.random.RandomState(1).randn(2,6,7,3).astype(np.float32))"
// RUN: quant-run %s -i %t/in.npz -o %t/out.npz
// RUN: %python %s.py %t/in.npz %t/out.npz

func.func @main(%x: tensor<2x6x7x3xf32> {qnt.name = "x"}) -> (tensor<2x3x4x3xf32> {qnt.name = "max"}, tensor<2x3x4x3xf32> {qnt.name = "avg"}) {
  %m = tosa.max_pool2d %x {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 0, 1, 1>} : (tensor<2x6x7x3xf32>) -> tensor<2x3x4x3xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %a = tosa.avg_pool2d %x, %zp, %zp {acc_type = f32, kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 0, 1, 1>} : (tensor<2x6x7x3xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<2x3x4x3xf32>
  return %m, %a : tensor<2x3x4x3xf32>, tensor<2x3x4x3xf32>
}
