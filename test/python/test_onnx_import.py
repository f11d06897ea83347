"""qnt.onnx (``python -m qnt import-onnx``) against ONNX Runtime, the oracle.

FP32: torchvision models and a transformer encoder, exported by
torch.onnx.export (opsets 13 and 17), imported, run by quant-run and held to
the frontend's FP32 parity (1e-5 of the largest output) against ORT on the
same file.

QDQ: models written with the onnx helper API (per-tensor and per-channel
int8 weights, uint8 activations, an int32 bias, as ORT's quantize_static
writes them) and PyTorch-quantized models exported by torch.onnx.export:
imported with the file's scales, compiled by --qnt-fuse --qnt-fold-fake-quant
--qnt-convert and compared with ORT's INT8 run of the same file in output
steps (the scale of the output's last DequantizeLinear).

Errors: unsupported nodes (all listed), malformed and truncated files,
missing external data, dynamic dimensions without --input-shape; no output
file is written then.

Needs python3-onnx and onnxruntime-node (scripts/ort-setup.sh, which
scripts/test.sh runs): without ORT these tests fail, they never skip.
"""

import subprocess
import warnings

import onnx
import onnx.utils
from onnx import TensorProto, helper, numpy_helper

import sys

from frontend_util import REPO_ROOT, TOLERANCE, np, pytest, rel_err, run_tool, torch, torchvision

sys.path.insert(0, str(REPO_ROOT / "bench"))
from ort import Ort  # noqa: E402

from qnt.onnx import OnnxImportError, import_onnx  # noqa: E402

PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def ort():
    o = Ort(True)
    if o.status:
        pytest.fail(f"ONNX Runtime {o.status}", pytrace=False)
    return o


def torch_export(model, inputs, path, opset=13, names=("input",)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), inputs, str(path), opset_version=opset,
                          input_names=list(names), output_names=["output"])
    return path


def run_imported(onnx_path, inputs, tmp_path, int8=False, names=("input",)):
    """import-onnx, then (QDQ) fold the fake quants and convert, then
    quant-run: the first output."""
    mlir = tmp_path / "model.mlir"
    import_onnx(onnx_path, mlir)
    if int8:
        run_tool("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
                 "-o", tmp_path / "int8.mlir")
        mlir = tmp_path / "int8.mlir"
    np.savez(tmp_path / "in.npz", **dict(zip(names, inputs)))
    run_tool("quant-run", mlir, "-i", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--quiet")
    return np.load(tmp_path / "out.npz")["output"]


# ---------------------------------------------------------------------------
# FP32
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,opset", [("resnet18", 13), ("mobilenet_v2", 17)])
def test_torchvision_fp32_vs_ort(name, opset, ort, tmp_path):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)()
    for m in model.modules():  # realistic statistics: random running mean / var
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 96, 96)
    path = torch_export(model, (x,), tmp_path / "m.onnx", opset)
    want = ort.outputs(path, [x.numpy()])[0]
    got = run_imported(path, [x.numpy()], tmp_path)
    assert got.shape == want.shape
    assert rel_err(got, want) <= TOLERANCE


@pytest.mark.parametrize("opset,activation", [(13, "gelu"), (17, "relu")])
def test_encoder_fp32_vs_ort(opset, activation, ort, tmp_path):
    """An nn.TransformerEncoder (opset 13: layer norm decomposed, GELU as
    erf, which the importer fuses back into one GELU)."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True,
                                             activation=activation)
    model = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    x = torch.randn(2, 16, 64)
    path = torch_export(model, (x,), tmp_path / "enc.onnx", opset)
    text = (tmp_path / "enc.mlir")
    import_onnx(path, text)
    if activation == "gelu":
        assert "erf" not in text.read_text().lower().replace("\"tosa.erf\"", "")
    want = ort.outputs(path, [x.numpy()])[0]
    got = run_imported(path, [x.numpy()], tmp_path)
    assert rel_err(got, want) <= TOLERANCE


def test_locations_are_onnx_node_names(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    path = torch_export(model, (torch.randn(1, 3, 8, 8),), tmp_path / "m.onnx")
    mlir = tmp_path / "m.mlir"
    import_onnx(path, mlir)
    names = {n.name for n in onnx.load(str(path)).graph.node}
    text = mlir.read_text()
    assert names and all(f'loc("{n}")' in text for n in names)


# ---------------------------------------------------------------------------
# QDQ
# ---------------------------------------------------------------------------

def _q(name, x, scale, zp, out, axis=None):
    kw = {} if axis is None else {"axis": axis}
    return helper.make_node(name, [x, scale, zp], [out], name=out.replace("_out", ""), **kw)


def qdq_model(per_channel, seed=0):
    """input -> Q/DQ (u8) -> Conv (s8 weights, int32 bias) -> Relu -> Q/DQ ->
    MaxPool -> Q/DQ -> Add (the pooled value twice... through a second conv)
    -> Q/DQ -> GlobalAveragePool -> Q/DQ -> Flatten -> Gemm -> Q/DQ."""
    rng = np.random.default_rng(seed)
    inits = []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def act(name, scale, zp):
        init(name + "_s", np.float32(scale))
        init(name + "_z", np.uint8(zp))
        return name + "_s", name + "_z"

    def weight(name, shape):
        w = rng.integers(-127, 128, size=shape).astype(np.int8)
        s = (rng.uniform(0.002, 0.02, size=shape[0]) if per_channel
             else np.float32(0.01)).astype(np.float32)
        init(name, w)
        init(name + "_s", s)
        init(name + "_z", np.zeros(shape[0], np.int8) if per_channel else np.int8(0))
        return s

    nodes = []

    def qdq(x, name, scale, zp):
        s, z = act(name, scale, zp)
        nodes.append(_q("QuantizeLinear", x, s, z, name + "_q_out"))
        nodes.append(_q("DequantizeLinear", name + "_q_out", s, z, name + "_out"))
        return name + "_out"

    def conv(x, name, cin, cout, x_scale):
        ws = weight(name + "_w", (cout, cin, 3, 3))
        axis = 0 if per_channel else None
        nodes.append(_q("DequantizeLinear", name + "_w", name + "_w_s", name + "_w_z",
                        name + "_wdq_out", axis))
        bias = rng.integers(-2000, 2000, size=cout).astype(np.int32)
        init(name + "_b", bias)
        init(name + "_b_s", (np.float32(x_scale) * ws).astype(np.float32).reshape(-1)
             if per_channel else np.float32(x_scale) * np.float32(ws))
        init(name + "_b_z", np.zeros(cout, np.int32) if per_channel else np.int32(0))
        nodes.append(_q("DequantizeLinear", name + "_b", name + "_b_s", name + "_b_z",
                        name + "_bdq_out", axis))
        nodes.append(helper.make_node("Conv", [x, name + "_wdq_out", name + "_bdq_out"],
                                      [name + "_y"], name=name, pads=[1, 1, 1, 1]))
        return name + "_y"

    x = qdq("input", "in", 0.02, 128)
    y = conv(x, "conv1", 3, 8, 0.02)
    nodes.append(helper.make_node("Relu", [y], ["relu1_y"], name="relu1"))
    y = qdq("relu1_y", "a1", 0.05, 0)
    nodes.append(helper.make_node("MaxPool", [y], ["pool_y"], name="pool", kernel_shape=[2, 2],
                                  strides=[2, 2]))
    p = qdq("pool_y", "a2", 0.05, 0)
    y = conv(p, "conv2", 8, 8, 0.05)
    y = qdq(y, "a3", 0.08, 120)
    nodes.append(helper.make_node("Add", [p, y], ["add_y"], name="add"))
    y = qdq("add_y", "a4", 0.1, 100)
    nodes.append(helper.make_node("GlobalAveragePool", [y], ["gap_y"], name="gap"))
    y = qdq("gap_y", "a5", 0.05, 90)
    nodes.append(helper.make_node("Flatten", [y], ["flat_y"], name="flatten"))
    ws = weight("fc_w", (10, 8))
    nodes.append(_q("DequantizeLinear", "fc_w", "fc_w_s", "fc_w_z", "fc_wdq_out",
                    0 if per_channel else None))
    init("fc_b", rng.normal(size=10).astype(np.float32))
    nodes.append(helper.make_node("Gemm", ["flat_y", "fc_wdq_out", "fc_b"], ["fc_y"],
                                  name="fc", transB=1))
    qdq("fc_y", "output_qdq", 0.04, 128)
    nodes.append(helper.make_node("Identity", ["output_qdq_out"], ["output"], name="out"))
    del ws
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_helper_model_vs_ort(per_channel, ort, tmp_path):
    path = tmp_path / "qdq.onnx"
    onnx.save(qdq_model(per_channel), str(path))
    x = np.random.default_rng(1).uniform(-2.5, 2.5, size=(2, 3, 16, 16)).astype(np.float32)
    want = ort.outputs(path, [x])[0]
    got = run_imported(path, [x], tmp_path, int8=True)
    step = 0.04
    assert np.abs(got - want).max() <= step * 1.0001
    # The integers are ORT's: both on the output's grid.
    assert np.allclose((got / step) - np.round(got / step), 0, atol=1e-3)


def test_qdq_ir_carries_the_file_scales(tmp_path):
    path = tmp_path / "qdq.onnx"
    onnx.save(qdq_model(True), str(path))
    mlir = tmp_path / "m.mlir"
    import_onnx(path, mlir)
    text = mlir.read_text()
    assert text.count('"qnt.fake_quant"') >= 8
    assert "scale = array<f32: 0.0199999995" in text and "zero_point = array<i64: 128>" in text
    run_tool("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "-o", tmp_path / "q.mlir")
    folded = (tmp_path / "q.mlir").read_text()
    assert "quant.qcast" in folded and "!quant.uniform<u8:f32, 0.019999999552965164:128>" in folded
    assert "qnt.fake_quant" not in folded


def pytorch_qdq(name, tmp):
    """torchvision's quantizable NAME (random weights), eager PTQ with the
    onednn qconfig (per-channel weights), exported by torch.onnx: (path, x)."""
    torch.manual_seed(0)
    torch.backends.quantized.engine = "onednn"
    model = getattr(torchvision.models.quantization, name)(quantize=False).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model.fuse_model()
    model.qconfig = torch.ao.quantization.get_default_qconfig("onednn")
    torch.ao.quantization.prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(2, 3, 64, 64))
    torch.ao.quantization.convert(model, inplace=True)
    x = torch.randn(2, 3, 64, 64)
    return torch_export(model, (x,), tmp / f"{name}.int8.onnx"), x.numpy()


@pytest.fixture(scope="module")
def pytorch_qdq_resnet18(tmp_path_factory):
    return pytorch_qdq("resnet18", tmp_path_factory.mktemp("r18"))


def test_pytorch_qdq_first_block_within_one_step(pytorch_qdq_resnet18, ort, tmp_path):
    """The stem (quantize, conv-relu, max pool) of PyTorch's quantized
    resnet18: every output within one step of ORT's."""
    path, x = pytorch_qdq_resnet18
    graph = onnx.load(str(path)).graph
    cut_at = next(n.output[0] for n in graph.node
                  if n.op_type == "DequantizeLinear" and n.name.startswith("/layer1/0/conv1/"))
    cut = tmp_path / "stem.onnx"
    onnx.utils.extract_model(str(path), str(cut), ["input"], [cut_at])
    want = ort.outputs(cut, [x])[0]
    mlir = tmp_path / "stem.mlir"
    import_onnx(cut, mlir)
    run_tool("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
             "-o", tmp_path / "int8.mlir")
    np.savez(tmp_path / "in.npz", input=x)
    run_tool("quant-run", tmp_path / "int8.mlir", "-i", tmp_path / "in.npz", "-o",
             tmp_path / "out.npz", "--quiet")
    got = np.load(tmp_path / "out.npz")[np.load(tmp_path / "out.npz").files[0]]
    step = np.diff(np.unique(want)).min()
    assert np.abs(got - want).max() <= step * 1.0001
    assert (np.abs(got - want) > step / 2).mean() < 1e-3


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_pytorch_qdq_model_vs_ort(name, pytorch_qdq_resnet18, ort, tmp_path):
    """The whole model: one-step differences of rounding (docs/onnx.md,
    "Parity with ONNX Runtime") compound over the layers as they do between
    ORT and PyTorch's own INT8 model; held to a high SQNR and top-1
    agreement. Every conv is INT8: the IR is quantized from the input's
    quantize to the output's dequantize (a residual's two DequantizeLinear
    of one QuantizeLinear are one value)."""
    path, x = (pytorch_qdq_resnet18 if name == "resnet18"
               else pytorch_qdq(name, tmp_path))
    want = ort.outputs(path, [x])[0]
    got = run_imported(path, [x], tmp_path, int8=True)
    sqnr = 10 * np.log10((want ** 2).sum() / ((got - want) ** 2).sum())
    assert sqnr >= 30, sqnr
    assert (got.argmax(1) == want.argmax(1)).all()
    text = (tmp_path / "int8.mlir").read_text()
    float_convs = [line for line in text.splitlines()
                   if "qnt.conv2d" in line and "!quant.uniform" not in line]
    assert not float_convs, float_convs[:2]


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([PYTHON, "-m", "qnt", "import-onnx", *map(str, args)],
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO_ROOT / "python"), "PATH": "/usr/bin:/bin"})


def test_unsupported_nodes_are_listed_together(tmp_path):
    nodes = [helper.make_node("Celu", ["x"], ["a"], name="celu_1"),
             helper.make_node("Relu", ["a"], ["b"], name="relu_1"),
             helper.make_node("Einsum", ["b", "b"], ["y"], name="einsum_1", equation="ij,ij->ij")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, 3])])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    r = _cli(path, "-o", tmp_path / "u.mlir")
    assert r.returncode == 1
    assert "2 unsupported nodes" in r.stderr
    assert "'celu_1': Celu (ai.onnx opset 13)" in r.stderr
    assert "'einsum_1': Einsum (ai.onnx opset 13)" in r.stderr
    assert not (tmp_path / "u.mlir").exists()


def _small_model(tmp_path, dims=(1, 3), external=False):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dims[0], 4])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "small.onnx"
    if external:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="small.data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def test_external_data_is_read_and_missing_data_is_an_error(tmp_path, ort):
    path = _small_model(tmp_path, external=True)
    x = np.ones((1, 3), np.float32)
    assert rel_err(run_imported(path, [x], tmp_path, names=("x",)),
                   ort.outputs(path, [x])[0]) <= TOLERANCE
    out = tmp_path / "ext.mlir"
    assert _cli(path, "-o", out).returncode == 0 and out.exists()
    data = tmp_path / "small.data"
    data.write_bytes(data.read_bytes()[:20])
    r = _cli(path, "-o", tmp_path / "t.mlir")
    assert r.returncode == 1 and "truncated" in r.stderr and not (tmp_path / "t.mlir").exists()
    data.unlink()
    r = _cli(path, "-o", tmp_path / "m.mlir")
    assert r.returncode == 1 and "small.data" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "m.mlir").exists()


@pytest.mark.parametrize("content", [b"", b"\x00garbage\xff" * 10, b"not an onnx file at all"])
def test_malformed_files(content, tmp_path):
    path = _small_model(tmp_path)
    if content:
        path.write_bytes(content)
    else:
        path.write_bytes(path.read_bytes()[:40])  # truncated
    r = _cli(path, "-o", tmp_path / "m.mlir")
    assert r.returncode == 1 and "small.onnx" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "m.mlir").exists()


def test_dynamic_dimensions_need_input_shape(tmp_path):
    path = _small_model(tmp_path, dims=("batch", 3))
    r = _cli(path, "-o", tmp_path / "m.mlir")
    assert r.returncode == 1 and "--input-shape x=N,3" in r.stderr
    assert not (tmp_path / "m.mlir").exists()
    r = _cli(path, "-o", tmp_path / "m.mlir", "--input-shape", "x=4,3")
    assert r.returncode == 0, r.stderr
    assert "tensor<4x3xf32>" in (tmp_path / "m.mlir").read_text()
    r = _cli(path, "-o", tmp_path / "m.mlir", "--input-shape", "x=4,5")
    assert r.returncode == 1 and "does not fit" in r.stderr


def test_api_error_type(tmp_path):
    with pytest.raises(OnnxImportError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx", tmp_path / "m.mlir")
