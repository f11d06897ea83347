// quant-run --calibrate --resume-stats continues the observers from an
// earlier run's statistics file: chunks A then B (resumed) write the file
// one run over A + B writes, bit for bit, for every observer kind. The data
// grows its range in B (histograms combine), and A holds a sample of NaN
// only (bounds still null) and one of -0.0 (a sign the file must keep).
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python %S/Inputs/resume-data.py %t
// RUN: quant-run %s --calibrate %t/a.npz --stats-file %t/a.json --quiet
// RUN: quant-run %s --calibrate %t/b.npz --resume-stats %t/a.json --stats-file %t/ab-resumed.json 2>&1 | FileCheck %s --check-prefix=LOG
// RUN: quant-run %s --calibrate %t/ab.npz --stats-file %t/ab.json --quiet
// RUN: cmp %t/ab.json %t/ab-resumed.json
// RUN: FileCheck %s < %t/ab-resumed.json
//
// Three chunks, the first of NaN only (every bound null when resumed).
// RUN: quant-run %s --calibrate %t/nan.npz --stats-file %t/n.json --quiet
// RUN: quant-run %s --calibrate %t/a.npz --resume-stats %t/n.json --stats-file %t/na.json --quiet
// RUN: quant-run %s --calibrate %t/b.npz --resume-stats %t/na.json --stats-file %t/nab.json --quiet
// RUN: quant-run %s --calibrate %t/nanab.npz --stats-file %t/nanab.json --quiet
// RUN: cmp %t/nanab.json %t/nab.json
//
// A min of -0.0 (A's zeros, then positive data) survives the round trip.
// RUN: quant-run %s --calibrate %t/pos.npz --resume-stats %t/a.json --stats-file %t/apos-resumed.json --quiet
// RUN: quant-run %s --calibrate %t/apos.npz --stats-file %t/apos.json --quiet
// RUN: cmp %t/apos.json %t/apos-resumed.json
// RUN: FileCheck %s --check-prefix=NEGZERO < %t/apos-resumed.json
//
// Streaming: a compressed archive (read into memory whole, a note) gives
// the same statistics; so does a lone .npy for a lone argument.
// RUN: quant-run %s --calibrate %t/ab-compressed.npz --stats-file %t/abc.json 2>&1 | FileCheck %s --check-prefix=COMPRESSED
// RUN: cmp %t/ab.json %t/abc.json
//
// Statistics of another module, observer kind or parameters: an error
// naming the observer; nothing is written.
// RUN: sed -e 's/#qnt.observer<minmax>/#qnt.observer<histogram>/' %s > %t/other-kind.mlir
// RUN: not quant-run %t/other-kind.mlir --calibrate %t/b.npz --resume-stats %t/a.json --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=KIND
// RUN: sed -e 's/bins = 64/bins = 32/' %s > %t/other-bins.mlir
// RUN: not quant-run %t/other-bins.mlir --calibrate %t/b.npz --resume-stats %t/a.json --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=BINS
// RUN: sed -e 's/"mm"/"renamed"/' %s > %t/other-id.mlir
// RUN: not quant-run %t/other-id.mlir --calibrate %t/b.npz --resume-stats %t/a.json --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=ID
// RUN: sed -e 's/averaging_constant = 2.500000e-01/averaging_constant = 5.000000e-01/' %s > %t/other-constant.mlir
// RUN: not quant-run %t/other-constant.mlir --calibrate %t/b.npz --resume-stats %t/a.json --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=CONSTANT
// RUN: not quant-run %s --calibrate %t/b.npz --resume-stats %t/missing.json --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: head -c 300 %t/a.json > %t/corrupt.json
// RUN: not quant-run %s --calibrate %t/b.npz --resume-stats %t/corrupt.json --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=CORRUPT
// RUN: not quant-run %s --resume-stats %t/a.json -i %t/one.npz --print 2>&1 | FileCheck %s --check-prefix=NOCALIB
// RUN: not test -e %t/x.json
//
// A stored archive with a flipped data byte: its CRC, checked after the
// last sample.
// RUN: not quant-run %s --calibrate %t/flipped.npz --stats-file %t/x.json 2>&1 | FileCheck %s --check-prefix=CRC
// RUN: not test -e %t/x.json

// LOG: calibrating: 4/4 samples
// LOG: wrote statistics of 7 samples to
// CHECK: "num_samples": 7,
// CHECK: "avg": {"kind": "moving_average_minmax", "averaging_constant": 0.25, "min": {{.*}}, "count": 34, "calls": 7, "nonfinite": 8}
// CHECK: "avgc": {"kind": "moving_average_per_channel_minmax", "channels": 2,
// CHECK: "ent": {"kind": "histogram", "bins": 48, "upsample_rate": 4,
// CHECK: "hist": {"kind": "histogram", "bins": 64, "upsample_rate": 8,
// CHECK: "mm": {"kind": "minmax", "min": -50.3351936,
// CHECK: "pc": {"kind": "per_channel_minmax", "channels": 2,
// CHECK: "pct": {"kind": "histogram", "bins": 2048, "upsample_rate": 128,
// NEGZERO: "mm": {"kind": "minmax", "min": -0.0, "max": {{.*}}, "count": 23, "calls": 5, "nonfinite": 7}
// COMPRESSED: note: '{{.*}}ab-compressed.npz' has compressed members: it is read into memory at once
// KIND: quant-run: error: cannot resume from '{{.*}}a.json': observer 'mm' is 'histogram' with bins = 2048, upsample_rate = 128 in '{{.*}}other-kind.mlir' but 'minmax' in the file (statistics of another module or qconfig?)
// BINS: quant-run: error: cannot resume from '{{.*}}a.json': observer 'hist' is 'histogram' with bins = 32, upsample_rate = 8 in '{{.*}}' but 'histogram' with bins = 64, upsample_rate = 8 in the file
// ID: quant-run: error: cannot resume from '{{.*}}a.json': observer 'mm' is not in '{{.*}}other-id.mlir'
// CONSTANT: quant-run: error: cannot resume from '{{.*}}a.json': observer 'avg' has averaging constant 0.5 in '{{.*}}' but 0.25 in the file
// MISSING: quant-run: error: statistics file '{{.*}}missing.json': cannot read
// CORRUPT: quant-run: error: statistics file '{{.*}}corrupt.json': invalid JSON
// NOCALIB: quant-run: error: --resume-stats needs --calibrate
// CRC: quant-run: error: '{{.*}}flipped.npz': member 'x.npy': CRC mismatch

func.func @main(%x: tensor<2x3xf32> {qnt.name = "x"}) -> tensor<2x3xf32> {
  %0 = qnt.observe %x {id = "mm", kind = #qnt.observer<minmax>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  %1 = qnt.observe %0 {id = "pc", kind = #qnt.observer<per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  %2 = qnt.observe %1 {id = "avg", kind = #qnt.observer<moving_average_minmax>, averaging_constant = 2.500000e-01 : f32, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  %3 = qnt.observe %2 {id = "avgc", kind = #qnt.observer<moving_average_per_channel_minmax>, qspec = #qnt.qspec<dtype = s8, quant_min = -128, quant_max = 127, scheme = symmetric, axis = 0>} : tensor<2x3xf32>
  %4 = qnt.observe %3 {id = "hist", kind = #qnt.observer<histogram>, bins = 64, upsample_rate = 8, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  %5 = qnt.observe %4 {id = "pct", kind = #qnt.observer<percentile>, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  %6 = qnt.observe %5 {id = "ent", kind = #qnt.observer<entropy>, bins = 48, upsample_rate = 4, qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>} : tensor<2x3xf32>
  return %6 : tensor<2x3xf32>
}
