# Numpy reference for pooling.mlir: 3x3 windows, stride 2,
# pad [top 1, bottom 0, left 1, right 1].
import sys

import numpy as np

x = np.load(sys.argv[1])["x"].astype(np.float64)
out = np.load(sys.argv[2])
n, h, w, c = x.shape
ref_max = np.zeros((n, 3, 4, c))
ref_avg = np.zeros((n, 3, 4, c))
for oy in range(3):
    for ox in range(4):
        y0, x0 = oy * 2 - 1, ox * 2 - 1
        ys = slice(max(y0, 0), min(y0 + 3, h))
        xs = slice(max(x0, 0), min(x0 + 3, w))
        window = x[:, ys, xs, :]
        ref_max[:, oy, ox] = window.max(axis=(1, 2))
        ref_avg[:, oy, ox] = window.mean(axis=(1, 2))
assert np.array_equal(out["max"], ref_max.astype(np.float32)), "max pooling differs"
err = np.abs(out["avg"] - ref_avg).max()
assert err < 1e-6, f"average pooling: max abs error {err}"
print("avg max abs error", err)
