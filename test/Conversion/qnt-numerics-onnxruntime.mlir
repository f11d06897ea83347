// RUN: quant-opt %s --split-input-file --qnt-lower-to-linalg | FileCheck %s
// RUN: quant-opt %s --split-input-file --qnt-lower-to-linalg --qnt-lower-to-runtime --verify-diagnostics | FileCheck %s --check-prefix=RT

// Modules with qnt.numerics = "onnxruntime" lower to ONNX Runtime's
// arithmetic where it differs from qnt's (docs/numerics.md, "ONNX Runtime
// numerics"); the same ops without the attribute keep qnt's.

!q = !quant.uniform<u8:f32, 0.1:3>

// quant.qcast divides by the scale, as ONNX's QuantizeLinear.
// CHECK-LABEL: func.func @quantize
// CHECK-DAG: %[[S:.*]] = arith.constant 1.000000e-01 : f32
// CHECK: %[[V:.*]] = arith.divf %{{.*}}, %[[S]] : f32
// CHECK-NEXT: arith.maxnumf %[[V]]
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @quantize(%x: tensor<4xf32>) -> tensor<4x!q> {
    %q = quant.qcast %x : tensor<4xf32> to tensor<4x!q>
    return %q : tensor<4x!q>
  }
}

// -----

!q = !quant.uniform<u8:f32, 0.1:3>

// Without the attribute: a multiplication by f32(1 / S).
// CHECK-LABEL: func.func @quantize_qnt
// CHECK-DAG: %[[S:.*]] = arith.constant 1.000000e+01 : f32
// CHECK: %[[V:.*]] = arith.mulf %{{.*}}, %[[S]] : f32
func.func @quantize_qnt(%x: tensor<4xf32>) -> tensor<4x!q> {
  %q = quant.qcast %x : tensor<4xf32> to tensor<4x!q>
  return %q : tensor<4x!q>
}

// -----

!a = !quant.uniform<u8:f32, 0.5:3>
!b = !quant.uniform<u8:f32, 0.25:1>
!o = !quant.uniform<u8:f32, 0.125:7>

// MLAS's QLinearAdd: r_a = 4, r_b = 2, k = 7 - fma(4, 3, 2 * 1) = -7;
// t = fma(a, 4, fma(b, 2, k)) holds Z_out and is rounded as it is; a ReLU
// clamps at Z_out.
// CHECK-LABEL: func.func @add
// CHECK-DAG: %[[RA:.*]] = arith.constant 4.000000e+00 : f32
// CHECK-DAG: %[[RB:.*]] = arith.constant 2.000000e+00 : f32
// CHECK-DAG: %[[K:.*]] = arith.constant -7.000000e+00 : f32
// CHECK-DAG: %[[LO:.*]] = arith.constant 7.000000e+00 : f32
// CHECK: linalg.generic
// CHECK: %[[B:.*]] = arith.sitofp %{{.*}} : i32 to f32
// CHECK-NEXT: %[[T:.*]] = math.fma %[[B]], %[[RB]], %[[K]] : f32
// CHECK: %[[A:.*]] = arith.sitofp %{{.*}} : i32 to f32
// CHECK-NEXT: %[[U:.*]] = math.fma %[[A]], %[[RA]], %[[T]] : f32
// CHECK-NEXT: arith.maxnumf %[[U]], %[[LO]] : f32
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @add(%a: tensor<1x4x!a>, %b: tensor<1x4x!b>) -> tensor<1x4x!o> {
    %s = qnt.add %a, %b {activation = #qnt.activation<relu>} : (tensor<1x4x!a>, tensor<1x4x!b>) -> tensor<1x4x!o>
    return %s : tensor<1x4x!o>
  }
}

// -----

!q = !quant.uniform<u8:f32, 0.1:3>
!o = !quant.uniform<u8:f32, 0.9:5>

// Global average pooling: ORT's multiplier f32(S_in / f32(S_out * K)) =
// 0.01234568 (qnt's, f32(S_in / S_out / K) rounded once: 0.012345679).
// CHECK-LABEL: func.func @avg_pool
// CHECK: arith.constant 0.01234568 : f32
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @avg_pool(%x: tensor<1x3x3x8x!q>) -> tensor<1x1x1x8x!o> {
    %p = qnt.avg_pool2d %x {kernel = array<i64: 3, 3>, stride = array<i64: 1, 1>} : tensor<1x3x3x8x!q> -> tensor<1x1x1x8x!o>
    return %p : tensor<1x1x1x8x!o>
  }
}

// -----

!q = !quant.uniform<u8:f32, 0.1:3>
!o = !quant.uniform<u8:f32, 0.9:5>

// A window smaller than the image: ORT's QLinearAveragePool in floats, the
// sum of f32(S_in * f32(q - Z_in)) in window order, / K, / S_out, + Z_out,
// then rounded (no integer window sum).
// CHECK-LABEL: func.func @avg_pool_window
// CHECK-DAG: %[[K:.*]] = arith.constant 9.000000e+00 : f32
// CHECK-DAG: %[[SOUT:.*]] = arith.constant 0.899999976 : f32
// CHECK-DAG: %[[ZOUT:.*]] = arith.constant 5.000000e+00 : f32
// CHECK-DAG: %[[SIN:.*]] = arith.constant 1.000000e-01 : f32
// CHECK: linalg.fill ins(%{{.*}} : f32)
// CHECK: linalg.generic
// CHECK: arith.subi %{{.*}}, %c3_i32 : i32
// CHECK: %[[D:.*]] = arith.sitofp
// CHECK: %[[V:.*]] = arith.mulf %[[SIN]], %[[D]] : f32
// CHECK: arith.addf %{{.*}}, %[[V]] : f32
// CHECK: linalg.generic
// CHECK: %[[Y:.*]] = arith.divf %{{.*}}, %[[K]] : f32
// CHECK: %[[T:.*]] = arith.divf %[[Y]], %[[SOUT]] : f32
// CHECK: %[[Z:.*]] = arith.addf %[[T]], %[[ZOUT]] : f32
// CHECK: arith.maxnumf %[[Z]]
// CHECK: return
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @avg_pool_window(%x: tensor<1x4x4x8x!q>) -> tensor<1x2x2x8x!o> {
    %p = qnt.avg_pool2d %x {kernel = array<i64: 3, 3>, stride = array<i64: 1, 1>} : tensor<1x4x4x8x!q> -> tensor<1x2x2x8x!o>
    return %p : tensor<1x2x2x8x!o>
  }
}

// -----

!x = !quant.uniform<u8:f32, 0.1:0>
!w = !quant.uniform<i8:f32, 0.3>
!y = !quant.uniform<u8:f32, 0.7:0>

// The conv's multiplier f32(f32(S_x * S_w) / S_y) = 0.042857144 (qnt's,
// rounded once from double: 0.042857148), and the runtime's quantize
// divides (its params' last field).
// RT-DAG: memref.global "private" constant @{{.*}} : memref<3xf32> = dense<[0xFF800000, 0x7F800000, 0.042857144]>
// RT-DAG: memref.global "private" constant @{{.*}} : memref<7xi64> = dense<[1, 2, 1, 2, -128, 127, 1]>
// RT-LABEL: func.func @conv
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @conv(%x: tensor<1x1x1x1x!x>, %s: tensor<2xf32>) -> (tensor<1x1x1x1x!y>, tensor<2x!quant.uniform<i8:f32:0, {0.5, 0.25}>>) {
    %wi = arith.constant dense<1> : tensor<1x1x1x1xi8>
    %w = quant.scast %wi : tensor<1x1x1x1xi8> to tensor<1x1x1x1x!w>
    %y = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x1x1x1x!x>, tensor<1x1x1x1x!w>) -> tensor<1x1x1x1x!y>
    %q = quant.qcast %s : tensor<2xf32> to tensor<2x!quant.uniform<i8:f32:0, {0.5, 0.25}>>
    return %y, %q : tensor<1x1x1x1x!y>, tensor<2x!quant.uniform<i8:f32:0, {0.5, 0.25}>>
  }
}
