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


def test_search_example(tmp_path, capsys):
    """search.py end to end on random MobileNetV2 weights, with a budget no
    configuration meets within 3 evaluations: exit status 1, its report and
    the answer measured on the test images."""
    import search
    torch.manual_seed(0)
    torch.save(MODELS["mobilenet_v2"]().state_dict(), tmp_path / "mobilenet_v2.pt")
    out = tmp_path / "search"
    status = search.main(["--weights-dir", str(tmp_path), "--budget", "sqnr=200", "--calib",
                          "100", "--eval", "100", "--max-evaluations", "3", "--jobs", "1",
                          "--out", str(out)])
    assert status == 1
    text = capsys.readouterr().out
    assert "no candidate meets output SQNR >= 200 dB" in text and "3 evaluations" in text
    assert "top-1 on the 10000 test images: FP32 " in text
    assert (out / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "summary.txt").read_text().startswith("search: 3 evaluations")
    with pytest.raises(SystemExit):
        search.main(["--calib", "150"])  # not a multiple of the batch
