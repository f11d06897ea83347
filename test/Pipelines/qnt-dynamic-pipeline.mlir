// RUN: quant-opt %s --qnt-dynamic-pipeline | FileCheck %s
// RUN: quant-opt %s --qnt-dynamic-pipeline="qconfig=qnnpack" | FileCheck %s --check-prefix=QNNPACK

// The linear layer lifted from TOSA gets i8 weights (per tensor, max|w| /
// 127.5 = 4 / 127.5) and a run-time input range: [0, 127] on x86 (PyTorch's
// reduce_range), [0, 255] on qnnpack.
// CHECK-LABEL: func.func @main
// CHECK: qnt.linear %{{.*}}, %{{.*}}, %{{.*}} {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2x!quant.uniform<i8:f32, 0.031372550874948502>>, tensor<2xf32>) -> tensor<1x2xf32>
// QNNPACK: dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>
func.func @main(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %s3 = tosa.const_shape {values = dense<[1, 1, 2]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %x3 = tosa.reshape %x, %s3 : (tensor<1x2xf32>, !tosa.shape<3>) -> tensor<1x1x2xf32>
  %w = "tosa.const"() {values = dense<[[[1.0, -4.0], [2.0, 0.5]]]> : tensor<1x2x2xf32>} : () -> tensor<1x2x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x3, %w, %zp, %zp : (tensor<1x1x2xf32>, tensor<1x2x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x2xf32>
  %s2 = tosa.const_shape {values = dense<[1, 2]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %y = tosa.reshape %mm, %s2 : (tensor<1x1x2xf32>, !tosa.shape<2>) -> tensor<1x2xf32>
  %b = "tosa.const"() {values = dense<[[0.5, -0.5]]> : tensor<1x2xf32>} : () -> tensor<1x2xf32>
  %z = tosa.add %y, %b : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32>
  return %z : tensor<1x2xf32>
}
