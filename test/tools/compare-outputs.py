"""Checks that run_model's printed outputs (one line of %.9g floats per
output) equal the arrays of a quant-run .npz exactly (same order)."""
import sys

import numpy as np

lines = open(sys.argv[1]).read().splitlines()
arrays = list(np.load(sys.argv[2]).values())
assert len(lines) == len(arrays), f"{len(lines)} printed outputs, {len(arrays)} in {sys.argv[2]}"
for i, (line, want) in enumerate(zip(lines, arrays)):
    got = np.array([np.float32(v) for v in line.split()], dtype=np.float32)
    want = want.astype(np.float32).ravel()
    assert got.shape == want.shape, f"output {i}: {got.shape} vs {want.shape}"
    diff = np.flatnonzero(got != want)
    assert diff.size == 0, f"output {i}: {diff.size} differ, first at {diff[0]}: {got[diff[0]]} vs {want[diff[0]]}"
    print(f"output {i}: {got.size} values identical")
