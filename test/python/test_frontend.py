"""Tests of the PyTorch frontend's driver (python/qnt/export.py): whole
models, locations, errors, the command line and data sets.  The one-op
cases are in test_ops_<family>.py, one file per op family of
python/qnt/ops; the shared helpers in frontend_util.py."""

import os
import subprocess
import sys

import numpy as np
import pytest

from frontend_util import (F, Fn, Fn2, REPO_ROOT, TOLERANCE, check, conv, nn, qdata, qnt,
                           quant_run, randomize_batch_norms, rel_err, run_tool, torch,
                           torchvision)
from qnt import datasets as qdatasets


def test_two_inputs_two_outputs(tmp_path):
    torch.manual_seed(0)
    err, _ = check(Fn2(lambda s, x, y: (s.c(x), x * y), c=conv()), (1, 3, 4, 4), (1, 3, 4, 4),
                   tmp_path=tmp_path, scale=4.0)
    assert err <= TOLERANCE


# ---------------------------------------------------------------------------
# Whole models
# ---------------------------------------------------------------------------

TORCHVISION_MODELS = [
    # torchvision.models.quantization variants: QuantStub/DeQuantStub, FloatFunctional
    ("resnet18", {}), ("resnet50", {}), ("mobilenet_v2", {}), ("mobilenet_v3_large", {}),
    ("shufflenet_v2_x1_0", {}), ("googlenet", {"init_weights": True}),
]


@pytest.mark.parametrize("name,kwargs", TORCHVISION_MODELS, ids=[n for n, _ in TORCHVISION_MODELS])
def test_torchvision_model(name, kwargs, tmp_path):
    torch.manual_seed(0)
    model = getattr(torchvision.models.quantization, name)(quantize=False, **kwargs)
    randomize_batch_norms(model)
    err, text = check(model, (1, 3, 64, 64), tmp_path=tmp_path)
    print(f"{name} 1x3x64x64: max relative error {err:.3g}")
    assert err <= TOLERANCE
    assert '"qnt.quant_stub"' in text and '"qnt.dequant_stub"' in text


@pytest.mark.parametrize("name", ["efficientnet_b0", "densenet121"])
def test_torchvision_model_plain(name, tmp_path):
    """torchvision.models without a quantization variant (no stubs):
    efficientnet's stochastic depth (the identity in eval), densenet's
    concatenations and batch norms before convolutions."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)()
    randomize_batch_norms(model)
    err, text = check(model, (1, 3, 64, 64), tmp_path=tmp_path)
    print(f"{name} 1x3x64x64: max relative error {err:.3g}")
    assert err <= TOLERANCE


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def test_mlp(tmp_path):
    torch.manual_seed(0)
    err, text = check(MLP(), (4, 1, 28, 28), tmp_path=tmp_path)
    print(f"mlp 4x1x28x28: max relative error {err:.3g}")
    assert err <= TOLERANCE
    assert '"tosa.transpose"' not in text  # flatten of the NCHW argument needs none


class FashionCNN(nn.Module):
    """examples/cnn/make_example.py's network, with stubs."""

    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2, self.relu2 = nn.BatchNorm2d(16), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 7 * 7, 10)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, input):
        x = self.relu1(self.bn1(self.conv1(self.quant(input))))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.dequant(self.fc(torch.flatten(x, 1)))


def test_fashion_mnist_cnn(tmp_path):
    """Real Fashion-MNIST images through qnt.data and quant-run --samples,
    and the same set as calibration data for the PTQ pipeline."""
    # scripts/test.sh installs dataset-fashion-mnist; a missing set fails.
    images, labels = qdatasets.fashion_mnist("test", limit=16)
    torch.manual_seed(0)
    model = randomize_batch_norms(FashionCNN()).eval()
    path = tmp_path / "cnn.mlir"
    info = qnt.export(model, torch.zeros(1, 1, 28, 28), path)
    assert info.inputs == [("input", (1, 1, 28, 28))] and info.outputs == [(1, 10)]
    data_path = tmp_path / "eval.npz"
    assert qdata.save(data_path, {"input": images}, batch=1, labels=labels, expect=info) == 16
    run_tool("quant-run", path, "-i", data_path, "--samples", "-o", tmp_path / "out.npz", "--quiet")
    got = qdata.load(tmp_path / "out.npz")["output"]
    with torch.no_grad():
        want = model(torch.from_numpy(images)).numpy()
    assert got.shape == (16, 1, 10)
    err = rel_err(got[:, 0], want)
    print(f"fashion-mnist cnn, 16 test images: max relative error {err:.3g}")
    assert err <= TOLERANCE

    prepared = tmp_path / "prepared.mlir"
    run_tool("quant-opt", path, "--qnt-ptq-pipeline=qconfig=x86", "-o", prepared)
    run_tool("quant-run", prepared, "--calibrate", data_path, "--stats-file",
             tmp_path / "stats.json", "--quiet")
    stats = (tmp_path / "stats.json").read_text()
    assert '"conv1:in"' in stats and '"fc:w"' in stats


# ---------------------------------------------------------------------------
# Locations
# ---------------------------------------------------------------------------

def test_locations(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.quantization.resnet18(quantize=False)
    path = tmp_path / "resnet18.mlir"
    qnt.export(model, torch.randn(1, 3, 32, 32), path)
    text = path.read_text()
    for name in ("quant", "conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.add_relu",
                 "layer2.0.downsample.0", "layer2.0.downsample.1", "avgpool", "flatten", "fc",
                 "dequant"):
        assert f'loc("{name}")' in text, name
    # batch norm ops carry the batch norm's name
    assert '"tosa.mul"(%layer1.0.conv1, ' in text
    assert any(line.startswith('    %layer1.0.bn1') and '"tosa.mul"' in line
               and line.endswith('loc("layer1.0.bn1")') for line in text.splitlines())
    # ... and survive quant-opt with --mlir-print-debuginfo, into observer ids
    assert 'loc("layer1.0.conv1")' in run_tool("quant-opt", path, "--mlir-print-debuginfo")
    prepared = run_tool("quant-opt", path, "--qnt-ptq-pipeline=qconfig=x86")
    assert '"layer1.0.conv1:w"' in prepared and '"fc:out"' in prepared
    # average pooling shares its input's parameters (PyTorch FX): fc's input
    # is the observed output of the last block
    assert '"fc:in"' not in prepared and '"layer4.1.add_relu:out"' in prepared


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(4, 4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.rnn(x)[0]


class WithEncoder(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder(x)


class DataDependent(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


ERROR_CASES = [
    ("rnn", lambda: WithEncoder(Encoder()), (2, 1, 4),
     "unsupported module torch.nn.RNN at 'encoder.rnn'"),
    ("elu", lambda: WithEncoder(Fn(lambda s, x: F.elu(s.fc(x)), fc=nn.Linear(4, 4))), (1, 4),
     "unsupported function torch.nn.functional.elu at 'encoder.elu'"),
    ("method", lambda: Fn(lambda s, x: x.cumsum(1)), (1, 4),
     "unsupported tensor method Tensor.cumsum at 'cumsum'"),
    ("index_tensor", lambda: Fn(lambda s, x: x[x > 0]), (2, 4),
     "tensor indexing with other than integers, slices and one ... is not supported at "
     "'getitem'"),
    ("integer_tensor", lambda: Fn(lambda s, x: x.argmax(1)), (2, 4),
     "unsupported tensor method Tensor.argmax at 'argmax'"),
    ("float64_tensor", lambda: Fn(lambda s, x: x.double() * 2), (2, 4),
     "tensors of torch.float64 are not supported (float32, int64, int32 and bool are) at "
     "'double'"),
    ("divisor_override", lambda: nn.AvgPool2d(2, divisor_override=3), (1, 2, 4, 4),
     "avg_pool2d with divisor_override is not supported at 'AvgPool2d'"),
    ("adaptive_pool_size", lambda: nn.AdaptiveAvgPool2d(3), (1, 2, 4, 4),
     "adaptive_avg_pool2d from 4x4 to 3x3 is not supported (the input size must be a multiple "
     "of the output size) at 'AdaptiveAvgPool2d'"),
    ("padding_mode", lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), (1, 2, 4, 4),
     "Conv2d with padding_mode='reflect' is not supported at 'Conv2d'"),
    ("several", lambda: nn.Sequential(nn.PReLU(), nn.Conv2d(2, 2, 3), nn.ELU(),
                                      Fn(lambda s, x: x.cumsum(1))), (1, 2, 4, 4),
     "3 unsupported ops:\n  0: module torch.nn.PReLU\n  2: module torch.nn.ELU\n"
     "  3.cumsum: tensor method Tensor.cumsum"),
    ("interpolate_mode", lambda: nn.Upsample(scale_factor=2, mode="bicubic"), (1, 2, 4, 4),
     "interpolate with mode='bicubic' is not supported (only 'nearest' and 'bilinear') "
     "at 'Upsample'"),
    ("interpolate_factor", lambda: Fn(lambda s, x: F.interpolate(x, scale_factor=0.3)),
     (1, 2, 10, 10),
     "interpolate with scale_factor=0.3 is not supported (a positive ratio of integers up "
     "to 1024) at 'interpolate'"),
    ("control_flow", lambda: DataDependent(), (1, 4),
     "torch.fx cannot trace test_frontend.DataDependent: symbolically traced variables cannot "
     "be used as inputs to control flow"),
]


@pytest.mark.parametrize("factory,shape,message", [pytest.param(f, s, m, id=i)
                                                    for i, f, s, m in ERROR_CASES])
def test_export_error(factory, shape, message, tmp_path):
    path = tmp_path / "model.mlir"
    with pytest.raises(qnt.ExportError) as info:
        qnt.export(factory(), torch.randn(shape), path)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_export_error_keeps_existing_file(tmp_path):
    path = tmp_path / "model.mlir"
    path.write_text("old")
    with pytest.raises(qnt.ExportError):
        qnt.export(WithEncoder(Encoder()), torch.randn(2, 1, 4), path)
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_example_inputs_must_match_forward(tmp_path):
    with pytest.raises(qnt.ExportError, match=r"forward\(\) takes 2 tensor arguments \(x, y\)"):
        qnt.export(Fn2(lambda s, x, y: x + y), torch.randn(1, 4), tmp_path / "m.mlir")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

USER_MODELS = '''
import torch.nn as nn

def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

def recurrent():
    return nn.Sequential(nn.Linear(4, 4), nn.RNN(4, 4))

def tokens():
    return nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
'''


def run_cli(tmp_path, *args):
    (tmp_path / "usermodels.py").write_text(USER_MODELS)
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT / 'python'}{os.pathsep}{tmp_path}")
    return subprocess.run([sys.executable, "-m", "qnt", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)


def test_cli_user_model_with_weights(tmp_path):
    sys.path.insert(0, str(tmp_path))
    try:
        (tmp_path / "usermodels.py").write_text(USER_MODELS)
        import usermodels
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(1)
    model = randomize_batch_norms(usermodels.tiny(), seed=1).eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    result = run_cli(tmp_path, "export", "--model", "usermodels:tiny", "--input-shape", "1,3,8,8",
                     "--weights", "weights.pt", "-o", "tiny.mlir")
    assert result.returncode == 0, result.stderr
    assert "wrote tiny.mlir: @main(input: 1x3x8x8) -> 1x2" in result.stderr
    x = torch.randn(1, 3, 8, 8)
    got, = quant_run(tmp_path / "tiny.mlir", {"input": x.numpy()}, tmp_path)
    with torch.no_grad():
        assert rel_err(got, model(x).numpy()) <= TOLERANCE


def test_cli_torchvision(tmp_path):
    result = run_cli(tmp_path, "export", "--model", "torchvision:resnet18",
                     "--input-shape", "1,3,32,32", "-o", "resnet18.mlir")
    assert result.returncode == 0, result.stderr
    run_tool("quant-opt", tmp_path / "resnet18.mlir", "-o", os.devnull)


def test_cli_token_ids(tmp_path):
    result = run_cli(tmp_path, "export", "--model", "usermodels:tokens", "--input-shape",
                     "2,5:int64", "-o", "tokens.mlir")
    assert result.returncode == 0, result.stderr
    assert "wrote tokens.mlir: @main(input: 2x5 int64) -> 2x5x2" in result.stderr
    text = (tmp_path / "tokens.mlir").read_text()
    assert 'tensor<2x5xi64> {qnt.name = "input", qnt.valid_range = array<i64: 0, 10>}' in text
    bad = run_cli(tmp_path, "export", "--model", "usermodels:tokens", "--input-shape",
                  "2,5:int8", "-o", "bad.mlir")
    assert bad.returncode == 2 and "like 1,128:int64, got '2,5:int8'" in bad.stderr


@pytest.mark.parametrize("args,message", [
    (["--model", "usermodels:recurrent", "--input-shape", "1,2,4"],
     "qnt: error: unsupported module torch.nn.RNN at '1'"),
    (["--model", "usermodels:missing", "--input-shape", "1,4"],
     "qnt: error: cannot load --model 'usermodels:missing': module 'usermodels' has no "
     "attribute 'missing'"),
    (["--model", "usermodels:tiny", "--input-shape", "1,3,8,8", "--weights", "nope.pt"],
     "qnt: error: cannot load --weights nope.pt: [Errno 2] No such file or directory: 'nope.pt'"),
], ids=["unsupported", "no_factory", "no_weights"])
def test_cli_errors(args, message, tmp_path):
    result = run_cli(tmp_path, "export", *args, "-o", "out.mlir")
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert not (tmp_path / "out.mlir").exists()


# ---------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------

def test_data_round_trip(tmp_path):
    x = torch.randn(6, 3, 4, 4)
    labels = np.arange(6)
    assert qdata.save(tmp_path / "set.npz", {"x": x}, batch=2, labels=labels) == 3
    loaded = qdata.load(tmp_path / "set.npz")
    assert sorted(loaded) == ["labels", "x"]
    assert loaded["x"].dtype == np.float32 and loaded["x"].shape == (3, 2, 3, 4, 4)
    np.testing.assert_array_equal(loaded["x"].reshape(6, 3, 4, 4), x.numpy())
    np.testing.assert_array_equal(loaded["labels"], labels)
    # already [S] + argument shape
    qdata.save(tmp_path / "raw.npz", {"x": np.ones((2, 1, 5), np.float64)}, batch=None)
    assert qdata.load(tmp_path / "raw.npz")["x"].dtype == np.float32


def test_data_from_loader(tmp_path):
    x, y = torch.randn(10, 3, 4, 4), torch.arange(10)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    assert qdata.save_loader(tmp_path / "set.npz", loader, names=["x"], limit=7) == 7
    loaded = qdata.load(tmp_path / "set.npz")
    assert loaded["x"].shape == (7, 1, 3, 4, 4)
    np.testing.assert_array_equal(loaded["x"][:, 0], x[:7].numpy())
    np.testing.assert_array_equal(loaded["labels"], y[:7].numpy())


def test_data_checks_signature(tmp_path):
    info = qnt.ExportInfo(inputs=[("x", (1, 3, 4, 4))], outputs=[(1, 2)])
    with pytest.raises(ValueError, match="no array for the function argument 'x'"):
        qdata.save(tmp_path / "set.npz", {"input": torch.randn(2, 3, 4, 4)}, expect=info)
    with pytest.raises(ValueError, match=r"samples of shape \(1, 3, 5, 5\)"):
        qdata.save(tmp_path / "set.npz", {"x": torch.randn(2, 3, 5, 5)}, expect=info)
    with pytest.raises(ValueError, match="cannot split 5 examples into samples of batch 2"):
        qdata.save(tmp_path / "set.npz", {"x": torch.randn(5, 3, 4, 4)}, batch=2)
    assert list(tmp_path.iterdir()) == []


def test_fashion_mnist_missing(tmp_path):
    with pytest.raises(qdatasets.DatasetNotFoundError, match="dataset-fashion-mnist"):
        qdatasets.fashion_mnist("test", root=tmp_path)


def test_fashion_mnist_files(tmp_path):
    import gzip
    import struct
    images = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
    for name, array in (("images-idx3", images), ("labels-idx1", np.array([0, 9, 4], np.uint8))):
        header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                         *array.shape)
        with gzip.open(tmp_path / f"t10k-{name}-ubyte.gz", "wb") as f:
            f.write(header + array.tobytes())
    with pytest.raises(ValueError, match="unexpected Fashion-MNIST test data"):
        qdatasets.fashion_mnist("test", root=tmp_path)  # 3 images, not 10000
    np.testing.assert_array_equal(qdatasets.read_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz")),
                                  images)
