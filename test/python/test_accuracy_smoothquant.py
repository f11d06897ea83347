"""qnt.accuracy.smooth (SmoothQuant): the LayerNorm -> linear pairs it
finds, the FP32 function it keeps, and the INT8 accuracy it buys on
activation outliers."""

from frontend_util import np, pytest, torch, torchvision

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt.accuracy import find_smoothing_pairs, smooth  # noqa: E402
from qnt.compare import sqnr_db  # noqa: E402

nn = torch.nn


class Block(nn.Module):
    """linear -> LayerNorm -> linear -> relu -> linear: the LayerNorm's
    output feeds fc1."""

    def __init__(self):
        super().__init__()
        self.fc0, self.norm = nn.Linear(16, 32), nn.LayerNorm(32)
        self.fc1, self.fc2 = nn.Linear(32, 64), nn.Linear(64, 8)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.norm(self.fc0(x)))))


def outlier_block():
    torch.manual_seed(0)
    model = Block().eval()
    with torch.no_grad():
        model.norm.weight[:2] *= 50  # two channels 50x the others: activation outliers
    return model


def small_vit():
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(
        image_size=28, patch_size=7, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
        num_classes=10)
    model.conv_proj = nn.Conv2d(1, 64, 7, 7)
    nn.init.normal_(model.heads.head.weight, std=0.1)  # torchvision zeroes it
    return model.eval()


def rel_change(a, b):
    return float(np.abs(a - b).max() / np.abs(a).max())


def test_pairs_of_a_vision_transformer():
    pairs = find_smoothing_pairs(small_vit())
    assert pairs == [(f"encoder.layers.encoder_layer_{i}.{norm}",
                      [f"encoder.layers.encoder_layer_{i}.{consumer}"])
                     for i in range(2) for norm, consumer in (("ln_1", "self_attention"),
                                                              ("ln_2", "mlp.0"))]
    # The encoder's final LayerNorm feeds a slice (the class token), not a linear.
    assert all(not norm.endswith("encoder.ln") for norm, _ in pairs)


@pytest.mark.parametrize("make,shape", [(outlier_block, (8, 16)), (small_vit, (2, 1, 28, 28))])
def test_the_float_function_is_kept(make, shape):
    model = make()
    calib = [torch.randn(*shape) for _ in range(4)]
    x = torch.randn(*shape)
    smoothed, report = smooth(model, calib)
    assert report and all(r["act_spread_after"] < r["act_spread_before"] for r in report)
    with torch.no_grad():
        assert rel_change(model(x).numpy(), smoothed(x).numpy()) <= 1e-5
    norm = report[0]["norm"]
    assert not torch.equal(model.get_submodule(norm).weight,
                           smoothed.get_submodule(norm).weight)  # a copy changed, not model


def test_outliers_move_into_the_weights():
    """Per-tensor activations (every preset's) of a LayerNorm output with
    two 50x channels: smoothing (alpha 0.5) shrinks the activation spread
    from 57x to 7.5x and gains 4.5 dB of output SQNR against FP32 with the
    x86 preset (measured 27.5 -> 32.0 dB)."""
    model = outlier_block()
    calib = [torch.randn(8, 16) for _ in range(8)]
    x = torch.randn(8, 16)
    with torch.no_grad():
        want = model(x).numpy()
    smoothed, report = smooth(model, calib, alpha=0.5)
    assert report[0]["consumers"] == ["fc1"]
    assert report[0]["act_spread_before"] > 50 and report[0]["act_spread_after"] < 10
    plain = sqnr_db(want, qnt.quantize_static(model, (x,), calib, "x86")(x).numpy())
    better = sqnr_db(want, qnt.quantize_static(smoothed, (x,), calib, "x86")(x).numpy())
    assert better >= plain + 3, (plain, better)


def test_errors():
    model = outlier_block()
    with pytest.raises(ValueError, match="alpha must be in"):
        smooth(model, [torch.randn(8, 16)], alpha=1.5)
    with pytest.raises(ValueError, match="eval mode"):
        smooth(model.train(), [torch.randn(8, 16)])
