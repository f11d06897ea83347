"""Cross-layer equalization (Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction", ICCV 2019): a float model
transform applied before `qnt.quantize_static`.

Two convolutions joined by a positive-homogeneous function (ReLU, or
nothing), ``y = W2 * relu(W1 * x + b1)``, compute the same function when
output channel i of conv1 is divided by ``s_i > 0`` and input channel i of
conv2 multiplied by it, because ``relu(z / s) = relu(z) / s``. The paper's
choice of ``s_i`` gives both channels the same weight range,
``r1_i / s_i = r2_i * s_i = sqrt(r1_i * r2_i)``, which evens out the
per-channel ranges that one per-tensor INT8 scale has to cover.

    model_eq, report = equalize(model)          # BNs folded, pairs equalized
    model8 = qnt.quantize_static(model_eq, (x,), calibration, "qnnpack")

The dataflow comes from a ``torch.fx`` trace (not from module order), so
attribute pairs such as torchvision resnet's ``conv1`` / ``bn1`` are found
as well as ``nn.Sequential`` children. The model itself is never changed:
both functions work on a deep copy and return it, of the model's own class.
"""

import copy
from collections import Counter, namedtuple

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..export import proxy_unpacking

__all__ = ["RELU6_CHOICES", "equalize", "fold_batch_norms"]

RELU6_CHOICES = ("relu", "skip")

# Links allowed between the two convs of a pair: each commutes with a
# positive per-channel scale (ReLU6 only once replaced by ReLU).
_HOMOGENEOUS_MODULES = (nn.Identity, nn.ReLU)
_RELU_FUNCTIONS = (F.relu, torch.relu)

_Pair = namedtuple("_Pair", "conv1 conv2 relu6")
_Pair.__doc__ = """Two conv module names and the names of the ReLU6 modules
between them (replaced by ReLU when the pair is equalized)."""


class _Traced:
    """A deep copy of an eval-mode model and its torch.fx graph; module call
    sites counted, so that a module used twice is never rewritten."""

    def __init__(self, model):
        training = [name or type(model).__name__
                    for name, m in model.named_modules() if m.training]
        if training:
            raise ValueError(f"the model must be in eval mode (call model.eval()); in "
                             f"training mode: {', '.join(training[:5])}"
                             f"{', ...' if len(training) > 5 else ''}")
        self.root = copy.deepcopy(model)
        try:
            with proxy_unpacking():
                self.graph = fx.Tracer().trace(self.root)
        except Exception as e:
            raise ValueError(f"torch.fx cannot trace {type(model).__name__}: {e}") from e
        self.calls = Counter(n.target for n in self.graph.nodes if n.op == "call_module")

    def module(self, node, types):
        """The module ``node`` calls if it is one of ``types``, else None."""
        if not isinstance(node, fx.Node) or node.op != "call_module":
            return None
        module = self.root.get_submodule(node.target)
        return module if isinstance(module, types) else None

    def called_once(self, node, types):
        """Like `module`, but None unless ``node`` is the module's only call
        site (a module called twice is never rewritten)."""
        module = self.module(node, types)
        return module if module is not None and self.calls[node.target] == 1 else None

    def replace(self, name, module):
        parent, _, attribute = name.rpartition(".")
        setattr(self.root.get_submodule(parent), attribute, module)

    def fold_batch_norms(self):
        """Folds every BatchNorm2d whose input is the only use of a Conv2d
        into that conv; the BN becomes nn.Identity."""
        for node in self.graph.nodes:
            bn = self.called_once(node, nn.BatchNorm2d)
            if bn is None or bn.running_mean is None or not node.args:
                continue  # without running statistics, eval uses the batch's
            source = node.args[0]
            conv = self.called_once(source, nn.Conv2d)
            if conv is None or len(source.users) != 1:
                continue
            self.replace(source.target, fuse_conv_bn_eval(conv, bn))
            self.replace(node.target, nn.Identity())

    def _link(self, node, previous):
        """What ``node`` is as a link after ``previous`` in a conv chain:
        "homogeneous" (nn.Identity, ReLU: commutes with a positive scale),
        "relu6", "conv" (called once), or None (the chain stops: another
        op, or an input besides ``previous``)."""
        inputs = node.all_input_nodes
        if len(inputs) != 1 or inputs[0] is not previous:
            return None
        if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
            return "homogeneous"
        if self.module(node, _HOMOGENEOUS_MODULES) is not None:
            return "homogeneous"
        if self.module(node, nn.ReLU6) is not None:
            return "relu6"
        if self.called_once(node, nn.Conv2d) is not None:
            return "conv"
        return None

    def conv_pairs(self, relu6):
        """Every conv1 -> [ReLU | ReLU6 | Identity]* -> conv2 chain in which
        each value has one user (the next link) and each conv one call site."""
        pairs = []
        for start in self.graph.nodes:
            if self.called_once(start, nn.Conv2d) is None:
                continue
            node, relu6s = start, []
            while len(node.users) == 1:
                user = next(iter(node.users))
                link = self._link(user, node)
                if link == "conv":
                    pairs.append(_Pair(start.target, user.target, tuple(relu6s)))
                if link == "relu6" and relu6 == "relu" and self.calls[user.target] == 1:
                    relu6s.append(user.target)  # becomes a ReLU: homogeneous
                elif link != "homogeneous":
                    break
                node = user
        return pairs


def _output_ranges(conv):
    """r1: max |W| of each output channel."""
    return conv.weight.detach().abs().flatten(1).amax(1)


def _input_factor(conv, per_input_channel):
    """A per-input-channel vector laid out to multiply ``conv.weight``
    ([out, in / groups, kh, kw]) whatever the groups: input channel
    g * (in / groups) + j is column j of output channels group g."""
    groups, out = conv.groups, conv.out_channels
    grouped = per_input_channel.view(groups, 1, -1).expand(groups, out // groups, -1)
    return grouped.reshape(out, -1, 1, 1)


def _input_ranges(conv):
    """r2: max |W| over what each input channel feeds (for a depthwise conv,
    its channel's filter)."""
    w = conv.weight.detach().abs()
    groups = conv.groups
    w = w.reshape(groups, conv.out_channels // groups, w.shape[1], -1)
    return w.amax(dim=(1, 3)).flatten()


def _spread(ranges):
    """max / min of the nonzero per-channel ranges (1 when none)."""
    ranges = ranges[ranges > 0]
    return float(ranges.max() / ranges.min()) if ranges.numel() else 1.0


def _equalization_scales(conv1, conv2):
    """The paper's s_i = (1 / r2_i) * sqrt(r1_i * r2_i); 1 where a range is 0."""
    r1, r2 = _output_ranges(conv1), _input_ranges(conv2)
    live = (r1 > 0) & (r2 > 0)
    scales = torch.ones_like(r1)
    scales[live] = (1 / r2[live]) * torch.sqrt(r1[live] * r2[live])
    return scales


@torch.no_grad()
def _rescale(conv1, conv2, scales):
    """Output channel i of conv1 divided by scales[i], input channel i of
    conv2 multiplied by it."""
    conv1.weight.div_(scales.view(-1, 1, 1, 1))
    if conv1.bias is not None:
        conv1.bias.div_(scales)
    conv2.weight.mul_(_input_factor(conv2, scales))


def fold_batch_norms(model):
    """A deep copy of the eval-mode ``model`` in which every
    ``nn.BatchNorm2d`` applied to the output of an ``nn.Conv2d`` (any
    groups; the conv's only use, each module called once) is folded into
    the conv (``torch.nn.utils.fusion.fuse_conv_bn_eval``: the conv gets
    a bias) and replaced by ``nn.Identity``. Pairs are found in the
    torch.fx dataflow graph, so attribute pairs (``self.conv1`` /
    ``self.bn1``) fold as well as ``nn.Sequential`` neighbours.

    Raises ValueError when the model is in training mode or torch.fx
    cannot trace it."""
    traced = _Traced(model)
    traced.fold_batch_norms()
    return traced.root


def equalize(model, *, iterations=50, threshold=1e-4, relu6="relu"):
    """Cross-layer equalization of a deep copy of the eval-mode ``model``,
    after `fold_batch_norms`. Returns ``(model, report)``.

    Pairs: conv1 -> [nn.ReLU | F.relu | nn.ReLU6 | nn.Identity]* -> conv2
    in the torch.fx graph, every value on the way used once (no residual
    fan-out), each conv called once, conv2 taking the chain as input.
    Any groups on either side: dense, depthwise (an inverted residual's
    expand -> depthwise -> project gives two pairs) or grouped. For each
    pair and channel i, with r1_i = max |W1[i]| and r2_i = max |W2[:, i]|
    (a depthwise conv2: max |W2[i]|), s_i = (1 / r2_i) * sqrt(r1_i * r2_i)
    (1 when a range is 0); W1[i] and b1[i] are divided by s_i and W2[:, i]
    multiplied by it. Pairs share convs (the depthwise conv in the middle),
    so the pairs are swept until every |s_i - 1| < ``threshold``, at most
    ``iterations`` times.

    ReLU is positive-homogeneous, so the float function is unchanged (up to
    rounding). ReLU6 is not: ``relu6="relu"`` (the paper's choice) replaces
    the ReLU6 modules inside an equalized pair by ReLU, which changes the
    float function where activations exceeded 6; ``relu6="skip"`` leaves
    pairs with a ReLU6 between them alone (a ReLU6 module called at several
    places is never replaced: such pairs are skipped either way).

    report: ``{"pairs": [...], "iterations": sweeps run, "converged":
    bool, "relu6_replaced": [module names]}``; per pair ``conv1``,
    ``conv2`` (module names), ``channels``, ``scale_min`` / ``scale_max``
    (the total scale over all sweeps), ``spread_before`` /
    ``spread_after`` (max / min over channels of conv1's output-channel
    weight range).

    Raises ValueError for a model in training mode, one torch.fx cannot
    trace, ``relu6`` not in ("relu", "skip") or ``iterations`` < 1."""
    if relu6 not in RELU6_CHOICES:
        raise ValueError(f"relu6 must be one of {RELU6_CHOICES}, got {relu6!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    traced = _Traced(model)
    traced.fold_batch_norms()
    pairs = traced.conv_pairs(relu6)
    convs = [(traced.root.get_submodule(p.conv1), traced.root.get_submodule(p.conv2))
             for p in pairs]
    spreads = [_spread(_output_ranges(conv1)) for conv1, _ in convs]
    totals = [torch.ones(conv1.out_channels) for conv1, _ in convs]
    sweeps, converged = 0, not pairs
    while pairs and sweeps < iterations and not converged:
        sweeps += 1
        worst = 0.0
        for (conv1, conv2), total in zip(convs, totals):
            scales = _equalization_scales(conv1, conv2)
            _rescale(conv1, conv2, scales)
            total.mul_(scales)
            worst = max(worst, float((scales - 1).abs().max()))
        converged = worst < threshold
    replaced = sorted({name for p in pairs for name in p.relu6})
    for name in replaced:
        traced.replace(name, nn.ReLU(inplace=traced.root.get_submodule(name).inplace))
    report = [{"conv1": p.conv1, "conv2": p.conv2, "channels": conv1.out_channels,
               "scale_min": float(total.min()), "scale_max": float(total.max()),
               "spread_before": before, "spread_after": _spread(_output_ranges(conv1))}
              for p, (conv1, _), total, before in zip(pairs, convs, totals, spreads)]
    return traced.root, {"pairs": report, "iterations": sweeps, "converged": converged,
                         "relu6_replaced": replaced}
