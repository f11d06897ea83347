"""qnt.accuracy.search (``python -m qnt quantize --accuracy-budget``): the
fastest configuration within an accuracy budget, on the planted model of
test_analyze.py (qnnpack: per-tensor weights; conv "0" has a channel 1000x
the others on an input channel that is always 0).

Measured on it (output SQNR vs FP32): as given 17.0 dB, per-channel
weights 35.3 dB, per-channel with conv "0" in float 47.0 dB. Latencies are
measured, so the tests assert what the search must do whatever the
timings: the budget is met (or said not to be) and the answer's metric is
that of the model returned.
"""

import math
import re

from frontend_util import np, pytest, torch
from test_analyze import images, small_cnn
from test_python_api import _quantize_cli, _silent_channel_data

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
from qnt import compare  # noqa: E402
from qnt.accuracy.search import Budget, search  # noqa: E402

# distributed 2022.12's LocalCluster on Debian's tornado.
pytestmark = pytest.mark.filterwarnings("ignore:make_current is deprecated:DeprecationWarning")


def spread_model():
    model = small_cnn()
    with torch.no_grad():
        model[0].weight[0, 2] = 1000 * model[0].weight.abs().max()
    return model


def run_search(budget, qconfig_="qnnpack", **kwargs):
    model = spread_model()
    result = search(model, (images(1, 0, True),), {"x": images(8, 1, True)},
                    {"x": images(8, 2, True)}, budget=budget, qconfig=qconfig_,
                    max_workers=2, bench_runs=5, **kwargs)
    return model, result


def output_sqnr(model, compiled, seed=2):
    x = images(8, seed, True)
    with torch.no_grad():
        want = np.concatenate([model(x[i:i + 1]).numpy() for i in range(len(x))])
    got = np.concatenate([np.asarray(compiled(x[i:i + 1].numpy())) for i in range(len(x))])
    return compare.sqnr_db(want, got)


@pytest.fixture(scope="module")
def per_channel():
    return run_search("sqnr=30")


def test_model_wide_fix_is_enough(per_channel, tmp_path):
    """30 dB: per-channel weights reach it at no latency cost; the search
    stops after the model-wide variants (4 observers / per-channel + 1)."""
    model, r = per_channel
    assert r.met and r.kwargs == {"qconfig": "qnnpack", "per_channel": True}
    assert r.best.metric >= 30 and r.candidates[0].metric < 30
    assert r.evaluations == 5 and len(r.candidates) == 5
    assert all(c.latency_ms > 0 and c.met == (c.metric >= 30) for c in r.candidates)
    # The model returned computes the integers that were evaluated.
    assert abs(output_sqnr(model, r.model) - r.best.metric) < 1e-3
    assert r.model.manifest["mode"] == "static"
    r.save(tmp_path)
    md = (tmp_path / "search.md").read_text()
    assert "**Found:**" in md and "per-channel weights" in md and "(answer)" in md
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_layer_kept_in_float():
    """45 dB needs conv "0" in float on top of per-channel weights: the
    answer says so as quantize_static arguments, and quantize_static with
    them reproduces its metric."""
    model, r = run_search("sqnr=45")
    assert r.met, r.message
    assert r.kwargs["per_channel"] is True and "0" in r.kwargs["exclude"], r.kwargs
    assert r.best.metric >= 45
    again = qnt.quantize_static(model, (images(1, 0, True),), {"x": images(8, 1, True)},
                                **r.kwargs)
    assert abs(output_sqnr(model, again) - r.best.metric) < 1e-3
    phases = {c.phase.split(" ")[0] for c in r.candidates}
    assert phases >= {"1", "2", "3"}


def test_budget_not_met_within_the_limit():
    """An SQNR no configuration reaches within 7 evaluations: the search says
    so, stops at the limit and returns the best candidate found."""
    _, r = run_search("sqnr=200", max_evaluations=7)
    assert not r.met and r.evaluations == 7 and len(r.candidates) == 7
    assert "no candidate meets output SQNR >= 200 dB" in r.message
    assert "limit of 7 evaluations" in r.message
    assert r.best.metric == max(c.metric for c in r.candidates)
    assert r.model is not None


def test_top1_budget():
    """top1: the drop in points against the FP32 model's accuracy on the
    eval labels (here the FP32 argmax itself, so FP32 is 100 %)."""
    model = spread_model()
    x = images(16, 2, True)
    with torch.no_grad():
        labels = model(x).argmax(1).numpy()
    r = search(model, (images(1, 0, True),), {"x": images(8, 1, True)},
               {"x": x, "labels": labels}, budget="top1=100", qconfig="qnnpack",
               max_workers=2, bench_runs=3)
    assert r.fp32_metric == 100.0 and r.threshold == 0.0
    assert r.met and r.evaluations == 1 and r.best.tag == "c0"
    assert r.metric_name == "top-1 accuracy (%)"
    with pytest.raises(ValueError, match="labels"):
        search(model, (images(1, 0, True),), {"x": images(8, 1, True)}, {"x": x},
               budget="top1=1", qconfig="qnnpack", bench_runs=3)


@pytest.mark.parametrize("budget", ["top1", "top1=-1", "top1=101", "sqnr=nan", "acc=1", ""])
def test_bad_budget(budget):
    with pytest.raises(ValueError, match="budget"):
        Budget.parse(budget)
    with pytest.raises(ValueError, match="budget"):
        Budget("acc", 1.0)
    with pytest.raises(ValueError, match="budget"):
        Budget("sqnr", math.nan)


def test_budget_parse():
    assert Budget.parse("top1=0.5") == Budget("top1", 0.5)
    assert Budget.parse(" sqnr : 30 ") == Budget("sqnr", 30.0)
    assert Budget.parse("TOP1=1") == Budget("top1", 1.0)
    assert Budget.parse("top1=0.5").threshold(90.0) == 89.5
    assert Budget.parse("sqnr=30").threshold(math.inf) == 30.0


@pytest.mark.parametrize("option", [{"max_evaluations": 0}, {"bench_runs": 0},
                                    {"layer_limit": 0}, {"max_workers": 0},
                                    {"num_threads": -1}])
def test_bad_options(option):
    with pytest.raises(ValueError):
        search(spread_model(), (images(1, 0, True),), {"x": images(2, 1)}, None,
               budget="sqnr=30", qconfig="qnnpack", **option)


def test_model_dir_checked_before_the_search(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ValueError, match="not an empty directory"):
        search(spread_model(), (images(1, 0, True),), {"x": images(2, 1)}, None,
               budget="sqnr=30", qconfig="qnnpack", model_dir=tmp_path / "taken")


def test_nan_in_eval_data():
    x = images(4, 2)
    x[1, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN or Inf in sample 1"):
        search(spread_model(), (images(1, 0),), {"x": images(4, 1)}, {"x": x},
               budget="sqnr=30", qconfig="qnnpack")


def test_dask_client_gives_the_same_answer(per_channel):
    """The evaluations on a Dask LocalCluster's worker processes: the same
    candidates and metrics as in local processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        pytest.fail(f"dask.distributed is missing ({e}): install Debian's python3-distributed",
                    pytrace=False)
    _, local = per_channel
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        _, remote = run_search("sqnr=30", client=client)
    assert remote.kwargs == local.kwargs and remote.workers.startswith("<Client")
    assert [(c.description, c.metric) for c in remote.candidates] == \
        [(c.description, c.metric) for c in local.candidates]


def test_one_command(tmp_path):
    """python -m qnt quantize --accuracy-budget: the model found in -o, its
    search.md / search.png, and the summary's section; with --analyze the
    analysis is of the model found."""
    _silent_channel_data(tmp_path / "calib.npz")
    out = tmp_path / "out"
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", "--qconfig", "qnnpack",
                      "--runs", "5", "--accuracy-budget", "sqnr=30", "--jobs", "2",
                      "--analyze", "-o", out, model="spread_cnn")
    assert r.returncode == 0, r.stderr
    assert (out / "search.md").read_text().startswith("# Mixed-precision search")
    assert (out / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "libmodel.so").is_file()
    section = r.stdout[r.stdout.index("  accuracy budget"):]
    assert "output SQNR >= 30 dB: met" in section, section
    # On these held-out samples per-channel weights alone may fall short.
    assert re.search(r"arguments +\{'qconfig': 'qnnpack', 'per_channel': True[,}]", section), \
        section
    assert re.search(r"cost +\d+ evaluations of 40, [\d.]+ s", section), section
    sqnr = float(re.search(r"FP32 vs INT8 +SQNR (-?[\d.]+) dB", r.stdout)[1])
    assert sqnr >= 30, r.stdout
    model8 = qnt.load(out)
    assert "--qnt-per-channel" in " ".join(model8.manifest["pipeline"])
    assert "Settings: `{'qconfig': 'qnnpack', 'per_channel': True" in \
        (out / "analysis.md").read_text()
    assert re.search(r"time +search \(export, calibrate, evaluate, compile\) [\d.]+s", r.stdout)


def test_one_command_budget_not_met(tmp_path):
    """A budget no candidate meets: the best candidate found is written to
    -o, the summary says NOT met, a warning on stderr, exit status 3."""
    _silent_channel_data(tmp_path / "calib.npz")
    out = tmp_path / "out"
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", "--qconfig", "qnnpack",
                      "--runs", "3", "--accuracy-budget", "sqnr=200", "--max-evaluations", "2",
                      "-o", out, model="spread_cnn")
    assert r.returncode == 3, r.stderr
    assert "output SQNR >= 200 dB: NOT met" in r.stdout
    assert "qnt: warning: no candidate meets output SQNR >= 200 dB" in r.stderr
    assert "limit of 2 evaluations" in r.stderr
    assert (out / "libmodel.so").is_file() and (out / "search.md").is_file()


@pytest.mark.parametrize("args, message", [
    (("--holdout", "-1"), "--holdout must be 0"),
    (("--mode", "dynamic", "--accuracy-budget", "sqnr=30"), "needs --mode static"),
    (("--accuracy-budget", "sqnr"), "accuracy budget 'sqnr'"),
    (("--accuracy-budget", "top1=1"), "no 'labels' array"),
    (("--max-evaluations", "3"), "only with --accuracy-budget"),
    (("--jobs", "2"), "--jobs: only with --analyze or --accuracy-budget"),
    (("--accuracy-budget", "sqnr=30", "--max-evaluations", "0"), "positive integer"),
])
def test_one_command_errors(tmp_path, args, message):
    _silent_channel_data(tmp_path / "calib.npz")
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", *args, "-o",
                      tmp_path / "out")
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_full_range_preset_where_the_cpu_has_8bit_dot_products():
    """x86 (7-bit activations): the onednn preset is a model-wide variant
    exactly when the CPU has 8-bit dot products (on others it is inexact)."""
    from qnt.accuracy.analyze import _cpu_has_8bit_dot
    _, r = run_search("sqnr=200", qconfig_="x86", max_evaluations=12)
    presets = {c.settings.qconfig for c in r.candidates if c.phase == "2 model-wide"}
    assert presets == ({"x86", "onednn"} if _cpu_has_8bit_dot() else {"x86"})
    described = [c.description for c in r.candidates if c.settings.qconfig == "onednn"]
    assert all("the onednn preset" in d for d in described), described
