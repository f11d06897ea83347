"""Tests of the PyTorch frontend (python/qnt): export -> quant-run (FP32)
must reproduce PyTorch's output.

Every case exports a module with ``qnt.export``, runs the file with
``build/bin/quant-run`` (which lowers it with --qnt-fuse, oneDNN kernels for
conv/linear and upstream tosa-to-linalg for the rest) on a random input and
compares with PyTorch's FP32 output on the same input:

    max |quant-run - torch| / max |torch|  <=  1e-4

FP32 kernels sum in a different order than PyTorch's (and --qnt-fuse folds
batch norm into the conv weights), so results agree to a few ulp of the
largest value, not bit for bit; 1e-4 leaves a wide margin on the 1e-7..1e-6
actually seen.  Batch-norm statistics are randomized so that folding them
is really tested.

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
TOLERANCE = 1e-4

# scripts/test.sh installs Debian's python3-torch and python3-torchvision;
# without them these tests fail (they are never skipped silently).
import torch  # noqa: E402
import torchvision  # noqa: E402

nn = torch.nn
F = torch.nn.functional

import qnt  # noqa: E402  (needs the sys.path entry above)
from qnt import data as qdata  # noqa: E402
from qnt import datasets as qdatasets  # noqa: E402


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
    module.eval()
    gen = torch.Generator().manual_seed(seed)
    inputs = tuple(torch.randn(s, generator=gen) * scale for s in shapes)
    path = tmp_path / "model.mlir"
    info = qnt.export(module, inputs, path)
    assert [s for _, s in info.inputs] == [tuple(s) for s in shapes]
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

OP_CASES = [
    # convolutions
    ("conv", lambda: conv(), [(1, 3, 8, 8)], "tosa.conv2d"),
    ("conv_stride2_pad1", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), [(1, 3, 8, 8)], None),
    ("conv_stride2_odd", lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), [(1, 3, 9, 7)], None),
    # TOSA cannot express this window without slicing the input: qnt.conv2d.
    ("conv_1x1_stride2", lambda: nn.Conv2d(4, 8, 1, stride=2), [(1, 4, 8, 8)], "qnt.conv2d"),
    ("depthwise_1x1_stride2", lambda: nn.Conv2d(4, 4, 1, stride=2, groups=4), [(1, 4, 8, 8)],
     "qnt.conv2d"),
    ("conv_dilation", lambda: nn.Conv2d(4, 8, 3, padding=2, dilation=2), [(1, 4, 9, 9)], None),
    ("conv_dilation_stride", lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=(2, 1)),
     [(1, 4, 10, 9)], None),
    ("conv_rect_no_bias", lambda: nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), bias=False),
     [(1, 4, 8, 8)], None),
    ("conv_padding_same", lambda: nn.Conv2d(4, 4, 4, padding="same"), [(1, 4, 7, 7)], None),
    ("conv_batch2", lambda: conv(), [(2, 3, 6, 6)], None),
    ("depthwise", lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), [(1, 8, 8, 8)],
     "tosa.depthwise_conv2d"),
    ("depthwise_multiplier_stride2", lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4),
     [(1, 4, 8, 8)], "tosa.depthwise_conv2d"),
    ("grouped", lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2), [(1, 4, 8, 8)], "qnt.conv2d"),
    ("grouped_stride2", lambda: nn.Conv2d(8, 8, 3, stride=2, groups=4), [(1, 8, 8, 8)], "qnt.conv2d"),
    # batch norm (randomized statistics)
    ("batchnorm2d", lambda: nn.Sequential(conv(), nn.BatchNorm2d(8)), [(1, 3, 8, 8)], "tosa.mul"),
    ("batchnorm1d_2d", lambda: nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)), [(3, 6)], None),
    ("batchnorm1d_3d", lambda: nn.BatchNorm1d(4), [(2, 4, 5)], None),
    # linear
    ("linear", lambda: nn.Linear(12, 7), [(3, 12)], "tosa.matmul"),
    ("linear_no_bias", lambda: nn.Linear(12, 7, bias=False), [(1, 12)], None),
    ("linear_rank3", lambda: nn.Linear(5, 4), [(2, 3, 5)], None),
    # activations (inputs scaled by 4 to reach every clamp bound)
    ("relu", lambda: nn.Sequential(conv(), nn.ReLU()), [(1, 3, 6, 6)], "tosa.clamp"),
    ("relu6", lambda: nn.ReLU6(), [(1, 3, 6, 6)], None),
    ("hardtanh", lambda: nn.Hardtanh(-0.5, 0.7), [(1, 3, 6, 6)], None),
    ("hardswish", lambda: nn.Sequential(conv(), nn.Hardswish()), [(1, 3, 6, 6)], None),
    ("hardsigmoid", lambda: nn.Hardsigmoid(), [(2, 9)], None),
    ("sigmoid", lambda: nn.Sigmoid(), [(1, 3, 6, 6)], "tosa.sigmoid"),
    ("silu", lambda: nn.SiLU(), [(1, 3, 6, 6)], None),
    ("functional_activations",
     lambda: Fn(lambda s, x: F.relu(x) + F.relu6(x) + F.hardtanh(x, -2.0, 3.0) + F.hardswish(x)
                + F.hardsigmoid(x) + torch.sigmoid(x) + F.silu(x) + torch.relu(x) + x.relu()
                + x.sigmoid()),
     [(1, 3, 6, 6)], None),
    # pooling
    ("maxpool", lambda: nn.MaxPool2d(3, 2, 1), [(1, 3, 8, 8)], "tosa.max_pool2d"),
    ("maxpool_ceil", lambda: nn.MaxPool2d(3, 2, ceil_mode=True), [(1, 3, 8, 8)], None),
    ("maxpool_ceil_s1_p1", lambda: nn.MaxPool2d(3, 1, 1, ceil_mode=True), [(1, 3, 7, 7)], None),
    ("maxpool_ceil_odd", lambda: nn.MaxPool2d(2, 2, ceil_mode=True), [(1, 3, 7, 9)], None),
    ("maxpool_drops_rows", lambda: nn.MaxPool2d(2, 3), [(1, 3, 9, 10)], "tosa.slice"),
    ("maxpool_functional", lambda: Fn(lambda s, x: F.max_pool2d(x, 2)), [(1, 3, 8, 8)], None),
    ("avgpool", lambda: nn.AvgPool2d(2), [(1, 3, 8, 8)], "tosa.avg_pool2d"),
    ("avgpool_count_include_pad", lambda: nn.AvgPool2d(3, 2, 1), [(1, 3, 8, 8)], "tosa.pad"),
    ("avgpool_exclude_pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     [(1, 3, 8, 8)], None),
    ("avgpool_ceil_include_pad", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), [(1, 3, 8, 8)], None),
    ("avgpool_ceil_exclude_pad",
     lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), [(1, 3, 8, 8)], None),
    ("avgpool_functional", lambda: Fn(lambda s, x: F.avg_pool2d(x, 3, 1, 1)), [(1, 3, 6, 6)], None),
    ("adaptive_avgpool_1", lambda: nn.AdaptiveAvgPool2d(1), [(1, 3, 8, 8)], None),
    ("adaptive_avgpool_2x4", lambda: nn.AdaptiveAvgPool2d((2, 4)), [(1, 3, 8, 8)], None),
    ("adaptive_avgpool_functional",
     lambda: Fn(lambda s, x: F.adaptive_avg_pool2d(s.c(x), (1, 1)), c=conv()), [(1, 3, 6, 6)], None),
    # elementwise
    ("add_sub_mul", lambda: Fn2(lambda s, x, y: (x + y) * (x - y) + torch.add(x, y) * torch.mul(x, y)),
     [(1, 3, 4, 4), (1, 3, 4, 4)], None),
    ("add_nhwc_and_nchw", lambda: Fn(lambda s, x: s.c(x) + x, c=conv(3, 3)), [(1, 3, 5, 5)], None),
    ("broadcast_channel_scale", lambda: Fn(lambda s, x: s.c(x) * torch.sigmoid(
        F.adaptive_avg_pool2d(s.c(x), 1)), c=conv()), [(1, 3, 6, 6)], None),
    ("scalars", lambda: Fn(lambda s, x: 3 + x * 0.5 - 1 - (2 - x)), [(2, 5)], None),
    ("parameter_operand", lambda: Fn(lambda s, x: s.c(x) + s.bias, c=conv(),
                                     bias=nn.Parameter(torch.randn(1, 8, 1, 1))),
     [(1, 3, 5, 5)], None),
    # data movement
    ("cat_channels", lambda: Fn(lambda s, x: torch.cat([s.a(x), s.b(x)], 1), a=conv(), b=conv(3, 4)),
     [(1, 3, 6, 6)], "tosa.concat"),
    ("cat_width_negative_dim", lambda: Fn(lambda s, x: torch.cat([s.a(x), s.a(x) * 2], -1), a=conv()),
     [(1, 3, 4, 6)], None),
    ("cat_2d", lambda: Fn(lambda s, x: torch.cat((x, x * 2), dim=0)), [(2, 5)], None),
    ("flatten_after_conv", lambda: nn.Sequential(conv(), nn.Flatten(), nn.Linear(8 * 5 * 5, 10)),
     [(1, 3, 5, 5)], "tosa.transpose"),
    ("torch_flatten_start", lambda: Fn(lambda s, x: torch.flatten(s.c(x), 2), c=conv()),
     [(2, 3, 4, 5)], None),
    ("view_reshape", lambda: Fn(lambda s, x: s.c(x).view(x.size(0), -1).reshape(2, 4, -1), c=conv()),
     [(2, 3, 3, 3)], None),
    ("permute_flatten", lambda: Fn(lambda s, x: s.c(x).permute(0, 2, 3, 1).flatten(1), c=conv()),
     [(1, 3, 4, 5)], None),
    ("permute_to_nchw_conv", lambda: Fn(lambda s, x: s.c(x.permute(0, 3, 1, 2)), c=conv()),
     [(1, 4, 5, 3)], None),
    ("transpose_contiguous", lambda: Fn(lambda s, x: torch.transpose(s.c(x), 1, 3).contiguous(),
                                        c=conv()), [(1, 3, 4, 5)], None),
    ("channel_shuffle", lambda: Fn(lambda s, x: s.d(torchvision.models.shufflenetv2.channel_shuffle(
        s.c(x), 2)), c=conv(), d=conv(8, 4)), [(1, 3, 5, 5)], None),
    ("chunk_cat", lambda: Fn(lambda s, x: torch.cat([s.c(x).chunk(2, dim=1)[1], x], 1), c=conv(3, 6)),
     [(1, 3, 4, 4)], "tosa.slice"),
    ("split_2d", lambda: Fn(lambda s, x: torch.split(x, [2, 3], 1)[1] * 2), [(2, 5)], None),
    ("mean_spatial", lambda: Fn(lambda s, x: s.c(x).mean((2, 3)), c=conv()), [(1, 3, 6, 6)], None),
    ("mean_spatial_keepdim", lambda: Fn(lambda s, x: s.c(x).mean([-1, -2], keepdim=True), c=conv()),
     [(1, 3, 6, 6)], None),
    ("mean_channels", lambda: Fn(lambda s, x: s.c(x).mean(1), c=conv()), [(1, 3, 6, 6)],
     "tosa.reduce_sum"),
    ("mean_mixed_keepdim", lambda: Fn(lambda s, x: torch.mean(s.c(x), (1, 3), keepdim=True),
                                      c=conv()), [(1, 3, 6, 6)], None),
    ("mean_2d", lambda: Fn(lambda s, x: torch.mean(x, -1)), [(3, 5)], None),
    ("two_inputs_two_outputs", lambda: Fn2(lambda s, x, y: (s.c(x), x * y), c=conv()),
     [(1, 3, 4, 4), (1, 3, 4, 4)], None),
    ("quant_stubs", lambda: nn.Sequential(torch.ao.quantization.QuantStub(), conv(),
                                          torch.ao.quantization.DeQuantStub()),
     [(1, 3, 6, 6)], "qnt.quant_stub"),
    ("identity_dropout", lambda: nn.Sequential(nn.Identity(), nn.Dropout(0.3), nn.Dropout2d(),
                                               Fn(lambda s, x: F.dropout(x, 0.2, s.training))),
     [(1, 3, 4, 4)], None),
    # constant padding (after a conv: NHWC), on every side, channels too
    ("zero_pad", lambda: nn.Sequential(conv(), nn.ZeroPad2d((1, 2, 0, 3))), [(1, 3, 4, 5)],
     "tosa.pad"),
    ("constant_pad", lambda: nn.Sequential(conv(), nn.ConstantPad2d(2, 0.5)), [(1, 3, 4, 4)],
     None),
    ("pad_channels", lambda: Fn(lambda s, x: F.pad(s.c(x), (1, 0, 0, 1, 2, 1), value=-1.5),
                                c=conv()), [(1, 3, 4, 4)], None),
    ("pad_2d", lambda: Fn(lambda s, x: F.pad(x, (3, 1))), [(2, 5)], None),
    # resizing: nearest (floor of o * in / out), bilinear with and without
    # align_corners; up, down, by size, by an integer or fractional factor
    ("upsample_nearest_2x", lambda: nn.Sequential(conv(), nn.Upsample(scale_factor=2)),
     [(1, 3, 4, 5)], "tosa.resize"),
    ("upsample_nearest_size", lambda: nn.Sequential(conv(), nn.UpsamplingNearest2d((7, 13))),
     [(1, 3, 4, 5)], None),
    ("interpolate_nearest_down", lambda: Fn(lambda s, x: F.interpolate(s.c(x), size=(3, 4)),
                                            c=conv()), [(1, 3, 7, 9)], None),
    ("interpolate_nearest_factor_1_5",
     lambda: Fn(lambda s, x: F.interpolate(s.c(x), scale_factor=1.5), c=conv()), [(1, 3, 7, 6)],
     None),
    ("upsample_bilinear_2x", lambda: nn.Sequential(conv(), nn.Upsample(scale_factor=2,
                                                                     mode="bilinear")),
     [(1, 3, 4, 5)], None),
    ("upsample_bilinear_align_corners", lambda: nn.Sequential(conv(), nn.UpsamplingBilinear2d(
        scale_factor=3)), [(1, 3, 4, 5)], None),
    ("interpolate_bilinear_size", lambda: Fn(lambda s, x: F.interpolate(
        s.c(x), size=(9, 4), mode="bilinear", align_corners=False), c=conv()), [(1, 3, 5, 7)], None),
    ("interpolate_bilinear_align_down", lambda: Fn(lambda s, x: F.interpolate(
        s.c(x), size=(3, 5), mode="bilinear", align_corners=True), c=conv()), [(1, 3, 7, 9)],
     None),
    ("interpolate_nchw_input", lambda: Fn(lambda s, x: F.interpolate(x, scale_factor=(2, 3))),
     [(1, 2, 3, 4)], None),
    ("amax_channels", lambda: Fn(lambda s, x: s.c(x).amax(1), c=conv()), [(1, 3, 5, 6)],
     "tosa.reduce_max"),
    ("amin_spatial_keepdim", lambda: Fn(lambda s, x: torch.amin(s.c(x), (2, 3), keepdim=True),
                                        c=conv()), [(1, 3, 5, 6)], "tosa.reduce_min"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("factory,shapes,expect",
                         [pytest.param(f, s, e, id=i)
                          for i, f, s, e in OP_CASES])
def test_op(factory, shapes, expect, tmp_path):
    torch.manual_seed(0)
    module = randomize_batch_norms(factory())
    err, text = check(module, *shapes, tmp_path=tmp_path, scale=4.0)
    assert err <= TOLERANCE
    if expect:
        assert f'"{expect}"' in text


class FloatFunctionalOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = conv()
        for name in ("ff_add", "ff_mul", "ff_cat", "ff_add_relu", "ff_add_scalar", "ff_mul_scalar"):
            setattr(self, name, nn.quantized.FloatFunctional())

    def forward(self, x):
        y = self.c(x)
        a = self.ff_add.add(y, y * 2)
        b = self.ff_mul.mul(a, y)
        c = self.ff_add_relu.add_relu(b, y)
        d = self.ff_mul_scalar.mul_scalar(self.ff_add_scalar.add_scalar(c, -0.5), 3.0)
        return self.ff_cat.cat([d, y], 1)


def test_float_functional(tmp_path):
    torch.manual_seed(0)
    err, text = check(FloatFunctionalOps(), (1, 3, 6, 6), tmp_path=tmp_path, scale=4.0)
    assert err <= TOLERANCE
    # each FloatFunctional call is located at the FloatFunctional's path
    for name in ("ff_add", "ff_mul", "ff_cat", "ff_add_relu", "ff_add_scalar", "ff_mul_scalar"):
        assert f'loc("{name}")' in text
    assert "activation_post_process" not in text


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
    ("gelu", lambda: WithEncoder(Fn(lambda s, x: F.gelu(s.fc(x)), fc=nn.Linear(4, 4))), (1, 4),
     "unsupported function torch.nn.functional.gelu at 'encoder.gelu'"),
    ("method", lambda: Fn(lambda s, x: x.exp()), (1, 4),
     "unsupported tensor method Tensor.exp at 'exp'"),
    ("indexing", lambda: Fn(lambda s, x: x[:, 0]), (2, 4),
     "tensor indexing / slicing (x[...]) is not supported at 'getitem'"),
    ("integer_tensor", lambda: Fn(lambda s, x: x.argmax(1)), (2, 4),
     "only float32 tensors are supported, got torch.int64 at 'argmax'"),
    ("divisor_override", lambda: nn.AvgPool2d(2, divisor_override=3), (1, 2, 4, 4),
     "avg_pool2d with divisor_override is not supported at 'AvgPool2d'"),
    ("adaptive_pool_size", lambda: nn.AdaptiveAvgPool2d(3), (1, 2, 4, 4),
     "adaptive_avg_pool2d from 4x4 to 3x3 is not supported (the input size must be a multiple "
     "of the output size) at 'AdaptiveAvgPool2d'"),
    ("padding_mode", lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), (1, 2, 4, 4),
     "Conv2d with padding_mode='reflect' is not supported at 'Conv2d'"),
    ("several", lambda: nn.Sequential(nn.PReLU(), nn.Conv2d(2, 2, 3), nn.ELU(),
                                      Fn(lambda s, x: x.exp())), (1, 2, 4, 4),
     "3 unsupported ops:\n  0: module torch.nn.PReLU\n  2: module torch.nn.ELU\n"
     "  3.exp: tensor method Tensor.exp"),
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
