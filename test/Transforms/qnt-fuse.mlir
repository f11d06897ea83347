// RUN: quant-opt %s --qnt-fuse --split-input-file | FileCheck %s
// A constant too large to fold is an error at its location, before any
// pattern materializes it.
// RUN: not quant-opt %S/Inputs/huge-weight.mlir --qnt-fuse 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: huge-weight.mlir:3:8: error: constant of type 'tensor<1x100000x100000xf32>' has 10000000000 elements (40000000000 bytes), more than the limit of 2147483648 bytes

// conv -> batch-norm (mul, add) -> relu folds into one qnt.conv2d:
// w' = w * a = [2, 3], b' = b * a + beta = [0.5 * 2 + 1, 1 * 3 - 1] = [2, 2].
// CHECK-LABEL: func.func @conv_bn_relu
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{\[}}{{\[}}{{\[}}[2.000000e+00]]], {{\[}}{{\[}}[3.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<2.000000e+00> : tensor<2xf32>
// CHECK: %[[C:.*]] = qnt.conv2d %arg0, %[[W]], %[[B]] {activation = #qnt.activation<relu>, dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>}
// CHECK-NOT: tosa.
// CHECK: return %[[C]]
func.func @conv_bn_relu(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %w = "tosa.const"() {values = dense<1.0> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %b = "tosa.const"() {values = dense<[0.5, 1.0]> : tensor<2xf32>} : () -> tensor<2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %a = "tosa.const"() {values = dense<[[[[2.0, 3.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %m = tosa.mul %c, %a, %sh : (tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>, tensor<1xi8>) -> tensor<1x4x4x2xf32>
  %beta = "tosa.const"() {values = dense<[[[[1.0, -1.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %s = tosa.add %m, %beta : (tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>) -> tensor<1x4x4x2xf32>
  %r = tosa.clamp %s {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  return %r : tensor<1x4x4x2xf32>
}

// -----

// A one-element TOSA bias is broadcast to one per channel; clamp to [0, 6]
// is relu6, any other clamp a clamp with bounds.
// CHECK-LABEL: func.func @relu6_and_clamp
// CHECK-DAG: %[[B:.*]] = arith.constant dense<2.500000e-01> : tensor<2xf32>
// CHECK: %[[C:.*]] = qnt.conv2d %arg0, %{{.*}}, %[[B]] {activation = #qnt.activation<relu6>
// CHECK: qnt.conv2d %[[C]], %{{.*}}, %{{.*}} {activation = #qnt.activation<clamp>, clamp_max = 2.000000e+00 : f32, clamp_min = -1.000000e+00 : f32
func.func @relu6_and_clamp(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %w = "tosa.const"() {values = dense<1.0> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %w2 = "tosa.const"() {values = dense<1.0> : tensor<2x1x1x2xf32>} : () -> tensor<2x1x1x2xf32>
  %b = "tosa.const"() {values = dense<0.25> : tensor<1xf32>} : () -> tensor<1xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %r = tosa.clamp %c {min_val = 0.0 : f32, max_val = 6.0 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %c2 = tosa.conv2d %r, %w2, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x2xf32>, tensor<2x1x1x2xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %r2 = tosa.clamp %c2 {min_val = -1.0 : f32, max_val = 2.0 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  return %r2 : tensor<1x4x4x2xf32>
}

// -----

// reshape -> matmul(const [1, K, N]) -> reshape -> add(bias) is a linear
// layer: the weight is transposed to [N, K] and the bias folded.
// CHECK-LABEL: func.func @linear
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 3.000000e+00, 5.000000e+00], [2.000000e+00, 4.000000e+00, 6.000000e+00]]> : tensor<2x3xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[5.000000e-01, -5.000000e-01]> : tensor<2xf32>
// CHECK: %[[L:.*]] = qnt.linear %arg0, %[[W]], %[[B]] {activation = #qnt.activation<relu>} : (tensor<4x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<4x2xf32>
// CHECK-NEXT: return %[[L]]
func.func @linear(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %s3 = tosa.const_shape {values = dense<[1, 4, 3]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %x3 = tosa.reshape %x, %s3 : (tensor<4x3xf32>, !tosa.shape<3>) -> tensor<1x4x3xf32>
  %w = "tosa.const"() {values = dense<[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]> : tensor<1x3x2xf32>} : () -> tensor<1x3x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x3, %w, %zp, %zp : (tensor<1x4x3xf32>, tensor<1x3x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x2xf32>
  %s2 = tosa.const_shape {values = dense<[4, 2]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %y = tosa.reshape %mm, %s2 : (tensor<1x4x2xf32>, !tosa.shape<2>) -> tensor<4x2xf32>
  %b = "tosa.const"() {values = dense<[[0.5, -0.5]]> : tensor<1x2xf32>} : () -> tensor<1x2xf32>
  %z = tosa.add %y, %b : (tensor<4x2xf32>, tensor<1x2xf32>) -> tensor<4x2xf32>
  %r = tosa.clamp %z {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<4x2xf32>) -> tensor<4x2xf32>
  return %r : tensor<4x2xf32>
}

// -----

// The frontend's qnt.float_in_pytorch mark on the matmul stays on the
// lifted linear (qnt-prepare's dynamic mode reads it).
// CHECK-LABEL: func.func @marked_linear
// CHECK: qnt.linear %arg0, %{{.*}}, %{{.*}} {qnt.float_in_pytorch}
func.func @marked_linear(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %s3 = tosa.const_shape {values = dense<[1, 4, 3]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %x3 = tosa.reshape %x, %s3 : (tensor<4x3xf32>, !tosa.shape<3>) -> tensor<1x4x3xf32>
  %w = "tosa.const"() {values = dense<1.0> : tensor<1x3x2xf32>} : () -> tensor<1x3x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x3, %w, %zp, %zp {qnt.float_in_pytorch} : (tensor<1x4x3xf32>, tensor<1x3x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x2xf32>
  %s2 = tosa.const_shape {values = dense<[4, 2]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %y = tosa.reshape %mm, %s2 : (tensor<1x4x2xf32>, !tosa.shape<2>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// Negative: the conv result has two uses, so the multiply must stay (folding
// it would change the other use).
// CHECK-LABEL: func.func @multi_use
// CHECK: %[[C:.*]] = qnt.conv2d
// CHECK: tosa.mul %[[C]]
// CHECK: return
func.func @multi_use(%x: tensor<1x4x4x1xf32>) -> (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>) {
  %w = "tosa.const"() {values = dense<1.0> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %b = "tosa.const"() {values = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %a = "tosa.const"() {values = dense<2.0> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %m = tosa.mul %c, %a, %sh : (tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>, tensor<1xi8>) -> tensor<1x4x4x2xf32>
  return %m, %c : tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>
}

// -----

// Negative: a multiply that varies over space is not a per-channel scale:
// it is the product of two activations.
// CHECK-LABEL: func.func @not_per_channel
// CHECK: %[[C:.*]] = qnt.conv2d
// CHECK: qnt.mul %[[C]], %arg1
func.func @not_per_channel(%x: tensor<1x4x4x1xf32>, %a: tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32> {
  %w = "tosa.const"() {values = dense<1.0> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %b = "tosa.const"() {values = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %m = tosa.mul %c, %a, %sh : (tensor<1x4x4x2xf32>, tensor<1x4x4x2xf32>, tensor<1xi8>) -> tensor<1x4x4x2xf32>
  return %m : tensor<1x4x4x2xf32>
}

// -----

// Negative: batch-norm after relu cannot be folded into the weights.
// CHECK-LABEL: func.func @bn_after_relu
// CHECK: %[[C:.*]] = qnt.conv2d {{.*}}activation = #qnt.activation<relu>
// CHECK: tosa.mul %[[C]]
func.func @bn_after_relu(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %w = "tosa.const"() {values = dense<1.0> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %b = "tosa.const"() {values = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32>
  %r = tosa.clamp %c {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %a = "tosa.const"() {values = dense<2.0> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %m = tosa.mul %r, %a, %sh : (tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>, tensor<1xi8>) -> tensor<1x4x4x2xf32>
  return %m : tensor<1x4x4x2xf32>
}

// -----

// Negative: a convolution with a non-zero input zero point is not a float
// convolution and is not lifted.
// CHECK-LABEL: func.func @not_lifted
// CHECK: tosa.conv2d
// CHECK-NOT: qnt.
func.func @not_lifted(%x: tensor<1x4x4x1xi8>) -> tensor<1x4x4x2xi32> {
  %w = "tosa.const"() {values = dense<1> : tensor<2x1x1x1xi8>} : () -> tensor<2x1x1x1xi8>
  %bias = "tosa.const"() {values = dense<0> : tensor<2xi32>} : () -> tensor<2xi32>
  %izp = "tosa.const"() {values = dense<3> : tensor<1xi8>} : () -> tensor<1xi8>
  %wzp = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %c = tosa.conv2d %x, %w, %bias, %izp, %wzp {acc_type = i32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xi8>, tensor<2x1x1x1xi8>, tensor<2xi32>, tensor<1xi8>, tensor<1xi8>) -> tensor<1x4x4x2xi32>
  return %c : tensor<1x4x4x2xi32>
}

// -----

// A matmul of two computed tensors (attention) is a qnt.batch_matmul; a
// transpose of the right operand's last two dimensions becomes transpose_b
// and the frontend's marks stay (on every lifted op). A constant operand of a batched matmul (no
// linear layer: several batches) and a dynamic shape stay TOSA.
// CHECK-LABEL: func.func @batch_matmul
// CHECK: %[[S:.*]] = qnt.batch_matmul %arg0, %arg1 {qnt.float_in_pytorch, transpose_b} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
// CHECK: %[[M:.*]] = qnt.add %[[S]], %arg4 {qnt.float_in_pytorch}
// CHECK: qnt.batch_matmul %[[M]], %arg2 : (tensor<2x3x5xf32>, tensor<2x5x4xf32>) -> tensor<2x3x4xf32>
// CHECK: tosa.matmul %arg0, %{{.*}} : (tensor<2x3x4xf32>, tensor<2x4x2xf32>
// CHECK: tosa.matmul %arg3, %arg3
func.func @batch_matmul(%q: tensor<2x3x4xf32>, %k: tensor<2x5x4xf32>, %v: tensor<2x5x4xf32>, %d: tensor<?x4x4xf32>, %mask: tensor<2x3x5xf32>) -> (tensor<2x3x4xf32>, tensor<2x3x2xf32>, tensor<?x4x4xf32>) {
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %kt = tosa.transpose %k {perms = array<i32: 0, 2, 1>} : (tensor<2x5x4xf32>) -> tensor<2x4x5xf32>
  %s = tosa.matmul %q, %kt, %zp, %zp {qnt.float_in_pytorch} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<2x3x5xf32>
  %sm = tosa.add %s, %mask {qnt.float_in_pytorch} : (tensor<2x3x5xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %c = tosa.matmul %sm, %v, %zp, %zp : (tensor<2x3x5xf32>, tensor<2x5x4xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<2x3x4xf32>
  %w = "tosa.const"() {values = dense<1.0> : tensor<2x4x2xf32>} : () -> tensor<2x4x2xf32>
  %l = tosa.matmul %q, %w, %zp, %zp : (tensor<2x3x4xf32>, tensor<2x4x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<2x3x2xf32>
  %e = tosa.matmul %d, %d, %zp, %zp : (tensor<?x4x4xf32>, tensor<?x4x4xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x4x4xf32>
  return %c, %l, %e : tensor<2x3x4xf32>, tensor<2x3x2xf32>, tensor<?x4x4xf32>
}

// -----

// A depthwise conv becomes a grouped qnt.conv2d: weight [KH, KW, C, M] ->
// OHWI [C * M, KH, KW, 1], output channel c * M + m, groups = C.
// CHECK-LABEL: func.func @depthwise
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{\[}}{{\[}}{{\[}}[1.000000e+00]]], {{\[}}{{\[}}[2.000000e+00]]], {{\[}}{{\[}}[3.000000e+00]]], {{\[}}{{\[}}[4.000000e+00]]]]> : tensor<4x1x1x1xf32>
// CHECK: qnt.conv2d %arg0, %[[W]], %{{.*}} {dilation = array<i64: 1, 1>, groups = 2 : i64, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x3x3x2xf32>, tensor<4x1x1x1xf32>, tensor<4xf32>) -> tensor<1x3x3x4xf32>
func.func @depthwise(%x: tensor<1x3x3x2xf32>) -> tensor<1x3x3x4xf32> {
  %w = "tosa.const"() {values = dense<[[[[1.0, 2.0], [3.0, 4.0]]]]> : tensor<1x1x2x2xf32>} : () -> tensor<1x1x2x2xf32>
  %b = "tosa.const"() {values = dense<0.0> : tensor<4xf32>} : () -> tensor<4xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %y = tosa.depthwise_conv2d %x, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x3x3x2xf32>, tensor<1x1x2x2xf32>, tensor<4xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x3x3x4xf32>
  return %y : tensor<1x3x3x4xf32>
}

// -----

// A residual add of two computed tensors becomes qnt.add and absorbs the
// relu after it; adding a constant does not.
// CHECK-LABEL: func.func @residual
// CHECK: %[[A:.*]] = qnt.add %arg0, %arg1 {activation = #qnt.activation<relu>} : (tensor<1x2x2x3xf32>, tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32>
// CHECK: tosa.add %[[A]], %{{.*}} : (tensor<1x2x2x3xf32>, tensor<1x2x2x3xf32>)
func.func @residual(%a: tensor<1x2x2x3xf32>, %b: tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32> {
  %s = tosa.add %a, %b : (tensor<1x2x2x3xf32>, tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32>
  %r = tosa.clamp %s {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32>
  %c = "tosa.const"() {values = dense<1.0> : tensor<1x2x2x3xf32>} : () -> tensor<1x2x2x3xf32>
  %t = tosa.add %r, %c : (tensor<1x2x2x3xf32>, tensor<1x2x2x3xf32>) -> tensor<1x2x2x3xf32>
  return %t : tensor<1x2x2x3xf32>
}

// -----

// Negative: relu6 cannot be fused into qnt.add (only relu can).
// CHECK-LABEL: func.func @add_relu6
// CHECK: %[[A:.*]] = qnt.add %arg0, %arg1 :
// CHECK: tosa.clamp %[[A]]
func.func @add_relu6(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %s = tosa.add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r = tosa.clamp %s {min_val = 0.0 : f32, max_val = 6.0 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// -----

// Ops of a float composite (a softmax's x * 1/sum, a layer norm's
// x - mean) are not lifted into qnt.mul / qnt.add: quantization treats the
// composite as one float op.
// CHECK-LABEL: func.func @float_composite
// CHECK-NOT: qnt.mul
// CHECK-NOT: qnt.add
// CHECK: tosa.mul %arg0, %arg1, %{{.*}} {qnt.float_composite = "softmax"}
// CHECK: tosa.add %{{.*}}, %arg0 {qnt.float_composite = "layer_norm"}
func.func @float_composite(%a: tensor<2x8xf32>, %b: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %shift = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %m = tosa.mul %a, %b, %shift {qnt.float_composite = "softmax"} : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<1xi8>) -> tensor<2x8xf32>
  %s = tosa.add %m, %a {qnt.float_composite = "layer_norm"} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %s : tensor<2x8xf32>
}

// -----

// A linear layer of a rank-3 activation (the frontend's form: reshape to
// rank 2, matmul, bias, reshape back) absorbs the relu after the reshape.
// CHECK-LABEL: func.func @linear_rank3_relu
// CHECK: %[[L:.*]] = qnt.linear %{{.*}}, %{{.*}}, %{{.*}} {activation = #qnt.activation<relu>} : (tensor<8x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<8x2xf32>
// CHECK-NEXT: %[[R:.*]] = tosa.reshape %[[L]]
// CHECK-NEXT: return %[[R]]
func.func @linear_rank3_relu(%x: tensor<2x4x3xf32>) -> tensor<2x4x2xf32> {
  %s3 = tosa.const_shape {values = dense<[1, 8, 3]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %x3 = tosa.reshape %x, %s3 : (tensor<2x4x3xf32>, !tosa.shape<3>) -> tensor<1x8x3xf32>
  %w = "tosa.const"() {values = dense<[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]> : tensor<1x3x2xf32>} : () -> tensor<1x3x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x3, %w, %zp, %zp : (tensor<1x8x3xf32>, tensor<1x3x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x8x2xf32>
  %s2 = tosa.const_shape {values = dense<[8, 2]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %y = tosa.reshape %mm, %s2 : (tensor<1x8x2xf32>, !tosa.shape<2>) -> tensor<8x2xf32>
  %b = "tosa.const"() {values = dense<[[0.5, -0.5]]> : tensor<1x2xf32>} : () -> tensor<1x2xf32>
  %z = tosa.add %y, %b : (tensor<8x2xf32>, tensor<1x2xf32>) -> tensor<8x2xf32>
  %s = tosa.const_shape {values = dense<[2, 4, 2]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %z3 = tosa.reshape %z, %s : (tensor<8x2xf32>, !tosa.shape<3>) -> tensor<2x4x2xf32>
  %r = tosa.clamp %z3 {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<2x4x2xf32>) -> tensor<2x4x2xf32>
  return %r : tensor<2x4x2xf32>
}

// -----

// Negative: the reshaped value is also used before the relu, so the
// linear's own result must stay unclamped.
// CHECK-LABEL: func.func @linear_rank3_relu_reshape_shared
// CHECK: qnt.linear
// CHECK-NOT: activation
// CHECK: tosa.clamp
func.func @linear_rank3_relu_reshape_shared(%x: tensor<8x3xf32>) -> (tensor<2x4x2xf32>, tensor<2x4x2xf32>) {
  %s3 = tosa.const_shape {values = dense<[1, 8, 3]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %x3 = tosa.reshape %x, %s3 : (tensor<8x3xf32>, !tosa.shape<3>) -> tensor<1x8x3xf32>
  %w = "tosa.const"() {values = dense<[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]> : tensor<1x3x2xf32>} : () -> tensor<1x3x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %mm = tosa.matmul %x3, %w, %zp, %zp : (tensor<1x8x3xf32>, tensor<1x3x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x8x2xf32>
  %s = tosa.const_shape {values = dense<[2, 4, 2]> : tensor<3xindex>} : () -> !tosa.shape<3>
  %y = tosa.reshape %mm, %s : (tensor<1x8x2xf32>, !tosa.shape<3>) -> tensor<2x4x2xf32>
  %r = tosa.clamp %y {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<2x4x2xf32>) -> tensor<2x4x2xf32>
  return %r, %y : tensor<2x4x2xf32>, tensor<2x4x2xf32>
}
