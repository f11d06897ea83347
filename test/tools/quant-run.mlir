// Execution and error handling of quant-run on a small float model.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %python -c "import numpy as np; np.savez('%t/in.npz', x=np.arange(16, dtype=np.float32).reshape(1,4,4,1) - 8)"
// RUN: quant-run %s -i %t/in.npz --print -o %t/out.npz | FileCheck %s --check-prefix=EXEC
// RUN: %python -c "import numpy as np; y = np.load('%t/out.npz')['output']; x = np.arange(16, dtype=np.float32).reshape(1,4,4,1) - 8; ref = np.maximum(np.concatenate([0.5 * x, -0.25 * x], axis=3), 0); assert y.shape == (1,4,4,2) and y.dtype == np.float32 and np.array_equal(y, ref), y"
//
// Calibration: statistics per observer id.
// RUN: quant-opt %s --qnt-prepare=activation-observer=minmax -o %t/prepared.mlir
// RUN: %python -c "import numpy as np; np.savez('%t/calib.npz', x=np.linspace(-2, 3, 5*16, dtype=np.float32).reshape(5,1,4,4,1))"
// RUN: quant-run %t/prepared.mlir --calibrate %t/calib.npz --stats-file %t/stats.json 2>&1 | FileCheck %s --check-prefix=CALIB
// RUN: FileCheck %s --check-prefix=STATS < %t/stats.json
// One id at two sites (a concatenation's shared observer): one entry over
// both, min of x and max of x + 3, two calls per sample.
// RUN: %python -c "import numpy as np; np.savez('%t/shared.npz', x=np.array([[[-1, 0, 1, 2]], [[0, 0, 0, 4]]], np.float32))"
// RUN: quant-run %S/Inputs/shared-observer.mlir --calibrate %t/shared.npz --stats-file %t/shared.json --quiet
// RUN: %python -c "import json; o = json.load(open('%t/shared.json'))['observers']; assert list(o) == ['cat:out'] and (o['cat:out']['min'], o['cat:out']['max'], o['cat:out']['calls'], o['cat:out']['count']) == (-1.0, 7.0, 4, 16), o"
//
// Errors: a message, a non-zero exit and no output file.
// RUN: not quant-run %S/Inputs/malformed.mlir -i %t/in.npz 2>&1 | FileCheck %s --check-prefix=PARSE
// RUN: not quant-run %t/missing.mlir -i %t/in.npz 2>&1 | FileCheck %s --check-prefix=NOFILE
// RUN: not quant-run %s --entry nope -i %t/in.npz 2>&1 | FileCheck %s --check-prefix=ENTRY
// RUN: not quant-run %s 2>&1 | FileCheck %s --check-prefix=NOTHING
// RUN: %python -c "import numpy as np; np.savez('%t/wrongkey.npz', y=np.zeros((1,4,4,1), np.float32))"
// RUN: not quant-run %s -i %t/wrongkey.npz -o %t/o1.npz 2>&1 | FileCheck %s --check-prefix=KEY
// RUN: not test -e %t/o1.npz
// RUN: %python -c "import numpy as np; np.savez('%t/shape.npz', x=np.zeros((1,4,5,1), np.float32))"
// RUN: not quant-run %s -i %t/shape.npz 2>&1 | FileCheck %s --check-prefix=SHAPE
// RUN: %python -c "import numpy as np; np.savez('%t/dtype.npz', x=np.zeros((1,4,4,1), np.float64))"
// RUN: not quant-run %s -i %t/dtype.npz 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: head -c 100 %t/in.npz > %t/corrupt.npz
// RUN: not quant-run %s -i %t/corrupt.npz 2>&1 | FileCheck %s --check-prefix=CORRUPT
// RUN: not quant-run %s -i %t/in.npz -o %t/no/such/dir/out.npz 2>&1 | FileCheck %s --check-prefix=UNWRITABLE
// RUN: not test -e %t/no/such/dir/out.npz
// Devices are written in place (never replaced): a full one is an error.
// RUN: not quant-run %s -i %t/in.npz -o /dev/full 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: quant-run %s -i %t/in.npz -o /dev/null
// RUN: test -c /dev/null -a -c /dev/full
// RUN: not quant-run %s -i %t/in.npz --print 2>&1 > /dev/full | FileCheck %s --check-prefix=STDOUT
// RUN: quant-run %t/prepared.mlir --calibrate %t/calib.npz --stats-file /dev/null --quiet
// RUN: not quant-run %t/prepared.mlir --calibrate %t/calib.npz --stats-file /dev/full --quiet 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: test -c /dev/null -a -c /dev/full
// RUN: not quant-run %t/prepared.mlir --calibrate %t/calib.npz 2>&1 | FileCheck %s --check-prefix=NOSTATS
// RUN: %python -c "import numpy as np; np.savez('%t/empty.npz', x=np.zeros((0,1,4,4,1), np.float32))"
// RUN: not quant-run %t/prepared.mlir --calibrate %t/empty.npz --stats-file %t/s2.json 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not test -e %t/s2.json
//
// Limits, checked before anything large is allocated or any thread created.
// RUN: not quant-run %s -i %t/in.npz --print --num-threads 100000 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not quant-run %S/Inputs/huge-splat.mlir --print 2>&1 | FileCheck %s --check-prefix=SPLAT
// RUN: not quant-run %S/Inputs/overflow-shape.mlir --print 2>&1 | FileCheck %s --check-prefix=OVERFLOW
// RUN: not quant-run %S/Inputs/zero-point-300.mlir --print 2>&1 | FileCheck %s --check-prefix=ZEROPOINT
//
// Observers: without --calibrate the model runs in float (a warning); with
// it, their ids must be unique.
// RUN: quant-run %t/prepared.mlir -i %t/in.npz --print 2>&1 | FileCheck %s --check-prefix=OBSERVED
// RUN: %python -c "import numpy as np; np.savez('%t/calib4.npz', x=np.ones((2,1,4), np.float32))"
// RUN: not quant-run %S/Inputs/duplicate-ids.mlir --calibrate %t/calib4.npz --stats-file %t/dup.json 2>&1 | FileCheck %s --check-prefix=DUPLICATE
// RUN: not test -e %t/dup.json
// RUN: quant-run %s --calibrate %t/calib.npz --stats-file %t/none.json --quiet 2>&1 | FileCheck %s --check-prefix=NOOBSERVERS

// EXEC: output [1,4,4,2]: 0 2 0 1.75 0 1.5 0 1.25 0 1 0 0.75 0 0.5 0 0.25 0 0 0.5 0 1 0 1.5 0 2 0 2.5 0 3 0 3.5 0

// CALIB: calibrating: 5/5 samples
// CALIB: wrote statistics of 5 samples to
// STATS: "format": "qnt-stats", "version": 1, "num_samples": 5,
// STATS: "conv:in": {"kind": "minmax", "min": -2, "max": 3, "count": 80, "calls": 5, "nonfinite": 0}
// STATS: "conv:out": {"kind": "minmax", "min": 0, "max": 1.5, "count": 160, "calls": 5, "nonfinite": 0}
// STATS: "conv:w": {"kind": "per_channel_minmax", "channels": 2, "min": [0.5, -0.25], "max": [0.5, -0.25]

// PARSE: malformed.mlir:3:{{[0-9]+}}: error:
// PARSE: quant-run: error: cannot parse
// NOFILE: quant-run: error: cannot open input file '{{.*}}missing.mlir'
// ENTRY: quant-run: error: '{{.*}}quant-run.mlir' has no function 'nope' (choose one with --entry)
// NOTHING: quant-run: error: nothing to do
// KEY: quant-run: error: missing input 'x' in {{.*}}wrongkey.npz (it has: y)
// SHAPE: quant-run: error: input 'x' in {{.*}}shape.npz: expected <f4 [1,4,4,1], got <f4 [1,4,5,1]
// DTYPE: quant-run: error: input 'x' in {{.*}}dtype.npz: expected <f4 [1,4,4,1], got <f8 [1,4,4,1]
// CORRUPT: quant-run: error: {{.*}}corrupt.npz
// UNWRITABLE: quant-run: error: cannot write '{{.*}}out.npz'
// FULL: quant-run: error: cannot write '/dev/full': No space left on device
// STDOUT: quant-run: error: cannot write to stdout: No space left on device
// NOSTATS: quant-run: error: --calibrate needs --stats-file FILE
// EMPTY: quant-run: error: data set '{{.*}}empty.npz' has no samples
// THREADS: quant-run: error: --num-threads 100000 exceeds the limit of 1024
// SPLAT: huge-splat.mlir:2:1: error: 'main': output of type 'tensor<1x100000x100000xf32>' has 10000000000 elements (40000000000 bytes), more than the limit of 2147483648 bytes
// OVERFLOW: overflow-shape.mlir:2:1: error: 'main': arg0 of type 'tensor<4611686018427387904x4xf32>': its element count overflows int64
// ZEROPOINT: zero-point-300.mlir:3:8: error: 'quant.qcast' op zero point 300 of 'tensor<1x4x!quant.uniform<u8:f32, 1.000000e-01:300>>' is outside its storage range [0, 255]
// OBSERVED: quant-run: warning: '{{.*}}prepared.mlir' has 3 qnt.observe op(s): without --calibrate they record nothing and the model runs in float
// OBSERVED: output [1,4,4,2]: 0 2 0 1.75
// DUPLICATE: duplicate-ids.mlir:4:8: error: observer id 'in' is used again with a different kind, channel count or parameters (one id is one observer)
// DUPLICATE: duplicate-ids.mlir:3:8: note: first used here
// NOOBSERVERS: quant-run: warning: '{{.*}}quant-run.mlir' has no qnt.observe ops

func.func @main(%x: tensor<1x4x4x1xf32> {qnt.name = "x"}) -> tensor<1x4x4x2xf32> {
  %w = arith.constant dense<[[[[0.5]]], [[[-0.25]]]]> : tensor<2x1x1x1xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %c = qnt.conv2d %x, %w, %b {activation = #qnt.activation<relu>, dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32> loc("conv")
  return %c : tensor<1x4x4x2xf32>
}
