"""``python -m qnt quantize``: a PyTorch model to a compiled INT8 library in
one command, with a summary of what it did and what it costs.

Export, prepare, calibrate (a progress bar with rate and ETA on a terminal,
plain lines otherwise), fold, convert, compile: `qnt.quantize_static` /
`qnt.quantize_dynamic`; then, on held-out samples of the data set (not used
for calibration), the FP32 model (PyTorch) against the compiled INT8 one,
and the latency of the FP32 and INT8 modules compiled by quant-compile.
Everything is built in a staging directory next to ``-o`` and renamed into
place at the end: a failure leaves nothing in ``-o``.
"""

import math
import os
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
    examples and held-out samples."""
    count = len(next(iter(data.values())))
    if count < 2:
        raise ValueError(f"the data set has {count} sample(s): need at least 2 "
                         "(calibration and held-out)")
    holdout = min(holdout, count // 2) if holdout else max(1, min(16, count // 5))
    # Calibration takes stacked examples [N, ...] (split into the batch again).
    return ({k: v[:count - holdout].reshape(-1, *v.shape[2:]) for k, v in data.items()},
            {k: v[count - holdout:] for k, v in data.items()})


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


def run(args, load_model, load_weights, example_inputs):
    from . import api, data
    from .compiled import CompiledModel, module_summary
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"-o {out}: exists and is not an empty directory")
    model = load_model(args.model)
    if args.weights:
        load_weights(model, args.weights)
    model.eval()
    inputs = example_inputs(args)
    held_out = None
    calibration = None
    if args.calib:
        try:
            arrays = data.load(args.calib)
        except (OSError, ValueError) as e:
            raise ValueError(f"--calib {args.calib}: cannot read it ({e})") from None
        calibration, held_out = _split(arrays, args.holdout)
    elif args.mode == "static":
        raise ValueError("--mode static needs --calib DATA.npz (quant-run's data-set format; "
                         "python -m qnt fashion-mnist writes one)")

    def log(text):
        print(f"qnt: {text}", file=sys.stderr, flush=True)

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent.resolve()))
    try:
        target = staging / "model"
        if args.mode == "static":
            compiled = api.quantize_static(
                model, inputs, calibration, args.qconfig, observer=args.observer,
                exclude=args.exclude or (), per_channel=args.per_channel or None,
                numerics=args.numerics, out_dir=target, build_dir=args.build_dir, log=log,
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
        if held_out is not None:
            held_out = api.match_inputs(held_out, names)
        lines = [f"qnt quantize {args.model} ({args.mode}, qconfig {args.qconfig})", ""]
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
                         f"{100 * agree:.1f} % on {n} held-out examples")
        lines.append(f"  latency (batch {compiled.inputs[0]['shape'][0]}, median of "
                     f"{args.runs})  FP32 {lat32['median_ms']:.2f} ms -> INT8 "
                     f"{lat8['median_ms']:.2f} ms ({lat32['median_ms'] / lat8['median_ms']:.2f}x)")
        seconds = compiled.manifest.get("seconds", {})
        lines.append("  time              " + ", ".join(f"{k} {v:.1f}s"
                                                       for k, v in seconds.items()))
        lines.append(f"  output            {out}/ (libmodel.so, model.h, manifest.json, "
                     f"summary.txt; qnt.load('{out}'))")
        text = "\n".join(lines) + "\n"
        (target / "summary.txt").write_text(text)
        del fp32
        if out.exists():
            out.rmdir()
        os.replace(target, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(text, end="")
