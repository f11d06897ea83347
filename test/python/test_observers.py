"""Bit-exact calibration observers against PyTorch 1.13's torch.ao.quantization.

Our side runs through the real code: the runtime library (loaded with ctypes)
observes every batch with qnt_rt_observe and writes the statistics JSON with
qnt_rt_stats_write_json; the test driver qnt-calib-check (built with the unit
tests) reads that file with lib/Calibration and prints the calibrated ranges,
scales and zero points. PyTorch's observers see the same batches (without
the NaN / Inf values, which qnt excludes), and every comparison is on float
bits:

  * the accumulated state: min / max (per channel) and, for the histogram
    observer, every histogram bin;
  * calculate_qparams(): scale bits and integer zero point, for each
    observer kind x dtype (quint8 / qint8) x scheme (affine / symmetric) x
    reduce_range (symmetric quint8 with reduce_range is rejected by torch).

Binaries: $QNT_BUILD_DIR/lib/libqnt_runtime.so and
$QNT_BUILD_DIR/unittests/qnt-calib-check (default <repo>/build).
"""

import ctypes
import json
import os
import resource
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import torch  # scripts/test.sh installs python3-torch; never skipped
from torch.ao.quantization.observer import (  # noqa: E402
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
)

# torch warns about reduce_range on every observer construction.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("QNT_BUILD_DIR", str(REPO_ROOT / "build")))
RUNTIME_LIB = BUILD_DIR / "lib" / "libqnt_runtime.so"
CALIB_CHECK = BUILD_DIR / "unittests" / "qnt-calib-check"
BINARY_WAIT_SECONDS = float(os.environ.get("QNT_BINARY_WAIT", "120"))

# qnt_rt_observer_kind
MINMAX, PER_CHANNEL_MINMAX, MA_MINMAX, MA_PER_CHANNEL_MINMAX, HISTOGRAM = range(5)
KINDS = {
    "minmax": MINMAX,
    "per_channel_minmax": PER_CHANNEL_MINMAX,
    "moving_average_minmax": MA_MINMAX,
    "moving_average_per_channel_minmax": MA_PER_CHANNEL_MINMAX,
    "histogram": HISTOGRAM,
}
PER_CHANNEL = {"per_channel_minmax", "moving_average_per_channel_minmax"}

# (dtype, symmetric, reduce_range); torch rejects symmetric quint8 with
# reduce_range.
CONFIGS = [
    (dtype, sym, rr)
    for dtype in ("quint8", "qint8")
    for sym in (False, True)
    for rr in (False, True)
    if not (dtype == "quint8" and sym and rr)
]


def _wait_for(path):
    deadline = time.monotonic() + BINARY_WAIT_SECONDS
    while not path.is_file():
        if time.monotonic() > deadline:
            pytest.fail(
                f"{path} not found: build the project first (ninja -C "
                f"{BUILD_DIR}) or set QNT_BUILD_DIR",
                pytrace=False,
            )
        time.sleep(2)
    return path


def fbits(x):
    return struct.unpack("<I", struct.pack("<f", float(x)))[0]


def fbits_array(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def state_bits(a):
    """Float bits of observer state, -0.0 as +0.0: which zero a min / max
    keeps depends on torch's vectorized reduction order and never changes a
    scale or zero point."""
    return fbits_array(np.asarray(a, dtype=np.float32) + np.float32(0))


# ---------------------------------------------------------------------------
# Our side: the runtime through ctypes, lib/Calibration through qnt-calib-check
# ---------------------------------------------------------------------------


class Runtime:
    def __init__(self):
        lib = ctypes.CDLL(str(_wait_for(RUNTIME_LIB)))
        lib.qnt_rt_observe.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_float),
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_float),
        ]
        lib.qnt_rt_observe.restype = None
        lib.qnt_rt_stats_write_json.argtypes = [
            ctypes.c_char_p,
            ctypes.c_int64,
            ctypes.c_char_p,
            ctypes.c_int64,
        ]
        lib.qnt_rt_stats_write_json.restype = ctypes.c_int
        lib.qnt_rt_stats_nonfinite_count.restype = ctypes.c_int64
        self.lib = lib

    def reset(self):
        self.lib.qnt_rt_stats_reset()

    def observe(self, obs_id, kind, x, bins=2048, upsample_rate=128,
                averaging_constant=0.01):
        """One call on x viewed as [outer, channels, inner] (x is 3-D)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        outer, channels, inner = x.shape
        params = (ctypes.c_int64 * 6)(outer, channels, inner, kind, bins,
                                      upsample_rate)
        fparams = (ctypes.c_float * 1)(averaging_constant)
        slot = ctypes.c_void_p(0)
        self.lib.qnt_rt_observe(
            ctypes.byref(slot), params, fparams, obs_id.encode(),
            x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))

    def write(self, path, num_samples=1):
        err = ctypes.create_string_buffer(512)
        rc = self.lib.qnt_rt_stats_write_json(str(path).encode(), num_samples,
                                              err, len(err))
        assert rc == 0, err.value.decode()
        return json.loads(Path(path).read_text())

    def nonfinite(self):
        return self.lib.qnt_rt_stats_nonfinite_count()


@pytest.fixture(scope="module")
def runtime():
    return Runtime()


def calib_check(*args):
    out = subprocess.run([str(_wait_for(CALIB_CHECK)), *map(str, args)],
                         capture_output=True, text=True)
    return out


def our_qparams(stats_path, method, qmin, qmax, symmetric, percentile=None):
    args = ["qparams", stats_path, method, qmin, qmax,
            "symmetric" if symmetric else "affine"]
    if percentile is not None:
        args.append(percentile)
    out = calib_check(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------
# PyTorch's side
# ---------------------------------------------------------------------------


def qrange(dtype, reduce_range):
    if dtype == "qint8":
        return (-64, 63) if reduce_range else (-128, 127)
    return (0, 127) if reduce_range else (0, 255)


def make_torch_observer(kind, dtype, symmetric, reduce_range,
                        averaging_constant=0.01, bins=2048, upsample_rate=128):
    tdtype = getattr(torch, dtype)
    if kind in PER_CHANNEL:
        qscheme = (torch.per_channel_symmetric if symmetric
                   else torch.per_channel_affine)
    else:
        qscheme = (torch.per_tensor_symmetric if symmetric
                   else torch.per_tensor_affine)
    common = dict(dtype=tdtype, qscheme=qscheme, reduce_range=reduce_range)
    if kind == "minmax":
        return MinMaxObserver(**common)
    if kind == "per_channel_minmax":
        return PerChannelMinMaxObserver(ch_axis=1, **common)
    if kind == "moving_average_minmax":
        return MovingAverageMinMaxObserver(
            averaging_constant=averaging_constant, **common)
    if kind == "moving_average_per_channel_minmax":
        return MovingAveragePerChannelMinMaxObserver(
            averaging_constant=averaging_constant, ch_axis=1, **common)
    return HistogramObserver(bins=bins, upsample_rate=upsample_rate, **common)


def torch_forward(obs, kind, x):
    """The same batch for torch: finite values only (qnt excludes NaN /
    Inf). Per-channel observers need the shape; their batches are finite."""
    if kind in PER_CHANNEL:
        assert np.isfinite(x).all()
        obs(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    else:
        flat = np.ascontiguousarray(x[np.isfinite(x)], dtype=np.float32)
        if flat.size:
            obs(torch.from_numpy(flat))


# ---------------------------------------------------------------------------
# Data sets: lists of [outer, channels, inner] float32 batches
# ---------------------------------------------------------------------------


def _batches(rng, scales, offsets=None, shape=(2, 3, 40)):
    offsets = offsets or [0.0] * len(scales)
    return [(rng.standard_normal(shape) * s + o).astype(np.float32)
            for s, o in zip(scales, offsets)]


def make_dataset(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "random":
        return _batches(rng, [1.0, 1.5, 0.5, 3.0, 2.0], [0.0, 0.3, -0.2, 1.0, 0])
    if name == "all_equal":
        return [np.full((2, 3, 10), 0.75, np.float32)] * 3
    if name == "all_equal_then_random":
        return ([np.full((1, 3, 20), -2.5, np.float32)] +
                _batches(rng, [1.0, 4.0], shape=(1, 3, 30)))
    if name == "all_negative":
        return [(-np.abs(b) - 3.0).astype(np.float32)
                for b in _batches(rng, [1.0, 2.0, 0.5, 1.2])]
    if name == "huge_range":
        return _batches(rng, [1e3, 3e5, 1e6, 2e4], [0, 1e5, -2e6, 0])
    if name == "tiny_range":
        return _batches(rng, [1e-6, 2e-6, 3e-7], [1e-5, 0, 0])
    if name == "widening":
        # Each batch widens the range ~100x (histogram: downsample ~12800).
        return _batches(rng, [0.01, 1.0, 100.0, 150.0], shape=(1, 3, 60))
    if name == "shifting":
        return [rng.uniform(lo, lo + 3.0, (2, 3, 30)).astype(np.float32)
                for lo in (0.3, -1.7, 2.9, 10.2, -20.5, 0.0)]
    if name == "integers":
        # Values on integer bin edges (histc's int(min) / int(max) ranges).
        return [np.round(b).astype(np.float32)
                for b in _batches(rng, [3.0, 5.0, 2.0, 8.0])]
    if name == "one_batch":
        return _batches(rng, [2.0], [0.5], shape=(4, 3, 25))
    raise KeyError(name)


DATASETS = ["random", "all_equal", "all_equal_then_random", "all_negative",
            "huge_range", "tiny_range", "widening", "shifting", "integers",
            "one_batch"]


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def _check_state(kind, ours, obs):
    if kind == "histogram":
        assert state_bits(ours["min"]) == state_bits(obs.min_val.item())
        assert state_bits(ours["max"]) == state_bits(obs.max_val.item())
        hist = np.array(ours["histogram"], dtype=np.float32)
        mismatch = np.nonzero(state_bits(hist) !=
                              state_bits(obs.histogram.numpy()))[0]
        assert mismatch.size == 0, (
            f"histogram bins {mismatch[:10]} differ: ours "
            f"{hist[mismatch[:5]]}, torch {obs.histogram.numpy()[mismatch[:5]]}")
        return
    tmin = np.atleast_1d(obs.min_val.numpy())
    tmax = np.atleast_1d(obs.max_val.numpy())
    omin = np.atleast_1d(np.array(ours["min"], dtype=np.float32))
    omax = np.atleast_1d(np.array(ours["max"], dtype=np.float32))
    assert state_bits(omin).tolist() == state_bits(tmin).tolist()
    assert state_bits(omax).tolist() == state_bits(tmax).tolist()


@pytest.mark.parametrize("dataset", DATASETS)
def test_qparams_bit_exact(runtime, tmp_path, dataset):
    """Every kind x dtype x scheme x reduce_range: scale bits and zero point
    equal calculate_qparams() of the torch observer fed the same batches."""
    batches = make_dataset(dataset)
    runtime.reset()
    for kind, code in KINDS.items():
        for b in batches:
            runtime.observe(kind, code, b)
    stats = runtime.write(tmp_path / "stats.json", len(batches))["observers"]

    checked = 0
    for dtype, symmetric, reduce_range in CONFIGS:
        qmin, qmax = qrange(dtype, reduce_range)
        ours = our_qparams(tmp_path / "stats.json", "auto", qmin, qmax,
                           symmetric)
        for kind in KINDS:
            obs = make_torch_observer(kind, dtype, symmetric, reduce_range)
            for b in batches:
                torch_forward(obs, kind, b)
            _check_state(kind, stats[kind], obs)
            scale, zp = obs.calculate_qparams()
            what = f"{kind} {dtype} symmetric={symmetric} rr={reduce_range}"
            assert "error" not in ours[kind], f"{what}: {ours[kind]['error']}"
            assert ours[kind]["scales"] == fbits_array(
                scale.numpy()).tolist(), what
            assert ours[kind]["zero_points"] == zp.numpy().astype(
                np.int64).tolist(), what
            checked += 1
    assert checked == len(CONFIGS) * len(KINDS)


@pytest.mark.parametrize("averaging_constant", [0.3, 1.0 / 3.0, 0.9])
def test_moving_average_constants(runtime, tmp_path, averaging_constant):
    batches = make_dataset("random") + make_dataset("shifting")
    runtime.reset()
    for kind in ("moving_average_minmax", "moving_average_per_channel_minmax"):
        for b in batches:
            runtime.observe(kind, KINDS[kind], b,
                            averaging_constant=averaging_constant)
    stats = runtime.write(tmp_path / "stats.json")["observers"]
    for kind in ("moving_average_minmax", "moving_average_per_channel_minmax"):
        assert fbits(stats[kind]["averaging_constant"]) == fbits(
            averaging_constant)
        obs = make_torch_observer(kind, "quint8", False, False,
                                  averaging_constant=averaging_constant)
        for b in batches:
            torch_forward(obs, kind, b)
        _check_state(kind, stats[kind], obs)


def _random_histogram_case(rng):
    bins = int(rng.choice([2048, 2048, 256, 100, 17]))
    upsample_rate = int(rng.choice([128, 128, 16, 7, 1]))
    batches = []
    for _ in range(int(rng.integers(1, 10))):
        size = int(rng.integers(1, 2000))
        scale = float(np.exp(rng.uniform(-5, 5)))
        offset = float(rng.normal() * scale * rng.choice([0, 1, 5]))
        x = (rng.standard_normal(size) * scale + offset).astype(np.float32)
        if rng.random() < 0.2:
            x = np.round(x)
        batches.append(x.reshape(1, 1, -1))
    return bins, upsample_rate, batches


@pytest.mark.parametrize("seed", range(40))
def test_histogram_random(runtime, tmp_path, seed):
    """Random bins / upsample rates / batch sequences: the histogram state
    and HistogramObserver's search bit for bit."""
    rng = np.random.default_rng(1000 + seed)
    bins, upsample_rate, batches = _random_histogram_case(rng)
    # torch materializes bins * downsample_rate floats when the range grows:
    # a case it cannot allocate is skipped.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, hard))
    try:
        obs = HistogramObserver(bins=bins, upsample_rate=upsample_rate)
        for b in batches:
            obs(torch.from_numpy(b.reshape(-1)))
    except (RuntimeError, MemoryError):
        pytest.skip("PyTorch cannot allocate this combination")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    runtime.reset()
    for b in batches:
        runtime.observe("h", HISTOGRAM, b, bins=bins,
                        upsample_rate=upsample_rate)
    stats = runtime.write(tmp_path / "stats.json")["observers"]["h"]
    assert stats["bins"] == bins and stats["upsample_rate"] == upsample_rate
    _check_state("histogram", stats, obs)
    ours = our_qparams(tmp_path / "stats.json", "histogram", 0, 255, False)
    new_min, new_max = obs._non_linear_param_search()
    assert ours["h"]["ranges"][0] == [fbits(new_min.item()),
                                      fbits(new_max.item())]
    scale, zp = obs.calculate_qparams()
    assert ours["h"]["scales"] == [fbits(scale.item())]
    assert ours["h"]["zero_points"] == [int(zp.item())]


def test_nonfinite_excluded(runtime, tmp_path):
    rng = np.random.default_rng(7)
    batches = _batches(rng, [1.0, 2.0, 0.7], shape=(1, 1, 200))
    dirty = []
    for b in batches:
        d = b.copy()
        d[0, 0, [3, 50, 120]] = [np.nan, np.inf, -np.inf]
        dirty.append(d)
    dirty.append(np.full((1, 1, 4), np.nan, np.float32))  # nothing finite
    runtime.reset()
    for kind in ("minmax", "moving_average_minmax", "histogram"):
        for d in dirty:
            runtime.observe(kind, KINDS[kind], d)
    assert runtime.nonfinite() == 3 * (3 * 3 + 4)
    stats = runtime.write(tmp_path / "stats.json")["observers"]
    for kind in ("minmax", "moving_average_minmax", "histogram"):
        assert stats[kind]["nonfinite"] == 13
        assert stats[kind]["count"] == 3 * 197
        assert stats[kind]["calls"] == 4
        obs = make_torch_observer(kind, "quint8", False, False)
        for d in dirty:
            torch_forward(obs, kind, d)
        _check_state(kind, stats[kind], obs)


def test_percentile_and_entropy(runtime, tmp_path):
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.standard_normal(50000),
                        [40.0, -25.0]]).astype(np.float32)
    runtime.reset()
    runtime.observe("h", HISTOGRAM, x.reshape(1, 1, -1))
    runtime.observe("relu", HISTOGRAM, np.maximum(x, 0).reshape(1, 1, -1))
    path = tmp_path / "stats.json"
    stats = runtime.write(path)["observers"]
    lo_edge, hi_edge = stats["h"]["min"], stats["h"]["max"]
    width = (hi_edge - lo_edge) / 2048

    def rng_of(result, obs_id="h"):
        lo, hi = result[obs_id]["ranges"][0]
        return (struct.unpack("<f", struct.pack("<I", lo))[0],
                struct.unpack("<f", struct.pack("<I", hi))[0])

    # 100: the histogram's occupied range; 99.9: close to the data's.
    lo, hi = rng_of(our_qparams(path, "percentile", 0, 255, False, 100))
    assert lo == pytest.approx(lo_edge) and hi <= hi_edge
    lo, hi = rng_of(our_qparams(path, "percentile", 0, 255, False, 99.9))
    assert lo == pytest.approx(np.percentile(x, 0.1), abs=2 * width)
    assert hi == pytest.approx(np.percentile(x, 99.9), abs=2 * width)

    # Entropy clips the outliers: far below 40 / -25, above 2 sigma.
    lo, hi = rng_of(our_qparams(path, "entropy", -128, 127, True))
    assert lo == -hi and 2.0 < hi < 20.0
    lo, hi = rng_of(our_qparams(path, "entropy", 0, 255, False), "relu")
    assert lo == 0.0 and 2.0 < hi < 20.0

    # Non-histogram statistics have no histogram search.
    runtime.observe("m", MINMAX, x.reshape(1, 1, -1))
    runtime.write(path)
    assert "histogram statistics" in our_qparams(
        path, "percentile", 0, 255, False)["m"]["error"]


def test_merge(runtime, tmp_path):
    rng = np.random.default_rng(5)
    a, b = _batches(rng, [1.0, 3.0], [0.0, 1.0], shape=(1, 3, 100))
    for name, x in (("a", a), ("b", b)):
        runtime.reset()
        for kind in ("minmax", "per_channel_minmax", "histogram"):
            runtime.observe(kind, KINDS[kind], x)
        runtime.write(tmp_path / f"{name}.json", 10)
    out = calib_check("merge", tmp_path / "m.json", tmp_path / "a.json",
                      tmp_path / "b.json")
    assert out.returncode == 0, out.stderr
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["num_samples"] == 20
    obs = merged["observers"]
    both = np.concatenate([a.reshape(-1), b.reshape(-1)])
    assert obs["minmax"]["min"] == pytest.approx(both.min(), rel=1e-7)
    assert obs["minmax"]["max"] == pytest.approx(both.max(), rel=1e-7)
    assert obs["minmax"]["calls"] == 2 and obs["minmax"]["count"] == 600
    pc = np.concatenate([a, b], axis=2)
    assert np.array(obs["per_channel_minmax"]["min"], np.float32).tolist() == \
        pc.min(axis=(0, 2)).tolist()
    h = obs["histogram"]
    assert np.float32(h["min"]) <= both.min()
    assert np.float32(h["max"]) >= both.max()
    single = [json.loads((tmp_path / f"{n}.json").read_text())["observers"]
              ["histogram"] for n in "ab"]
    assert sum(h["histogram"]) == pytest.approx(
        sum(sum(s["histogram"]) for s in single), rel=1e-6)

    # Moving averages cannot be merged.
    for name in "ab":
        runtime.reset()
        runtime.observe("ma", MA_MINMAX, a)
        runtime.write(tmp_path / f"{name}.json")
    out = calib_check("merge", tmp_path / "m2.json", tmp_path / "a.json",
                      tmp_path / "b.json")
    assert out.returncode == 1
    assert "cannot be merged exactly" in out.stderr
    assert not (tmp_path / "m2.json").exists()
