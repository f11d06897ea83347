// RUN: quant-opt %s --qnt-lower-to-runtime --split-input-file --verify-diagnostics | FileCheck %s
// RUN: not quant-opt %s --qnt-lower-to-runtime="backend=tpu" --split-input-file 2>&1 | FileCheck %s --check-prefix=BACKEND

// BACKEND: error: unknown backend 'tpu'; expected one of: onednn, xnnpack, auto

// A quantized conv: shapes, zero points, the integer clamp of relu6
// ([Z, Z + rint(6 / S_out)] = [5, 29]) and the multipliers
// M[c] = S_in * S_w[c] / S_out = [0.25, 0.125] are compile-time constants;
// the call site owns a zero-initialized handle.
// CHECK-LABEL: module
// CHECK-DAG: func.func private @qnt_rt_quantize(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr)
// CHECK-DAG: func.func private @qnt_rt_conv2d(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr)
// CHECK-DAG: func.func private @qnt_rt_dequantize(
// CHECK-DAG: memref.global "private" constant @[[$CP:.*]] : memref<32xi64> = dense<[1, 4, 4, 3, 2, 3, 3, 2, 2, 2, 2, 1, 0, 1, 0, 1, 1, 1, 1, 2, 1, 2, 0, 3, 0, 127, 5, 5, 29, 2, 0, 0]>
// CHECK-DAG: memref.global "private" constant @[[$CF:.*]] : memref<4xf32> = dense<[0.000000e+00, 6.000000e+00, 2.500000e-01, 1.250000e-01]>
// CHECK-DAG: memref.global "private" constant @{{.*}} : memref<7xi64> = dense<[1, 1, 48, 1, 0, 127, 0]>
// CHECK-LABEL: func.func @conv
// CHECK: call @qnt_rt_quantize
// CHECK: memref.get_global @__qnt_handle
// CHECK: memref.get_global @[[$CP]]
// CHECK: memref.get_global @[[$CF]]
// CHECK: call @qnt_rt_conv2d
// CHECK: bufferization.to_tensor %{{.*}} restrict writable : memref<1x2x2x2xi8> to tensor<1x2x2x2xi8>
// CHECK: call @qnt_rt_dequantize
// CHECK-NOT: quant.
// CHECK-NOT: qnt.
!qin = !quant.uniform<u8<0:127>:f32, 0.5:3>
!qout = !quant.uniform<u8<0:127>:f32, 0.25:5>
!w = !quant.uniform<i8:f32:0, {0.125, 0.0625}>
func.func @conv(%x: tensor<1x4x4x3xf32>) -> tensor<1x2x2x2xf32> {
  %xq = quant.qcast %x : tensor<1x4x4x3xf32> to tensor<1x4x4x3x!qin>
  %wi = arith.constant dense<1> : tensor<2x3x3x3xi8>
  %w = quant.scast %wi : tensor<2x3x3x3xi8> to tensor<2x3x3x3x!w>
  %b = arith.constant dense<[7, -7]> : tensor<2xi32>
  %y = qnt.conv2d %xq, %w, %b {activation = #qnt.activation<relu6>, dilation = array<i64: 1, 1>, pad = array<i64: 1, 0, 1, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x3x!qin>, tensor<2x3x3x3x!w>, tensor<2xi32>) -> tensor<1x2x2x2x!qout>
  %r = quant.dcast %y : tensor<1x2x2x2x!qout> to tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}

// -----

// Float conv, observers and stubs: observe calls the runtime with its id and
// forwards its input; stubs disappear.
// CHECK-DAG: memref.global "private" constant @[[$ID:.*]] : memref<5xi8> = dense<[99, 58, 105, 110, 0]>
// CHECK-DAG: memref.global "private" constant @[[$OP:.*]] : memref<6xi64> = dense<[1, 1, 32, 0, 0, 0]>
// CHECK-DAG: memref.global "private" constant @{{.*}} : memref<32xi64> = dense<[1, 4, 4, 2, 2, 1, 1, 4, 4, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]>
// CHECK-DAG: memref.global "private" constant @{{.*}} : memref<2xf32> = dense<[0.000000e+00, 0x7F800000]>
// CHECK-LABEL: func.func @float_conv
// CHECK: memref.get_global @[[$OP]]
// CHECK: memref.get_global @[[$ID]]
// CHECK: call @qnt_rt_observe
// CHECK: call @qnt_rt_conv2d
// CHECK-NOT: qnt.
func.func @float_conv(%x: tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32> {
  %s = qnt.quant_stub %x : tensor<1x4x4x2xf32>
  %o = qnt.observe %s {id = "c:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<1x4x4x2xf32>
  %w = arith.constant dense<1.0> : tensor<2x1x1x2xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %y = qnt.conv2d %o, %w, %b {activation = #qnt.activation<relu>, dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x2xf32>, tensor<2x1x1x2xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32>
  %d = qnt.dequant_stub %y : tensor<1x4x4x2xf32>
  return %d : tensor<1x4x4x2xf32>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:10>
!w = !quant.uniform<i8:f32, 0.01>
func.func @float_bias(%x: tensor<1x2x!q>, %w: tensor<2x2x!w>, %b: tensor<2xf32>) -> tensor<1x2x!q> {
  // expected-error @+2 {{the onednn backend needs an i32 bias on quantized ops (run --qnt-convert)}}
  // expected-error @+1 {{failed to legalize operation 'qnt.linear'}}
  %y = qnt.linear %x, %w, %b : (tensor<1x2x!q>, tensor<2x2x!w>, tensor<2xf32>) -> tensor<1x2x!q>
  return %y : tensor<1x2x!q>
}

// -----

// Observer options reach the runtime: percentile (like histogram and
// entropy) accumulates a histogram (kind 4) with its bins and upsample rate;
// a moving average passes its averaging constant in fparams.
// CHECK-DAG: memref.global "private" constant @[[$HP:.*]] : memref<6xi64> = dense<[1, 1, 8, 4, 512, 128]>
// CHECK-DAG: memref.global "private" constant @[[$MP:.*]] : memref<6xi64> = dense<[1, 1, 8, 2, 0, 0]>
// CHECK-DAG: memref.global "private" constant @[[$MF:.*]] : memref<1xf32> = dense<2.500000e-01>
// CHECK-LABEL: func.func @observer_options
// CHECK: memref.get_global @[[$HP]]
// CHECK: call @qnt_rt_observe
// CHECK: memref.get_global @[[$MP]]
// CHECK: memref.get_global @[[$MF]]
// CHECK: call @qnt_rt_observe
func.func @observer_options(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = qnt.observe %x {id = "p", kind = #qnt.observer<percentile>, bins = 512, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x4xf32>
  %1 = qnt.observe %0 {id = "m", kind = #qnt.observer<moving_average_minmax>, averaging_constant = 0.25 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}

// -----

// f32 pooling runs on the runtime (oneDNN) rather than scalar loops:
// shape, window, stride, padding, then kind (0 max, 1 avg) and dtype (f32).
// CHECK-DAG: memref.global "private" constant @[[$MAXP:.*]] : memref<17xi64> = dense<[1, 5, 5, 2, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0]>
// CHECK-DAG: memref.global "private" constant @[[$AVGP:.*]] : memref<17xi64> = dense<[1, 5, 5, 2, 2, 2, 3, 3, 2, 2, 0, 0, 0, 0, 1, 0, 0]>
// CHECK-LABEL: func.func @pools
// CHECK: memref.get_global @[[$MAXP]]
// CHECK: call @qnt_rt_pool2d
// CHECK: memref.get_global @[[$AVGP]]
// CHECK: call @qnt_rt_pool2d
// CHECK-NOT: tosa.
func.func @pools(%x: tensor<1x5x5x2xf32>) -> (tensor<1x3x3x2xf32>, tensor<1x2x2x2xf32>) {
  %m = tosa.max_pool2d %x {kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1, 1, 1>} : (tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %a = tosa.avg_pool2d %x, %zp, %zp {acc_type = f32, kernel = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>} : (tensor<1x5x5x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x2x2x2xf32>
  return %m, %a : tensor<1x3x3x2xf32>, tensor<1x2x2x2xf32>
}

// -----

// A matmul of two activations (attention scores) runs on the runtime's
// batched matmul: params batch, m, k, n, dtype (f32), b_transposed, then the
// quantized ranges (0 for f32). A constant-weight matmul is qnt-fuse's (a
// linear); a dynamic shape stays TOSA.
// CHECK-DAG: memref.global "private" constant @[[$BMM:.*]] : memref<15xi64> = dense<[12, 16, 8, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]>
// CHECK-LABEL: func.func @batch_matmul
// CHECK: memref.get_global @[[$BMM]]
// CHECK: call @qnt_rt_batch_matmul
// CHECK: tosa.matmul %arg2, %arg3, %{{.*}}, %{{.*}} : (tensor<?x16x8xf32>
func.func @batch_matmul(%q: tensor<12x16x8xf32>, %k: tensor<12x8x16xf32>, %dq: tensor<?x16x8xf32>, %dk: tensor<?x8x16xf32>) -> (tensor<12x16x16xf32>, tensor<?x16x16xf32>) {
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %s = tosa.matmul %q, %k, %zp, %zp : (tensor<12x16x8xf32>, tensor<12x8x16xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<12x16x16xf32>
  %t = tosa.matmul %dq, %dk, %zp, %zp : (tensor<?x16x8xf32>, tensor<?x8x16xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<?x16x16xf32>
  return %s, %t : tensor<12x16x16xf32>, tensor<?x16x16xf32>
}

// -----

!a = !quant.uniform<u8<0:127>:f32, 0.5:60>
!b = !quant.uniform<u8:f32, 0.25:130>
!o = !quant.uniform<u8:f32, 2.0:7>

// qnt.batch_matmul: float (transpose_b: b [batch, n, k]) and quantized,
// with the operands' ranges and zero points and M = 0.5 * 0.25 / 2.
// CHECK-DAG: memref.global "private" constant @[[$FBMM:.*]] : memref<15xi64> = dense<[2, 3, 4, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]>
// CHECK-DAG: memref.global "private" constant @[[$QBMM:.*]] : memref<15xi64> = dense<[2, 3, 4, 5, 1, 0, 60, 0, 127, 130, 0, 255, 7, 0, 255]>
// CHECK-DAG: memref.global "private" constant @[[$M:.*]] : memref<1xf32> = dense<6.250000e-02>
// CHECK-LABEL: func.func @qnt_batch_matmul
// CHECK: memref.get_global @[[$FBMM]]
// CHECK: call @qnt_rt_batch_matmul
// CHECK: memref.get_global @[[$QBMM]]
// CHECK: memref.get_global @[[$M]]
// CHECK: call @qnt_rt_batch_matmul
// CHECK-NOT: qnt.
func.func @qnt_batch_matmul(%q: tensor<2x3x4xf32>, %k: tensor<2x5x4xf32>, %qa: tensor<2x3x4x!a>, %qb: tensor<2x4x5x!b>) -> (tensor<2x3x5xf32>, tensor<2x3x5x!o>) {
  %s = qnt.batch_matmul %q, %k {transpose_b} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
  %t = qnt.batch_matmul %qa, %qb : (tensor<2x3x4x!a>, tensor<2x4x5x!b>) -> tensor<2x3x5x!o>
  return %s, %t : tensor<2x3x5xf32>, tensor<2x3x5x!o>
}

// -----

!q = !quant.uniform<u8:f32, 0.1:10>

// Quantized max pooling runs on the u8 storage (dtype 1); a quantized
// reshape becomes the same reshape of the storage type.
// CHECK-DAG: memref.global "private" constant @[[$QPOOL:.*]] : memref<17xi64> = dense<[1, 4, 4, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1, 0]>
// CHECK-LABEL: func.func @quantized_pool
// CHECK: memref.get_global @[[$QPOOL]]
// CHECK: call @qnt_rt_pool2d
// CHECK: %[[T:.*]] = bufferization.to_tensor %{{.*}} : memref<1x2x2x2xi8> to tensor<1x2x2x2xi8>
// CHECK: tosa.reshape %[[T]], %{{.*}} : (tensor<1x2x2x2xi8>, !tosa.shape<2>) -> tensor<1x8xi8>
func.func @quantized_pool(%q: tensor<1x4x4x2x!q>) -> tensor<1x8x!q> {
  %p = tosa.max_pool2d %q {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>} : (tensor<1x4x4x2x!q>) -> tensor<1x2x2x2x!q>
  %s = tosa.const_shape {values = dense<[1, 8]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %r = tosa.reshape %p, %s : (tensor<1x2x2x2x!q>, !tosa.shape<2>) -> tensor<1x8x!q>
  return %r : tensor<1x8x!q>
}

// -----

!wq = !quant.uniform<i8:f32:0, {0.01, 0.02}>

// A dynamically quantized linear layer calls qnt_rt_linear_dynamic: f32 in
// and out, s8 weights, f32 bias, relu, the input's u8 range [0, 127], the
// weight scales in fparams and PyTorch's per-call parameters (the last
// field, dynamic_qparams 0).
// CHECK-DAG: memref.global "private" constant @[[$DP:.*]] : memref<17xi64> = dense<[1, 2, 2, 0, 2, 0, 1, 1, 0, 0, 127, 0, 0, 0, 2, 0, 0]>
// CHECK-DAG: memref.global "private" constant @[[$DF:.*]] : memref<4xf32> = dense<[0.000000e+00, 0x7F800000, 0.00999999977, 2.000000e-02]>
// CHECK-LABEL: func.func @dynamic_linear
// CHECK: memref.get_global @[[$DP]]
// CHECK: memref.get_global @[[$DF]]
// CHECK: call @qnt_rt_linear_dynamic
func.func @dynamic_linear(%x: tensor<1x2xf32>, %w: tensor<2x2x!wq>, %b: tensor<2xf32>) -> tensor<1x2xf32> {
  %y = qnt.linear %x, %w, %b {activation = #qnt.activation<relu>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2x!wq>, tensor<2xf32>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

// -----

!wq = !quant.uniform<i8:f32, 0.01>

// Under ONNX Runtime's numerics the input is quantized per call as
// DynamicQuantizeLinear does (dynamic_qparams 1, the last field).
// CHECK-DAG: memref.global "private" constant @[[$OP:.*]] : memref<17xi64> = dense<[1, 2, 2, 0, 2, 0, 1, 0, 0, 0, 255, 0, 0, 0, 1, 0, 1]>
// CHECK-LABEL: func.func @dynamic_linear_onnxruntime
// CHECK: memref.get_global @[[$OP]]
// CHECK: call @qnt_rt_linear_dynamic
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @dynamic_linear_onnxruntime(%x: tensor<1x2xf32>, %w: tensor<2x2x!wq>, %b: tensor<2xf32>) -> tensor<1x2xf32> {
    %y = qnt.linear %x, %w, %b {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2x!wq>, tensor<2xf32>) -> tensor<1x2xf32>
    return %y : tensor<1x2xf32>
  }
}

// -----

!wq = !quant.uniform<i8:f32:0, {0.01, 0.02}>

// A dynamically quantized conv2d (ONNX Runtime's ConvInteger) calls
// qnt_rt_conv2d_dynamic: the conv2d shape fields, f32 in and out, s8
// weights, f32 bias, relu6 as a clamp to fparams[0..1], [0, 255], the
// weight scales in fparams, DynamicQuantizeLinear's parameters (the last
// field, dynamic_qparams 1).
// CHECK-DAG: memref.global "private" constant @[[$CP:.*]] : memref<32xi64> = dense<[1, 4, 4, 1, 2, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 2, 0, 1, 2, 0, 0, 255, 0, 0, 0, 2, 0, 1]>
// CHECK-DAG: memref.global "private" constant @[[$CF:.*]] : memref<4xf32> = dense<[0.000000e+00, 6.000000e+00, 0.00999999977, 2.000000e-02]>
// CHECK-LABEL: func.func @dynamic_conv2d_onnxruntime
// CHECK: memref.get_global @[[$CP]]
// CHECK: memref.get_global @[[$CF]]
// CHECK: call @qnt_rt_conv2d_dynamic
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @dynamic_conv2d_onnxruntime(%x: tensor<1x4x4x1xf32>, %w: tensor<2x3x3x1x!wq>, %b: tensor<2xf32>) -> tensor<1x2x2x2xf32> {
    %y = qnt.conv2d %x, %w, %b {activation = #qnt.activation<relu6>, dilation = array<i64: 1, 1>, pad = array<i64: 1, 1, 1, 1>, stride = array<i64: 2, 2>, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : (tensor<1x4x4x1xf32>, tensor<2x3x3x1x!wq>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
    return %y : tensor<1x2x2x2xf32>
  }
}

// -----

!wq = !quant.uniform<i8:f32, 0.01>

// DynamicQuantizeLinear has no reduced range.
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @dynamic_linear_onnxruntime_reduce_range(%x: tensor<1x2xf32>, %w: tensor<2x2x!wq>) -> tensor<1x2xf32> {
    // expected-error @+2 {{ONNX Runtime's DynamicQuantizeLinear (qnt.numerics = "onnxruntime") quantizes to u8 [0, 255], not dynamic_qspec's [0, 127]}}
    // expected-error @+1 {{failed to legalize operation 'qnt.linear'}}
    %y = qnt.linear %x, %w {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : (tensor<1x2xf32>, tensor<2x2x!wq>) -> tensor<1x2xf32>
    return %y : tensor<1x2xf32>
  }
}

// -----

!a = !quant.uniform<u8:f32, 0.5:3>

// The runtime's add is qnt's arithmetic: under ONNX Runtime's numerics a
// quantized add must be lowered by --qnt-lower-to-linalg first.
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @runtime_add(%a: tensor<1x4x!a>) -> tensor<1x4x!a> {
    // expected-error @+2 {{the runtime's quantized add computes qnt's arithmetic}}
    // expected-error @+1 {{failed to legalize operation 'qnt.add'}}
    %s = qnt.add %a, %a : (tensor<1x4x!a>, tensor<1x4x!a>) -> tensor<1x4x!a>
    return %s : tensor<1x4x!a>
  }
}
