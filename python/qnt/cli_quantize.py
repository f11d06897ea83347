"""``python -m qnt quantize``: a PyTorch model to a compiled INT8 library in
one command, with a summary of what it did and what it costs.

Export, prepare, calibrate (a progress bar with rate and ETA on a terminal,
plain lines otherwise), fold, convert, compile: `qnt.quantize_static` /
`qnt.quantize_dynamic`; then, on held-out samples of the data set (not used
for calibration), the FP32 model (PyTorch) against the compiled INT8 one,
and the latency of the FP32 and INT8 modules compiled by quant-compile.
With ``--analyze`` (static), the per-layer analysis of the model just
built (`CompiledModel.analyze`, docs/analyze.md) on the same calibration
data and held-out samples: analysis.md and analysis.png in ``-o`` and a
section of the summary (the metric, the worst layers and their causes, the
fixes that improved it, as quantize_static arguments and as flags).
Everything is built in a staging directory next to ``-o`` and renamed into
place at the end: a failure leaves nothing in ``-o``.
"""

import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class Progress:
    """progress(done, total): a bar redrawn in place on a terminal, else a
    line at each tenth."""

    def __init__(self, label, stream=sys.stderr):
        self.label, self.stream = label, stream
        self.tty = stream.isatty()
        self.start, self.last_tenth = time.perf_counter(), -1

    def __call__(self, done, total):
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = done / elapsed
        if total:
            eta = (total - done) / rate if rate else math.inf
            text = (f"{self.label}: {done}/{total} samples, {rate:.1f}/s, "
                    f"ETA {eta:.0f}s")
        else:
            text = f"{self.label}: {done} samples, {rate:.1f}/s"
        if self.tty:
            width = 24
            filled = int(width * done / total) if total else 0
            bar = "#" * filled + "." * (width - filled)
            end = "\n" if total and done >= total else ""
            self.stream.write(f"\r[{bar}] {text}\x1b[K{end}")
            self.stream.flush()
        else:
            tenth = int(10 * done / total) if total else done
            if tenth != self.last_tenth:
                self.last_tenth = tenth
                print(text, file=self.stream, flush=True)


def _split(data, holdout):
    """The data set's arrays ([samples, batch, ...]) split into calibration
    examples and held-out samples. ``labels`` with one label per example
    ([samples * batch]) are split at the same example."""
    first = next((v for k, v in data.items() if k != "labels"), None)
    count = 0 if first is None else len(first)
    if count < 2:
        raise ValueError(f"the data set has {count} sample(s): need at least 2 "
                         "(calibration and held-out)")
    holdout = min(holdout, count // 2) if holdout else max(1, min(16, count // 5))
    batch = first.shape[1] if first.ndim > 1 else 1

    def cut(key, v):  # the index of the first held-out entry of v
        per_example = key == "labels" and batch > 1 and len(v) == count * batch
        return (count - holdout) * (batch if per_example else 1)
    # Calibration takes stacked examples [N, ...] (split into the batch again).
    return ({k: v[:cut(k, v)].reshape(-1, *v.shape[2:]) for k, v in data.items()},
            {k: v[cut(k, v):] for k, v in data.items()})


def _examples(samples):
    """Held-out samples ([S, batch, ...] per input) as examples [S * batch,
    ...], with their labels (one per example) if there are."""
    out = {n: v.reshape(-1, *v.shape[2:]) for n, v in samples.items() if n != "labels"}
    if samples.get("labels") is not None:
        out["labels"] = np.asarray(samples["labels"]).ravel()
    return out


def _sqnr(reference, actual):
    noise = float(((reference - actual) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float((reference ** 2).sum()) / noise)


def _evaluate(model, compiled, names, held_out):
    """FP32 (PyTorch) vs the compiled model on each held-out sample: SQNR
    over all outputs and argmax agreement of the first output."""
    import torch
    ref, got = [], []
    for s in range(len(held_out[names[0]])):
        inputs = [held_out[n][s] for n in names]
        with torch.no_grad():
            want = model(*[torch.from_numpy(np.ascontiguousarray(x)) for x in inputs])
        want = want[0] if isinstance(want, (tuple, list)) else want
        out = compiled(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        ref.append(want.numpy().reshape(len(want), -1))
        got.append(np.asarray(out).reshape(len(out), -1))
    ref, got = np.concatenate(ref), np.concatenate(got)
    return _sqnr(ref, got), float((ref.argmax(1) == got.argmax(1)).mean()), len(ref)


def _mib(n):
    return f"{n / 2**20:.1f} MiB"


def _check_analyze(args):
    """--analyze, --accuracy-budget and their options: errors before
    anything is built."""
    for flag, value in (("--worst", args.worst), ("--jobs", args.jobs),
                        ("--max-evaluations", args.max_evaluations)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    if args.holdout < 0:
        raise ValueError(f"--holdout must be 0 (the default share) or more, got {args.holdout}")
    for flag, given, needs in (("--accuracy-budget", args.accuracy_budget, "--mode static"),
                               ("--analyze", args.analyze, "--mode static")):
        if given and args.mode != "static":
            raise ValueError(f"{flag} needs {needs} (it quantizes variants of the model "
                             f"again with the calibration data), not --mode {args.mode}")
    if args.accuracy_budget is not None:
        from .accuracy.search import Budget
        args.budget = Budget.parse(args.accuracy_budget)
    elif args.max_evaluations is not None:
        raise ValueError("--max-evaluations: only with --accuracy-budget")
    if not args.analyze:
        given = [flag for flag, value in (("--worst", args.worst), ("--metric", args.metric))
                 if value is not None]
        if args.jobs is not None and args.accuracy_budget is None:
            given.append("--jobs")
        if given:
            raise ValueError(f"{', '.join(given)}: only with --analyze"
                             + (" or --accuracy-budget" if given == ["--jobs"] else ""))


def _flags(kwargs):
    """quantize_static keyword arguments as `python -m qnt quantize` flags."""
    flags = []
    for key, value in kwargs.items():
        if key == "per_channel":
            flags.append("--per-channel")
        elif key == "exclude":
            flags += [f"--exclude {shlex.quote(name)}" for name in value]
        elif key == "override":
            flags += [f"--override {shlex.quote(f'{sel}={preset}')}"
                      for sel, preset in value.items()]
        else:  # qconfig, observer, numerics
            flags.append(f"--{key} {shlex.quote(str(value))}")
    return " ".join(flags)


def _analysis_lines(analysis, batch, out, seconds):
    """The summary's section on the analysis."""
    from .accuracy.analyze import _fmt
    a = analysis
    lines = [f"  analysis          {a.metric_name} on {a.eval_samples * batch} held-out "
             f"examples: "
             f"FP32 {_fmt(a.fp32_metric, 4)}, INT8 {_fmt(a.int8_metric, 4)}",
             f"                    {a.evaluations} evaluations, {a.calibrations} "
             f"calibration(s), {seconds:.1f}s wall time; {out}/analysis.md, "
             f"{out}/analysis.png"]
    lines += [f"    model cause     {cause}" for cause in a.model_causes]
    for rank, name in enumerate(a.worst, 1):
        layer = a.layer(name)
        lines.append(f"    worst layer {rank:<3} {name} ({layer.op.split('.')[-1]}): SQNR "
                     f"{_fmt(layer.sqnr_db)} dB, all but it quantized "
                     f"{_fmt(layer.all_but_metric, 4)} (only it {_fmt(layer.only_metric, 4)})")
        lines += [f"      cause         {cause}" for cause in layer.causes] or [
            "      cause         none found (keeping it in float gives the value above)"]
    for fix in a.fixes:
        kwargs = ", ".join(f"{k}={v!r}" for k, v in fix.kwargs.items())
        where = "the whole model" if fix.layer == "(model)" else fix.layer
        lines += [f"    fix             {fix.action} ({fix.cause}: {where}): "
                  f"{_fmt(a.int8_metric, 4)} -> {_fmt(fix.metric, 4)}",
                  f"                      quantize_static(..., {kwargs})",
                  f"                      flags: {_flags(fix.kwargs)}"]
    if not a.trials:
        lines.append("    fixes           none tried (no known cause found)")
    elif not a.fixes:
        lines.append(f"    fixes           none of the {len(a.trials)} tried improves "
                     f"the metric")
    return lines


def run(args, load_model, load_weights, example_inputs):
    from . import api, data
    from .compiled import CompiledModel, module_summary
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"-o {out}: exists and is not an empty directory")
    _check_analyze(args)
    model = load_model(args.model)
    if args.weights:
        load_weights(model, args.weights)
    model.eval()
    inputs = example_inputs(args)
    held_out = calibration = metric = None
    if args.calib:
        try:
            arrays = data.load(args.calib)
        except (OSError, ValueError) as e:
            raise ValueError(f"--calib {args.calib}: cannot read it ({e})") from None
        calibration, held_out = _split(arrays, args.holdout)
        metric = args.metric or ("top1" if "labels" in arrays else "sqnr")
        if args.analyze and metric == "top1" and "labels" not in arrays:
            raise ValueError(f"--metric top1: --calib {args.calib} has no 'labels' array")
        if args.accuracy_budget and args.budget.kind == "top1" and "labels" not in arrays:
            raise ValueError(f"--accuracy-budget {args.accuracy_budget}: --calib {args.calib} "
                             f"has no 'labels' array for top-1 accuracy")
    elif args.mode == "static":
        raise ValueError("--mode static needs --calib DATA.npz (quant-run's data-set format; "
                         "python -m qnt fashion-mnist writes one)")

    def log(text):
        print(f"qnt: {text}", file=sys.stderr, flush=True)

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent.resolve()))
    try:
        target = staging / "model"
        search_lines = []
        if args.accuracy_budget:
            from .accuracy.search import search, summary_lines
            start = time.perf_counter()
            result = search(
                model, inputs, calibration, _examples(held_out), budget=args.budget,
                qconfig=args.qconfig, observer=args.observer, exclude=args.exclude or (),
                per_channel=args.per_channel or None, override=getattr(args, "override", None),
                numerics=args.numerics, max_evaluations=args.max_evaluations or 40,
                max_workers=args.jobs, out_dir=staging / "search", model_dir=target,
                build_dir=args.build_dir, log=log)
            compiled = result.model
            for name in ("search.md", "search.png"):
                os.replace(staging / "search" / name, target / name)
            search_lines = summary_lines(result, out)
            log(f"search: {time.perf_counter() - start:.1f}s")
        elif args.mode == "static":
            compiled = api.quantize_static(
                model, inputs, calibration, args.qconfig, observer=args.observer,
                exclude=args.exclude or (), per_channel=args.per_channel or None,
                override=getattr(args, "override", None), numerics=args.numerics,
                out_dir=target, build_dir=args.build_dir, log=log,
                progress=Progress("calibrate"))
        else:
            compiled = api.quantize_dynamic(model, inputs, qconfig=args.qconfig,
                                            per_channel=args.per_channel, out_dir=target,
                                            build_dir=args.build_dir, log=log)
        log("measuring ...")
        fp32 = CompiledModel.build(target / "model.fp32.mlir", staging / "fp32",
                                   build_dir=args.build_dir)
        lat8, lat32 = compiled.benchmark(runs=args.runs), fp32.benchmark(runs=args.runs)
        summary = compiled.manifest["summary"]
        float_bytes = module_summary(target / "model.fp32.mlir",
                                     args.build_dir)["weight_bytes"]
        names = [spec["name"] for spec in compiled.inputs]
        labels = None
        if held_out is not None:
            labels = held_out.get("labels")
            held_out = api.match_inputs(held_out, names)
        analysis_lines = []
        if args.analyze:
            eval_data = _examples(dict(held_out, labels=labels) if labels is not None
                                  else held_out)
            log(f"analyzing per layer (metric {metric}, worst {args.worst or 3}) ...")
            start = time.perf_counter()
            analysis = compiled.analyze(calibration, eval_data, metric=metric,
                                        worst=args.worst or 3, max_workers=args.jobs,
                                        out_dir=target, build_dir=args.build_dir, log=log)
            analysis_lines = _analysis_lines(analysis, compiled.batch, out,
                                            time.perf_counter() - start)
        qconfig = compiled.manifest.get("qconfig") or args.qconfig  # the search may change it
        lines = [f"qnt quantize {args.model} ({args.mode}, qconfig {qconfig})", ""]
        lines.append(f"  ops quantized     {summary['ops_quantized']}, kept float "
                     f"{summary['ops_float']}")
        for op, counts in sorted(summary["op_types"].items()):
            lines.append(f"    {op:<22} int8 {counts.get('int8', 0):>4}   float "
                         f"{counts.get('float', 0):>4}")
        int8_bytes = sum(summary["weight_bytes"].values())
        lines.append(f"  weights           FP32 {_mib(sum(float_bytes.values()))} -> "
                     f"INT8 {_mib(int8_bytes)}")
        if held_out is not None:
            sqnr, agree, n = _evaluate(model, compiled, names, held_out)
            lines.append(f"  FP32 vs INT8      SQNR {sqnr:.1f} dB, argmax agreement "
                         f"{100 * agree:.1f} % on {n} held-out examples"
                         + (" (the search's eval set)" if args.accuracy_budget else ""))
        lines.append(f"  latency (batch {compiled.inputs[0]['shape'][0]}, median of "
                     f"{args.runs})  FP32 {lat32['median_ms']:.2f} ms -> INT8 "
                     f"{lat8['median_ms']:.2f} ms ({lat32['median_ms'] / lat8['median_ms']:.2f}x)")
        seconds = compiled.manifest.get("seconds") or {}
        if args.accuracy_budget:
            seconds = {"search (export, calibrate, evaluate, compile)": result.seconds}
        lines.append("  time              " + ", ".join(f"{k} {v:.1f}s"
                                                       for k, v in seconds.items()))
        lines += search_lines + analysis_lines
        extra = ((", search.md, search.png" if args.accuracy_budget else "")
                 + (", analysis.md, analysis.png" if args.analyze else ""))
        lines.append(f"  output            {out}/ (libmodel.so, model.h, manifest.json, "
                     f"summary.txt{extra}; qnt.load('{out}'))")
        text = "\n".join(lines) + "\n"
        (target / "summary.txt").write_text(text)
        del fp32
        if out.exists():
            out.rmdir()
        os.replace(target, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(text, end="")
    if args.accuracy_budget and not result.met:
        print(f"qnt: warning: {result.message}; -o has the best candidate found",
              file=sys.stderr)
        return 3
    return 0
