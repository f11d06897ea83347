// RUN: quant-opt %s --qnt-lower-to-linalg --split-input-file | FileCheck %s
// Integer codegen: linalg.generic on the storage integers between
// quant.scasts, with the arithmetic of docs/numerics.md.

!q = !quant.uniform<u8:f32, 0.5:3>
!s = !quant.uniform<i8:f32, 0.5:3>

// A table on u8 indexes with the zero-extended value, on s8 with the
// sign-extended value + 128.
// CHECK-LABEL: func.func @table
// CHECK-DAG: %[[T:.*]] = arith.constant dense<"0x03030303040506{{.*}}FDFEFF"> : tensor<256xi8>
// CHECK-DAG: %[[IN:.*]] = quant.scast %arg0 : tensor<1x4x!quant.uniform<u8:f32, 5.000000e-01:3>> to tensor<1x4xi8>
// CHECK: %[[G:.*]] = linalg.generic {{.*}} ins(%[[IN]] : tensor<1x4xi8>)
// CHECK: %[[E:.*]] = arith.extui %{{.*}} : i8 to i32
// CHECK: %[[I:.*]] = arith.index_cast %[[E]] : i32 to index
// CHECK: tensor.extract %[[T]][%[[I]]] : tensor<256xi8>
// CHECK: quant.scast %[[G]] : tensor<1x4xi8> to tensor<1x4x!quant.uniform<u8:f32, 5.000000e-01:3>>
// CHECK: %[[S:.*]] = arith.extsi %{{.*}} : i8 to i32
// CHECK-NEXT: arith.addi %[[S]], %c128_i32 : i32
// CHECK-NOT: qnt.table
func.func @table(%q: tensor<1x4x!q>, %s: tensor<1x4x!s>) -> (tensor<1x4x!q>, tensor<1x4x!s>) {
  %y = qnt.table %q {table = array<i8: 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, -128, -127, -126, -125, -124, -123, -122, -121, -120, -119, -118, -117, -116, -115, -114, -113, -112, -111, -110, -109, -108, -107, -106, -105, -104, -103, -102, -101, -100, -99, -98, -97, -96, -95, -94, -93, -92, -91, -90, -89, -88, -87, -86, -85, -84, -83, -82, -81, -80, -79, -78, -77, -76, -75, -74, -73, -72, -71, -70, -69, -68, -67, -66, -65, -64, -63, -62, -61, -60, -59, -58, -57, -56, -55, -54, -53, -52, -51, -50, -49, -48, -47, -46, -45, -44, -43, -42, -41, -40, -39, -38, -37, -36, -35, -34, -33, -32, -31, -30, -29, -28, -27, -26, -25, -24, -23, -22, -21, -20, -19, -18, -17, -16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1>} : tensor<1x4x!q> -> tensor<1x4x!q>
  %z = qnt.table %s {table = array<i8: 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0>} : tensor<1x4x!s> -> tensor<1x4x!s>
  return %y, %z : tensor<1x4x!q>, tensor<1x4x!s>
}

// -----

!a = !quant.uniform<u8:f32, 0.5:3>
!b = !quant.uniform<u8:f32, 0.25:1>
!o = !quant.uniform<u8:f32, 0.125:2>

// Quantized multiply with broadcasting (the size-1 dims of %b index 0):
// dequantize both, multiply, * f32(1/S_out), clamp to [lo - Z_out, hi -
// Z_out] (relu: lo = Z_out), rint (+- 1.5 * 2^23), + Z_out.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$BC:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, 0, 0, d3)>
// CHECK-LABEL: func.func @mul
// CHECK-DAG: %[[LO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[HI:.*]] = arith.constant 2.530000e+02 : f32
// CHECK-DAG: %[[MAGIC:.*]] = arith.constant 0x4B400000 : f32
// CHECK-DAG: %[[ZO:.*]] = arith.constant 2 : i32
// CHECK-DAG: %[[INV:.*]] = arith.constant 8.000000e+00 : f32
// CHECK-DAG: %[[SB:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-DAG: %[[SA:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$BC]], #[[$ID]]]
// CHECK: %[[A:.*]] = arith.mulf %{{.*}}, %[[SA]] : f32
// CHECK: %[[B:.*]] = arith.mulf %{{.*}}, %[[SB]] : f32
// CHECK-NEXT: %[[P:.*]] = arith.mulf %[[A]], %[[B]] : f32
// CHECK-NEXT: %[[V:.*]] = arith.mulf %[[P]], %[[INV]] : f32
// CHECK-NEXT: %[[L:.*]] = arith.maxnumf %[[V]], %[[LO]] : f32
// CHECK-NEXT: %[[H:.*]] = arith.minnumf %[[L]], %[[HI]] : f32
// CHECK-NEXT: %[[U:.*]] = arith.addf %[[H]], %[[MAGIC]] : f32
// CHECK-NEXT: %[[R:.*]] = arith.subf %[[U]], %[[MAGIC]] : f32
// CHECK-NEXT: %[[I:.*]] = arith.fptosi %[[R]] : f32 to i32
// CHECK-NEXT: %[[Q:.*]] = arith.addi %[[I]], %[[ZO]] : i32
// CHECK-NEXT: arith.trunci %[[Q]] : i32 to i8
func.func @mul(%a: tensor<1x2x2x3x!a>, %b: tensor<1x1x1x3x!b>) -> tensor<1x2x2x3x!o> {
  %m = qnt.mul %a, %b {activation = #qnt.activation<relu>} : (tensor<1x2x2x3x!a>, tensor<1x1x1x3x!b>) -> tensor<1x2x2x3x!o>
  return %m : tensor<1x2x2x3x!o>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>
!o = !quant.uniform<u8:f32, 0.25:7>

// Average pooling: an i32 window sum with channels innermost, then
// (sum - 3 * 4) * f32(0.5 / (0.25 * 4)) requantized.
// CHECK-DAG: #[[$IN:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 * 2 + d3, d2 * 2 + d4, d5)>
// CHECK-DAG: #[[$WIN:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d4)>
// CHECK-DAG: #[[$OUT:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d5)>
// CHECK-LABEL: func.func @avg_pool
// CHECK-DAG: %[[M:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG: %[[OFF:.*]] = arith.constant 12 : i32
// CHECK: linalg.generic {indexing_maps = [#[[$IN]], #[[$WIN]], #[[$OUT]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
// CHECK: %[[X:.*]] = arith.extui %{{.*}} : i8 to i32
// CHECK-NEXT: arith.addi %{{.*}}, %[[X]] : i32
// CHECK: linalg.generic
// CHECK: %[[C:.*]] = arith.subi %{{.*}}, %[[OFF]] : i32
// CHECK-NEXT: %[[F:.*]] = arith.sitofp %[[C]] : i32 to f32
// CHECK-NEXT: %[[V:.*]] = arith.mulf %[[F]], %[[M]] : f32
// CHECK-NEXT: arith.maxnumf %[[V]], %{{.*}} : f32
func.func @avg_pool(%q: tensor<1x4x4x2x!q>) -> tensor<1x2x2x2x!o> {
  %p = qnt.avg_pool2d %q {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>} : tensor<1x4x4x2x!q> -> tensor<1x2x2x2x!o>
  return %p : tensor<1x2x2x2x!o>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// A quantized concat inserts each input into one result tensor (the
// producers then write in place, after empty-tensor elimination).
// CHECK-LABEL: func.func @concat
// CHECK-DAG: %[[A:.*]] = quant.scast %arg0 : {{.*}} to tensor<1x2x2x3xi8>
// CHECK-DAG: %[[E:.*]] = tensor.empty() : tensor<1x2x2x8xi8>
// CHECK: %[[R:.*]] = tensor.insert_slice %[[A]] into %[[E]][0, 0, 0, 0] [1, 2, 2, 3] [1, 1, 1, 1]
// CHECK: %[[B:.*]] = quant.scast %arg1 : {{.*}} to tensor<1x2x2x5xi8>
// CHECK: %[[S:.*]] = tensor.insert_slice %[[B]] into %[[R]][0, 0, 0, 3] [1, 2, 2, 5] [1, 1, 1, 1]
// CHECK: quant.scast %[[S]] : tensor<1x2x2x8xi8> to tensor<1x2x2x8x!quant.uniform<u8:f32, 5.000000e-01:3>>
// CHECK-NOT: tosa.concat
func.func @concat(%a: tensor<1x2x2x3x!q>, %b: tensor<1x2x2x5x!q>) -> tensor<1x2x2x8x!q> {
  %c = tosa.concat %a, %b {axis = 3 : i32} : (tensor<1x2x2x3x!q>, tensor<1x2x2x5x!q>) -> tensor<1x2x2x8x!q>
  return %c : tensor<1x2x2x8x!q>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>
!o = !quant.uniform<u8:f32, 0.25:7>

// A batch-norm: per channel rint(f32(q - 3) * f32(0.5 * scale / 0.25) +
// f32(shift / 0.25)) + 7, from relu's bound (the zero point) to 255: the
// value clamped to [0, 248] before the rounding.
// CHECK-DAG: #[[$CH:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @batch_norm
// CHECK-DAG: %[[A:.*]] = arith.constant dense<[1.000000e+00, 4.000000e+00]> : tensor<2xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[1.000000e+00, -4.000000e+00]> : tensor<2xf32>
// CHECK-DAG: %[[LO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[HI:.*]] = arith.constant 2.480000e+02 : f32
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[$CH]], #[[$CH]], #{{.*}}]{{.*}} ins(%{{.*}}, %[[A]], %[[B]] :
// CHECK: %[[X:.*]] = arith.sitofp
// CHECK-NEXT: %[[M:.*]] = arith.mulf %[[X]], %{{.*}} : f32
// CHECK-NEXT: %[[V:.*]] = arith.addf %[[M]], %{{.*}} : f32
// CHECK-NEXT: %[[L:.*]] = arith.maxnumf %[[V]], %[[LO]] : f32
// CHECK-NEXT: arith.minnumf %[[L]], %[[HI]] : f32
func.func @batch_norm(%q: tensor<1x2x!q>) -> tensor<1x2x!o> {
  %y = qnt.batch_norm %q {clamp_min = 0.0 : f32, scale = array<f32: 0.5, 2.0>, shift = array<f32: 0.25, -1.0>} : tensor<1x2x!q> -> tensor<1x2x!o>
  return %y : tensor<1x2x!o>
}

// -----

!a = !quant.uniform<u8:f32, 0.5:3>
!b = !quant.uniform<u8:f32, 0.25:1>
!o = !quant.uniform<u8:f32, 0.125:2>

// Quantized add (+ relu): the runtime's exact formula, dequantize both, add,
// max(0), * f32(1/S_out), rint, + Z_out, clamp. Float adds stay with the
// kernel library.
// CHECK-LABEL: func.func @add
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[INV:.*]] = arith.constant 8.000000e+00 : f32
// CHECK: linalg.generic
// CHECK: %[[S:.*]] = arith.addf %{{.*}}, %{{.*}} : f32
// CHECK-NEXT: %[[R:.*]] = arith.maximumf %[[S]], %[[ZERO]] : f32
// CHECK-NEXT: %[[V:.*]] = arith.mulf %[[R]], %[[INV]] : f32
// CHECK-NEXT: arith.maxnumf %[[V]], %{{.*}} : f32
// CHECK: qnt.add %arg2, %arg3 : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
func.func @add(%a: tensor<1x4x!a>, %b: tensor<1x4x!b>, %fa: tensor<1x4xf32>, %fb: tensor<1x4xf32>) -> (tensor<1x4x!o>, tensor<1x4xf32>) {
  %s = qnt.add %a, %b {activation = #qnt.activation<relu>} : (tensor<1x4x!a>, tensor<1x4x!b>) -> tensor<1x4x!o>
  %f = qnt.add %fa, %fb : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return %s, %f : tensor<1x4x!o>, tensor<1x4xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.5:3>

// qnt.resize: a gather through per-row and per-column tables. Nearest 2 -> 3
// (step 2/3): rows floor(o * 0.666..) = 0, 0, 1. Bilinear half-pixel 2 -> 4
// (step 1/2): sources 0 (clamped), 0.25, 0.75, 1.25 -> pixels 0, 0, 0, 1
// and next 1, 1, 1, 1 (the last clamped), weights 1 - l, l; then
// rint(r - Z) + Z on the storage integers.
// CHECK-LABEL: func.func @resize
// CHECK-DAG: arith.constant dense<[0, 0, 1]> : tensor<3xi32>
// CHECK-DAG: arith.constant dense<[0, 0, 0, 1]> : tensor<4xi32>
// CHECK-DAG: arith.constant dense<1> : tensor<4xi32>
// CHECK-DAG: arith.constant dense<[1.000000e+00, 7.500000e-01, 2.500000e-01, 7.500000e-01]> : tensor<4xf32>
// CHECK-DAG: arith.constant dense<[0.000000e+00, 2.500000e-01, 7.500000e-01, 2.500000e-01]> : tensor<4xf32>
// CHECK: linalg.generic
// CHECK: linalg.index 0
// CHECK: linalg.index 3
// CHECK: tensor.extract %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : tensor<1x2x2x1xi8>
// CHECK: linalg.generic
// CHECK-COUNT-4: tensor.extract %{{.*}} : tensor<1x2x2x1xi8>
// CHECK: arith.subf
// CHECK: arith.fptosi
// CHECK-NOT: qnt.resize
func.func @resize(%x: tensor<1x2x2x1x!q>) -> (tensor<1x3x3x1x!q>, tensor<1x4x4x1x!q>) {
  %n = qnt.resize %x {align_corners = false, mode = #qnt.resize_mode<nearest>, scale = array<f32: 0.666666686, 0.666666686>} : tensor<1x2x2x1x!q> -> tensor<1x3x3x1x!q>
  %b = qnt.resize %x {align_corners = false, mode = #qnt.resize_mode<bilinear>, scale = array<f32: 0.5, 0.5>} : tensor<1x2x2x1x!q> -> tensor<1x4x4x1x!q>
  return %n, %b : tensor<1x3x3x1x!q>, tensor<1x4x4x1x!q>
}

// -----

!q = !quant.uniform<u8<0:127>:f32, 0.5:3>

// Per-tensor 8-bit quantize and dequantize as the runtime computes them:
// x * f32(1/S), clamped to [qmin - Z, qmax - Z] (NaN to qmin - Z), rounded
// half to even with 1.5 * 2^23, + Z; f32(q - Z) * S. Per-axis casts stay
// (runtime calls).
// CHECK-LABEL: func.func @casts
// CHECK: linalg.generic {{.*}} ins(%arg0 : tensor<2x4xf32>) outs(%{{.*}} : tensor<2x4xi8>)
// CHECK: arith.mulf %{{.*}}, %cst{{.*}} : f32
// CHECK: arith.maxnumf %{{.*}}, %cst{{.*}} : f32
// CHECK: arith.minnumf %{{.*}}, %cst{{.*}} : f32
// CHECK: arith.addf
// CHECK: arith.subf
// CHECK: arith.fptosi
// CHECK: arith.addi %{{.*}}, %c3_i32
// CHECK: arith.trunci %{{.*}} : i32 to i8
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<2x4xf32>)
// CHECK: arith.extui
// CHECK: arith.subi %{{.*}}, %c3_i32
// CHECK: arith.sitofp
// CHECK: arith.mulf %{{.*}}, %cst{{.*}} : f32
// CHECK: quant.qcast %arg1 : tensor<3x2xf32> to tensor<3x2x!quant.uniform<i8:f32:1, {5.000000e-01,2.500000e-01}>>
func.func @casts(%x: tensor<2x4xf32>, %y: tensor<3x2xf32>) -> (tensor<2x4xf32>, tensor<3x2x!quant.uniform<i8:f32:1, {0.5, 0.25}>>) {
  %q = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!q>
  %d = quant.dcast %q : tensor<2x4x!q> to tensor<2x4xf32>
  %p = quant.qcast %y : tensor<3x2xf32> to tensor<3x2x!quant.uniform<i8:f32:1, {0.5, 0.25}>>
  return %d, %p : tensor<2x4xf32>, tensor<3x2x!quant.uniform<i8:f32:1, {0.5, 0.25}>>
}
