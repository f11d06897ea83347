// The kernel library of each call site is the last field of its parameter
// array (qnt_rt_backend: 0 oneDNN, 1 XNNPACK). Only quantized kernels go to
// XNNPACK; auto sends quantized adds there and keeps the rest on oneDNN.
// RUN: quant-opt %s --qnt-lower-to-runtime | FileCheck %s --check-prefix=ONEDNN
// RUN: quant-opt %s --qnt-lower-to-runtime="backend=onednn" | FileCheck %s --check-prefix=ONEDNN
// RUN: quant-opt %s --qnt-lower-to-runtime="backend=xnnpack" | FileCheck %s --check-prefix=XNNPACK
// RUN: quant-opt %s --qnt-lower-to-runtime="backend=auto" | FileCheck %s --check-prefix=AUTO
// RUN: not quant-opt %s --qnt-lower-to-runtime="backend=XNNPACK" 2>&1 | FileCheck %s --check-prefix=BAD

// The quantized conv (relu6 clamp [5, 29]), the float conv, the quantized
// add (relu) and the quantized max pool, in that order.
// ONEDNN-DAG: memref<32xi64> = dense<[1, 4, 4, 3, 2, 3, 3, 2, 2, 2, 2, 1, 0, 1, 0, 1, 1, 1, 1, 2, 1, 2, 0, 3, 0, 127, 5, 5, 29, 2, 0, 0]>
// ONEDNN-DAG: memref<32xi64> = dense<[1, 4, 4, 3, 2, 1, 1, 4, 4, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]>
// ONEDNN-DAG: memref<9xi64> = dense<[8, 1, 1, 5, 5, 5, 0, 127, 0]>
// ONEDNN-DAG: memref<17xi64> = dense<[1, 2, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1, 0]>

// XNNPACK-DAG: memref<32xi64> = dense<[1, 4, 4, 3, 2, 3, 3, 2, 2, 2, 2, 1, 0, 1, 0, 1, 1, 1, 1, 2, 1, 2, 0, 3, 0, 127, 5, 5, 29, 2, 1, 0]>
// XNNPACK-DAG: memref<32xi64> = dense<[1, 4, 4, 3, 2, 1, 1, 4, 4, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]>
// XNNPACK-DAG: memref<9xi64> = dense<[8, 1, 1, 5, 5, 5, 0, 127, 1]>
// XNNPACK-DAG: memref<17xi64> = dense<[1, 2, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1, 1]>

// AUTO-DAG: memref<32xi64> = dense<[1, 4, 4, 3, 2, 3, 3, 2, 2, 2, 2, 1, 0, 1, 0, 1, 1, 1, 1, 2, 1, 2, 0, 3, 0, 127, 5, 5, 29, 2, 0, 0]>
// AUTO-DAG: memref<32xi64> = dense<[1, 4, 4, 3, 2, 1, 1, 4, 4, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]>
// AUTO-DAG: memref<9xi64> = dense<[8, 1, 1, 5, 5, 5, 0, 127, 1]>
// AUTO-DAG: memref<17xi64> = dense<[1, 2, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1, 0]>

// BAD: error: unknown backend 'XNNPACK'; expected one of: onednn, xnnpack, auto

!qin = !quant.uniform<u8<0:127>:f32, 0.5:3>
!qout = !quant.uniform<u8<0:127>:f32, 0.25:5>
!w = !quant.uniform<i8:f32:0, {0.125, 0.0625}>
func.func @backends(%x: tensor<1x4x4x3xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>) {
  %xq = quant.qcast %x : tensor<1x4x4x3xf32> to tensor<1x4x4x3x!qin>
  %wi = arith.constant dense<1> : tensor<2x3x3x3xi8>
  %w = quant.scast %wi : tensor<2x3x3x3xi8> to tensor<2x3x3x3x!w>
  %b = arith.constant dense<[7, -7]> : tensor<2xi32>
  %y = qnt.conv2d %xq, %w, %b {activation = #qnt.activation<relu6>, dilation = array<i64: 1, 1>, pad = array<i64: 1, 0, 1, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x3x!qin>, tensor<2x3x3x3x!w>, tensor<2xi32>) -> tensor<1x2x2x2x!qout>
  %wf = arith.constant dense<1.0> : tensor<2x1x1x3xf32>
  %f = qnt.conv2d %x, %wf {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x3xf32>, tensor<2x1x1x3xf32>) -> tensor<1x4x4x2xf32>
  %s = qnt.add %y, %y {activation = #qnt.activation<relu>} : (tensor<1x2x2x2x!qout>, tensor<1x2x2x2x!qout>) -> tensor<1x2x2x2x!qout>
  %p = tosa.max_pool2d %s {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>} : (tensor<1x2x2x2x!qout>) -> tensor<1x1x1x2x!qout>
  %r = quant.dcast %s : tensor<1x2x2x2x!qout> to tensor<1x2x2x2xf32>
  %rp = quant.dcast %p : tensor<1x1x1x2x!qout> to tensor<1x1x1x2xf32>
  return %r, %f, %rp : tensor<1x2x2x2xf32>, tensor<1x4x4x2xf32>, tensor<1x1x1x2xf32>
}
