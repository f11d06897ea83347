#!/usr/bin/env python3
"""Size and memory of a compiled transformer: a BERT-base-shaped encoder
(nn.TransformerEncoder, d_model 768, 12 heads, feed-forward 3072, sequence
128, batch 1; random weights) compiled by quant-compile in FP32, dynamic
INT8 (`--qnt-dynamic-pipeline`, PyTorch's linears), dynamic INT8 with all
linears and static INT8 (`--qnt-ptq-pipeline=qconfig=x86`, calibrated on
2 random inputs); for each: the library's size, its read-only data, and the
peak resident memory (max RSS) of a process that creates the model and runs
it once (examples/aot/run_model.c), next to PyTorch's saved state dicts
(FP32 and quantize_dynamic).

    /usr/bin/python3 bench/memory.py [--layers 12] [--threads 2]

Prints a markdown table (MB = 10^6 bytes)."""

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "eval"))
import qnt  # noqa: E402
from qnt import data as qdata  # noqa: E402
import ptq_vs_pytorch as pvp  # noqa: E402  (Tools, the PTQ pipeline)


def log(message):
    print(message, file=sys.stderr, flush=True)


def section_bytes(library, name):
    """Size of an ELF section of `library` (readelf -S), 0 if absent."""
    out = subprocess.run(["readelf", "-SW", str(library)], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] == name:
            return int(fields[5], 16)
    return 0


# Forks and execs argv[1:] from a fresh interpreter and prints the child's
# ru_maxrss: Linux keeps a process's peak RSS across exec, so a child forked
# from this process (torch loaded: ~300 MB) would report at least that.
_RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def max_rss_mb(command):
    """Peak resident memory of one run of `command`."""
    result = subprocess.run(["/usr/bin/python3", "-S", "-c", _RSS_WRAPPER, *command],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return int(result.stdout) * 1024 / 1e6


def torch_saved_mb(model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build-dir", default=os.environ.get("QNT_BUILD_DIR",
                                                              str(ROOT / "build")))
    args = parser.parse_args()
    bin_dir = Path(args.build_dir) / "bin"
    torch.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(768, 12, 3072),
                                  args.layers).eval()
    # nn.TransformerEncoder deep-copies its layer: distinct weights per layer
    # (identical ones would be one constant in the library).
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(128, 1, 768)
    rows = [("PyTorch FP32 (state dict)", torch_saved_mb(model), None, None)]
    dynamic = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    rows.append(("PyTorch quantize_dynamic (state dict)", torch_saved_mb(dynamic), None, None))
    rows.append(("a process that does nothing (/bin/true)", 0.0, None, max_rss_mb(["/bin/true"])))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = tmp / "fp32.mlir"
        info = qnt.export(model, (x,), fp32)
        x.numpy().astype("<f4").tofile(tmp / "x.f32")

        def dynamic(options):
            mlir = tmp / "int8.mlir"
            subprocess.run([str(bin_dir / "quant-opt"), str(fp32),
                            f"--qnt-dynamic-pipeline={options}", "-o", str(mlir)], check=True)
            return mlir

        def static():
            calib = tmp / "calib.npz"
            qdata.save(calib, {info.inputs[0][0]: torch.randn(2, 128, 1, 768).numpy()},
                       batch=None)
            return pvp.ours_int8(pvp.Tools(args.build_dir), tmp, fp32, calib, ["x86"])["x86"]

        for label, make in (("qnt FP32", lambda: fp32),
                            ("qnt dynamic INT8", lambda: dynamic("qconfig=x86")),
                            ("qnt dynamic INT8, all linears",
                             lambda: dynamic("qconfig=x86 all-linears=true")),
                            ("qnt static INT8", static)):
            log(f"== {label}")
            mlir = make()
            out = tmp / label.replace(" ", "_").replace(",", "")
            out.mkdir()
            library = out / "libmodel.so"
            subprocess.run([str(bin_dir / "quant-compile"), str(mlir), "--name", "model",
                            "-o", str(library)], check=True)
            runner = out / "run_model"
            subprocess.run(["cc", "-O2", f"-I{out}", str(ROOT / "examples/aot/run_model.c"),
                            f"-L{out}", "-lmodel", f"-Wl,-rpath,{out}", "-o", str(runner)],
                           check=True)
            rss = max_rss_mb([str(runner), str(tmp / "x.f32"), "--threads",
                              str(args.threads)])
            rows.append((label, library.stat().st_size / 1e6,
                         section_bytes(library, ".rodata") / 1e6, rss))
    print(f"BERT-base-shaped encoder ({args.layers} layers, {params / 1e6:.1f} M parameters: "
          f"{params * 4 / 1e6:.0f} MB in FP32, {params / 1e6:.0f} MB at one byte each), "
          f"sequence 128, batch 1\n")
    print("| model | file MB | .rodata MB | max RSS of a run MB |")
    print("|---|---|---|---|")
    for label, size, rodata, rss in rows:
        print(f"| {label} | {size:.1f} | {'' if rodata is None else f'{rodata:.1f}'} | "
              f"{'' if rss is None else f'{rss:.0f}'} |")


if __name__ == "__main__":
    main()
