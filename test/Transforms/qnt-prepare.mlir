// RUN: quant-opt %s --qnt-prepare --split-input-file | FileCheck %s --check-prefix=X86
// RUN: quant-opt %s --qnt-prepare="qconfig=qnnpack" --split-input-file | FileCheck %s --check-prefix=QNNPACK
// RUN: quant-opt %s --qnt-prepare="qconfig=onednn" --split-input-file | FileCheck %s --check-prefix=ONEDNN
// RUN: quant-opt %s --qnt-prepare="qconfig=xnnpack activation-observer=entropy" --split-input-file | FileCheck %s --check-prefix=XNNPACK
// RUN: quant-opt %s --qnt-prepare="exclude=fc override=qnt.add=qnnpack activation-observer=minmax" --split-input-file | FileCheck %s --check-prefix=SELECT
// RUN: quant-opt %s --qnt-prepare="mode=dynamic" --split-input-file | FileCheck %s --check-prefix=DYNAMIC
// RUN: quant-opt %s --qnt-prepare="mode=dynamic dynamic-per-channel dynamic-all-linears" --split-input-file | FileCheck %s --check-prefix=DYNALL
// RUN: quant-opt %s --qnt-prepare="float-in-pytorch" --split-input-file | FileCheck %s --check-prefix=FXFLOAT
// RUN: not quant-opt %s --qnt-prepare="mode=eager" --split-input-file 2>&1 | FileCheck %s --check-prefix=BADMODE
// RUN: not quant-opt %s --qnt-prepare="qconfig=tpu" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not quant-opt %s --qnt-prepare="override=fc" --split-input-file 2>&1 | FileCheck %s --check-prefix=BADOVERRIDE
// RUN: not quant-opt %s --qnt-prepare="activation-observer=per_channel_minmax" --split-input-file 2>&1 | FileCheck %s --check-prefix=BADOBS
// Preparing twice would observe every tensor twice.
// RUN: quant-opt %s --qnt-prepare --split-input-file -o %t.mlir
// RUN: not quant-opt %t.mlir --qnt-prepare --split-input-file 2>&1 | FileCheck %s --check-prefix=TWICE

// BADMODE: error: unknown mode 'eager'; expected static or dynamic
// TWICE: error: the function is already prepared: --qnt-prepare found this qnt.observe
// BAD: error: unknown qconfig 'tpu'; expected one of: x86, fbgemm, onednn, qnnpack, xnnpack
// BADOVERRIDE: error: bad override 'fc': expected SELECTOR=QCONFIG with QCONFIG one of: x86, fbgemm, onednn, qnnpack, xnnpack
// BADOBS: error: activation-observer 'per_channel_minmax' is not a per-tensor observer kind; expected one of: minmax, moving_average_minmax, histogram, percentile, entropy

// Inside the stubs: the input, the weight and the output of the conv are
// observed; ids come from the location names.
// X86-LABEL: func.func @conv
// X86: %[[S:.*]] = qnt.quant_stub
// X86: %[[IN:.*]] = qnt.observe %[[S]] {id = "conv1:in", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>}
// X86: %[[W:.*]] = qnt.observe %{{.*}} {id = "conv1:w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x1x1x1xf32>
// X86: %[[C:.*]] = qnt.conv2d %[[IN]], %[[W]]
// X86: %[[OUT:.*]] = qnt.observe %[[C]] {id = "conv1:out", kind = #qnt.observer<histogram>
// X86: qnt.dequant_stub %[[OUT]]
// QNNPACK-LABEL: func.func @conv
// QNNPACK: qnt.observe %{{.*}} {id = "conv1:in", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
// QNNPACK: qnt.observe %{{.*}} {id = "conv1:w", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>}
// ONEDNN-LABEL: func.func @conv
// ONEDNN: qnt.observe %{{.*}} {id = "conv1:in", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
// ONEDNN: qnt.observe %{{.*}} {id = "conv1:w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>}
// XNNPACK-LABEL: func.func @conv
// XNNPACK: qnt.observe %{{.*}} {id = "conv1:in", kind = #qnt.observer<entropy>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = affine>}
// XNNPACK: qnt.observe %{{.*}} {id = "conv1:w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -127, quant_max = 127, scheme = symmetric, axis = 0>}
func.func @conv(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
  %w = arith.constant dense<1.0> : tensor<2x1x1x1xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %s = qnt.quant_stub %x : tensor<1x4x4x1xf32>
  %c = qnt.conv2d %s, %w, %b {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32> loc("conv1")
  %d = qnt.dequant_stub %c : tensor<1x4x4x2xf32>
  return %d : tensor<1x4x4x2xf32>
}

// -----

// After the dequant stub nothing is quantized (the shared weight stays
// float there); a value feeding two quantized ops is observed once; ops
// without names get numbered ids.
// X86-LABEL: func.func @region
// X86: qnt.observe %{{.*}} {id = "op0:in"
// X86: qnt.observe %[[CST:.*]] {id = "op0:w"
// X86: %[[A:.*]] = qnt.linear
// X86: %[[AO:.*]] = qnt.observe %[[A]] {id = "op0:out"
// X86: qnt.observe %{{.*}} {id = "op1:w"
// X86: %[[B:.*]] = qnt.linear %[[AO]]
// X86: %[[BO:.*]] = qnt.observe %[[B]] {id = "op1:out"
// X86: qnt.add %[[AO]], %[[BO]]
// X86: qnt.observe %{{.*}} {id = "op2:out"
// X86: %[[D:.*]] = qnt.dequant_stub
// X86-NOT: qnt.observe
// X86: qnt.linear %[[D]], %[[CST]] :
// X86-NOT: qnt.observe
// X86: return
func.func @region(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %w = arith.constant dense<1.0> : tensor<4x4xf32>
  %s = qnt.quant_stub %x : tensor<1x4xf32>
  %a = qnt.linear %s, %w : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  %b = qnt.linear %a, %w : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  %c = qnt.add %a, %b : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %d = qnt.dequant_stub %c : tensor<1x4xf32>
  %e = qnt.linear %d, %w : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  return %e : tensor<1x4xf32>
}

// -----

// Without stubs the whole function is quantized (FX style); repeated names
// get a suffix.
// X86-LABEL: func.func @no_stubs
// X86: qnt.observe %arg0 {id = "fc:in"
// X86: qnt.observe %{{.*}} {id = "fc:w"
// X86: qnt.observe %{{.*}} {id = "fc:out"
// X86: qnt.observe %{{.*}} {id = "fc:w#2"
// X86: qnt.observe %{{.*}} {id = "fc:out#2"
// Selectors: `exclude=fc` keeps both "fc" linears in float (the add's
// observers are still there); `override=qnt.add=qnnpack` gives the add the
// qnnpack preset (u8 [0, 255]).
// SELECT-LABEL: func.func @no_stubs
// SELECT-NOT: id = "fc:
// SELECT: qnt.linear
// SELECT-NOT: id = "fc:
// SELECT: qnt.observe %{{.*}} {id = "op0:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
// SELECT: qnt.add
// SELECT: qnt.observe %{{.*}} {id = "op0:out", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
func.func @no_stubs(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %w = arith.constant dense<1.0> : tensor<4x4xf32>
  %w2 = arith.constant dense<2.0> : tensor<4x4xf32>
  %a = qnt.linear %x, %w : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32> loc("fc")
  %b = qnt.linear %a, %w2 : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32> loc("fc")
  %c = qnt.add %b, %b : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return %c : tensor<1x4xf32>
}

// -----

// Same-scale ops (max pool, reshape) between two quantized ops share the
// producer's observer, as PyTorch shares their quantization parameters:
// no observer for the linear layer's input.
// X86-LABEL: func.func @same_scale
// X86: %[[O:.*]] = qnt.observe %{{.*}} {id = "conv:out"
// X86: %[[P:.*]] = tosa.max_pool2d %[[O]]
// X86: %[[R:.*]] = tosa.reshape %[[P]]
// X86-NOT: id = "fc:in"
// X86: qnt.linear %[[R]]
func.func @same_scale(%x: tensor<1x4x4x1xf32>) -> tensor<1x2xf32> {
  %w = arith.constant dense<1.0> : tensor<2x1x1x1xf32>
  %c = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>) -> tensor<1x4x4x2xf32> loc("conv")
  %p = tosa.max_pool2d %c {kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32>
  %s = tosa.const_shape {values = dense<[1, 8]> : tensor<2xindex>} : () -> !tosa.shape<2>
  %r = tosa.reshape %p, %s : (tensor<1x2x2x2xf32>, !tosa.shape<2>) -> tensor<1x8xf32>
  %fw = arith.constant dense<1.0> : tensor<2x8xf32>
  %y = qnt.linear %r, %fw : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32> loc("fc")
  return %y : tensor<1x2xf32>
}

// -----

// Dynamic mode: linear layers only, their weights per tensor, no activation
// observers; the input's run-time range goes into dynamic_qspec.
// DYNAMIC-LABEL: func.func @dynamic
// DYNAMIC: qnt.conv2d
// DYNAMIC-NOT: qnt.observe %{{.*}} {id = "conv
// DYNAMIC: %[[W:.*]] = qnt.observe %{{.*}} {id = "fc:w", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>}
// DYNAMIC: qnt.linear %{{.*}}, %[[W]] {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>}
// DYNAMIC-NOT: qnt.observe
func.func @dynamic(%x: tensor<1x4x4x1xf32>, %v: tensor<1x8xf32>) -> (tensor<1x4x4x2xf32>, tensor<1x2xf32>) {
  %w = arith.constant dense<1.0> : tensor<2x1x1x1xf32>
  %c = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>) -> tensor<1x4x4x2xf32> loc("conv")
  %fw = arith.constant dense<1.0> : tensor<2x8xf32>
  %y = qnt.linear %v, %fw : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32> loc("fc")
  return %c, %y : tensor<1x4x4x2xf32>, tensor<1x2xf32>
}


// -----

// A conv2d whose weight has a fake quant (ONNX Runtime's ConvInteger,
// imported) is quantized dynamically in dynamic mode and keeps the fake
// quant's parameters (no observer); under ONNX Runtime's numerics its input
// range is DynamicQuantizeLinear's [0, 255] whatever the preset.
// DYNAMIC-LABEL: func.func @dynamic_conv_file_weight
// DYNAMIC: %[[W:.*]] = qnt.fake_quant
// DYNAMIC-NOT: qnt.observe
// DYNAMIC: qnt.conv2d %arg0, %[[W]] {dilation = {{.*}}, dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @dynamic_conv_file_weight(%x: tensor<1x4x4x1xf32>) -> tensor<1x4x4x2xf32> {
    %fw = arith.constant dense<[[[[0.5]]], [[[-0.25]]]]> : tensor<2x1x1x1xf32>
    %w = qnt.fake_quant %fw {scale = array<f32: 0.25>, zero_point = array<i64: 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>} : tensor<2x1x1x1xf32>
    %c = qnt.conv2d %x, %w {dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>) -> tensor<1x4x4x2xf32> loc("conv")
    return %c : tensor<1x4x4x2xf32>
  }
}

// -----

// A linear marked qnt.float_in_pytorch (an attention projection) stays float
// in dynamic mode, as quantize_dynamic leaves it; dynamic-all-linears
// quantizes it too, dynamic-per-channel gives per-channel weights.
// DYNAMIC-LABEL: func.func @dynamic_marked
// DYNAMIC-NOT: qnt.observe
// DYNAMIC: qnt.linear %arg0, %{{.*}} {qnt.float_in_pytorch}
// DYNAMIC-NOT: dynamic_qspec
// DYNAMIC: %[[W:.*]] = qnt.observe %{{.*}} {id = "linear1:w"
// DYNAMIC: qnt.linear %{{.*}}, %[[W]] {dynamic_qspec
// DYNALL-LABEL: func.func @dynamic_marked
// DYNALL: %[[P:.*]] = qnt.observe %{{.*}} {id = "attn.in_proj:w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>}
// DYNALL: qnt.linear %arg0, %[[P]] {dynamic_qspec = {{.*}}, qnt.float_in_pytorch}
// DYNALL: qnt.observe %{{.*}} {id = "linear1:w", kind = #qnt.observer<per_channel_minmax>
func.func @dynamic_marked(%v: tensor<1x8xf32>) -> tensor<1x2xf32> {
  %pw = arith.constant dense<1.0> : tensor<8x8xf32>
  %p = qnt.linear %v, %pw {qnt.float_in_pytorch} : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32> loc("attn.in_proj")
  %fw = arith.constant dense<1.0> : tensor<2x8xf32>
  %y = qnt.linear %p, %fw : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32> loc("linear1")
  return %y : tensor<1x2xf32>
}

// -----

// ONNX Runtime's dynamic form, imported: the weight's fake quant (the
// file's integers and scale) is kept, no observer; under its numerics the
// input's range is DynamicQuantizeLinear's u8 [0, 255] whatever the qconfig.
// DYNAMIC-LABEL: func.func @dynamic_onnxruntime
// DYNAMIC-NOT: qnt.observe
// DYNAMIC: %[[W:.*]] = qnt.fake_quant
// DYNAMIC-NOT: qnt.observe
// DYNAMIC: qnt.linear %arg0, %[[W]] {dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
module attributes {qnt.numerics = "onnxruntime"} {
  func.func @dynamic_onnxruntime(%v: tensor<1x8xf32>) -> tensor<1x2xf32> {
    %fw = arith.constant dense<0.5> : tensor<2x8xf32>
    %w = qnt.fake_quant %fw {scale = array<f32: 0.25>, zero_point = array<i64: 0>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric>} : tensor<2x8xf32>
    %y = qnt.linear %v, %w : (tensor<1x8xf32>, tensor<2x8xf32>) -> tensor<1x2xf32> loc("fc")
    return %y : tensor<1x2xf32>
  }
}

// -----

// A float composite (a layer norm's ops, marked qnt.float_composite) is one
// float op between quantized tensors: its input and result are observed
// where the linears around it take them, none of its inner values (the
// rsqrt(var + eps) chain would otherwise be a table of the 8-bit variance,
// the products qnt.mul ops). Static mode quantizes a linear marked
// qnt.float_in_pytorch unless float-in-pytorch=true.
// X86-LABEL: func.func @float_composite
// X86: qnt.observe %arg0 {id = "attn.out_proj:in"
// X86: qnt.observe %{{.*}} {id = "attn.out_proj:w"
// X86: %[[P:.*]] = qnt.linear
// X86: %[[PO:.*]] = qnt.observe %[[P]] {id = "attn.out_proj:out"
// X86-NOT: = qnt.observe
// X86: tosa.reduce_sum %[[PO]]
// X86-NOT: = qnt.observe
// X86: %[[Y:.*]] = tosa.add %{{.*}}, %{{.*}} {qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>, tensor<1x8xf32>)
// X86-NEXT: qnt.observe %[[Y]] {id = "linear1:in"
// FXFLOAT-LABEL: func.func @float_composite
// FXFLOAT-NOT: attn.out_proj
// FXFLOAT: qnt.observe %{{.*}} {id = "linear1:in"
func.func @float_composite(%v: tensor<4x8xf32>) -> tensor<4x2xf32> {
  %pw = arith.constant dense<0.5> : tensor<8x8xf32>
  %p = qnt.linear %v, %pw {qnt.float_in_pytorch} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc("attn.out_proj")
  %shift = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %n = "tosa.const"() {values = dense<0.125> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %eps = "tosa.const"() {values = dense<1.0e-05> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %gamma = "tosa.const"() {values = dense<2.0> : tensor<1x8xf32>} : () -> tensor<1x8xf32>
  %beta = "tosa.const"() {values = dense<0.5> : tensor<1x8xf32>} : () -> tensor<1x8xf32>
  %s = tosa.reduce_sum %p {axis = 1 : i32, qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>) -> tensor<4x1xf32> loc("norm")
  %mean = tosa.mul %s, %n, %shift {qnt.float_composite = "layer_norm"} : (tensor<4x1xf32>, tensor<1x1xf32>, tensor<1xi8>) -> tensor<4x1xf32> loc("norm")
  %c = tosa.sub %p, %mean {qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32> loc("norm")
  %sq = tosa.mul %c, %c, %shift {qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<1xi8>) -> tensor<4x8xf32> loc("norm")
  %vs = tosa.reduce_sum %sq {axis = 1 : i32, qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>) -> tensor<4x1xf32> loc("norm")
  %var = tosa.mul %vs, %n, %shift {qnt.float_composite = "layer_norm"} : (tensor<4x1xf32>, tensor<1x1xf32>, tensor<1xi8>) -> tensor<4x1xf32> loc("norm")
  %ve = tosa.add %var, %eps {qnt.float_composite = "layer_norm"} : (tensor<4x1xf32>, tensor<1x1xf32>) -> tensor<4x1xf32> loc("norm")
  %r = tosa.rsqrt %ve {qnt.float_composite = "layer_norm"} : (tensor<4x1xf32>) -> tensor<4x1xf32> loc("norm")
  %nrm = tosa.mul %c, %r, %shift {qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>, tensor<4x1xf32>, tensor<1xi8>) -> tensor<4x8xf32> loc("norm")
  %g = tosa.mul %nrm, %gamma, %shift {qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>, tensor<1x8xf32>, tensor<1xi8>) -> tensor<4x8xf32> loc("norm")
  %y = tosa.add %g, %beta {qnt.float_composite = "layer_norm"} : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32> loc("norm")
  %fw = arith.constant dense<1.0> : tensor<2x8xf32>
  %o = qnt.linear %y, %fw : (tensor<4x8xf32>, tensor<2x8xf32>) -> tensor<4x2xf32> loc("linear1")
  return %o : tensor<4x2xf32>
}
