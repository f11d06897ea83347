// RUN: quant-opt %s --qnt-prepare --split-input-file | FileCheck %s --check-prefix=X86
// RUN: quant-opt %s --qnt-prepare="qconfig=xnnpack" --split-input-file | FileCheck %s --check-prefix=S8
// RUN: quant-opt %s --qnt-prepare="float-functions=silu,gelu" --split-input-file | FileCheck %s --check-prefix=PT
// RUN: not quant-opt %s --qnt-prepare="float-functions=relu" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: quant-opt %s --qnt-prepare="cat-observer=own" --split-input-file | FileCheck %s --check-prefix=OWN
// RUN: not quant-opt %s --qnt-prepare="cat-observer=fx" 2>&1 | FileCheck %s --check-prefix=BADCAT
// BADCAT: unknown cat-observer 'fx'; expected shared or own
// --qnt-prepare on the ops without weights, with PyTorch 1.13 FX's rules
// (docs/numerics.md, "Ops without weights").

// BAD: unknown float-functions entry 'relu'; expected silu or gelu

// Sigmoid: fixed parameters (1/256, 0); s8: (1/256, -128). Its input is
// observed as usual.
// X86-LABEL: func.func @sigmoid
// X86: %[[I:.*]] = qnt.observe %arg0 {id = "sig:in", kind = #qnt.observer<histogram>
// X86: %[[S:.*]] = tosa.sigmoid %[[I]]
// X86: qnt.observe %[[S]] {fixed_scale = 3.906250e-03 : f64, fixed_zero_point = 0 : i64, id = "sig:out", kind = #qnt.observer<fixed_qparams>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
// S8-LABEL: func.func @sigmoid
// S8: fixed_scale = 3.906250e-03 : f64, fixed_zero_point = -128 : i64, id = "sig:out", kind = #qnt.observer<fixed_qparams>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127
func.func @sigmoid(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %y = tosa.sigmoid %x : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("sig")
  return %y : tensor<1x4xf32>
}

// -----

// Tanh: (2/256, 128); s8: (2/256, 0).
// X86-LABEL: func.func @tanh
// X86: fixed_scale = 7.812500e-03 : f64, fixed_zero_point = 128 : i64, id = "t:out"
// S8-LABEL: func.func @tanh
// S8: fixed_scale = 7.812500e-03 : f64, fixed_zero_point = 0 : i64, id = "t:out"
func.func @tanh(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %y = tosa.tanh %x : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("t")
  return %y : tensor<1x4xf32>
}

// -----

// Hardsigmoid as the exporter writes it, relu6(x + 3) * (1/6): one
// function, fixed parameters, nothing observed inside.
// X86-LABEL: func.func @hardsigmoid
// X86: qnt.observe %arg0 {id = "hs:in"
// X86-NOT: = qnt.observe
// X86: %[[M:.*]] = tosa.mul
// X86-NEXT: qnt.observe %[[M]] {fixed_scale = 3.906250e-03 : f64, fixed_zero_point = 0 : i64, id = "hs:out", kind = #qnt.observer<fixed_qparams>
func.func @hardsigmoid(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %three = "tosa.const"() {values = dense<3.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %sixth = "tosa.const"() {values = dense<0.166666672> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %a = tosa.add %x, %three : (tensor<1x4xf32>, tensor<1x1xf32>) -> tensor<1x4xf32> loc("hs")
  %r = tosa.clamp %a {min_val = 0.0 : f32, max_val = 6.0 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("hs")
  %y = tosa.mul %r, %sixth, %sh : (tensor<1x4xf32>, tensor<1x1xf32>, tensor<1xi8>) -> tensor<1x4xf32> loc("hs")
  return %y : tensor<1x4xf32>
}

// -----

// Hardswish, x * relu6(x + 3) * (1/6): one function, its result observed.
// X86-LABEL: func.func @hardswish
// X86: qnt.observe %arg0 {id = "hw:in"
// X86-NOT: = qnt.observe
// X86: %[[M:.*]] = tosa.mul %{{.*}}, %{{.*}}, %{{.*}} : (tensor<1x4xf32>, tensor<1x1xf32>
// X86-NEXT: qnt.observe %[[M]] {id = "hw:out", kind = #qnt.observer<histogram>
func.func @hardswish(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %three = "tosa.const"() {values = dense<3.0> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %sixth = "tosa.const"() {values = dense<0.166666672> : tensor<1x1xf32>} : () -> tensor<1x1xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %a = tosa.add %x, %three : (tensor<1x4xf32>, tensor<1x1xf32>) -> tensor<1x4xf32> loc("hw")
  %r = tosa.clamp %a {min_val = 0.0 : f32, max_val = 6.0 : f32} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("hw")
  %m = tosa.mul %x, %r, %sh : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1xi8>) -> tensor<1x4xf32> loc("hw")
  %y = tosa.mul %m, %sixth, %sh : (tensor<1x4xf32>, tensor<1x1xf32>, tensor<1xi8>) -> tensor<1x4xf32> loc("hw")
  return %y : tensor<1x4xf32>
}

// -----

// SiLU, x * sigmoid(x): observed like hardswish; float-functions=silu
// leaves it in float, as PyTorch 1.13 does (nothing observed at all here).
// X86-LABEL: func.func @silu
// X86: qnt.observe %arg0 {id = "silu:in"
// X86: %[[M:.*]] = tosa.mul
// X86-NEXT: qnt.observe %[[M]] {id = "silu:out", kind = #qnt.observer<histogram>
// PT-LABEL: func.func @silu
// PT-NOT: = qnt.observe
func.func @silu(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %s = tosa.sigmoid %x : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("silu")
  %y = tosa.mul %x, %s, %sh : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1xi8>) -> tensor<1x4xf32> loc("silu")
  return %y : tensor<1x4xf32>
}

// -----

// Relu, average pooling: they share their input's parameters (no observer
// on their results).
// X86-LABEL: func.func @shared
// PT-LABEL: func.func @shared
// X86: %[[I:.*]] = qnt.observe %arg0 {id = "pool:in"
// X86: %[[P:.*]] = tosa.avg_pool2d %[[I]]
// X86-NEXT: %[[R:.*]] = tosa.clamp %[[P]]
// X86-NEXT: return %[[R]]
func.func @shared(%x: tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32> {
  %zp = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %p = tosa.avg_pool2d %x, %zp, %zp {acc_type = f32, kernel = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x2xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x2x2x2xf32> loc("pool")
  %r = tosa.clamp %p {min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> loc("relu")
  return %r : tensor<1x2x2x2xf32>
}

// -----

// Concatenation (PyTorch 1.13 FX): the inputs and the result share one
// observer, one id at every site (no requantization after calibration);
// the inputs through the ops that carry their parameters (max pooling), and
// chained concatenations (densenet) all in one class. cat-observer=own:
// every input and the result observed (the inputs are requantized to the
// result's parameters by --qnt-convert), as PyTorch's eager mode.
// X86-LABEL: func.func @concat
// X86-DAG: %[[A:.*]] = qnt.observe %arg0 {id = "cat:out",
// X86-DAG: %[[B:.*]] = qnt.observe %arg1 {id = "cat:out",
// X86: %[[C:.*]] = tosa.concat %[[A]], %[[B]]
// X86-NEXT: qnt.observe %[[C]] {id = "cat:out"
// OWN-LABEL: func.func @concat
// OWN-DAG: %[[A:.*]] = qnt.observe %arg0 {id = "cat:in",
// OWN-DAG: %[[B:.*]] = qnt.observe %arg1 {id = "cat:in1",
// OWN: %[[C:.*]] = tosa.concat %[[A]], %[[B]]
// OWN-NEXT: qnt.observe %[[C]] {id = "cat:out"
func.func @concat(%a: tensor<1x2xf32>, %b: tensor<1x3xf32>) -> tensor<1x5xf32> {
  %c = tosa.concat %a, %b {axis = 1 : i32} : (tensor<1x2xf32>, tensor<1x3xf32>) -> tensor<1x5xf32> loc("cat")
  return %c : tensor<1x5xf32>
}

// -----

// X86-LABEL: func.func @dense_block
// X86: %[[P:.*]] = tosa.max_pool2d
// X86-NEXT: qnt.observe %[[P]] {id = "cat1:out"
// X86: %[[Q:.*]] = tosa.max_pool2d
// X86-NEXT: qnt.observe %[[Q]] {id = "cat1:out"
// X86: %[[C1:.*]] = tosa.concat
// X86-NEXT: qnt.observe %[[C1]] {id = "cat1:out"
// X86: %[[C2:.*]] = tosa.concat
// X86-NEXT: qnt.observe %[[C2]] {id = "cat1:out"
// X86-NOT: id = "cat2
func.func @dense_block(%x: tensor<1x4x4x2xf32>) -> tensor<1x2x2x6xf32> {
  %p = tosa.max_pool2d %x {kernel = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32> loc("pool")
  %q = tosa.max_pool2d %x {kernel = array<i64: 2, 2>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 2, 2>} : (tensor<1x4x4x2xf32>) -> tensor<1x2x2x2xf32> loc("pool2")
  %c1 = tosa.concat %p, %q {axis = 3 : i32} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x4xf32> loc("cat1")
  %c2 = tosa.concat %c1, %p {axis = 3 : i32} : (tensor<1x2x2x4xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x6xf32> loc("cat2")
  return %c2 : tensor<1x2x2x6xf32>
}

// -----

// The product of two activations (qnt.mul, lifted by --qnt-fuse) is a
// compute op: both inputs and the result observed.
// X86-LABEL: func.func @mul
// X86-DAG: qnt.observe %arg0 {id = "se:in",
// X86-DAG: qnt.observe %arg1 {id = "se:in1",
// X86: %[[M:.*]] = qnt.mul
// X86-NEXT: qnt.observe %[[M]] {id = "se:out"
func.func @mul(%a: tensor<1x2x2x3xf32>, %b: tensor<1x1x1x3xf32>) -> tensor<1x2x2x3xf32> {
  %m = qnt.mul %a, %b : (tensor<1x2x2x3xf32>, tensor<1x1x1x3xf32>) -> tensor<1x2x2x3xf32> loc("se")
  return %m : tensor<1x2x2x3xf32>
}

// -----

// A batch-norm that no conv precedes (per-channel multiply and add): one
// function of its input, observed on its result like PyTorch's quantized
// batch_norm2d.
// X86-LABEL: func.func @standalone_batch_norm
// X86: qnt.observe %arg0 {id = "bn:in"
// X86: %[[B:.*]] = tosa.add
// X86-NEXT: qnt.observe %[[B]] {id = "bn:out"
func.func @standalone_batch_norm(%x: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %s = "tosa.const"() {values = dense<[[[[0.5, 2.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %t = "tosa.const"() {values = dense<[[[[0.25, -1.0]]]]> : tensor<1x1x1x2xf32>} : () -> tensor<1x1x1x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %y = tosa.mul %x, %s, %sh : (tensor<1x2x2x2xf32>, tensor<1x1x1x2xf32>, tensor<1xi8>) -> tensor<1x2x2x2xf32> loc("bn")
  %z = tosa.add %y, %t : (tensor<1x2x2x2xf32>, tensor<1x1x1x2xf32>) -> tensor<1x2x2x2xf32> loc("bn")
  return %z : tensor<1x2x2x2xf32>
}

// -----

// Negative: a constant that varies over more than the channels is not part
// of a unary function: nothing to observe here.
// X86-LABEL: func.func @spatial_constant
// X86-NOT: = qnt.observe
func.func @spatial_constant(%x: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %s = "tosa.const"() {values = dense<[[[[0.5, 2.0], [1.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]]]> : tensor<1x2x2x2xf32>} : () -> tensor<1x2x2x2xf32>
  %sh = "tosa.const"() {values = dense<0> : tensor<1xi8>} : () -> tensor<1xi8>
  %y = tosa.mul %x, %s, %sh : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>, tensor<1xi8>) -> tensor<1x2x2x2xf32>
  return %y : tensor<1x2x2x2xf32>
}

// -----

// Constant padding and resizing (F.pad, F.interpolate) share their input's
// parameters: one observer on the input, none on their results.
// X86-LABEL: func.func @pad_resize
// X86: %[[I:.*]] = qnt.observe %arg0 {id = "pad:in"
// X86-NOT: = qnt.observe %
// X86: %[[P:.*]] = tosa.pad %[[I]]
// X86-NOT: = qnt.observe %
// X86: %[[R:.*]] = tosa.resize %[[P]]
// X86-NEXT: return %[[R]]
func.func @pad_resize(%x: tensor<1x4x4x2xf32>) -> tensor<1x12x12x2xf32> {
  %padding = tosa.const_shape {values = dense<[0, 0, 1, 1, 1, 1, 0, 0]> : tensor<8xindex>} : () -> !tosa.shape<8>
  %fill = "tosa.const"() {values = dense<0.0> : tensor<1xf32>} : () -> tensor<1xf32>
  %p = tosa.pad %x, %padding, %fill : (tensor<1x4x4x2xf32>, !tosa.shape<8>, tensor<1xf32>) -> tensor<1x6x6x2xf32> loc("pad")
  %s = tosa.const_shape {values = dense<[4, 2, 4, 2]> : tensor<4xindex>} : () -> !tosa.shape<4>
  %o = tosa.const_shape {values = dense<-1> : tensor<2xindex>} : () -> !tosa.shape<2>
  %b = tosa.const_shape {values = dense<1> : tensor<2xindex>} : () -> !tosa.shape<2>
  %r = tosa.resize %p, %s, %o, %b {mode = BILINEAR} : (tensor<1x6x6x2xf32>, !tosa.shape<4>, !tosa.shape<2>, !tosa.shape<2>) -> tensor<1x12x12x2xf32> loc("up")
  return %r : tensor<1x12x12x2xf32>
}
