"""Dynamic quantization (--qnt-prepare="mode=dynamic") against PyTorch's
torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
on the same inputs.

Both quantize each input per call with ChooseQuantizationParams and the
weights per tensor (default_dynamic_qconfig): with the qnnpack preset
(u8 [0, 255]) against the qnnpack engine the outputs are identical; with
the x86 preset (reduce_range: [0, 127]) against the onednn engine they
differ only in float rounding of the final scale-and-bias step."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
import qnt  # noqa: E402

BUILD = Path(os.environ.get("QNT_BUILD_DIR", str(ROOT / "build")))


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32), nn.ReLU(),
                         nn.Linear(32, 10)).eval()


@pytest.mark.parametrize("qconfig,engine,tolerance", [
    ("qnnpack", "qnnpack", 0.0),   # same arithmetic, bit for bit
    ("x86", "onednn", 1e-5),       # float rounding of acc * (S_in * S_w) + b
])
def test_dynamic_linear_matches_pytorch(tmp_path, qconfig, engine, tolerance):
    if engine not in torch.backends.quantized.supported_engines:
        pytest.fail(f"PyTorch engine {engine} is missing")
    model = mlp()
    info = qnt.export(model, (torch.zeros(1, 64),), tmp_path / "mlp.mlir")
    int8 = tmp_path / "dynamic.mlir"
    subprocess.run([BUILD / "bin" / "quant-opt", tmp_path / "mlp.mlir", "--qnt-fuse",
                    f"--qnt-prepare=qconfig={qconfig} mode=dynamic",
                    "--qnt-fold-calibration", "--qnt-convert", "-o", int8], check=True)
    text = int8.read_text()
    assert text.count("dynamic_qspec") == 3 and "qnt.observe" not in text
    xs = torch.randn(200, 1, 64, generator=torch.Generator().manual_seed(1)) * 3
    np.savez(tmp_path / "in.npz", **{info.inputs[0][0]: xs.numpy()})
    subprocess.run([BUILD / "bin" / "quant-run", int8, "-i", tmp_path / "in.npz",
                    "--samples", "--quiet", "-o", tmp_path / "out.npz"], check=True)
    ours = np.load(tmp_path / "out.npz")["output"][:, 0]

    torch.backends.quantized.engine = engine
    reference = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    with torch.no_grad():
        theirs = torch.cat([reference(x) for x in xs]).numpy()
        fp32 = torch.cat([model(x) for x in xs]).numpy()
    diff = np.abs(ours - theirs).max()
    print(f"\n[{qconfig} vs {engine}] max |ours - PyTorch| {diff:.3g}, "
          f"max |PyTorch - FP32| {np.abs(theirs - fp32).max():.3g}, "
          f"top-1 agreement {(ours.argmax(1) == theirs.argmax(1)).mean():.3f}")
    assert diff <= tolerance * max(1.0, np.abs(theirs).max())
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.99
