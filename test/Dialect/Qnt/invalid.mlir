// RUN: quant-opt %s -split-input-file -verify-diagnostics
// One case per verifier rule of the qnt ops and attributes.

// expected-error @+1 {{quant range [0, 256] exceeds the u8 range [0, 255]}}
func.func private @f() attributes {q = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 256, scheme = affine>}

// -----

// expected-error @+1 {{quant_min (5) must be less than quant_max (5)}}
func.func private @f() attributes {q = #qnt.qspec<dtype = s8, quant_min = 5, quant_max = 5, scheme = affine>}

// -----

// expected-error @+1 {{axis must be non-negative, got -1}}
func.func private @f() attributes {q = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = -1>}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{requires a non-empty id}}
  %0 = qnt.observe %x {id = "", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{observer kind 'per_channel_minmax' requires a qspec axis}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{observer kind 'minmax' must not have a qspec axis}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{qspec axis 2 is out of range for rank 2}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 2>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{expects 2 scale(s) and zero point(s), got 1 and 1}}
  %0 = qnt.fake_quant %x {scale = array<f32: 0.1>, zero_point = array<i64: 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{scales must be positive and finite, got 0}}
  %0 = qnt.fake_quant %x {scale = array<f32: 0.0>, zero_point = array<i64: 0>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{zero point 300 is outside the quant range [0, 255]}}
  %0 = qnt.fake_quant %x {scale = array<f32: 0.5>, zero_point = array<i64: 300>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<1x4xi32>) -> tensor<1x4xi32> {
  // expected-error @+1 {{operand #0 must be tensor of 32-bit float values}}
  %0 = qnt.quant_stub %x : tensor<1x4xi32>
  return %0 : tensor<1x4xi32>
}

// -----

func.func @f(%x: tensor<8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{input must have rank 4, got 'tensor<8x8x3xf32>'}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<?x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{input must have a static shape, got 'tensor<?x8x8x3xf32>'}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<?x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{expects 2 strides, 2 dilations and 4 paddings [top, bottom, left, right]}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{strides and dilations must be at least 1}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 0, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{paddings must be non-negative}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, -1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

// Found by fuzz/mutate.py (UBSan: signed overflow in the shape check).
func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{padded input or dilated kernel size overflows int64 in spatial dimension 0}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 9223372036854775807, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{padded input or dilated kernel size overflows int64 in spatial dimension 1}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 4611686018427387904>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x1xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{groups (2) must divide the input channels (3) and the output channels (4)}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x8x8x3xf32>, tensor<4x3x3x1xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x2xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{weight (OHWI) has 2 input channels, expected 3}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x2xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x2x2x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x1x1x4xf32> {
  // expected-error @+1 {{kernel window (3) exceeds the padded input (2)}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x2x2x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x1x1x4xf32>
  return %0 : tensor<1x1x1x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{output shape must be [1, 4, 4, 4], got 'tensor<1x8x8x4xf32>'}}
  %0 = "qnt.conv2d"(%x, %w) {stride = array<i64: 2, 2>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{bias must have shape [4], got 'tensor<3xf32>'}}
  %0 = qnt.conv2d %x, %w, %b {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{clamp_min/clamp_max are only allowed with activation = clamp}}
  %0 = qnt.conv2d %x, %w {activation = #qnt.activation<relu>, clamp_min = 0.0 : f32, stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{activation = clamp requires clamp_min and clamp_max}}
  %0 = qnt.conv2d %x, %w {activation = #qnt.activation<clamp>, clamp_min = 0.0 : f32, stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{clamp_min (2.000000e+00) must not exceed clamp_max (1.000000e+00)}}
  %0 = qnt.conv2d %x, %w {activation = #qnt.activation<clamp>, clamp_min = 2.0 : f32, clamp_max = 1.0 : f32, stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xi32>) -> tensor<1x8x8x4xf32> {
  // expected-error @+1 {{float op requires an f32 bias, got 'i32'}}
  %0 = qnt.conv2d %x, %w, %b {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xi32>) -> tensor<1x8x8x4xf32>
  return %0 : tensor<1x8x8x4xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3xf32>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{input, weight and output must be all f32 or all quantized}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3xf32>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

!u8pa = !quant.uniform<u8:f32:3, {0.05:3, 0.05:3, 0.05:3}>
!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32, 0.01>
func.func @f(%x: tensor<1x8x8x3x!u8pa>, %w: tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{quantized input must be per-tensor !quant.uniform expressed in f32}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8pa>, tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!u8pa = !quant.uniform<u8:f32:3, {0.05:3, 0.05:3, 0.05:3, 0.05:3}>
!w = !quant.uniform<i8:f32, 0.01>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8pa> {
  // expected-error @+1 {{quantized output must be per-tensor !quant.uniform expressed in f32}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8pa>
  return %0 : tensor<1x8x8x4x!u8pa>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<u8:f32, 0.01>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{quantized weight must have signed i8 storage}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32, 0.01:2>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{quantized weight must be symmetric (zero point 0), got 2}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32:3, {0.01, 0.02, 0.03}>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{per-axis weight must be quantized along its output-channel axis 0, got 3}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32:0, {0.01, 0.02:1, 0.03, 0.04}>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{quantized weight must be symmetric (zero points 0)}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3x!w>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32, 0.01>
func.func @f(%x: tensor<1x8x8x3x!u8>, %w: tensor<4x3x3x3x!w>, %b: tensor<4xi8>) -> tensor<1x8x8x4x!u8> {
  // expected-error @+1 {{quantized op requires an i32 or f32 bias, got 'i8'}}
  %0 = qnt.conv2d %x, %w, %b {stride = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3x!u8>, tensor<4x3x3x3x!w>, tensor<4xi8>) -> tensor<1x8x8x4x!u8>
  return %0 : tensor<1x8x8x4x!u8>
}

// -----

func.func @f(%x: tensor<2x3x1xf32>, %w: tensor<4x3xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{input must have rank 2, got 'tensor<2x3x1xf32>'}}
  %0 = qnt.linear %x, %w : (tensor<2x3x1xf32>, tensor<4x3xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>, %w: tensor<4x5xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{weight [N, K] has K = 5, but the input has K = 3}}
  %0 = qnt.linear %x, %w : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{output shape must be [2, 4], got 'tensor<2x5xf32>'}}
  %0 = qnt.linear %x, %w : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>, %b: tensor<1x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{bias must have shape [4], got 'tensor<1x4xf32>'}}
  %0 = qnt.linear %x, %w, %b : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<1x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{operands and result must have the same shape}}
  %0 = qnt.add %a, %b : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{activation must be none or relu, got relu6}}
  %0 = qnt.add %a, %b {activation = #qnt.activation<relu6>} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%a: tensor<2x3x!u8>, %b: tensor<2x3xf32>) -> tensor<2x3x!u8> {
  // expected-error @+1 {{operands and result must be all f32 or all per-tensor !quant.uniform expressed in f32}}
  %0 = qnt.add %a, %b : (tensor<2x3x!u8>, tensor<2x3xf32>) -> tensor<2x3x!u8>
  return %0 : tensor<2x3x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!s8 = !quant.uniform<i8:f32, 0.05:3>
func.func @f(%a: tensor<2x3x!u8>, %b: tensor<2x3x!s8>) -> tensor<2x3x!u8> {
  // expected-error @+1 {{quantized operands and result must share one storage type}}
  %0 = qnt.add %a, %b : (tensor<2x3x!u8>, tensor<2x3x!s8>) -> tensor<2x3x!u8>
  return %0 : tensor<2x3x!u8>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{averaging_constant is only allowed on moving-average observers}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<minmax>, averaging_constant = 0.5 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{averaging_constant must be in (0, 1], got 1.5}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<moving_average_minmax>, averaging_constant = 1.5 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{bins/upsample_rate are only allowed on histogram, percentile and entropy observers}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<minmax>, bins = 128 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{bins must be in [2, 16777216], got 1}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<histogram>, bins = 1 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{upsample_rate must be in [1, 16777216], got 0}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<entropy>, upsample_rate = 0 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{bins must be in [2, 16777216], got -4}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<histogram>, bins = -4 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// The runtime accepts at most 2^24 bins.
func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{bins must be in [2, 16777216], got 1000000000000}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<percentile>, bins = 1000000000000 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{upsample_rate must be in [1, 16777216], got 9223372036854775807}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<histogram>, upsample_rate = 9223372036854775807 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<1x8x8x3xf32>, %w: tensor<4x0x0x3xf32>) -> tensor<1x9x9x4xf32> {
  // expected-error @+1 {{kernel must be at least 1x1, got 0x0}}
  %0 = qnt.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<4x0x0x3xf32>) -> tensor<1x9x9x4xf32>
  return %0 : tensor<1x9x9x4xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{percentile is only allowed on percentile observers}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<histogram>, percentile = 99.0 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{percentile must be in (50, 100], got 4.000000e+01}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<percentile>, percentile = 40.0 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{observer kind 'moving_average_per_channel_minmax' requires a qspec axis}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<moving_average_per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>} : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// expected-error @+1 {{eps must be a positive, finite f32, got -1.000000e+00 : f32}}
func.func private @f() attributes {q = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine, eps = -1.0 : f32>}

// -----

func.func @f(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{dynamic_qspec must be u8, affine and per tensor}}
  %0 = qnt.linear %x, %w {dynamic_qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

func.func @f(%x: tensor<1x4x4x1xf32>, %w: tensor<2x1x1x1xf32>) -> tensor<1x4x4x2xf32> {
  // expected-error @+1 {{dynamic_qspec must be u8, affine and per tensor}}
  %0 = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = symmetric>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>) -> tensor<1x4x4x2xf32>
  return %0 : tensor<1x4x4x2xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32, 0.01>
func.func @f(%x: tensor<1x4x4x1x!u8>, %w: tensor<2x1x1x1x!w>) -> tensor<1x4x4x2xf32> {
  // expected-error @+1 {{dynamic quantization needs an f32 input and output and an f32 or quantized weight}}
  %0 = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x4x4x1x!u8>, tensor<2x1x1x1x!w>) -> tensor<1x4x4x2xf32>
  return %0 : tensor<1x4x4x2xf32>
}

// -----

func.func @f(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  // expected-error @+1 {{a dynamically quantized linear fuses only relu}}
  %0 = qnt.linear %x, %w {activation = #qnt.activation<relu6>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!w = !quant.uniform<i8:f32, 0.01>
func.func @f(%x: tensor<1x2x!u8>, %w: tensor<2x2x!w>) -> tensor<1x2xf32> {
  // expected-error @+1 {{dynamic quantization needs an f32 input and output and an f32 or quantized weight}}
  %0 = qnt.linear %x, %w {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x2x!u8>, tensor<2x2x!w>) -> tensor<1x2xf32>
  return %0 : tensor<1x2xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x4x!u8>) -> tensor<1x4x!u8> {
  // expected-error @+1 {{table must have 256 entries, got 2}}
  %0 = qnt.table %x {table = array<i8: 0, 1>} : tensor<1x4x!u8> -> tensor<1x4x!u8>
  return %0 : tensor<1x4x!u8>
}

// -----

func.func @f(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  // expected-error @+1 {{input and result must be per-tensor !quant.uniform with 8-bit storage}}
  %0 = qnt.table %x {table = array<i8: 0>} : tensor<1x4xf32> -> tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}

// -----

func.func @f(%a: tensor<1x4xf32>, %b: tensor<1x3xf32>) -> tensor<1x4xf32> {
  // expected-error @+1 {{operand dimension 1 (3) must be 1 or the result's (4)}}
  %0 = qnt.mul %a, %b : (tensor<1x4xf32>, tensor<1x3xf32>) -> tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}

// -----

func.func @f(%a: tensor<1x4xf32>, %b: tensor<1x4xf32>) -> tensor<1x4xf32> {
  // expected-error @+1 {{activation must be none or relu, got relu6}}
  %0 = qnt.mul %a, %b {activation = #qnt.activation<relu6>} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x4x4x2x!u8>) -> tensor<1x3x3x2x!u8> {
  // expected-error @+1 {{result dimension 1 must be 2 for kernel 2 and stride 2}}
  %0 = qnt.avg_pool2d %x {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} : tensor<1x4x4x2x!u8> -> tensor<1x3x3x2x!u8>
  return %0 : tensor<1x3x3x2x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x4x4x2x!u8>) -> tensor<1x4x4x2x!u8> {
  // expected-error @+1 {{kernel and stride must be positive}}
  %0 = qnt.avg_pool2d %x {kernel = array<i64: 0, 0>, stride = array<i64: 1, 1>} : tensor<1x4x4x2x!u8> -> tensor<1x4x4x2x!u8>
  return %0 : tensor<1x4x4x2x!u8>
}

// -----

func.func @f(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  // expected-error @+1 {{fixed_scale and fixed_zero_point are required on, and only allowed on, fixed_qparams observers}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<fixed_qparams>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}

// -----

func.func @f(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  // expected-error @+1 {{fixed_zero_point 300 is outside the qspec range [0, 255]}}
  %0 = qnt.observe %x {id = "a", kind = #qnt.observer<fixed_qparams>, fixed_scale = 0.5 : f64, fixed_zero_point = 300 : i64, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
}

// -----

// Upstream's !quant.uniform accepts a zero point outside its storage type.
func.func @f(%a: tensor<1x4x!quant.uniform<u8:f32, 0.1:300>>, %b: tensor<1x4x!quant.uniform<u8:f32, 0.1:3>>) -> tensor<1x4x!quant.uniform<u8:f32, 0.1:3>> {
  // expected-error @+1 {{zero point 300 of 'tensor<1x4x!quant.uniform<u8:f32, 1.000000e-01:300>>' is outside its storage range [0, 255]}}
  %0 = qnt.add %a, %b : (tensor<1x4x!quant.uniform<u8:f32, 0.1:300>>, tensor<1x4x!quant.uniform<u8:f32, 0.1:3>>) -> tensor<1x4x!quant.uniform<u8:f32, 0.1:3>>
  return %0 : tensor<1x4x!quant.uniform<u8:f32, 0.1:3>>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!o = !quant.uniform<u8:f32, 0.1:3>
func.func @f(%x: tensor<1x4x4x2x!u8>) -> tensor<1x8x8x2x!o> {
  // expected-error @+1 {{input and result must have one per-tensor !quant.uniform type with 8-bit storage}}
  %0 = qnt.resize %x {align_corners = false, mode = #qnt.resize_mode<nearest>, scale = array<f32: 0.5, 0.5>} : tensor<1x4x4x2x!u8> -> tensor<1x8x8x2x!o>
  return %0 : tensor<1x8x8x2x!o>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x4x4x2x!u8>) -> tensor<1x8x8x3x!u8> {
  // expected-error @+1 {{result batch and channels must be the input's}}
  %0 = qnt.resize %x {align_corners = false, mode = #qnt.resize_mode<nearest>, scale = array<f32: 0.5, 0.5>} : tensor<1x4x4x2x!u8> -> tensor<1x8x8x3x!u8>
  return %0 : tensor<1x8x8x3x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x4x4x2x!u8>) -> tensor<1x8x8x2x!u8> {
  // expected-error @+1 {{scale 1 must be finite and in [0, 4]}}
  %0 = qnt.resize %x {align_corners = false, mode = #qnt.resize_mode<bilinear>, scale = array<f32: 0.5, 1.0e9>} : tensor<1x4x4x2x!u8> -> tensor<1x8x8x2x!u8>
  return %0 : tensor<1x8x8x2x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%x: tensor<1x4x4x2x!u8>) -> tensor<1x8x8x2x!u8> {
  // expected-error @+1 {{scale must have 2 entries (H, W)}}
  %0 = qnt.resize %x {align_corners = false, mode = #qnt.resize_mode<bilinear>, scale = array<f32: 0.5>} : tensor<1x4x4x2x!u8> -> tensor<1x8x8x2x!u8>
  return %0 : tensor<1x8x8x2x!u8>
}

// -----

func.func @f(%a: tensor<2x3x4xf32>, %b: tensor<2x5x4xf32>) -> tensor<2x3x5xf32> {
  // expected-error @+1 {{rhs must be [2, 4, N], got 'tensor<2x5x4xf32>'}}
  %0 = qnt.batch_matmul %a, %b : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
  return %0 : tensor<2x3x5xf32>
}

// -----

func.func @f(%a: tensor<2x3x4xf32>, %b: tensor<2x5x4xf32>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{result must be [2, 3, 5], got 'tensor<2x3x4xf32>'}}
  %0 = qnt.batch_matmul %a, %b {transpose_b} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

func.func @f(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>) -> tensor<3x5xf32> {
  // expected-error @+1 {{lhs must be a static rank-3 tensor, got 'tensor<3x4xf32>'}}
  %0 = qnt.batch_matmul %a, %b : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
!s8 = !quant.uniform<i8:f32, 0.05:3>
func.func @f(%a: tensor<1x3x4x!u8>, %b: tensor<1x4x5x!s8>) -> tensor<1x3x5x!u8> {
  // expected-error @+1 {{quantized operands and result must share one storage type}}
  %0 = qnt.batch_matmul %a, %b : (tensor<1x3x4x!u8>, tensor<1x4x5x!s8>) -> tensor<1x3x5x!u8>
  return %0 : tensor<1x3x5x!u8>
}

// -----

!u8 = !quant.uniform<u8:f32, 0.05:3>
func.func @f(%a: tensor<1x3x4x!u8>, %b: tensor<1x4x5xf32>) -> tensor<1x3x5x!u8> {
  // expected-error @+1 {{operands and result must be all f32 or all per-tensor !quant.uniform expressed in f32}}
  %0 = qnt.batch_matmul %a, %b : (tensor<1x3x4x!u8>, tensor<1x4x5xf32>) -> tensor<1x3x5x!u8>
  return %0 : tensor<1x3x5x!u8>
}

// -----

// expected-error @+1 {{'qnt.numerics' must be "qnt" or "onnxruntime", got "ort"}}
module attributes {qnt.numerics = "ort"} {
}

// -----

module {
  // expected-error @+1 {{'qnt.numerics' belongs on the builtin.module}}
  func.func private @f() attributes {qnt.numerics = "qnt"}
}
