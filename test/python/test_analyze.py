"""qnt.accuracy.analyze (``python -m qnt analyze``, ``CompiledModel.analyze``):
small models with a planted problem, and the analysis must find the layer,
name the cause and check a fix that recovers the metric."""

import os
import subprocess

from frontend_util import REPO_ROOT, np, pytest, torch
# The API tests' interpreter and absolute QNT_BUILD_DIR (set on import).
from test_python_api import PYTHON, nn

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt.accuracy.analyze import Settings, analyze, settings_from_manifest  # noqa: E402


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def images(n, seed, silent_channel=False):
    x = torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    if silent_channel:
        x[:, 2] = 0.0
    return x


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    """qnnpack (per-tensor weights), and conv "0" has one output channel
    whose weights on a silent input channel (a padding channel, always 0)
    are 1000x the others: its channel ranges span ~1000x, so one scale for
    the tensor rounds every other channel's weights to 0."""
    model = small_cnn()
    with torch.no_grad():
        model[0].weight[0, 2] = 1000 * model[0].weight.abs().max()
    out = tmp_path_factory.mktemp("spread")
    analysis = analyze(model, (images(1, 0),), {"x": images(8, 1, True)},
                       {"x": images(8, 2, True)}, qconfig="qnnpack", max_workers=2,
                       out_dir=out)
    return analysis, out


def test_per_tensor_spread_found_and_fixed(spread):
    """The worst layer is the planted conv, the cause its weight spread, and
    per-channel weights for it (override onednn) improve the SQNR."""
    a, _ = spread
    assert a.worst[0] == "0"
    conv = a.layer("0")
    assert conv.weight_per_tensor and 500 < conv.channel_range_ratio < 2000
    assert any("per-tensor weights" in c for c in conv.causes)
    fix = next(t for t in a.fixes if t.cause == "per-tensor weights")
    assert fix.layer == "0" and fix.kwargs == {"qconfig": "qnnpack", "override": {"0": "onednn"}}
    assert fix.metric > a.int8_metric + 10   # measured: 17.0 -> 35.8 dB


def test_only_and_all_but_metrics_agree(spread):
    """One bad layer: keeping only it in float recovers most of the SQNR,
    quantizing only it loses about all that the INT8 model loses, and
    quantizing only any other layer loses little."""
    a, _ = spread
    conv = a.layer("0")
    assert conv.all_but_metric > a.int8_metric + 20          # 46.2 vs 17.0 dB
    assert abs(conv.only_metric - a.int8_metric) < 2         # 17.1
    for layer in a.layers[1:]:
        assert layer.only_metric > conv.only_metric + 20     # 51.5, 47.8
    assert a.evaluations == 1 + 2 * len(a.layers) + len(a.trials)


def test_markdown_table_and_chart(spread):
    a, out = spread
    text = (out / "analysis.md").read_text()
    assert text == a.to_markdown()
    assert "| layer | op | SQNR (dB) | only this quantized | all but this |" in text
    for layer in a.layers:
        assert f"| {layer.name} |" in text or f"| **{layer.name}** |" in text
    assert "override={'0': 'onednn'}" in text and "evaluations" in text
    assert (out / "analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_outliers_in_calibration_data():
    """One value of 500 in 16 calibration samples under min-max observers
    (through CompiledModel.analyze, settings from the manifest): the input
    range is outlier-dominated, and the percentile or entropy observer,
    tried, improves a custom metric (needs one more calibration: histograms)."""
    model = small_cnn()
    calib, evaluation = images(16, 1), images(8, 2)
    calib[3, 1, 5, 7] = 500.0
    with torch.no_grad():
        reference = np.stack([model(x[None]).numpy() for x in evaluation])

    def neg_mean_abs_error(outputs, data):   # outputs: [S] + output shape per output
        assert outputs[0].shape == reference.shape and data["input"].shape == (8, 1, 3, 16, 16)
        return -float(np.abs(outputs[0] - reference).mean())

    model8 = qnt.quantize_static(model, (images(1, 0),), {"x": calib}, "onednn",
                                 observer="minmax")
    a = model8.analyze({"x": calib}, {"x": evaluation}, metric=neg_mean_abs_error,
                       max_workers=2)
    assert a.settings == {"qconfig": "onednn", "observer": "minmax"}
    assert -1e-5 < a.fp32_metric <= 0 and a.int8_metric < -1e-3  # FP32: quant-run
    first = a.layer("0")
    assert first.range_ratios["in"] > 30 and first.ranges["in"][1] > 400
    assert any("input range" in c and "outliers" in c for c in first.causes)
    fix = a.fixes[0]
    assert fix.cause == "outliers" and fix.kwargs["observer"] in ("percentile", "entropy")
    assert fix.metric > a.int8_metric / 2    # the error at least halved
    assert a.calibrations >= 2


def test_bad_arguments():
    model = small_cnn()
    x = images(1, 0)
    for kwargs, message in [({"worst": 0}, "worst"), ({"qconfig": "bogus"}, "qconfig"),
                            ({"metric": "auc"}, "metric"), ({"max_workers": 0}, "max_workers")]:
        with pytest.raises(ValueError, match=message):
            analyze(model, (x,), {"x": images(2, 1)}, None, **kwargs)
    with pytest.raises(ValueError, match="calibration_data is required"):
        analyze(model, (x,), None, {"x": images(2, 1)})
    with pytest.raises(ValueError, match="quantize_static"):
        settings_from_manifest({"mode": "dynamic", "pipeline": []})
    manifest = {"mode": "static", "numerics": "qnt", "pipeline": [
        "quant-opt m.mlir --qnt-fuse --qnt-prepare=qconfig=qnnpack activation-observer=entropy "
        "exclude=a,b.c override=fc=onednn -o p.mlir",
        "quant-opt p.mlir --qnt-fold-calibration=stats=s.json --qnt-per-channel --qnt-convert"]}
    assert settings_from_manifest(manifest) == Settings(
        "qnnpack", "entropy", True, ("a", "b.c"), (("fc", "onednn"),), "qnt")


def _cli(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT / 'python'}:{tmp_path}")
    return subprocess.run([PYTHON, "-m", "qnt", "analyze", "--model", "tinymodels:tiny",
                           "--input-shape", "1,3,16,16", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)


def test_command_line(tmp_path):
    (tmp_path / "tinymodels.py").write_text(
        "import torch.nn as nn\n"
        "def tiny():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),\n"
        "                         nn.Linear(4 * 16 * 16, 5))\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((10, 1, 3, 16, 16), np.float32))
    bad = rng.standard_normal((4, 1, 3, 16, 16), np.float32)
    bad[2, 0, 1] = np.nan
    np.savez(tmp_path / "bad.npz", input=bad)
    result = _cli(tmp_path, "--calib", "calib.npz", "--qconfig", "qnnpack", "--jobs", "2",
                  "-o", "out")
    assert result.returncode == 0, result.stderr
    assert "| layer | op | SQNR (dB) |" in result.stdout and "evaluations" in result.stdout
    assert (tmp_path / "out" / "analysis.md").read_text() == result.stdout
    assert (tmp_path / "out" / "analysis.png").read_bytes()[:4] == b"\x89PNG"
    for args, message in [(("--calib", "missing.npz"), "--calib missing.npz: no such file"),
                          (("--calib", "calib.npz", "--eval", "bad.npz"),
                           "'input' has NaN or Inf in sample 2")]:
        result = _cli(tmp_path, *args, "-o", "out2")
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert not (tmp_path / "out2").exists()
