// RUN: quant-opt %s --split-input-file --verify-diagnostics --qnt-fold-calibration="stats=%S/Inputs/stats.json" | FileCheck %s
// RUN: quant-opt %s --split-input-file --verify-diagnostics --qnt-fold-calibration="stats=%S/Inputs/stats.json clamp-to-quant-range" | FileCheck %s --check-prefix=NARROW
// RUN: not quant-opt %s --split-input-file --qnt-fold-calibration="stats=%S/Inputs/missing.json" 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not quant-opt %s --split-input-file --qnt-fold-calibration="stats=%S/Inputs/bad.json" 2>&1 | FileCheck %s --check-prefix=BADJSON
// RUN: not quant-opt %s --split-input-file --qnt-fold-calibration 2>&1 | FileCheck %s --check-prefix=NOSTATS
//
// Statistics files are validated before their values are used: nesting
// 40000 levels deep (which would overflow the JSON parser's stack), a
// negative histogram bin.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "open('%t/deep.json', 'w').write('[' * 40000 + ']' * 40000)"
// RUN: not quant-opt %s --split-input-file --qnt-fold-calibration="stats=%t/deep.json" 2>&1 | FileCheck %s --check-prefix=DEEP
// RUN: %python -c "open('%t/negative.json', 'w').write('{\"format\": \"qnt-stats\", \"version\": 1, \"observers\": {\"h\": {\"kind\": \"histogram\", \"bins\": 2, \"min\": 0, \"max\": 1, \"histogram\": [3, -1e30]}}}')"
// RUN: not quant-opt %s --split-input-file --qnt-fold-calibration="stats=%t/negative.json" 2>&1 | FileCheck %s --check-prefix=NEGATIVE

// MISSING: statistics file '{{.*}}missing.json': cannot read
// BADJSON: statistics file '{{.*}}bad.json': invalid JSON
// NOSTATS: error: observer 'a:in' needs calibration statistics: pass stats=FILE
// DEEP: error: statistics file '{{.*}}deep.json': arrays / objects nest deeper than 32 levels (at byte 32)
// NEGATIVE: error: statistics file '{{.*}}negative.json': observer 'h': 'histogram' bin 1 is negative (-1.000000e+30)

// Expected parameters are PyTorch 1.13's MinMaxObserver /
// PerChannelMinMaxObserver on the same ranges (calculate_qparams()).

// [-1, 3] to u8 [0, 127] affine: scale 4/127 (as f32), zero point 32. As
// in PyTorch, [0, 127] (reduce_range) shapes the parameters only: the type
// clamps to u8's [0, 255], unless clamp-to-quant-range.
// CHECK-LABEL: func.func @affine
// CHECK: %[[Q:.*]] = quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<u8:f32, 0.031496062874794006:32>>
// CHECK: %[[D:.*]] = quant.dcast %[[Q]] : tensor<4x!quant.uniform<u8:f32, 0.031496062874794006:32>> to tensor<4xf32>
// CHECK: return %[[D]]
// NARROW-LABEL: func.func @affine
// NARROW: quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<u8<0:127>:f32, 0.031496062874794006:32>>
func.func @affine(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = qnt.observe %x {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// min / scale = -2.5 exactly: the zero point rounds half to even, to 2.
// CHECK-LABEL: func.func @tie
// CHECK: !quant.uniform<u8:f32, 2.500000e-01:2>
func.func @tie(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = qnt.observe %x {id = "tie:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A degenerate range gets the smallest scale, eps = 2^-23.
// CHECK-LABEL: func.func @degenerate
// CHECK: !quant.uniform<u8:f32, 1.1920928955078125E-7>
func.func @degenerate(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = qnt.observe %x {id = "zero:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A qspec's own eps replaces PyTorch's default as the smallest scale.
// CHECK-LABEL: func.func @degenerate_eps
// CHECK: !quant.uniform<u8:f32, 9.9999997473787516E-6>
func.func @degenerate_eps(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = qnt.observe %x {id = "zero:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine, eps = 1.0e-05 : f32>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// NaN/Inf seen during calibration are reported, not folded into the range.
// CHECK-LABEL: func.func @nonfinite
// CHECK: !quant.uniform<u8:f32, 0.031496062874794006:64>
func.func @nonfinite(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-warning @+1 {{observer 'nan:in' saw 2 NaN/Inf value(s); they are excluded from its range}}
  %0 = qnt.observe %x {id = "nan:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// Weights take their range from the constant, per output channel:
// max |w| / 127.5 per row.
// CHECK-LABEL: func.func @weight
// CHECK: quant.qcast %{{.*}} : tensor<2x2xf32> to tensor<2x2x!quant.uniform<i8:f32:0, {0.0078431377187371254,0.0019607844296842813}>>
func.func @weight() -> tensor<2x2xf32> {
  %w = arith.constant dense<[[-1.0, 0.5], [0.25, 0.1]]> : tensor<2x2xf32>
  %0 = qnt.observe %w {id = "w", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

func.func @unknown_id(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{no statistics for observer 'b:in' in}}
  %0 = qnt.observe %x {id = "b:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @no_finite_value(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{observer 'empty:in' has no finite range (it saw no finite value)}}
  %0 = qnt.observe %x {id = "empty:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @kind_mismatch(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{observer 'a:in' is 'per_channel_minmax' but its statistics are 'minmax'}}
  %0 = qnt.observe %x {id = "a:in", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @channel_mismatch(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{observer 'pc:in' has 3 channel statistics, expected 2}}
  %0 = qnt.observe %x {id = "pc:in", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

// Finite statistics whose range float32 cannot quantize: the scale of
// [-3.4e38, 3.4e38] overflows (PyTorch's is inf).
func.func @range_too_wide(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{observer 'huge:in': the range [-3.39999995e+38, 3.39999995e+38] is too wide to quantize: its scale overflows float32}}
  %0 = qnt.observe %x {id = "huge:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @channel_too_wide(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{observer 'hugepc:in': channel 1: the range [-3.39999995e+38, 3.39999995e+38] is too wide to quantize: its scale overflows float32}}
  %0 = qnt.observe %x {id = "hugepc:in", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = affine, axis = 0>} : tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

// The histogram search works in bin widths: a range whose width overflows
// would give a NaN scale.
func.func @histogram_too_wide(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{observer 'hugehist:in': the histogram's range [-3.400000e+38, 3.400000e+38] is too wide: its width overflows float32}}
  %0 = qnt.observe %x {id = "hugehist:in", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// [0, 3.4e38] is wide but representable: a finite scale that parses back.
// CHECK-LABEL: func.func @wide_histogram
// CHECK: !quant.uniform<u8:f32, 3.3333332056343875E+35>
func.func @wide_histogram(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = qnt.observe %x {id = "widehist:in", kind = #qnt.observer<histogram>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// One id is one observer: two sites must agree on its kind and range.
func.func @duplicate_id(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-note @+1 {{first used here}}
  %0 = qnt.observe %x {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<4xf32>
  // expected-error @+1 {{observer id 'a:in' is used again with a different kind, channel count or parameters (one id is one observer)}}
  %1 = qnt.observe %0 {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 127, scheme = affine>} : tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// Sites that share an id (identical kind and range) are one observer: each
// becomes the same qcast/dcast pair (a:in: [-1, 3] -> S = 4/255, Z = 64).
// CHECK-LABEL: func.func @shared_observer
// CHECK: quant.qcast %arg0 : tensor<4xf32> to tensor<4x!quant.uniform<u8:f32, [[S:.*]]:64>>
// CHECK: quant.qcast %arg1 : tensor<2x3xf32> to tensor<2x3x!quant.uniform<u8:f32, [[S]]:64>>
func.func @shared_observer(%x: tensor<4xf32>, %y: tensor<2x3xf32>) -> (tensor<4xf32>, tensor<2x3xf32>) {
  %0 = qnt.observe %x {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<4xf32>
  %1 = qnt.observe %y {id = "a:in", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %0, %1 : tensor<4xf32>, tensor<2x3xf32>
}
