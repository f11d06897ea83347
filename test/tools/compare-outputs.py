"""Checks that run_model's printed outputs (one line of %.9g floats per
output) equal a reference exactly (same order): the arrays of a quant-run
.npz, or the lines of another run_model output (.txt).

    compare-outputs.py got.txt want.npz|want.txt [--max-rel R]

With --max-rel, each output may differ by up to R * max |want| (float
kernels of two architectures sum in different orders)."""
import sys

import numpy as np

args = sys.argv[1:]
max_rel = None
if "--max-rel" in args:
    at = args.index("--max-rel")
    max_rel = float(args[at + 1])
    del args[at:at + 2]
got_path, want_path = args


def read_lines(path):
    return [np.array([np.float32(v) for v in line.split()], dtype=np.float32)
            for line in open(path).read().splitlines()]


lines = read_lines(got_path)
arrays = (read_lines(want_path) if want_path.endswith(".txt")
          else list(np.load(want_path).values()))
assert len(lines) == len(arrays), f"{len(lines)} printed outputs, {len(arrays)} in {want_path}"
for i, (got, want) in enumerate(zip(lines, arrays)):
    want = want.astype(np.float32).ravel()
    assert got.shape == want.shape, f"output {i}: {got.shape} vs {want.shape}"
    if max_rel is None:
        diff = np.flatnonzero(got != want)
        assert diff.size == 0, (f"output {i}: {diff.size} differ, first at {diff[0]}: "
                                f"{got[diff[0]]} vs {want[diff[0]]}")
        print(f"output {i}: {got.size} values identical")
        continue
    rel = float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))
    assert rel <= max_rel, f"output {i}: max |diff| / max |want| = {rel:.3g} > {max_rel}"
    print(f"output {i}: {got.size} values, {int((got != want).sum())} differ, "
          f"max |diff| / max |want| = {rel:.3g} <= {max_rel}")
