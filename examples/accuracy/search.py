#!/usr/bin/env python3
"""The accuracy-budget search (``qnt.accuracy.search``) on a model trained
by train.py: the fastest INT8 configuration within a budget, its plot and
what it cost (docs/accuracy.md, "Mixed-precision search").

    /usr/bin/python3 examples/accuracy/search.py --model mobilenet_v2 \\
        --budget sqnr=30 --qconfig qnnpack --out build/accuracy/search

Calibration: the first --calib training images; the search's eval set: the
first --eval test images (labels included, for a top1 budget). The answer
is then measured on all 10000 test images (top-1, FP32 and INT8) and its
compiled library timed against the all-INT8 model of the same preset.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from evaluate import BATCH, ROOT, accuracy, load, qnt  # noqa: E402
from models import MODELS  # noqa: E402
from qnt import datasets  # noqa: E402
from qnt.accuracy import search  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2", choices=sorted(MODELS))
    parser.add_argument("--weights-dir", default=str(ROOT / "build" / "accuracy"))
    parser.add_argument("--budget", default="sqnr=30", help="top1=DROP or sqnr=DB")
    parser.add_argument("--qconfig", default="qnnpack")
    parser.add_argument("--calib", type=int, default=500, help="calibration images")
    parser.add_argument("--eval", type=int, default=1000, help="the search's eval images")
    parser.add_argument("--max-evaluations", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=None, help="evaluations at once")
    parser.add_argument("--out", default=str(ROOT / "build" / "accuracy" / "search"))
    args = parser.parse_args(argv)
    for name in ("calib", "eval"):
        if getattr(args, name) % BATCH or getattr(args, name) <= 0:
            parser.error(f"--{name} must be a positive multiple of {BATCH}")
    log = lambda s: print(f"qnt: {s}", file=sys.stderr, flush=True)  # noqa: E731
    model = load(args.model, args.weights_dir)
    x, y = (torch.from_numpy(a) for a in datasets.fashion_mnist("test"))
    xc = torch.from_numpy(datasets.fashion_mnist("train", limit=args.calib)[0])
    calib = {"x": xc}
    eval_data = {"x": x[:args.eval], "labels": y[:args.eval]}
    start = time.time()
    result = search(model, (xc[:BATCH],), calib, eval_data, budget=args.budget,
                    qconfig=args.qconfig, max_evaluations=args.max_evaluations,
                    max_workers=args.jobs, out_dir=args.out, log=log)
    seconds = time.time() - start
    print(result.to_markdown())
    base = qnt.quantize_static(model, (xc[:BATCH],), calib, args.qconfig)
    with torch.no_grad():
        fp32_acc = accuracy(model, x, y)
    lines = [f"search: {result.evaluations} evaluations, {seconds:.0f} s wall "
             f"(plot: {args.out}/search.png)",
             f"top-1 on the 10000 test images: FP32 {100 * fp32_acc:.2f}, all INT8 "
             f"({args.qconfig}) {100 * accuracy(base, x, y):.2f}, the answer "
             f"{100 * accuracy(result.model, x, y):.2f}",
             f"compiled latency (batch {BATCH}, median of 50): all INT8 "
             f"{base.benchmark(runs=50)['median_ms']:.2f} ms, the answer "
             f"{result.model.benchmark(runs=50)['median_ms']:.2f} ms"]
    print("\n".join(lines))
    (Path(args.out) / "summary.txt").write_text("\n".join(lines) + "\n")
    return 0 if result.met else 1


if __name__ == "__main__":
    sys.exit(main())
