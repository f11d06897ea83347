"""Elementwise ops and activations: relu / relu6 / hardtanh (clamps), sigmoid,
SiLU, hardsigmoid, hardswish, tanh, GELU (erf and tanh forms), add / sub /
mul / div, dropout and stochastic depth (identities in eval mode); on masks
and integers: comparisons, logical not / and / or, dtype conversions,
``torch.where`` and ``masked_fill``."""

import math
import operator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ir import F32_MAX, Value
from ._common import ELEMENTS, promote


def _add_relu(x, y):
    """FloatFunctional.add_relu, as the tracer records it."""
    return F.relu(torch.add(x, y))


def relu(ctx, x, inplace=False):
    return ctx.clamp(x, 0.0, F32_MAX)


def relu6(ctx, x, inplace=False):
    return ctx.clamp(x, 0.0, 6.0)


def hardtanh(ctx, x, min_val=-1.0, max_val=1.0, inplace=False):
    return ctx.clamp(x, min_val, max_val)


def clamp(ctx, x, min=None, max=None):
    """``torch.clamp`` / ``x.clamp`` with number bounds."""
    if isinstance(min, Value) or isinstance(max, Value):
        raise ctx.error("clamp with tensor bounds is not supported")
    return ctx.clamp(x, -F32_MAX if min is None else min, F32_MAX if max is None else max)


def neg(ctx, x):
    return ctx.mul(x, -1.0)


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


def _unary(name):
    def handler(ctx, x):
        return ctx.unary(name, x)
    return handler


exp, log, rsqrt, absolute, reciprocal = (_unary(f"tosa.{n}") for n in (
    "exp", "log", "rsqrt", "abs", "reciprocal"))


def pow_(ctx, x, exponent):
    """``x ** n``: small integer powers as products (PyTorch computes x * x
    for 2, exactly), 0.5 and others as ``tosa.pow``."""
    if isinstance(exponent, Value) or not isinstance(x, Value):
        raise ctx.error("pow of a tensor exponent or a number base is not supported")
    if exponent in (1, 2, 3):
        result = x
        for _ in range(int(exponent) - 1):
            result = ctx.mul(result, x)
        return result
    return ctx.binary("tosa.pow", x, float(exponent))


def sqrt(ctx, x):
    return pow_(ctx, x, 0.5)


# -- comparisons, masks, dtypes -----------------------------------------------

def _compare(name, swap=False, negate=False):
    """``a <op> b`` as ``tosa.equal/greater/greater_equal`` (``lt``/``le``
    swap the operands, ``ne`` negates ``eq``)."""
    def handler(ctx, x, other):
        a, b = (other, x) if swap else (x, other)
        result = ctx.binary(name, a, b, element="i1")
        return ctx.unary("tosa.logical_not", result) if negate else result
    return handler


eq = _compare("tosa.equal")
ne = _compare("tosa.equal", negate=True)
gt = _compare("tosa.greater")
ge = _compare("tosa.greater_equal")
lt = _compare("tosa.greater", swap=True)
le = _compare("tosa.greater_equal", swap=True)


def _require_bool(ctx, what, *values):
    for v in values:
        if isinstance(v, Value) and v.element != "i1":
            raise ctx.error(f"{what} of a {v.element} tensor is not supported (bool only)")


def logical_not(ctx, x):
    _require_bool(ctx, "~ / logical_not", x)
    return ctx.unary("tosa.logical_not", x)


def logical_and(ctx, x, other):
    _require_bool(ctx, "& / logical_and", x, other)
    return ctx.binary("tosa.logical_and", x, other)


def logical_or(ctx, x, other):
    _require_bool(ctx, "| / logical_or", x, other)
    return ctx.binary("tosa.logical_or", x, other)


def to_dtype(ctx, x, *args, **kwargs):
    """``x.to(...)``, ``.float()``, ``.long()``, ``.int()``, ``.bool()``,
    ``.type_as(y)``: a conversion to the traced dtype (devices and copies
    are no-ops)."""
    return ctx.cast(x, ELEMENTS[ctx.out.dtype])


def where(ctx, condition, x, y):
    """``torch.where(condition, x, y)`` (x and y tensors or numbers)."""
    _require_bool(ctx, "torch.where", condition)
    element = promote(v.element for v in (x, y) if isinstance(v, Value)) if any(
        isinstance(v, Value) for v in (x, y)) else "f32"
    x, y = (ctx.cast(v, element) if isinstance(v, Value) else ctx.scalar(v, element, 1)
            for v in (x, y))
    return _select(ctx, condition, x, y)


def _select(ctx, condition, x, y):
    operands = [condition, x, y]
    rank = max(v.rank for v in operands)
    operands = [ctx.to_torch(v) for v in operands]
    operands = [ctx.reshape(v, (1,) * (rank - v.rank) + v.shape) for v in operands]
    shape = np.broadcast_shapes(*(v.shape for v in operands))
    return ctx.op("tosa.select", operands, shape)


def masked_fill(ctx, x, mask, value):
    """``x.masked_fill(mask, value)``: ``value`` where ``mask`` is true."""
    _require_bool(ctx, "masked_fill", mask)
    fill = ctx.cast(value, x.element) if isinstance(value, Value) else ctx.scalar(
        value, x.element, 1)
    return _select(ctx, mask, fill, x)


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
    operator.eq: eq, torch.eq: eq, operator.ne: ne, torch.ne: ne,
    operator.gt: gt, torch.gt: gt, operator.ge: ge, torch.ge: ge,
    operator.lt: lt, torch.lt: lt, operator.le: le, torch.le: le,
    operator.invert: logical_not, torch.logical_not: logical_not,
    operator.and_: logical_and, torch.logical_and: logical_and,
    operator.or_: logical_or, torch.logical_or: logical_or,
    torch.where: where, torch.masked_fill: masked_fill,
    torch.clamp: clamp, torch.clip: clamp, operator.neg: neg, torch.neg: neg,
    torch.exp: exp, torch.log: log, torch.rsqrt: rsqrt, torch.abs: absolute,
    torch.reciprocal: reciprocal, torch.pow: pow_, operator.pow: pow_, torch.sqrt: sqrt,
}
try:  # torchvision's functions, when it is installed
    import torchvision.ops
    FUNCTIONS[torchvision.ops.stochastic_depth] = stochastic_depth
except ImportError:
    pass

METHODS = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
    "add": add, "sub": sub, "mul": mul, "div": div, "contiguous": identity,
    "eq": eq, "ne": ne, "gt": gt, "ge": ge, "lt": lt, "le": le,
    "logical_not": logical_not, "logical_and": logical_and, "logical_or": logical_or,
    "to": to_dtype, "float": to_dtype, "long": to_dtype, "int": to_dtype, "bool": to_dtype,
    "type_as": to_dtype,
    "masked_fill": masked_fill, "masked_fill_": masked_fill,
    "clamp": clamp, "clip": clamp, "neg": neg,
    "exp": exp, "log": log, "rsqrt": rsqrt, "abs": absolute, "reciprocal": reciprocal,
    "pow": pow_, "sqrt": sqrt,
}
