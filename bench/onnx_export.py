"""ONNX export of float and PyTorch-quantized models for ONNX Runtime.

`export(model, x, path)` runs torch.onnx.export (opset 13; 17 if 13
fails). PyTorch 1.13 exports quantized modules as QuantizeLinear /
DequantizeLinear around float ops (QDQ); ONNX Runtime fuses them into
QLinearConv, QLinearAdd, ... at graph optimization.

Two ops of FX-quantized models have no quantized ONNX export in PyTorch 1.13:
`quantized::batch_norm2d(_relu)` (a batch norm that does not follow a conv,
e.g. DenseNet's pre-activation BN-ReLU) is rejected as unsupported, and
`aten::cat` of quantized tensors (FX quantizes torch.cat in place) becomes a
float Concat of tuples, which the next quantized op rejects. When a plain
export fails, `export` registers QDQ symbolics for both (dequantize, float
op, quantize with the op's output scale and zero point; cat with its first
input's, as PyTorch's quantized cat does) and tries again; the note it
returns names the ones used. Not covered: `quantized::linear_relu` (the MLP's
fused Linear-ReLU): its weights reach a symbolic still packed (PyTorch 1.13's
weight-unpacking pass does not cover it).
"""

import warnings

import torch
from torch.onnx import symbolic_helper as sh
from torch.onnx import symbolic_opset9 as opset9

OPSETS = (13, 17)


# The fallbacks stay registered once registered (PyTorch 1.13's
# unregister_custom_op_symbolic leaves an op without a built-in symbolic in a
# state whose next export fails with "min() arg is an empty sequence"); while
# not enabled they behave as without them. `used` names the ones that ran.
_state = {"registered": False, "enabled": False, "used": set()}


class UnsupportedQuantizedOp(RuntimeError):
    pass


def _quantized_batch_norm(relu):
    name = "quantized::batch_norm2d" + ("_relu" if relu else "")

    def symbolic(g, x, weight, bias, mean, var, eps, op_scale, op_zero_point):
        if not _state["enabled"]:
            raise UnsupportedQuantizedOp(f"Exporting the operator '{name}' to ONNX is not "
                                         "supported by PyTorch 1.13")
        _state["used"].add(name)
        x, _, _, _ = sh.dequantize_helper(g, x)
        out = g.op("BatchNormalization", x, weight, bias, mean, var,
                   epsilon_f=sh._maybe_get_const(eps, "f"))
        if relu:
            out = g.op("Relu", out)
        return sh.quantize_helper(g, out, op_scale, op_zero_point)
    return symbolic


def _cat(g, tensor_list, dim):
    """aten::cat as opset 11 exports it, unless enabled and its inputs are
    quantized."""
    if not sh._is_packed_list(tensor_list):
        dim = sh._get_const(dim, "i", "dim")
        return g.op("ConcatFromSequence", tensor_list, axis_i=dim)
    tensors = sh._unpack_list(tensor_list)
    if (not _state["enabled"] or not tensors
            or not all(sh._is_tuple_construct(t) for t in tensors)):
        return opset9.cat(g, tensor_list, dim)
    _state["used"].add("quantized aten::cat")
    dim = sh._get_const(dim, "i", "dim")
    parts = [sh.dequantize_helper(g, t) for t in tensors]
    out = g.op("Concat", *[p[0] for p in parts], axis_i=dim)
    return sh.quantize_helper(g, out, parts[0][1], parts[0][2])


_FALLBACKS = {"quantized::batch_norm2d": _quantized_batch_norm(False),
              "quantized::batch_norm2d_relu": _quantized_batch_norm(True),
              "aten::cat": _cat}


class fallbacks:
    """Context: the QDQ symbolics enabled (registered on first use)."""

    def __enter__(self):
        if not _state["registered"]:
            for opset in OPSETS:
                for name, fn in _FALLBACKS.items():
                    torch.onnx.register_custom_op_symbolic(name, fn, opset)
            _state["registered"] = True
        _state["enabled"] = True
        _state["used"] = set()
        return self

    def __exit__(self, *exc):
        _state["enabled"] = False
        return False


def _export(model, x, path, opset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, str(path), opset_version=opset, input_names=["input"],
                          output_names=["output"], do_constant_folding=True)


def short(e):
    """The first line of an exception, shortened for a table cell."""
    text = f"{type(e).__name__}: {e}".strip().splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def export(model, x, path):
    """Exports model(x) to path. Returns a note: "opset N", whether the
    fallbacks were needed and the error of the first attempt when it failed.
    Raises ExportError with every attempt's error when none works."""
    errors = []
    for opset in OPSETS:
        for with_fallbacks in (False, True):
            try:
                if with_fallbacks:
                    with fallbacks():
                        _export(model, x, path, opset)
                else:
                    _export(model, x, path, opset)
            except Exception as e:  # noqa: BLE001 (any exporter failure: try the next way)
                errors.append(f"opset {opset}{' + QDQ fallbacks' if with_fallbacks else ''}: "
                              f"{short(e)}")
                continue
            note = f"opset {opset}"
            if with_fallbacks:
                note += (f" with QDQ symbolics (onnx_export.py) for "
                         f"{', '.join(sorted(_state['used'])) or 'nothing'}")
            if errors:
                note += f"; plain export failed: {errors[0]}"
            return note
    raise ExportError(errors)


class ExportError(RuntimeError):
    """Every attempt failed; `attempts` has one message per attempt."""

    def __init__(self, attempts):
        super().__init__("; ".join(attempts))
        self.attempts = attempts
