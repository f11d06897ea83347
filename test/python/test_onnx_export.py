"""qnt.onnx export (``python -m qnt export-onnx``) against ONNX Runtime.

A quantized module (after --qnt-convert) is written as QDQ ONNX; ORT loads
it, fuses every conv into QLinearConv (and the linear into QGemm: checked on
the graph ORT writes after its optimizations) and its outputs must equal
quant-run's on the same module: the exporter writes qnt's rounding where no
fused operator follows and gives the fused convs qnt's multipliers where a
nearby weight scale does (docs/onnx.md, "Export"); on these models the two
engines agree to the integer (deep models at batch 8 stay within 2 steps,
measured in docs/onnx.md, not here; with ONNX Runtime's numerics they are equal, tested
below). The models: PyTorch-quantized resnet18 and mobilenet_v2
(imported QDQ, full-range u8), and a CNN that qnt's own static pipeline
quantized with the x86 preset (7-bit activations: an integer Clip after each
QuantizeLinear), with max pooling, residual adds, depthwise convs, a
hardswish table, concat, average pooling and a linear. FP32 modules: within
the frontend's 1e-5. Errors: unsupported ops listed, unreadable files, no
output written.

Needs python3-onnx and onnxruntime-node (scripts/ort-setup.sh): without ORT
these tests fail, they never skip.
"""

import collections
import subprocess
import sys

import onnx

from frontend_util import REPO_ROOT, TOLERANCE, np, pytest, rel_err, run_tool, torch, torchvision
from test_onnx_import import PYTHON, ort, pytorch_qdq  # noqa: F401 (ort: a fixture)
from test_static_attention import ours_int8
import qnt
import qnt.data as qdata

from qnt.onnx import OnnxExportError, export_onnx, import_onnx
from qnt.onnx.exporter import ort_matching_scales, ort_multipliers, qnt_multipliers

sys.path.insert(0, str(REPO_ROOT / "bench"))


def quant_run(mlir, x, tmp_path, name="input"):
    np.savez(tmp_path / "in.npz", **{name: x})
    run_tool("quant-run", mlir, "-i", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--quiet")
    out = np.load(tmp_path / "out.npz")
    return out[out.files[0]]


def ort_run(ort, path, x, tmp_path):
    """ORT's first output and the op types of the graph it ran."""
    optimized = tmp_path / "ort-optimized.onnx"
    got = ort.outputs(path, [x], optimized=optimized)[0]
    return got, collections.Counter(n.op_type for n in onnx.load(str(optimized)).graph.node)


def assert_same_integers(ours, theirs, int8_mlir):
    """Equal outputs (the output's dequantize of equal integers), with
    the number of steps in the message when not."""
    step = np.diff(np.unique(ours)).min()
    steps = np.abs(ours - theirs).max() / step
    assert np.array_equal(ours, theirs), f"{steps:.2f} steps apart ({int8_mlir})"


def count(mlir, op):
    text = mlir.read_text()
    return sum(1 for line in text.splitlines() if f"= {op} " in line)


@pytest.mark.parametrize("numerics", ["onnxruntime", "qnt"])
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_pytorch_quantized_models_on_ort(name, numerics, ort, tmp_path):
    """Imported with either numerics, exported, run by ORT: quant-run's
    integers (ONNX Runtime's numerics: the canonical QDQ form; qnt's: the
    exact form)."""
    path, x = pytorch_qdq(name, tmp_path)
    mlir, int8 = tmp_path / "model.mlir", tmp_path / "int8.mlir"
    import_onnx(path, mlir, numerics=numerics)
    run_tool("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
             "-o", int8)
    exported = tmp_path / "exported.onnx"
    model = export_onnx(int8, exported)
    assert {p.key: p.value for p in model.metadata_props} == {"qnt.numerics": numerics}
    theirs, ops = ort_run(ort, exported, x, tmp_path)
    assert_same_integers(quant_run(int8, x, tmp_path), theirs, int8)
    assert ops["QLinearConv"] == count(int8, "qnt.conv2d") > 0, ops
    assert ops["Conv"] == 0 and ops["QGemm"] == 1, ops
    # ORT's own QLinearAdd only where its arithmetic is the module's.
    assert (ops["QLinearAdd"] > 0) == (numerics == "onnxruntime"), ops


@pytest.mark.parametrize("numerics", ["onnxruntime", "qnt"])
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_round_trip_compiles_to_the_same_integers(name, numerics, ort, tmp_path):
    """import(export(m)) with --form=qdq (QuantizeLinear(S, Z) everywhere)
    compiles to the module's integers: the same outputs, bit for bit (the
    file's qnt.numerics metadata keeps the module's numerics). ORT runs
    that form with its own rounding: a qnt-numerics module then only to a
    high SQNR and the same top-1."""
    path, x = pytorch_qdq(name, tmp_path)
    mlir, int8 = tmp_path / "model.mlir", tmp_path / "int8.mlir"
    import_onnx(path, mlir, numerics=numerics)
    run_tool("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
             "-o", int8)
    qdq, again, again8 = tmp_path / "qdq.onnx", tmp_path / "again.mlir", tmp_path / "again8.mlir"
    export_onnx(int8, qdq, exact=False)
    assert not any(n.op_type == "Mul" for n in onnx.load(str(qdq)).graph.node)
    import_onnx(qdq, again)
    assert again.read_text().startswith(f'module attributes {{qnt.numerics = "{numerics}"}}')
    run_tool("quant-opt", again, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
             "-o", again8)
    ours = quant_run(int8, x, tmp_path)
    assert np.array_equal(ours, quant_run(again8, x, tmp_path))
    theirs, ops = ort_run(ort, qdq, x, tmp_path)
    assert ops["QLinearConv"] == count(int8, "qnt.conv2d"), ops
    sqnr = 10 * np.log10((ours ** 2).sum() / max(((ours - theirs) ** 2).sum(), 1e-30))
    assert sqnr >= 35 and (ours.argmax(1) == theirs.argmax(1)).all(), sqnr


class SmallCnn(torch.nn.Module):
    """Every exporter path of a CNN: conv-bn-relu, max pool, depthwise
    relu6, residual add, hardswish (a table), concat, average pool, linear."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6())
        self.pw = nn.Conv2d(8, 8, 1)
        self.act = nn.Hardswish()
        self.side = nn.Conv2d(8, 4, 1, stride=2)
        self.gap = nn.AvgPool2d(2)
        self.fc = nn.Linear(12 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(self.stem(x))
        y = self.act(self.pw(self.dw(x)) + x)
        z = torch.cat([self.gap(y), self.side(y)], 1)
        return self.fc(torch.flatten(z, 1))


def x86_int8(model, calib, tmp_path):
    """qnt's static pipeline, x86 preset, the types clamped to the 7-bit
    range (--qnt-fold-calibration's clamp-to-quant-range)."""
    fp32, prepared, stats, int8 = (tmp_path / n for n in (
        "model.mlir", "prepared.mlir", "stats.json", "int8.mlir"))
    qnt.export(model, calib[0], fp32)
    qdata.save(tmp_path / "calib.npz", {"x": torch.cat([c[0] for c in calib]).numpy()},
               batch=calib[0][0].shape[0])
    run_tool("quant-opt", fp32, "--qnt-ptq-pipeline=qconfig=x86", "-o", prepared)
    run_tool("quant-run", prepared, "--calibrate", tmp_path / "calib.npz", "--stats-file", stats,
             "--quiet")
    run_tool("quant-opt", prepared, f"--qnt-fold-calibration=stats={stats} clamp-to-quant-range",
             "--qnt-convert", "-o", int8)
    return int8


def test_qnt_static_x86_model_on_ort(ort, tmp_path):
    torch.manual_seed(0)
    model = SmallCnn().eval()
    calib = [(torch.randn(2, 3, 16, 16),) for _ in range(4)]
    int8 = x86_int8(model, calib, tmp_path)
    assert "u8<0:127>" in int8.read_text()  # the 7-bit activations of reduce_range
    exported = tmp_path / "exported.onnx"
    export_onnx(int8, exported)
    x = torch.randn(2, 3, 16, 16).numpy() * 3  # beyond the calibrated range: clamping
    theirs, ops = ort_run(ort, exported, x, tmp_path)
    assert_same_integers(quant_run(int8, x, tmp_path, "x"), theirs, int8)
    assert ops["QLinearConv"] == count(int8, "qnt.conv2d") > 0, ops


class ResidualCnn(torch.nn.Module):
    """The ops whose ORT arithmetic qnt.numerics = "onnxruntime" covers:
    quantize, conv (relu), max pool, residual add, global average pool,
    linear."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1, groups=8))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.relu(self.body(x) + x))


def test_qnt_model_with_onnxruntime_numerics_on_ort(ort, tmp_path):
    """A module qnt quantized, compiled with ONNX Runtime's numerics
    (--qnt-set-numerics): its canonical QDQ export (ORT fuses the add into
    QLinearAdd, the pool into QLinearGlobalAveragePool, the input quantize
    stays ORT's division) gives quant-run's integers on ORT, at a batch of
    8."""
    torch.manual_seed(0)
    model = ResidualCnn().eval()
    int8 = x86_int8(model, [(torch.randn(8, 3, 16, 16),) for _ in range(4)], tmp_path)
    ort8 = tmp_path / "ort8.mlir"
    run_tool("quant-opt", int8, "--qnt-set-numerics=numerics=onnxruntime", "-o", ort8)
    exported = tmp_path / "exported.onnx"
    model = export_onnx(ort8, exported)
    assert not any("inv_scale" in i.name for i in model.graph.initializer)  # canonical form
    x = torch.randn(8, 3, 16, 16).numpy() * 3
    theirs, ops = ort_run(ort, exported, x, tmp_path)
    assert ops["QLinearAdd"] == 1 and ops["QLinearConv"] == count(ort8, "qnt.conv2d"), ops
    assert ort8.read_text().startswith('module attributes {qnt.numerics = "onnxruntime"}')
    assert_same_integers(quant_run(ort8, x, tmp_path, "x"), theirs, ort8)


def test_quantize_static_for_onnxruntime(ort, tmp_path):
    """qnt.quantize_static(numerics="onnxruntime"): the compiled model's
    outputs are ORT's on the exported module."""
    torch.manual_seed(0)
    model = ResidualCnn().eval()
    x = torch.randn(2, 3, 16, 16)
    calib = [torch.randn(2, 3, 16, 16) for _ in range(4)]
    compiled = qnt.quantize_static(model, (x,), calib, numerics="onnxruntime",
                                   out_dir=tmp_path / "model")
    assert compiled.manifest["numerics"] == "onnxruntime"
    int8 = tmp_path / "model" / "model.int8.mlir"
    export_onnx(int8, tmp_path / "model.onnx")
    theirs, _ = ort_run(ort, tmp_path / "model.onnx", x.numpy(), tmp_path)
    assert_same_integers(compiled(x.numpy()), theirs, int8)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_fp32_models_on_ort(name, ort, tmp_path):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(1, 3, 64, 64)
    qnt.export(model, (x,), tmp_path / "model.mlir")
    export_onnx(tmp_path / "model.mlir", tmp_path / "model.onnx")
    theirs, _ = ort_run(ort, tmp_path / "model.onnx", x.numpy(), tmp_path)
    ours = quant_run(tmp_path / "model.mlir", x.numpy(), tmp_path, "x")
    assert rel_err(ours, theirs) <= TOLERANCE


def test_weight_scales_give_qnt_multipliers_in_ort():
    """ORT's multiplier f32(f32(S_x * S_w) / S_y) differs from qnt's by an
    ulp on some channels; the exporter moves those weight scales by a few
    ulps so that ORT computes qnt's, where one exists."""
    rng = np.random.default_rng(0)
    w = (rng.uniform(2e-4, 4e-3, 2000)).astype(np.float32)
    x_scale, y_scale = np.float32(0.0213), np.float32(0.0371)
    want = qnt_multipliers(x_scale, w, y_scale)
    before = ort_multipliers(x_scale, w, y_scale) == want
    adjusted = ort_matching_scales(x_scale, w, y_scale)
    after = ort_multipliers(x_scale, adjusted, y_scale) == want
    assert before.mean() < 0.95 and after.mean() > before.mean() + 0.05, (before.mean(),
                                                                          after.mean())
    assert np.array_equal(adjusted[before], w[before])  # agreeing channels kept
    ulps = np.abs(adjusted.view(np.int32).astype(np.int64) - w.view(np.int32))
    assert ulps.max() <= 8 and np.array_equal(adjusted[~after], w[~after])


def _cli(*args):
    return subprocess.run([PYTHON, "-m", "qnt", "export-onnx", *map(str, args)],
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO_ROOT / "python"), "PATH": "/usr/bin"})


def test_cli_writes_the_model(tmp_path):
    torch.manual_seed(0)
    model = SmallCnn().eval()
    int8, _ = ours_int8(model, [(torch.randn(2, 3, 16, 16),)], "x86", tmp_path)
    assert "qnt.table" in int8.read_text()
    r = _cli(int8, "-o", tmp_path / "m.onnx")
    assert r.returncode == 0, r.stderr
    assert "QuantizeLinear" in r.stderr and (tmp_path / "m.onnx").exists()
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)


def test_unsupported_ops_are_listed_together(tmp_path):
    src = tmp_path / "m.mlir"
    src.write_text("""
func.func @main(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %a = qnt.observe %x {id = "a", kind = #qnt.observer<minmax>,
      qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
      : tensor<1x4xf32> loc("obs_a")
  %b = qnt.observe %a {id = "b", kind = #qnt.observer<minmax>,
      qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255, scheme = affine>}
      : tensor<1x4xf32> loc("obs_b")
  return %b : tensor<1x4xf32>
}
""")
    with pytest.raises(OnnxExportError) as e:
        export_onnx(src, tmp_path / "m.onnx")
    text = str(e.value)
    assert "2 op(s)" in text and "obs_a" in text and "obs_b" in text and "qnt.observe" in text
    r = _cli(src, "-o", tmp_path / "m.onnx")
    assert r.returncode == 1 and "qnt: error:" in r.stderr and "obs_b" in r.stderr
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("content", ["", "func.func @f(", "not mlir at all"])
def test_unreadable_modules(content, tmp_path):
    src = tmp_path / "bad.mlir"
    src.write_text(content)
    r = _cli(src, "-o", tmp_path / "m.onnx")
    assert r.returncode == 1 and "qnt: error:" in r.stderr
    assert not (tmp_path / "m.onnx").exists()
    r = _cli(tmp_path / "missing.mlir", "-o", tmp_path / "m.onnx")
    assert r.returncode == 1 and "no such file" in r.stderr
