#!/usr/bin/python3
"""Which ops of a quantized model run on integers, and which stay float.

For each torchvision model (random weights, realistic batch norms, as in
eval/ptq_vs_pytorch.py): export, --qnt-ptq-pipeline (x86) with calibration
on a few structured images, then --qnt-convert="report-float". Prints per
model the quantized ops, the ops still computed in float between
quant.dcast and quant.qcast (with the reasons --qnt-convert reports), and
the SQNR of the INT8 output against FP32 on the evaluation images.

    /usr/bin/python3 eval/integer_coverage.py                       # the issue's models
    /usr/bin/python3 eval/integer_coverage.py --models mobilenet_v3_large

Exit status: 0, or 2 when a step failed (the message is printed).
"""

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ptq_vs_pytorch as pvp  # noqa: E402  (tools, models, census)

DEFAULT_MODELS = ["efficientnet_b0", "densenet121", "mobilenet_v3_large", "googlenet"]
REMARK = re.compile(r'remark: stays float in the quantized region: (.*)$')
OP_NAME = re.compile(r'"?([a-z_]+\.[a-z_0-9]+)"?[ (]')


def build(name, n_calib, n_eval):
    """The model as eval/ptq_vs_pytorch.py builds it; torchvision.models for
    those without a quantization variant (efficientnet, densenet)."""
    return pvp.torchvision_model(name, n_calib, n_eval)


def float_reasons(stderr, int8_text):
    """{op name: Counter(reason)} from the report-float remarks: the remark
    names a location; the op is on the line the location points to."""
    lines = int8_text.splitlines()
    reasons = {}
    for line in stderr.splitlines():
        m = REMARK.search(line)
        if not m:
            continue
        loc = re.match(r'(?:.*?):(\d+):\d+: remark', line)
        op = "?"
        if loc and int(loc.group(1)) <= len(lines):
            found = OP_NAME.search(lines[int(loc.group(1)) - 1].split("=", 1)[-1])
            op = found.group(1) if found else "?"
        reasons.setdefault(op, Counter())[m.group(1)] += 1
    return reasons


def evaluate(tools, work, name, n_calib, n_eval):
    model, calib, ev = build(name, n_calib, n_eval)
    mlir = work / f"{name}.mlir"
    example = torch.zeros(1, *ev.shape[1:])
    info = pvp.qnt.export(model, example, mlir)
    arg = info.inputs[0][0]
    calib_npz, eval_npz = work / "calib.npz", work / "eval.npz"
    pvp.qdata.save(calib_npz, {arg: calib}, expect=info)
    pvp.qdata.save(eval_npz, {arg: ev}, expect=info)
    int8 = pvp.ours_int8(tools, work, mlir, calib_npz, ["x86"])["x86"]
    report = work / "report.mlir"
    r = pvp.subprocess.run([str(tools.path("quant-opt")), str(int8), "--qnt-convert=report-float",
                            "-o", str(report)], capture_output=True, text=True)
    if r.returncode:
        raise pvp.ToolError(r.stderr[-2000:])
    census = pvp.op_census(int8)
    reasons = float_reasons(r.stderr, int8.read_text())
    ours = pvp.ours_run(tools, int8, eval_npz, work / "out8.npz")
    ref = pvp.pytorch_outputs(model, ev, batch=64)
    return census, reasons, pvp.sqnr(ref, ours)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--calib", type=int, default=8, help="calibration images")
    parser.add_argument("--eval", type=int, default=8, help="evaluation images")
    parser.add_argument("--build-dir", default=str(pvp.REPO / "build"))
    args = parser.parse_args(argv)
    tools = pvp.Tools(args.build_dir)
    status = 0
    rows = []
    for name in args.models:
        pvp.log(f"== {name}")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                census, reasons, snr = evaluate(tools, Path(tmp), name, args.calib, args.eval)
            except Exception as e:  # report and go on with the next model
                print(f"{name}: error: {e}", file=sys.stderr)
                status = 2
                continue
        quantized = sum(census["quantized"].values())
        floats = sum(census["float"].values())
        rows.append([name, str(quantized), f"{floats} ({pvp.census_text(census)[1]})",
                     f"{snr:.1f} dB"])
        for op, why in sorted(reasons.items()):
            for reason, n in why.items():
                print(f"  {name}: {n} x {op}: {reason}")
    print(pvp.md_table(["model", "quantized ops", "float ops in the quantized region",
                        "SQNR INT8 vs FP32"], rows))
    return status


if __name__ == "__main__":
    sys.exit(main())
