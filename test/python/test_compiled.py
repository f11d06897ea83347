"""qnt.CompiledModel: a module compiled by quant-compile, called through
ctypes. Its outputs are held to quant-run's (the JIT, same oneDNN backend)
bit for bit, on one batch, split batches and concurrent threads."""

import gc
import re
import threading

from frontend_util import nn, np, qdata, qnt, quant_run, randomize_batch_norms, run_tool, torch

from qnt.compiled import CompiledModel, load, module_summary

import pytest

BATCH = 2


class SmallCnn(nn.Module):
    """conv-bn-relu, max pool, conv-relu, max pool, linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(self.conv2(self.pool(self.stem(x))))
        return self.fc(torch.flatten(x, 1))


def x86_int8(directory):
    """qnt's static pipeline (x86 preset) on SmallCnn, locations kept for
    the per-layer report. Returns (fp32, int8) paths."""
    torch.manual_seed(0)
    model = randomize_batch_norms(SmallCnn()).eval()
    fp32, prepared, stats, int8, calib = (directory / n for n in (
        "model.mlir", "prepared.mlir", "stats.json", "int8.mlir", "calib.npz"))
    qnt.export(model, (torch.randn(BATCH, 3, 16, 16),), fp32)
    qdata.save(calib, {"x": torch.randn(4 * BATCH, 3, 16, 16)}, batch=BATCH)
    run_tool("quant-opt", fp32, "--qnt-ptq-pipeline=qconfig=x86", "--mlir-print-debuginfo",
             "-o", prepared)
    run_tool("quant-run", prepared, "--calibrate", calib, "--stats-file", stats, "--quiet")
    run_tool("quant-opt", prepared, f"--qnt-fold-calibration=stats={stats} clamp-to-quant-range",
             "--qnt-convert", "--mlir-print-debuginfo", "-o", int8)
    return fp32, int8


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    return x86_int8(tmp_path_factory.mktemp("modules"))


@pytest.fixture(scope="module")
def model(modules, tmp_path_factory):
    fp32, int8 = modules
    return CompiledModel.build(int8, tmp_path_factory.mktemp("built") / "model",
                               float_mlir=fp32, pipeline=["quant-opt ...", "quant-compile ..."],
                               extra={"note": "test"})


def inputs(rows, seed):
    return (np.random.default_rng(seed).standard_normal((rows, 3, 16, 16)) * 2).astype(np.float32)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def jit(int8, x, tmp_path):
    return quant_run(int8, {"x": x}, tmp_path)[0]


def test_outputs_equal_quant_run_bit_for_bit(model, modules, tmp_path):
    x = inputs(BATCH, 0)
    y = model(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (BATCH, 10)
    assert same_bits(y, jit(modules[1], x, tmp_path))
    t = model(torch.from_numpy(x))
    assert isinstance(t, torch.Tensor) and same_bits(t.numpy(), y)
    assert model.inputs == [{"name": "x", "shape": [BATCH, 3, 16, 16], "dtype": "float32"}]
    assert model.outputs == [{"name": "output", "shape": [BATCH, 10], "dtype": "float32"}]
    manifest = model.manifest
    assert manifest["format"] == 1 and manifest["note"] == "test"
    assert manifest["pipeline"] == ["quant-opt ...", "quant-compile ..."]
    assert sorted(p.name for p in model.directory.iterdir()) == [
        "libmodel.so", "manifest.json", "model.fp32.mlir", "model.h", "model.int8.mlir"]


def test_other_batch_sizes_run_in_chunks_of_the_compiled_one(model, modules, tmp_path):
    x = inputs(5, 1)
    y = model(x)
    assert y.shape == (5, 10)
    padded = np.concatenate([x, np.zeros((1, 3, 16, 16), np.float32)])
    for start in range(0, 6, BATCH):
        want = jit(modules[1], padded[start:start + BATCH], tmp_path)
        assert same_bits(y[start:start + BATCH], want[:min(BATCH, 5 - start)])
    assert same_bits(model(x[:1]), y[:1])  # fewer rows than the batch
    t = model(torch.from_numpy(x))
    assert isinstance(t, torch.Tensor) and same_bits(t.numpy(), y)
    with pytest.raises(ValueError, match="no rows"):
        model(x[:0])


def test_threads_give_the_sequential_results(model):
    copy = load(model.directory)  # counts its own instances
    xs = [inputs(BATCH + k % 3, 100 + k) for k in range(40)]
    want = [copy(x) for x in xs]
    got = [None] * len(xs)
    errors = []

    def worker(model, t):
        try:
            for k in range(t, len(xs), 4):
                got[k] = model(xs[k])
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(copy, t)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(same_bits(g, w) for g, w in zip(got, want))
    assert len(copy._handles) == 5  # the main thread's instance and one per worker
    handles = copy._handles
    del copy
    gc.collect()
    assert handles == []  # destroyed with the model


def test_save_and_load(model, tmp_path):
    x = inputs(3, 2)
    saved = model.save(tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(
        p.name for p in model.directory.iterdir())
    assert same_bits(load(tmp_path / "copy")(x), model(x))
    assert same_bits(saved(x), model(x))
    (tmp_path / "empty").mkdir()
    assert same_bits(model.save(tmp_path / "empty")(x), model(x))  # an empty directory is fine


def test_never_over_a_non_empty_directory(model, modules, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=re.escape(str(full))):
        CompiledModel.build(modules[1], full)
    with pytest.raises(ValueError, match=re.escape(str(full))):
        model.save(full)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    assert (full / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no temporary left


def test_missing_files_and_failed_compiles(modules, tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nothing"))):
        load(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "manifest.json").write_text('{"format": 1}')
    with pytest.raises(FileNotFoundError, match="libmodel.so"):
        load(tmp_path / "half")
    prepared = modules[1].parent / "prepared.mlir"  # still has qnt.observe ops
    with pytest.raises(RuntimeError, match="qnt.observe"):
        CompiledModel.build(prepared, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half"]  # nothing half-written


def test_shape_and_dtype_checks(model):
    with pytest.raises(ValueError, match=re.escape(
            "input 0 'x': shape [2, 4, 16, 16], expected [*, 3, 16, 16] (compiled batch 2)")):
        model(np.zeros((2, 4, 16, 16), np.float32))
    with pytest.raises(ValueError, match="2 input"):
        model(inputs(2, 0), inputs(2, 0))
    x = inputs(3, 3)
    assert same_bits(model(x.astype(np.float64)), model(x))
    assert same_bits(model(x.tolist()), model(x))



class Embedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(40, 4)

    def forward(self, ids):
        return self.table(ids).sum(1)


def test_token_ids_and_the_c_api_value_check(tmp_path):
    torch.manual_seed(0)
    module = Embedding().eval()
    qnt.export(module, (torch.zeros(2, 6, dtype=torch.long),), tmp_path / "ids.mlir")
    model = CompiledModel.build(tmp_path / "ids.mlir", tmp_path / "ids")
    assert model.inputs == [{"name": "ids", "shape": [2, 6], "dtype": "int64"}]
    ids = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [0, 0, 0, 0, 0, 39]], np.int32)
    with torch.no_grad():
        want = module(torch.from_numpy(ids).long()).numpy()
    np.testing.assert_allclose(model(ids), want, rtol=1e-6)  # int32 -> int64, 3 rows
    ids[2, 5] = 40
    with pytest.raises(ValueError, match=re.escape(
            "rows 2..2: input 0 'ids': element 5 is 40, outside the valid range [0, 40)")):
        model(ids)

def test_report_and_benchmark(model, modules, tmp_path):
    samples = inputs(3 * BATCH, 4).reshape(3, BATCH, 3, 16, 16)
    errors = model.report({"x": samples})
    assert len(errors) >= 3  # the two convs and the linear at least
    assert [e.sqnr_db for e in errors] == sorted(e.sqnr_db for e in errors)
    assert all(0 < e.sqnr_db < 100 for e in errors)
    assert model.report([(s,) for s in samples]) == errors
    qdata.save(tmp_path / "set.npz", {"x": samples}, batch=None)
    assert model.report(tmp_path / "set.npz", top=2) == errors[:2]
    bare = CompiledModel.build(modules[1], tmp_path / "bare")
    with pytest.raises(ValueError, match="float_mlir"):
        bare.report({"x": samples})

    timing = model.benchmark(runs=20, warmup=2)
    assert timing["runs"] == 20 and timing["batch"] == BATCH
    assert 0 < timing["min_ms"] <= timing["median_ms"]
    assert model.benchmark(runs=3, warmup=0, inputs=(inputs(5, 0),))["batch"] == 5


def test_module_summary(model, modules):
    fp32, int8 = modules
    text = int8.read_text()
    summary = module_summary(int8)
    assert model.manifest["summary"] == summary
    assert summary["op_types"]["qnt.conv2d"] == {"int8": text.count("qnt.conv2d"), "float": 0}
    assert summary["op_types"]["qnt.conv2d"]["int8"] == 2
    assert summary["op_types"]["qnt.linear"] == {"int8": 1, "float": 0}
    assert summary["ops_float"] == 1  # the input's NCHW -> NHWC transpose
    assert summary["ops_quantized"] == 7  # 2 convs, 2 pools, a transpose, a reshape, the linear
    qcast = re.search(r"quant\.qcast .*u8<0:127>:f32, ([\d.eE+-]+):(\d+)>", text)
    assert summary["input_qparams"] == [[float(qcast.group(1)), int(qcast.group(2))]]
    dcast = re.search(r"quant\.dcast .*u8<0:127>:f32, ([\d.eE+-]+):(\d+)>", text)
    assert summary["output_qparams"] == [[float(dcast.group(1)), int(dcast.group(2))]]
    weights = 8 * 3 * 3 * 3 + 8 * 3 * 3 * 8 + 10 * 128
    assert summary["weight_bytes"] == {"int8": weights, "float": 0, "int32": 4 * (8 + 8 + 10)}
    floats = module_summary(fp32)
    assert floats["ops_quantized"] == 0 and floats["input_qparams"] == [None]
    assert floats["output_qparams"] == [None]
    assert floats["weight_bytes"]["int8"] < 16  # only the shifts of tosa.mul
    assert floats["weight_bytes"]["float"] >= 4 * weights

