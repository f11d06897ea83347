"""Accuracy-driven, latency-aware mixed precision (docs/accuracy.md,
"Mixed-precision search").

    result = search(model, (x,), calibration, eval_data, budget="top1=1.0")
    result.kwargs        # quantize_static's arguments: exclude=, override=, ...
    result.model         # the CompiledModel of the fastest configuration found
    result.save("out/")  # search.md and search.png (latency vs metric)

The budget is a maximum top-1 drop against the FP32 model on the eval set
(``"top1=0.5"``: at most half a point) or a minimum output SQNR
(``"sqnr=30"``, dB). Every candidate is a `quantize_static` configuration
(per layer INT8 or float, per-tensor or per-channel weights, the activation
observer), evaluated by quantizing and running it (the analysis' machinery:
one calibration, variants folded from its statistics), and timed by
running it: the fastest of ``quant-run --bench``'s runs (other load only
adds time), one candidate at a time with no evaluation running, so the
ranking is by measured latency on this machine, not by op counts. The
search:

1. the configuration as given; if it meets the budget it is the answer;
2. the model-wide variants that cost no latency: the other activation
   observers, per-channel weights (per-tensor presets), and on a CPU with
   8-bit dot products (AVX-512 VNNI, ARM dotprod) the full-range onednn
   preset for the 7-bit x86/fbgemm ones (with each observer);
3. from the most accurate of those, each layer in float, and for the
   qnnpack preset each layer with per-channel weights (the layers with
   the lowest SQNR first, as many as the evaluation limit leaves room for
   with a fifth of it, at least 3, kept for phases 4 and 5);
4. those moves combined, best metric gain per millisecond first, until the
   budget is met (the number of moves predicted from their gains first,
   then doubling and bisection);
5. pruning: each move of the configuration found, the most expensive
   first, is undone when the budget still holds without it.

If no combination meets the budget, phases 3-5 start again from the best
one while it gains and evaluations are left. The candidates meeting the
budget (the ten fastest) are timed once more before the fastest is chosen.

It stops after ``max_evaluations`` accuracy evaluations. When no candidate
meets the budget it says so and returns the best one found. Evaluations run
in parallel processes (``max_workers``), or on a Dask cluster when given a
client (the same mechanism as sharded calibration: the workers see the
same file system).
"""

import dataclasses
import importlib.util
import math
import re
import shutil
import tempfile
import time
import weakref
from pathlib import Path

import numpy as np

from .. import compare, mlir_reader
from .. import data as qdata
from ..api import QuantizeError, match_inputs
from ..calibration import write_shards
from ..compiled import CompiledModel
from ..tools import ToolError, run
from .analyze import (_PER_CHANNEL_PRESET, _REDUCE_RANGE, AnalyzeError, Settings, _Analyzer,
                      _check_arguments, _cpu_has_8bit_dot, _torch_outputs, eval_set,
                      export_fp32, pyplot, save_png, settings_and_inputs, sqnr_metric,
                      top1_metric)

__all__ = ["Budget", "Candidate", "SearchError", "SearchResult", "search"]

OBSERVER_CHOICES = ("histogram", "percentile", "entropy", "minmax")
# Presets whose weights are per tensor, and the preset giving per-channel
# weights with the same activations.
_PER_TENSOR = ("qnnpack", "xnnpack")


class SearchError(AnalyzeError):
    """A step of the search failed (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Budget:
    """``kind`` "top1": at most ``value`` points of top-1 accuracy below the
    FP32 model's on the eval set; "sqnr": an output SQNR of at least
    ``value`` dB against the FP32 model."""
    kind: str
    value: float

    def __post_init__(self):
        if self.kind not in ("top1", "sqnr") or not isinstance(self.value, (int, float)) \
                or not math.isfinite(self.value):
            raise ValueError(f"accuracy budget {self.kind}={self.value}: expected top1=DROP "
                             f"(maximum top-1 drop in points, e.g. top1=1.0) or sqnr=DB "
                             f"(minimum output SQNR, e.g. sqnr=30)")
        if self.kind == "top1" and not 0 <= self.value <= 100:
            raise ValueError(f"accuracy budget top1={self.value}: the top-1 drop is in "
                             f"points, 0 to 100")

    @classmethod
    def parse(cls, text):
        if isinstance(text, Budget):
            return text
        match = re.fullmatch(r"\s*(top1|sqnr)\s*[=:]\s*([-+0-9.eE]+)\s*", str(text),
                             re.IGNORECASE)
        try:
            value = float(match.group(2)) if match else math.nan
        except ValueError:
            value = math.nan
        if not match or not math.isfinite(value):
            raise ValueError(f"accuracy budget {text!r}: expected top1=DROP (maximum top-1 "
                             f"drop in points, e.g. top1=1.0) or sqnr=DB (minimum output "
                             f"SQNR, e.g. sqnr=30)")
        return cls(match.group(1).lower(), value)

    @property
    def metric_name(self):
        return "top-1 accuracy (%)" if self.kind == "top1" else "output SQNR vs FP32 (dB)"

    def threshold(self, fp32_metric):
        return fp32_metric - self.value if self.kind == "top1" else self.value

    def __str__(self):
        return (f"top-1 drop <= {self.value:g} points" if self.kind == "top1"
                else f"output SQNR >= {self.value:g} dB")


@dataclasses.dataclass
class Candidate:
    """One configuration tried: its settings, what it changes from the
    configuration as given, its metric and measured latency (ms)."""
    tag: str
    settings: Settings
    description: str
    phase: str
    metric: float = None
    latency_ms: float = None
    met: bool = None
    int8: Path = dataclasses.field(default=None, repr=False)

    @property
    def kwargs(self):
        return self.settings.kwargs()


@dataclasses.dataclass
class SearchResult:
    """What `search` found. ``best``: the fastest candidate meeting the
    budget, else the one with the best metric (``met`` False)."""
    budget: Budget
    metric_name: str
    fp32_metric: float
    threshold: float
    fp32_latency_ms: float
    candidates: list
    best: Candidate
    met: bool
    evaluations: int
    max_evaluations: int
    calibrations: int
    seconds: float
    workers: str
    model: CompiledModel = None
    stopped: str = ""

    @property
    def kwargs(self):
        """quantize_static's keyword arguments for the configuration found."""
        return self.best.kwargs

    @property
    def message(self):
        b = self.best
        fp32 = f" (FP32 {self.fp32_metric:.2f})" if self.budget.kind == "top1" else ""
        if self.met:
            return f"met {self.budget}: {self.metric_name} {b.metric:.2f}{fp32}, " \
                f"{b.latency_ms:.3f} ms"
        return (f"no candidate meets {self.budget} (needs {self.metric_name} >= "
                f"{self.threshold:.2f}); the best found: {b.metric:.2f}, {b.latency_ms:.3f} ms"
                + (f" ({self.stopped})" if self.stopped else ""))

    def to_markdown(self):
        return _markdown(self)

    def save(self, out_dir):
        """Writes search.md and search.png into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "search.md").write_text(self.to_markdown())
        _plot(self, out / "search.png")


class _Searcher:
    """The candidates, the evaluation count and the latency measurements."""

    def __init__(self, an, budget, score, threshold, max_evaluations, bench_runs, num_threads,
                 bench_npz, log):
        self.an, self.budget, self.score, self.threshold = an, budget, score, threshold
        self.max_evaluations, self.bench_runs = max_evaluations, bench_runs
        self.num_threads, self.bench_npz, self.log = num_threads, bench_npz, log
        self.candidates, self.by_settings = [], {}
        self.given = an.settings
        self.float_acts = None  # the FP32 layer outputs, for the layers' SQNR
        self.stopped = ""

    @property
    def left(self):
        return self.max_evaluations - self.an.evaluations

    def latency(self, module):
        # Here, not on a Dask worker: the latency of this machine.
        out = run("latency", "quant-run", module, "-i", self.bench_npz, "--quiet",
                  f"--bench={self.bench_runs}", "--warmup=3", f"--num-threads={self.num_threads}",
                  build=self.an.build_dir)
        # The minimum of the runs: other load on the machine only adds time.
        match = re.search(r"min ([0-9.]+) ms", out)
        if not match:
            raise SearchError(f"latency of {module}: no time in quant-run's output:\n{out}")
        return float(match.group(1))

    def try_all(self, jobs, phase):
        """Evaluates the settings in ``jobs`` not tried yet, as many as the
        limit allows (in parallel), then times each (one at a time).
        Returns the Candidates of every job that has one."""
        fresh = [j for j in dict.fromkeys(jobs) if j not in self.by_settings]
        if len(fresh) > self.left:
            self.stopped = f"stopped at the limit of {self.max_evaluations} evaluations"
            fresh = fresh[:max(0, self.left)]
        new = []
        for settings in fresh:
            tag = f"c{len(self.candidates)}"
            c = Candidate(tag, settings, _change(self.given, settings), phase)
            self.candidates.append(c)
            self.by_settings[settings] = c
            new.append(c)
        if new:
            self.log(f"{phase}: {len(new)} candidate(s) on {self.an.max_workers} workers "
                     f"({self.an.evaluations + len(new)}/{self.max_evaluations} evaluations)")
            results = self.an.evaluate_all([(c.tag, c.settings) for c in new], self.score)
            for c in new:
                c.metric = results[c.tag]
                c.met = c.metric >= self.threshold
                c.int8 = self.an.dir / c.tag / "model.int8.mlir"
            for c in new:  # one at a time: nothing else running
                c.latency_ms = self.latency(c.int8)
            # Timed again: a candidate 3x slower than the median so far (a
            # float layer can be; a descheduled kernel thread too).
            median = float(np.median([c.latency_ms for c in self.candidates]))
            for c in new:
                if c.latency_ms > 3 * median:
                    c.latency_ms = min(c.latency_ms, self.latency(c.int8))
        return [self.by_settings[s] for s in jobs if s in self.by_settings]

    def confirm(self, count=10):
        """Times the ``count`` fastest candidates meeting the budget again,
        keeping the faster of the two timings of each: a measurement slowed
        by other load on the machine does not lose a candidate the answer."""
        met = sorted((c for c in self.candidates if c.met), key=lambda c: c.latency_ms)
        if len(met) < 2:
            return  # nothing to choose between
        for c in met[:count]:
            c.latency_ms = min(c.latency_ms, self.latency(c.int8))

    def fastest_met(self):
        met = [c for c in self.candidates if c.met]
        return min(met, key=lambda c: c.latency_ms) if met else None


def _layers(int8, build_dir):
    """The quantized compute layers of ``int8`` by location, in program order."""
    func = mlir_reader.read_module(int8, build_dir)
    names = {}
    for op in func.ops:
        if (op.name.startswith("qnt.") and op.name != "qnt.observe" and op.results
                and op.loc and op.result_type.quantized):
            names.setdefault(op.loc, op.name)
    return names


def _layer_sqnr(s, int8, tag):
    """{layer: output SQNR (dB)} of the INT8 module against FP32 on the eval
    set (the FP32 layer outputs computed once, kept for later rounds)."""
    an = s.an
    quant_opt, quant_run = compare._tools(an.build_dir)
    if s.float_acts is None:
        s.float_acts = compare._layer_outputs(quant_opt, quant_run, an.fp32, an.eval_npz,
                                              ["--qnt-fuse"], an.dir, "float-layers")
    float_acts = s.float_acts
    int8_acts = compare._layer_outputs(quant_opt, quant_run, int8, an.eval_npz, [], an.dir,
                                       f"int8-layers-{tag}")
    return {name: compare.sqnr_db(float_acts[name], int8_acts[name])
            for name in float_acts if name in int8_acts and not name.startswith("output")}


def _with_moves(base, moves):
    """``base`` with each (kind, layer) move: "float" excludes the layer,
    "per-channel" overrides it with the per-channel preset (a layer kept
    float takes no override)."""
    excluded = tuple(layer for kind, layer in moves if kind == "float")
    override = tuple((layer, _PER_CHANNEL_PRESET[base.qconfig]) for kind, layer in moves
                     if kind == "per-channel")
    return dataclasses.replace(
        base, exclude=tuple(dict.fromkeys(base.exclude + excluded)),
        override=tuple(o for o in base.override + override if o[0] not in excluded))


def _change(given, settings):
    """What ``settings`` changes from the configuration as ``given``."""
    parts = []
    if settings.qconfig != given.qconfig:
        parts.append(f"the {settings.qconfig} preset")
    if settings.observer != given.observer:
        parts.append(f"observer {settings.observer}")
    if settings.per_channel != given.per_channel:
        parts.append("per-channel weights")
    floats = [n for n in settings.exclude if n not in given.exclude]
    channels = [name for name, preset in settings.override
                if (name, preset) not in given.override]
    if floats:
        parts.append(f"float: {', '.join(floats)}")
    if channels:
        parts.append(f"per-channel: {', '.join(channels)}")
    return "; ".join(parts) or "as given"


def _run(s, base_settings, layer_limit):
    """Phases 1-5 (see the module docstring); returns the answer, or None."""
    (first,) = s.try_all([base_settings], "1 as given")
    if first.met:
        return first

    # 2. Model-wide variants at no latency cost.
    variants = [dataclasses.replace(base_settings, observer=o)
                for o in OBSERVER_CHOICES if o != (base_settings.observer or "histogram")]
    if base_settings.qconfig in _PER_TENSOR and not base_settings.per_channel:
        variants.append(dataclasses.replace(base_settings, per_channel=True))
    if base_settings.qconfig in _REDUCE_RANGE and _cpu_has_8bit_dot():
        # 7-bit activations are for vpmaddubsw's saturation; this CPU has none.
        variants += [dataclasses.replace(v, qconfig="onednn")
                     for v in [base_settings] + variants]
    tried = [first] + s.try_all(variants, "2 model-wide")
    if s.fastest_met():
        return s.fastest_met()
    base = max(tried, key=lambda c: (c.metric, -c.latency_ms))
    # Phases 3-5; again from the best combination while it gains and
    # evaluations are left.
    for round_ in range(1, 1 + len(_layers(base.int8, s.an.build_dir))):
        if s.left <= 0:
            return None
        found, best = _round(s, base, layer_limit, round_)
        if found or best is None or best.metric <= base.metric or s.left <= 0:
            return found
        base = best
    return None


def _round(s, base, layer_limit, round_):
    """Phases 3-5 from ``base``: (the answer or None, the best combination)."""
    sqnr = _layer_sqnr(s, base.int8, f"r{round_}")
    layers = [n for n in _layers(base.int8, s.an.build_dir) if n not in base.settings.exclude]
    layers.sort(key=lambda n: sqnr.get(n, math.inf))
    per_channel = (base.settings.qconfig in _PER_CHANNEL_PRESET
                   and not base.settings.per_channel)
    moves = [("float", n) for n in layers]
    if per_channel:
        moves += [("per-channel", n) for n in layers if n not in dict(base.settings.override)]
    moves.sort(key=lambda m: sqnr.get(m[1], math.inf))
    # Leave evaluations for phases 4 and 5 (a fifth of the limit, at least 3).
    reserve = max(3, s.max_evaluations // 5)
    moves = moves[:max(1, min(layer_limit or len(moves), s.left - reserve))]

    def tried(moves, phase):
        (c,) = s.try_all([_with_moves(base.settings, moves)], phase) or (None,)
        return c

    # 3. Single-layer moves, the lowest-SQNR layers first.
    singles = s.try_all([_with_moves(base.settings, [m]) for m in moves],
                        f"3 per layer (round {round_})")
    if s.fastest_met():  # one move is enough: the fastest such (combinations are slower)
        return s.fastest_met(), None
    gain = {}
    for move, c in zip(moves, singles):
        if c.metric > base.metric:
            cost = max(c.latency_ms - base.latency_ms, 1e-3 * base.latency_ms, 1e-6)
            gain[move] = (c.metric - base.metric, cost)
    first_of_layer = {}
    for kind, layer in sorted(gain, key=lambda m: -gain[m][0] / gain[m][1]):
        first_of_layer.setdefault(layer, (kind, layer))  # one move per layer: the better ratio
    ranked = sorted(first_of_layer.values(), key=lambda m: -gain[m][0] / gain[m][1])
    if not ranked:
        s.stopped = s.stopped or "no single-layer move improves the metric"
        return None, None

    # 4. The k best-ranked moves combined: k predicted from the gains, then
    # doubled until the budget is met, then bisected.
    need, total, k = s.threshold - base.metric, 0.0, len(ranked)
    for i, m in enumerate(ranked, 1):
        total += gain[m][0]
        if total >= need:
            k = i
            break
    lo, hi, combined = 0, None, []  # lo: does not meet; hi: meets
    while s.left > 0 or s.by_settings.get(_with_moves(base.settings, ranked[:k])):
        c = tried(ranked[:k], f"4 combine (round {round_})")
        if c is None:
            break
        combined.append(c)
        if c.met:
            hi = k
        else:
            lo = k
        if hi is None:
            if k == len(ranked):
                break
            k = min(len(ranked), 2 * k)
        elif hi - lo <= 1:
            break
        else:
            k = (lo + hi) // 2
    if hi is None:
        return None, max(combined, key=lambda c: c.metric, default=None)

    # 5. Prune: undo moves, the most expensive first, while the budget holds.
    kept = list(ranked[:hi])
    for move in sorted(kept, key=lambda m: -gain[m][1]):
        if s.left <= 0 or len(kept) == 1:
            break
        trial = [m for m in kept if m != move]
        c = tried(trial, f"5 prune (round {round_})")
        if c is not None and c.met:
            kept = trial
    return s.fastest_met(), None


def _check(max_evaluations, bench_runs, num_threads, layer_limit):
    for name, value, low in (("max_evaluations", max_evaluations, 1),
                             ("bench_runs", bench_runs, 1), ("num_threads", num_threads, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if layer_limit is not None and (not isinstance(layer_limit, int) or layer_limit < 1):
        raise ValueError(f"layer_limit must be a positive integer or None, got {layer_limit!r}")


def search(model, example_inputs, calibration_data, eval_data, *, budget, qconfig="x86",
           observer=None, per_channel=None, exclude=(), override=None, numerics="qnt",
           max_evaluations=40, layer_limit=None, max_workers=None, client=None,
           num_threads=0, bench_runs=20, out_dir=None, model_dir=None, build_dir=None,
           log=None):
    """The fastest `quantize_static` configuration of ``model`` that meets
    ``budget``; returns a `SearchResult` (``.kwargs``, ``.model``,
    ``.save(dir)``).

    budget: "top1=DROP" (points of top-1 accuracy on the eval set, which
        then needs labels) or "sqnr=DB" (minimum output SQNR), or a Budget.
    qconfig, observer, per_channel, exclude, override, numerics: the
        configuration to start from (quantize_static's arguments).
    calibration_data: as for quantize_static (calibrated once, here);
        eval_data: as for `analyze` (None: the calibration data).
    max_evaluations: the most accuracy evaluations (each a quantization and
        a run of the eval set); layer_limit: the most single-layer moves
        tried (default: as many as the limit leaves, a fifth of it kept for
        combining them).
    max_workers: evaluations at once (default min(4, CPUs)); client: a
        dask.distributed Client whose workers run them instead.
    num_threads, bench_runs: the kernel threads and timed runs (the
        fastest counts) of each latency measurement.
    out_dir: also write search.md and search.png there; model_dir: where the
        answer's compiled model goes (default a temporary directory, removed
        with the model). log(text): a line per phase."""
    budget = Budget.parse(budget)
    max_workers_given = max_workers
    max_workers = _check_arguments(1, None, max_workers)
    _check(max_evaluations, bench_runs, num_threads, layer_limit)
    settings, inputs = settings_and_inputs(qconfig, observer, per_channel, exclude, override,
                                           numerics, example_inputs)
    if calibration_data is None:
        raise ValueError("calibration_data is required (the search calibrates once)")
    # What would fail only at the end of a long search: checked first.
    if model_dir is not None and Path(model_dir).exists() and (
            not Path(model_dir).is_dir() or any(Path(model_dir).iterdir())):
        raise ValueError(f"model_dir {model_dir}: exists and is not an empty directory")
    if out_dir is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("out_dir: search.png needs matplotlib (Debian: apt-get install "
                         "python3-matplotlib)")
    if client is not None and max_workers_given is None:
        # The cluster's workers run the evaluations: as many at once.
        max_workers = max(1, len(client.scheduler_info()["workers"]))
    log = log or (lambda text: None)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qnt-search-") as workdir:
        workdir = Path(workdir).resolve()
        fp32, names, batch = export_fp32(model, inputs, workdir)
        if isinstance(calibration_data, dict):
            calibration_data = match_inputs(calibration_data, names)
        eval_arrays = eval_set(calibration_data if eval_data is None else eval_data, names,
                               batch)
        reference = _torch_outputs(model, eval_arrays, names)
        if budget.kind == "top1":
            metric = lambda outputs, data: 100 * top1_metric(outputs, data)  # noqa: E731
        else:
            metric = sqnr_metric(reference)
        fp32_metric = float(metric(reference, eval_arrays)) if budget.kind == "top1" \
            else math.inf

        if budget.kind == "top1" and fp32_metric <= budget.value:
            log(f"warning: the FP32 model's top-1 on the eval set is {fp32_metric:.2f} %, "
                f"not above the budget's drop ({budget.value:g} points): every candidate "
                f"meets it (are the labels the model's?)")

        def score(outputs):  # NaN (Inf or NaN in a candidate's outputs): never meets
            value = float(metric(outputs, eval_arrays))
            return -math.inf if math.isnan(value) else value

        an = _Analyzer(fp32, names, batch, settings, workdir, build_dir, log, max_workers,
                       client=client)
        an.calib_npz = write_shards(calibration_data, names, batch, workdir / "calib")[0]
        an.eval_npz = workdir / "eval.npz"
        qdata.save(an.eval_npz, {n: eval_arrays[n] for n in names}, batch=None)
        bench_npz = workdir / "bench.npz"
        qdata.save(bench_npz, {n: eval_arrays[n][0] for n in names}, batch=None)
        threshold = budget.threshold(fp32_metric)
        s = _Searcher(an, budget, score, threshold, max_evaluations, bench_runs, num_threads,
                      bench_npz, log)
        log(f"budget {budget}: {budget.metric_name} >= {threshold:.2f}")
        try:
            fp32_latency = min(s.latency(fp32), s.latency(fp32))  # as confirm() does
            found = _run(s, settings, layer_limit)
            if found is None and s.left <= 0:
                s.stopped = f"stopped at the limit of {max_evaluations} evaluations"
            if found is not None:
                s.confirm()
                found = s.fastest_met()
            best = found or s.fastest_met() or max(s.candidates,
                                                   key=lambda c: (c.metric, -c.latency_ms))
            result = SearchResult(budget, budget.metric_name, fp32_metric, threshold,
                                  fp32_latency, s.candidates, best, bool(best.met),
                                  an.evaluations, max_evaluations, an.calibrations, 0.0,
                                  f"{client!r}" if client else f"{max_workers} processes",
                                  stopped=s.stopped)
            log(result.message)
            result.model = _compile(best, an, model_dir, build_dir, num_threads)
        except (ToolError, RuntimeError, ValueError, compare.CompareError) as e:
            if isinstance(e, QuantizeError):
                raise
            raise SearchError(f"search: {e}") from None
        result.seconds = time.perf_counter() - start
    if out_dir is not None:
        result.save(out_dir)
    return result


def _compile(best, an, model_dir, build_dir, num_threads):
    """The answer compiled: its INT8 module from the search (the integers
    evaluated) with the manifest quantize_static writes."""
    owned = model_dir is None
    target = Path(tempfile.mkdtemp(prefix="qnt-model-")) if owned else Path(model_dir)
    if owned:
        target.rmdir()
    s = best.settings
    pipeline = [f"quant-opt model.fp32.mlir --qnt-fuse {s.prepare_option()} -o prepared.mlir",
                "quant-run prepared.mlir --calibrate calib.npz --stats-file stats.json",
                " ".join(["quant-opt prepared.mlir --qnt-fold-calibration=stats=stats.json",
                          *s.convert_options(), "--qnt-convert -o model.int8.mlir"]),
                "quant-compile model.int8.mlir --name model -o libmodel.so"]
    model = CompiledModel.build(best.int8, target, float_mlir=an.fp32, pipeline=pipeline,
                                extra={"mode": "static", "qconfig": s.qconfig,
                                       "observer": s.observer, "numerics": s.numerics,
                                       "calibration_samples": an.num_samples},
                                build_dir=build_dir, num_threads=num_threads)
    if owned:
        weakref.finalize(model, shutil.rmtree, str(target), True)
    return model


# ---------------------------------------------------------------------------
# Markdown and plot
# ---------------------------------------------------------------------------

def _markdown(r):
    lines = ["# Mixed-precision search", "",
             f"Budget: {r.budget} ({r.metric_name} >= {r.threshold:.2f}; FP32 "
             + (f"{r.fp32_metric:.2f}, " if r.budget.kind == "top1" else "")
             + f"{r.fp32_latency_ms:.3f} ms).", "",
             f"**{'Found' if r.met else 'Not met'}:** {r.message}.", "",
             f"quantize_static arguments: `{r.kwargs}`", "",
             f"Cost: {r.evaluations} evaluations (limit {r.max_evaluations}), "
             f"{r.calibrations} calibration(s), {r.seconds:.1f} s on {r.workers}.", "",
             "| candidate | phase | change | metric | latency (ms) | meets |",
             "|---|---|---|---:|---:|---|"]
    for c in r.candidates:
        mark = " **(answer)**" if c is r.best else ""
        lines.append(f"| {c.tag}{mark} | {c.phase} | {c.description} | {c.metric:.2f} | "
                     f"{c.latency_ms:.3f} | {'yes' if c.met else 'no'} |")
    return "\n".join(lines) + "\n"


def _plot(r, path):
    plt = pyplot(path, SearchError, "search.md")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finite = [c for c in r.candidates if math.isfinite(c.metric)]
    for met, color, label in ((True, "#4daf4a", "meets the budget"),
                              (False, "#e41a1c", "does not")):
        points = [c for c in finite if c.met == met]
        if points:
            ax.scatter([c.latency_ms for c in points], [c.metric for c in points], c=color,
                       label=label, s=28, zorder=3)
    if math.isfinite(r.best.metric):
        ax.scatter([r.best.latency_ms], [r.best.metric], marker="*", s=260, c="none",
                   edgecolors="black", label="answer", zorder=4)
    if math.isfinite(r.fp32_metric):
        ax.scatter([r.fp32_latency_ms], [r.fp32_metric], marker="s", c="#377eb8",
                   label="FP32", zorder=3)
    else:
        ax.axvline(r.fp32_latency_ms, color="#377eb8", linestyle=":", label="FP32 latency")
    ax.axhline(r.threshold, color="gray", linestyle="--", label=f"budget ({r.budget})")
    ax.set_xlabel("measured latency (ms, the fastest of quant-run --bench's runs)")
    latencies = [c.latency_ms for c in finite] + [r.fp32_latency_ms]
    if max(latencies) > 10 * min(latencies):
        ax.set_xscale("log")
    ax.set_ylabel(r.metric_name)
    ax.set_title(f"Mixed-precision search: {len(r.candidates)} candidates, "
                 f"{r.evaluations} evaluations")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(plt, fig, path)


# ---------------------------------------------------------------------------
# Command line: python -m qnt quantize --accuracy-budget
# ---------------------------------------------------------------------------

def summary_lines(r, out_name):
    """The one-command summary's section for a search."""
    lines = [f"  accuracy budget   {r.budget}: {'met' if r.met else 'NOT met'}"]
    b = r.best
    fp32 = f", FP32 {r.fp32_metric:.2f}" if r.budget.kind == "top1" else ""
    lines.append(f"    answer          {b.description} ({r.metric_name} {b.metric:.2f}{fp32}; "
                 f"{b.latency_ms:.3f} ms, FP32 {r.fp32_latency_ms:.3f} ms)")
    lines.append(f"    arguments       {r.kwargs}")
    lines.append(f"    cost            {r.evaluations} evaluations of {r.max_evaluations}, "
                 f"{r.seconds:.1f} s" + (f"; {r.stopped}" if r.stopped else ""))
    lines.append(f"    candidates      {out_name}/search.md, {out_name}/search.png")
    return lines
