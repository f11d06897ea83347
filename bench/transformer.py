#!/usr/bin/env python3
"""Transformer latency: a BERT-base-shaped encoder (nn.TransformerEncoder,
d_model 768, 12 heads, feed-forward 3072, sequence 128; random weights) at
batch 1 and 8, same threads, median ms of:

* PyTorch FP32 and `quantize_dynamic(model, {nn.Linear})` (engines qnnpack
  and onednn; nn.MultiheadAttention's projections stay float);
* ONNX Runtime FP32 (torch.onnx.export, opset 17) and dynamic INT8: that
  model rewritten as `onnxruntime.quantization.quantize_dynamic` writes it
  (bench/onnx_dynamic.py: every MatMul/Gemm with a weight, the attention
  projections too, as DynamicQuantizeLinear + MatMulInteger), when
  scripts/ort-setup.sh has installed onnxruntime-node;
* qnt FP32; qnt dynamic INT8 (`--qnt-dynamic-pipeline=qconfig=x86`: the
  same linears as PyTorch; `all-linears=true`: the attention projections
  too, as ORT); qnt static INT8 (`--qnt-ptq-pipeline=qconfig=x86`,
  calibrated on --calib random inputs: every linear and attention matmul
  INT8, layer norm, softmax between int8 tensors).

    /usr/bin/python3 bench/transformer.py [--layers 12] [--batches 1,8]
        [--runs 10] [--torch-runs 3] [--threads 2] [--calib 4] [--no-ort]

Prints a markdown table (ms, median), the ratios to PyTorch dynamic (its
better engine) and to ORT dynamic INT8 (compare within one run), and the
SQNR of every INT8 output against PyTorch FP32 on the benchmark's input
(random weights: a check that each engine computes the model, not an
accuracy figure)."""

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "eval"))
import qnt  # noqa: E402
from qnt import data as qdata  # noqa: E402
from ort import DEFAULT_DIR as ORT_DIR, Ort  # noqa: E402
from timing import (best_ceiling, linear_gmacs, quant_run_median_ms,  # noqa: E402
                    quant_run_profile, torch_median_ms)
import ptq_vs_pytorch as pvp  # noqa: E402  (Tools, the PTQ pipeline, SQNR)


def log(message):
    print(message, file=sys.stderr, flush=True)


def ort_models(model, x, tmp, batch):
    """FP32 and dynamic INT8 ONNX files of model(x)."""
    import onnx
    import onnx_dynamic
    fp32 = os.path.join(tmp, f"b{batch}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, fp32, opset_version=17, input_names=["input"],
                          output_names=["output"], do_constant_folding=True)
    quantized, count = onnx_dynamic.quantize_dynamic(onnx.load(fp32))
    log(f"   ONNX dynamic INT8: {count} MatMul/Gemm quantized")
    int8 = os.path.join(tmp, f"b{batch}_int8.onnx")
    onnx.save(quantized, int8)
    return fp32, int8


def bench_batch(args, model, engines, tools, ort, tmp, batch):
    row, sqnr = {"batch": batch}, {}
    x = torch.randn(128, batch, 768)
    with torch.no_grad():
        ref = model(x).numpy()
    log(f"== batch {batch}: PyTorch")
    row["PyTorch FP32"] = torch_median_ms(model, x, args.torch_runs, warmup=1)
    for engine in engines:
        torch.backends.quantized.engine = engine
        dynamic = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        row[f"PyTorch dynamic ({engine})"] = torch_median_ms(dynamic, x, args.torch_runs,
                                                             warmup=1)
        with torch.no_grad():
            sqnr[f"PyTorch dynamic ({engine})"] = pvp.sqnr(ref, dynamic(x).numpy())
    if not ort.status:
        log(f"== batch {batch}: ONNX Runtime")
        npy = os.path.join(tmp, f"b{batch}.npy")
        np.save(npy, x.numpy())
        for label, onnx_file in zip(("ORT FP32", "ORT dynamic INT8"),
                                    ort_models(model, x, tmp, batch)):
            out = os.path.join(tmp, f"b{batch}_ort_out.npy")
            row[label] = ort.bench(onnx_file, npy, args.runs, args.threads, out=out)
            if "INT8" in label:
                sqnr[label] = pvp.sqnr(ref, np.load(out))
    log(f"== batch {batch}: qnt")
    work = Path(tmp) / f"b{batch}"
    work.mkdir()
    fp32 = work / "model.mlir"
    info = qnt.export(model, (x,), fp32)
    name = info.inputs[0][0]
    # One input for quant-run --bench; the same as a one-sample data set for
    # the outputs (quant-run --samples), and the calibration samples.
    inputs, samples, calib = work / "input.npz", work / "samples.npz", work / "calib.npz"
    np.savez(inputs, **{name: x.numpy()})
    qdata.save(samples, {name: x.numpy()[None]}, batch=None)
    qdata.save(calib, {name: torch.randn(args.calib, 128, batch, 768).numpy()}, batch=None)
    row["qnt FP32"] = quant_run_median(tools, fp32, inputs, args)
    variants = []
    for label, extra in (("qnt dynamic", ""), ("qnt dynamic, all linears", " all-linears=true")):
        int8 = work / f"{label.replace(' ', '_').replace(',', '')}.mlir"
        tools.run("quant-opt", fp32, f"--qnt-dynamic-pipeline=qconfig=x86{extra}", "-o", int8)
        variants.append((label, int8))
    variants.append(("qnt static INT8", pvp.ours_int8(tools, work, fp32, calib, ["x86"])["x86"]))
    gmacs = {"batch": batch}
    for label, int8 in variants:
        row[label] = quant_run_median(tools, int8, inputs, args)
        sqnr[label] = pvp.sqnr(ref.reshape(1, -1),
                               pvp.ours_run(tools, int8, samples, work / "out.npz"))
        # Profiled apart, so the timed runs carry no profiling cost.
        gmacs[label] = linear_gmacs(quant_run_profile(tools.path("quant-run"), int8, inputs,
                                                      args.runs, args.threads, work))
    best = min(row[f"PyTorch dynamic ({e})"] for e in engines)
    for label in ("qnt dynamic", "qnt static INT8"):
        row[f"{label} / PyTorch dynamic"] = row[label] / best
    if "ORT dynamic INT8" in row:
        row["qnt dynamic, all linears / ORT dynamic INT8"] = (row["qnt dynamic, all linears"]
                                                              / row["ORT dynamic INT8"])
    return row, sqnr, gmacs


def quant_run_median(tools, mlir, inputs, args):
    return quant_run_median_ms(tools.path("quant-run"), mlir, inputs, args.runs, args.threads,
                               warmup=2)


def table(rows):
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(
            "–" if c not in row else str(row[c]) if c == "batch" or isinstance(row[c], str) else
            f"{row[c]:.2f}" if "/" in c else f"{row[c]:.1f}" for c in columns) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--torch-runs", type=int, default=3,
                        help="PyTorch FP32 on this build takes seconds per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calib", type=int, default=4,
                        help="random calibration inputs of qnt static INT8")
    parser.add_argument("--ort", action=argparse.BooleanOptionalAction, default=None,
                        help="measure ONNX Runtime (default: when scripts/ort-setup.sh has "
                             "installed it)")
    parser.add_argument("--ort-dir", default=ORT_DIR)
    parser.add_argument("--build-dir", default=os.environ.get("QNT_BUILD_DIR",
                                                              str(ROOT / "build")))
    args = parser.parse_args()
    if args.calib < 1:
        parser.error("--calib must be at least 1")
    tools = pvp.Tools(args.build_dir, threads=0)
    ort = Ort(args.ort, args.ort_dir)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(768, 12, 3072), args.layers).eval()
    # nn.TransformerEncoder deep-copies its layer: distinct weights per layer
    # (identical ones would be one constant, and one set of packed weights).
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    engines = [e for e in ("qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]
    rows, sqnrs, linear_rates = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        ceiling, isa = best_ceiling(tmp, args.threads)
        for batch in (int(b) for b in args.batches.split(",")):
            row, sqnr, gmacs = bench_batch(args, model, engines, tools, ort, tmp, batch)
            rows.append(row)
            sqnrs.append(dict({"batch": batch}, **sqnr))
            linear_rates.append(gmacs)
    print(f"BERT-base-shaped encoder ({args.layers} layers, sequence 128), "
          f"{args.threads} threads, median (ms)"
          + ("" if not ort.status else f"; ONNX Runtime {ort.status}") + "\n")
    print(table(rows))
    print("\nSQNR of the INT8 output vs PyTorch FP32 (dB)\n")
    print(table(sqnrs))
    print(f"\nqnt's INT8 linear kernels (QNT_RT_PROFILE: their multiply-accumulates per second "
          f"of kernel time), GMAC/s; the {args.threads}-thread INT8 ceiling is {ceiling:.0f} "
          f"({isa}, bench/ceiling.c)\n")
    print(table([{k: v if k == "batch" else "–" if v is None else f"{v:.0f} ({v / ceiling:.0%})"
                  for k, v in r.items()} for r in linear_rates]))


if __name__ == "__main__":
    main()
