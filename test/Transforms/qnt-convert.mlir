// RUN: quant-opt %s --qnt-convert --split-input-file --verify-diagnostics | FileCheck %s

!qin = !quant.uniform<u8<0:127>:f32, 0.031496062874794006:32>
!qout = !quant.uniform<u8<0:127>:f32, 0.05:3>
!wq = !quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>

// The weight becomes i8 (x * (1/S) rounded half to even: -127, 64 / 127,
// 51, as torch.quantize_per_channel gives), the bias i32 in units of
// S_in * S_w[c], and the op runs on the quantized types.
// CHECK-LABEL: func.func @linear
// CHECK-DAG: %[[WI:.*]] = arith.constant dense<{{\[}}[-127, 64], [127, 51]]> : tensor<2x2xi8>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[2024, -4048]> : tensor<2xi32>
// CHECK-DAG: %[[XQ:.*]] = quant.qcast %arg0 : tensor<1x2xf32> to tensor<1x2x!quant.uniform<u8<0:127>:f32, 0.031496062874794006:32>>
// CHECK-DAG: %[[W:.*]] = quant.scast %[[WI]] : tensor<2x2xi8> to tensor<2x2x!quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>>
// CHECK: %[[Y:.*]] = qnt.linear %[[XQ]], %[[W]], %[[B]] {activation = #qnt.activation<relu>} : (tensor<1x2x!quant.uniform<u8<0:127>:f32, 0.031496062874794006:32>>, tensor<2x2x!quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>>, tensor<2xi32>) -> tensor<1x2x!quant.uniform<u8<0:127>:f32, 5.000000e-02:3>>
// CHECK: %[[R:.*]] = quant.dcast %[[Y]]
// CHECK-NOT: qnt.dequant_stub
// CHECK: return %[[R]]
func.func @linear(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %s = qnt.quant_stub %x : tensor<1x2xf32>
  %xq = quant.qcast %s : tensor<1x2xf32> to tensor<1x2x!qin>
  %xd = quant.dcast %xq : tensor<1x2x!qin> to tensor<1x2xf32>
  %w = arith.constant dense<[[-1.0, 0.5], [0.25, 0.1]]> : tensor<2x2xf32>
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wq>
  %wd = quant.dcast %wq : tensor<2x2x!wq> to tensor<2x2xf32>
  %b = arith.constant dense<[0.5, -0.25]> : tensor<2xf32>
  %y = qnt.linear %xd, %wd, %b {activation = #qnt.activation<relu>} : (tensor<1x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %yq = quant.qcast %y : tensor<1x2xf32> to tensor<1x2x!qout>
  %yd = quant.dcast %yq : tensor<1x2x!qout> to tensor<1x2xf32>
  %d = qnt.dequant_stub %yd : tensor<1x2xf32>
  return %d : tensor<1x2xf32>
}

// -----

!qa = !quant.uniform<u8:f32, 0.1:10>
!qb = !quant.uniform<u8:f32, 0.2:20>
!qo = !quant.uniform<u8:f32, 0.3:30>

// CHECK-LABEL: func.func @add
// CHECK: %[[A:.*]] = quant.qcast %arg0
// CHECK: %[[B:.*]] = quant.qcast %arg1
// CHECK: qnt.add %[[A]], %[[B]] : (tensor<4x!quant.uniform<u8:f32, 1.000000e-01:10>>, tensor<4x!quant.uniform<u8:f32, 2.000000e-01:20>>) -> tensor<4x!quant.uniform<u8:f32, 3.000000e-01:30>>
func.func @add(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %aq = quant.qcast %a : tensor<4xf32> to tensor<4x!qa>
  %ad = quant.dcast %aq : tensor<4x!qa> to tensor<4xf32>
  %bq = quant.qcast %b : tensor<4xf32> to tensor<4x!qb>
  %bd = quant.dcast %bq : tensor<4x!qb> to tensor<4xf32>
  %c = qnt.add %ad, %bd : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %cq = quant.qcast %c : tensor<4xf32> to tensor<4x!qo>
  %cd = quant.dcast %cq : tensor<4x!qo> to tensor<4xf32>
  return %cd : tensor<4xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:10>

// Negative: the result is not quantized (no qcast), so the op stays float.
// CHECK-LABEL: func.func @float_result
// CHECK: qnt.add %{{.*}}, %{{.*}} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
func.func @float_result(%a: tensor<4xf32>) -> tensor<4xf32> {
  %aq = quant.qcast %a : tensor<4xf32> to tensor<4x!q>
  %ad = quant.dcast %aq : tensor<4x!q> to tensor<4xf32>
  %c = qnt.add %ad, %ad : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %c : tensor<4xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:10>
!wq = !quant.uniform<i8:f32, 0.01>

// Negative: a weight computed at run time cannot be folded to i8.
// CHECK-LABEL: func.func @runtime_weight
// CHECK: qnt.linear %{{.*}}, %{{.*}} : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
func.func @runtime_weight(%x: tensor<1x2xf32>, %w: tensor<2x2xf32>) -> tensor<1x2xf32> {
  %xq = quant.qcast %x : tensor<1x2xf32> to tensor<1x2x!q>
  %xd = quant.dcast %xq : tensor<1x2x!q> to tensor<1x2xf32>
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wq>
  %wd = quant.dcast %wq : tensor<2x2x!wq> to tensor<2x2xf32>
  %y = qnt.linear %xd, %wd : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %yq = quant.qcast %y : tensor<1x2xf32> to tensor<1x2x!q>
  %yd = quant.dcast %yq : tensor<1x2x!q> to tensor<1x2xf32>
  return %yd : tensor<1x2xf32>
}

// -----

!q = !quant.uniform<u8:f32, 1.0e-3:0>
!wq = !quant.uniform<i8:f32, 1.0e-3>

// A bias that does not fit int32 in units of S_in * S_w (1e-6) is clamped,
// with a warning, not wrapped.
// CHECK-LABEL: func.func @bias_overflow
// CHECK: arith.constant dense<[2147483647, -2147483648]> : tensor<2xi32>
func.func @bias_overflow(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %xq = quant.qcast %x : tensor<1x2xf32> to tensor<1x2x!q>
  %xd = quant.dcast %xq : tensor<1x2x!q> to tensor<1x2xf32>
  %w = arith.constant dense<0.1> : tensor<2x2xf32>
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wq>
  %wd = quant.dcast %wq : tensor<2x2x!wq> to tensor<2x2xf32>
  %b = arith.constant dense<[1.0e4, -1.0e4]> : tensor<2xf32>
  // expected-warning @+1 {{bias of 2 channel(s) exceeds int32 in units of S_in * S_w[c] and is clamped (first: channel 0, 1.000000e+04)}}
  %y = qnt.linear %xd, %wd, %b : (tensor<1x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %yq = quant.qcast %y : tensor<1x2xf32> to tensor<1x2x!q>
  %yd = quant.dcast %yq : tensor<1x2x!q> to tensor<1x2xf32>
  return %yd : tensor<1x2xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:10>

// Dequantization moves after same-scale ops: the max pool and the reshape
// run on the quantized values with their parameters.
// CHECK-LABEL: func.func @same_scale
// CHECK: %[[Q:.*]] = quant.qcast %arg0
// CHECK: %[[P:.*]] = tosa.max_pool2d %[[Q]] {{.*}} -> tensor<1x2x2x2x!quant.uniform<u8:f32, 1.000000e-01:10>>
// CHECK: %[[R:.*]] = tosa.reshape %[[P]], %{{.*}} -> tensor<1x8x!quant.uniform<u8:f32, 1.000000e-01:10>>
// CHECK: %[[D:.*]] = quant.dcast %[[R]]
// CHECK: return %[[D]]
func.func @same_scale(%x: tensor<1x4x4x2xf32>) -> tensor<1x8xf32> {
  %q = quant.qcast %x : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!q>
  %d = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
  %p = tosa.max_pool2d %d {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32>
  %s = tosa.const_shape {values = dense<[1, 8]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %r = tosa.reshape %p, %s : (tensor<1x2x2x2xf32>, !tosa.shape<2>) -> tensor<1x8xf32>
  return %r : tensor<1x8xf32>
}

// -----

!wq = !quant.uniform<i8:f32, 0.01>

// A dynamically quantized linear layer: the weight becomes i8, the input and
// output stay float (quantized per call at run time), the bias float.
// CHECK-LABEL: func.func @dynamic_linear
// CHECK-DAG: %[[WI:.*]] = arith.constant dense<{{\[}}[50, -25], [100, 12]]> : tensor<2x2xi8>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[5.000000e-01, -5.000000e-01]> : tensor<2xf32>
// CHECK: %[[W:.*]] = quant.scast %[[WI]]
// CHECK: qnt.linear %arg0, %[[W]], %[[B]] {dynamic_qspec = {{.*}}} : (tensor<1x2xf32>, tensor<2x2x!quant.uniform<i8:f32, 1.000000e-02>>, tensor<2xf32>) -> tensor<1x2xf32>
func.func @dynamic_linear(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = arith.constant dense<[[0.5, -0.25], [1.0, 0.125]]> : tensor<2x2xf32>
  %wq = quant.qcast %w : tensor<2x2xf32> to tensor<2x2x!wq>
  %wd = quant.dcast %wq : tensor<2x2x!wq> to tensor<2x2xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = qnt.linear %x, %wd, %b {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

// -----

!wq = !quant.uniform<i8:f32:0, {0.01, 0.02}>

// A dynamically quantized conv2d (ONNX Runtime's ConvInteger, imported): the
// same, per channel.
// CHECK-LABEL: func.func @dynamic_conv2d
// CHECK-DAG: %[[WI:.*]] = arith.constant dense<{{\[}}{{\[}}{{\[}}[50]]], {{\[}}{{\[}}[-25]]]]> : tensor<2x1x1x1xi8>
// CHECK: %[[W:.*]] = quant.scast %[[WI]]
// CHECK: qnt.conv2d %arg0, %[[W]], %{{.*}} {dilation = {{.*}}, dynamic_qspec = {{.*}}} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1x!quant.uniform<i8:f32:0, {1.000000e-02,2.000000e-02}>>, tensor<2xf32>) -> tensor<1x4x4x2xf32>
func.func @dynamic_conv2d(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %w = arith.constant dense<[[[[0.5]]], [[[-0.5]]]]> : tensor<2x1x1x1xf32>
  %wq = quant.qcast %w : tensor<2x1x1x1xf32> to tensor<2x1x1x1x!wq>
  %wd = quant.dcast %wq : tensor<2x1x1x1x!wq> to tensor<2x1x1x1xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %y = qnt.conv2d %x, %wd, %b {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32>
  return %y : tensor<1x4x4x2xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:10>
!q2 = !quant.uniform<u8:f32, 0.2:10>

// A dequantize-quantize round trip to the same type is the value itself
// (as a QDQ model writes between a max pool and the next op); to other
// parameters it stays a requantization.
// CHECK-LABEL: func.func @round_trip
// CHECK: %[[P:.*]] = tosa.max_pool2d %{{.*}} : (tensor<1x4x4x1x!quant.uniform<u8:f32, 1.000000e-01:10>>)
// CHECK-NOT: quant.qcast
// CHECK: qnt.add %[[P]], %[[P]]
func.func @round_trip(%x: tensor<1x4x4x1xf32>) -> (tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>) {
  %xq = quant.qcast %x : tensor<1x4x4x1xf32> to tensor<1x4x4x1x!q>
  %xd = quant.dcast %xq : tensor<1x4x4x1x!q> to tensor<1x4x4x1xf32>
  %p = tosa.max_pool2d %xd {kernel = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x1xf32>) -> tensor<1x2x2x1xf32>
  %pq = quant.qcast %p : tensor<1x2x2x1xf32> to tensor<1x2x2x1x!q>
  %pd = quant.dcast %pq : tensor<1x2x2x1x!q> to tensor<1x2x2x1xf32>
  %rq = quant.qcast %pd : tensor<1x2x2x1xf32> to tensor<1x2x2x1x!q>
  %rd = quant.dcast %rq : tensor<1x2x2x1x!q> to tensor<1x2x2x1xf32>
  %s = qnt.add %rd, %rd : (tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>) -> tensor<1x2x2x1xf32>
  %sq = quant.qcast %s : tensor<1x2x2x1xf32> to tensor<1x2x2x1x!q>
  %sd = quant.dcast %sq : tensor<1x2x2x1x!q> to tensor<1x2x2x1xf32>
  %oq = quant.qcast %pd : tensor<1x2x2x1xf32> to tensor<1x2x2x1x!q2>
  %od = quant.dcast %oq : tensor<1x2x2x1x!q2> to tensor<1x2x2x1xf32>
  return %sd, %od : tensor<1x2x2x1xf32>, tensor<1x2x2x1xf32>
}
