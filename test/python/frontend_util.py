"""What the frontend tests share (no tests here): running the tools, the
FP32 comparison with PyTorch, and the one-op case format of the
``test_ops_<family>.py`` files, one per op family of python/qnt/ops.

Every case exports a module with ``qnt.export``, runs the file with
``build/bin/quant-run`` (which lowers it with --qnt-fuse, oneDNN kernels for
conv/linear and upstream tosa-to-linalg for the rest) on a random input and
compares with PyTorch's FP32 output on the same input:

    max |quant-run - torch| / max |torch|  <=  tolerance

FP32 kernels sum in a different order than PyTorch's (and --qnt-fuse folds
batch norm into the conv weights), so results agree to a few ulp of the
largest value, not bit for bit: every family is held to ``TOLERANCE``
(1e-5, the FP32 parity the frontend promises), a margin over the 1e-7..1e-6
actually seen.  Batch-norm statistics are randomized so
that folding them is really tested.

Binaries: $QNT_BUILD_DIR/bin/{quant-run,quant-opt} (default <repo>/build).
Needs torch and torchvision (Debian: python3-torch, python3-torchvision).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "python"))
BUILD_DIR = Path(os.environ.get("QNT_BUILD_DIR", str(REPO_ROOT / "build")))
BINARY_WAIT_SECONDS = float(os.environ.get("QNT_BINARY_WAIT", "120"))
TOLERANCE = 1e-5

# scripts/test.sh installs Debian's python3-torch and python3-torchvision;
# without them these tests fail (they are never skipped silently).
import torch  # noqa: E402
import torchvision  # noqa: E402

nn = torch.nn
F = torch.nn.functional

import qnt  # noqa: E402  (needs the sys.path entry above)
from qnt import data as qdata  # noqa: E402

__all__ = ["BUILD_DIR", "F", "Fn", "Fn2", "REPO_ROOT", "TOLERANCE", "binary",
           "check", "check_case", "check_inputs", "conv", "nn", "np", "parametrize_cases", "qdata", "qnt",
           "quant_run", "randomize_batch_norms", "rel_err", "run_tool", "torch", "torchvision"]


# ---------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------

def binary(name):
    path = BUILD_DIR / "bin" / name
    deadline = time.monotonic() + BINARY_WAIT_SECONDS
    while not (path.is_file() and os.access(path, os.X_OK)):  # may be relinking
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not found at {path}: build the project first "
                        f"(cmake --build {BUILD_DIR}) or set QNT_BUILD_DIR", pytrace=False)
        time.sleep(2)
    return str(path)


def run_tool(name, *args):
    result = subprocess.run([binary(name), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, f"{name} {' '.join(map(str, args))} failed:\n{result.stderr}"
    return result.stdout


def quant_run(mlir, inputs, tmp_path, *extra):
    """Runs `mlir` on {name: array}; returns the list of outputs."""
    in_path, out_path = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(in_path, **inputs)
    run_tool("quant-run", mlir, "-i", in_path, "-o", out_path, "--quiet", *extra)
    outputs = qdata.load(out_path)
    keys = ["output"] if "output" in outputs else [f"output{i}" for i in range(len(outputs))]
    return [outputs[k] for k in keys]


def rel_err(got, want):
    want = np.asarray(want, np.float64)
    scale = max(np.abs(want).max(), 1e-30)
    return float(np.abs(np.asarray(got, np.float64) - want).max() / scale)


def check(module, *shapes, tmp_path, scale=1.0, seed=0):
    """Exports `module`, runs it on random inputs, compares with PyTorch.
    Returns (max relative error, the exported text)."""
    gen = torch.Generator().manual_seed(seed)
    return check_inputs(module, *(torch.randn(s, generator=gen) * scale for s in shapes),
                        tmp_path=tmp_path)


def check_inputs(module, *inputs, tmp_path):
    """`check` on the given input tensors (any dtype the frontend takes)."""
    module.eval()
    path = tmp_path / "model.mlir"
    info = qnt.export(module, inputs, path)
    assert [s for _, s in info.inputs] == [tuple(t.shape) for t in inputs]
    got = quant_run(path, {n: t.numpy() for (n, _), t in zip(info.inputs, inputs)}, tmp_path)
    with torch.no_grad():
        want = module(*inputs)
    want = list(want) if isinstance(want, (tuple, list)) else [want]
    assert len(got) == len(want)
    errors = []
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        errors.append(rel_err(g, w.numpy()))
    return max(errors), path.read_text()


def randomize_batch_norms(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
    return module


class Fn(nn.Module):
    """forward(x) = fn(self, x), with the given submodules."""

    def __init__(self, fn, **modules):
        super().__init__()
        self.fn = fn
        for name, m in modules.items():
            setattr(self, name, m)

    def forward(self, x):
        return self.fn(self, x)


class Fn2(Fn):
    """forward(x, y) = fn(self, x, y)."""

    def forward(self, x, y):
        return self.fn(self, x, y)


def conv(cin=3, cout=8, **kw):
    return nn.Conv2d(cin, cout, 3, padding=1, **kw)


# ---------------------------------------------------------------------------
# One op at a time: (id, module factory, input shapes, text the IR must contain)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# One op at a time: (id, module factory, input shapes, text the IR must contain)
# ---------------------------------------------------------------------------

def parametrize_cases(cases):
    """The ``factory, shapes, expect`` parameters of a list of cases."""
    return pytest.mark.parametrize("factory,shapes,expect",
                                   [pytest.param(f, s, e, id=i) for i, f, s, e in cases])


def check_case(factory, shapes, expect, tmp_path, tolerance=TOLERANCE):
    """Runs one case (inputs scaled by 4 to reach every clamp bound)."""
    torch.manual_seed(0)
    module = randomize_batch_norms(factory())
    err, text = check(module, *shapes, tmp_path=tmp_path, scale=4.0)
    assert err <= tolerance
    if expect:
        assert f'"{expect}"' in text
    return text
