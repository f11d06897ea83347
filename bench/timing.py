"""Latency measurement shared by the benchmark scripts: median wall time of
a PyTorch module, and of a qnt module through `quant-run --bench`."""

import re
import subprocess
import time

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
