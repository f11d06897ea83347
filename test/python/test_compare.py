"""python -m qnt compare: per-layer SQNR of an INT8 model against FP32."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
from qnt.compare import compare_layers, format_report, sqnr_db  # noqa: E402

BUILD = Path(os.environ.get("QNT_BUILD_DIR", str(ROOT / "build")))
EXAMPLE = ROOT / "examples" / "cnn"


def test_sqnr_db():
    ref = np.array([3.0, 4.0])
    assert sqnr_db(ref, ref) == math.inf
    # signal 25, noise 0.25: 20 dB.
    assert abs(sqnr_db(ref, ref + np.array([0.5, 0.0])) - 20.0) < 1e-12


def test_compare_example_cnn(tmp_path):
    tools = BUILD / "bin"
    prepared, stats, int8 = (tmp_path / n for n in
                             ("prepared.mlir", "stats.json", "int8.mlir"))
    subprocess.run([tools / "quant-opt", EXAMPLE / "model.mlir", "--qnt-fuse",
                    "--qnt-prepare", "--mlir-print-debuginfo", "-o", prepared],
                   check=True)
    subprocess.run([tools / "quant-run", prepared, "--calibrate",
                    EXAMPLE / "calib.npz", "--stats-file", stats, "--quiet"],
                   check=True)
    subprocess.run([tools / "quant-opt", prepared,
                    f"--qnt-fold-calibration=stats={stats}", "--qnt-convert",
                    "--mlir-print-debuginfo", "-o", int8], check=True)
    data = tmp_path / "eval.npz"
    with np.load(EXAMPLE / "eval.npz") as full:
        np.savez(data, input=full["input"][:50])

    errors = compare_layers(EXAMPLE / "model.mlir", int8, data, build_dir=BUILD)
    assert sorted(e.name for e in errors) == ["conv1", "conv2", "fc"]
    sqnrs = [e.sqnr_db for e in errors]
    assert sqnrs == sorted(sqnrs), "worst layer first"
    # 8-bit quantization of a trained CNN: well above 20 dB, but not exact.
    assert all(20.0 < s < 60.0 for s in sqnrs), format_report(errors)
    report = format_report(errors)
    assert report.splitlines()[2].startswith(f"| {errors[0].name} |")
