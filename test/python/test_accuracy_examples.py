"""examples/accuracy (docs/accuracy.md's table) keeps working: its two
Fashion-MNIST models (random weights here; training takes minutes) go
through qnt's PTQ and PyTorch's FX PTQ as evaluate.py runs them, and
evaluate.py's accuracy loop scores a model."""

import sys

from frontend_util import REPO_ROOT, pytest, torch

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt.compare import sqnr_db  # noqa: E402

sys.path.insert(0, str(REPO_ROOT / "examples" / "accuracy"))
import evaluate  # noqa: E402
from models import MODELS  # noqa: E402


@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_model_quantizes(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    if name == "vit":
        torch.nn.init.normal_(model.heads.head.weight, std=0.1)  # torchvision zeroes it
    calib = [torch.randn(4, 1, 28, 28) for _ in range(2)]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        want = model(x).numpy()
    assert want.shape == (4, 10)
    assert sqnr_db(want, qnt.quantize_static(model, (x,), calib, "onednn")(x).numpy()) > 15
    with torch.no_grad():
        theirs = evaluate.pytorch_ptq(model, "onednn", calib)(x).numpy()
    assert sqnr_db(want, theirs) > 15
    labels = torch.from_numpy(want.argmax(1))
    assert evaluate.accuracy(model, x, labels) == 1.0
