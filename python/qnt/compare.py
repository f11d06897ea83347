"""Per-layer error report: the SQNR of every compute layer's output in a
quantized model against the same layer of the float model, worst first.

Both models go through ``quant-opt --qnt-expose-activations`` (the float one
after ``--qnt-fuse``, so conv + batch-norm + relu is one layer in both), run
on the same samples with ``quant-run --samples``, and are matched by layer
name (the PyTorch module path carried in the IR's locations).
"""

import math
import os
import subprocess
import tempfile
from collections import namedtuple

import numpy as np

from .tools import ToolError, tool

LayerError = namedtuple("LayerError", "name sqnr_db max_abs_error shape")
LayerError.__doc__ = """One layer: SQNR in dB (inf when exact), the largest
absolute difference, and the output shape of one sample."""


class CompareError(Exception):
    pass


def sqnr_db(reference, actual):
    """10 log10(sum(ref^2) / sum((ref - actual)^2)), in float64."""
    reference = np.asarray(reference, np.float64)
    noise = np.sum((reference - np.asarray(actual, np.float64)) ** 2)
    signal = np.sum(reference ** 2)
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _tools(build_dir):
    try:
        return [tool("quant-opt", build_dir), tool("quant-run", build_dir)]
    except ToolError as e:
        raise CompareError(str(e)) from None


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompareError(f"{' '.join(command[:2])} failed:\n{result.stderr.strip()}")


def _layer_outputs(quant_opt, quant_run, mlir, data, passes, workdir, tag):
    exposed = os.path.join(workdir, f"{tag}.mlir")
    outputs = os.path.join(workdir, f"{tag}.npz")
    _run([quant_opt, str(mlir), *passes, "--qnt-expose-activations",
          "--mlir-print-debuginfo", "-o", exposed])
    _run([quant_run, exposed, "-i", str(data), "--samples", "--quiet",
          "-o", outputs])
    with np.load(outputs) as arrays:
        return {name: arrays[name] for name in arrays.files}


def compare_layers(float_mlir, quantized_mlir, data, *, build_dir=None):
    """The LayerError of every layer both models expose, worst SQNR first.

    float_mlir: the FP32 model (as exported); quantized_mlir: the quantized
    model (after --qnt-convert); data: an .npz with a leading sample axis."""
    quant_opt, quant_run = _tools(build_dir)
    with tempfile.TemporaryDirectory() as workdir:
        reference = _layer_outputs(quant_opt, quant_run, float_mlir, data,
                                   ["--qnt-fuse"], workdir, "float")
        actual = _layer_outputs(quant_opt, quant_run, quantized_mlir, data,
                                [], workdir, "quantized")
    names = [n for n in reference if n in actual and not n.startswith("output")]
    if not names:
        raise CompareError("the two models share no layer names (keep locations "
                           "with quant-opt --mlir-print-debuginfo)")
    errors = []
    for name in names:
        ref, act = reference[name], actual[name]
        if ref.shape != act.shape:
            raise CompareError(f"layer '{name}': shapes differ, {ref.shape} vs {act.shape}")
        errors.append(LayerError(name, sqnr_db(ref, act),
                                 float(np.max(np.abs(ref - act))), ref.shape[1:]))
    return sorted(errors, key=lambda e: e.sqnr_db)


def format_report(errors):
    lines = ["| layer | SQNR (dB) | max abs error | shape |", "|---|---|---|---|"]
    for e in errors:
        shape = "x".join(map(str, e.shape))
        lines.append(f"| {e.name} | {e.sqnr_db:.2f} | {e.max_abs_error:.4g} | {shape} |")
    return "\n".join(lines)
