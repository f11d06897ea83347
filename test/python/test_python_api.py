"""qnt.quantize_static / quantize_dynamic / convert_qat and
``python -m qnt quantize``: the same integers as the command line, the
examples of docs/python-api.md and the README run as written, every
failure names its step and leaves nothing behind."""

import importlib
import os
import re
import subprocess
from pathlib import Path

from frontend_util import REPO_ROOT, np, pytest, run_tool, torch

import qnt  # noqa: E402 (frontend_util puts python/ on the path)
import qnt.data as qdata  # noqa: E402
from qnt.api import QuantizeError  # noqa: E402

PYTHON = "/usr/bin/python3"
nn = torch.nn
# The documented examples run in a temporary directory: an absolute build.
os.environ["QNT_BUILD_DIR"] = os.path.abspath(os.environ.get("QNT_BUILD_DIR",
                                                             REPO_ROOT / "build"))


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def spread_cnn():
    """small_cnn whose first conv has one output channel with weights 1000x
    the others on input channel 2 (always 0 in the data): with per-tensor
    weights (qnnpack) every other channel rounds to 0 (test_analyze.py)."""
    model = small_cnn()
    with torch.no_grad():
        model[0].weight[0, 2] = 1000 * model[0].weight.abs().max()
    return model


def calibration(n=8, batch=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 16, 16, generator=g) for _ in range(n)]


def test_static_equals_the_command_line(tmp_path):
    """The API's model gives the integers of the documented commands."""
    model, calib = small_cnn(), calibration()
    x = torch.randn(1, 3, 16, 16)
    model8 = qnt.quantize_static(model, (x,), calib, "x86")
    fp32, prepared, stats, int8 = (tmp_path / n for n in (
        "m.mlir", "p.mlir", "s.json", "i.mlir"))
    info = qnt.export(model, (x,), fp32)
    name = info.inputs[0][0]
    qdata.save(tmp_path / "c.npz", {name: torch.cat(calib)}, batch=1)
    run_tool("quant-opt", fp32, "--qnt-fuse", "--qnt-prepare=qconfig=x86", "-o", prepared)
    run_tool("quant-run", prepared, "--calibrate", tmp_path / "c.npz", "--stats-file", stats,
             "--quiet")
    run_tool("quant-opt", prepared, f"--qnt-fold-calibration=stats={stats}", "--qnt-convert",
             "-o", int8)
    np.savez(tmp_path / "in.npz", **{name: x.numpy()})
    run_tool("quant-run", int8, "-i", tmp_path / "in.npz", "-o", tmp_path / "out.npz",
             "--quiet")
    want = np.load(tmp_path / "out.npz")["output"]
    got = model8(x)
    assert isinstance(got, torch.Tensor)
    assert np.array_equal(got.numpy(), want)
    assert np.array_equal(model8(x.numpy()), want)  # numpy in, numpy out
    # Layers are named by module path (the steps keep the locations).
    assert sorted(e.name for e in model8.report([x])) == ["0", "4", "8"]
    manifest = model8.manifest
    assert manifest["mode"] == "static" and manifest["calibration_samples"] == 8
    assert any("--qnt-prepare=qconfig=x86" in c for c in manifest["pipeline"])


def test_calibration_data_forms_agree():
    """A DataLoader of (inputs, labels), a list of tensors and an .npz path
    give the same model."""
    model, calib = small_cnn(), calibration()
    x = torch.randn(1, 3, 16, 16)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.cat(calib), torch.zeros(8, dtype=torch.long)),
        batch_size=1)
    a = qnt.quantize_static(model, (x,), calib)(x)
    b = qnt.quantize_static(model, (x,), loader)(x)
    assert torch.equal(a, b)


def test_static_on_a_dask_cluster():
    """Calibration shards on 2 workers (a LocalCluster): the same model as
    in-process, bit for bit (min-max statistics merge exactly)."""
    from dask.distributed import Client, LocalCluster
    model, calib = small_cnn(), calibration(12)
    x = torch.randn(1, 3, 16, 16)
    want = qnt.quantize_static(model, (x,), calib, observer="minmax")(x)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        got = qnt.quantize_static(model, (x,), calib, observer="minmax", client=client)
        assert got.manifest["calibration_samples"] == 12
        assert torch.equal(got(x), want)


def test_dynamic_and_qat():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    x = torch.randn(2, 16)
    model8 = qnt.quantize_dynamic(model, (x,), {nn.Linear}, dtype=torch.qint8)
    got, want = model8(x), model(x)
    assert (got - want).abs().max() <= 0.05 * want.abs().max()
    assert model8.manifest["summary"]["op_types"]["qnt.linear"].get("float", 0) == 0
    with pytest.raises(ValueError, match="Conv2d"):
        qnt.quantize_dynamic(model, (x,), {nn.Linear, nn.Conv2d})
    with pytest.raises(ValueError, match="qint8"):
        qnt.quantize_dynamic(model, (x,), dtype=torch.quint8)


def test_errors_name_the_step():
    model = small_cnn()
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match="qconfig"):
        qnt.quantize_static(model, (x,), calibration(), "nope")
    with pytest.raises(ValueError, match="numerics must be one of"):
        qnt.quantize_static(model, (x,), calibration(), numerics="ort")
    bad = calibration()
    bad[3][0, 0, 0, 0] = float("nan")
    with pytest.raises(QuantizeError, match="calibrate") as e:
        qnt.quantize_static(model, (x,), bad)
    assert "3" in str(e.value)
    with pytest.raises(QuantizeError, match="prepare"):
        qnt.quantize_static(model, (x,), calibration(), exclude=["x"],
                            override={"y": "qnnpack"}, observer="minmax",
                            build_dir="/nonexistent")  # no quant-opt there


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("doc", ["docs/python-api.md", "README.md"])
def test_documented_examples_run(doc, tmp_path):
    blocks = _python_blocks(REPO_ROOT / doc)
    assert len(blocks) >= 3, doc
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, doc, "exec"), {})
    finally:
        os.chdir(cwd)


def _quantize_cli(tmp_path, *args, model="small_cnn"):
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "models.py").write_text(
        "import sys\nsys.path.insert(0, %r)\nfrom test_python_api import small_cnn, "
        "spread_cnn\n" % str(REPO_ROOT / "test" / "python"))
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT / 'python'}:{tmp_path}")
    return subprocess.run([PYTHON, "-m", "qnt", "quantize", "--model", f"pkg.models:{model}",
                           "--input-shape", "1,3,16,16", *map(str, args)],
                          capture_output=True, text=True, env=env)


def test_one_command(tmp_path):
    qdata.save(tmp_path / "calib.npz", {"input": torch.cat(calibration(20))}, batch=1)
    out = tmp_path / "out"
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", "--runs", "5", "-o", out)
    assert r.returncode == 0, r.stderr
    for what in ("ops quantized", "weights", "SQNR", "argmax agreement", "latency",
                 "held-out"):
        assert what in r.stdout, (what, r.stdout)
    assert "calibrate: 16/16 samples" in r.stderr, r.stderr
    model8 = qnt.load(out)
    x = torch.randn(1, 3, 16, 16)
    assert model8(x).shape == (1, 10)
    assert (out / "summary.txt").read_text() == r.stdout
    # A failure: the data set's input has the wrong shape; nothing in -o.
    qdata.save(tmp_path / "bad.npz", {"input": torch.randn(20, 3, 8, 8)}, batch=1)
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "bad.npz", "-o", tmp_path / "o2")
    assert r.returncode == 1 and "calibrate" in r.stderr, r.stderr
    assert not (tmp_path / "o2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o2")]


def _silent_channel_data(path, count=20):
    x = torch.randn(count, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    x[:, 2] = 0.0
    qdata.save(path, {"input": x}, batch=1)


def test_one_command_analyze(tmp_path):
    """--analyze: the per-layer analysis of the model just built, on the
    held-out samples; analysis.md and .png in -o, the worst layers, their
    causes and the checked fixes (as flags that work) in the summary."""
    _silent_channel_data(tmp_path / "calib.npz")
    out = tmp_path / "out"
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", "--qconfig", "qnnpack",
                      "--runs", "5", "--analyze", "--worst", "2", "--jobs", "2", "-o", out,
                      model="spread_cnn")
    assert r.returncode == 0, r.stderr
    assert (out / "analysis.md").read_text().startswith("# Quantization analysis")
    assert (out / "analysis.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "summary.txt").read_text() == r.stdout
    section = r.stdout[r.stdout.index("  analysis  "):]
    assert re.search(r"output SQNR vs FP32 \(dB\) on 4 held-out examples: FP32 inf, "
                     r"INT8 -?\d+\.\d{4}\n", section), section
    assert re.search(r"\d+ evaluations, \d+ calibration\(s\), [\d.]+s wall time; "
                     + re.escape(f"{out}/analysis.md, {out}/analysis.png"), section), section
    # The planted layer first: its SQNR, the metric without it, the cause.
    assert re.search(r"worst layer 1 +0 \(conv2d\): SQNR -?[\d.]+ dB, all but it quantized "
                     r"-?[\d.]+", section), section
    assert "cause         per-tensor weights whose channel ranges span" in section, section
    assert len(re.findall(r"worst layer \d", section)) == 2, section
    fix = re.search(r"fix +per-channel weights for 0 \(onednn preset\).*: "
                    r"(-?[\d.]+) -> (-?[\d.]+)\n.*quantize_static\(\.\.\., "
                    r"qconfig='qnnpack', override=\{'0': 'onednn'\}\)\n.*"
                    r"flags: --qconfig qnnpack --override 0=onednn\n", section)
    assert fix and float(fix[2]) > float(fix[1]) + 10, section
    for phase in ("analyzing per layer (metric sqnr, worst 2)", "per-layer SQNR",
                  "per-layer variants on 2 workers", "fixes to try"):
        assert re.search(rf"^qnt: (\d+ )?{re.escape(phase)}", r.stderr, re.M), (phase, r.stderr)
    # The flags the summary gives apply the fix: the held-out SQNR is the fix's.
    r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", "--qconfig", "qnnpack",
                      "--override", "0=onednn", "--runs", "5", "-o", tmp_path / "fixed",
                      model="spread_cnn")
    assert r.returncode == 0, r.stderr
    sqnr = float(re.search(r"FP32 vs INT8 +SQNR (-?[\d.]+) dB", r.stdout)[1])
    assert abs(sqnr - float(fix[2])) < 0.5, (sqnr, section)
    assert "analysis" not in r.stdout and not (tmp_path / "fixed" / "analysis.md").exists()


def test_one_command_analyze_errors(tmp_path):
    """--analyze is for --mode static; its options need it; nothing in -o."""
    _silent_channel_data(tmp_path / "calib.npz")
    for args, message in [
            (("--mode", "dynamic", "--analyze"),
             "--analyze needs --mode static (it quantizes variants of the model again "
             "with the calibration data), not --mode dynamic"),
            (("--worst", "2"), "--worst: only with --analyze"),
            (("--analyze", "--worst", "0"), "--worst must be a positive integer, got 0"),
            (("--analyze", "--metric", "top1"), "has no 'labels' array")]:
        r = _quantize_cli(tmp_path, "--calib", tmp_path / "calib.npz", *args,
                          "-o", tmp_path / "o")
        assert r.returncode == 1 and "qnt: error: " in r.stderr, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert not (tmp_path / "o").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o")]


def test_one_command_analyze_failure_leaves_nothing(tmp_path, monkeypatch, capsys):
    """A failure inside the analysis (here the chart, after analysis.md is
    written) leaves -o as it was (empty) and no staging directory. The data
    set has labels (one per example, batch 2): the metric is top-1, each
    held-out example with its label."""
    import qnt.__main__ as cli
    analyze_module = importlib.import_module("qnt.accuracy.analyze")  # not the function
    x = torch.randn(12, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    qdata.save(tmp_path / "calib.npz", {"input": x}, batch=2, labels=torch.arange(12) % 10)
    seen = []

    def chart(analysis, path):
        seen.append((analysis.metric_name, analysis.eval_samples, Path(path)))
        assert (Path(path).parent / "analysis.md").is_file()
        raise analyze_module.AnalyzeError(f"{path}: no chart today")
    monkeypatch.setattr(analyze_module, "_chart", chart)
    out = tmp_path / "out"
    out.mkdir()
    status = cli.main(["quantize", "--model", "test_python_api:small_cnn", "--input-shape",
                       "2,3,16,16", "--calib", str(tmp_path / "calib.npz"), "--runs", "2",
                       "--analyze", "--worst", "1", "--jobs", "1", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and "no chart today" in err, err
    # 6 samples of 2: 1 held out (2 examples, 2 labels).
    assert seen and seen[0][:2] == ("top-1 accuracy", 1), seen
    assert seen[0][2].parent.parent.name.startswith(".out."), seen  # the staging directory
    assert out.is_dir() and not list(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.npz", "out"]
