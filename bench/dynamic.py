#!/usr/bin/env python3
"""Dynamic quantization latency: PyTorch FP32, PyTorch
`quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)` and qnt
(`--qnt-dynamic-pipeline`, run by `quant-run`), batch 1, same threads.

    /usr/bin/python3 bench/dynamic.py [--runs 50] [--threads 2]

Models: the LSTM language-model shape and the transformer-style MLP block of
test/python/test_dynamic_models.py, BERT-base's feed-forward block and
torchvision's ViT-S/16 (bench_models.py; PyTorch runs it for seconds per
call on this build, so its PyTorch cells take as many runs as fit in
--torch-budget seconds, at least 3). Prints a markdown table; numbers move
with machine load, so compare within one run. The last column is the
multiply-accumulates of the linear (and LSTM) layers per second of the
faster qnt dynamic model, against the machine's INT8 ceiling on the same
threads, measured by bench/ceiling.c before the models run (AVX-512 VNNI
`vpdpbusd` where the CPU has it, else AVX2 `vpmaddubsw`)."""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "test" / "python"))
sys.path.insert(0, str(ROOT / "bench"))
import qnt  # noqa: E402
from test_dynamic_models import LstmLM, MlpBlock  # noqa: E402
import bench_models  # noqa: E402
from timing import best_ceiling, quant_run_median_ms, torch_median_ms  # noqa: E402


def count_macs(model, x):
    """Multiply-accumulates of the nn.Linear and nn.LSTM layers in model(x)."""
    macs = []

    def linear(m, inputs, output):
        macs.append(inputs[0].numel() // m.in_features * m.in_features * m.out_features)

    def lstm(m, inputs, output):
        steps = inputs[0].numel() // m.input_size
        for layer in range(m.num_layers):
            width = m.input_size if layer == 0 else m.hidden_size
            macs.append(steps * 4 * m.hidden_size * (width + m.hidden_size))

    hooks = [m.register_forward_hook(linear if isinstance(m, nn.Linear) else lstm)
             for m in model.modules() if isinstance(m, (nn.Linear, nn.LSTM))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sum(macs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-budget", type=float, default=10.0,
                        help="seconds per PyTorch cell at most (at least 3 runs)")
    parser.add_argument("--build-dir", default=os.environ.get("QNT_BUILD_DIR",
                                                              str(ROOT / "build")))
    args = parser.parse_args()
    build = Path(args.build_dir)
    quant_run = build / "bin" / "quant-run"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    engines = [e for e in ("qnnpack", "onednn")
               if e in torch.backends.quantized.supported_engines]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ceiling, isa = best_ceiling(tmp, args.threads)
        def torch_ms(model, x):
            start = time.perf_counter()
            with torch.no_grad():
                model(x)
            once = time.perf_counter() - start
            runs = max(3, min(args.runs, int(args.torch_budget / max(once, 1e-6))))
            return torch_median_ms(model, x, runs, warmup=min(5, runs))

        for name, model, shape in (("lstm_lm", LstmLM(), (1, 8, 32)),
                                   ("mlp_block", MlpBlock(), (1, 16, 64)),
                                   # BERT-base's feed-forward block, sequence 128
                                   ("bert_mlp_block", MlpBlock(768, 3072, 768), (1, 128, 768)),
                                   ("vit_s_16", bench_models.vit_s_16(), (1, 3, 224, 224))):
            model.eval()
            x = torch.randn(*shape)
            mlir = os.path.join(tmp, f"{name}.mlir")
            info = qnt.export(model, (x,), mlir)
            inputs = os.path.join(tmp, f"{name}.npz")
            np.savez(inputs, **{info.inputs[0][0]: x.numpy()})
            row = {"model": name, "PyTorch FP32": torch_ms(model, x),
                   "qnt FP32": quant_run_median_ms(quant_run, mlir, inputs, args.runs,
                                                   args.threads)}
            for engine in engines:
                torch.backends.quantized.engine = engine
                dynamic = torch.quantization.quantize_dynamic(
                    model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
                row[f"PyTorch dynamic ({engine})"] = torch_ms(dynamic, x)
            for qconfig in ("qnnpack", "x86"):
                int8 = os.path.join(tmp, f"{name}_{qconfig}.mlir")
                subprocess.run([str(build / "bin" / "quant-opt"), mlir,
                                f"--qnt-dynamic-pipeline=qconfig={qconfig}", "-o", int8],
                               check=True)
                row[f"qnt dynamic ({qconfig})"] = quant_run_median_ms(
                    quant_run, int8, inputs, args.runs, args.threads)
            best = min(row["qnt dynamic (qnnpack)"], row["qnt dynamic (x86)"])
            row["qnt dynamic GMAC/s"] = count_macs(model, x) / best / 1e6
            rows.append(row)
    columns = list(rows[0])
    print(f"Dynamic quantization, batch 1, {args.threads} threads, median of {args.runs} (ms); "
          f"INT8 ceiling {ceiling:.0f} GMAC/s ({isa}, bench/ceiling.c)\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row["model"] if c == "model" else
                                f"{row[c]:.0f} ({row[c] / ceiling:.0%})" if "GMAC" in c
                                else f"{row[c]:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
