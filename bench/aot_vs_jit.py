#!/usr/bin/python3
"""INT8 latency of quant-compile's library against quant-run's JIT.

For each model (random weights, realistic batch norms, x86 preset, the same
calibration as eval/integer_coverage.py): the INT8 IR, then
  * JIT: `quant-run int8.mlir --bench N` (median);
  * AOT: `quant-compile int8.mlir` (default --mcpu generic: a portable
    library; --mcpu native with --native) and examples/aot/run_model.c
    `--runs N` (median), same thread count;
and checks that both give the same output bits (both default to the onednn
backend). The two run alternately, --rounds times, and the table shows the
median of the rounds and the AOT/JIT ratio (target: <= 1.0).

    /usr/bin/python3 bench/aot_vs_jit.py [--models squeezenet1_1,...]
        [--runs 50] [--rounds 3] [--threads 2] [--native]

Exit status: 0, 1 if the outputs differ or a ratio exceeds --max-ratio,
2 when a step failed.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "eval"))
import integer_coverage as cov  # noqa: E402  (models)
import ptq_vs_pytorch as pvp  # noqa: E402  (tools, INT8 pipeline)

DEFAULT_MODELS = "squeezenet1_1,mobilenet_v3_large,efficientnet_b0,densenet121,googlenet"
MEDIAN = re.compile(r"latency: median ([0-9.]+) ms")


def build_int8(tools, work, name):
    model, calib, ev = cov.build(name, 8, 1)
    info = pvp.qnt.export(model, pvp.torch.zeros(1, *ev.shape[1:]), work / "model.mlir")
    arg = info.inputs[0][0]
    pvp.qdata.save(work / "calib.npz", {arg: calib}, expect=info)
    x = ev[:1].numpy().astype(np.float32)
    np.savez(work / "input.npz", **{arg: x})
    x.astype("<f4").tofile(work / "input.f32")
    return pvp.ours_int8(tools, work, work / "model.mlir", work / "calib.npz", ["x86"])["x86"]


def jit_ms(tools, int8, work, runs, threads):
    out = tools.run("quant-run", int8, "-i", work / "input.npz", "--bench", runs,
                    f"--num-threads={threads}", "-o", work / "jit.npz", "--quiet")
    return float(MEDIAN.search(out).group(1))


def build_aot(tools, int8, work, native):
    lib = work / "libmodel.so"
    args = [int8, "--name", "model", "-o", lib]
    if native:
        args.append("--mcpu=native")
    tools.run("quant-compile", *args)
    exe = work / "run_model"
    subprocess.run(["cc", "-O2", f"-I{work}", str(ROOT / "examples" / "aot" / "run_model.c"),
                    f"-L{work}", "-lmodel", f"-Wl,-rpath,{work}", "-o", str(exe)], check=True)
    return exe


def aot_ms(exe, work, runs, threads):
    r = subprocess.run([str(exe), str(work / "input.f32"), "--runs", str(runs),
                        "--threads", str(threads)], capture_output=True, text=True, check=True)
    values = np.array([float(v) for v in r.stdout.split()], np.float32)
    return float(MEDIAN.search(r.stderr).group(1)), values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--native", action="store_true", help="quant-compile --mcpu=native")
    parser.add_argument("--max-ratio", type=float, default=None,
                        help="fail if an AOT/JIT ratio exceeds this")
    parser.add_argument("--build-dir", default=str(ROOT / "build"))
    args = parser.parse_args(argv)
    tools = pvp.Tools(args.build_dir, threads=0)
    rows, status = [], 0
    for name in args.models.split(","):
        pvp.log(f"== {name}")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            try:
                int8 = build_int8(tools, work, name)
                exe = build_aot(tools, int8, work, args.native)
                jit, aot = [], []
                for _ in range(args.rounds):
                    jit.append(jit_ms(tools, int8, work, args.runs, args.threads))
                    ms, values = aot_ms(exe, work, args.runs, args.threads)
                    aot.append(ms)
            except Exception as e:  # report and go on with the next model
                print(f"{name}: error: {e}", file=sys.stderr)
                status = 2
                continue
            reference = np.load(work / "jit.npz")
            same = np.array_equal(np.concatenate([reference[k].ravel() for k in reference]),
                                  values)
        j, a = float(np.median(jit)), float(np.median(aot))
        rows.append([name, f"{j:.3f}", f"{a:.3f}", f"{a / j:.2f}", "yes" if same else "NO"])
        if not same or (args.max_ratio and a / j > args.max_ratio):
            status = max(status, 1)
    print(pvp.md_table(["model", "JIT ms", "AOT ms", "AOT / JIT", "same output"], rows))
    return status


if __name__ == "__main__":
    sys.exit(main())
