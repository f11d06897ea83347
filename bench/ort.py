"""ONNX Runtime for the benchmarks: bench/ort_run.js with onnxruntime-node,
which scripts/ort-setup.sh installs (into build/ort or $QNT_ORT_DIR)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
DEFAULT_DIR = os.environ.get("QNT_ORT_DIR", str(BENCH.parent / "build" / "ort"))
MISSING = "not installed: run scripts/ort-setup.sh"


class Ort:
    """`status` is None when usable, else the text of the ORT cells."""

    def __init__(self, want, ort_dir=DEFAULT_DIR):
        self.dir = Path(ort_dir)
        self.status = None
        self.version = None
        pkg = self.dir / "node_modules" / "onnxruntime-node" / "package.json"
        if want is False:
            self.status = "not measured (--no-ort)"
        elif not shutil.which("node") or not pkg.exists():
            self.status = MISSING
            print(f"ONNX Runtime: {MISSING} (looked for {pkg} and node)", file=sys.stderr,
                  flush=True)
        else:
            self.version = json.loads(pkg.read_text()).get("version")

    def bench(self, onnx, npy, runs, threads, out=None):
        """Median ms of `runs` runs on `threads` threads; `out`: where to
        write the first output (.npy)."""
        args = [onnx, npy, runs, threads] + (["--output", out] if out else [])
        return float(json.loads(self._run(args))["median_ms"])

    def _run(self, args):
        """ort_run.js ARGS: its stdout (RuntimeError with its stderr on failure)."""
        r = subprocess.run(["node", str(BENCH / "ort_run.js"), *map(str, args)],
                           capture_output=True, text=True,
                           env=dict(os.environ, QNT_ORT_DIR=str(self.dir)))
        if r.returncode:
            raise RuntimeError(f"ort_run.js failed (exit {r.returncode}): "
                               f"{r.stderr.strip()[-1000:]}")
        return r.stdout

    def outputs(self, onnx, inputs, threads=2, optimized=None):
        """Every output of one run of ``onnx`` on ``inputs`` (arrays, one per
        model input in the model's order), as numpy arrays; ``optimized``: a
        path where ORT writes the graph it runs (its fusions)."""
        with tempfile.TemporaryDirectory(prefix="qnt-ort-") as tmp:
            tmp = Path(tmp)
            (tmp / "in").mkdir()
            for i, x in enumerate(inputs):
                np.save(tmp / "in" / f"input_{i}.npy", np.ascontiguousarray(x))
            self._run([onnx, tmp / "in", 1, threads, "--warmup", 0, "--output-dir", tmp / "out"]
                      + (["--optimized", optimized] if optimized else []))
            files = sorted((tmp / "out").glob("output_*.npy"),
                           key=lambda f: int(f.stem.split("_")[1]))
            return [np.load(f) for f in files]
