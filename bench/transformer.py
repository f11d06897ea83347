#!/usr/bin/env python3
"""Transformer latency: a BERT-base-shaped encoder (nn.TransformerEncoder,
d_model 768, 12 heads, feed-forward 3072, sequence 128; random weights) at
batch 1 and 8, PyTorch FP32, PyTorch `quantize_dynamic(model, {nn.Linear})`
(engines qnnpack and onednn), qnt FP32 and qnt dynamic INT8
(`--qnt-dynamic-pipeline`: the same linears as PyTorch; `all-linears`: the
attention projections too), same threads.

    /usr/bin/python3 bench/transformer.py [--layers 12] [--batches 1,8]
        [--runs 10] [--torch-runs 3] [--threads 2]

Prints a markdown table (ms, median) and the ratio qnt dynamic / PyTorch
dynamic (the better engine); compare within one run."""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))
import qnt  # noqa: E402
from timing import quant_run_median_ms, torch_median_ms  # noqa: E402


def log(message):
    print(message, file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--torch-runs", type=int, default=3,
                        help="PyTorch FP32 on this build takes seconds per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build-dir", default=os.environ.get("QNT_BUILD_DIR",
                                                              str(ROOT / "build")))
    args = parser.parse_args()
    build = Path(args.build_dir)
    quant_run, quant_opt = build / "bin" / "quant-run", build / "bin" / "quant-opt"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(768, 12, 3072), args.layers).eval()
    # nn.TransformerEncoder deep-copies its layer: distinct weights per layer
    # (identical ones would be one constant, and one set of packed weights).
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    engines = [e for e in ("qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(128, batch, 768)
            row = {"batch": batch}
            log(f"== batch {batch}: PyTorch")
            row["PyTorch FP32"] = torch_median_ms(model, x, args.torch_runs, warmup=1)
            for engine in engines:
                torch.backends.quantized.engine = engine
                dynamic = torch.quantization.quantize_dynamic(model, {nn.Linear},
                                                              dtype=torch.qint8)
                row[f"PyTorch dynamic ({engine})"] = torch_median_ms(
                    dynamic, x, args.torch_runs, warmup=1)
            log(f"== batch {batch}: qnt")
            fp32 = os.path.join(tmp, f"b{batch}.mlir")
            info = qnt.export(model, (x,), fp32)
            inputs = os.path.join(tmp, f"b{batch}.npz")
            np.savez(inputs, **{info.inputs[0][0]: x.numpy()})
            row["qnt FP32"] = quant_run_median_ms(quant_run, fp32, inputs, args.runs,
                                                  args.threads, warmup=2)
            for label, extra in (("qnt dynamic", ""), ("qnt dynamic, all linears",
                                                       " all-linears=true")):
                int8 = os.path.join(tmp, f"b{batch}_int8.mlir")
                subprocess.run([str(quant_opt), fp32,
                                f"--qnt-dynamic-pipeline=qconfig=x86{extra}", "-o", int8],
                               check=True)
                row[label] = quant_run_median_ms(quant_run, int8, inputs, args.runs,
                                                 args.threads, warmup=2)
            best = min(row[f"PyTorch dynamic ({e})"] for e in engines)
            row["qnt dynamic / PyTorch dynamic"] = row["qnt dynamic"] / best
            rows.append(row)
    columns = list(rows[0])
    print(f"BERT-base-shaped encoder ({args.layers} layers, sequence 128), "
          f"{args.threads} threads, median (ms)\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) if c == "batch" else
                                f"{row[c]:.2f}" if "/" in c else f"{row[c]:.1f}"
                                for c in columns) + " |")


if __name__ == "__main__":
    main()
