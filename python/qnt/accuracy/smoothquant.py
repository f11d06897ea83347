"""SmoothQuant (Xiao et al., ICML 2023): migrate activation outliers into
the weights of the linear layers that read a LayerNorm's output.

A transformer's LayerNorm outputs have a few channels with a range far
larger than the rest; per-tensor activation quantization then spends its
256 steps on them and the other channels lose their precision. For the
linears ``y = x W^T`` that read such an output, ``x W^T = (x / s) (W s)^T``
for any per-input-channel ``s > 0``; ``x / s`` folds into the LayerNorm's
affine weight and bias, ``W s`` into the linears' weights, so the FP32
function is unchanged. With ``s_j = max|x_j|^alpha / max|W[:, j]|^(1 -
alpha)`` (``max|W[:, j]|`` over every linear reading ``x``) the activation
and weight ranges meet in the middle: ``alpha`` 0 keeps the activations,
1 moves all of their range into the weights.

The LayerNorm -> linear pairs are found in the torch.fx graph: a LayerNorm
(with an affine weight) whose every user is an ``nn.Linear`` on its output
or an ``nn.MultiheadAttention`` computing self-attention on it (its packed
``in_proj_weight``: queries, keys and values read the same ``x``). The
ranges ``max|x_j|`` come from running the calibration data.
"""

import copy

import torch
import torch.fx as fx
import torch.nn as nn


def _trace(model):
    from ..export import proxy_unpacking
    try:
        with proxy_unpacking():  # torch 1.13's FX on Python 3.11 (VisionTransformer)
            return fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 (FX raises anything on untraceable code)
        raise ValueError(f"smooth: torch.fx cannot trace the model: "
                         f"{type(e).__name__}: {e}") from None


def _consumer_weight(module):
    """The [out, in] weight a consumer multiplies the LayerNorm output by."""
    return module.in_proj_weight if isinstance(module, nn.MultiheadAttention) else module.weight


def _is_consumer(gm, node, user):
    if user.op != "call_module":
        return False
    module = gm.get_submodule(user.target)
    if isinstance(module, nn.Linear):
        return len(user.args) >= 1 and user.args[0] is node
    if isinstance(module, nn.MultiheadAttention):
        # Self-attention on the LayerNorm's output, packed projections.
        qkv = list(user.args[:3]) + [user.kwargs.get(k) for k in ("query", "key", "value")
                                     if k in user.kwargs]
        return (getattr(module, "_qkv_same_embed_dim", False) and module.in_proj_weight
                is not None and len(qkv) >= 3 and all(a is node for a in qkv if a is not None))
    return False


def find_smoothing_pairs(model):
    """[(LayerNorm path, [consumer paths])] of ``model`` (see the module
    docstring)."""
    gm = _trace(model)
    pairs = []
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        norm = gm.get_submodule(node.target)
        if not isinstance(norm, nn.LayerNorm) or norm.weight is None or \
                len(norm.normalized_shape) != 1:
            continue
        users = list(node.users)
        if users and all(_is_consumer(gm, node, u) for u in users):
            pairs.append((node.target, [u.target for u in users]))
    return pairs


def _activation_ranges(model, norms, calibration_data):
    """{LayerNorm path: max |output| per channel} over the calibration data."""
    ranges, hooks = {}, []
    for path in norms:
        def hook(module, inputs, output, path=path):
            r = output.detach().abs().reshape(-1, output.shape[-1]).amax(0)
            ranges[path] = r if path not in ranges else torch.maximum(ranges[path], r)
        hooks.append(model.get_submodule(path).register_forward_hook(hook))
    try:
        with torch.no_grad():
            for sample in calibration_data:
                sample = sample if isinstance(sample, (tuple, list)) else (sample,)
                model(*sample)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def smooth(model, calibration_data, alpha=0.5):
    """A smoothed deep copy of eval-mode ``model`` and a report: one dict per
    LayerNorm (``norm``, ``consumers``, ``scale_min``, ``scale_max``,
    ``act_spread_before`` / ``_after``: the largest over the smallest
    per-channel activation range).

    calibration_data: an iterable of input tensors (or tuples of them, one
    per forward() argument). alpha: the migration strength in [0, 1]
    (the paper's 0.5 by default)."""
    if model.training:
        raise ValueError("smooth: the model must be in eval mode (model.eval())")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smooth: alpha must be in [0, 1], got {alpha}")
    model = copy.deepcopy(model)
    pairs = find_smoothing_pairs(model)
    ranges = _activation_ranges(model, [norm for norm, _ in pairs], calibration_data)
    report = []
    with torch.no_grad():
        for norm_path, consumers in pairs:
            if norm_path not in ranges:
                continue  # not on the calibration data's path
            act = ranges[norm_path].clamp(min=1e-5)
            weights = [_consumer_weight(model.get_submodule(p)) for p in consumers]
            wmax = torch.stack([w.abs().amax(0) for w in weights]).amax(0).clamp(min=1e-5)
            s = (act.pow(alpha) / wmax.pow(1.0 - alpha)).clamp(min=1e-5)
            norm = model.get_submodule(norm_path)
            norm.weight.div_(s)
            if norm.bias is not None:
                norm.bias.div_(s)
            for w in weights:
                w.mul_(s)
            after = act / s
            report.append({"norm": norm_path, "consumers": consumers,
                           "scale_min": float(s.min()), "scale_max": float(s.max()),
                           "act_spread_before": float(act.max() / act.min()),
                           "act_spread_after": float(after.max() / after.min())})
    return model, report
