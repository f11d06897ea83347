"""Quantization-aware training: PyTorch eager-mode QAT (fuse -> prepare_qat ->
training) -> qnt.qat.export_qat -> quant-opt --qnt-fuse --qnt-fold-fake-quant
--qnt-convert -> quant-run, against PyTorch's own torch.ao.quantization.convert
of the same QAT model.

A small CNN on Fashion-MNIST (1 FP32 epoch + 1 QAT epoch on 4000 training
images), evaluated on the first 1000 test images, for the qnnpack (per-tensor
weights) and onednn (per-channel weights) QAT qconfigs.  Asserts top-1
agreement with PyTorch INT8 >= 99% and max |ours - PyTorch| <= MAX_DIFF_LSB
output quantization steps; prints the accuracies.

Needs build/bin/{quant-opt,quant-run} ($QNT_BUILD_DIR), torch and the Debian
package dataset-fashion-mnist.
"""

import copy
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

import torch  # noqa: E402
import torch.ao.quantization as tq  # noqa: E402

import qnt  # noqa: E402
from qnt import data as qdata  # noqa: E402
from qnt import datasets as qdatasets  # noqa: E402
from qnt import qat  # noqa: E402

nn = torch.nn
N_TRAIN, N_TEST = 4000, 1000
MIN_AGREEMENT = 0.99
MAX_DIFF_LSB = 2   # max |ours - PyTorch| in steps of the output's scale
PIPELINE = ("--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert")


def binary(name):
    path = BUILD_DIR / "bin" / name
    deadline = time.monotonic() + BINARY_WAIT_SECONDS
    while not (path.is_file() and os.access(path, os.X_OK)):  # may be relinking
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not found at {path}: build the project first", pytrace=False)
        time.sleep(2)
    return str(path)


def run_tool(name, *args):
    for attempt in range(3):
        result = subprocess.run([binary(name), *map(str, args)], capture_output=True, text=True)
        if result.returncode == 0 or Path(binary(name)).is_file():
            break
    assert result.returncode == 0, f"{name} {' '.join(map(str, args))} failed:\n{result.stderr}"
    return result.stdout


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(8), nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2, self.relu2 = nn.BatchNorm2d(16), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1, self.relu3 = nn.Linear(16 * 7 * 7, 64), nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(self.quant(x))))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.dequant(self.fc2(self.relu3(self.fc1(torch.flatten(x, 1)))))


FUSE = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"], ["fc1", "relu3"]]


def loader(images, labels, batch=64):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True,
                                       generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    train_x, train_y = qdatasets.fashion_mnist("train", limit=N_TRAIN)
    test_x, test_y = qdatasets.fashion_mnist("test", limit=N_TEST)
    model = Net().train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for x, y in loader(train_x, train_y):  # 1 FP32 epoch
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), (train_x, train_y), (test_x, test_y)


def accuracy(logits, labels):
    return float((np.asarray(logits).argmax(1) == labels).mean())


@pytest.mark.parametrize("backend", ["qnnpack", "onednn"])
def test_qat_matches_pytorch_convert(trained, backend, tmp_path):
    fp32, (train_x, train_y), (test_x, test_y) = trained
    with torch.no_grad():
        acc_fp32 = accuracy(fp32(torch.from_numpy(test_x)).numpy(), test_y)
    torch.manual_seed(1)
    model = qat.train_qat(copy.deepcopy(fp32), loader(train_x, train_y), epochs=1,
                          backend=backend, fuse=FUSE, lr=5e-4)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    mlir = tmp_path / "qat.mlir"
    info = qat.export_qat(model, torch.zeros(1, 1, 28, 28), mlir)
    for k, v in model.state_dict().items():  # export changes nothing
        assert torch.equal(v, state[k]), k
    int8 = tmp_path / "int8.mlir"
    run_tool("quant-opt", mlir, *PIPELINE, "-o", int8)
    text = int8.read_text()
    compute = [line for line in text.splitlines() if "qnt.conv2d" in line or "qnt.linear" in line]
    assert "qnt.fake_quant" not in text and len(compute) == 4
    assert all("!quant.uniform" in line for line in compute), "a float conv/linear is left"
    data = tmp_path / "data.npz"
    qdata.save(data, {"x": test_x}, batch=1, expect=info)
    out = tmp_path / "out.npz"
    run_tool("quant-run", int8, "-i", data, "--samples", "-o", out, "--quiet")
    ours = qdata.load(out)["output"][:, 0]

    ref_model = qat.convert_pytorch(model, backend)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(test_x)).numpy()
        qat_fq = model(torch.from_numpy(test_x)).numpy()  # fake-quantized QAT model
    out_scale = float(model.fc2.activation_post_process.calculate_qparams()[0])
    agree = float((ours.argmax(1) == ref.argmax(1)).mean())
    diff = float(np.abs(ours - ref).max())
    print(f"\n[{backend}] FP32 {acc_fp32:.3f}  QAT fake-quant {accuracy(qat_fq, test_y):.3f}  "
          f"PyTorch INT8 {accuracy(ref, test_y):.3f}  qnt INT8 {accuracy(ours, test_y):.3f}  "
          f"top-1 agreement {agree:.4f}  max |diff| {diff:.4g} "
          f"({diff / out_scale:.2f} output steps of {out_scale:.4g}), "
          f"outputs equal {(ours == ref).mean():.4f}")
    assert agree >= MIN_AGREEMENT
    assert diff <= MAX_DIFF_LSB * out_scale * 1.0001


def test_qat_module_mapping():
    """ConvBn2d without relu, nn.qat.Conv2d, per-channel weight axes, and the
    parameters PyTorch's convert takes (calculate_qparams of the folded weight)."""
    torch.manual_seed(0)

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.conv1, self.bn1 = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 3, 1)
            self.fc = nn.Linear(3 * 4 * 4, 5)

        def forward(self, x):
            x = self.conv2(self.bn1(self.conv1(self.quant(x))))
            return self.dequant(self.fc(x.flatten(1)))

    for backend, per_channel in (("qnnpack", False), ("onednn", True)):
        m = qat.prepare_qat(Small(), backend, [["conv1", "bn1"]])
        for _ in range(3):
            m(torch.randn(8, 2, 6, 6))
        qat.freeze(m)
        text = qnt.to_mlir(m, torch.zeros(1, 2, 6, 6))
        assert text.count('"qnt.fake_quant"') == 8, text   # 3 weights, 4 outputs, 1 same-grid (flatten)
        assert text.count('"qnt.conv2d"') == 2 and text.count('"qnt.linear"') == 1
        assert ("axis = 0" in text) == per_channel
        w, _ = torch.nn.utils.fuse_conv_bn_weights(
            m.conv1.weight, m.conv1.bias, m.conv1.bn.running_mean, m.conv1.bn.running_var, m.conv1.bn.eps,
            m.conv1.bn.weight, m.conv1.bn.bias)
        fq = copy.deepcopy(m.conv1.weight_fake_quant)
        fq(w.detach())
        scale = fq.calculate_qparams()[0].reshape(-1)
        from qnt import ir
        assert "scale = array<f32: " + ", ".join(ir.float_literal(v) for v in scale.tolist()) in text
