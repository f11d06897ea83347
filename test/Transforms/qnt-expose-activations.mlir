// RUN: quant-opt %s --qnt-expose-activations --split-input-file | FileCheck %s

!q = !quant.uniform<u8:f32, 0.1:10>
!w = !quant.uniform<i8:f32, 0.01>

// Float and quantized compute results become extra, named results; the
// quantized one is dequantized first. Names are location names, else op<N>
// (the N-th compute op),
// made unique with #2.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<1x2xf32>, tensor<1x2xf32> {qnt.name = "fc"}, tensor<1x2xf32> {qnt.name = "fc#2"}, tensor<1x2xf32> {qnt.name = "op2"})
// CHECK: %[[A:.*]] = qnt.linear
// CHECK: %[[B:.*]] = qnt.linear
// CHECK: %[[C:.*]] = qnt.add
// CHECK: %[[R:.*]] = quant.dcast %[[C]]
// CHECK: %[[D:.*]] = quant.dcast %[[C]]
// CHECK: return %[[R]], %[[A]], %[[B]], %[[D]]
func.func @main(%x: tensor<1x2xf32>, %xq: tensor<1x2x!q>, %wq: tensor<2x2x!w>) -> tensor<1x2xf32> {
  %w = arith.constant dense<1.0> : tensor<2x2xf32>
  %a = qnt.linear %x, %w : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("fc")
  %b = qnt.linear %a, %w : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32> loc("fc")
  %c = qnt.add %xq, %xq : (tensor<1x2x!q>, tensor<1x2x!q>) -> tensor<1x2x!q>
  %r = quant.dcast %c : tensor<1x2x!q> to tensor<1x2xf32>
  return %r : tensor<1x2xf32>
}

// -----

// Negative: nothing to expose, the signature stays.
// CHECK-LABEL: func.func @none
// CHECK-SAME: (%{{.*}}: tensor<4xf32>) -> tensor<4xf32>
func.func @none(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
