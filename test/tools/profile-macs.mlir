// The runtime profiler counts a conv2d's multiply-accumulates on input
// values inside the image: taps on padding are left out.
// 7x7 input, 3x3 kernel, padding 1: 19 taps per axis inside the image
// (not 21), so 1 x 3 oc x 2 c x 19 x 19 = 2166 MACs for the first conv.
// Stride 2 on the 7x7 result: 2+3+3+2 = 10 taps per axis, so
// 3 oc x 3 c x 10 x 10 = 900 for the second.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "import numpy as np; np.savez('%t/in.npz', x=np.ones((1,7,7,2), np.float32))"
// RUN: env QNT_RT_PROFILE=1 QNT_RT_PROFILE_JSON=%t/profile.json quant-run %s -i %t/in.npz --quiet
// RUN: FileCheck %s < %t/profile.json

// CHECK: "format": "qnt-profile"
// CHECK: "op": "conv2d", "desc": "conv2d f32 n1 c2 7x7 -> oc3 7x7 k3x3 s1 g1
// CHECK-SAME: "macs_per_call": 2166}
// CHECK: "op": "conv2d", "desc": "conv2d f32 n1 c3 7x7 -> oc3 4x4 k3x3 s2 g1
// CHECK-SAME: "macs_per_call": 900}

func.func @main(%x: tensor<1x7x7x2xf32> {qnt.name = "x"}) -> tensor<1x4x4x3xf32> {
  %w1 = "tosa.const"() {values = dense<0.5> : tensor<3x3x3x2xf32>} : () -> tensor<3x3x3x2xf32>
  %w2 = "tosa.const"() {values = dense<0.25> : tensor<3x3x3x3xf32>} : () -> tensor<3x3x3x3xf32>
  %b = "tosa.const"() {values = dense<0.0> : tensor<3xf32>} : () -> tensor<3xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %y = tosa.conv2d %x, %w1, %b, %zp, %zp {acc_type = f32, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x7x7x2xf32>, tensor<3x3x3x2xf32>, tensor<3xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x7x7x3xf32>
  %z = tosa.conv2d %y, %w2, %b, %zp, %zp {acc_type = f32, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 2, 2>, dilation = array<i64: 1, 1>} : (tensor<1x7x7x3xf32>, tensor<3x3x3x3xf32>, tensor<3xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x3xf32>
  return %z : tensor<1x4x4x3xf32>
}
