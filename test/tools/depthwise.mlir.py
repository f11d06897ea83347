# Numpy reference for depthwise.mlir (TOSA depthwise_conv2d semantics).
import re
import sys

import numpy as np

text = open(__file__[: -len(".py")]).read()
w = np.array(eval(re.search(r"dense<(\[\[\[\[.*?\]\]\]\])> : tensor<3x3x3x2xf32>",
                            text).group(1)), dtype=np.float32)
b = np.array([0.5, -0.5, 1.0, -1.0, 0.25, 0.0], dtype=np.float32)
x = np.load(sys.argv[1])["x"].astype(np.float64)
y = np.load(sys.argv[2])["output"]
xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
ref = np.zeros((1, 3, 3, 6))
for oy in range(3):
    for ox in range(3):
        for c in range(3):
            for m in range(2):
                patch = xp[0, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3, c]
                ref[0, oy, ox, c * 2 + m] = (patch * w[:, :, c, m]).sum() + b[c * 2 + m]
err = np.abs(y - ref).max()
assert err < 1e-5, f"max abs error {err}\n{y}\n{ref}"
print("max abs error", err)
