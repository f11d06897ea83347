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
// RUN: not quant-run %t/prepared.mlir --calibrate %t/calib.npz 2>&1 | FileCheck %s --check-prefix=NOSTATS
// RUN: %python -c "import numpy as np; np.savez('%t/empty.npz', x=np.zeros((0,1,4,4,1), np.float32))"
// RUN: not quant-run %t/prepared.mlir --calibrate %t/empty.npz --stats-file %t/s2.json 2>&1 | FileCheck %s --check-prefix=EMPTY
// RUN: not test -e %t/s2.json

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
// NOSTATS: quant-run: error: --calibrate needs --stats-file FILE
// EMPTY: quant-run: error: data set '{{.*}}empty.npz' has no samples

func.func @main(%x: tensor<1x4x4x1xf32> {qnt.name = "x"}) -> tensor<1x4x4x2xf32> {
  %w = arith.constant dense<[[[[0.5]]], [[[-0.25]]]]> : tensor<2x1x1x1xf32>
  %b = arith.constant dense<0.0> : tensor<2xf32>
  %c = qnt.conv2d %x, %w, %b {activation = #qnt.activation<relu>, dilation = array<i64: 1, 1>, pad = array<i64: 0, 0, 0, 0>, stride = array<i64: 1, 1>} : (tensor<1x4x4x1xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32> loc("conv")
  return %c : tensor<1x4x4x2xf32>
}
