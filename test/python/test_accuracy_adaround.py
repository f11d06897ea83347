"""qnt.accuracy.adaround (AdaRound, docs/accuracy.md): on a planted model
whose first conv's weights all round the same way it lowers every layer's
output error and the INT8 model's error against FP32; the INT8 weights qnt
computes from the result are exactly the learned integers (its scale
rule reproduced, the range-setting weights kept), for per-tensor and
per-channel presets; the input model is left alone, a seed fixes the
result, and bad arguments and data are rejected with the reason."""

import copy

from frontend_util import nn, np, pytest, torch

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt import mlir_reader  # noqa: E402
from qnt.accuracy import (adaround, fold_batch_norms, format_adaround_report,  # noqa: E402
                          weight_integers, weight_scale)
from qnt.compare import sqnr_db  # noqa: E402

STEP = 0.01  # the first conv's per-tensor weight scale: max |w| / 127.5 (qnnpack)


def planted_model():
    """conv 3 -> 8 -> BN -> ReLU -> depthwise 3x3 -> ReLU -> flatten ->
    linear 1152 -> 10. The first conv's weights are (k + 0.4) STEP, k
    integer, one weight 127.5 STEP (the range), the BN's scale 1 (folding
    keeps the grid): round-to-nearest takes every weight 0.4 step down,
    and with inputs in [0, 1) each output channel is off by about
    0.4 * 0.01 * 27 * 0.5 = 0.054. AdaRound rounds about 40 % of them up."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 12 * 12, 10)).eval()
    weight = (torch.randint(-30, 31, (8, 3, 3, 3)).float() + 0.4) * STEP
    weight[0, 0, 0, 0] = 127.5 * STEP
    bn = model[1]
    with torch.no_grad():
        model[0].weight.copy_(weight)
        model[0].bias.zero_()
        bn.running_mean.copy_(torch.randn(8) * 0.1)
        bn.running_var.fill_(1 - bn.eps)
        bn.bias.copy_(torch.randn(8) * 0.1 + 0.3)
    return model


def inputs(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(4, 3, 16, 16, generator=g) for _ in range(n)]


CALIBRATION, HELD_OUT = inputs(8, 1), inputs(4, 2)


def int8_weights(model8):
    """{module path: (int8 weight [out, in, kh, kw] / [out, in], scales)} of
    the INT8 module: each conv / linear's weight constant (OHWI for convs)
    and its quantized type's scales."""
    func = mlir_reader.read_module(model8.directory / "model.int8.mlir")
    producers = {r: op for op in func.ops for r in op.results}
    weights = {}
    for op in func.ops:
        if op.name in ("qnt.conv2d", "qnt.linear"):
            cast = producers[op.operands[1]]
            q = producers[cast.operands[0]].attrs["value"]
            weights[op.loc] = (q.transpose(0, 3, 1, 2) if q.ndim == 4 else q,
                               np.asarray(cast.result_types[0].element.scales, np.float32))
    return weights


@pytest.fixture(scope="module")
def rounded():
    """(model, its state before, AdaRounded model, report, the BN-folded
    model), qnnpack (per-tensor weights)."""
    model = planted_model()
    state = copy.deepcopy(model.state_dict())
    result, report = adaround(model, CALIBRATION, qconfig="qnnpack")  # 1000 iterations
    return model, state, result, report, fold_batch_norms(model)


def test_layer_errors_drop(rounded):
    """Measured: output MSE (against FP32, calibration data) conv 0.0021 ->
    0.00025, depthwise 4.6e-5 -> 1.7e-5, linear 4.9e-6 -> 2.6e-6."""
    _, _, _, report, _ = rounded
    layers = {entry["name"]: entry for entry in report["layers"]}
    assert list(layers) == ["0", "3", "6"]
    assert [layers[n]["kind"] for n in layers] == ["conv", "depthwise", "linear"]
    # The ReLUs are found through the folded BN (nn.Identity now).
    assert [layers[n]["activation"] for n in layers] == ["relu", "relu", "none"]
    assert layers["0"]["mse_adaround"] * 5 <= layers["0"]["mse_nearest"]
    assert layers["0"]["flipped"] >= 40  # of 215: about 40 % should go up
    for entry in layers.values():
        assert entry["mse_adaround"] <= entry["mse_nearest"]
    assert report["skipped"] == [] and report["per_channel"] is False
    text = format_adaround_report(report)
    assert "| 0 | conv | relu | 216 |" in text and "qnnpack grid (per tensor)" in text


def test_int8_model_is_more_accurate(rounded):
    """Measured: output SQNR against FP32 on held-out inputs 22.4 dB
    (round-to-nearest) -> 38.6 dB (AdaRound)."""
    model, _, result, _, folded = rounded
    reference = torch.cat([model(x) for x in HELD_OUT]).detach().numpy()

    def sqnr(m):
        model8 = qnt.quantize_static(m, (CALIBRATION[0],), CALIBRATION, "qnnpack")
        return sqnr_db(reference, np.concatenate([model8(x) for x in HELD_OUT]))

    nearest, learned = sqnr(folded), sqnr(result)
    assert learned >= nearest + 6.0, (nearest, learned)


@pytest.mark.parametrize("qconfig, per_channel", [("qnnpack", None), ("qnnpack", True),
                                                  ("x86", None), ("xnnpack", None)])
def test_qnt_weights_are_the_learned_integers(rounded, qconfig, per_channel):
    """qnt's INT8 weights of the AdaRounded model are round-to-nearest of
    its weights on the original grid (the scale qnt computes again from
    them is the original one), and differ from round-to-nearest of the
    original weights: the learned rounding reaches the INT8 model."""
    _, _, result, _, folded = rounded
    if (qconfig, per_channel) != ("qnnpack", None):  # shorter: 300 steps, 10x the rate
        result, report = adaround(planted_model(), CALIBRATION, qconfig=qconfig,
                                  per_channel=per_channel, iterations=300, lr=1e-2)
        assert report["per_channel"] is True
    model8 = qnt.quantize_static(result, (CALIBRATION[0],), CALIBRATION, qconfig,
                                 per_channel=per_channel)
    weights = int8_weights(model8)
    assert sorted(weights) == ["0", "3", "6"]
    flipped = 0
    for path, (q, scales) in weights.items():
        learned = result.get_submodule(path).weight.detach()
        original = folded.get_submodule(path).weight.detach()
        scale = weight_scale(original, qconfig, per_channel)
        assert np.array_equal(scales, scale.flatten().numpy()), path
        assert torch.equal(weight_scale(learned, qconfig, per_channel), scale), path
        assert np.array_equal(q, weight_integers(learned, qconfig, per_channel).numpy()), path
        # Every weight is S * q, but for those that set the range (max |w| of
        # their channel or tensor): they keep their float value.
        ranges = original.abs().flatten(1).amax(1) if scale.numel() > 1 else \
            original.abs().max().reshape(1)
        setting = original.abs() == ranges.view(scale.shape)
        on_grid = learned == scale * torch.from_numpy(q).float()
        assert bool((on_grid | setting).all()), path
        assert torch.equal(learned[setting], original[setting]), path
        flipped += int((torch.from_numpy(q) != weight_integers(original, qconfig,
                                                               per_channel)).sum())
    assert flipped >= 40


def test_weight_scale_rule():
    """S = max|W| / 127.5 (s8 [-128, 127]; 127 for xnnpack's [-127, 127]),
    per output channel except qnnpack's per-tensor default."""
    w = torch.tensor([[1.275, -0.5], [0.2, -0.255]])
    assert weight_scale(w, "qnnpack").flatten().tolist() == [pytest.approx(0.01)]
    assert weight_scale(w, "x86").flatten().tolist() == pytest.approx([0.01, 0.002])
    assert weight_scale(w, "qnnpack", True).flatten().tolist() == pytest.approx([0.01, 0.002])
    assert weight_scale(w, "xnnpack").flatten().tolist() == pytest.approx([1.275 / 127,
                                                                           0.255 / 127])
    assert weight_integers(w, "qnnpack").tolist() == [[127, -50], [20, -26]]
    assert weight_scale(torch.zeros(2, 3), "x86").flatten().tolist() == [2.0 ** -23] * 2


def test_input_model_unchanged(rounded):
    model, state, result, _, _ = rounded
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert isinstance(result[1], nn.Identity)  # the BN, folded into conv 0
    assert isinstance(model[1], nn.BatchNorm2d)


def test_seed_fixes_the_result():
    def run():
        return adaround(planted_model(), CALIBRATION, qconfig="qnnpack", iterations=40,
                        seed=3)[0].state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)


class Shared(nn.Module):
    """A linear called twice and an nn.MultiheadAttention (its out_proj is
    applied through its weights): both skipped with the reason."""

    def __init__(self):
        super().__init__()
        self.fc, self.attn, self.head = nn.Linear(8, 8), nn.MultiheadAttention(8, 2), \
            nn.Linear(8, 4)

    def forward(self, x):
        x = self.fc(self.fc(x))
        x = self.attn(x, x, x, need_weights=False)[0]
        return self.head(x)


def test_skipped_layers_and_layer_choice():
    torch.manual_seed(0)
    model = Shared().eval()
    data = [torch.randn(5, 2, 8) for _ in range(2)]
    result, report = adaround(model, data, qconfig="x86", iterations=5)
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert [entry["name"] for entry in report["layers"]] == ["head"]
    assert skipped["fc"] == "the module is called more than once"
    assert "never calls its forward()" in skipped["attn.out_proj"]
    assert torch.equal(result.fc.weight, model.fc.weight)
    _, report = adaround(model, data, iterations=5, layers=[])
    assert report["layers"] == [] and {"name": "head", "reason": "not in layers"} \
        in report["skipped"]
    with pytest.raises(ValueError, match=r"layers \['nope'\] are no nn.Conv2d"):
        adaround(model, data, iterations=5, layers=["nope"])


@pytest.mark.parametrize("options, message", [
    ({"qconfig": "int4"}, "qconfig must be one of"),
    ({"qconfig": "x86", "per_channel": False}, "quantizes weights per channel"),
    ({"per_channel": "yes"}, "per_channel must be None, True or False"),
    ({"iterations": 0}, "iterations must be an integer >= 1"),
    ({"iterations": 10.0}, "iterations must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"reg_weight": -1.0}, "reg_weight must be >= 0"),
    ({"reg_weight": float("nan")}, "reg_weight must be a finite number"),
    ({"lr": 0}, "lr must be > 0"),
    ({"warmup": 1.0}, r"warmup must be in \[0, 1\)"),
    ({"beta": (2.0, 20.0)}, "start >= end > 0"),
    ({"beta": 20.0}, r"beta must be \(start, end\)"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"activation": "relu"}, "activation must be True or False"),
    ({"layers": "0"}, "layers must be a list of module paths"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        adaround(planted_model(), CALIBRATION, **options)


def test_bad_data_and_model():
    bad = [x.clone() for x in CALIBRATION[:2]]
    bad[1][0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="calibration sample 1 has NaN or Inf"):
        adaround(planted_model(), bad)
    with pytest.raises(ValueError, match="calibration_data is empty"):
        adaround(planted_model(), [])
    with pytest.raises(ValueError, match="eval mode"):
        adaround(planted_model().train(), CALIBRATION)
    model = planted_model()
    with torch.no_grad():
        model[6].weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="layer '6' has NaN or Inf weights"):
        adaround(model, CALIBRATION)
