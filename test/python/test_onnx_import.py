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

Operator forms: QLinearConv, QLinearMatMul and com.microsoft QLinear ops
written with the onnx helper API, against ORT in output steps as QDQ;
ORT's dynamic form (DynamicQuantizeLinear -> MatMulInteger) imported with
the file's weights and compiled by qnt's dynamic pipeline, equal to ORT
under ONNX Runtime's numerics (with ``numerics="qnt"``: float layers
quantized again, within the tolerance the weight requantization explains);
ConvInteger as a float conv, within ORT's input rounding.

Errors: unsupported nodes (all listed, com.microsoft ones with their
domain), misused operator forms, malformed and truncated files, missing
external data, dynamic dimensions without --input-shape; no output file is
written then.

Needs python3-onnx and onnxruntime-node (scripts/ort-setup.sh, which
scripts/test.sh runs): without ORT these tests fail, they never skip.
"""

import re
import subprocess
import warnings

import onnx
import onnx.utils
from onnx import TensorProto, helper, numpy_helper

import sys

from frontend_util import REPO_ROOT, TOLERANCE, np, pytest, rel_err, run_tool, torch, torchvision

sys.path.insert(0, str(REPO_ROOT / "bench"))
import onnx_dynamic  # noqa: E402
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


def test_swin_fp32_vs_ort(ort, tmp_path):
    """torchvision's Swin-T (64x64: windows padded): its attention masks
    (ScatterND and Mod of constants, folded), the strided Slices of its
    patch merging and a Dropout of ratio 0 in training mode, the identity."""
    torch.manual_seed(0)
    model = torchvision.models.swin_t()
    x = torch.randn(1, 3, 64, 64)
    path = torch_export(model, (x,), tmp_path / "swin.onnx", 17)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"ScatterND", "Mod", "Dropout"} <= ops, ops
    want = ort.outputs(path, [x.numpy()])[0]
    got = run_imported(path, [x.numpy()], tmp_path)
    assert rel_err(got, want) <= TOLERANCE


def _one_node_model(tmp_path, op, inputs, output_shape, initializers=(), **attrs):
    """A model of one node ``op`` on float inputs ``inputs`` ({name: shape})
    and constant ``initializers`` (arrays, named c0, c1, ...)."""
    names = list(inputs) + [f"c{i}" for i in range(len(initializers))]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["output"], name="n", **attrs)], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(output_shape))],
        [numpy_helper.from_array(np.asarray(v), f"c{i}") for i, v in enumerate(initializers)])
    path = tmp_path / f"{op}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("equation,a_shape,b_shape,out_shape", [
    ("bhid,bhjd->bhij", (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 5, 6)),  # q k^T
    ("B G H I J, B G H J D -> B G H I D", (1, 2, 3, 5, 6), (1, 2, 3, 6, 4), (1, 2, 3, 5, 4)),
    ("ki,kj->ij", (4, 5), (4, 6), (5, 6)),
    ("zki,zjk->zij", (2, 4, 5), (2, 6, 4), (2, 5, 6)),
    ("bsd,hd->bsh", (2, 5, 4), (6, 4), (2, 5, 6)),  # a projection (no batch labels)
])
def test_einsum_batched_matmul_vs_ort(equation, a_shape, b_shape, out_shape, ort, tmp_path):
    """Einsum of a batched matrix product (MaxViT's attention writes the
    second form): MatMul with the transposes its labels ask for."""
    path = _one_node_model(tmp_path, "Einsum", {"a": a_shape, "b": b_shape}, out_shape,
                           equation=equation)
    rng = np.random.RandomState(0)
    a, b = rng.randn(*a_shape).astype(np.float32), rng.randn(*b_shape).astype(np.float32)
    want = ort.outputs(path, [a, b])[0]
    got = run_imported(path, [a, b], tmp_path, names=("a", "b"))
    assert got.shape == want.shape and rel_err(got, want) <= TOLERANCE


def test_einsum_projection_by_a_constant_is_a_linear(ort, tmp_path):
    """"bsd,dh->bsh" with a constant weight: an nn.Linear, which
    --qnt-fuse lifts to qnt.linear (so it quantizes)."""
    w = np.random.RandomState(1).randn(4, 6).astype(np.float32)
    path = _one_node_model(tmp_path, "Einsum", {"a": (2, 5, 4)}, (2, 5, 6),
                           initializers=[w], equation="bsd,dh->bsh")
    x = np.random.RandomState(0).randn(2, 5, 4).astype(np.float32)
    want = ort.outputs(path, [x])[0]
    got = run_imported(path, [x], tmp_path, names=("a",))
    assert rel_err(got, want) <= TOLERANCE
    run_tool("quant-opt", tmp_path / "model.mlir", "--qnt-fuse", "-o", tmp_path / "fused.mlir")
    assert "qnt.linear" in (tmp_path / "fused.mlir").read_text()


@pytest.mark.parametrize("equation", ["ij,jk,kl->il", "ii->i", "bij,bjk->bik,", "ij,jk->ik...",
                                      "bij,cjk->bik", "ij,ij->ij", "bij,jb->bib",
                                      "a->b->c"])
def test_other_einsums_are_unsupported(equation, tmp_path):
    path = _one_node_model(tmp_path, "Einsum", {"a": (2, 2), "b": (2, 2)}, (2, 2),
                           equation=equation)
    with pytest.raises(OnnxImportError, match="Einsum .*batched matrix products are supported"):
        import_onnx(path, tmp_path / "m.mlir")
    assert not (tmp_path / "m.mlir").exists()


def test_strided_slice_vs_ort(ort, tmp_path):
    """Slice with steps 2 and 3 of a computed tensor (Swin's patch merging
    takes x[..., 0::2, 1::2, :]), an odd size (the last window padded); a
    negative step is an error."""
    x = np.random.RandomState(0).randn(2, 7, 9, 3).astype(np.float32)
    path = _one_node_model(tmp_path, "Slice", {"x": x.shape}, (2, 4, 3, 3),
                           initializers=[np.array([0, 1], np.int64), np.array([7, 9], np.int64),
                                         np.array([1, 2], np.int64), np.array([2, 3], np.int64)])
    want = ort.outputs(path, [x])[0]
    np.testing.assert_array_equal(want, x[:, 0::2, 1::3, :])
    got = run_imported(path, [x], tmp_path, names=("x",))
    np.testing.assert_array_equal(got, want)
    path = _one_node_model(tmp_path, "Slice", {"x": x.shape}, (2, 7, 9, 3),
                           initializers=[np.array([-1], np.int64), np.array([-10], np.int64),
                                         np.array([1], np.int64), np.array([-1], np.int64)])
    with pytest.raises(OnnxImportError, match="Slice with a negative step"):
        import_onnx(path, tmp_path / "neg.mlir")


def test_constant_mod_and_scatter_nd_fold(ort, tmp_path):
    """Mod (the divisor's sign, and with fmod the dividend's) and ScatterND
    of constants fold into constants equal to ORT's; a Mod of a computed
    tensor is an error."""
    a = np.array([-7, -3, 0, 5, 9], np.int64)
    b = np.array([3, -4, 2, 3, -2], np.int64)
    data = np.full((4, 3), -1.0, np.float32)
    indices = np.array([[1], [3]], np.int64)
    updates = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [helper.make_node("Mod", ["a", "b"], ["m0"], fmod=0),
             helper.make_node("Mod", ["a", "b"], ["m1"], fmod=1),
             helper.make_node("Cast", ["m0"], ["m0f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["m1"], ["m1f"], to=TensorProto.FLOAT),
             helper.make_node("ScatterND", ["data", "indices", "updates"], ["s"]),
             helper.make_node("Reshape", ["s", "flat"], ["sf"]),
             helper.make_node("Add", ["x", "m0f"], ["x0"]),
             helper.make_node("Add", ["x", "m1f"], ["x1"]),
             helper.make_node("Concat", ["x0", "x1", "sf"], ["output"], axis=0)]
    consts = {"a": a, "b": b, "data": data, "indices": indices, "updates": updates,
              "flat": np.array([12], np.int64)}
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [22])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    path = tmp_path / "fold.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.arange(5, dtype=np.float32) * 10
    scattered = data.copy()
    scattered[[1, 3]] = updates
    expected = np.concatenate([x + np.mod(a, b), x + np.fmod(a, b), scattered.reshape(-1)])
    want = ort.outputs(path, [x])[0]
    np.testing.assert_array_equal(want, expected)
    got = run_imported(path, [x], tmp_path, names=("x",))
    np.testing.assert_array_equal(got, want)
    path = _one_node_model(tmp_path, "Mod", {"x": (3,)}, (3,),
                           initializers=[np.array([2.0, 2.0, 2.0], np.float32)], fmod=1)
    with pytest.raises(OnnxImportError, match="Mod's A must be a constant"):
        import_onnx(path, tmp_path / "m.mlir")
    assert not (tmp_path / "m.mlir").exists()


def test_dropout_mask_and_training_mode(ort, tmp_path):
    """Dropout of ratio 0 in training mode is the identity, its mask all
    ones (used here); of another ratio in training mode it is an error, as
    are a float Mod with fmod 0 (ONNX asks for fmod 1) and a ScatterND index
    out of range."""
    def model(ratio, path):
        nodes = [helper.make_node("Dropout", ["x", "ratio", "training"], ["y", "mask"]),
                 helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),
                 helper.make_node("Add", ["y", "maskf"], ["output"])]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 3])],
            [numpy_helper.from_array(np.array(ratio, np.float32), "ratio"),
             numpy_helper.from_array(np.array(True), "training")])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                  str(path))
        return path
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = model(0.0, tmp_path / "d0.onnx")
    want = ort.outputs(path, [x])[0]
    np.testing.assert_array_equal(want, x + 1)
    np.testing.assert_array_equal(run_imported(path, [x], tmp_path, names=("x",)), want)
    with pytest.raises(OnnxImportError, match="Dropout in training mode"):
        import_onnx(model(0.5, tmp_path / "d5.onnx"), tmp_path / "d5.mlir")
    path = _one_node_model(tmp_path, "Mod", {}, (2,), initializers=[
        np.array([3.0, -3.0], np.float32), np.array([2.0, 2.0], np.float32)])
    with pytest.raises(OnnxImportError, match="Mod of floats with fmod 0"):
        import_onnx(path, tmp_path / "mod.mlir")
    path = _one_node_model(tmp_path, "ScatterND", {}, (3, 4), initializers=[
        np.zeros((3, 4), np.float32), np.array([[5]], np.int64), np.ones((1, 4), np.float32)])
    with pytest.raises(OnnxImportError, match=r"ScatterND index \[5\] out of range"):
        import_onnx(path, tmp_path / "scatter.mlir")
    assert not any((tmp_path / f).exists() for f in ("d5.mlir", "mod.mlir", "scatter.mlir"))


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
    # ONNX Runtime's numerics (the module's qnt.numerics): ORT's integers.
    np.testing.assert_array_equal(got, want)


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
    resnet18: ORT's integers."""
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
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_pytorch_qdq_model_vs_ort(name, pytorch_qdq_resnet18, ort, tmp_path):
    """The whole model, with ONNX Runtime's numerics (the default for a
    quantized file): ORT's integers, every output. Every conv is INT8: the
    IR is quantized from the input's quantize to the output's dequantize (a
    residual's two DequantizeLinear of one QuantizeLinear are one value)."""
    path, x = (pytorch_qdq_resnet18 if name == "resnet18"
               else pytorch_qdq(name, tmp_path))
    want = ort.outputs(path, [x])[0]
    got = run_imported(path, [x], tmp_path, int8=True)
    np.testing.assert_array_equal(got, want)
    text = (tmp_path / "int8.mlir").read_text()
    assert text.startswith('module attributes {qnt.numerics = "onnxruntime"}')
    float_convs = [line for line in text.splitlines()
                   if "qnt.conv2d" in line and "!quant.uniform" not in line]
    assert not float_convs, float_convs[:2]


def test_pytorch_qdq_model_with_qnt_numerics(pytorch_qdq_resnet18, ort, tmp_path):
    """numerics="qnt": qnt's own arithmetic (docs/numerics.md) on the file's
    scales; its one-step differences of rounding from ORT's (docs/onnx.md,
    "Parity with ONNX Runtime") compound over the layers as they do between
    ORT and PyTorch's own INT8 model: held to a high SQNR and top-1
    agreement."""
    path, x = pytorch_qdq_resnet18
    want = ort.outputs(path, [x])[0]
    mlir = tmp_path / "model.mlir"
    import_onnx(path, mlir, numerics="qnt")
    assert mlir.read_text().startswith('module attributes {qnt.numerics = "qnt"}')
    run_tool("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
             "-o", tmp_path / "int8.mlir")
    np.savez(tmp_path / "in.npz", input=x)
    run_tool("quant-run", tmp_path / "int8.mlir", "-i", tmp_path / "in.npz", "-o",
             tmp_path / "out.npz", "--quiet")
    got = np.load(tmp_path / "out.npz")["output"]
    sqnr = 10 * np.log10((want ** 2).sum() / ((got - want) ** 2).sum())
    assert sqnr >= 30, sqnr
    assert (got.argmax(1) == want.argmax(1)).all()


def test_numerics_from_metadata_and_errors(tmp_path):
    """A file's qnt.numerics metadata (export_onnx writes it) chooses the
    module's numerics; an explicit argument wins; a bad value is an error
    and writes nothing; a float model gets no attribute."""
    model = qdq_model(False)
    helper.set_model_props(model, {"qnt.numerics": "qnt"})
    path = tmp_path / "meta.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "m.mlir"
    import_onnx(path, out)
    assert out.read_text().startswith('module attributes {qnt.numerics = "qnt"}')
    import_onnx(path, out, numerics="onnxruntime")
    assert out.read_text().startswith('module attributes {qnt.numerics = "onnxruntime"}')
    helper.set_model_props(model, {"qnt.numerics": "fast"})
    onnx.save(model, str(path))
    bad = tmp_path / "bad.mlir"
    with pytest.raises(OnnxImportError, match="metadata qnt.numerics = 'fast'"):
        import_onnx(path, bad)
    with pytest.raises(ValueError, match="numerics must be one of onnxruntime, qnt"):
        import_onnx(path, bad, numerics="exact")
    assert not bad.exists()
    result = _cli(path, "--numerics", "exact", "-o", bad)
    assert result.returncode != 0 and "invalid choice: 'exact'" in result.stderr
    assert not bad.exists()


# ---------------------------------------------------------------------------
# Operator forms
# ---------------------------------------------------------------------------

MICROSOFT = helper.make_operatorsetid("com.microsoft", 1)


class GraphMaker:
    """Initializers and nodes of a model written with the onnx helper API."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.inits, self.nodes = [], []

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def qparams(self, name, scale, zp):
        """(scale, zero point) initializers of a u8 activation."""
        return self.init(name + "_s", np.float32(scale)), self.init(name + "_z", np.uint8(zp))

    def weight(self, name, shape, scales):
        """(w, scale, zero point): random s8 integers, symmetric."""
        self.init(name, self.rng.integers(-127, 128, size=shape).astype(np.int8))
        scales = np.asarray(scales, np.float32)
        self.init(name + "_s", scales)
        self.init(name + "_z", np.zeros(scales.shape, np.int8))
        return name, name + "_s", name + "_z"

    def node(self, op, ins, out, domain=None, name=None, **attrs):
        self.nodes.append(helper.make_node(op, ins, [out], name=name or out, domain=domain,
                                           **attrs))
        return out

    def model(self, in_shape, out_shape, opsets=()):
        graph = helper.make_graph(
            self.nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), *opsets])
        onnx.checker.check_model(model)
        return model


def qoperator_model():
    """Quantize (u8) -> QLinearConv (s8 per tensor, int32 bias; output zero
    point 0: a folded relu) -> QLinearConv (s8 per channel, int32 bias) ->
    com.microsoft QLinearAdd of both (a residual) -> MaxPool and Flatten on
    the u8 integers -> QLinearMatMul (s8 per column) -> DequantizeLinear."""
    g = GraphMaker()
    x = g.qparams("in", 0.02, 128)
    a1, a2, a3, out = (g.qparams("a1", 0.05, 0), g.qparams("a2", 0.08, 120),
                       g.qparams("a3", 0.1, 100), g.qparams("out", 0.08, 128))
    g.node("QuantizeLinear", ["input", *x], "in_q")
    for name, (src, src_q), dst_q, cin, per_channel in (
            ("conv1", ("in_q", x), a1, 3, False), ("conv2", ("conv1", a1), a2, 8, True)):
        w = g.weight(name + "_w", (8, cin, 3, 3),
                     g.rng.uniform(0.002, 0.02, size=8) if per_channel else [0.01])
        bias = g.init(name + "_b", g.rng.integers(-2000, 2000, size=8).astype(np.int32))
        g.node("QLinearConv", [src, *src_q, *w, *dst_q, bias], name, pads=[1, 1, 1, 1])
    g.node("QLinearAdd", ["conv1", *a1, "conv2", *a2, *a3], "add", domain="com.microsoft")
    g.node("MaxPool", ["add"], "pool", kernel_shape=[2, 2], strides=[2, 2])
    g.node("Flatten", ["pool"], "flatten")
    w = g.weight("fc_w", (128, 10), g.rng.uniform(0.0001, 0.0004, size=10))
    g.node("QLinearMatMul", ["flatten", *a3, *w, *out], "fc")
    g.node("DequantizeLinear", ["fc", *out], "output")
    return g.model([2, 3, 8, 8], [2, 10], [MICROSOFT])


def i8_constants(text):
    """The i8 constants of an MLIR file (printed as hex), by shape."""
    found = {}
    for data, shape in re.findall(r'dense<"0x([0-9A-F]+)"> : tensor<([0-9x]+)xi8>', text):
        dims = tuple(int(d) for d in shape.split("x"))
        found[dims] = np.frombuffer(bytes.fromhex(data), np.int8).reshape(dims)
    return found


def assert_within_one_step(got, want, step):
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= step * 1.0001, np.abs(got - want).max() / step
    assert np.allclose((got / step) - np.round(got / step), 0, atol=1e-3)  # on the grid


def test_qoperator_model_vs_ort(ort, tmp_path):
    """QLinearConv -> QLinearConv -> QLinearAdd -> QLinearMatMul: every
    output within one step of ORT's (measured: equal), every conv and
    linear INT8 with the file's integer weights and biases."""
    path = tmp_path / "qop.onnx"
    model = qoperator_model()
    onnx.save(model, str(path))
    x = np.random.default_rng(1).uniform(-2.5, 2.5, size=(2, 3, 8, 8)).astype(np.float32)
    want = ort.outputs(path, [x])[0]
    got = run_imported(path, [x], tmp_path, int8=True)
    assert np.abs(want).max() < 10.0  # the output is not saturated
    assert_within_one_step(got, want, 0.08)
    text = (tmp_path / "int8.mlir").read_text()
    compute = [line for line in text.splitlines() if re.search(r"qnt\.(conv2d|linear) ", line)]
    assert len(compute) == 3 and all("!quant.uniform" in line for line in compute)
    assert "tosa.conv2d" not in text and "tosa.matmul" not in text and "qnt.add" in text
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = i8_constants(text)
    for name in ("conv1_w", "conv2_w"):  # OIHW -> OHWI
        np.testing.assert_array_equal(weights[(8, 3, 3, 8 if name == "conv2_w" else 3)],
                                      inits[name].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(weights[(10, 128)], inits["fc_w"].T)
    for name in ("conv1_b", "conv2_b"):
        assert "dense<[" + ", ".join(map(str, inits[name])) + "]> : tensor<8xi32>" in text


def microsoft_model():
    """QLinearConv -> com.microsoft QLinearSigmoid, QLinearMul (x * sigmoid(x)),
    QLinearLeakyRelu, QLinearConcat of both, QLinearGlobalAveragePool."""
    g = GraphMaker()
    x, c, s, m, leaky, cat, gap = (
        g.qparams("in", 0.02, 128), g.qparams("c", 0.1, 128), g.qparams("sig", 1 / 256, 0),
        g.qparams("mul", 0.05, 128), g.qparams("leaky", 0.05, 100), g.qparams("cat", 0.06, 110),
        g.qparams("gap", 0.02, 100))
    ms = "com.microsoft"
    g.node("QuantizeLinear", ["input", *x], "in_q")
    g.node("QLinearConv", ["in_q", *x, *g.weight("w", (8, 3, 3, 3), [0.01]), *c], "conv",
           pads=[1, 1, 1, 1])
    g.node("QLinearSigmoid", ["conv", *c, *s], "sigmoid", ms)
    g.node("QLinearMul", ["conv", *c, "sigmoid", *s, *m], "silu", ms)
    g.node("QLinearLeakyRelu", ["conv", *c, *leaky], "leaky", ms, alpha=0.1)
    g.node("QLinearConcat", [*cat, "silu", *m, "leaky", *leaky], "concat", ms, axis=1)
    g.node("QLinearGlobalAveragePool", ["concat", *cat, *gap], "gap", ms, channels_last=0)
    g.node("DequantizeLinear", ["gap", *gap], "output")
    return g.model([2, 3, 8, 8], [2, 16, 1, 1], [MICROSOFT])


def test_microsoft_qlinear_ops_vs_ort(ort, tmp_path):
    """Measured: 2 of the 32 outputs one step from ORT's."""
    path = tmp_path / "ms.onnx"
    onnx.save(microsoft_model(), str(path))
    x = np.random.default_rng(1).uniform(-2.5, 2.5, size=(2, 3, 8, 8)).astype(np.float32)
    want = ort.outputs(path, [x])[0]
    assert_within_one_step(run_imported(path, [x], tmp_path, int8=True), want, 0.02)
    text = (tmp_path / "int8.mlir").read_text()
    assert "qnt.conv2d" in text and "qnt.mul" in text and "qnt.table" in text


def dynamic_mlp(per_column=False):
    """MatMul + Add -> Relu -> Gemm (FP32), then rewritten as ORT's
    quantize_dynamic writes it (bench/onnx_dynamic.py): DynamicQuantizeLinear
    -> MatMulInteger (s8 weights, max|W| / 127) -> Cast -> Mul by the scales
    -> Add of the bias, twice. ``per_column``: the weights quantized again
    per column of B (max|W[:, n]| / 127, scales and zero points of shape
    [N]), as ORT's per_channel=True writes them."""
    g = GraphMaker()
    w1, b1 = g.rng.normal(size=(64, 128)) * 0.1, g.rng.normal(size=128) * 0.1
    w2, b2 = g.rng.normal(size=(10, 128)) * 0.1, g.rng.normal(size=10) * 0.1
    for name, value in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        g.init(name, value.astype(np.float32))
    g.node("MatMul", ["input", "w1"], "fc1")
    g.node("Add", ["fc1", "b1"], "fc1_bias")
    g.node("Relu", ["fc1_bias"], "relu")
    g.node("Gemm", ["relu", "w2", "b2"], "output", name="fc2", transB=1)
    quantized, count = onnx_dynamic.quantize_dynamic(g.model([4, 64], [4, 10]))
    assert count == 2
    if per_column:
        inits = {i.name: i for i in quantized.graph.initializer}
        for layer, w in (("fc1", w1), ("fc2", w2.T)):
            w = w.astype(np.float32)
            scale = (np.abs(w).max(axis=0) / np.float32(127)).astype(np.float32)
            q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
            for suffix, value in (("W_q", q), ("W_scale", scale),
                                  ("W_zp", np.zeros(scale.shape, np.int8))):
                inits[f"{layer}_qnt_{suffix}"].CopyFrom(
                    numpy_helper.from_array(value, f"{layer}_qnt_{suffix}"))
        onnx.checker.check_model(quantized)
    return quantized


def dynamic_inputs():
    """(name, input) of the dynamic MLP: both signs, all positive (zero
    point 0), all negative (zero point 255) and a grid of rounding ties:
    the range [-1, 255/64 - 1] gives S = 1/64 and Z = 64 exactly, and every
    other element is at (k + 0.5) / 64, half a step (round half to even)."""
    rng = np.random.default_rng(1)
    ties = ((np.arange(256) % 254 - 63.5) / 64).astype(np.float32)[:256]
    ties[:2] = -1.0, 255 / 64 - 1
    return [("normal", rng.normal(size=(4, 64)).astype(np.float32)),
            ("positive", (np.abs(rng.normal(size=(4, 64))) + 0.25).astype(np.float32)),
            ("negative", (-np.abs(rng.normal(size=(4, 64))) - 0.25).astype(np.float32)),
            ("ties", ties.reshape(4, 64))]


def run_dynamic(path, x, tmp_path, numerics=None):
    """import-onnx (with ``numerics``), --qnt-dynamic-pipeline, quant-run:
    (output, text of the quantized module)."""
    mlir = tmp_path / "model.mlir"
    import_onnx(path, mlir, numerics=numerics)
    run_tool("quant-opt", mlir, "--qnt-dynamic-pipeline=qconfig=qnnpack", "-o",
             tmp_path / "dyn8.mlir")
    np.savez(tmp_path / "in.npz", input=x)
    run_tool("quant-run", tmp_path / "dyn8.mlir", "-i", tmp_path / "in.npz", "-o",
             tmp_path / "out.npz", "--quiet")
    return np.load(tmp_path / "out.npz")["output"], (tmp_path / "dyn8.mlir").read_text()


def check_dynamic_equals_ort(ort, path, model, inputs, weights):
    """ORT and quant-run (the dynamic pipeline, ORT numerics) on ``path``
    (``model`` saved): equal outputs on every (name, x) of ``inputs``, two
    dynamically quantized ops, and each initializer of ``weights`` (name:
    the permutation to qnt's layout) among the module's int8 constants."""
    onnx.save(model, str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for name, x in inputs:
        want = ort.outputs(path, [x])[0]
        got, text = run_dynamic(path, x, path.parent)
        assert got.shape == want.shape
        assert np.array_equal(got, want), (name, np.abs(got - want).max())
    assert text.count("dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255") == 2
    constants = i8_constants(text)
    for name, order in weights.items():
        file_q = inits[name].transpose(order)
        assert np.array_equal(constants[file_q.shape], file_q)  # the file's integers


@pytest.mark.parametrize("per_column", [False, True], ids=["per_tensor", "per_column"])
def test_dynamic_matmul_integer_vs_ort(ort, tmp_path, per_column):
    """Under ONNX Runtime's numerics (import-onnx's default for a quantized
    file) the dynamic pipeline keeps the file's int8 weights and scales and
    the runtime quantizes each input as DynamicQuantizeLinear does: the
    outputs equal ORT's, bit for bit, per tensor and per column, on inputs
    of either sign, of one sign and on rounding ties."""
    check_dynamic_equals_ort(ort, tmp_path / "dyn.onnx", dynamic_mlp(per_column),
                             dynamic_inputs(), {"fc1_qnt_W_q": (1, 0), "fc2_qnt_W_q": (1, 0)})


def test_dynamic_matmul_integer_uint8_weights_vs_ort(ort, tmp_path):
    """uint8 weights with zero point 128 (ORT's symmetric QUInt8; per
    column for the second layer): their integers minus 128 are the s8
    weights qnt's kernels take, so the outputs still equal ORT's. A uint8
    weight whose integers minus its zero point leave [-128, 127] takes
    qnt's own dynamic quantization (docs/onnx.md)."""
    model = dynamic_mlp()
    inits = {i.name: i for i in model.graph.initializer}
    for layer, per_column in (("fc1", False), ("fc2", True)):
        q = numpy_helper.to_array(inits[f"{layer}_qnt_W_q"]).astype(np.int16)
        zp = np.full(q.shape[1], 128, np.uint8) if per_column else np.uint8(128)
        inits[f"{layer}_qnt_W_q"].CopyFrom(
            numpy_helper.from_array((q + 128).astype(np.uint8), f"{layer}_qnt_W_q"))
        inits[f"{layer}_qnt_W_zp"].CopyFrom(numpy_helper.from_array(zp, f"{layer}_qnt_W_zp"))
    onnx.checker.check_model(model)
    check_dynamic_equals_ort(ort, tmp_path / "dyn_u8.onnx", model, dynamic_inputs(), {})
    text = (tmp_path / "dyn8.mlir").read_text()
    constants = i8_constants(text)
    for layer in ("fc1", "fc2"):
        file_q = numpy_helper.to_array(inits[f"{layer}_qnt_W_q"]).astype(np.int16) - 128
        np.testing.assert_array_equal(constants[file_q.T.shape], file_q.T)
    # Zero point 100: integers up to 155 above it, not s8: the float path,
    # whose symmetric s8 weights are 155 / 127.5 times coarser than the
    # file's (measured: 2.0 % of the largest output from ORT).
    q = numpy_helper.to_array(inits["fc1_qnt_W_q"])
    inits["fc1_qnt_W_zp"].CopyFrom(numpy_helper.from_array(np.uint8(100), "fc1_qnt_W_zp"))
    assert (q.astype(np.int16) - 100).max() > 127
    onnx.save(model, str(tmp_path / "dyn_zp100.onnx"))
    x = dynamic_inputs()[0][1]
    want = ort.outputs(tmp_path / "dyn_zp100.onnx", [x])[0]
    got, _ = run_dynamic(tmp_path / "dyn_zp100.onnx", x, tmp_path)
    assert np.abs(got - want).max() <= 0.03 * np.abs(want).max()


def test_dynamic_matmul_integer_qnt_numerics(ort, tmp_path):
    """numerics="qnt": float linears of the file's dequantized weights,
    quantized by qnt's dynamic pipeline. ORT's DynamicQuantizeLinear and
    qnt's run-time u8 parameters (qnnpack: [0, 255]) agree, but qnt
    quantizes the weights again with its symmetric min-max observer,
    max|W| / 127.5, where the file has max|W| / 127: the integers stay
    (but -127 -> -128) and each layer's weight scale is 127 / 127.5 of the
    file's, 0.39 % smaller, 0.78 % over the two layers (measured: 0.71 % of
    the largest output; ORT itself is 1.2 % from FP32). Held to 1 %; and to
    0.3 % against ORT's arithmetic emulated with qnt's weight scales (the
    rest: the first layer's difference moves the second layer's range)."""
    path = tmp_path / "dyn.onnx"
    model = dynamic_mlp()
    onnx.save(model, str(path))
    x = np.random.default_rng(1).normal(size=(4, 64)).astype(np.float32)
    want = ort.outputs(path, [x])[0]
    got, text = run_dynamic(path, x, tmp_path, numerics="qnt")
    assert text.count("dynamic_qspec = #qnt.qspec<dtype = u8, quant_min = 0, quant_max = 255") == 2
    largest = np.abs(want).max()
    assert np.abs(got - want).max() <= 0.01 * largest

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def ort_arithmetic(weight_factor):
        y = x
        for layer, bias in (("fc1", "b1"), ("fc2", "b2")):
            lo, hi = min(0.0, y.min()), max(0.0, y.max())
            scale = np.float32((hi - lo) / 255)
            zp = np.clip(np.rint(-lo / scale), 0, 255)
            q = np.clip(np.rint(y / scale) + zp, 0, 255)
            acc = (q - zp) @ inits[f"{layer}_qnt_W_q"].astype(np.float64)
            w_scale = np.float32(inits[f"{layer}_qnt_W_scale"] * weight_factor)
            y = acc.astype(np.float32) * np.float32(scale * w_scale) + inits[bias]
            y = np.maximum(y, 0) if layer == "fc1" else y
        return y

    assert np.array_equal(ort_arithmetic(1.0), want)  # the emulation is exact
    assert np.abs(got - ort_arithmetic(127 / 127.5)).max() <= 0.003 * largest
    weights = i8_constants(text)
    for layer in ("fc1", "fc2"):
        file_q = inits[f"{layer}_qnt_W_q"].T
        ours = weights[file_q.shape]
        assert (ours != file_q).sum() == (file_q == -127).sum()  # -127 -> -128 only


def test_dynamic_conv_integer_vs_ort(ort, tmp_path):
    """ConvInteger: a float conv of the dequantized weight (qnt's dynamic
    quantization is linear-only, the conv stays float), within ORT's own
    input rounding: |W| summed over the window times half an input step."""
    g = GraphMaker()
    w = g.weight("w", (4, 3, 3, 3), [0.01])[0]
    g.node("DynamicQuantizeLinear", ["input"], "xq")
    g.nodes[-1].output.extend(["x_s", "x_z"])
    g.node("ConvInteger", ["xq", w, "x_z"], "acc", pads=[1, 1, 1, 1])
    g.node("Cast", ["acc"], "acc_f", to=TensorProto.FLOAT)
    g.node("Mul", ["x_s", "w_s"], "scale")
    g.node("Mul", ["acc_f", "scale"], "output")
    path = tmp_path / "conv_int.onnx"
    model = g.model([1, 3, 8, 8], [1, 4, 8, 8])
    onnx.save(model, str(path))
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    want = ort.outputs(path, [x])[0]
    got = run_imported(path, [x], tmp_path)
    step = (max(x.max(), 0) - min(x.min(), 0)) / 255
    weight = numpy_helper.to_array(model.graph.initializer[0]).astype(np.float32) * 0.01
    bound = np.abs(weight).sum(axis=(1, 2, 3)).reshape(1, 4, 1, 1) * step / 2
    assert (np.abs(got - want) <= bound * 1.001 + 1e-6).all()
    assert np.abs(got - want).max() > 0  # ORT did quantize


def dynamic_conv(per_channel=False):
    """Conv (3x3, pads 1, bias) -> Relu -> Conv (3x3, stride 2, groups 2,
    bias) as ORT's quantize_dynamic writes a Conv: DynamicQuantizeLinear ->
    ConvInteger (s8 weights, zero point 0) -> Cast -> Mul by x_scale *
    W_scale -> Add of the bias ([C, 1, 1]). ``per_channel``: one weight
    scale per output channel ([C, 1, 1]; ORT's ConvInteger rejects
    per-channel weight zero points, so the zero point stays one 0)."""
    g = GraphMaker()
    shapes = {"c1": (8, 4, 3, 3), "c2": (6, 4, 3, 3)}
    x = "input"
    for layer, shape in shapes.items():
        scales = (g.rng.uniform(0.002, 0.02, size=shape[0]) if per_channel else [0.01])
        w, w_s, w_z = g.weight(f"{layer}_w", shape, scales)
        if per_channel:  # the Mul's operand broadcasts over NCHW; ORT's
            # ConvInteger takes only a per-tensor weight zero point
            w_s = g.init(f"{layer}_ws", np.asarray(scales, np.float32).reshape(-1, 1, 1))
            w_z = g.init(f"{layer}_wz", np.int8(0))
        g.init(f"{layer}_b", (g.rng.normal(size=(shape[0], 1, 1)) * 0.1).astype(np.float32))
        g.node("DynamicQuantizeLinear", [x], f"{layer}_xq")
        g.nodes[-1].output.extend([f"{layer}_xs", f"{layer}_xz"])
        attrs = dict(pads=[1, 1, 1, 1]) if layer == "c1" else dict(strides=[2, 2], group=2)
        g.node("ConvInteger", [f"{layer}_xq", w, f"{layer}_xz", w_z], f"{layer}_acc", **attrs)
        g.node("Cast", [f"{layer}_acc"], f"{layer}_accf", to=TensorProto.FLOAT)
        g.node("Mul", [f"{layer}_xs", w_s], f"{layer}_scale")
        g.node("Mul", [f"{layer}_accf", f"{layer}_scale"], f"{layer}_mul")
        x = g.node("Add", [f"{layer}_mul", f"{layer}_b"],
                   "output" if layer == "c2" else f"{layer}_add")
        if layer == "c1":
            x = g.node("Relu", [x], "c1_relu")
    return g.model([2, 4, 10, 10], [2, 6, 4, 4])


def dynamic_conv_inputs():
    """(name, input [2, 4, 10, 10]) as dynamic_inputs: both signs, one sign
    (zero points 0 and 255) and rounding ties on the grid S = 1/64, Z = 64."""
    rng = np.random.default_rng(3)
    shape = (2, 4, 10, 10)
    ties = ((np.arange(800) % 254 - 63.5) / 64).astype(np.float32)
    ties[:2] = -1.0, 255 / 64 - 1
    return [("normal", rng.normal(size=shape).astype(np.float32)),
            ("positive", (np.abs(rng.normal(size=shape)) + 0.25).astype(np.float32)),
            ("negative", (-np.abs(rng.normal(size=shape)) - 0.25).astype(np.float32)),
            ("ties", ties.reshape(shape))]


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
def test_dynamic_conv_integer_onnxruntime_numerics_vs_ort(ort, tmp_path, per_channel):
    """Under ONNX Runtime's numerics the dynamic pipeline keeps the file's
    ConvInteger weights and scales (qnt.conv2d with dynamic_qspec) and the
    runtime quantizes each input as DynamicQuantizeLinear does: the outputs
    equal ORT's bit for bit, per tensor and per channel, with padding,
    stride and groups, on inputs of either sign, of one sign and on ties."""
    check_dynamic_equals_ort(ort, tmp_path / "dynconv.onnx", dynamic_conv(per_channel),
                             dynamic_conv_inputs(), {"c1_w": (0, 2, 3, 1),  # OHWI
                                                     "c2_w": (0, 2, 3, 1)})


def test_dynamic_conv_integer_qnt_numerics_stays_float(ort, tmp_path):
    """numerics="qnt": ConvInteger stays a float conv of the dequantized
    weight (qnt's dynamic quantization is linear-only): no dynamic_qspec,
    within ORT's input rounding of the first layer's output."""
    path = tmp_path / "dynconv.onnx"
    onnx.save(dynamic_conv(), str(path))
    x = dynamic_conv_inputs()[0][1]
    want = ort.outputs(path, [x])[0]
    got, text = run_dynamic(path, x, tmp_path, numerics="qnt")
    assert "dynamic_qspec" not in text and "qnt_rt_conv2d_dynamic" not in text
    assert 0 < np.abs(got - want).max() <= 0.02 * np.abs(want).max()


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
             helper.make_node("Hardmax", ["b"], ["y"], name="hardmax_1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, 3])])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    r = _cli(path, "-o", tmp_path / "u.mlir")
    assert r.returncode == 1
    assert "2 unsupported nodes" in r.stderr
    assert "'celu_1': Celu (ai.onnx opset 13)" in r.stderr
    assert "'hardmax_1': Hardmax (ai.onnx opset 13)" in r.stderr
    assert not (tmp_path / "u.mlir").exists()


def test_unsupported_microsoft_ops_are_listed_with_their_domain(tmp_path):
    """com.microsoft ops other than the QLinear ops qnt reads are listed as
    unsupported, with their domain and opset; QLinearAdd is not."""
    g = GraphMaker()
    x = g.qparams("x", 0.02, 128)
    g.node("QuantizeLinear", ["input", *x], "xq")
    g.node("QLinearAdd", ["xq", *x, "xq", *x, *x], "add", "com.microsoft")
    g.node("QLinearSoftmax", ["add", *x, *x], "softmax", "com.microsoft", axis=-1, opset=13)
    g.node("DequantizeLinear", ["softmax", *x], "dq")
    g.node("FusedGemm", ["dq", "dq"], "output", "com.microsoft", transB=1)
    path = tmp_path / "ms.onnx"
    onnx.save(g.model([2, 2], [2, 2], [MICROSOFT]), str(path))
    r = _cli(path, "-o", tmp_path / "ms.mlir")
    assert r.returncode == 1 and "2 unsupported nodes" in r.stderr
    assert "'softmax': QLinearSoftmax (com.microsoft opset 1)" in r.stderr
    assert "'output': FusedGemm (com.microsoft opset 1)" in r.stderr
    assert "QLinearAdd" not in r.stderr and not (tmp_path / "ms.mlir").exists()


def test_misused_operator_forms_are_errors(tmp_path):
    """A QLinear op's integer output read by a float op, and a MatMulInteger
    of other than a DynamicQuantizeLinear's output: errors naming the node."""
    g = GraphMaker()
    x = g.qparams("x", 0.02, 128)
    g.node("QuantizeLinear", ["input", *x], "xq")
    g.node("QLinearAdd", ["xq", *x, "xq", *x, *x], "add", "com.microsoft")
    g.node("Relu", ["add"], "output")
    path = tmp_path / "relu.onnx"
    onnx.save(g.model([2, 2], [2, 2], [MICROSOFT]), str(path))
    with pytest.raises(OnnxImportError, match="node 'output' \\(Relu\\): the integer output "
                       "of a QuantizeLinear or QLinear op is used by another op"):
        import_onnx(path, tmp_path / "m.mlir")
    g = GraphMaker()
    w = g.weight("w", (2, 2), [0.01])
    g.node("QuantizeLinear", ["input", *g.qparams("x", 0.02, 128)], "xq")
    g.node("MatMulInteger", ["xq", w[0], "x_z", w[2]], "acc")
    g.node("Cast", ["acc"], "output", to=TensorProto.FLOAT)
    path = tmp_path / "mmi.onnx"
    onnx.save(g.model([2, 2], [2, 2]), str(path))
    with pytest.raises(OnnxImportError, match="node 'acc' \\(MatMulInteger\\): MatMulInteger "
                       "of other than the integers of a DynamicQuantizeLinear"):
        import_onnx(path, tmp_path / "m.mlir")
    assert not (tmp_path / "m.mlir").exists()


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
