"""Latency measurement shared by the benchmark scripts: median wall time of
a PyTorch module, and of a qnt module through `quant-run --bench`; the
runtime's kernel profile of such a run; the CPU's INT8 dot-product ceiling
(bench/ceiling.c)."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import torch


def torch_median_ms(model, x, runs, warmup=5):
    """Median latency in ms of model(x) over `runs` calls, after `warmup`."""
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def quant_run_median_ms(quant_run, mlir, inputs, runs, threads, warmup=5, env=None):
    """Median latency in ms that `quant-run --bench` reports."""
    out = subprocess.run([str(quant_run), str(mlir), "-i", str(inputs), "--bench", str(runs),
                          "--warmup", str(warmup), "--num-threads", str(threads)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return float(re.search(r"median ([0-9.]+) ms", out).group(1))


def quant_run_profile(quant_run, mlir, inputs, runs, threads, tmp):
    """The sites of the runtime's kernel profile (QNT_RT_PROFILE, docs in
    bench/README.md) over `runs` runs of `quant-run --bench`."""
    prof = Path(tmp) / "profile.json"
    env = dict(os.environ, QNT_RT_PROFILE="1", QNT_RT_PROFILE_JSON=str(prof))
    quant_run_median_ms(quant_run, mlir, inputs, runs, threads, warmup=1, env=env)
    return json.loads(prof.read_text())["sites"]


def linear_gmacs(sites):
    """GMAC/s of the INT8 linear layers' kernels (linear_dynamic, and linear
    on quantized types; not the float linears a dynamic model keeps) in a
    profile, over all their calls; None without such kernels."""
    linears = [s for s in sites if s["op"] == "linear_dynamic"
               or (s["op"] == "linear" and not s["desc"].startswith("linear f32"))]
    ns = sum(s["total_ns"] for s in linears)
    return sum(s["macs_per_call"] * s["calls"] for s in linears) / ns if ns else None


def ceiling(tmp, threads):
    """{(isa, threads): GMAC/s} from bench/ceiling.c."""
    exe = Path(tmp) / "ceiling"
    cc = os.environ.get("CC", "cc")
    source = Path(__file__).resolve().parent / "ceiling.c"
    subprocess.run([cc, "-O2", "-mavx2", "-pthread", str(source), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe), str(threads)], check=True, capture_output=True,
                         text=True).stdout
    res = {}
    for m in re.finditer(r"CEILING isa=(\S+) threads=(\d+) gmacs=([0-9.]+)", out):
        res[(m.group(1), int(m.group(2)))] = float(m.group(3))
    return res


def best_ceiling(tmp, threads):
    """(GMAC/s, isa) of the fastest INT8 instruction set on `threads`
    threads (VNNI where the CPU has it, else AVX2), measured."""
    found = {isa: g for (isa, t), g in ceiling(tmp, threads).items() if t == threads}
    isa = max(found, key=found.get)
    return found[isa], isa
