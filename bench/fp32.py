#!/usr/bin/env python3
"""FP32 latency: PyTorch eager vs qnt (exported with python/qnt, run by
quant-run: convolutions and linear layers on oneDNN FP32 primitives).

    /usr/bin/python3 bench/fp32.py [--models resnet18,mobilenet_v2] [--runs 50]

Batch 1, 3x224x224, the same thread count for both (default 2). Prints a
markdown table with the median latencies and the ratio. Random weights
(no downloads here); latency does not depend on their values."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))
import qnt  # noqa: E402
from timing import quant_run_median_ms, torch_median_ms  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18",
                        help="comma-separated torchvision model names")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build-dir", default=os.environ.get(
        "QNT_BUILD_DIR", str(ROOT / "build")))
    args = parser.parse_args()

    quant_run = str(Path(args.build_dir) / "bin" / "quant-run")
    if not Path(quant_run).exists():
        sys.exit(f"error: {quant_run} not found: build first (scripts/test.sh)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = getattr(torchvision.models, name)().eval()
            mlir = os.path.join(tmp, f"{name}.mlir")
            info = qnt.export(model, (x,), mlir)
            inputs = os.path.join(tmp, f"{name}.npz")
            np.savez(inputs, **{info.inputs[0][0]: x.numpy()})
            ours = quant_run_median_ms(quant_run, mlir, inputs, args.runs, args.threads)
            theirs = torch_median_ms(model, x, args.runs)
            rows.append((name, theirs, ours))

    print(f"FP32, batch 1, 3x224x224, {args.threads} threads, median of {args.runs}\n")
    print("| model | PyTorch FP32 (ms) | qnt FP32 (ms) | qnt / PyTorch |")
    print("|---|---|---|---|")
    for name, theirs, ours in rows:
        print(f"| {name} | {theirs:.2f} | {ours:.2f} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
