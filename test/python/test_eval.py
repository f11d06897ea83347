"""eval/ptq_vs_pytorch.py --quick: qnt's static PTQ against PyTorch 1.13's
on the MLP and the Fashion-MNIST CNN (first 1000 test images).

Checks that the script runs, writes its markdown tables, and that the
Fashion-MNIST CNN quantized by qnt meets the accuracy targets: at most 0.5
points below FP32 and at most 0.2 points below PyTorch INT8 with the same
preset (x86 per-channel, qnnpack per-tensor, and onednn per-channel).
The accuracies are recomputed here from the counts of correct images.

Needs build/bin/{quant-opt,quant-run} ($QNT_BUILD_DIR), torch, torchvision
and the Debian package dataset-fashion-mnist.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "eval" / "ptq_vs_pytorch.py"
BUILD_DIR = Path(os.environ.get("QNT_BUILD_DIR", str(REPO_ROOT / "build")))
BINARY_WAIT_SECONDS = float(os.environ.get("QNT_BINARY_WAIT", "120"))


def wait_for_binaries():
    deadline = time.monotonic() + BINARY_WAIT_SECONDS
    for name in ("quant-opt", "quant-run"):
        path = BUILD_DIR / "bin" / name
        while not (path.is_file() and os.access(path, os.X_OK)):  # may be relinking
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not found at {path}: build the project first", pytrace=False)
            time.sleep(2)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    wait_for_binaries()
    tmp = tmp_path_factory.mktemp("eval")
    out, js = tmp / "results.md", tmp / "results.json"
    t0 = time.monotonic()
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out),
                             "--json", str(js), "--build-dir", str(BUILD_DIR)],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    seconds = time.monotonic() - t0
    print(result.stdout)
    print(f"eval/ptq_vs_pytorch.py --quick: {seconds:.1f} s")
    return result, out, js


def test_quick_run_writes_tables(quick_run):
    result, out, js = quick_run
    assert result.returncode in (0, 1), f"exit {result.returncode}:\n{result.stderr[-5000:]}"
    assert out.is_file() and js.is_file()
    text = out.read_text()
    assert text == result.stdout  # the same tables on stdout and in --out
    for heading in ("## Fashion-MNIST CNN: test accuracy", "## Frontend models",
                    "## Per-tensor vs per-channel weights", "## Ops in our INT8 IR"):
        assert heading in text
    data = json.loads(js.read_text())
    assert data["errors"] == []
    assert set(data["models"]) == {"mlp", "fmnist_cnn"}
    for name, model in data["models"].items():
        for variant in ("x86", "qnnpack", "qnnpack_pc"):
            r = model["variants"][variant]
            for key in ("sqnr_ours", "sqnr_pytorch", "top1_ours_pytorch"):
                assert r[key] is not None, (name, variant, key)
            assert f"| {name} | {variant} |" in text or variant == "qnnpack_pc"


def test_fashion_mnist_targets(quick_run):
    """Ours loses at most 0.5 points vs FP32 and 0.2 points vs PyTorch INT8."""
    _, _, js = quick_run
    fm = json.loads(js.read_text())["fashion_mnist"]
    n, correct = fm["n_test"], fm["correct"]
    assert n == 1000
    fp32 = correct["fp32_pytorch"]
    # FP32 through quant-run classifies like PyTorch (kernels agree to ~1e-6).
    assert abs(correct["fp32_ours"] - fp32) <= 1
    for variant in ("x86", "qnnpack", "qnnpack_pc"):
        ours, pytorch = correct[f"ours_{variant}"], correct[f"pytorch_{variant}"]
        loss_vs_fp32 = (fp32 - ours) * 100 / n
        loss_vs_pytorch = (pytorch - ours) * 100 / n
        print(f"{variant}: ours {ours / n:.2%}, PyTorch {pytorch / n:.2%}, FP32 {fp32 / n:.2%}")
        assert loss_vs_fp32 <= 0.5 + 1e-9, f"{variant}: ours loses {loss_vs_fp32:.2f} points vs FP32"
        assert loss_vs_pytorch <= 0.2 + 1e-9, \
            f"{variant}: ours loses {loss_vs_pytorch:.2f} points vs PyTorch INT8"
    assert fm["pass"]
