"""Calibration chunks for quant-run-resume-stats.mlir: a.npz, b.npz and
their concatenation ab.npz (stored, and deflated as ab-compressed.npz),
nan.npz and nanab.npz, pos.npz and apos.npz, one.npz (a single input) and flipped.npz (a stored
archive with one data byte changed)."""
import sys

import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(7)
a = np.stack([np.full((2, 3), np.nan, np.float32),
              np.full((2, 3), -0.0, np.float32),
              rng.uniform(0.0, 1.0, (2, 3)).astype(np.float32)])
a[2, 1, 2] = np.inf
# B widens the range several times (histograms combine onto grown grids).
b = np.stack([rng.uniform(-0.2, 0.3, (2, 3)), rng.uniform(-3.0, 2.0, (2, 3)),
              rng.uniform(-1.0, 9.5, (2, 3)), rng.normal(0, 20, (2, 3))]).astype(np.float32)
b[0, 0, 0] = np.nan
pos = rng.uniform(0.5, 2.0, (2, 2, 3)).astype(np.float32)
nan = np.full((1, 2, 3), np.nan, np.float32)
np.savez(f"{out}/a.npz", x=a)
np.savez(f"{out}/b.npz", x=b)
np.savez(f"{out}/ab.npz", x=np.concatenate([a, b]))
np.savez_compressed(f"{out}/ab-compressed.npz", x=np.concatenate([a, b]))
np.savez(f"{out}/nan.npz", x=nan)
np.savez(f"{out}/pos.npz", x=pos)
np.savez(f"{out}/apos.npz", x=np.concatenate([a, pos]))
np.savez(f"{out}/nanab.npz", x=np.concatenate([nan, a, b]))
np.savez(f"{out}/one.npz", x=b[0])
data = bytearray(open(f"{out}/ab.npz", "rb").read())
# The last sample's last float (the member's data ends before the central
# directory): flip a mantissa bit.
end = data.rfind(b"PK\x01\x02")
data[end - 2] ^= 1
open(f"{out}/flipped.npz", "wb").write(bytes(data))
