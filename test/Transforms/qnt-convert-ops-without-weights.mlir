// RUN: quant-opt %s --qnt-convert="report-float" --split-input-file --verify-diagnostics | FileCheck %s
// --qnt-convert on the ops without weights: integer forms with the
// arithmetic of docs/numerics.md (tables computed here, checked exactly).

!q = !quant.uniform<u8:f32, 0.5:3>

// Relu shares its input's parameters: an integer clamp at the zero point
// (a table: max(q, 3)), dequantized after.
// CHECK-LABEL: func.func @relu
// CHECK: %[[T:.*]] = qnt.table %arg0 {table = array<i8: 3, 3, 3, 3, 4, 5, 6, 7, 8,
// CHECK-SAME: -3, -2, -1>} : tensor<1x4x!quant.uniform<u8:f32, 5.000000e-01:3>> -> tensor<1x4x!quant.uniform<u8:f32, 5.000000e-01:3>>
// CHECK: quant.dcast %[[T]]
// CHECK-NOT: tosa.clamp
func.func @relu(%q: tensor<1x4x!q>) -> tensor<1x4xf32> {
  %x = quant.dcast %q : tensor<1x4x!q> to tensor<1x4xf32>
  %r = tosa.clamp %x {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  return %r : tensor<1x4xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.0625:128>
!s = !quant.uniform<u8:f32, 0.00390625>

// Sigmoid to its fixed parameters: one table; the float op is gone.
// sigmoid(f32(0 - 128) * 0.0625 = -8) * 256 = 0.09 -> 0; q = 128 is
// sigmoid(0) = 0.5 -> 128 (printed as i8, -128); q = 255 (7.94) -> 255
// (-1).
// CHECK-LABEL: func.func @sigmoid
// CHECK: qnt.table %arg0 {table = array<i8: 0, 0,
// CHECK-SAME: , -1>}
// CHECK-NOT: tosa.sigmoid
func.func @sigmoid(%q: tensor<1x4x!q>) -> tensor<1x4x!s> {
  %x = quant.dcast %q : tensor<1x4x!q> to tensor<1x4xf32>
  %y = tosa.sigmoid %x : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %r = quant.qcast %y : tensor<1x4xf32> to tensor<1x4x!s>
  return %r : tensor<1x4x!s>
}

// -----

!a = !quant.uniform<u8:f32, 0.5>
!b = !quant.uniform<u8:f32, 1.0>

// Concatenation: `a` is requantized to the result's parameters by a table
// (rint half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4), `b` has them
// already and is used as it is.
// CHECK-LABEL: func.func @concat
// CHECK: %[[A:.*]] = qnt.table %arg0 {table = array<i8: 0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6,
// CHECK: tosa.concat %[[A]], %arg1 {axis = 1 : i32} : (tensor<1x2x!quant.uniform<u8:f32, 1.000000e+00>>, tensor<1x3x!quant.uniform<u8:f32, 1.000000e+00>>) -> tensor<1x5x!quant.uniform<u8:f32, 1.000000e+00>>
func.func @concat(%a: tensor<1x2x!a>, %b: tensor<1x3x!b>) -> tensor<1x5x!b> {
  %x = quant.dcast %a : tensor<1x2x!a> to tensor<1x2xf32>
  %y = quant.dcast %b : tensor<1x3x!b> to tensor<1x3xf32>
  %c = tosa.concat %x, %y {axis = 1 : i32} : (tensor<1x2xf32>, tensor<1x3xf32>) -> tensor<1x5xf32>
  %r = quant.qcast %c : tensor<1x5xf32> to tensor<1x5x!b>
  return %r : tensor<1x5x!b>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>
!o = !quant.uniform<u8:f32, 0.25:7>

// Average pooling without padding: qnt.avg_pool2d, with the input's
// parameters (then dequantized), or straight to a following qcast's.
// CHECK-LABEL: func.func @avg_pool
// CHECK: %[[P:.*]] = qnt.avg_pool2d %arg0 {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} : tensor<1x4x4x2x!quant.uniform<u8:f32, 5.000000e-01:3>> -> tensor<1x2x2x2x!quant.uniform<u8:f32, 5.000000e-01:3>>
// CHECK: quant.dcast %[[P]]
// CHECK: qnt.avg_pool2d %arg0 {kernel = array<i64: 4, 4>, stride = array<i64: 4, 4>} : tensor<1x4x4x2x!quant.uniform<u8:f32, 5.000000e-01:3>> -> tensor<1x1x1x2x!quant.uniform<u8:f32, 2.500000e-01:7>>
// CHECK-NOT: tosa.avg_pool2d
func.func @avg_pool(%q: tensor<1x4x4x2x!q>) -> (tensor<1x2x2x2xf32>, tensor<1x1x1x2x!o>) {
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %x = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
  %p = tosa.avg_pool2d %x, %zp, %zp {acc_type = f32, kernel = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x2x2x2xf32>
  %g = tosa.avg_pool2d %x, %zp, %zp {acc_type = f32, kernel = array<i64: 4, 4>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 4, 4>} : (tensor<1x4x4x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x1x2xf32>
  %r = quant.qcast %g : tensor<1x1x1x2xf32> to tensor<1x1x1x2x!o>
  return %p, %r : tensor<1x2x2x2xf32>, tensor<1x1x1x2x!o>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// Negative: average pooling with padding has no integer form; it stays
// float and the report says why.
// CHECK-LABEL: func.func @avg_pool_padded
// CHECK: tosa.avg_pool2d
func.func @avg_pool_padded(%q: tensor<1x4x4x2x!q>) -> tensor<1x4x4x2x!q> {
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %x = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
  // expected-remark @+1 {{stays float in the quantized region: average pooling with padding has no integer form}}
  %p = tosa.avg_pool2d %x, %zp, %zp {acc_type = f32, kernel = array<i64: 3, 3>, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 1, 1>} : (tensor<1x4x4x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %r = quant.qcast %p : tensor<1x4x4x2xf32> to tensor<1x4x4x2x!q>
  return %r : tensor<1x4x4x2x!q>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// A batch-norm that no conv precedes (per-channel multiply and add, then
// relu): qnt.batch_norm with the per-channel scale and shift.
// CHECK-LABEL: func.func @batch_norm
// CHECK: qnt.batch_norm %arg0 {clamp_min = 0.000000e+00 : f32, scale = array<f32: 5.000000e-01, 2.000000e+00>, shift = array<f32: 2.500000e-01, -1.000000e+00>}
// CHECK-NOT: tosa.mul
func.func @batch_norm(%q: tensor<1x2x2x2x!q>) -> tensor<1x2x2x2x!q> {
  %s = "tosa.const"() {values = dense<[[[[0.5, 2.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %t = "tosa.const"() {values = dense<[[[[0.25, -1.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %x = quant.dcast %q : tensor<1x2x2x2x!q> to tensor<1x2x2x2xf32>
  %y = tosa.mul %x, %s, %sh : (tensor<1x2x2x2xf32>, tensor<1x1x1x2xf32>, tensor<1xi8>) -> tensor<1x2x2x2xf32>
  %z = tosa.add %y, %t : (tensor<1x2x2x2xf32>, tensor<1x1x1x2xf32>) -> tensor<1x2x2x2xf32>
  %r = tosa.clamp %z {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %o = quant.qcast %r : tensor<1x2x2x2xf32> to tensor<1x2x2x2x!q>
  return %o : tensor<1x2x2x2x!q>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// Negative: per-channel constants inside a non-affine function have no
// integer form: it stays float, and the report says so.
// CHECK-LABEL: func.func @per_channel_sigmoid
// CHECK: tosa.sigmoid
// CHECK-NOT: qnt.table
func.func @per_channel_sigmoid(%q: tensor<1x2x2x2x!q>) -> tensor<1x2x2x2x!q> {
  %s = "tosa.const"() {values = dense<[[[[0.5, 2.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %x = quant.dcast %q : tensor<1x2x2x2x!q> to tensor<1x2x2x2xf32>
  // expected-remark @+1 {{stays float in the quantized region: no integer form for this function of an 8-bit activation}}
  %y = tosa.mul %x, %s, %sh : (tensor<1x2x2x2xf32>, tensor<1x1x1x2xf32>, tensor<1xi8>) -> tensor<1x2x2x2xf32>
  %g = tosa.sigmoid %y : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %o = quant.qcast %g : tensor<1x2x2x2xf32> to tensor<1x2x2x2x!q>
  return %o : tensor<1x2x2x2x!q>
}

// -----

!a = !quant.uniform<u8:f32, 0.5:3>
!b = !quant.uniform<u8:f32, 0.25:1>
!o = !quant.uniform<u8:f32, 0.1:2>

// qnt.mul of two activations: the quantized op (broadcasting kept).
// CHECK-LABEL: func.func @mul
// CHECK: qnt.mul %arg0, %arg1 : (tensor<1x2x2x3x!quant.uniform<u8:f32, 5.000000e-01:3>>, tensor<1x1x1x3x!quant.uniform<u8:f32, 2.500000e-01:1>>) -> tensor<1x2x2x3x!quant.uniform<u8:f32, 1.000000e-01:2>>
func.func @mul(%a: tensor<1x2x2x3x!a>, %b: tensor<1x1x1x3x!b>) -> tensor<1x2x2x3x!o> {
  %x = quant.dcast %a : tensor<1x2x2x3x!a> to tensor<1x2x2x3xf32>
  %y = quant.dcast %b : tensor<1x1x1x3x!b> to tensor<1x1x1x3xf32>
  %m = qnt.mul %x, %y : (tensor<1x2x2x3xf32>, tensor<1x1x1x3xf32>) -> tensor<1x2x2x3xf32>
  %r = quant.qcast %m : tensor<1x2x2x3xf32> to tensor<1x2x2x3x!o>
  return %r : tensor<1x2x2x3x!o>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// Constant padding: tosa.pad on the storage integers, the fill quantized to
// the input's parameters: 1.0 -> 3 + 2 = 5, and 1000.0 clamped to 255 (-1).
// CHECK-LABEL: func.func @pad
// CHECK-DAG: %[[F1:.*]] = "tosa.const"() <{values = dense<5> : tensor<1xi8>}>
// CHECK-DAG: %[[F2:.*]] = "tosa.const"() <{values = dense<-1> : tensor<1xi8>}>
// CHECK: %[[S:.*]] = quant.scast %arg0 : tensor<1x4x4x2x!quant.uniform<u8:f32, 5.000000e-01:3>> to tensor<1x4x4x2xi8>
// CHECK: %[[P:.*]] = tosa.pad %[[S]], %{{.*}}, %[[F1]] : (tensor<1x4x4x2xi8>, !tosa.shape<8>, tensor<1xi8>) -> tensor<1x6x6x2xi8>
// CHECK: %[[Q:.*]] = quant.scast %[[P]] : tensor<1x6x6x2xi8> to tensor<1x6x6x2x!quant.uniform<u8:f32, 5.000000e-01:3>>
// CHECK: quant.dcast %[[Q]]
// CHECK: tosa.pad %{{.*}}, %{{.*}}, %[[F2]]
func.func @pad(%q: tensor<1x4x4x2x!q>) -> (tensor<1x6x6x2xf32>, tensor<1x6x6x2xf32>) {
  %padding = tosa.const_shape {values = dense<[0, 0, 1, 1, 1, 1, 0, 0]> : tensor<8xindex>} : () -> !tosa.shape<8>
  %one = "tosa.const"() {values = dense<1.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %big = "tosa.const"() {values = dense<1000.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %x = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
  %p = tosa.pad %x, %padding, %one : (tensor<1x4x4x2xf32>, !tosa.shape<8>, tensor<1xf32>) -> tensor<1x6x6x2xf32>
  %b = tosa.pad %x, %padding, %big : (tensor<1x4x4x2xf32>, !tosa.shape<8>, tensor<1xf32>) -> tensor<1x6x6x2xf32>
  return %p, %b : tensor<1x6x6x2xf32>, tensor<1x6x6x2xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// Resizing as the exporter writes F.interpolate: qnt.resize with PyTorch's
// source step (nearest 4 -> 6: 4/6; bilinear half-pixel 4 -> 8: 1/2;
// bilinear align_corners 4 -> 7: 3/6); other parameters stay float.
// CHECK-LABEL: func.func @resize
// CHECK: qnt.resize %arg0 {align_corners = false, mode = #qnt.resize_mode<nearest>, scale = array<f32: 0.666666686, 0.666666686>} : tensor<1x4x4x2x!quant.uniform<u8:f32, 5.000000e-01:3>> -> tensor<1x6x6x2x!quant.uniform<u8:f32, 5.000000e-01:3>>
// CHECK: qnt.resize %arg0 {align_corners = false, mode = #qnt.resize_mode<bilinear>, scale = array<f32: 5.000000e-01, 5.000000e-01>}
// CHECK: qnt.resize %arg0 {align_corners = true, mode = #qnt.resize_mode<bilinear>, scale = array<f32: 5.000000e-01, 5.000000e-01>}
// CHECK: tosa.resize
func.func @resize(%q: tensor<1x4x4x2x!q>) -> (tensor<1x6x6x2xf32>, tensor<1x8x8x2xf32>, tensor<1x7x7x2xf32>, tensor<1x8x8x2xf32>) {
  %x = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
  %ns = tosa.const_shape {values = dense<[6, 4, 6, 4]> : tensor<4xindex>} : () -> !tosa.shape<4>
  %no = tosa.const_shape {values = dense<-3> : tensor<2xindex>} : () -> !tosa.shape<2>
  %nb = tosa.const_shape {values = dense<-1> : tensor<2xindex>} : () -> !tosa.shape<2>
  %n = tosa.resize %x, %ns, %no, %nb {mode = NEAREST_NEIGHBOR} : (tensor<1x4x4x2xf32>, !tosa.shape<4>, !tosa.shape<2>, !tosa.shape<2>) -> tensor<1x6x6x2xf32>
  %bs = tosa.const_shape {values = dense<[4, 2, 4, 2]> : tensor<4xindex>} : () -> !tosa.shape<4>
  %bo = tosa.const_shape {values = dense<-1> : tensor<2xindex>} : () -> !tosa.shape<2>
  %bb = tosa.const_shape {values = dense<1> : tensor<2xindex>} : () -> !tosa.shape<2>
  %b = tosa.resize %x, %bs, %bo, %bb {mode = BILINEAR} : (tensor<1x4x4x2xf32>, !tosa.shape<4>, !tosa.shape<2>, !tosa.shape<2>) -> tensor<1x8x8x2xf32>
  %as = tosa.const_shape {values = dense<[4, 2, 4, 2]> : tensor<4xindex>} : () -> !tosa.shape<4>
  %ao = tosa.const_shape {values = dense<0> : tensor<2xindex>} : () -> !tosa.shape<2>
  %ab = tosa.const_shape {values = dense<0> : tensor<2xindex>} : () -> !tosa.shape<2>
  %a = tosa.resize %x, %as, %ao, %ab {mode = BILINEAR} : (tensor<1x4x4x2xf32>, !tosa.shape<4>, !tosa.shape<2>, !tosa.shape<2>) -> tensor<1x7x7x2xf32>
  // Corner-aligned by TOSA's own rule (offset 0, no 4 -> 8 match): float.
  %zo = tosa.const_shape {values = dense<0> : tensor<2xindex>} : () -> !tosa.shape<2>
  %zb = tosa.const_shape {values = dense<2> : tensor<2xindex>} : () -> !tosa.shape<2>
  // expected-remark @+1 {{stays float in the quantized region: resize parameters other than F.interpolate's}}
  %z = tosa.resize %x, %bs, %zo, %zb {mode = BILINEAR} : (tensor<1x4x4x2xf32>, !tosa.shape<4>, !tosa.shape<2>, !tosa.shape<2>) -> tensor<1x8x8x2xf32>
  return %n, %b, %a, %z : tensor<1x6x6x2xf32>, tensor<1x8x8x2xf32>, tensor<1x7x7x2xf32>, tensor<1x8x8x2xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:0>

// Quantization here follows the module's numerics: 1.55 / 0.1 rounds to 15
// (ONNX Runtime divides), 1.55 * f32(1 / 0.1) to 16 (qnt's, below).
// CHECK-LABEL: func.func @pad_onnxruntime
// CHECK: "tosa.const"() <{values = dense<15> : tensor<1xi8>}>
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @pad_onnxruntime(%q: tensor<1x4x4x2x!q>) -> tensor<1x6x6x2xf32> {
    %padding = tosa.const_shape {values = dense<[0, 0, 1, 1, 1, 1, 0, 0]> : tensor<8xindex>} : () -> !tosa.shape<8>
    %fill = "tosa.const"() {values = dense<1.55> : tensor<1xf32>} : () -> tensor<1xf32>
    %x = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
    %p = tosa.pad %x, %padding, %fill : (tensor<1x4x4x2xf32>, !tosa.shape<8>, tensor<1xf32>) -> tensor<1x6x6x2xf32>
    return %p : tensor<1x6x6x2xf32>
  }
}

// -----

!q = !quant.uniform<u8:f32, 0.1:0>

// CHECK-LABEL: func.func @pad_qnt
// CHECK: "tosa.const"() <{values = dense<16> : tensor<1xi8>}>
func.func @pad_qnt(%q: tensor<1x4x4x2x!q>) -> tensor<1x6x6x2xf32> {
  %padding = tosa.const_shape {values = dense<[0, 0, 1, 1, 1, 1, 0, 0]> : tensor<8xindex>} : () -> !tosa.shape<8>
  %fill = "tosa.const"() {values = dense<1.55> : tensor<1xf32>} : () -> tensor<1xf32>
  %x = quant.dcast %q : tensor<1x4x4x2x!q> to tensor<1x4x4x2xf32>
  %p = tosa.pad %x, %padding, %fill : (tensor<1x4x4x2xf32>, !tosa.shape<8>, tensor<1xf32>) -> tensor<1x6x6x2xf32>
  return %p : tensor<1x6x6x2xf32>
}
