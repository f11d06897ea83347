#!/usr/bin/env python3
"""docs/accuracy.md's table: Fashion-MNIST test accuracy (all 10000 images)
of the models of examples/accuracy/models.py, FP32 and INT8 by each method.

    /usr/bin/python3 examples/accuracy/evaluate.py [--weights-dir build/accuracy] [--calib 500]
        [--models mobilenet_v2,vit] [--only AdaRound] [--out table.md]

Weights: DIR/NAME.pt from train.py (trained here when missing: a few
minutes per model on 2 cores). Calibration: the first --calib training
images (the same for every method). Rows:

* FP32: the PyTorch model.
* PyTorch 1.13 PTQ, per tensor (qnnpack engine) and per channel (onednn):
  FX graph mode (prepare_fx / convert_fx, the engine's default qconfig
  mapping; FX keeps nn.MultiheadAttention in float).
* qnt PTQ: ``qnt.quantize_static`` with the qnnpack preset (per-tensor
  weights) and the onednn preset (per-channel weights, full-range u8), then
  each with cross-layer equalization first (``qnt.accuracy.equalize``), with
  empirical bias correction after it (``qnt.accuracy.correct_biases``),
  for the ViT with SmoothQuant (``qnt.accuracy.smooth``, alpha 0.5), and
  with AdaRound (``qnt.accuracy.adaround``, its defaults, on the preset's
  grid; the time it took is logged).

``--only TEXT`` (repeatable) runs only the rows whose method contains one
of the texts (``--only AdaRound``: the two AdaRound rows per model).
Prints a markdown table (and writes it with --out).
"""

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(HERE))
import qnt  # noqa: E402
from models import MODELS  # noqa: E402
from qnt import datasets  # noqa: E402
from qnt.accuracy import adaround, correct_biases, equalize, smooth  # noqa: E402
from qnt.export import proxy_unpacking  # noqa: E402
import train  # noqa: E402

BATCH = 100


def load(name, weights_dir):
    path = Path(weights_dir) / f"{name}.pt"
    if not path.is_file():
        print(f"{path} missing: training {name}", file=sys.stderr)
        model, _ = train.train(name, 4, log=lambda s: print(s, file=sys.stderr))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    model = MODELS[name]()
    model.load_state_dict(torch.load(path))
    return model.eval()


def accuracy(run, x, y):
    """Top-1 accuracy of ``run`` (a torch model or a qnt.CompiledModel) on
    images ``x`` and labels ``y``, in batches of BATCH."""
    correct = 0
    for i in range(0, len(x), BATCH):
        with torch.no_grad():
            out = run(x[i:i + BATCH])
        out = out.numpy() if isinstance(out, torch.Tensor) else out
        correct += int((out.argmax(1) == y[i:i + BATCH].numpy()).sum())
    return correct / len(x)


def pytorch_ptq(model, engine, calib):
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = engine
    with proxy_unpacking():  # torch 1.13's FX on Python 3.11 (VisionTransformer)
        prepared = prepare_fx(copy.deepcopy(model).eval(),
                              torch.ao.quantization.get_default_qconfig_mapping(engine),
                              example_inputs=(calib[0],))
    with torch.no_grad():
        for c in calib:
            prepared(c)
    return convert_fx(prepared)


def evaluate(name, weights_dir, n_calib, log, only=None):
    """[(method, accuracy cell)] of model ``name``; ``only``: the methods
    containing one of these texts (all when None)."""
    model = load(name, weights_dir)
    x, y = (torch.from_numpy(a) for a in datasets.fashion_mnist("test"))
    xc = torch.from_numpy(datasets.fashion_mnist("train", limit=n_calib)[0])
    calib = list(torch.split(xc, BATCH))
    rows, cache = [], {}

    def once(key, fn):
        """fn() computed the first time a row needs it."""
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    def adarounded(preset):
        start = time.time()
        result, _ = adaround(model, calib, qconfig=preset)
        log(f"{name}: AdaRound ({preset}) took {time.time() - start:.0f} s")
        return result

    def row(method, fn):
        if only and not any(text in method for text in only):
            return
        start = time.time()
        try:
            acc = f"{accuracy(fn(), x, y) * 100:.2f}"
        except Exception as e:  # noqa: BLE001 (a method that fails is a cell)
            acc = f"error: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        rows.append((method, acc))
        log(f"{name}: {method}: {acc} ({time.time() - start:.0f} s)")

    with torch.no_grad():
        row("FP32", lambda: model)
        for engine, kind in (("qnnpack", "per tensor"), ("onednn", "per channel")):
            row(f"PyTorch 1.13 PTQ, {kind} ({engine})",
                lambda: pytorch_ptq(model, engine, calib))

        def equalized():
            return once("cle", lambda: equalize(model)[0])

        def smoothed():
            return once("smooth", lambda: smooth(model, calib)[0])

        for preset, kind in (("qnnpack", "per tensor"), ("onednn", "per channel")):
            row(f"qnt PTQ, {kind} ({preset})",
                lambda: qnt.quantize_static(model, (calib[0],), calib, preset))
            row(f"qnt PTQ, {kind}, + CLE",
                lambda: qnt.quantize_static(equalized(), (calib[0],), calib, preset))
            row(f"qnt PTQ, {kind}, + CLE + bias correction",
                lambda: correct_biases(equalized(), (calib[0],), calib,
                                       qconfig=preset)[1]["model8"])
            if name == "vit":
                row(f"qnt PTQ, {kind}, + SmoothQuant",
                    lambda: qnt.quantize_static(smoothed(), (calib[0],), calib, preset))
            row(f"qnt PTQ, {kind}, + AdaRound",
                lambda: qnt.quantize_static(adarounded(preset), (calib[0],), calib, preset))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights-dir", default=str(ROOT / "build" / "accuracy"))
    parser.add_argument("--calib", type=int, default=500, help="calibration images")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="only the methods containing TEXT (repeatable)")
    parser.add_argument("--out", help="write the markdown table here too")
    args = parser.parse_args(argv)
    if args.calib % BATCH:
        parser.error(f"--calib must be a multiple of {BATCH}")
    results = {}
    for name in args.models.split(","):
        if name not in MODELS:
            parser.error(f"unknown model {name!r} (one of {', '.join(MODELS)})")
        results[name] = evaluate(name, args.weights_dir, args.calib,
                                 lambda s: print(s, file=sys.stderr, flush=True), args.only)
    names = list(results)
    methods = list(dict.fromkeys(m for n in names for m, _ in results[n]))
    cells = {n: dict(results[n]) for n in names}
    lines = ["| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(cells[n].get(method, "-") for n in names)
                     + " |")
    table = "\n".join(lines)
    print(f"Fashion-MNIST test accuracy (%, 10000 images), calibration: {args.calib} "
          f"training images\n\n{table}")
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
