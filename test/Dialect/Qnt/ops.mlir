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

// CHECK-LABEL: func.func @mul
func.func @mul(%a: tensor<1x2x2x4xf32>, %b: tensor<1x1x1x4xf32>, %qa: tensor<1x4x!u8>, %qb: tensor<1x1x!u8out>) -> (tensor<1x2x2x4xf32>, tensor<1x4x!u8out>) {
  // CHECK: qnt.mul %{{.*}}, %{{.*}} {activation = #qnt.activation<relu>} : (tensor<1x2x2x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x2x4xf32>
  %0 = qnt.mul %a, %b {activation = #qnt.activation<relu>} : (tensor<1x2x2x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x2x4xf32>
  // CHECK: qnt.mul %{{.*}}, %{{.*}} : (tensor<1x4x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>, tensor<1x1x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>) -> tensor<1x4x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>
  %1 = qnt.mul %qa, %qb : (tensor<1x4x!u8>, tensor<1x1x!u8out>) -> tensor<1x4x!u8out>
  return %0, %1 : tensor<1x2x2x4xf32>, tensor<1x4x!u8out>
}

// CHECK-LABEL: func.func @batch_matmul
func.func @batch_matmul(%q: tensor<2x3x4xf32>, %k: tensor<2x5x4xf32>, %qa: tensor<1x2x4x!u8>, %qb: tensor<1x4x3x!u8out>) -> (tensor<2x3x5xf32>, tensor<1x2x3x!u8out>) {
  // CHECK: qnt.batch_matmul %{{.*}}, %{{.*}} {transpose_b} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
  %0 = qnt.batch_matmul %q, %k {transpose_b} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
  // CHECK: qnt.batch_matmul %{{.*}}, %{{.*}} : (tensor<1x2x4x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>, tensor<1x4x3x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>) -> tensor<1x2x3x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>
  %1 = qnt.batch_matmul %qa, %qb : (tensor<1x2x4x!u8>, tensor<1x4x3x!u8out>) -> tensor<1x2x3x!u8out>
  return %0, %1 : tensor<2x3x5xf32>, tensor<1x2x3x!u8out>
}

// CHECK-LABEL: func.func @table_and_pool
func.func @table_and_pool(%q: tensor<1x4x4x2x!u8>) -> (tensor<1x4x4x2x!u8out>, tensor<1x2x2x2x!u8>) {
  // CHECK: qnt.table %{{.*}} {table = array<i8: 0, 1, 2, {{.*}}, -2, -1>} : tensor<1x4x4x2x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>> -> tensor<1x4x4x2x!quant.uniform<u8<0:127>:f32, 1.000000e-01>>
  %0 = qnt.table %q {table = array<i8: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, -128, -127, -126, -125, -124, -123, -122, -121, -120, -119, -118, -117, -116, -115, -114, -113, -112, -111, -110, -109, -108, -107, -106, -105, -104, -103, -102, -101, -100, -99, -98, -97, -96, -95, -94, -93, -92, -91, -90, -89, -88, -87, -86, -85, -84, -83, -82, -81, -80, -79, -78, -77, -76, -75, -74, -73, -72, -71, -70, -69, -68, -67, -66, -65, -64, -63, -62, -61, -60, -59, -58, -57, -56, -55, -54, -53, -52, -51, -50, -49, -48, -47, -46, -45, -44, -43, -42, -41, -40, -39, -38, -37, -36, -35, -34, -33, -32, -31, -30, -29, -28, -27, -26, -25, -24, -23, -22, -21, -20, -19, -18, -17, -16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1>} : tensor<1x4x4x2x!u8> -> tensor<1x4x4x2x!u8out>
  // CHECK: qnt.avg_pool2d %{{.*}} {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} : tensor<1x4x4x2x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>> -> tensor<1x2x2x2x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>
  %1 = qnt.avg_pool2d %q {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} : tensor<1x4x4x2x!u8> -> tensor<1x2x2x2x!u8>
  return %0, %1 : tensor<1x4x4x2x!u8out>, tensor<1x2x2x2x!u8>
}

// CHECK-LABEL: func.func @fixed_observer
func.func @fixed_observer(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  // CHECK: qnt.observe %{{.*}} {fixed_scale = 3.906250e-03 : f64, fixed_zero_point = 0 : i64, id = "sig:out", kind = #qnt.observer<fixed_qparams>
  %0 = qnt.observe %x {id = "sig:out", kind = #qnt.observer<fixed_qparams>, fixed_scale = 0.00390625 : f64, fixed_zero_point = 0 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}

// CHECK-LABEL: func.func @dynamic_conv2d
// CHECK: qnt.conv2d %arg0, %arg1 {dilation = array<i64: 1, 1>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x3x3x1x!quant.uniform<i8:f32, 1.000000e-02>>) -> tensor<1x4x4x2xf32>
func.func @dynamic_conv2d(%x: tensor<1x4x4x1xf32>, %w: tensor<2x3x3x1x!quant.uniform<i8:f32, 0.01>>) -> tensor<1x4x4x2xf32> {
  %0 = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x4x4x1xf32>, tensor<2x3x3x1x!quant.uniform<i8:f32, 0.01>>) -> tensor<1x4x4x2xf32>
  return %0 : tensor<1x4x4x2xf32>
}
