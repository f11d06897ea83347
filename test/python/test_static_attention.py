"""Static INT8 of activation-activation matmuls (attention's scores and
context) against PyTorch 1.13 FX, which lowers ``torch.matmul`` of two
quantized tensors to ``quantized::matmul``: the same observers and
calibration data give the same quantization parameters, and our
``qnt.batch_matmul`` (an exact integer accumulator, docs/numerics.md) is
within 1 LSB of PyTorch's dequantize / float matmul / quantize."""

import copy

import pytest
from frontend_util import Fn2, nn, np, qdata, qnt, run_tool, torch
from torch.ao.quantization import MinMaxObserver, QConfig, QConfigMapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

ATTENTION_FLOAT = "qnt.float_in_pytorch"


class Scores(nn.Module):
    """softmax(q k^T / sqrt(d)) v of two inputs, as a hand-written attention
    computes it (torch.matmul, which FX quantizes)."""

    def forward(self, q, v):
        scores = torch.matmul(q, q.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        return torch.matmul(torch.softmax(scores, -1), v)


def minmax_qconfig(reduce_range):
    """FX's qconfig with min-max activation observers (u8 [0, 255], or
    [0, 127] with reduce_range): what `activation-observer=minmax` does with
    the onednn / x86 preset."""
    act = MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=reduce_range)
    return QConfigMapping().set_global(QConfig(activation=act, weight=act))


def fx_int8(module, calib, reduce_range):
    prepared = prepare_fx(copy.deepcopy(module).eval(), minmax_qconfig(reduce_range),
                          example_inputs=calib[0])
    with torch.no_grad():
        for inputs in calib:
            prepared(*inputs)
    return convert_fx(prepared)


def ours_int8(module, calib, qconfig, tmp_path, extra=""):
    """qnt's static pipeline on the same calibration inputs: the INT8 IR."""
    fp32 = tmp_path / "model.mlir"
    info = qnt.export(module, calib[0], fp32)
    names = [name for name, _ in info.inputs]
    data = {name: np.concatenate([c[i].numpy() for c in calib]) for i, name in enumerate(names)}
    calib_npz = tmp_path / "calib.npz"
    qdata.save(calib_npz, data, batch=calib[0][0].shape[0], expect=info)
    prepared, stats, int8 = (tmp_path / n for n in ("prepared.mlir", "stats.json", "int8.mlir"))
    run_tool("quant-opt", fp32, f"--qnt-ptq-pipeline=qconfig={qconfig} "
             f"activation-observer=minmax{extra}", "-o", prepared)
    run_tool("quant-run", prepared, "--calibrate", calib_npz, "--stats-file", stats, "--quiet")
    run_tool("quant-opt", prepared, f"--qnt-fold-calibration=stats={stats}", "--qnt-convert",
             "-o", int8)
    return int8, names


def run_int8(int8, names, inputs, tmp_path):
    np.savez(tmp_path / "in.npz", **{n: x.numpy() for n, x in zip(names, inputs)})
    run_tool("quant-run", int8, "-i", tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--quiet")
    return qdata.load(tmp_path / "out.npz")["output"]


@pytest.mark.parametrize("qconfig,reduce_range", [("onednn", False), ("x86", True)])
@pytest.mark.parametrize("transposed", [False, True], ids=["a_b", "a_bT"])
def test_matmul_vs_fx(qconfig, reduce_range, transposed, tmp_path):
    """One matmul of two inputs: the integers of PyTorch's quantized::matmul
    within 1 LSB (PyTorch sums the dequantized products in float)."""
    module = Fn2(lambda s, a, b: torch.matmul(a, b.transpose(-1, -2) if transposed else b))
    gen = torch.Generator().manual_seed(3)
    b_shape = (4, 9, 16) if transposed else (4, 16, 9)
    calib = [(torch.randn(4, 7, 16, generator=gen), torch.randn(b_shape, generator=gen) + 0.5)
             for _ in range(4)]
    test = (torch.randn(4, 7, 16, generator=gen), torch.randn(b_shape, generator=gen) + 0.5)
    int8, names = ours_int8(module, calib, qconfig, tmp_path)
    text = int8.read_text()
    assert "qnt.batch_matmul" in text and ("transpose_b" in text) == transposed
    assert "tosa.matmul" not in text
    got = run_int8(int8, names, test, tmp_path)

    # quantized::matmul is the same on every engine (Debian's torch has no
    # fbgemm): the x86 case differs in its observers' reduce_range only.
    torch.backends.quantized.engine = "onednn"
    pt = fx_int8(module, calib, reduce_range)
    assert any(n.target == torch.ops.quantized.matmul for n in pt.graph.nodes)
    with torch.no_grad():
        want = pt(*test)
    scale, zp = _output_qparams(pt)
    got_q = np.rint(got / scale) + zp
    want_q = np.rint(want.numpy() / scale) + zp
    # Our output is a dequantized INT8 grid of the same parameters.
    assert np.abs(got / scale - np.rint(got / scale)).max() < 1e-3
    diff = np.abs(got_q - want_q)
    print(f"{qconfig} transposed={transposed}: {int((diff > 0).sum())} of {diff.size} "
          f"differ by 1 LSB, max {diff.max():.0f}; output scale {scale:.4g} zp {zp}")
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 0.02


def _output_qparams(pt):
    """(scale, zero point) of the quantized::matmul in FX's converted graph."""
    for node in pt.graph.nodes:
        if node.target == torch.ops.quantized.matmul:
            scale, zp = (getattr(pt, a.target) for a in node.args[2:4])
            return float(scale), int(zp)
    raise AssertionError("no quantized::matmul in FX's graph")


def test_attention_int8_and_fx_matching(tmp_path):
    """Hand-written attention: both matmuls INT8 by default; the matmuls of
    nn.MultiheadAttention are marked float_in_pytorch and stay float with
    float-in-pytorch=true (FX leaves the module float) while a hand-written
    torch.matmul is still INT8, as FX quantizes it."""
    gen = torch.Generator().manual_seed(5)
    calib = [(torch.randn(2, 6, 8, generator=gen), torch.randn(2, 6, 8, generator=gen))
             for _ in range(3)]
    int8, names = ours_int8(Scores(), calib, "x86", tmp_path)
    assert int8.read_text().count("= qnt.batch_matmul") == 2

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
            self.scores = Scores()

        def forward(self, q, v):
            return self.scores(self.mha(q, q, q, need_weights=False)[0], v)

    torch.manual_seed(0)
    model = Both().eval()
    fp32 = tmp_path / "both.mlir"
    qnt.export(model, calib[0], fp32)
    prepared = run_tool("quant-opt", fp32, "--qnt-fuse")
    marked = [line for line in prepared.splitlines() if "= qnt.batch_matmul" in line]
    assert len(marked) == 4 and sum(ATTENTION_FLOAT in line for line in marked) == 2
    fx_matching = run_tool("quant-opt", fp32,
                           "--qnt-ptq-pipeline=qconfig=x86 float-in-pytorch=true")
    observed = {line.split('"')[1] for line in fx_matching.splitlines()
                if "= qnt.observe" in line}
    # Observers are named <op>:<role>: nothing inside the MHA (its
    # projections, scaling, matmuls) is observed, the hand-written matmuls
    # are (their inputs: the MHA's output and v).
    assert not any(i.startswith("mha") for i in observed), sorted(observed)
    assert {"scores.matmul:in", "scores.matmul:out", "scores.matmul_1:in1"} <= observed, \
        sorted(observed)
    default = run_tool("quant-opt", fp32, "--qnt-ptq-pipeline=qconfig=x86")
    assert any(f'"mha{role}' in default for role in (".in_proj:w", ":out"))
