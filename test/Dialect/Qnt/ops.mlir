// RUN: quant-opt %s | quant-opt | FileCheck %s
// Round trip of every qnt op, float and quantized forms.

!u8 = !quant.uniform<u8<0:127>:f32, 0.05:3>
!u8out = !quant.uniform<u8<0:127>:f32, 0.1:0>
!wpc = !quant.uniform<i8:f32:0, {0.01, 0.02}>
!wpt = !quant.uniform<i8:f32, 0.03>

// CHECK-LABEL: func.func @stubs
func.func @stubs(%arg0: tensor<1x4xf32>) -> tensor<1x4xf32> {
  // CHECK: %[[Q:.*]] = qnt.quant_stub %{{.*}} : tensor<1x4xf32>
  %0 = qnt.quant_stub %arg0 : tensor<1x4xf32>
  // CHECK: qnt.dequant_stub %[[Q]] : tensor<1x4xf32>
  %1 = qnt.dequant_stub %0 : tensor<1x4xf32>
  return %1 : tensor<1x4xf32>
}

// CHECK-LABEL: func.func @observe
func.func @observe(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // CHECK: qnt.observe %{{.*}} {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<2x3xf32>
  %0 = qnt.observe %arg0 {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {id = "a:w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  %1 = qnt.observe %0 {id = "a:w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {averaging_constant = 2.500000e-01 : f32, id = "b", kind = #qnt.observer<moving_average_per_channel_minmax>
  %2 = qnt.observe %1 {id = "b", kind = #qnt.observer<moving_average_per_channel_minmax>, averaging_constant = 0.25 : f32, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 1>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {bins = 512 : i64, id = "c", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>, upsample_rate = 16 : i64}
  %3 = qnt.observe %2 {id = "c", kind = #qnt.observer<histogram>, bins = 512, upsample_rate = 16, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {id = "d", kind = #qnt.observer<percentile>, percentile = 9.990000e+01 : f32
  %4 = qnt.observe %3 {id = "d", kind = #qnt.observer<percentile>, percentile = 99.9 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {id = "e", kind = #qnt.observer<entropy>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>}
  %5 = qnt.observe %4 {id = "e", kind = #qnt.observer<entropy>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {id = "g", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine, eps = 9.99999974E-6 : f32>}
  %g = qnt.observe %arg0 {id = "g", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine, eps = 1.0e-05 : f32>} : tensor<2x3xf32>
  // CHECK: qnt.observe %{{.*}} {id = "f", kind = #qnt.observer<moving_average_minmax>
  %6 = qnt.observe %5 {id = "f", kind = #qnt.observer<moving_average_minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %6 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @fake_quant
func.func @fake_quant(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // CHECK: qnt.fake_quant %{{.*}} {qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>, scale = array<f32: 5.000000e-02>, zero_point = array<i64: 3>} : tensor<2x3xf32>
  %0 = qnt.fake_quant %arg0 {scale = array<f32: 0.05>, zero_point = array<i64: 3>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  // CHECK: qnt.fake_quant %{{.*}} {qspec = #qnt.qspec<dtype = s8, quant_min = -127, quant_max = 127, scheme = symmetric, axis = 0>, scale = array<f32: 1.000000e-01, 2.000000e-01>, zero_point = array<i64: 0, 0>} : tensor<2x3xf32>
  %1 = qnt.fake_quant %0 {scale = array<f32: 0.1, 0.2>, zero_point = array<i64: 0, 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -127, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @conv2d_float
func.func @conv2d_float(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x4x4xf32> {
  // CHECK: qnt.conv2d %{{.*}}, %{{.*}}, %{{.*}} {activation = #qnt.activation<relu6>, dilation = array<i64: 1, 1>, pad = array<i64: 1, 0, 1, 0>, stride = array<i64: 2, 2>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  %0 = qnt.conv2d %x, %w, %b {activation = #qnt.activation<relu6>, dilation = array<i64: 1, 1>, pad = array<i64: 1, 0, 1, 0>, stride = array<i64: 2, 2>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
  return %0 : tensor<1x4x4x4xf32>
}

// CHECK-LABEL: func.func @conv2d_depthwise_clamp
func.func @conv2d_depthwise_clamp(%x: tensor<2x6x6x4xf32>, %w: tensor<4x3x3x1xf32>) -> tensor<2x2x2x4xf32> {
  // CHECK: qnt.conv2d %{{.*}}, %{{.*}} {activation = #qnt.activation<clamp>, clamp_max = 2.500000e+00 : f32, clamp_min = -1.000000e+00 : f32, dilation = array<i64: 2, 2>, groups = 4 : i64, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>}
  %0 = qnt.conv2d %x, %w {activation = #qnt.activation<clamp>, clamp_min = -1.0 : f32, clamp_max = 2.5 : f32, dilation = array<i64: 2, 2>, groups = 4 : i64, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<2x6x6x4xf32>, tensor<4x3x3x1xf32>) -> tensor<2x2x2x4xf32>
  return %0 : tensor<2x2x2x4xf32>
}

// CHECK-LABEL: func.func @conv2d_quantized
func.func @conv2d_quantized(%x: tensor<1x4x4x3x!u8>, %w: tensor<2x1x1x3x!wpc>, %b: tensor<2xi32>) -> tensor<1x4x4x2x!u8out> {
  // CHECK: qnt.conv2d %{{.*}}, %{{.*}}, %{{.*}} {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x3x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>, tensor<2x1x1x3x!quant.uniform<i8:f32:0, {1.000000e-02,2.000000e-02}>>, tensor<2xi32>) -> tensor<1x4x4x2x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>
  %0 = qnt.conv2d %x, %w, %b {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x3x!u8>, tensor<2x1x1x3x!wpc>, tensor<2xi32>) -> tensor<1x4x4x2x!u8out>
  return %0 : tensor<1x4x4x2x!u8out>
}

// CHECK-LABEL: func.func @linear
func.func @linear(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>, %b: tensor<4xf32>, %xq: tensor<2x3x!u8>, %wq: tensor<4x3x!wpt>) -> (tensor<2x4xf32>, tensor<2x4x!u8out>) {
  // CHECK: qnt.linear %{{.*}}, %{{.*}}, %{{.*}} {activation = #qnt.activation<relu>} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %0 = qnt.linear %x, %w, %b {activation = #qnt.activation<relu>} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK: qnt.linear %{{.*}}, %{{.*}} : (tensor<2x3x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>, tensor<4x3x!quant.uniform<i8:f32, 3.000000e-02>>) -> tensor<2x4x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>
  %1 = qnt.linear %xq, %wq : (tensor<2x3x!u8>, tensor<4x3x!wpt>) -> tensor<2x4x!u8out>
  return %0, %1 : tensor<2x4xf32>, tensor<2x4x!u8out>
}

// CHECK-LABEL: func.func @add
func.func @add(%a: tensor<1x4xf32>, %b: tensor<1x4xf32>, %qa: tensor<1x4x!u8>, %qb: tensor<1x4x!u8out>) -> (tensor<1x4xf32>, tensor<1x4x!u8out>) {
  // CHECK: qnt.add %{{.*}}, %{{.*}} {activation = #qnt.activation<relu>} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %0 = qnt.add %a, %b {activation = #qnt.activation<relu>} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  // CHECK: qnt.add %{{.*}}, %{{.*}} : (tensor<1x4x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>, tensor<1x4x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>) -> tensor<1x4x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>
  %1 = qnt.add %qa, %qb : (tensor<1x4x!u8>, tensor<1x4x!u8out>) -> tensor<1x4x!u8out>
  return %0, %1 : tensor<1x4xf32>, tensor<1x4x!u8out>
}
