"""Where a statically quantized model loses accuracy, why, and what fixes it
(docs/analyze.md).

    analysis = analyze(model, (x,), calibration, eval_data, qconfig="qnnpack")
    print(analysis.to_markdown()); analysis.save("out/")   # analysis.md, analysis.png

Per layer (the compute ops the IR names by module path, as `qnt.compare`
names them): the SQNR of its output, the metric with only this layer
quantized and with all but this layer quantized, and how much of its
output and input the INT8 ranges saturate or clip. For the worst layers a
cause (per-tensor weights with a wide per-channel spread, an activation
range dominated by outliers, 7-bit activations where the CPU has 8-bit dot
products, int32 bias overflow, dead channels) and a fix, checked by
quantizing again with it: a fix is reported only if the metric improves.

Calibration runs once. Every variant (a layer kept in float, a fix) is the
same FP32 module prepared with other ``--qnt-prepare`` options and folded
with the statistics of that one run: observer ids are not stable across
preparations (``exclude=conv1`` makes conv2 observe its own input,
``conv2:in``, where the full model shares ``conv1:out``), but the tensors
are, and calibration runs the model in float whatever is quantized, so the
statistics are keyed by the observed tensor (its producing op) and the
observer kind, and each variant's file is written under its own ids. Only
a tensor no earlier run observed (a pooling output behind a float layer,
another observer kind) costs one more calibration, of that variant.
Variants run through quant-opt and quant-run (JIT) in worker threads, each
driving its own processes.
"""

import dataclasses
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import compare, mlir_reader
from .. import data as qdata
from ..api import NUMERICS, OBSERVERS, QCONFIGS, QuantizeError, match_inputs
from ..calibration import calibrate, write_shards
from ..export import export
from ..tools import ToolError, run, tool

__all__ = ["Analysis", "AnalyzeError", "Layer", "Trial", "analyze", "analyze_compiled"]


class AnalyzeError(QuantizeError):
    """A step of the analysis failed (the message names it and the variant)."""


# Weighted compute ops: operand 1 is the weight (output channels on axis 0),
# operand 2 the bias.
_WEIGHTED = {"qnt.conv2d", "qnt.linear"}
# Activation observers and the statistics kind they record (docs/calibration.md).
_STATS_KIND = {"minmax": "minmax", "moving_average_minmax": "moving_average_minmax",
               "histogram": "histogram", "percentile": "histogram", "entropy": "histogram"}
_CONSTANTS = {"arith.constant", "tosa.const"}
# Presets with the activations of the key and per-channel weights.
_PER_CHANNEL_PRESET = {"qnnpack": "onednn"}
_REDUCE_RANGE = ("x86", "fbgemm")
_INT32_MAX = 2 ** 31 - 1

# Detection thresholds (docs/analyze.md, "Causes").
SPREAD_RATIO = 10.0        # per-tensor weights: max / min channel range
OUTLIER_RATIO = 8.0        # calibrated range / 99.99 % of the eval values (3 bits)
DEAD_WEIGHT = 1e-6         # a channel's max |w| below this times the layer's


# ---------------------------------------------------------------------------
# Settings: the quantize_static options of one variant
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Settings:
    """quantize_static's options (qconfig, observer, per_channel, exclude,
    override as ((selector, preset), ...), numerics), as quant-opt options."""
    qconfig: str = "x86"
    observer: str = None
    per_channel: bool = False
    exclude: tuple = ()
    override: tuple = ()
    numerics: str = "qnt"

    def check(self):
        if self.qconfig not in QCONFIGS:
            raise ValueError(f"qconfig must be one of {QCONFIGS}, got {self.qconfig!r}")
        if self.observer is not None and self.observer not in OBSERVERS:
            raise ValueError(f"observer must be one of {OBSERVERS}, got {self.observer!r}")
        if self.numerics not in NUMERICS:
            raise ValueError(f"numerics must be one of {NUMERICS}, got {self.numerics!r}")
        for name in self.exclude + tuple(s for s, _ in self.override):
            if not name or "," in name or " " in name:
                raise ValueError(f"selector {name!r}: names without commas or spaces")
        for selector, preset in self.override:
            if preset not in QCONFIGS:
                raise ValueError(f"override {selector!r}: unknown qconfig {preset!r}")
        return self

    def prepare_option(self):
        options = [f"qconfig={self.qconfig}"]
        if self.observer:
            options.append(f"activation-observer={self.observer}")
        if self.exclude:
            options.append("exclude=" + ",".join(self.exclude))
        options += [f"override={s}={p}" for s, p in self.override]
        return "--qnt-prepare=" + " ".join(options)

    def convert_options(self):
        return ((["--qnt-per-channel"] if self.per_channel else [])
                + ([f"--qnt-set-numerics=numerics={self.numerics}"]
                   if self.numerics != "qnt" else []))

    def kwargs(self):
        """The quantize_static keyword arguments that differ from its defaults."""
        out = {"qconfig": self.qconfig}
        if self.observer:
            out["observer"] = self.observer
        if self.per_channel:
            out["per_channel"] = True
        if self.exclude:
            out["exclude"] = list(self.exclude)
        if self.override:
            out["override"] = dict(self.override)
        if self.numerics != "qnt":
            out["numerics"] = self.numerics
        return out


def settings_from_manifest(manifest):
    """The Settings a `quantize_static` model was built with, from its
    manifest's pipeline (the --qnt-prepare and convert commands)."""
    if manifest.get("mode") != "static":
        raise ValueError(f"analyze needs a model built by quantize_static (this one's mode "
                         f"is {manifest.get('mode')!r})")
    prepare = next((c for c in manifest.get("pipeline", ()) if "--qnt-prepare=" in c), None)
    match = prepare and re.search(r"--qnt-prepare=(.*?) -o ", prepare)
    if not match:
        raise ValueError("the manifest has no --qnt-prepare command to take the settings from")
    options = dict(qconfig="x86", exclude=(), override=())
    for item in match.group(1).split():
        key, _, value = item.partition("=")
        if key == "qconfig":
            options["qconfig"] = value
        elif key == "activation-observer":
            options["observer"] = value
        elif key == "exclude":
            options["exclude"] = tuple(value.split(","))
        elif key == "override":
            options["override"] += (tuple(value.rsplit("=", 1)),)
    per_channel = any("--qnt-per-channel" in c for c in manifest["pipeline"])
    return Settings(per_channel=per_channel, numerics=manifest.get("numerics") or "qnt",
                    **options).check()


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Layer:
    """One compute layer. Metrics follow the analysis' metric (higher is
    better); fractions are of the elements over every eval sample."""
    name: str
    op: str                       # qnt.conv2d, qnt.linear, qnt.add, ...
    sqnr_db: float                # its output, INT8 vs FP32 (qnt.compare)
    only_metric: float = None     # only this layer quantized
    all_but_metric: float = None  # every layer but this one quantized
    saturated_out: float = 0.0    # INT8 output at qmin / qmax (a limit that is not 0.0)
    clipped_out: float = 0.0      # FP32 output outside the representable range
    clipped_in: float = None      # the same for its input (None: not measured)
    weight_per_tensor: bool = None
    channel_range_ratio: float = None  # max / min over channels of max |w| (live ones)
    dead_channels: int = 0        # weights ~0, or INT8 output always at the zero point
    bias_overflow: int = 0        # channels whose bias / (S_in * S_w) exceeds int32
    range_ratios: dict = dataclasses.field(default_factory=dict)  # "in"/"out": calibrated / 99.99 %
    ranges: dict = dataclasses.field(default_factory=dict)        # "in"/"out": (lo, hi) calibrated
    causes: list = dataclasses.field(default_factory=list)        # text, for the worst layers


@dataclasses.dataclass
class Trial:
    """A fix tried for a cause at ``layer`` (names joined by ", ", or
    "(model)"):
    what (``action``), the metric it gave and whether that beats the INT8
    model's. ``kwargs``: the quantize_static arguments that apply it."""
    cause: str
    layer: str
    action: str
    settings: Settings = dataclasses.field(repr=False)
    metric: float = None
    improved: bool = False

    @property
    def kwargs(self):
        return self.settings.kwargs()


@dataclasses.dataclass
class Analysis:
    """What `analyze` found; ``to_markdown()``, ``save(out_dir)``."""
    metric_name: str
    settings: dict
    fp32_metric: float
    int8_metric: float
    layers: list
    worst: list
    trials: list
    model_causes: list
    evaluations: int
    calibrations: int
    seconds: float
    max_workers: int
    eval_samples: int
    samples: dict = dataclasses.field(default_factory=dict, repr=False)  # FP32 values to plot

    @property
    def fixes(self):
        """The trials that improved the metric, best first."""
        return sorted((t for t in self.trials if t.improved), key=lambda t: -t.metric)

    def layer(self, name):
        """The Layer named ``name`` (KeyError if there is none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_markdown(self):
        return _markdown(self)

    def save(self, out_dir):
        """Writes ``analysis.md`` and ``analysis.png`` into ``out_dir``
        (created); returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "analysis.md").write_text(self.to_markdown())
        _chart(self, out / "analysis.png")
        return out / "analysis.md", out / "analysis.png"


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def _check_finite(name, array):
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if bad.any():
            raise ValueError(f"eval data: input '{name}' has NaN or Inf in sample "
                             f"{int(np.argmax(bad))}")


def eval_set(data, names, batch):
    """{input name: [S] + input shape, "labels" if given} from an .npz data
    set (samples already), a dict {name: examples [N, ...]} or an iterable
    (a DataLoader) of tensors / (inputs..., labels) tuples."""
    if isinstance(data, (str, os.PathLike)):
        if not Path(data).is_file():
            raise ValueError(f"eval data {data}: no such file")
        arrays = qdata.load(data)
        out = match_inputs(arrays, names)
    else:
        if isinstance(data, dict):
            arrays = dict(data)
        else:
            items = qdata.collect(data)
            arrays = dict(zip(names, items[:len(names)]))
            if len(items) > len(names):
                arrays["labels"] = items[len(names)]
        out = {n: qdata.samples(qdata._numpy(v), batch)
               for n, v in match_inputs(arrays, names).items()}
    if "labels" in arrays:
        out["labels"] = np.asarray(qdata._numpy(arrays["labels"]))
    for name in names:
        _check_finite(name, out[name])
    return out


def sqnr_metric(reference):
    """The default metric: SQNR in dB of all outputs against ``reference``."""
    def metric(outputs, _data):
        return compare.sqnr_db(np.concatenate([r.ravel() for r in reference]),
                               np.concatenate([o.ravel() for o in outputs]))
    return metric


def top1_metric(outputs, data):
    """Top-1 accuracy of the first output (argmax of its last axis) against
    ``data["labels"]`` (one label per example)."""
    if "labels" not in data:
        raise ValueError("the top-1 metric needs labels in the eval data ('labels')")
    predicted = outputs[0].reshape(-1, outputs[0].shape[-1]).argmax(1)
    labels = np.asarray(data["labels"]).ravel()
    if len(labels) != len(predicted):
        raise ValueError(f"{len(labels)} labels for {len(predicted)} predictions")
    return float((predicted == labels).mean())


def _torch_outputs(model, arrays, names):
    """The FP32 PyTorch model on each eval sample: a list (one per output) of [S, ...]."""
    import torch
    per_sample = []
    with torch.no_grad():
        for s in range(len(arrays[names[0]])):
            out = model(*[torch.from_numpy(np.ascontiguousarray(arrays[n][s])) for n in names])
            out = list(out) if isinstance(out, (tuple, list)) else [out]
            per_sample.append([o.detach().numpy() for o in out])
    return [np.stack(o) for o in zip(*per_sample)]


# ---------------------------------------------------------------------------
# Reading modules
# ---------------------------------------------------------------------------

def _producers(func):
    return {r: op for op in func.ops for r in op.results}


def _tensor_keys(func):
    """{SSA value: stable key}: (op name, location, n-th such op, result) or
    ("arg", index); observers pass their operand's key through."""
    keys = {ssa: ("arg", i) for i, (ssa, _) in enumerate(func.args)}
    seen = {}
    for op in func.ops:
        if op.name == "qnt.observe":
            keys[op.results[0]] = keys.get(op.operands[0], ("?", op.operands[0]))
            continue
        n = seen[(op.name, op.loc)] = seen.get((op.name, op.loc), -1) + 1
        for i, r in enumerate(op.results):
            keys[r] = (op.name, op.loc, n, i)
    return keys


def _observers(func):
    """{observer id: stats key} of a prepared module's activation observers."""
    keys, producers = _tensor_keys(func), _producers(func)
    out = {}
    for op in func.ops:
        kind = op.attrs.get("kind")
        source = producers.get(op.operands[0]) if op.name == "qnt.observe" else None
        if kind not in _STATS_KIND or (source is not None and source.name in _CONSTANTS):
            continue
        out[op.attrs["id"]] = (keys[op.operands[0]], _STATS_KIND[kind],
                               op.attrs.get("bins"), op.attrs.get("upsample_rate"))
    return out


def _source(value, producers, stop):
    """The first op producing ``value`` for which ``stop(op)`` holds, looking
    through layout, pooling and clamp ops (tosa.*, qnt.avg_pool2d) and
    observers; None if another op (or an argument) comes first."""
    op = producers.get(value)
    while op is not None and not stop(op):
        if not op.operands or not (op.name.startswith("tosa.")
                                   or op.name in ("qnt.avg_pool2d", "qnt.observe")):
            return None
        op = producers.get(op.operands[0])
    return op


def _argument_of(value, func):
    """The index of the function argument ``value`` is (through layout ops), or None."""
    producers = _producers(func)
    while value in producers:
        op = producers[value]
        if op.name not in ("tosa.transpose", "tosa.reshape"):
            return None
        value = op.operands[0]
    return next((i for i, (ssa, _) in enumerate(func.args) if ssa == value), None)


def _constant(op):
    if op is None or op.name not in _CONSTANTS:
        return None
    value = op.attrs.get("values", op.attrs.get("value"))
    return np.asarray(value, np.float64) if value is not None else None


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------

def _cpu_has_8bit_dot():
    """AVX-512 VNNI (x86) or the ARM dot-product extension (asimddp)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_vnni|avx_vnni|asimddp)\b", text))


class _Analyzer:
    """Holds the working directory, the statistics cache and the counters;
    `evaluate` runs one variant."""

    def __init__(self, fp32_mlir, names, batch, settings, workdir, build_dir, log,
                 max_workers, client=None):
        self.fp32, self.names, self.batch = Path(fp32_mlir), names, batch
        self.client = client
        self.settings, self.dir, self.build_dir = settings, Path(workdir), build_dir
        self.log = log or (lambda text: None)
        self.max_workers = max_workers
        self.threads = max(1, (os.cpu_count() or 1) // max_workers)
        self.stats_cache, self.lock = {}, threading.Lock()
        self.calibration_lock = threading.Lock()
        self.evaluations = self.calibrations = 0
        self.calib_npz = self.eval_npz = None
        self.num_samples = 0

    def _tool(self, step, name, *args):
        """Runs a tool here, or on a worker of the Dask client (the paths
        are absolute: the workers share the file system, as for sharded
        calibration)."""
        if self.client is None:
            return run(step, name, *args, build=self.build_dir)
        command = [str(Path(tool(name, self.build_dir)).resolve()), *map(str, args)]
        try:
            result = self.client.submit(subprocess.run, command, capture_output=True,
                                        text=True, pure=False).result()
        except Exception as e:
            raise ToolError(f"{step} failed on its Dask worker: {e!r}") from e
        if result.returncode:
            raise ToolError(f"{step} failed ({name} exited with {result.returncode}):\n"
                            f"{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _calibrate(self, prepared, stats):
        # One shard (on a worker when there is a client): sharded histograms
        # merge within a tolerance, and every variant must see the same ranges.
        result = calibrate(prepared, self.calib_npz, stats, names=self.names, batch=self.batch,
                           client=self.client, shards=1, build_dir=self.build_dir)
        with self.lock:
            self.calibrations += 1
            self.num_samples = result["samples"]
        return json.loads(Path(stats).read_text())["observers"]

    def _stats(self, prepared, work):
        """The statistics file for ``prepared``: from the cache, or one more
        calibration when it observes a tensor (or kind) not seen yet."""
        observers = _observers(mlir_reader.read_module(prepared, self.build_dir))
        stats = work / "stats.json"
        with self.calibration_lock:  # variants missing the same tensor calibrate once
            with self.lock:
                missing = [i for i, key in observers.items() if key not in self.stats_cache]
            if missing:
                self.log(f"{work.name}: calibrating for " + (", ".join(missing) if len(
                    missing) <= 4 else f"{len(missing)} tensors ({missing[0]}, ...)"))
                measured = self._calibrate(prepared, stats)
                with self.lock:
                    for i, key in observers.items():
                        if i in measured:
                            self.stats_cache.setdefault(key, measured[i])
                return stats
        with self.lock:
            entries = {i: self.stats_cache[key] for i, key in observers.items()}
        stats.write_text(json.dumps({"format": "qnt-stats", "version": 1,
                                     "num_samples": self.num_samples, "observers": entries}))
        return stats

    def evaluate(self, settings, tag):
        """Prepares, folds, converts and runs ``settings`` on the eval set:
        (prepared, int8 module paths, outputs list)."""
        work = self.dir / tag
        work.mkdir()
        prepared, int8 = work / "prepared.mlir", work / "model.int8.mlir"
        try:
            self._tool("prepare", "quant-opt", self.fp32, "--qnt-fuse", settings.prepare_option(),
                       "--mlir-print-debuginfo", "-o", prepared)
            stats = self._stats(prepared, work)
            self._tool("convert", "quant-opt", prepared, f"--qnt-fold-calibration=stats={stats}",
                       *settings.convert_options(), "--qnt-convert", "--mlir-print-debuginfo",
                       "-o", int8)
            self._tool("evaluate", "quant-run", int8, "-i", self.eval_npz, "--samples",
                       "--quiet", f"--num-threads={self.threads}", "-o", work / "outputs.npz")
        except (ToolError, RuntimeError, ValueError) as e:
            raise AnalyzeError(f"variant '{tag}' ({settings.prepare_option()}): {e}") from None
        with self.lock:
            self.evaluations += 1
        return prepared, int8, list(qdata.load(work / "outputs.npz").values())

    def evaluate_all(self, jobs, metric):
        """{tag: metric} of every (tag, settings) in ``jobs``, run in
        ``max_workers`` threads (each drives its own tool processes)."""
        with ThreadPoolExecutor(self.max_workers) as pool:
            futures = {tag: pool.submit(self.evaluate, s, tag) for tag, s in jobs}
            return {tag: metric(f.result()[2]) for tag, f in futures.items()}


def _layer_records(an, prepared, int8, float_acts, int8_acts, eval_arrays):
    """A Layer (metrics still None) per exposed layer, in program order:
    SQNR, clipping of its output and input, and its weights' statistics."""
    pfunc = mlir_reader.read_module(prepared, an.build_dir)
    qfunc = mlir_reader.read_module(int8, an.build_dir)
    pprod, qprod = _producers(pfunc), _producers(qfunc)

    def compute_ops(func):  # the first compute op of each location
        return {op.loc: op for op in reversed(func.ops)
                if op.name.startswith("qnt.") and op.name != "qnt.observe" and op.results}
    pops, qops = compute_ops(pfunc), compute_ops(qfunc)
    result_observer = {op.operands[0]: op for op in pfunc.ops if op.name == "qnt.observe"}
    is_observer = lambda op: op.name == "qnt.observe"  # noqa: E731
    is_source = lambda op: (op.name == "quant.qcast"  # noqa: E731
                            or op.name.startswith("qnt.") and op.loc in float_acts)
    layers = []
    for name, fp32 in float_acts.items():
        qop, pop = qops.get(name), pops.get(name)
        if qop is None or pop is None or name not in int8_acts or not qop.result_type.quantized:
            continue  # not a layer of this model, or kept in float by the settings
        q8 = int8_acts[name]
        layer = Layer(name, qop.name, compare.sqnr_db(fp32, q8))
        out_type = qop.result_type.element
        if isinstance(out_type, mlir_reader.UniformType):
            _range_stats(layer, "out", fp32, out_type, result_observer.get(pop.results[0]), q8)
        # The first activation operand: where its FP32 values were measured.
        in_type = qop.operand_types[0].element
        source = _source(qop.operands[0], qprod, is_source)
        values = None
        if source is not None and source.name == "quant.qcast":
            arg = _argument_of(source.operands[0], qfunc)
            values = None if arg is None else eval_arrays[an.names[arg]]
        elif source is not None and source.result_type.element == in_type:
            values = float_acts[source.loc]
        if values is not None and isinstance(in_type, mlir_reader.UniformType):
            _range_stats(layer, "in", values, in_type,
                         _source(pop.operands[0], pprod, is_observer))
        if qop.name in _WEIGHTED:
            _weight_stats(layer, pop, qop, pprod, fp32)
        layers.append(layer)
    return layers


def _range_stats(layer, role, fp32, qtype, observer, q8=None):
    """Clipping (and for outputs saturation) of ``fp32`` under ``qtype``;
    the calibrated range and how much wider it is than 99.99 % of the values."""
    s, zp = float(qtype.scales[0]), int(qtype.zero_points[0])
    lo, hi = (qtype.qmin - zp) * s, (qtype.qmax - zp) * s
    values = np.asarray(fp32, np.float64).ravel()
    clipped = float(np.mean((values < lo - s / 2) | (values > hi + s / 2)))
    spec = observer.attrs.get("qspec", {}) if observer is not None else {}
    qmin, qmax = spec.get("quant_min", qtype.qmin), spec.get("quant_max", qtype.qmax)
    calibrated = ((qmin - zp) * s, (qmax - zp) * s)
    p_lo, p_hi = np.percentile(values, [0.01, 99.99])
    central = max(p_hi, 0.0) - min(p_lo, 0.0)
    layer.ranges[role] = calibrated
    layer.range_ratios[role] = ((calibrated[1] - calibrated[0]) / central if central > 0
                                else math.inf)
    if role == "in":
        layer.clipped_in = clipped
        return
    layer.clipped_out = clipped
    q = np.rint(np.asarray(q8, np.float64).ravel() / s) + zp
    at_limit = ((q <= qtype.qmin) & (qtype.qmin != zp)) | ((q >= qtype.qmax) & (qtype.qmax != zp))
    layer.saturated_out = float(np.mean(at_limit))


def _weight_stats(layer, pop, qop, pprod, fp32):
    """Per-tensor or per-channel weights, the spread of the channels'
    ranges, dead channels (weights ~0, or an FP32 output within half an
    output step of 0 on every eval value: always the zero point in INT8)
    and int32 bias overflow."""
    weight = _constant(_source(pop.operands[1], pprod, lambda op: op.name in _CONSTANTS))
    wtype = qop.operand_types[1].element
    if weight is None or not isinstance(wtype, mlir_reader.UniformType):
        return
    ranges = np.abs(weight.reshape(len(weight), -1)).max(axis=1)
    dead = ranges <= DEAD_WEIGHT * ranges.max()
    live = ranges[~dead]
    layer.weight_per_tensor = len(wtype.scales) == 1
    layer.channel_range_ratio = float(live.max() / live.min()) if len(live) else None
    out_type = qop.result_type.element
    if isinstance(out_type, mlir_reader.UniformType) and fp32.shape[-1] == len(ranges):
        channels = np.moveaxis(fp32, -1, 0).reshape(len(ranges), -1)  # channels last
        dead |= np.all(np.abs(channels) < float(out_type.scales[0]) / 2, axis=1)
    layer.dead_channels = int(np.sum(dead))
    bias = _constant(pprod.get(pop.operands[2])) if len(pop.operands) > 2 else None
    in_type = qop.operand_types[0].element
    if bias is not None and isinstance(in_type, mlir_reader.UniformType):
        scales = float(in_type.scales[0]) * np.broadcast_to(
            np.asarray(wtype.scales, np.float64), bias.shape)
        with np.errstate(divide="ignore"):
            layer.bias_overflow = int(np.sum(np.abs(bias) / scales > _INT32_MAX))


def _exclusions(prepared, an, layers):
    """Every location of the prepared module's ops (constants aside)."""
    func = mlir_reader.read_module(prepared, an.build_dir)
    names = {layer.name for layer in layers}
    return sorted({op.loc for op in func.ops if op.loc and op.name != "qnt.observe"
                   and op.name not in _CONSTANTS and op.name != "tosa.const_shape"} | names)


def _only(settings, name, locations):
    """Settings quantizing ``name`` only: every other location excluded
    (but not a module-path prefix of it, which would select it too)."""
    others = tuple(n for n in locations if n != name and not name.startswith(n + "."))
    return dataclasses.replace(settings, exclude=tuple(dict.fromkeys(settings.exclude + others)))


def _fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def _causes_and_trials(worst, settings):
    """Causes of the worst layers (appended to their ``causes``) and model
    wide, and a Trial of a fix for each. Returns (trials, model causes)."""
    trials, model_causes = {}, []
    replace = dataclasses.replace

    def add(trial):  # one trial per fix; a model-wide fix lists every layer it is for
        seen = trials.setdefault(trial.settings, trial)
        if seen is not trial and trial.layer not in seen.layer.split(", "):
            seen.layer += f", {trial.layer}"

    if settings.qconfig in _REDUCE_RANGE and _cpu_has_8bit_dot():
        model_causes.append(f"the {settings.qconfig} preset quantizes activations to 7 bits "
                            f"(reduce_range), which this CPU's 8-bit dot products "
                            f"(AVX-512 VNNI / ARM dotprod) do not need")
        add(Trial("reduce_range", "(model)", "the full-range onednn preset",
                  replace(settings, qconfig="onednn")))
    for layer in worst:
        if layer.weight_per_tensor and (layer.channel_range_ratio or 0) > SPREAD_RATIO:
            layer.causes.append(f"per-tensor weights whose channel ranges span "
                                f"{layer.channel_range_ratio:.0f}x (max / min of max |w|)")
            preset = _PER_CHANNEL_PRESET.get(settings.qconfig)
            if preset:
                add(Trial("per-tensor weights", layer.name,
                          f"per-channel weights for {layer.name} ({preset} preset)",
                          replace(settings, override=settings.override + ((layer.name, preset),))))
        for role, ratio in layer.range_ratios.items():
            if ratio > OUTLIER_RATIO:
                lo, hi = layer.ranges[role]
                layer.causes.append(
                    f"{'input' if role == 'in' else 'output'} range [{lo:.4g}, {hi:.4g}] "
                    f"dominated by outliers: {ratio:.0f}x wider than 99.99 % of the eval values")
                for observer in ("percentile", "entropy"):
                    if settings.observer != observer:
                        add(Trial("outliers", layer.name, f"the {observer} observer",
                                  replace(settings, observer=observer)))
        if layer.bias_overflow:
            layer.causes.append(f"int32 bias overflow in {layer.bias_overflow} channel(s)")
        if layer.dead_channels:
            layer.causes.append(f"{layer.dead_channels} dead channel(s) (weights ~0 or output "
                                f"always at the zero point)")
        if layer.bias_overflow or layer.dead_channels:
            # Measured already: the all-but-this-layer variant.
            cause = "int32 bias overflow" if layer.bias_overflow else "dead channels"
            add(Trial(cause, layer.name, f"{layer.name} kept in float",
                      replace(settings, exclude=settings.exclude + (layer.name,)),
                      metric=layer.all_but_metric))
    return list(trials.values()), model_causes


def _run(an, reference, metric, metric_name, calibration_data, eval_arrays, worst, log):
    """The analysis proper, once the FP32 module and the data are in place."""
    start = time.perf_counter()
    settings = an.settings
    an.calib_npz = write_shards(calibration_data, an.names, an.batch, an.dir / "calib")[0]
    an.eval_npz = an.dir / "eval.npz"
    qdata.save(an.eval_npz, {n: eval_arrays[n] for n in an.names}, batch=None)

    def score(outputs):
        value = float(metric(outputs, eval_arrays))
        if math.isnan(value):
            raise ValueError("the metric returned NaN")
        return value

    fp32_metric = score(reference)
    log("calibrating and evaluating the INT8 model ...")
    prepared, int8, outputs = an.evaluate(settings, "int8")
    int8_metric = score(outputs)
    log("per-layer SQNR ...")
    quant_opt, quant_run = compare._tools(an.build_dir)
    float_acts = compare._layer_outputs(quant_opt, quant_run, an.fp32, an.eval_npz,
                                        ["--qnt-fuse"], an.dir, "float-layers")
    int8_acts = compare._layer_outputs(quant_opt, quant_run, int8, an.eval_npz, [], an.dir,
                                       "int8-layers")
    for acts in (float_acts, int8_acts):
        for key in [k for k in acts if k.startswith("output")]:
            del acts[key]
    layers = _layer_records(an, prepared, int8, float_acts, int8_acts, eval_arrays)
    if not layers:
        raise AnalyzeError("the model has no quantized layer named by a location")
    locations = _exclusions(prepared, an, layers)
    jobs = []
    for layer in layers:
        jobs.append((f"only-{layer.name}", _only(settings, layer.name, locations)))
        jobs.append((f"all-but-{layer.name}", dataclasses.replace(
            settings, exclude=settings.exclude + (layer.name,))))
    log(f"{len(jobs)} per-layer variants on {an.max_workers} workers ...")
    results = an.evaluate_all(jobs, score)
    for layer in layers:
        layer.only_metric = results[f"only-{layer.name}"]
        layer.all_but_metric = results[f"all-but-{layer.name}"]
    ranked = sorted(layers, key=lambda l: (-(l.all_but_metric - int8_metric), l.sqnr_db))
    worst_layers = ranked[:worst]
    trials, model_causes = _causes_and_trials(worst_layers, settings)
    pending = list(dict.fromkeys(t.settings for t in trials if t.metric is None))
    log(f"{len(pending)} fixes to try ...")
    fixed = an.evaluate_all([(f"fix{i}", s) for i, s in enumerate(pending)], score)
    for trial in trials:
        if trial.metric is None:
            trial.metric = fixed[f"fix{pending.index(trial.settings)}"]
        trial.improved = trial.metric > int8_metric
    samples = {}
    for layer in worst_layers:
        values = float_acts[layer.name].ravel()
        step = max(1, len(values) // 200_000)
        samples[layer.name] = values[::step].astype(np.float32)
    return Analysis(metric_name, settings.kwargs(), fp32_metric, int8_metric, layers,
                    [l.name for l in worst_layers], trials, model_causes, an.evaluations,
                    an.calibrations, time.perf_counter() - start, an.max_workers,
                    len(eval_arrays[an.names[0]]), samples)


def _check_arguments(worst, metric, max_workers):
    if not isinstance(worst, int) or worst < 1:
        raise ValueError(f"worst must be a positive integer, got {worst!r}")
    if metric is not None and not callable(metric) and metric not in ("sqnr", "top1"):
        raise ValueError(f"metric must be None, 'sqnr', 'top1' or a callable "
                         f"metric(outputs, data) -> float, got {metric!r}")
    if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
        raise ValueError(f"max_workers must be a positive integer, got {max_workers!r}")
    return max_workers or max(1, min(4, os.cpu_count() or 1))


def _metric(metric, reference):
    if metric is None or metric == "sqnr":
        return sqnr_metric(reference), "output SQNR vs FP32 (dB)"
    if metric == "top1":
        return top1_metric, "top-1 accuracy"
    return metric, getattr(metric, "__name__", "metric")


def _analyze(fp32_mlir, names, batch, settings, reference_fn, calibration_data, eval_data,
             metric, worst, out_dir, build_dir, log, max_workers, workdir):
    if calibration_data is None:
        raise ValueError("calibration_data is required (the analysis calibrates once)")
    if isinstance(calibration_data, dict):
        calibration_data = match_inputs(calibration_data, names)
    eval_arrays = eval_set(calibration_data if eval_data is None else eval_data, names, batch)
    reference = reference_fn(eval_arrays)
    metric, metric_name = _metric(metric, reference)
    an = _Analyzer(fp32_mlir, names, batch, settings, workdir, build_dir, log, max_workers)
    analysis = _run(an, reference, metric, metric_name, calibration_data, eval_arrays, worst,
                    an.log)
    if out_dir is not None:
        analysis.save(out_dir)
    return analysis


def settings_and_inputs(qconfig, observer, per_channel, exclude, override, numerics,
                        example_inputs):
    """quantize_static's arguments as Settings (checked as it checks them)
    and ``example_inputs`` as a tuple of tensors."""
    if per_channel is False and qconfig in ("x86", "fbgemm", "onednn"):
        raise ValueError(f"the {qconfig} preset quantizes weights per channel")
    settings = Settings(qconfig, observer, bool(per_channel), tuple(exclude or ()),
                        tuple((override or {}).items()), numerics).check()
    import torch
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if not all(isinstance(x, torch.Tensor) for x in inputs):
        raise ValueError("example_inputs must be a tensor or a tuple of tensors")
    return settings, inputs


def export_fp32(model, inputs, workdir):
    """The FP32 module of ``model`` in ``workdir``: (path, input names, batch)."""
    fp32 = Path(workdir).resolve() / "model.fp32.mlir"
    info = export(model.eval(), inputs, fp32)
    batch = info.inputs[0][1][0] if info.inputs[0][1] else 1
    return fp32, [n for n, _ in info.inputs], batch


def analyze(model, example_inputs, calibration_data, eval_data, *, qconfig="x86",
            observer=None, per_channel=None, exclude=(), override=None, numerics="qnt",
            metric=None, worst=3, max_workers=None, out_dir=None, build_dir=None, log=None):
    """Analyzes the INT8 model `qnt.quantize_static` makes of ``model`` with
    these settings (the same arguments); returns an `Analysis`.

    calibration_data: as for quantize_static (calibrated once, here).
    eval_data: an .npz data set, a dict {input name: examples [N, ...]}
        (and "labels") or an iterable of tensors / (inputs..., labels); None
        evaluates on the calibration data.
    metric: None or "sqnr" (SQNR in dB of all outputs against the FP32
        PyTorch model), "top1" (first output's argmax against the labels),
        or a callable ``metric(outputs, data) -> float``, higher is better:
        outputs a list, one array [S] + output shape per model output (S
        eval samples of the compiled batch), data {input name: [S] + input
        shape, "labels": as given}.
    worst: how many layers get causes and fix trials; max_workers: variants
        evaluated at once (default min(4, CPUs)).
    out_dir: also write analysis.md and analysis.png there. log(text): a
        line per phase."""
    max_workers = _check_arguments(worst, metric, max_workers)
    settings, inputs = settings_and_inputs(qconfig, observer, per_channel, exclude, override,
                                           numerics, example_inputs)
    with tempfile.TemporaryDirectory(prefix="qnt-analyze-") as workdir:
        fp32, names, batch = export_fp32(model, inputs, workdir)
        return _analyze(fp32, names, batch, settings,
                        lambda arrays: _torch_outputs(model, arrays, names), calibration_data,
                        eval_data, metric, worst, out_dir, build_dir, log, max_workers,
                        workdir)


def analyze_compiled(compiled, calibration_data, eval_data, *, metric=None, worst=3,
                     max_workers=None, out_dir=None, build_dir=None, log=None):
    """`analyze` for a `CompiledModel` built by quantize_static: its FP32
    module (model.fp32.mlir) and the settings of its manifest's pipeline;
    the FP32 reference is that module run by quant-run."""
    max_workers = _check_arguments(worst, metric, max_workers)
    settings = settings_from_manifest(compiled.manifest)
    fp32 = Path(compiled.directory) / "model.fp32.mlir"
    if not fp32.is_file():
        raise ValueError(f"{compiled.directory} has no model.fp32.mlir to analyze")
    names = [spec["name"] for spec in compiled.inputs]

    with tempfile.TemporaryDirectory(prefix="qnt-analyze-") as workdir:
        def reference(arrays):
            path, out = Path(workdir) / "reference-in.npz", Path(workdir) / "reference.npz"
            qdata.save(path, {n: arrays[n] for n in names}, batch=None)
            run("FP32 reference", "quant-run", fp32, "-i", path, "--samples", "--quiet",
                "-o", out, build=build_dir)
            return list(qdata.load(out).values())
        return _analyze(fp32, names, compiled.batch, settings, reference, calibration_data,
                        eval_data, metric, worst, out_dir, build_dir, log, max_workers, workdir)


# ---------------------------------------------------------------------------
# Markdown and chart
# ---------------------------------------------------------------------------

def _pct(x):
    return "-" if x is None else f"{100 * x:.2f}"


def _markdown(a):
    lines = ["# Quantization analysis", "",
             f"Settings: `{a.settings}`. Metric: {a.metric_name} (higher is better) on "
             f"{a.eval_samples} eval samples: FP32 {_fmt(a.fp32_metric, 4)}, INT8 "
             f"{_fmt(a.int8_metric, 4)}.", "",
             "| layer | op | SQNR (dB) | only this quantized | all but this | sat out % | "
             "clip out % | clip in % | weights | channel range ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for l in a.layers:
        weights = "-" if l.weight_per_tensor is None else (
            "per-tensor" if l.weight_per_tensor else "per-channel")
        name = f"**{l.name}**" if l.name in a.worst else l.name
        lines.append(f"| {name} | {l.op.split('.')[-1]} | {_fmt(l.sqnr_db)} | "
                     f"{_fmt(l.only_metric, 4)} | {_fmt(l.all_but_metric, 4)} | "
                     f"{_pct(l.saturated_out)} | {_pct(l.clipped_out)} | {_pct(l.clipped_in)} | "
                     f"{weights} | {_fmt(l.channel_range_ratio, 1)} |")
    lines += ["", "## Worst layers", ""]
    if a.model_causes:
        lines += [f"* model: {c}" for c in a.model_causes]
    for name in a.worst:
        l = a.layer(name)
        lines.append(f"* **{name}**: all but this layer quantized gives "
                     f"{_fmt(l.all_but_metric, 4)} (INT8 {_fmt(a.int8_metric, 4)})")
        lines += [f"  * cause: {c}" for c in l.causes] or ["  * no known cause found"]
    lines += ["", "## Fixes tried", "",
              "| cause | layer | tried | quantize_static | metric | improves |",
              "|---|---|---|---|---:|---|"]
    for t in a.trials:
        lines.append(f"| {t.cause} | {t.layer} | {t.action} | `{t.kwargs}` | "
                     f"{_fmt(t.metric, 4)} | {'yes' if t.improved else 'no'} |")
    lines += ["", "## Fixes", ""]
    lines += [f"* {t.action} ({t.cause}: {t.layer}): "
              f"{_fmt(a.int8_metric, 4)} -> {_fmt(t.metric, 4)}, "
              f"`quantize_static(..., {', '.join(f'{k}={v!r}' for k, v in t.kwargs.items())})`"
              for t in a.fixes] or ["None of the fixes tried improves the metric."]
    lines += ["", f"Cost: {a.evaluations} evaluations (prepare, fold, convert, quant-run on the "
              f"eval set), {a.calibrations} calibration(s), {a.seconds:.1f} s wall time with "
              f"{a.max_workers} worker(s).", ""]
    return "\n".join(lines)


def pyplot(path, error, written):
    """matplotlib.pyplot on the Agg backend; without matplotlib ``error``
    (an AnalyzeError class) naming ``path`` and what was ``written``."""
    try:
        import matplotlib
    except ImportError:
        raise error(f"{path}: the chart needs matplotlib (Debian: apt-get install "
                    f"python3-matplotlib); {written} was written") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(plt, fig, path):
    """``fig`` as a PNG at ``path`` (rendered in memory, written at once), closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    Path(path).write_bytes(buffer.getvalue())


def _chart(a, path):
    plt = pyplot(path, AnalyzeError, "the markdown")
    rows = 1 + len(a.worst)
    fig, axes = plt.subplots(rows, 1, figsize=(max(6, 0.5 * len(a.layers) + 2), 2.6 * rows),
                             squeeze=False)
    ax = axes[0][0]
    sqnr = [min(l.sqnr_db, 100.0) for l in a.layers]
    colors = ["#e41a1c" if l.name in a.worst else "#377eb8" for l in a.layers]
    ax.bar(range(len(a.layers)), sqnr, color=colors)
    ax.set_xticks(range(len(a.layers)))
    ax.set_xticklabels([l.name for l in a.layers], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("Per-layer output SQNR, INT8 vs FP32 (worst layers in red)")
    for row, name in enumerate(a.worst, 1):
        ax = axes[row][0]
        l = a.layer(name)
        ax.hist(a.samples[name], bins=100, color="#377eb8", log=True)
        if "out" in l.ranges:
            for edge in l.ranges["out"]:
                ax.axvline(edge, color="#e41a1c", linestyle="--")
        ax.set_title(f"{name}: FP32 output values, calibrated INT8 range dashed", fontsize=9)
    fig.tight_layout()
    save_png(plt, fig, path)


# ---------------------------------------------------------------------------
# Command line: python -m qnt analyze
# ---------------------------------------------------------------------------

def main(args, load_model, load_weights, example_inputs):
    """``python -m qnt analyze``: prints the markdown, writes -o DIR/analysis.{md,png}."""
    from ..cli_quantize import _split
    if not args.calib or not Path(args.calib).is_file():
        raise ValueError(f"--calib {args.calib}: no such file (a data set .npz, "
                         f"python -m qnt fashion-mnist writes one)")
    model = load_model(args.model)
    if args.weights:
        load_weights(model, args.weights)
    model.eval()
    try:
        arrays = qdata.load(args.calib)
    except (OSError, ValueError) as e:
        raise ValueError(f"--calib {args.calib}: cannot read it ({e})") from None
    def examples(samples):  # [S, batch, ...] -> [S * batch, ...], as quantize_static takes
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in samples.items()}
    if args.eval:
        calibration, eval_data = examples(arrays), args.eval
    else:
        calibration, held_out = _split(arrays, args.holdout)
        eval_data = examples(held_out)
    calibration.pop("labels", None)
    analysis = analyze(model, example_inputs(args), calibration, eval_data,
                       qconfig=args.qconfig, observer=args.observer,
                       per_channel=args.per_channel or None, exclude=args.exclude or (),
                       override=getattr(args, "override", None),
                       metric=args.metric, worst=args.worst, max_workers=args.jobs,
                       out_dir=args.output, build_dir=args.build_dir,
                       log=lambda text: print(f"qnt: {text}", file=sys.stderr, flush=True))
    print(analysis.to_markdown(), end="")
    print(f"qnt: wrote {args.output}/analysis.md and analysis.png", file=sys.stderr)
    return analysis
