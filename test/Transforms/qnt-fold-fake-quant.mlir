// RUN: quant-opt %s --qnt-fold-fake-quant --split-input-file | FileCheck %s
// RUN: quant-opt %s --qnt-fold-fake-quant --qnt-convert --split-input-file | FileCheck %s --check-prefix=CONVERT
// RUN: quant-opt %s --qnt-fold-fake-quant=clamp-to-quant-range --split-input-file | FileCheck %s --check-prefix=NARROW

// Learned parameters become the QDQ form as they are: the activation's
// scale / zero point, the weight's per-channel scales; the types clamp to
// the storage range as PyTorch's converted model does (the [0, 127] output
// fake quant becomes u8), or to the qspec's range with clamp-to-quant-range.
// CHECK-LABEL: func.func @qat_linear
// CHECK: %[[XQ:.*]] = quant.qcast %arg0 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<u8:f32, 0.05000000074505806:3>>
// CHECK: %[[X:.*]] = quant.dcast %[[XQ]]
// CHECK: %[[WQ:.*]] = quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32:0, {0.0099999997764825821,0.019999999552965164}>>
// CHECK: %[[W:.*]] = quant.dcast %[[WQ]]
// CHECK: %[[Y:.*]] = qnt.linear %[[X]], %[[W]]
// CHECK: quant.qcast %[[Y]] : tensor<1x2xf32> to tensor<1x2x!quant.uniform<u8:f32, 0.10000000149011612:5>>
// NARROW-LABEL: func.func @qat_linear
// NARROW: quant.qcast %{{.*}} : tensor<1x2xf32> to tensor<1x2x!quant.uniform<u8<0:127>:f32, 0.10000000149011612:5>>
// CHECK-NOT: qnt.fake_quant
// The QDQ form then converts like a calibrated one: w / S_w rounded to
// even, 0.125 / 0.02 = 6.25 -> 6.
// CONVERT-LABEL: func.func @qat_linear
// CONVERT: arith.constant dense<{{\[}}[50, -25], [50, 6]]> : tensor<2x2xi8>
// CONVERT: qnt.linear %{{.*}}, %{{.*}} : (tensor<1x2x!quant.uniform<u8:f32, 0.05000000074505806:3>>, tensor<2x2x!quant.uniform<i8:f32:0, {0.0099999997764825821,0.019999999552965164}>>) -> tensor<1x2x!quant.uniform<u8:f32, 0.10000000149011612:5>>
func.func @qat_linear(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %xf = qnt.fake_quant %x {scale = array<f32: 0.05>, zero_point = array<i64: 3>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x2xf32>
  %w = arith.constant dense<[[0.5, -0.25], [1.0, 0.125]]> : tensor<2x2xf32>
  %wf = qnt.fake_quant %w {scale = array<f32: 0.01, 0.02>, zero_point = array<i64: 0, 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -127, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x2xf32>
  %y = qnt.linear %xf, %wf : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %yf = qnt.fake_quant %y {scale = array<f32: 0.1>, zero_point = array<i64: 5>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<1x2xf32>
  return %yf : tensor<1x2xf32>
}

// -----

// Negative: nothing to fold without fake_quant ops.
// CHECK-LABEL: func.func @none
// CHECK-NEXT: return %arg0
func.func @none(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
