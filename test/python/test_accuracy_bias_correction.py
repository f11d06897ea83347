"""qnt.accuracy.correct_biases (empirical bias correction,
docs/bias-correction.md): a per-tensor INT8 conv whose weights all round
the same way (a planted mean error) is corrected through the BatchNorm
folded into it, the output SQNR improves, layers with a fused ReLU are
skipped with the reason, the input model is left alone, and the argument
errors name what is wrong."""

import copy

from frontend_util import nn, np, pytest, torch

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt import compare  # noqa: E402
from qnt.accuracy import correct_biases, format_report  # noqa: E402

STEP = 0.01  # the conv's per-tensor weight scale: max |w| / 127.5 (qnnpack, symmetric)
BN_SCALE = 2.0  # gamma / sqrt(var + eps) of the BN after the conv


def planted_model():
    """conv (3 -> 4, no activation) -> BN -> conv + ReLU -> flatten -> linear
    (no bias). The first conv's weights are (k -/+ 0.4) STEP, k integer,
    -0.4 in channels 0 and 2, +0.4 in 1 and 3, one weight 127.5 STEP (the
    range): after folding the BN (every channel times BN_SCALE, so the
    grid scales with it) each weight rounds by the same 0.4 step in its
    channel, and with inputs in [0, 1) the conv's INT8 output is off by
    about 0.4 * 0.02 * 27 * 0.5 = 0.108 per channel, the sign of the
    channel's offset. The BN's scale is not 1, so a correction subtracted
    from the conv's bias instead of the BN's would be off by that factor."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 12 * 12, 10, bias=False)).eval()
    k = torch.randint(-30, 31, (4, 3, 3, 3)).float()
    offset = torch.tensor([-0.4, 0.4, -0.4, 0.4]).view(4, 1, 1, 1)
    weight = (k + offset) * STEP
    weight[0, 0, 0, 0] = 127.5 * STEP
    bn = model[1]
    with torch.no_grad():
        model[0].weight.copy_(weight)
        model[0].bias.zero_()
        bn.weight.fill_(BN_SCALE)
        bn.running_var.fill_(1 - bn.eps)
        bn.running_mean.copy_(torch.randn(4) * 0.1)
        bn.bias.copy_(torch.randn(4) * 0.1)
    return model


def calibration(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, 16, 16, generator=g) for _ in range(n)]


EXAMPLE = (torch.rand(1, 3, 16, 16),)


@pytest.fixture(scope="module")
def corrected():
    """(model, its state before, corrected model, report): one iteration."""
    model = planted_model()
    state = copy.deepcopy(model.state_dict())
    result, report = correct_biases(model, EXAMPLE, calibration(), qconfig="qnnpack")
    return model, state, result, report


def layer(report, name):
    return next(entry for entry in report["layers"] if entry["name"] == name)


def test_planted_error_is_corrected(corrected):
    """Measured: conv mean |e| 0.105 -> 0.00033 (~320x), linear 0.0133 ->
    0.0017, output SQNR 23.95 -> 35.86 dB."""
    _, _, _, report = corrected
    conv = layer(report, "0")
    assert conv["bias"] == "1" and conv["channels"] == 4  # through the folded BN's bias
    # The planted error: 0.4 step * BN_SCALE * 27 inputs * E[x] = 0.5.
    assert conv["mean_abs_error_before"] == pytest.approx(0.4 * STEP * BN_SCALE * 27 * 0.5,
                                                          rel=0.05)
    assert conv["mean_abs_error_after"] * 5 <= conv["mean_abs_error_before"]
    assert report["sqnr_after_db"] >= report["sqnr_before_db"] + 6.0
    assert report["sqnr_db"] == [report["sqnr_before_db"], report["sqnr_after_db"]]
    linear = layer(report, "5")
    assert linear["bias"] == "5" and linear["channels"] == 10
    assert linear["mean_abs_error_after"] < linear["mean_abs_error_before"]
    assert "| 0 | 1 | 4 |" in format_report(report)


def test_fused_relu_layer_is_skipped(corrected):
    model, _, result, report = corrected
    assert report["skipped"] == [{"name": "2", "reason": "fused relu activation: the output "
                                  "is clipped, not pre-activation"}]
    assert torch.equal(result[2].bias, model[2].bias)
    assert torch.equal(result[0].bias, model[0].bias)  # corrected through the BN


def test_input_model_unchanged(corrected):
    model, state, result, report = corrected
    assert result is not model and model[5].bias is None
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert set(model.state_dict()) == set(state)
    assert result[5].bias is not None  # a bias created for the correction
    assert not torch.equal(result[1].bias, model[1].bias)
    # The report's INT8 model is the corrected model quantized.
    x = calibration(1, seed=7)[0]
    again = qnt.quantize_static(result, EXAMPLE, calibration(), "qnnpack")
    assert np.array_equal(again(x).numpy(), report["model8"](x).numpy())


def test_layers_restricts_the_correction():
    model = planted_model()
    result, report = correct_biases(model, EXAMPLE, calibration(), qconfig="qnnpack",
                                    layers=["5"])
    assert [entry["name"] for entry in report["layers"]] == ["5"]
    assert {"name": "0", "reason": "not in layers"} in report["skipped"]
    assert torch.equal(result[1].bias, model[1].bias)
    with pytest.raises(ValueError, match=r"layers \['4'\] are no nn.Conv2d / nn.Linear "
                                         r"layers of the model \(those are: \['0', '2', '5'\]"):
        correct_biases(model, EXAMPLE, calibration(), qconfig="qnnpack", layers=["4"])


def test_exposed_conv_outputs_are_channel_last(tmp_path):
    """The measurement's layout: a conv layer's exposed output is NHWC."""
    model = planted_model()
    qnt.export(model, EXAMPLE, tmp_path / "m.mlir")
    x = calibration(2)
    qnt.data.save(tmp_path / "d.npz", {"input": torch.stack(x)}, batch=None)
    outputs = compare._layer_outputs(*compare._tools(None), tmp_path / "m.mlir",
                                     tmp_path / "d.npz", ["--qnt-fuse"], tmp_path, "f")
    want = torch.stack([model[1](model[0](s)) for s in x]).permute(0, 1, 3, 4, 2)
    assert np.allclose(outputs["0"], want.detach().numpy(), atol=1e-5)


def test_errors():
    model = planted_model()
    with pytest.raises(ValueError, match=r"qconfig must be one of \('x86', .*got 'int4'"):
        correct_biases(model, EXAMPLE, calibration(), qconfig="int4")
    with pytest.raises(ValueError, match="iterations must be an integer >= 1, got 0"):
        correct_biases(model, EXAMPLE, calibration(), iterations=0)
    with pytest.raises(ValueError, match="out_dir: correct_biases quantizes several times"):
        correct_biases(model, EXAMPLE, calibration(), out_dir="x")
    with pytest.raises(ValueError, match=r"needs an eval-mode model \(call model.eval\(\)\); "
                                         r"in training mode: Sequential, 0, 1"):
        correct_biases(model.train(), EXAMPLE, calibration())


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        h = self.embed(x)
        return self.head(self.attn(h, h, h, need_weights=False)[0])


def test_attention_out_proj_is_skipped():
    """nn.MultiheadAttention applies out_proj through its weights, never
    its forward(): skipped with the reason; the linears around are
    corrected."""
    torch.manual_seed(0)
    model = Attention().eval()
    x = torch.randn(2, 5, 8)
    _, report = correct_biases(model, (x,), [torch.randn(2, 5, 8) for _ in range(4)],
                               qconfig="x86")
    reasons = {s["name"]: s["reason"] for s in report["skipped"]}
    assert "never calls its forward()" in reasons["attn.out_proj"]
    assert {"embed", "head"} <= {layer["name"] for layer in report["layers"]}
