"""AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training
Quantization", ICML 2020): a float-model transform applied before
`qnt.quantize_static`.

Rounding every weight to the nearest INT8 step minimizes each weight's
error, not the layer's: what matters is the output, ``||W x - W~ x||``,
and on real inputs some weights do better rounded the other way. AdaRound
learns, per weight, up or down: ``W~ = S * clamp(floor(W / S) + h(V))``
with the rectified sigmoid ``h(V) = clip(sigmoid(V) (zeta - gamma) +
gamma, 0, 1)`` (zeta 1.1, gamma -0.1), V trained by Adam on the layer's
reconstruction error over calibration data plus ``lambda * sum(1 -
|2 h(V) - 1|^beta)``, which pushes every h(V) to 0 or 1 as beta falls
from 20 to 2 (after a warm-up without it). Layers go in order, each fed by
the already rounded layers before it (the paper's asymmetric
reconstruction, section 4.2; the inputs stay float).

    model_ar, report = adaround(model, calibration, qconfig="qnnpack")
    model8 = qnt.quantize_static(model_ar, (x,), calibration, "qnnpack")

The result is a float ``nn.Module`` whose conv / linear weights lie on the
INT8 grid that qnt computes for them, so that `quantize_static`'s own
round-to-nearest gives back the learned integers bit for bit. That grid
(``--qnt-fold-calibration``, docs/numerics.md, checked against the INT8
module in the tests) is symmetric with the weight's own range:

    S = max(max|W| / d, 2^-23)   float32, d = 127.5 (s8 [-128, 127]),
                                 127 (xnnpack: s8 [-127, 127])
    q = clamp(rint(W * (1 / S)), -128, 127)    1 / S in float32

per output channel for the x86 / fbgemm / onednn / xnnpack presets and
for ``per_channel=True``, per tensor for qnnpack. qnt computes S again
from the weights it is given, so the weights that set ``max|W|`` (of their
channel, or of the tensor) keep their float value and their
round-to-nearest integer; every other weight becomes ``S * q`` with q in
[-127, 127], never beyond that range, so max|W| and S stay what they were.
BatchNorms are folded first (`fold_batch_norms`): qnt quantizes the
folded weight, so that is the one rounded.
"""

import copy
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..api import QCONFIGS
from .bias_correction import call_counts
from .equalize import _Traced

__all__ = ["adaround", "format_adaround_report", "weight_integers", "weight_scale"]

EPS = 2.0 ** -23  # the observers' eps (docs/numerics.md)
ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch (the paper's)
QMIN, QMAX = -127, 127  # integers a learned (not range-setting) weight may take

_PER_CHANNEL_PRESETS = ("x86", "fbgemm", "onednn", "xnnpack")
_LAYERS = (nn.Conv2d, nn.Linear)
# Activations the reconstruction goes through (the paper's f_a): applied
# to both outputs, so a change that the activation clips costs nothing.
_ACTIVATION_MODULES = {nn.ReLU: "relu", nn.ReLU6: "relu6"}
_ACTIVATION_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", F.relu6: "relu6"}
_APPLY = {"none": lambda y: y, "relu": F.relu, "relu6": lambda y: y.clamp(0.0, 6.0)}


def _grid_kind(qconfig, per_channel):
    """(per-channel weights?, the divisor d of S = max|W| / d) of qnt's
    weight quantization for ``qconfig`` and ``quantize_static``'s
    ``per_channel`` argument."""
    if qconfig not in QCONFIGS:
        raise ValueError(f"qconfig must be one of {QCONFIGS}, got {qconfig!r}")
    if per_channel not in (None, True, False):
        raise ValueError(f"per_channel must be None, True or False, got {per_channel!r}")
    if per_channel is False and qconfig in ("x86", "fbgemm", "onednn"):
        raise ValueError(f"the {qconfig} preset quantizes weights per channel; use qnnpack "
                         f"or xnnpack for per-tensor weights")
    # xnnpack's preset is per channel whatever per_channel says (quantize_static
    # accepts per_channel=False there and keeps it).
    return (qconfig in _PER_CHANNEL_PRESETS or per_channel is True,
            127.0 if qconfig == "xnnpack" else 127.5)


def _ranges(weight, per_channel):
    """max |W| per output channel [O] (dim 0, conv and linear alike) or of
    the whole tensor [1]."""
    w = weight.detach().float().abs()
    return w.flatten(1).amax(1) if per_channel else w.max().reshape(1)


def _broadcast(values, weight):
    return values.view(-1, *[1] * (weight.dim() - 1))


def weight_scale(weight, qconfig="x86", per_channel=None):
    """qnt's INT8 scale of a conv / linear ``weight`` ([out, ...]) for
    ``quantize_static(..., qconfig, per_channel=per_channel)``: float32,
    shaped to broadcast against ``weight`` ([out, 1, ...] per channel,
    [1, 1, ...] per tensor). ``S = max(max|W| / d, 2^-23)``, d 127.5
    (127 for xnnpack)."""
    per_ch, divisor = _grid_kind(qconfig, per_channel)
    return _broadcast(torch.clamp(_ranges(weight, per_ch) / divisor, min=EPS), weight)


def weight_integers(weight, qconfig="x86", per_channel=None):
    """The INT8 integers qnt stores for ``weight`` (int8, the weight's
    layout): ``clamp(rint(W * (1 / S)), -128, 127)`` with ``1 / S`` in
    float32, as ``quant.qcast`` computes them."""
    inverse = 1.0 / weight_scale(weight, qconfig, per_channel)
    scaled = weight.detach().float() * inverse
    return torch.clamp(torch.round(scaled), -128, 127).to(torch.int8)


def _check_options(iterations, reg_weight, batch_size, beta, warmup, lr, seed):
    def integer(name, value, low):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

    def number(name, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")

    integer("iterations", iterations, 1)
    integer("batch_size", batch_size, 1)
    integer("seed", seed, 0)
    number("reg_weight", reg_weight)
    if reg_weight < 0:
        raise ValueError(f"reg_weight must be >= 0, got {reg_weight!r}")
    number("lr", lr)
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    number("warmup", warmup)
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup must be in [0, 1) (a fraction of the iterations), "
                         f"got {warmup!r}")
    if not isinstance(beta, (tuple, list)) or len(beta) != 2:
        raise ValueError(f"beta must be (start, end), got {beta!r}")
    for value in beta:
        number("beta", value)
    if not beta[0] >= beta[1] > 0:
        raise ValueError(f"beta must be (start, end) with start >= end > 0, got {beta!r}")


def _samples(calibration_data):
    """The calibration data as a list of argument tuples; ValueError when
    empty or not finite."""
    samples = []
    for i, sample in enumerate(calibration_data):
        sample = tuple(sample) if isinstance(sample, (tuple, list)) else (sample,)
        sample = tuple(torch.as_tensor(a) for a in sample)
        for a in sample:
            if a.is_floating_point() and not bool(torch.isfinite(a).all()):
                raise ValueError(f"calibration sample {i} has NaN or Inf values")
        samples.append(sample)
    if not samples:
        raise ValueError("calibration_data is empty: AdaRound learns from calibration "
                         "samples")
    return samples


class _Stop(Exception):
    """Ends a forward pass once the hooked module has run."""


def _capture(model, path, samples, what):
    """The input (``what`` "input") or output of module ``path`` of
    ``model`` over all ``samples``, concatenated on dim 0 (the batch). The
    forward passes stop at the module."""
    parts = []

    def hook(module, inputs, output):
        parts.append((inputs[0] if what == "input" else output).detach())
        raise _Stop

    handle = model.get_submodule(path).register_forward_hook(hook)
    try:
        with torch.no_grad():
            for sample in samples:
                try:
                    model(*sample)
                except _Stop:
                    pass
    finally:
        handle.remove()
    return torch.cat(parts)


def _activation(traced, node):
    """The activation the output of layer ``node`` goes through alone
    (through nn.Identity, e.g. a folded BN): "relu", "relu6" or "none"."""
    while len(node.users) == 1:
        user = next(iter(node.users))
        if user.all_input_nodes != [node]:
            return "none"
        if user.op == "call_function" and user.target in _ACTIVATION_FUNCTIONS:
            return _ACTIVATION_FUNCTIONS[user.target]
        if user.op != "call_module":
            return "none"
        module = traced.root.get_submodule(user.target)
        if type(module) in _ACTIVATION_MODULES:
            return _ACTIVATION_MODULES[type(module)]
        if not isinstance(module, nn.Identity):
            return "none"
        node = user
    return "none"


def _feeds_batch_norm(traced, node):
    return any(u.op == "call_module" and isinstance(traced.root.get_submodule(u.target),
                                                    nn.BatchNorm2d) for u in node.users)


def _find_layers(traced, sample):
    """([(path, activation)] in dataflow order, {path: reason skipped}) for
    every nn.Conv2d / nn.Linear of the model."""
    nodes = [n for n in traced.graph.nodes if n.op == "call_module"
             and isinstance(traced.root.get_submodule(n.target), _LAYERS)]
    all_paths = [name for name, m in traced.root.named_modules() if isinstance(m, _LAYERS)]
    calls = call_counts(traced.root, all_paths, sample)
    layers, skipped = [], {}
    for node in nodes:
        path = node.target
        if path in skipped or any(p == path for p, _ in layers):
            continue
        if traced.calls[path] != 1 or calls[path] != 1:
            skipped[path] = "the module is called more than once"
        elif _feeds_batch_norm(traced, node):
            skipped[path] = ("feeds an nn.BatchNorm2d that fold_batch_norms cannot fold "
                             "(qnt would fold it into the weights)")
        else:
            layers.append((path, _activation(traced, node)))
    found = {p for p, _ in layers} | set(skipped)
    for path in all_paths:
        if path in found:
            continue
        if calls[path] == 0:
            skipped[path] = ("the model never calls its forward() (nn.MultiheadAttention "
                             "applies out_proj through its weights)")
        else:
            skipped[path] = "called inside a module torch.fx keeps whole"
    return layers, skipped


def _forward(module, x, weight):
    if isinstance(module, nn.Conv2d):
        return module._conv_forward(x, weight, module.bias)
    return F.linear(x, weight, module.bias)


def _rectified_sigmoid(v):
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


class _Grid:
    """One layer's INT8 grid: scale S (broadcast), 1 / S, the range per
    group, the range-setting weights (frozen) and floor(W / S)."""

    def __init__(self, weight, per_channel, divisor):
        self.weight = weight.detach().float().clone()
        ranges = _ranges(self.weight, per_channel)
        self.range = _broadcast(ranges, self.weight)
        self.scale = _broadcast(torch.clamp(ranges / divisor, min=EPS), self.weight)
        self.inverse = 1.0 / self.scale
        scaled = self.weight * self.inverse
        self.floor = torch.floor(scaled)
        self.rest = torch.clamp(scaled - self.floor, 0.0, 1.0)
        self.frozen = self.weight.abs() == self.range
        self.nearest = torch.clamp(torch.round(scaled), QMIN, QMAX)

    def weight_for(self, integers):
        """Float weights: S * q, within the range; the frozen weights as
        they were (their integer is qnt's round-to-nearest)."""
        w = torch.maximum(torch.minimum(self.scale * integers, self.range), -self.range)
        return torch.where(self.frozen, self.weight, w)

    def soft(self, h):
        return self.weight_for(torch.clamp(self.floor + h, QMIN, QMAX))

    def hard(self, v):
        return torch.clamp(self.floor + (v >= 0).float(), QMIN, QMAX)


def _mse(module, x, target, weight, apply, chunk=256):
    """Mean squared error of ``apply(layer(x))`` against ``apply(target)``."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            diff = apply(_forward(module, x[i:i + chunk], weight)) - apply(target[i:i + chunk])
            total += float(diff.double().pow(2).sum())
    return total / target.numel()


def _optimize(module, grid, x, target, apply, options, generator):
    """V learned for one layer; returns the integers."""
    iterations, reg_weight, batch_size, (beta_start, beta_end), warmup, lr = options
    p = (grid.rest - GAMMA) / (ZETA - GAMMA)  # h(V) = the fractional part
    v = nn.Parameter(torch.log(p / (1 - p)))
    optimizer = torch.optim.Adam([v], lr=lr)
    free = ~grid.frozen
    channel_dim = 1 if isinstance(module, nn.Conv2d) else -1
    start = int(warmup * iterations)
    rows = len(x)
    for t in range(iterations):
        index = torch.randperm(rows, generator=generator)[:batch_size]
        h = _rectified_sigmoid(v)
        out = _forward(module, x[index], grid.soft(h))
        loss = (apply(out) - apply(target[index])).pow(2).sum(channel_dim).mean()
        if t >= start and reg_weight > 0:
            progress = (t - start) / max(iterations - start, 1)
            beta = beta_end + (beta_start - beta_end) * (1 - progress)
            reg = (1 - (2 * h[free] - 1).abs().pow(beta)).sum()
            loss = loss + reg_weight * reg
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return grid.hard(v.detach())


def adaround(model, calibration_data, *, qconfig="x86", per_channel=None, iterations=1000,
             reg_weight=0.01, batch_size=32, activation=True, beta=(20.0, 2.0), warmup=0.2,
             lr=1e-3, seed=0, layers=None, log=None):
    """AdaRound of a deep copy of the eval-mode ``model`` (BatchNorms folded
    by `fold_batch_norms`: nn.Identity where they were). Returns
    ``(model, report)``; ``model`` is never changed. Quantize the result
    with the same ``qconfig`` and ``per_channel`` (they pick the grid: see
    the module docstring).

    Layers: every ``nn.Conv2d`` (any groups) and ``nn.Linear`` module,
    called once, in the order of the torch.fx graph. Skipped with the
    reason: modules called more than once, modules whose forward() is
    never called (nn.MultiheadAttention's out_proj: torch.fx keeps the
    attention whole and it uses the weight directly), a conv feeding a
    BatchNorm that cannot be folded. ``layers``: only these module paths
    (ValueError for a path that is no such layer).

    calibration_data: an iterable of input tensors (or tuples of them, one
    per forward() argument), read once. For each layer, its input in the
    partly rounded model and the original (BN-folded) FP32 model's output
    are recorded on all samples; V is trained for ``iterations`` Adam steps
    (``lr``) on ``batch_size`` rows (dim 0) drawn at random (``seed``):
    loss = per-position squared error summed over channels, mean over the
    batch, plus ``reg_weight`` times the rounding regularizer after the
    first ``warmup`` fraction of the steps, beta falling linearly from
    ``beta[0]`` to ``beta[1]``. ``activation``: when the layer's output
    goes only into a ReLU / ReLU6 (through nn.Identity), the error is
    measured after it (the paper's f_a). Biases and activations stay float.

    report: ``{"layers": [{"name", "kind" (conv, depthwise, grouped,
    linear), "activation", "weights", "frozen" (range-setting weights),
    "flipped" (weights rounded away from nearest), "mse_nearest",
    "mse_adaround" (output MSE against FP32 on all calibration samples, the
    same inputs), "seconds"}], "skipped": [{"name", "reason"}], "qconfig",
    "per_channel", "iterations", "seconds"}``. ``log(text)``: a line per
    layer.

    Raises ValueError for a model in training mode or that torch.fx cannot
    trace, bad options, empty calibration data or NaN / Inf in it, and
    non-finite weights."""
    per_ch, divisor = _grid_kind(qconfig, per_channel)
    _check_options(iterations, reg_weight, batch_size, beta, warmup, lr, seed)
    if not isinstance(activation, bool):
        raise ValueError(f"activation must be True or False, got {activation!r}")
    if layers is not None and (isinstance(layers, str) or
                               not all(isinstance(p, str) for p in layers)):
        raise ValueError(f"layers must be a list of module paths, got {layers!r}")
    samples = _samples(calibration_data)
    say = log or (lambda text: None)
    began = time.time()
    traced = _Traced(model)
    traced.fold_batch_norms()
    found, skipped = _find_layers(traced, samples[0])
    if layers is not None:
        candidates = {p for p, _ in found} | set(skipped)
        unknown = [p for p in layers if p not in candidates]
        if unknown:
            raise ValueError(f"layers {unknown} are no nn.Conv2d / nn.Linear layers of the "
                             f"model (those are: {sorted(candidates)})")
        skipped.update((p, "not in layers") for p, _ in found if p not in layers)
        found = [(p, a) for p, a in found if p in layers]
    work = traced.root
    for path, _ in found:
        if not bool(torch.isfinite(work.get_submodule(path).weight).all()):
            raise ValueError(f"layer '{path}' has NaN or Inf weights")
    reference = copy.deepcopy(work)  # the BN-folded FP32 model, never rounded
    generator = torch.Generator().manual_seed(seed)
    options = (iterations, reg_weight, batch_size, tuple(beta), warmup, lr)
    entries = []
    for path, act in found:
        start = time.time()
        module = work.get_submodule(path)
        x = _capture(work, path, samples, "input")
        target = _capture(reference, path, samples, "output")
        apply = _APPLY[act if activation else "none"]
        grid = _Grid(module.weight, per_ch, divisor)
        with torch.enable_grad():
            integers = _optimize(module, grid, x, target, apply, options, generator)
        nearest = grid.weight_for(grid.nearest)
        rounded = grid.weight_for(integers)
        before = _mse(module, x, target, nearest, apply)
        after = _mse(module, x, target, rounded, apply)
        with torch.no_grad():
            module.weight.copy_(rounded)
        free = ~grid.frozen
        groups = getattr(module, "groups", 1)
        kind = ("linear" if isinstance(module, nn.Linear) else "conv" if groups == 1 else
                "depthwise" if groups == module.in_channels == module.out_channels
                else "grouped")
        entries.append({
            "name": path, "kind": kind, "activation": act if activation else "none",
            "weights": module.weight.numel(), "frozen": int(grid.frozen.sum()),
            "flipped": int((integers != grid.nearest)[free].sum()),
            "mse_nearest": before, "mse_adaround": after, "seconds": time.time() - start})
        e = entries[-1]
        say(f"adaround {path} ({kind}, {act}): output MSE {before:.4g} -> {after:.4g}, "
            f"{e['flipped']} of {e['weights']} weights rounded away from nearest "
            f"({e['seconds']:.1f} s)")
    report = {"layers": entries,
              "skipped": [{"name": n, "reason": r} for n, r in skipped.items()],
              "qconfig": qconfig, "per_channel": per_ch, "iterations": iterations,
              "seconds": time.time() - began}
    return work, report


def format_adaround_report(report):
    """The report as a Markdown table (layers, then skipped layers)."""
    lines = ["| layer | kind | activation | weights | rounded away from nearest | "
             "output MSE, nearest | AdaRound | ratio |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for layer in report["layers"]:
        before, after = layer["mse_nearest"], layer["mse_adaround"]
        ratio = f"{after / before:.3f}" if before > 0 else "-"
        lines.append(f"| {layer['name']} | {layer['kind']} | {layer['activation']} | "
                     f"{layer['weights']} | {layer['flipped']} | {before:.4g} | "
                     f"{after:.4g} | {ratio} |")
    lines += [f"| {s['name']} | skipped: {s['reason']} | | | | | | |"
              for s in report["skipped"]]
    grid = "per channel" if report["per_channel"] else "per tensor"
    lines.append(f"\n{report['qconfig']} grid ({grid}), {report['iterations']} iterations "
                 f"per layer, {report['seconds']:.1f} s")
    return "\n".join(lines)
