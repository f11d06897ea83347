"""Elementwise ops and activations: relu / relu6 / hardtanh (clamps), sigmoid,
SiLU, hardsigmoid, hardswish, tanh, GELU (erf and tanh forms), add / sub /
mul / div, dropout and stochastic depth (identities in eval mode)."""

import math
import operator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ir import F32_MAX, Value


def _add_relu(x, y):
    """FloatFunctional.add_relu, as the tracer records it."""
    return F.relu(torch.add(x, y))


def relu(ctx, x, inplace=False):
    return ctx.clamp(x, 0.0, F32_MAX)


def relu6(ctx, x, inplace=False):
    return ctx.clamp(x, 0.0, 6.0)


def hardtanh(ctx, x, min_val=-1.0, max_val=1.0, inplace=False):
    return ctx.clamp(x, min_val, max_val)


def sigmoid(ctx, x):
    return ctx.op("tosa.sigmoid", [x], x.shape, nhwc=x.nhwc)


def silu(ctx, x, inplace=False):
    return ctx.mul(x, sigmoid(ctx, x))


def hardsigmoid(ctx, x, inplace=False):
    # relu6(x + 3) / 6; TOSA has no float division: * (1/6), within 1 ulp.
    return ctx.mul(relu6(ctx, ctx.add(x, 3.0)), 1.0 / 6.0)


def hardswish(ctx, x, inplace=False):
    # x * relu6(x + 3) / 6, in PyTorch's order.
    return ctx.mul(ctx.mul(x, relu6(ctx, ctx.add(x, 3.0))), 1.0 / 6.0)


def gelu(ctx, x, approximate="none"):
    """PyTorch's formulas, in its order: ``x * 0.5 * (1 + erf(x / sqrt(2)))``,
    or ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))``."""
    if approximate == "none":
        erf = ctx.unary("tosa.erf", ctx.mul(x, math.sqrt(0.5)))
        return ctx.mul(ctx.mul(x, 0.5), ctx.add(erf, 1.0))
    if approximate == "tanh":
        cube = ctx.mul(ctx.mul(x, x), x)
        inner = ctx.mul(ctx.add(x, ctx.mul(cube, 0.044715)), math.sqrt(2.0 / math.pi))
        return ctx.mul(ctx.mul(x, 0.5), ctx.add(ctx.unary("tosa.tanh", inner), 1.0))
    raise ctx.error(f"gelu with approximate={approximate!r} is not supported")


def div(ctx, x, y, rounding_mode=None):
    """True division: by a number, a multiplication by its reciprocal (TOSA
    has no float division; within 1 ulp); by a tensor, by ``tosa.reciprocal``."""
    if rounding_mode is not None:
        raise ctx.error(f"div with rounding_mode={rounding_mode!r} is not supported")
    if not isinstance(y, Value):
        return ctx.mul(x, 1.0 / float(y))
    if not isinstance(x, Value):
        return ctx.mul(ctx.unary("tosa.reciprocal", y), float(x))
    return ctx.mul(x, ctx.unary("tosa.reciprocal", y))


def add(ctx, x, y, alpha=1):
    if alpha != 1:
        raise ctx.error("add with alpha != 1 is not supported")
    return ctx.add(x, y)


def sub(ctx, x, y, alpha=1):
    if alpha != 1:
        raise ctx.error("sub with alpha != 1 is not supported")
    return ctx.binary("tosa.sub", x, y)


def mul(ctx, x, y):
    return ctx.mul(x, y)


def add_relu(ctx, x, y):
    return relu(ctx, ctx.add(x, y))


def identity(ctx, x, *args, **kwargs):
    return x


def stochastic_depth(ctx, x, p, mode, training=True):
    """torchvision's stochastic depth: the identity in eval mode."""
    if training and p > 0:
        raise ctx.error("stochastic_depth with training=True is random")
    return x


def dropout(ctx, x, p=0.5, training=True, inplace=False):
    if training:
        raise ctx.error("F.dropout with training=True is random; pass training=self.training")
    return x


def tanh(ctx, x):
    return ctx.op("tosa.tanh", [x], x.shape, nhwc=x.nhwc)


MODULES = {
    nn.ReLU: lambda ctx, m, x: relu(ctx, x),
    nn.ReLU6: lambda ctx, m, x: relu6(ctx, x),
    nn.Hardtanh: lambda ctx, m, x: hardtanh(ctx, x, m.min_val, m.max_val),
    nn.Hardswish: lambda ctx, m, x: hardswish(ctx, x),
    nn.Hardsigmoid: lambda ctx, m, x: hardsigmoid(ctx, x),
    nn.Sigmoid: lambda ctx, m, x: sigmoid(ctx, x),
    nn.Tanh: lambda ctx, m, x: tanh(ctx, x),
    nn.SiLU: lambda ctx, m, x: silu(ctx, x),
    nn.GELU: lambda ctx, m, x: gelu(ctx, x, m.approximate),
    nn.Dropout: lambda ctx, m, x: x,
    nn.Dropout2d: lambda ctx, m, x: x,
    nn.Identity: lambda ctx, m, x: x,
}

FUNCTIONS = {
    F.relu: relu, torch.relu: relu, F.relu6: relu6, F.hardtanh: hardtanh,
    F.hardswish: hardswish, F.hardsigmoid: hardsigmoid, F.silu: silu,
    torch.sigmoid: sigmoid, F.sigmoid: sigmoid, torch.tanh: tanh, F.tanh: tanh,
    operator.add: add, operator.iadd: add, torch.add: add,
    operator.sub: sub, operator.isub: sub, torch.sub: sub,
    operator.mul: mul, operator.imul: mul, torch.mul: mul,
    operator.truediv: div, operator.itruediv: div, torch.div: div, torch.true_divide: div,
    F.gelu: gelu,
    _add_relu: add_relu,
    F.dropout: dropout,
}
try:  # torchvision's functions, when it is installed
    import torchvision.ops
    FUNCTIONS[torchvision.ops.stochastic_depth] = stochastic_depth
except ImportError:
    pass

METHODS = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
    "add": add, "sub": sub, "mul": mul, "div": div, "contiguous": identity,
}
