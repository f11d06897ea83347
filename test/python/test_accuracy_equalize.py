"""qnt.accuracy.fold_batch_norms and equalize (cross-layer equalization,
docs/accuracy.md): the float function kept (within TOLERANCE, 1e-5 of the
largest output), the paper's fixed point reached, the chains that must not
be equalized left alone, and the per-tensor INT8 model of a badly spread
network made accurate through qnt.quantize_static."""

import copy

from frontend_util import TOLERANCE, nn, pytest, randomize_batch_norms, rel_err, torch, \
    torchvision

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt.accuracy import equalize, fold_batch_norms  # noqa: E402
from qnt.compare import sqnr_db  # noqa: E402


def small_cnn(groups=1):
    """conv-bn-relu-conv-relu-dwconv-relu-conv: three equalizable pairs;
    ``groups`` for the middle conv."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, padding=1, groups=groups), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(inplace=True),
                          nn.Conv2d(16, 4, 1))
    return randomize_batch_norms(model).eval()


def torchvision_model(name):
    torch.manual_seed(0)
    return randomize_batch_norms(getattr(torchvision.models, name)()).eval()


def assert_same_function(model, transformed, x):
    want = model(x)
    assert rel_err(transformed(x).detach(), want.detach()) <= TOLERANCE


def batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


# ---------------------------------------------------------------------------
# fold_batch_norms
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["small_cnn", "resnet18", "mobilenet_v2"])
def test_fold_batch_norms_keeps_the_function(name):
    model = small_cnn() if name == "small_cnn" else torchvision_model(name)
    before = copy.deepcopy(model.state_dict())
    folded = fold_batch_norms(model)
    assert batch_norms(folded) == [] and type(folded) is type(model)
    assert_same_function(model, folded, torch.randn(1, 3, 64, 64))
    # The model itself is untouched.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fold_batch_norms_only_folds_a_conv_used_once():
    """A BN after an add, or after a conv whose output is also used
    elsewhere, is not a conv's BN: both stay."""
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), \
                nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + self.bn2(x + y)

    model = randomize_batch_norms(Residual()).eval()
    folded = fold_batch_norms(model)
    assert len(batch_norms(folded)) == 2
    assert_same_function(model, folded, torch.randn(1, 4, 8, 8))


# ---------------------------------------------------------------------------
# equalize: the float function
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [1, 4])
def test_equalize_keeps_the_function_of_relu_chains(groups):
    model = small_cnn(groups)
    equalized, report = equalize(model)
    assert [(p["conv1"], p["conv2"]) for p in report["pairs"]] == [("0", "3"), ("3", "5"),
                                                                   ("5", "7")]
    assert report["converged"] and report["relu6_replaced"] == []
    assert batch_norms(equalized) == []
    assert_same_function(model, equalized, torch.randn(2, 3, 16, 16))


def test_equalize_resnet18_pairs_inside_blocks():
    """resnet18: each BasicBlock's conv1 -> relu -> conv2; every other conv
    feeds an add or a fan-out."""
    model = torchvision_model("resnet18")
    equalized, report = equalize(model)
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert [(p["conv1"], p["conv2"]) for p in report["pairs"]] == [
        (f"{b}.conv1", f"{b}.conv2") for b in blocks]
    assert report["converged"]
    assert_same_function(model, equalized, torch.randn(1, 3, 64, 64))


def test_equalize_mobilenet_v2_relu6():
    """relu6="skip": only the ReLU6-free pairs (a project conv into the next
    block's expand), the function kept. relu6="relu": expand -> dw ->
    project pairs too, their ReLU6s replaced by ReLU (none of these random
    activations exceeds 6, so only rounding changes: docs/accuracy.md)."""
    model = torchvision_model("mobilenet_v2")
    x = torch.randn(1, 3, 64, 64)
    skipped, report = equalize(model, relu6="skip")
    assert [(p["conv1"], p["conv2"]) for p in report["pairs"]] == [
        ("features.1.conv.1", "features.2.conv.0.0"), ("features.17.conv.2", "features.18.0")]
    assert_same_function(model, skipped, x)

    relu, report = equalize(model, relu6="relu", iterations=50)
    pairs = {(p["conv1"], p["conv2"]) for p in report["pairs"]}
    assert {("features.2.conv.0.0", "features.2.conv.1.0"),
            ("features.2.conv.1.0", "features.2.conv.2")} <= pairs
    assert len(pairs) == 36 and len(report["relu6_replaced"]) == 34 and report["converged"]
    assert not any(isinstance(m, nn.ReLU6) for m in relu.features[1:18].modules())
    assert sqnr_db(model(x).detach(), relu(x).detach()) > 100


def test_equalize_leaves_other_chains_alone():
    """No pair where conv1's output fans out (residual), where a conv is
    called twice, or across an op that is not ReLU / Identity (max pool)."""
    class Chains(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.shared = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
            self.c, self.d = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            y = self.a(x)
            y = self.b(torch.relu(y)) + y                    # fan-out of a
            y = self.shared(self.shared(y))                  # called twice
            return self.d(nn.functional.max_pool2d(self.c(y), 2))

    model = Chains().eval()
    equalized, report = equalize(model)
    assert report == {"pairs": [], "iterations": 0, "converged": True, "relu6_replaced": []}
    assert_same_function(model, equalized, torch.randn(1, 4, 8, 8))


# ---------------------------------------------------------------------------
# equalize: the ranges
# ---------------------------------------------------------------------------

def spread_pair(seed=0):
    """conv -> relu -> conv -> relu -> conv whose first conv's output-channel
    ranges span 3 orders of magnitude: row i of W1 (and b1) multiplied by
    10^(3 i / 7), column i of W2 divided by it, the function the same."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    factors = 10 ** torch.linspace(0, 3, 8)
    with torch.no_grad():
        model[0].weight.mul_(factors.view(-1, 1, 1, 1))
        model[0].bias.mul_(factors)
        model[2].weight.div_(factors.view(1, -1, 1, 1))
    return model


def test_equalize_reaches_the_papers_fixed_point():
    model = spread_pair()
    equalized, report = equalize(model)
    first = report["pairs"][0]
    assert first["spread_before"] >= 500 and first["spread_before"] / first["spread_after"] >= 100
    w1, w2 = equalized[0].weight.detach(), equalized[2].weight.detach()
    r1, r2 = w1.abs().flatten(1).amax(1), w2.abs().transpose(0, 1).flatten(1).amax(1)
    ratio = r1 / r2
    assert float((ratio / ratio.mean() - 1).abs().max()) <= 1e-3
    assert_same_function(model, equalized, torch.randn(1, 3, 16, 16))


# ---------------------------------------------------------------------------
# Through qnt: per-tensor INT8
# ---------------------------------------------------------------------------

def test_equalize_makes_per_tensor_int8_accurate():
    """qnnpack (per-tensor weights): the spread model loses its small
    channels to the large ones' scale; equalized, it does not (measured:
    docs/accuracy.md, "Cross-layer equalization")."""
    model = spread_pair()
    equalized, _ = equalize(model)
    gen = torch.Generator().manual_seed(1)
    calib = [torch.randn(1, 3, 16, 16, generator=gen) for _ in range(8)]
    held_out = torch.randn(8, 3, 16, 16, generator=gen)
    want = model(held_out).detach()
    x = calib[0]
    spread_db = sqnr_db(want, qnt.quantize_static(model, (x,), calib, "qnnpack")(held_out))
    equalized_db = sqnr_db(want, qnt.quantize_static(equalized, (x,), calib, "qnnpack")(held_out))
    assert equalized_db >= spread_db + 10, (spread_db, equalized_db)
    assert equalized_db >= 25


def test_quantize_static_takes_equalized_mobilenet_v2():
    """The exporter takes what equalize leaves: nn.Identity where the BNs
    were, nn.ReLU where the ReLU6s were."""
    model = torchvision_model("mobilenet_v2")
    equalized, _ = equalize(model)
    gen = torch.Generator().manual_seed(1)
    calib = [torch.randn(1, 3, 32, 32, generator=gen) for _ in range(2)]
    model8 = qnt.quantize_static(equalized, (calib[0],), calib, "qnnpack")
    assert sqnr_db(model(calib[1]).detach(), model8(calib[1])) >= 20


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else x


@pytest.mark.parametrize("transform", [fold_batch_norms, equalize])
def test_errors(transform):
    with pytest.raises(ValueError, match=r"eval mode \(call model.eval\(\)\); in training "
                                         r"mode: Sequential, 0, 1"):
        transform(small_cnn().train())
    with pytest.raises(ValueError, match="torch.fx cannot trace Untraceable: .*control flow"):
        transform(Untraceable().eval())


def test_equalize_argument_errors():
    with pytest.raises(ValueError, match=r"relu6 must be one of \('relu', 'skip'\), "
                                         r"got 'clip'"):
        equalize(small_cnn(), relu6="clip")
    with pytest.raises(ValueError, match="iterations must be at least 1, got 0"):
        equalize(small_cnn(), iterations=0)
