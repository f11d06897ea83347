#!/usr/bin/python3
"""Bounded mutation fuzzer for quant-opt and quant-run.

Mutates the lit inputs (test/**/*.mlir, one `// -----` chunk at a time) and
the example model (examples/cnn/model.mlir) with byte, line, number and type
mutations drawn from a fixed seed, and runs each mutant through a quant-opt
pipeline (the file's own RUN lines or one of the standard pipelines) or,
for small single-input models, through quant-run. Bad input must give a
located error and an ordinary non-zero exit; a failure is
  * a signal (segfault, abort) or exit code 134,
  * `LLVM ERROR`, a crash report (`PLEASE submit a bug report`, `Stack
    dump:`) or a sanitizer report (when the tools are the ASan build),
  * a run longer than --timeout seconds (a hang).
Crashes of known upstream MLIR 22 bugs (KNOWN_UPSTREAM) are counted apart
and do not fail the run. Each failure is saved with its command line under
--out; the run ends after --runs mutants or --max-seconds, whichever comes
first, and exits 1 if anything failed.

  fuzz/mutate.py --bin build/bin --out build/fuzz/mutate [--runs N]
"""

import argparse
import math
import os
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Largest input quant-run is given (elements): 64 MiB of floats.
MAX_INPUT_ELEMENTS = 1 << 24

# Upstream MLIR 22 bugs that mutants reach: (name, regex over the crash
# output, reason). A crash matching one is counted as known, not as a failure.
KNOWN_UPSTREAM = [
    ("dense-array-of-index", r"parseDenseArrayAttr",
     "`array<index: 1>` (or another non-integer, non-float element type) "
     "segfaults in Parser::parseDenseArrayAttr, which calls "
     "getIntOrFloatBitWidth on it; mlir-opt-22 crashes the same way"),
]

# Pipelines every chunk may go through besides its own RUN lines.
PIPELINES = [
    ["--qnt-ptq-pipeline"],
    ["--qnt-fuse", "--qnt-prepare"],
    ["--qnt-convert"],
    ["--qnt-lower-pipeline"],
    ["--qnt-ptq-pipeline", "--qnt-lower-pipeline"],
]

FAILURE_MARKERS = [
    "LLVM ERROR", "PLEASE submit a bug report", "Stack dump:",
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
]

INTERESTING_NUMBERS = [
    "0", "1", "-1", "2", "3", "7", "8", "255", "256", "-128", "127", "65536",
    "100000", "2147483647", "2147483648", "-2147483648",
    "9223372036854775807", "-9223372036854775808", "18446744073709551616",
    "0.0", "-0.0", "0.5", "1.0e-45", "1.0e+38", "3.4e+38", "-3.4e+38",
    "1.0e+39", "0x7FC00000", "0x7F800000", "nan", "inf",
]
TYPES = ["f32", "f16", "bf16", "f64", "i1", "i8", "i16", "i32", "i64",
         "ui8", "si8", "index", "f8E4M3FN", "complex<f32>", "none"]
TYPE_RE = re.compile(r"\b(f16|bf16|f32|f64|i1|i8|i16|i32|i64|ui8|si8|index)\b")
NUMBER_RE = re.compile(r"-?\b\d+(\.\d+)?([eE][-+]?\d+)?\b")
DIM_RE = re.compile(r"(?<=[<x])\d+(?=x)")


def chunks_of(path):
    """The `// -----` chunks of a lit input, each with the file's RUN lines'
    quant-opt flags."""
    text = path.read_text()
    flags = []
    for line in text.splitlines():
        m = re.match(r"\s*//\s*RUN:.*?\bquant-opt\s+(.*)", line)
        if not m:
            continue
        cmd = re.split(r"\s(\||2>|>|<)", m.group(1))[0]
        cmd = cmd.replace("%S", str(path.parent)).replace("%p", str(path.parent))
        try:
            words = shlex.split(cmd)
        except ValueError:
            continue
        words = [w for w in words if w not in ("%s", "--split-input-file",
                                               "-split-input-file")]
        if ("-o" in words or not words or
                any("%" in w or w.endswith(".mlir") for w in words)):
            continue
        if words not in flags:
            flags.append(words)
    return [(c, flags) for c in text.split("// -----") if c.strip()]


def mutate(rng, text):
    """One random mutation of `text`; returns (kind, mutant)."""
    kind = rng.choice(["byte", "line", "number", "number", "type", "type",
                       "dim"])
    if kind == "byte" and text:
        data = bytearray(text.encode())
        pos = rng.randrange(len(data))
        op = rng.randrange(3)
        if op == 0:
            data[pos] = rng.randrange(256)
        elif op == 1:
            data.insert(pos, rng.choice(b"{}()<>[]:,=%@\"x0-!#^ \n\x00\xff"))
        else:
            del data[pos:pos + rng.randint(1, 8)]
        return kind, data.decode("utf-8", errors="replace")
    if kind == "line":
        lines = text.splitlines(keepends=True)
        if len(lines) > 1:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            op = rng.randrange(3)
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
        return kind, "".join(lines)
    regex = {"number": NUMBER_RE, "type": TYPE_RE, "dim": DIM_RE}.get(kind)
    matches = list(regex.finditer(text)) if regex else []
    if not matches:
        return mutate(rng, text) if text else ("none", text)
    m = rng.choice(matches)
    if kind == "number":
        new = rng.choice(INTERESTING_NUMBERS)
    elif kind == "type":
        new = rng.choice(TYPES)
    else:
        new = rng.choice(["0", "1", "3", "?", "100000", "2147483648"])
    return kind, text[:m.start()] + new + text[m.end():]


def entry_argument(text):
    """(function, shape) of a model whose first function takes one static
    f32 tensor, else None."""
    m = re.search(r"func\.func\s+@([\w$.]+)\(%\w+:\s*tensor<([\dx]+)xf32>"
                  r"(\s*\{[^{}]*\})?\)", text)
    if not m:
        return None
    return m.group(1), [int(d) for d in m.group(2).split("x")]


def classify(proc_rc, output, timed_out):
    """None (clean), "hang", ("known", name) or "crash"."""
    if timed_out:
        return "hang"
    crashed = proc_rc < 0 or proc_rc == 134 or any(
        m in output for m in FAILURE_MARKERS)
    if not crashed:
        return None
    for name, pattern, _ in KNOWN_UPSTREAM:
        if re.search(pattern, output):
            return ("known", name)
    return "crash"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=str(ROOT / "build" / "bin"))
    parser.add_argument("--out", default=str(ROOT / "build" / "fuzz" / "mutate"))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--run-every", type=int, default=8,
                        help="one mutant in N of a runnable model goes "
                        "through quant-run (it JIT-compiles: slow)")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    quant_opt = os.path.join(args.bin, "quant-opt")
    quant_run = os.path.join(args.bin, "quant-run")

    files = sorted(p for p in (ROOT / "test").rglob("*.mlir"))
    files.append(ROOT / "examples" / "cnn" / "model.mlir")
    seeds = []
    for path in files:
        for chunk, flags in chunks_of(path):
            seeds.append((path, chunk, flags))

    rng = random.Random(args.seed)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # allow_user_poisoning=0: see scripts/asan.sh (LLVM's allocators shared
    # by instrumented and uninstrumented code).
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0:allow_user_poisoning=0")
    start = time.monotonic()
    runs = crashes = hangs = 0
    known = {}
    for i in range(args.runs):
        if time.monotonic() - start > args.max_seconds:
            break
        path, chunk, flags = rng.choice(seeds)
        kind, mutant = mutate(rng, chunk)
        if rng.random() < 0.3:
            kind2, mutant = mutate(rng, mutant)
            kind += "+" + kind2
        src = out / "current.mlir"
        src.write_text(mutant)
        entry = entry_argument(chunk)
        # A mutated shape can be huge (2^62 elements): no input file then,
        # the module goes through quant-opt (which must reject it).
        if (entry and math.prod(entry[1]) <= MAX_INPUT_ELEMENTS
                and rng.randrange(args.run_every) == 0):
            import numpy as np  # only quant-run needs it
            npy = out / "input.npy"
            np.save(npy, np.linspace(-3, 3, math.prod(entry[1]),
                                     dtype=np.float32).reshape(entry[1]))
            cmd = [quant_run, str(src), "--entry", entry[0], "-i", str(npy),
                   "--print", "--num-threads", "1"]
        else:
            cmd = [quant_opt, str(src)] + rng.choice(flags + PIPELINES)
        runs += 1
        timed_out = False
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env,
                                  timeout=args.timeout)
            rc, output = proc.returncode, proc.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            rc, output, timed_out = -9, (e.stderr or b"").decode(
                errors="replace"), True
        verdict = classify(rc, output, timed_out)
        if verdict is None:
            continue
        if isinstance(verdict, tuple):
            known[verdict[1]] = known.get(verdict[1], 0) + 1
            continue
        if verdict == "hang":
            hangs += 1
        else:
            crashes += 1
        name = f"{verdict}-{i}"
        (out / f"{name}.mlir").write_text(mutant)
        shown = " ".join(shlex.quote(c) for c in cmd).replace(
            str(src), str(out / f"{name}.mlir"))
        (out / f"{name}.txt").write_text(
            f"# from {path.relative_to(ROOT)} ({kind}), exit {rc}\n"
            f"{shown}\n\n{output[-6000:]}")
        print(f"{verdict}: {out / name}.mlir (from "
              f"{path.relative_to(ROOT)}, {kind}, exit {rc})")
        first = next((l for l in output.splitlines() if any(
            m in l for m in FAILURE_MARKERS + ["error"])), "")
        if first:
            print(f"  {first.strip()[:200]}")
        if "input.npy" in shown:
            os.replace(out / "input.npy", out / f"{name}.npy")
    (out / "current.mlir").unlink(missing_ok=True)
    seconds = time.monotonic() - start
    known_text = ", ".join(f"{k}: {v}" for k, v in sorted(known.items()))
    print(f"mutate.py: {runs} runs in {seconds:.0f} s (seed {args.seed}), "
          f"{crashes} crashes, {hangs} hangs, known upstream: "
          f"{known_text or 'none'}")
    return 1 if crashes or hangs else 0


if __name__ == "__main__":
    sys.exit(main())
