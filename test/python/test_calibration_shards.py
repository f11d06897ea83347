"""qnt.calibration: sharded calibration, in this process and on a Dask
LocalCluster, against one quant-run --calibrate over all samples.

Min-max statistics must be equal bit for bit for any sharding; histograms
within the tolerances `calibrate` documents.  Needs Debian's
python3-distributed (Dask); without it the Dask tests fail, never skip.
"""

import json
import time

import pytest
from frontend_util import nn, np, qdata, qnt, run_tool, torch

from qnt import calibration

SAMPLES = 24

# distributed 2022.12's LocalCluster on Debian's tornado.
pytestmark = pytest.mark.filterwarnings("ignore:make_current is deprecated:DeprecationWarning")


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.pool(self.conv2(self.relu(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """{observer kind: prepared module, "x": [24, 3, 8, 8] data,
    "test": an .npz of other samples}."""
    tmp = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    module = SmallCnn().eval()
    x = torch.randn(SAMPLES, 3, 8, 8)
    info = qnt.export(module, (x[:1],), tmp / "fp32.mlir")
    assert info.inputs == [("x", (1, 3, 8, 8))]
    prepared = {}
    for observer in ("minmax", "histogram", "moving_average_minmax"):
        prepared[observer] = tmp / f"prepared_{observer}.mlir"
        run_tool("quant-opt", tmp / "fp32.mlir", "--qnt-ptq-pipeline=qconfig=x86 "
                 f"activation-observer={observer}", "-o", prepared[observer])
    test = tmp / "test.npz"
    qdata.save(test, {"x": torch.randn(16, 3, 8, 8) * 1.5}, batch=1)
    return {**prepared, "x": x, "test": test}


@pytest.fixture(scope="module")
def client():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        pytest.fail(f"dask.distributed is missing ({e}): install Debian's python3-distributed",
                    pytrace=False)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def stats(path):
    with open(path) as f:
        return json.load(f)


def int8_outputs(prepared, stats_file, test, tmp_path):
    """The INT8 module folded from ``stats_file``, run on ``test``."""
    int8, out = tmp_path / f"{stats_file.stem}.int8.mlir", tmp_path / f"{stats_file.stem}.out.npz"
    run_tool("quant-opt", prepared, f"--qnt-fold-calibration=stats={stats_file}",
             "--qnt-convert", "-o", int8)
    run_tool("quant-run", int8, "-i", test, "--samples", "--quiet", "-o", out)
    return qdata.load(out)["output"]


def test_minmax_shards_equal(model, client, tmp_path):
    """1 shard here, 2 on Dask workers, 3 here: the same file, the same INT8 model."""
    data = {"x": model["x"]}
    calls = []
    runs = {
        "one": dict(),
        "dask": dict(client=client),
        "three": dict(shards=3, progress=lambda done, total: calls.append((done, total))),
    }
    results, outputs = {}, {}
    for tag, kwargs in runs.items():
        results[tag] = calibration.calibrate(model["minmax"], data, tmp_path / f"{tag}.json",
                                             names=["x"], batch=1, **kwargs)
        outputs[tag] = int8_outputs(model["minmax"], tmp_path / f"{tag}.json", model["test"],
                                    tmp_path)
    print({tag: f"{r['shards']} shards {r['seconds']:.2f} s" for tag, r in results.items()})
    assert [r["shards"] for r in results.values()] == [1, 2, 3]
    assert all(r["samples"] == SAMPLES for r in results.values())
    assert results["dask"]["stats"] == str(tmp_path / "dask.json")
    # Progress as quant-run reports it: increasing, every shard's end, the total.
    done = [d for d, _ in calls]
    assert done == sorted(done) and {8, 16, 24} <= set(done) and calls[-1] == (24, 24)
    assert all(t == 24 for _, t in calls)
    one = stats(tmp_path / "one.json")
    assert one["num_samples"] == SAMPLES
    assert {o["kind"] for o in one["observers"].values()} == {"minmax", "per_channel_minmax"}
    assert stats(tmp_path / "dask.json") == one
    assert stats(tmp_path / "three.json") == one
    np.testing.assert_array_equal(outputs["dask"], outputs["one"])
    np.testing.assert_array_equal(outputs["three"], outputs["one"])
    assert not list(tmp_path.glob(".calibrate.*"))  # the shards are gone


def cdf(observer, points):
    """The histogram's piecewise-linear CDF at ``points``, normalized to 1."""
    counts = np.asarray(observer["histogram"], np.float64)
    edges = np.linspace(observer["min"], observer["max"], len(counts) + 1)
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    return np.interp(points, edges, cumulative / cumulative[-1])


def test_histogram_shards(model, client, tmp_path):
    """Histograms merge approximately: min and counts exact, the rest within
    the tolerances `calibrate` states."""
    data = {"x": model["x"]}
    calibration.calibrate(model["histogram"], data, tmp_path / "one.json", names=["x"], batch=1)
    reference = stats(tmp_path / "one.json")
    want = int8_outputs(model["histogram"], tmp_path / "one.json", model["test"], tmp_path)
    step = (want.max() - want.min()) / 255
    for tag, kwargs in {"dask2": dict(client=client), "three": dict(shards=3)}.items():
        calibration.calibrate(model["histogram"], data, tmp_path / f"{tag}.json", names=["x"],
                              batch=1, **kwargs)
        merged = stats(tmp_path / f"{tag}.json")
        assert merged["num_samples"] == SAMPLES
        assert merged["observers"].keys() == reference["observers"].keys()
        for oid, want_o in reference["observers"].items():
            got_o = merged["observers"][oid]
            if want_o["kind"] != "histogram":  # the weights' per-channel min-max
                assert got_o == want_o, oid
                continue
            assert got_o["kind"] == "histogram"
            assert (got_o["count"], got_o["calls"]) == (want_o["count"], want_o["calls"])
            assert got_o["min"] == want_o["min"], oid
            width = want_o["max"] - want_o["min"]
            max_error = abs(got_o["max"] - want_o["max"]) / width
            mass = sum(want_o["histogram"])
            mass_error = abs(sum(got_o["histogram"]) - mass) / mass
            points = np.linspace(want_o["min"], max(want_o["max"], got_o["max"]), 1000)
            cdf_error = np.abs(cdf(got_o, points) - cdf(want_o, points)).max()
            print(f"{tag} {oid}: max off by {max_error:.2%} of the range, "
                  f"mass by {mass_error:.2%}, normalized CDF by {cdf_error:.2%}")
            assert max_error <= 0.01, oid
            assert mass_error <= 0.02, oid
            assert cdf_error <= 0.08, oid
        got = int8_outputs(model["histogram"], tmp_path / f"{tag}.json", model["test"], tmp_path)
        steps = np.abs(got - want).max() / step
        print(f"{tag}: INT8 outputs within {steps:.2f} output steps")
        assert steps <= 3


def _batches(x, size):
    for i in range(0, len(x), size):
        yield x[i:i + size]


def test_inputs_same_stats(model, tmp_path):
    """Every kind of input gives the statistics of the dict."""
    x = model["x"]
    labels = torch.arange(SAMPLES)
    npz = tmp_path / "data.npz"
    qdata.save(npz, {"x": x}, batch=1, labels=labels)
    inputs = {
        "dict": {"x": x},
        "tensor": x.numpy(),
        "loader": torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, labels),
                                              batch_size=5),
        "tuples": [(b, b.sum()) for b in _batches(x, 4)],
        "generator": _batches(x.numpy().astype(np.float64), 6),
        "npz": npz,
        "npz_str": str(npz),
    }
    results = {tag: calibration.calibrate(model["minmax"], data, tmp_path / f"{tag}.json",
                                          names=["x"], batch=1, shards=2)
               for tag, data in inputs.items()}
    reference = stats(tmp_path / "dict.json")
    for tag, result in results.items():
        assert result["samples"] == SAMPLES, tag
        assert stats(tmp_path / f"{tag}.json") == reference, tag


def test_write_shards_round_robin(tmp_path):
    x = np.arange(7 * 2 * 3, dtype=np.float32).reshape(7 * 2, 3)
    paths = calibration.write_shards(_batches(x, 4), ["a"], 2, tmp_path, shards=3)
    assert [p.name for p in paths] == ["shard0.npz", "shard1.npz", "shard2.npz"]
    samples = x.reshape(7, 2, 3)
    for s, path in enumerate(paths):
        shard = qdata.load(path)
        assert shard.keys() == {"a"}
        np.testing.assert_array_equal(shard["a"], samples[s::3])
    # Fewer samples than shards: only the non-empty ones.
    assert len(calibration.write_shards({"a": x[:4]}, ["a"], 2, tmp_path / "few",
                                        shards=3)) == 2
    # Integer and bool inputs keep their dtype; float64 becomes float32.
    paths = calibration.write_shards([(np.ones((2, 4), np.int64), np.zeros((2, 4), bool),
                                       np.zeros((2, 4)))], ["ids", "mask", "f"], 1,
                                     tmp_path / "dtypes")
    assert {k: v.dtype for k, v in qdata.load(paths[0]).items()} == {
        "ids": np.int64, "mask": np.bool_, "f": np.float32}


def test_write_shards_streams_up_to_limit(tmp_path):
    """An endless generator: read only up to ``limit`` samples."""
    pulled = []

    def endless():
        while True:
            pulled.append(1)
            yield np.full((3, 2), len(pulled), np.float32)

    paths = calibration.write_shards(endless(), ["a"], 1, tmp_path, shards=2, limit=7)
    assert len(pulled) == 3
    assert [len(qdata.load(p)["a"]) for p in paths] == [4, 3]


def test_errors(model, tmp_path):
    x = model["x"].clone()
    x[5, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"input 'x': sample 5 has NaN"):
        calibration.calibrate(model["minmax"], _batches(x, 4), tmp_path / "nan.json",
                              names=["x"], batch=1, shards=2)
    x[5, 1, 2, 3] = float("inf")
    with pytest.raises(ValueError, match=r"sample 2 has NaN or Inf"):  # samples of 2
        calibration.write_shards({"x": x}, ["x"], 2, tmp_path / "inf")
    assert not list((tmp_path / "inf").glob("*"))
    with pytest.raises(ValueError, match="no calibration samples"):
        calibration.calibrate(model["minmax"], iter([]), tmp_path / "empty.json",
                              names=["x"], batch=1)
    with pytest.raises(ValueError, match="cannot split 5 examples"):
        calibration.write_shards([np.zeros((5, 3))], ["x"], 2, tmp_path / "split")
    with pytest.raises(ValueError, match="no array 'y'"):
        qdata.save(tmp_path / "d.npz", {"x": model["x"]}, batch=1)
        calibration.write_shards(tmp_path / "d.npz", ["y"], 1, tmp_path / "npz")
    broken = tmp_path / "broken.mlir"
    broken.write_text("func.func @main(%x: tensor<1x3x8x8xf32>) {\n")
    with pytest.raises(RuntimeError, match=r"(?s)calibration shard 0 .*quant-run exited"):
        calibration.calibrate(broken, {"x": model["x"]}, tmp_path / "broken.json",
                              names=["x"], batch=1, shards=2)
    assert not (tmp_path / "broken.json").exists()
    assert not (tmp_path / "nan.json").exists()
    with pytest.raises(RuntimeError, match="moving-average statistics of several runs"):
        calibration.calibrate(model["moving_average_minmax"], {"x": model["x"]},
                              tmp_path / "average.json", names=["x"], batch=1, shards=2)
    assert not (tmp_path / "average.json").exists()
    assert not list(tmp_path.glob(".calibrate.*"))


def test_broken_module_on_dask(model, client, tmp_path):
    broken = tmp_path / "broken.mlir"
    broken.write_text("not mlir\n")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"(?s)calibration shard 0 .*quant-run exited.*error"):
        calibration.calibrate(broken, {"x": model["x"]}, tmp_path / "broken.json",
                              names=["x"], batch=1, client=client)
    assert time.monotonic() - start < 30
    assert not (tmp_path / "broken.json").exists()
