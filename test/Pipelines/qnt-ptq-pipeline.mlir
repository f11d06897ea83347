// RUN: quant-opt %s --qnt-ptq-pipeline | FileCheck %s --check-prefix=PREPARE
// RUN: quant-opt %s --qnt-ptq-pipeline="qconfig=x86 activation-observer=minmax stats=%S/Inputs/stats.json" | FileCheck %s --check-prefix=PTQ
// RUN: quant-opt %s --qnt-ptq-pipeline="qconfig=x86 activation-observer=minmax stats=%S/Inputs/stats.json" | quant-opt --qnt-lower-pipeline | FileCheck %s --check-prefix=LLVM

// Without statistics the pipeline stops at the IR to calibrate.
// PREPARE-LABEL: func.func @main
// PREPARE: qnt.observe %{{.*}} {id = "conv:in"
// PREPARE: qnt.observe %{{.*}} {id = "conv:w"
// PREPARE: qnt.conv2d {{.*}}activation = #qnt.activation<relu>
// PREPARE: qnt.observe %{{.*}} {id = "conv:out"

// With them: fused, quantized with conv:in [-1, 1] -> scale 2/127, zero
// point 64 and conv:out [0, 4] -> scale 4/127, zero point 0.
// PTQ-LABEL: func.func @main
// PTQ: %[[X:.*]] = quant.qcast %arg0 : tensor<1x4x4x1xf32> to tensor<1x4x4x1x!quant.uniform<u8:f32, 0.015748031437397003:64>>
// PTQ: %[[Y:.*]] = qnt.conv2d %[[X]], %{{.*}}, %{{.*}} {activation = #qnt.activation<relu>{{.*}}-> tensor<1x4x4x2x!quant.uniform<u8:f32, 0.031496062874794006>>
// PTQ: %[[R:.*]] = quant.dcast %[[Y]]
// PTQ: return %[[R]]

// Per-tensor quantize and dequantize are generated code (the runtime's
// formulas; they fuse with float neighbours), the conv a kernel call.
// LLVM: llvm.func @main
// LLVM-NOT: llvm.call @qnt_rt_quantize
// LLVM: llvm.fmul
// LLVM: llvm.call @qnt_rt_conv2d
// LLVM-NOT: llvm.call @qnt_rt_dequantize
// LLVM: llvm.sitofp
func.func @main(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %s = qnt.quant_stub %x : tensor<1x4x4x1xf32>
  %w = "tosa.const"() {values = dense<[[[[0.5]]], [[[-0.25]]]]> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %b = "tosa.const"() {values = dense<0.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %c = tosa.conv2d %s, %w, %b, %zp, %zp {acc_type = f32, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4x2xf32> loc("conv")
  %r = tosa.clamp %c {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %d = qnt.dequant_stub %r : tensor<1x4x4x2xf32>
  return %d : tensor<1x4x4x2xf32>
}
