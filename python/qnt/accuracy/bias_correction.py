"""Empirical bias correction (Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction", ICCV 2019, section 4.2, the
empirical variant) for `qnt.quantize_static`.

Rounding the weights of a layer changes its expected output: with
``W_q = W + dW``, ``E[y_q] = E[y] + dW E[x]``, a per-output-channel shift
that the next layers see as a bias. Measured on data, that shift is
``e_c = E[y_int8 - y_fp32]`` over samples and positions, and subtracting it
from the layer's bias removes it:

    model_bc, report = correct_biases(model, (x,), calibration, qconfig="qnnpack")
    model8 = report["model8"]          # model_bc quantized (or quantize it again)

Which layers: every ``qnt.conv2d`` / ``qnt.linear`` of the fused model that
is an ``nn.Conv2d`` / ``nn.Linear`` module of the torch model (by module
path, the IR's location) and whose output is pre-activation: its
``activation`` attribute is ``none``. ``--qnt-fuse`` is the only pass that
fuses activations and `quantize_static` runs it first, so the attribute
read from the fused FP32 module is the INT8 module's. After a fused
ReLU / ReLU6 / clamp the exposed output is clipped: its mean error is not
the bias the rounding added (a channel mostly below zero shows none), so
such layers are skipped. A BatchNorm2d that ``--qnt-fuse`` folded into the
conv is after the layer's bias: ``y = g (conv(x) + b - m) / s + beta``, and
the layer output is ``y``, so ``e`` comes off ``beta`` (the BN's bias).

The measurement reuses `qnt.compare`'s machinery (``quant-opt
--qnt-expose-activations``, ``quant-run --samples``); the reference is
always the original FP32 model. All layers are measured in one INT8 run,
then corrected in order as the paper does layer by layer: from each
layer's error goes the part its upstream layers' corrections remove,
estimated by propagating those corrections through the float model.
"""

import copy
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .. import compare, mlir_reader
from ..api import QCONFIGS, quantize_static
from ..calibration import write_shards
from ..export import export
from ..tools import run

__all__ = ["correct_biases", "format_report"]

_WEIGHTED_OPS = {"qnt.conv2d": nn.Conv2d, "qnt.linear": nn.Linear}


class _Layers:
    """The FP32 reference of every exposed layer and what each conv / linear
    layer corrects: ``targets`` {layer: path of the module whose bias
    changes}, in the module's (topological) order; ``skipped`` {layer:
    reason}."""

    def __init__(self, model, fp32_mlir, data, tools, workdir, build_dir):
        self.tools, self.data, self.workdir = tools, data, workdir
        self.reference = compare._layer_outputs(*tools, fp32_mlir, data, ["--qnt-fuse"],
                                                workdir, "float")
        self.names = [n for n in self.reference if not n.startswith("output")]
        exposed = _read_ops(Path(workdir) / "float.mlir", build_dir)
        producers = {r: op for op in exposed.ops for r in op.results}
        ops = [producers.get(v) for v in exposed.returns[len(exposed.returns)
                                                         - len(self.names):]]
        folded = _folded_batch_norms(model, _read_ops(fp32_mlir, build_dir),
                                     {op.loc for op in exposed.ops})
        modules = dict(model.named_modules())
        repeated = {n.partition("#")[0] for n in self.names if "#" in n}
        self.targets, self.skipped = {}, {}
        for name, op in zip(self.names, ops):
            if op is None or op.name not in _WEIGHTED_OPS or "#" in name:
                continue  # a repeated name: reported under its first call
            kind = _WEIGHTED_OPS[op.name]
            if name in repeated:
                self.skipped[name] = "the module is called more than once"
            elif not isinstance(modules.get(name), kind):
                self.skipped[name] = f"not an nn.{kind.__name__} module of the model"
            elif op.attrs.get("activation", "none") != "none":
                self.skipped[name] = (f"fused {op.attrs['activation']} activation: the "
                                      "output is clipped, not pre-activation")
            else:
                self.targets[name] = folded.get(name, name)

    def measure(self, int8_mlir, tag):
        """({layer: per-channel mean error [C], float64}, output SQNR dB) of
        the INT8 module against the FP32 reference."""
        actual = compare._layer_outputs(*self.tools, int8_mlir, self.data, [],
                                        self.workdir, tag)
        pairs = _pair_layers(self.names, actual)
        errors = {}
        for name in self.targets:
            ref, act = self.reference[name], actual[pairs[name]]
            if ref.shape != act.shape:
                raise compare.CompareError(f"layer '{name}': FP32 output {ref.shape}, "
                                           f"INT8 output {act.shape}")
            # Channels are last: NHWC for convs, [..., features] for linears.
            diff = act.astype(np.float64) - ref.astype(np.float64)
            errors[name] = diff.reshape(-1, ref.shape[-1]).mean(axis=0)
        outputs = sorted(n for n in self.reference if n.startswith("output"))
        sqnr = compare.sqnr_db(np.concatenate([self.reference[n].ravel() for n in outputs]),
                               np.concatenate([actual[n].ravel() for n in outputs]))
        return errors, sqnr


def _read_ops(path, build_dir):
    """The module's function (`mlir_reader.parse_generic`) with its
    constants elided: their values are not needed here, and parsing a
    resnet's weights takes seconds."""
    return mlir_reader.parse_generic(run(
        f"reading {path}", "quant-opt", path, "--mlir-print-op-generic",
        "--mlir-print-local-scope", "--mlir-print-debuginfo",
        "--mlir-elide-elementsattrs-if-larger=1", build=build_dir))


def _folded_batch_norms(model, fp32, fused_locations):
    """{conv path: BN path} for every nn.BatchNorm2d that takes an op of
    the conv in the exported (unfused) module and that ``--qnt-fuse``
    folded away (no op of the fused module is located at it)."""
    modules = dict(model.named_modules())
    producers = {r: op for op in fp32.ops for r in op.results}
    folded = {}
    for op in fp32.ops:
        if isinstance(modules.get(op.loc), nn.BatchNorm2d) and op.loc not in fused_locations:
            for operand in op.operands:
                source = producers.get(operand)
                if source is not None and isinstance(modules.get(source.loc), nn.Conv2d):
                    folded[source.loc] = op.loc
    return folded


def _pair_layers(names, actual):
    """{FP32 layer name: INT8 layer name}: the same module paths (the INT8
    module keeps its locations, `qnt.quantize_static`)."""
    missing = [n for n in names if n not in actual]
    if missing:
        raise compare.CompareError(
            f"the INT8 module exposes no layer {missing} of the FP32 module "
            f"(it exposes {[n for n in actual if not n.startswith('output')]})")
    return {n: n for n in names}


def _check_arguments(model, qconfig, iterations, quantize_kwargs):
    if qconfig not in QCONFIGS:
        raise ValueError(f"qconfig must be one of {QCONFIGS}, got {qconfig!r}")
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    if quantize_kwargs.get("out_dir") is not None:
        raise ValueError("out_dir: correct_biases quantizes several times; save "
                         "report['model8'] instead")
    training = [name or type(model).__name__ for name, m in model.named_modules()
                if m.training]
    if training:
        raise ValueError("correct_biases needs an eval-mode model (call model.eval()); in "
                         f"training mode: {', '.join(training[:5])}"
                         f"{', ...' if len(training) > 5 else ''}")


class _Stop(Exception):
    """Ends a forward pass once the hooked module has run."""


def _float_means(model, paths, samples):
    """{path: per-channel mean output [C] of module ``path``} of the float
    ``model`` over ``samples`` (tuples of arguments); channels are dim 1 of
    a conv's or a BatchNorm's NCHW output, the last dim of a linear's. The
    forward pass stops after the last of the modules."""
    sums, hooks, pending = {}, [], set()

    def hook(path, dim):
        def record(module, inputs, output):
            out = output.detach().double().movedim(dim, -1)
            total = out.reshape(-1, out.shape[-1]).mean(0)
            sums[path] = sums.get(path, 0) + total
            pending.discard(path)
            if not pending:
                raise _Stop
        return record

    for path in paths:
        dim = -1 if isinstance(model.get_submodule(path), nn.Linear) else 1
        hooks.append(model.get_submodule(path).register_forward_hook(hook(path, dim)))
    try:
        with torch.no_grad():
            for sample in samples:
                pending.update(paths)
                try:
                    model(*sample)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return {path: (sums[path] / len(samples)).numpy() for path in paths}


def call_counts(model, paths, sample):
    """{path: how many times one forward pass of ``model`` on ``sample``
    calls that module's forward()} (0 for nn.MultiheadAttention's out_proj,
    applied through its weights: its output cannot be hooked)."""
    counts, hooks = dict.fromkeys(paths, 0), []
    for path in paths:
        def count(module, inputs, output, path=path):
            counts[path] += 1
        hooks.append(model.get_submodule(path).register_forward_hook(count))
    try:
        with torch.no_grad():
            model(*sample)
    finally:
        for h in hooks:
            h.remove()
    return counts


def _sequential_corrections(model, targets, errors, samples):
    """The bias corrections {layer: c} of one round, as if applied layer by
    layer: all layers' errors ``errors`` were measured at once, so layer
    l's includes the mean shift its upstream layers' errors caused; that
    part goes away with their corrections. It is the shift of l's mean
    output that the upstream corrections cause in the float model
    (propagated by PyTorch, a pass per layer): c_l = e_l + shift_l."""
    before = _float_means(model, list(targets.values()), samples)
    work, corrections = copy.deepcopy(model), {}
    for name, path in targets.items():
        shift = (_float_means(work, [path], samples)[path] - before[path]) \
            if corrections else 0.0
        corrections[name] = errors[name] + shift
        _subtract_bias(work, path, corrections[name])
    return corrections


def _subtract_bias(model, path, error):
    """``path``'s bias -= error (a zero bias created first if it has none)."""
    module = model.get_submodule(path)
    error = torch.as_tensor(error, dtype=module.weight.dtype)
    with torch.no_grad():
        if module.bias is None:
            module.bias = nn.Parameter(torch.zeros_like(error))
        module.bias -= error


def _mean_abs(error):
    return float(np.mean(np.abs(error)))


def correct_biases(model, example_inputs, calibration_data, *, qconfig="x86", iterations=1,
                   layers=None, log=None, **quantize_kwargs):
    """Empirical bias correction of a deep copy of the eval-mode ``model``
    (BatchNorms not folded: `quantize_static` folds them). Returns
    ``(corrected_model, report)``; ``model`` is never changed.

    Each of ``iterations`` rounds quantizes the current model with
    `qnt.quantize_static` (``qconfig`` and ``quantize_kwargs``: observer,
    per_channel, exclude, limit, ...; calibrated again each time), runs the
    FP32 (original) and INT8 modules on the calibration samples with every
    layer's output exposed, and subtracts from each corrected layer's bias
    its per-output-channel mean error ``e_c = E[y_int8 - y_fp32]`` (over
    samples and positions). One quantization measures every layer, so a
    layer's error includes the shift its upstream layers' errors cause;
    as in the paper's layer-by-layer correction, that part is taken out:
    c_l = e_l + (the shift of l's mean output that the upstream
    corrections cause in the float model, one PyTorch pass per layer
    over the samples). Later rounds correct what that linearization
    missed. A final quantization measures the result.

    Corrected: ``nn.Conv2d`` / ``nn.Linear`` modules (each called once)
    whose layer has no fused activation (see the module docstring); a
    module without a bias gets one; a conv with a folded ``nn.BatchNorm2d``
    is corrected through the BN's bias. ``layers``: only these module
    paths (ValueError for a path that is no conv / linear module).

    report: ``{"layers": [{"name", "bias" (the module path whose bias
    changed), "channels", "mean_abs_error_before", "mean_abs_error_after"}],
    "skipped": [{"name", "reason"}], "sqnr_before_db", "sqnr_after_db"
    (the outputs against FP32), "sqnr_db" (per quantization, iterations + 1
    values), "iterations", "model8" (the corrected model's CompiledModel)}``.
    ``log(text)``: a line per step (the quantizations' too).

    Cost: iterations + 1 quantizations (compile included) and as many
    INT8 runs with exposed layers, one FP32 run, and per round one float
    PyTorch pass over the samples per corrected layer (each stops at its
    layer)."""
    _check_arguments(model, qconfig, iterations, quantize_kwargs)
    build_dir = quantize_kwargs.get("build_dir")
    limit = quantize_kwargs.pop("limit", None)
    say = log or (lambda text: None)
    tools = compare._tools(build_dir)
    with tempfile.TemporaryDirectory(prefix="qnt-bias-") as workdir:
        fp32 = os.path.join(workdir, "model.fp32.mlir")
        info = export(model, example_inputs, fp32)
        names = [name for name, _ in info.inputs]
        batch = info.inputs[0][1][0] if info.inputs[0][1] else 1
        # One data set for every quantization and run (an iterable is read once).
        data = str(write_shards(calibration_data, names, batch, workdir, limit=limit)[0])
        found = _Layers(model, fp32, data, tools, workdir, build_dir)
        with np.load(data) as arrays:  # [S] + argument shape, per argument
            samples = [tuple(torch.from_numpy(arrays[n][i]) for n in names)
                       for i in range(len(arrays[names[0]]))]
        skipped = dict(found.skipped)
        uncalled = {p for p, n in call_counts(model, set(found.targets.values()),
                                               samples[0]).items() if not n}
        skipped.update((n, "the model never calls its forward() (nn.MultiheadAttention "
                           "applies out_proj through its weights)")
                       for n, t in found.targets.items() if t in uncalled)
        if layers is not None:
            candidates = set(found.targets) | set(found.skipped)
            unknown = [n for n in layers if n not in candidates]
            if unknown:
                raise ValueError(f"layers {unknown} are no nn.Conv2d / nn.Linear layers of "
                                 f"the model (those are: {sorted(candidates)})")
            skipped.update((n, "not in layers") for n in found.targets if n not in layers)
        targets = {n: t for n, t in found.targets.items() if n not in skipped}
        corrected = copy.deepcopy(model)
        history, first, model8 = [], None, None
        for round_ in range(iterations + 1):
            model8 = quantize_static(corrected, example_inputs, data, qconfig, log=log,
                                     **quantize_kwargs)
            errors, sqnr = found.measure(model8.directory / "model.int8.mlir",
                                         f"int8-{round_}")
            history.append(sqnr)
            say(f"bias correction round {round_}: output SQNR {sqnr:.2f} dB, mean |e| "
                + ", ".join(f"{n} {_mean_abs(errors[n]):.3g}" for n in targets))
            if round_ == 0:
                first = errors
            if round_ < iterations:
                corrections = _sequential_corrections(corrected, targets, errors, samples)
                for name, path in targets.items():
                    _subtract_bias(corrected, path, corrections[name])
    report = {
        "layers": [{"name": n, "bias": t, "channels": len(first[n]),
                    "mean_abs_error_before": _mean_abs(first[n]),
                    "mean_abs_error_after": _mean_abs(errors[n])}
                   for n, t in targets.items()],
        "skipped": [{"name": n, "reason": r} for n, r in skipped.items()],
        "sqnr_before_db": history[0], "sqnr_after_db": history[-1], "sqnr_db": history,
        "iterations": iterations, "model8": model8}
    return corrected, report


def format_report(report):
    """The report as a Markdown table (layers, then skipped layers, then SQNR)."""
    lines = ["| layer | bias of | channels | mean abs error before | after |",
             "|---|---|---:|---:|---:|"]
    for layer in report["layers"]:
        lines.append(f"| {layer['name']} | {layer['bias']} | {layer['channels']} | "
                     f"{layer['mean_abs_error_before']:.4g} | "
                     f"{layer['mean_abs_error_after']:.4g} |")
    lines += [f"| {s['name']} | skipped: {s['reason']} | | | |" for s in report["skipped"]]
    before, after = report["sqnr_before_db"], report["sqnr_after_db"]
    lines.append(f"\noutput SQNR: {before:.2f} dB -> {after:.2f} dB "
                 f"({report['iterations']} iteration(s))")
    return "\n".join(lines)
