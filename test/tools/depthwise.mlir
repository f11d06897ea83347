// Float depthwise conv (multiplier 2, stride 2, padding) lifted by
// --qnt-fuse and run on oneDNN matches a numpy reference.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "import numpy as np; np.savez('%t/in.npz', x=np.random.RandomState(0).randn(1,5,5,3).astype(np.float32))"
// RUN: quant-run %s -i %t/in.npz -o %t/out.npz
// RUN: %python %s.py %t/in.npz %t/out.npz

func.func @main(%x: tensor<1x5x5x3xf32> {qnt.name = "x"}) -> tensor<1x3x3x6xf32> {
  %w = "tosa.const"() {values = dense<[[[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], [[-0.1, -0.2], [-0.3, -0.4], [-0.5, -0.6]], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]], [[[0.7, 0.8], [0.9, 1.0], [1.1, 1.2]], [[-0.7, 0.8], [-0.9, 1.0], [-1.1, 1.2]], [[0.2, 0.2], [0.3, 0.3], [0.4, 0.4]]], [[[1.5, -1.5], [2.0, -2.0], [0.25, -0.25]], [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [[-1.0, 1.0], [0.5, -0.5], [0.125, 0.0625]]]]> : tensor<3x3x3x2xf32>} : () -> tensor<3x3x3x2xf32>
  %b = "tosa.const"() {values = dense<[0.5, -0.5, 1.0, -1.0, 0.25, 0.0]> : tensor<6xf32>} : () -> tensor<6xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %y = tosa.depthwise_conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>} : (tensor<1x5x5x3xf32>, tensor<3x3x3x2xf32>, tensor<6xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x3x3x6xf32>
  return %y : tensor<1x3x3x6xf32>
}
