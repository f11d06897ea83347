#!/usr/bin/env python3
"""INT8 benchmark: qnt vs PyTorch and ONNX Runtime, FP32 and INT8, batch 1 and 8.

    /usr/bin/python3 bench/run.py [--models resnet18,mobilenet_v2,...]
                                  [--batches 1,8] [--runs 20] [--threads 2] [--ort | --no-ort]

For every model and batch size, median latency of:
  * PyTorch FP32 (eager, torchvision model);
  * PyTorch INT8, for each of the engines onednn and qnnpack that
    torch.backends.quantized.supported_engines lists: eager-mode static
    quantization of the torchvision.models.quantization variant (fuse_model,
    get_default_qconfig(engine), prepare, calibrate, convert) where torchvision
    has one (resnet18, mobilenet_v2, mobilenet_v3_large), else FX graph mode
    (prepare_fx / convert_fx with get_default_qconfig_mapping(engine):
    efficientnet_b0, densenet121);
  * ONNX Runtime FP32 and INT8 (onnxruntime-node, scripts/ort-setup.sh,
    bench/ort_run.js): torch.onnx.export of the float model and of PyTorch's
    INT8 model (onednn engine; QDQ, fused by ORT into QLinearConv etc.);
  * qnt FP32: the model exported by `python -m qnt export`, run by quant-run;
  * qnt INT8: the README's pipeline with the x86 preset (prepare, calibrate
    with quant-run, fold-calibration + convert), run by quant-run;
  * qnt on ORT's INT8 model: that QDQ .onnx file imported (`python -m qnt
    import-onnx`, the file's scales) and compiled with --qnt-fuse
    --qnt-fold-fake-quant --qnt-convert: the same integers on two engines.
All of them run the same weights (random, with realistic batch norms as in
eval/ptq_vs_pytorch.py) and calibrate on the same samples, with the same
thread count (default 2). Inputs are random: latency does not depend on the
values. Also measures the INT8 dot-product ceiling of the CPU
(bench/ceiling.c) and, with the runtime's QNT_RT_PROFILE, the per-layer
GMAC/s of qnt INT8 resnet18 at batch 1.

Writes bench/results.md and bench/results.png (matplotlib; skipped with a
message if it is missing). See bench/README.md for how long a run takes."""

import argparse
import copy
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import bench_models  # noqa: E402
import onnx_export  # noqa: E402
from ort import DEFAULT_DIR as ORT_DIR, Ort  # noqa: E402
from timing import ceiling, torch_median_ms  # noqa: E402

sys.path.insert(0, str(ROOT / "eval"))
import ptq_vs_pytorch as pvp  # noqa: E402  (realistic_batch_norms)

sys.path.insert(0, str(ROOT / "python"))
from qnt.export import proxy_unpacking  # noqa: E402

CNNS = ("resnet18", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "densenet121")
ENGINES = ("onednn", "qnnpack")
# The targets (latency ratios; lower is better for ours).
TARGET_VS_PT_INT8 = 0.6     # ours INT8 <= 0.6x PyTorch INT8 (onednn)
TARGET_VS_ORT_INT8 = 0.8    # ours INT8 <= 0.8x ONNX Runtime INT8
TARGET_VS_PT_FP32 = 3.0     # ours INT8 >= 3x faster than PyTorch FP32 (resnet18)
# (models, batches) of the targets against PyTorch INT8 and ONNX Runtime INT8
TARGETS_PT_INT8 = ((("resnet18", "mobilenet_v2"), (1,)),
                   (("mobilenet_v3_large", "efficientnet_b0"), (1, 8)),
                   (("vit_s_16",), (1,)))
TARGETS_ORT_INT8 = ((("mobilenet_v3_large", "efficientnet_b0"), (1, 8)),)
# qnt on ORT's own INT8 model (imported QDQ) <= 0.8x ORT on it (issue 13)
TARGETS_ONNX_INT8 = ((("resnet18", "mobilenet_v2"), (1, 8)),)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------

def cpu_info():
    model, flags = platform.processor() or "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
        if m:
            model = m.group(1).strip()
        m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
        if m:
            flags = set(m.group(1).split())
    except OSError:
        pass
    isa = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                       "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
           if f in flags]
    return model, isa, os.cpu_count()


def load1():
    return os.getloadavg()[0]


def cpu_times():
    """(busy+idle, steal) jiffies of all CPUs from /proc/stat."""
    try:
        f = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(f[:8]), f[7] if len(f) > 7 else 0
    except (OSError, ValueError, IndexError):
        return 0, 0


def wait_quiet(max_load, max_wait):
    """Waits (up to max_wait s) for the 1-minute load average to fall below max_load."""
    start = time.monotonic()
    while load1() >= max_load and time.monotonic() - start < max_wait:
        log(f"load average {load1():.2f} >= {max_load}: waiting for a quiet machine ...")
        time.sleep(20)
    if load1() >= max_load:
        log(f"warning: load average still {load1():.2f}; timings may be noisy")
    return load1()


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def float_models(name):
    """(plain float model, quantizable float model or None), in eval mode,
    with the same weights: torchvision.models.NAME() (seed 0) with realistic
    batch norms (eval/ptq_vs_pytorch.py: random affine parameters, running
    statistics of structured images; torchvision's defaults make random deep
    networks degenerate, e.g. an all-zero INT8 output), and for the models
    torchvision.models.quantization has, that variant (quantize=False) with
    the same state dict. Callers copy before changing them."""
    torch.manual_seed(0)
    if name == "mlp":
        model = bench_models.mlp().eval()
        return model, model
    if name in bench_models.MODELS:  # no batch norms
        plain = bench_models.MODELS[name]()
    else:
        plain = getattr(torchvision.models, name)()
        pvp.realistic_batch_norms(plain)
    quantizable = None
    if hasattr(torchvision.models.quantization, name):
        quantizable = getattr(torchvision.models.quantization, name)(quantize=False)
        quantizable.load_state_dict(plain.state_dict())
        quantizable.eval()
    return plain.eval(), quantizable


def pt_median_ms(model, x, runs, budget_s, few_runs):
    """torch_median_ms, with fewer runs (at least 3, after 1 warm-up) when
    runs + 5 warm-ups at the second call's time would exceed budget_s
    (qnnpack on x86 takes up to seconds per call on the larger models);
    few_runs(n) is told the reduced count."""
    with torch.no_grad():
        model(x)  # the first call: one-time set-up (primitive creation, caches)
        t0 = time.perf_counter()
        model(x)
        per_call = time.perf_counter() - t0
    n = max(3, min(runs, int(budget_s / per_call) - 1))
    if per_call * (runs + 5) <= budget_s or n >= runs:
        return torch_median_ms(model, x, runs)
    few_runs(n)
    return torch_median_ms(model, x, n, warmup=1)


def pt_int8_method(name):
    return "eager" if float_models(name)[1] is not None else "FX"


def int8_model(name, engine, calib):
    """PyTorch static PTQ: eager mode on the quantizable variant, else FX
    graph mode on the plain model."""
    torch.backends.quantized.engine = engine
    plain, quantizable = float_models(name)
    if quantizable is not None:
        model = copy.deepcopy(quantizable).eval()
        model.fuse_model()
        model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
        torch.ao.quantization.prepare(model, inplace=True)
        with torch.no_grad():
            for x in calib:
                model(x)
        torch.ao.quantization.convert(model, inplace=True)
        return model
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    with proxy_unpacking():  # torch 1.13's FX on Python 3.11 (VisionTransformer)
        model = prepare_fx(copy.deepcopy(plain).eval(),
                           torch.ao.quantization.get_default_qconfig_mapping(engine),
                           example_inputs=(calib[0],))
    with torch.no_grad():
        for x in calib:
            model(x)
    return convert_fx(model)


# ---------------------------------------------------------------------------
# ONNX Runtime
# ---------------------------------------------------------------------------

def db(v):
    return "n/a (shapes differ)" if v is None else f"{v:.1f} dB"


def sqnr_db(ref, out):
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    if ref.shape != out.shape:
        return None
    noise = float(((ref - out) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((ref ** 2).sum()) / noise)


# ---------------------------------------------------------------------------
# qnt
# ---------------------------------------------------------------------------

class Tools:
    def __init__(self, build_dir):
        self.bin = Path(build_dir) / "bin"
        for tool in ("quant-opt", "quant-run"):
            if not (self.bin / tool).exists():
                sys.exit(f"error: {self.bin / tool} not found: build first "
                         f"(scripts/test.sh, or --build-dir / QNT_BUILD_DIR)")

    def run(self, tool, *args, env=None):
        cmd = [str(self.bin / tool)] + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           env=dict(os.environ, **(env or {})))
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {r.returncode}):\n"
                               f"{r.stderr.strip()[-2000:]}")
        return r.stdout

    def bench(self, mlir, inputs, runs, threads, env=None, backend="onednn"):
        out = self.run("quant-run", mlir, "-i", inputs, "--bench", runs, "--warmup", 5,
                       "--num-threads", threads, "--backend", backend, env=env)
        return float(re.search(r"median ([0-9.]+) ms", out).group(1))


def export(name, shape, path):
    """`python -m qnt export` of the benchmark's model (float_models: the
    quantizable variant where there is one), its weights passed by --weights."""
    plain, quantizable = float_models(name)
    if name in bench_models.MODELS:
        spec = f"bench_models:{name}"
    elif quantizable is not None:
        spec = f"torchvision.quantization:{name}"
    else:
        spec = f"torchvision:{name}"
    weights = Path(path).with_suffix(".pt")
    torch.save((quantizable or plain).state_dict(), weights)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "python"), str(BENCH), os.environ.get("PYTHONPATH", "")]))
    for attempt in range(3):  # python/qnt may be mid-edit in a shared checkout
        r = subprocess.run([sys.executable, "-m", "qnt", "export", "--model", spec,
                            "--input-shape", ",".join(map(str, shape)), "--weights", str(weights),
                            "-o", str(path)],
                           capture_output=True, text=True, env=env)
        if not r.returncode:
            break
        time.sleep(5)
    if r.returncode:
        raise RuntimeError(f"qnt export {spec} failed:\n{r.stderr.strip()[-2000:]}")
    m = re.search(r'qnt\.name = "([^"]+)"', Path(path).read_text())
    return m.group(1) if m else "arg0"


def ours_onnx_int8(tools, work, onnx_path):
    """ORT's INT8 model imported and compiled: the int8 .mlir."""
    from qnt.onnx import import_onnx
    mlir, int8 = work / "ort_int8.mlir", work / "ort_int8.int8.mlir"
    import_onnx(onnx_path, mlir)
    tools.run("quant-opt", mlir, "--qnt-fuse", "--qnt-fold-fake-quant", "--qnt-convert",
              "-o", int8)
    return int8


def ours_int8(tools, work, fp32_mlir, calib_npz):
    prep, stats, int8 = work / "prepared.mlir", work / "stats.json", work / "int8.mlir"
    tools.run("quant-opt", fp32_mlir, "--qnt-ptq-pipeline=qconfig=x86",
              "--mlir-print-debuginfo", "-o", prep)
    tools.run("quant-run", prep, "--calibrate", calib_npz, "--stats-file", stats, "--quiet")
    tools.run("quant-opt", prep, f"--qnt-fold-calibration=stats={stats}", "--qnt-convert",
              "-o", int8)
    return int8


# ---------------------------------------------------------------------------
# One model at one batch size
# ---------------------------------------------------------------------------

def bench_one(tools, ort, tmp, name, batch, runs, threads, calib_n, engines, profile_dir,
              budget_s):
    log(f"[{name} batch {batch}]")
    shape = (batch, bench_models.MLP_IN) if name == "mlp" else (batch, 3, 224, 224)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    calib = [torch.randn(*shape, generator=g) for _ in range(calib_n)]
    method = pt_int8_method(name)
    # cells: text for a column without a number; errors: messages listed under the table
    row = {"model": name, "batch": batch, "pt_int8_method": method, "cells": {}, "errors": []}
    # key -> a function that measures it again (later rounds keep the minimum)
    timers = row["_timers"] = {}

    def timed(key, fn):
        timers[key] = fn
        row[key] = fn()

    def failed(key, label, e, cell="error"):
        msg = (str(e) if isinstance(e, onnx_export.ExportError) else
               onnx_export.short(e) if isinstance(e, Exception) else str(e))
        log(f"  {label}: {msg}")
        row[key] = None
        row["cells"][key] = cell
        row["errors"].append(f"{label}: {msg}")

    work = Path(tmp) / f"{name}_b{batch}"
    work.mkdir()
    plain, _ = float_models(name)
    row["few_runs"] = {}

    def pt_timer(key, model, engine=None):
        def measure():
            if engine:
                torch.backends.quantized.engine = engine
            return pt_median_ms(model, x, runs, budget_s,
                                lambda n: row["few_runs"].__setitem__(key, n))
        return measure

    timed("pt_fp32", pt_timer("pt_fp32", plain))
    quantized = {}
    for engine in ENGINES:
        key = f"pt_int8_{engine}"
        if engine not in engines:
            row[key] = None
            row["cells"][key] = "n/a (engine missing)"
            continue
        try:
            q = int8_model(name, engine, calib)
            timed(key, pt_timer(key, q, engine))
            quantized[engine] = q
        except Exception as e:  # noqa: BLE001 (an engine without a kernel, FX failing to trace)
            failed(key, f"PyTorch INT8 {engine} ({method})", e)

    # ONNX Runtime: the float model, and PyTorch's INT8 model (onednn, else qnnpack)
    row["ort_notes"] = {}
    if ort.status:
        for key in ("ort_fp32", "ort_int8"):
            row[key] = None
            row["cells"][key] = ort.status
    else:
        npy = work / "input.npy"
        np.save(npy, x.numpy())
        q_engine = next((e for e in ENGINES if e in quantized), None)
        jobs = [("ort_fp32", "ORT FP32", plain, None)]
        if q_engine:
            jobs.append(("ort_int8", "ORT INT8", quantized[q_engine], q_engine))
        else:
            failed("ort_int8", "ORT INT8", "no PyTorch INT8 model to export",
                   "error (no PyTorch INT8 model)")
        for key, label, model, engine in jobs:
            onnx = work / f"{key}.onnx"
            try:
                if engine:
                    torch.backends.quantized.engine = engine
                t0 = time.monotonic()
                note = onnx_export.export(model, x, onnx)
                note += f", {time.monotonic() - t0:.0f} s"
            except Exception as e:  # noqa: BLE001
                first = e.attempts[0] if isinstance(e, onnx_export.ExportError) \
                    else onnx_export.short(e)
                failed(key, f"{label} export", e, f"export failed ({first})")
                continue
            if engine:
                note = f"from PyTorch INT8 {engine} ({method}), {note}"
            try:
                out = work / f"{key}_out.npy"
                row[key] = ort.bench(onnx, npy, runs, threads, out=out)
                timers[key] = lambda o=onnx: ort.bench(o, npy, runs, threads)
                with torch.no_grad():
                    ref, ref32 = model(x).numpy(), plain(x).numpy()
                ort_out = np.load(out)
                if engine:
                    note += (f"; SQNR of the output: ORT INT8 vs PyTorch INT8 "
                             f"{db(sqnr_db(ref, ort_out))}, vs PyTorch FP32: ORT INT8 "
                             f"{db(sqnr_db(ref32, ort_out))}, PyTorch INT8 "
                             f"{db(sqnr_db(ref32, ref))}")
                else:
                    note += f"; SQNR of the output vs PyTorch FP32 {db(sqnr_db(ref32, ort_out))}"
            except Exception as e:  # noqa: BLE001
                failed(key, label, e)
            if key == "ort_int8" and row.get(key) is not None:
                try:
                    int8 = ours_onnx_int8(tools, work, onnx)
                    np.savez(work / "ort_input.npz", input=x.numpy())
                    timed("ours_onnx_int8", lambda m=int8: tools.bench(
                        m, work / "ort_input.npz", runs, threads, backend="auto"))
                    tools.run("quant-run", int8, "-i", work / "ort_input.npz", "-o",
                              work / "ours_onnx_out.npz", "--quiet")
                    ours = np.load(work / "ours_onnx_out.npz")["output"]
                    step = np.diff(np.unique(ort_out)).min() if ort_out.size > 1 else 1.0
                    note += (f"; qnt on this file vs ORT on it: SQNR "
                             f"{db(sqnr_db(ort_out, ours))}, max difference "
                             f"{np.abs(ours - ort_out).max() / step:.0f} output steps, top-1 "
                             f"agreement {np.mean(ours.argmax(-1) == ort_out.argmax(-1)):.0%}")
                except Exception as e:  # noqa: BLE001
                    failed("ours_onnx_int8", "qnt on ORT's INT8 model", e)
            row["ort_notes"][key] = note
            log(f"  {label}: {note}")

    try:
        fp32_mlir = work / "model.mlir"
        arg = export(name, shape, fp32_mlir)
        np.savez(work / "input.npz", **{arg: x.numpy()})
        np.savez(work / "calib.npz", **{arg: torch.stack(calib).numpy()})
        timed("ours_fp32", lambda: tools.bench(fp32_mlir, work / "input.npz", runs, threads))
        int8 = ours_int8(tools, work, fp32_mlir, work / "calib.npz")
        for backend in ("onednn", "xnnpack"):
            timed(f"ours_int8_{backend}",
                  lambda b=backend: tools.bench(int8, work / "input.npz", runs, threads,
                                                backend=b))
        # The headline: backend=auto (per layer, the faster library).
        timed("ours_int8", lambda: tools.bench(int8, work / "input.npz", runs, threads,
                                               backend="auto"))

        # Profiled separately, so the timed run above carries no profiling cost.
        def profile():
            prof = Path(profile_dir) / f"{name}_b{batch}.json"
            tools.bench(int8, work / "input.npz", max(5, runs // 2), threads,
                        env={"QNT_RT_PROFILE": "1", "QNT_RT_PROFILE_JSON": str(prof)},
                        backend="auto")
            return json.loads(prof.read_text())["sites"]
        row["_profile"] = profile
        row["profile"] = profile()
    except (RuntimeError, OSError, ValueError) as e:
        log(f"  qnt: {e}")
        row.setdefault("ours_fp32", None)
        for key in ("ours_int8", "ours_int8_onednn", "ours_int8_xnnpack"):
            row.setdefault(key, None)
        row["errors"].append(f"qnt: {str(e).splitlines()[0]}")
    log("  " + ", ".join(f"{k} {v:.2f} ms" for k, v in row.items()
                         if k.startswith(("pt_", "ours_", "ort_")) and isinstance(v, float)))
    return row


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def ms(v):
    return "error" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}")


def cell(r, key):
    """A latency cell: the number, else the row's text for it ("error", ...)."""
    v = r.get(key)
    return ms(v) if v is not None else r.get("cells", {}).get(key, "error")


def ratio(a, b):
    return "–" if a is None or b is None else f"{a / b:.2f}x"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def kernel_ms(sites):
    return sum(s["total_ns"] / max(1, s["calls"]) for s in sites) / 1e6


def site_gmacs(s):
    per_call_ns = s["total_ns"] / max(1, s["calls"])
    return s["macs_per_call"] / per_call_ns if s["macs_per_call"] and per_call_ns else None


def isa_of(desc):
    """The ISA of a oneDNN kernel's profile description (`name:isa`)."""
    m = re.search(r":(\w+)\)$", desc)
    return m.group(1) if m else ""


def impl_of(desc):
    """The implementation part of a profile description: oneDNN's
    `name:isa` or the runtime's own, e.g. `qnt stemconv avx512_vnni`."""
    m = re.search(r"\(([^()]*)\)$", desc)
    return m.group(1) if m else ""


def ceiling_for(desc, ceil, threads):
    """The ceiling that applies to a kernel: VNNI for oneDNN's *_vnni / amx
    kernels and the runtime's own avx512_vnni ones when measured, else AVX2
    (vpmaddubsw)."""
    isa = impl_of(desc)
    if ("vnni" in isa or "amx" in isa) and ("avx512vnni", threads) in ceil:
        return ceil[("avx512vnni", threads)], "VNNI"
    return ceil.get(("avx2", threads)), "AVX2"


def layer_table(sites, ceil, threads):
    total = sum(s["total_ns"] for s in sites)
    calls = max(s["calls"] for s in sites)
    rows = []
    for s in sites:
        us = s["total_ns"] / max(1, s["calls"]) / 1e3
        g = site_gmacs(s)
        c, which = ceiling_for(s["desc"], ceil, threads) if g else (None, "")
        rows.append([s["index"], s["desc"], f"{us:.1f}", f"{100 * s['total_ns'] / total:.1f}",
                     f"{s['macs_per_call'] / 1e6:.1f}" if s["macs_per_call"] else "",
                     f"{g:.0f}" if g else "",
                     f"{100 * g / c:.0f} % ({which})" if g and c else ""])
    text = md_table(["#", "kernel (op, shape, implementation)", "µs/call", "% time",
                     "MMAC", "GMAC/s", "of ceiling"], rows)
    return text, total / calls / 1e6


def op_shares(rows):
    """Per model: kernel time per inference by op, and the rest of the latency."""
    ops = ("conv2d", "linear", "add", "pool2d", "quantize", "dequantize")
    out = []
    for r in rows:
        sites = r.get("profile")
        if not sites or not r.get("ours_int8"):
            continue
        calls = max(s["calls"] for s in sites)
        by_op = {op: 0.0 for op in ops}
        for s in sites:
            by_op[s["op"]] = by_op.get(s["op"], 0.0) + s["total_ns"] / calls / 1e6
        kernel = sum(by_op.values())
        outside = max(0.0, r["ours_int8"] - kernel)
        out.append([r["model"], r["batch"], ms(r["ours_int8"])]
                   + [f"{by_op[op]:.2f}" for op in ops] + [f"{outside:.2f}"])
    return md_table(["model", "batch", "qnt INT8 ms", *[f"{op} ms" for op in ops],
                     "outside the runtime ms"], out)


def ceiling_bound(sites, ceil, threads, latency, allowed, label):
    """Lines comparing a latency target with the CPU's arithmetic peak: the
    time the MAC kernels' work (from the profile of qnt's own INT8 model:
    the same network, so the same MACs) takes at the ceiling of their ISA,
    with no time for anything else, and the share of that ceiling a latency
    of `allowed` ms asks for over the whole network; `latency` is the
    measured one of `label`."""
    macs = at_ceiling = 0.0
    for s in (s for s in sites if s["macs_per_call"]):
        c, _ = ceiling_for(s["desc"], ceil, threads)
        if not c:
            return []
        macs += s["macs_per_call"]
        at_ceiling += s["macs_per_call"] / c / 1e6
    if not macs:
        return []
    return [f"bound: its {macs / 1e9:.2f} GMAC (convs counted on taps inside the image) "
            f"take {at_ceiling:.2f} ms at the ceiling; the target allows {allowed:.2f} ms, "
            f"so it asks for {100 * at_ceiling / allowed:.0f} % of the ceiling over the "
            f"whole latency; {label} ({latency:.2f} ms) runs at "
            f"{100 * at_ceiling / latency:.0f} %"]


def holdbacks(sites, ceil, threads, n=5, latency=None):
    """Short text naming where the time goes: the largest time shares and
    the least efficient MAC kernels."""
    total = sum(s["total_ns"] for s in sites)
    by_op = {}
    for s in sites:
        by_op[s["op"]] = by_op.get(s["op"], 0) + s["total_ns"]
    share = ", ".join(f"{op} {100 * t / total:.0f} %"
                      for op, t in sorted(by_op.items(), key=lambda kv: -kv[1]))
    worst = []
    for s in sites:
        g = site_gmacs(s)
        if g:
            c, _ = ceiling_for(s["desc"], ceil, threads)
            # time lost against the ceiling
            lost = s["total_ns"] - (s["macs_per_call"] / c * s["calls"] if c else 0)
            worst.append((lost, s, g, c))
    worst.sort(key=lambda t: -t[0])
    lines = [f"time by op: {share}"]
    if latency:
        kernel = total / max(s["calls"] for s in sites) / 1e6
        lines.append(f"runtime kernels {kernel:.2f} ms of the {latency:.2f} ms latency; "
                     f"the rest ({max(0.0, latency - kernel):.2f} ms) is compiled code "
                     "outside the runtime (float elementwise ops, copies, call overhead)")
    for lost, s, g, c in worst[:n]:
        lines.append(f"#{s['index']} {s['desc']}: {g:.0f} GMAC/s"
                     + (f" ({100 * g / c:.0f} % of ceiling)" if c else "")
                     + f", {100 * s['total_ns'] / total:.1f} % of kernel time")
    nonmac = sorted((s for s in sites if not s["macs_per_call"]), key=lambda s: -s["total_ns"])
    for s in nonmac[:3]:
        lines.append(f"#{s['index']} {s['desc']}: {100 * s['total_ns'] / total:.1f} % "
                     "of kernel time (no MACs)")
    return lines


def chart(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (Debian: apt-get install python3-matplotlib): "
            "bench/results.png not written; results.md is complete")
        return False
    series = [("pt_int8_onednn", "PyTorch INT8 (onednn)", "#8da0cb"),
              ("pt_int8_qnnpack", "PyTorch INT8 (qnnpack)", "#a6d854"),
              ("ort_int8", "ONNX Runtime INT8", "#e78ac3"),
              ("ours_fp32", "qnt FP32", "#fc8d62"),
              ("ours_int8_xnnpack", "qnt INT8 (XNNPACK)", "#66c2a5"),
              ("ours_int8", "qnt INT8 (auto: oneDNN + XNNPACK adds)", "#e41a1c")]
    labels = [f"{r['model']}\nbatch {r['batch']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, 1.5 * len(rows)), 4.8))
    width = 0.8 / len(series)
    for i, (key, label, color) in enumerate(series):
        xs, ys = [], []
        for j, r in enumerate(rows):
            if r.get(key) and r.get("pt_fp32"):
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(r["pt_fp32"] / r[key])
        bars = ax.bar(xs, ys, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("speedup over PyTorch FP32 (log)")
    ax.set_title("Latency speedup over PyTorch FP32 eager (higher is better)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def report(rows, ceil, args, machine, load_before, load_after, elapsed, engines, noise,
           ort):
    model, isa, ncpu = machine
    out = []
    out.append("# INT8 benchmark: qnt vs PyTorch and ONNX Runtime\n")
    out.append(f"Generated by `bench/run.py` on {time.strftime('%Y-%m-%d %H:%M')}: "
               f"{args.threads} threads, median of {args.runs} runs (batch 8: "
               f"{max(3, args.runs // 2)}), the lowest median of {args.rounds} rounds, random "
               f"weights (realistic batch norms) and inputs, the same for every framework, "
               f"{args.calib} calibration samples. Load average (1 min) before "
               f"{load_before:.2f}, after {load_after:.2f}; run took {elapsed / 60:.1f} min.\n")
    if noise:
        out.append(f"**Noise warning:** {noise}\n")
    out.append(f"* CPU: {model}, {ncpu} logical CPUs; ISA: {', '.join(isa)}")
    out.append(f"* PyTorch {torch.__version__} (quantized engines: "
               f"{', '.join(torch.backends.quantized.supported_engines)}), "
               f"torchvision {torchvision.__version__}")
    out.append("* ONNX Runtime: " + (f"{ort.version} (npm onnxruntime-node, CPU execution "
                                      f"provider, bench/ort_run.js)" if not ort.status
                                      else ort.status))
    impls = sorted({isa_of(s["desc"]) for r in rows for s in r.get("profile", [])
                    if s["op"] in ("conv2d", "linear") and isa_of(s["desc"])})
    out.append(f"* qnt INT8: x86 preset (u8 activations in [0, 127], per-channel s8 "
               f"weights); oneDNN kernels ({', '.join(impls) or 'n/a'}), XNNPACK qc8 / "
               f"qu8 kernels for the XNNPACK column and for auto's adds\n")

    out.append("## INT8 compute ceiling (bench/ceiling.c)\n")
    crow = []
    for isa_name, label in (("avx2", "AVX2 vpmaddubsw+vpmaddwd+vpaddd"),
                            ("avx512vnni", "AVX-512 VNNI vpdpbusd")):
        if (isa_name, 1) in ceil:
            crow.append([label, f"{ceil[(isa_name, 1)]:.0f}",
                         f"{ceil.get((isa_name, args.threads), float('nan')):.0f}"])
        else:
            crow.append([label, "not supported", "not supported"])
    out.append(md_table(["kernel", "GMAC/s, 1 thread", f"GMAC/s, {args.threads} threads"],
                        crow) + "\n")

    out.append("## Latency (ms, median; lower is better)\n")
    header = ["model", "batch", "PyTorch FP32", "PyTorch INT8 method", "PyTorch INT8 onednn",
              "PyTorch INT8 qnnpack", "ORT FP32", "ORT INT8", "qnt FP32", "qnt INT8 oneDNN",
              "qnt INT8 XNNPACK", "qnt INT8 auto", "qnt on ORT's INT8 model",
              "qnt on ORT's INT8 model / ORT INT8", "qnt INT8 / PT INT8 onednn", "qnt INT8 / PT INT8 qnnpack", "qnt INT8 / ORT INT8",
              "qnt INT8 / PT FP32", "qnt FP32 / PT FP32"]
    trows = []
    for r in rows:
        trows.append([r["model"], r["batch"], cell(r, "pt_fp32"), r["pt_int8_method"],
                      cell(r, "pt_int8_onednn"), cell(r, "pt_int8_qnnpack"),
                      cell(r, "ort_fp32"), cell(r, "ort_int8"), cell(r, "ours_fp32"),
                      cell(r, "ours_int8_onednn"), cell(r, "ours_int8_xnnpack"),
                      cell(r, "ours_int8"), cell(r, "ours_onnx_int8"),
                      ratio(r.get("ours_onnx_int8"), r["ort_int8"]),
                      ratio(r["ours_int8"], r["pt_int8_onednn"]),
                      ratio(r["ours_int8"], r["pt_int8_qnnpack"]),
                      ratio(r["ours_int8"], r["ort_int8"]),
                      ratio(r["ours_int8"], r["pt_fp32"]),
                      ratio(r["ours_fp32"], r["pt_fp32"])])
    out.append(md_table(header, trows) + "\n")
    out.append("\"qnt INT8\" in the ratios is `backend=auto`: oneDNN for conv/linear/"
               "pooling, XNNPACK for quantized adds (docs/runtime.md). "
               "Ratios are latency ratios: below 1.00x qnt is faster. \"PyTorch INT8 "
               "method\": `eager` is eager-mode static quantization of the "
               "`torchvision.models.quantization` variant (`fuse_model`, "
               "`get_default_qconfig(engine)`, prepare, calibrate, convert); `FX` (models "
               "without such a variant) is `prepare_fx` / `convert_fx` with "
               "`get_default_qconfig_mapping(engine)`. ORT FP32 / INT8 is ONNX Runtime "
               "(`bench/ort_run.js`: intra-op threads = the thread count, sequential "
               "execution, graph optimization level all) on `torch.onnx.export` of the float "
               "model and of the PyTorch INT8 model (onednn engine): QuantizeLinear / "
               "DequantizeLinear pairs that ONNX Runtime fuses into QLinearConv, QLinearAdd, "
               "... \"qnt on ORT's INT8 model\" imports that same QDQ file (`python -m qnt "
               "import-onnx`, its scales and zero points) and compiles it: the same "
               "integers on two engines. All of them include the input quantization and "
               "output dequantization.\n")
    labels = {"ort_fp32": "ORT FP32", "ort_int8": "ORT INT8"}
    notes = [f"{r['model']} batch {r['batch']}, {labels[k]}: {v}"
             for r in rows for k, v in r.get("ort_notes", {}).items()]
    if notes:
        out.append("ONNX export (how each ORT model was made, and ORT's output against "
                   "PyTorch's on the same input):\n")
        out += [f"* {n}" for n in notes]
        out.append("")
    few = [f"{r['model']} batch {r['batch']} {k}: {n} runs" for r in rows
           for k, n in r.get("few_runs", {}).items()]
    if few:
        out.append(f"Fewer runs (a PyTorch cell whose runs would take over "
                   f"{args.pt_budget:.0f} s, in at least one round; at least 3 after 1 "
                   f"warm-up): {'; '.join(few)}.\n")
    errors = [f"{r['model']} batch {r['batch']}: {e}" for r in rows for e in r.get("errors", [])]
    if errors:
        out.append("Errors:\n")
        out += [f"* {e}" for e in errors]
        out.append("")

    # Targets
    def get(name, batch):
        return next((r for r in rows if r["model"] == name and r["batch"] == batch), None)

    out.append("## Targets (issue)\n")
    targets = []  # (text, measured, met (None: not measured), model, batch)
    allowed = {}  # (model, batch) -> (qnt's ms, the ms the tightest missed target allows)

    def vs(name, batch, key, limit, peer, mine="ours_int8", label="qnt INT8"):
        r = get(name, batch)
        text = f"{name} batch {batch}: {label} <= {limit}x {peer}"
        if r is None or r.get(mine) is None or r.get(key) is None:
            targets.append((text, "not measured", None, name, batch))
        else:
            v = r[mine] / r[key]
            targets.append((text, f"{v:.2f}x", v <= limit, name, batch))
            if v > limit and limit * r[key] < allowed.get((name, batch), (0, 1e30, ""))[1]:
                allowed[(name, batch)] = (r[mine], limit * r[key], label)

    for names, batches in TARGETS_PT_INT8:
        for name in names:
            for batch in batches:
                vs(name, batch, "pt_int8_onednn", TARGET_VS_PT_INT8, "PyTorch INT8 (onednn)")
    for names, batches in TARGETS_ORT_INT8:
        for name in names:
            for batch in batches:
                vs(name, batch, "ort_int8", TARGET_VS_ORT_INT8, "ONNX Runtime INT8")
    for names, batches in TARGETS_ONNX_INT8:
        for name in names:
            for batch in batches:
                vs(name, batch, "ort_int8", TARGET_VS_ORT_INT8, "ONNX Runtime INT8 on it",
                   mine="ours_onnx_int8", label="qnt on ORT's INT8 model")
    r = get("resnet18", 1)
    if r and r["ours_int8"] and r["pt_fp32"]:
        v = r["pt_fp32"] / r["ours_int8"]
        targets.append((f"resnet18 batch 1: qnt INT8 >= {TARGET_VS_PT_FP32:.0f}x faster than "
                        "PyTorch FP32", f"{v:.1f}x faster", v >= TARGET_VS_PT_FP32, "resnet18", 1))
    else:
        targets.append((f"resnet18: qnt INT8 >= {TARGET_VS_PT_FP32:.0f}x faster than PyTorch "
                        "FP32", "not measured", None, "resnet18", 1))
    out.append(md_table(["target", "measured", "met"],
                        [[t, m, "yes" if ok else ("no" if ok is False else "–")]
                         for t, m, ok, _, _ in targets]) + "\n")
    missed = {}
    for t, m, ok, name, batch in targets:
        if ok is False:
            missed.setdefault((name, batch), []).append(f"{t} ({m})")
    for (name, batch), which in missed.items():
        r = get(name, batch)
        if r and r.get("profile"):
            out.append(f"Missed: {'; '.join(which)}. Where {name}'s INT8 time goes "
                       f"(QNT_RT_PROFILE, batch {batch}; largest losses against the ceiling "
                       "first):\n")
            out += [f"* {line}" for line in holdbacks(r["profile"], ceil, args.threads,
                                                      latency=r["ours_int8"])]
            if (name, batch) in allowed:
                out += [f"* {line}" for line in ceiling_bound(
                    r["profile"], ceil, args.threads, *allowed[(name, batch)])]
            out.append("")

    out.append("## qnt INT8 time by op, every model (QNT_RT_PROFILE)\n")
    out.append("Mean runtime-kernel time per inference by op (a separate profiled run); "
               "\"outside the runtime\" is the measured latency minus the kernel time: "
               "code compiled into the model itself, e.g. float ops between a dequantize "
               "and a quantize.\n")
    out.append(op_shares(rows) + "\n")

    # Per layer
    r = get("resnet18", 1)
    if r and r.get("profile"):
        text, per_run_ms = layer_table(r["profile"], ceil, args.threads)
        out.append("## qnt INT8 resnet18, batch 1, per kernel (QNT_RT_PROFILE)\n")
        out.append(f"Every runtime call site in execution order: mean wall time per call, "
                   f"share of the kernel time ({per_run_ms:.2f} ms per inference summed over "
                   f"kernels), MACs per call and achieved GMAC/s on {args.threads} threads "
                   f"against the {args.threads}-thread ceiling of the ISA the kernel uses.\n")
        out.append(text + "\n")
        out.append("Where the time goes:\n")
        out += [f"* {line}" for line in holdbacks(r["profile"], ceil, args.threads,
                                                  latency=r["ours_int8"])]
        out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(CNNS + ("vit_s_16", "mlp")),
                        help="comma-separated: torchvision model names, vit_s_16 and/or mlp "
                             "(bench/bench_models.py)")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runs", type=int, default=20, help="timed runs (batch 8: half)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2,
                        help="measure everything this many times, keep the minimum median")
    parser.add_argument("--calib", type=int, default=4, help="calibration samples")
    parser.add_argument("--build-dir", default=os.environ.get(
        "QNT_BUILD_DIR", str(ROOT / "build")))
    parser.add_argument("--out", default=str(BENCH), help="where results.md/.png go")
    parser.add_argument("--max-load", type=float, default=1.0,
                        help="wait for the 1-minute load average to fall below this")
    parser.add_argument("--max-wait", type=float, default=300, help="seconds")
    parser.add_argument("--keep", help="keep the work files (IR, profiles) in this directory")
    parser.add_argument("--pt-budget", type=float, default=20,
                        help="seconds per PyTorch measurement before it takes fewer runs")
    parser.add_argument("--ort", action=argparse.BooleanOptionalAction, default=None,
                        help="measure ONNX Runtime (default: when scripts/ort-setup.sh has "
                             "installed it)")
    parser.add_argument("--ort-dir", default=ORT_DIR,
                        help="onnxruntime-node's install directory (scripts/ort-setup.sh)")
    args = parser.parse_args()

    tools = Tools(args.build_dir)
    ort = Ort(args.ort, args.ort_dir)
    torch.set_num_threads(args.threads)
    engines = [e for e in ENGINES if e in torch.backends.quantized.supported_engines]
    machine = cpu_info()
    load_before = wait_quiet(args.max_load, args.max_wait)
    start = time.monotonic()
    total0, steal0 = cpu_times()
    tmp = tempfile.mkdtemp(prefix="qnt-bench-")
    try:
        log("ceiling ...")
        ceil = ceiling(tmp, args.threads)
        log("  " + ", ".join(f"{i} {t} thr {g:.0f} GMAC/s" for (i, t), g in ceil.items()))
        rows = []
        for batch in (int(b) for b in args.batches.split(",")):
            runs = args.runs if batch == 1 else max(3, args.runs // 2)
            for name in args.models.split(","):
                rows.append(bench_one(tools, ort, tmp, name, batch, runs, args.threads,
                                      args.calib, engines, tmp, args.pt_budget))
        # Later rounds: every measurement again, keeping the minimum of the
        # medians (a burst of load from elsewhere spoils one round, not all).
        for rnd in range(2, args.rounds + 1):
            log(f"round {rnd} of {args.rounds} ...")
            for r in rows:
                for key, fn in r["_timers"].items():
                    try:
                        v = fn()
                    except Exception as e:  # noqa: BLE001 (keep the first round's value)
                        log(f"  {r['model']} b{r['batch']} {key}: {e}")
                        continue
                    r[key] = v if r[key] is None else min(r[key], v)
                if r.get("profile"):
                    p = r["_profile"]()
                    if kernel_ms(p) < kernel_ms(r["profile"]):
                        r["profile"] = p
        for r in rows:
            r.pop("_timers", None)
            r.pop("_profile", None)
        rows.sort(key=lambda r: (args.models.split(",").index(r["model"]), r["batch"]))
        elapsed = time.monotonic() - start
        # Was the machine shared during the run? Hypervisor steal time, and
        # the ceiling measured again (its 2-thread value needs both cores).
        total1, steal1 = cpu_times()
        steal = 100.0 * (steal1 - steal0) / max(1, total1 - total0)
        after = ceiling(tmp, args.threads)
        noise = []
        if steal > 2:
            noise.append(f"{steal:.0f} % of CPU time was stolen by the hypervisor")
        for (isa_name, t), g in ceil.items():
            g2 = after.get((isa_name, t), g)
            if abs(g2 - g) > 0.1 * g:
                noise.append(f"the {isa_name} ceiling on {t} threads moved from {g:.0f} "
                             f"to {g2:.0f} GMAC/s during the run")
        if load1() > args.threads + 1:
            noise.append(f"the load average reached {load1():.1f} (this run uses "
                         f"{args.threads})")
        noise = "; ".join(noise) + ": timings are unreliable, run again on a quiet machine." \
            if noise else ""
        if noise:
            log("warning: " + noise)
        text = report(rows, ceil, args, machine, load_before, load1(), elapsed, engines, noise,
                      ort)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(text)
        log(f"wrote {out / 'results.md'}")
        if chart(rows, out / "results.png"):
            log(f"wrote {out / 'results.png'}")
        print(text)
    finally:
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
