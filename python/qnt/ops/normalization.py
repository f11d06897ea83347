"""Normalization: batch norm (folded into a scale and a shift) and layer
norm (over the last dims, in PyTorch's layout)."""

import math

import numpy as np
import torch.nn as nn
import torch.nn.functional as F

from ..ir import Value
from ._common import _param


def batch_norm(ctx, m, x):
    if m.running_mean is None or m.running_var is None:
        raise ctx.error(f"{type(m).__name__} without running statistics is not supported")
    # PyTorch's inference arithmetic, in float32: y = x * alpha + beta.
    mean, var = _param(m.running_mean), _param(m.running_var)
    gamma = _param(m.weight) if m.weight is not None else np.ones_like(mean)
    beta = _param(m.bias) if m.bias is not None else np.zeros_like(mean)
    alpha = np.float32(1) / np.sqrt(var + np.float32(m.eps)) * gamma
    shift = beta - mean * alpha
    rank = len(x.torch_shape)
    if rank == 4:
        x, shape = ctx.to_nhwc(x), (1, 1, 1, -1)
    else:
        x, shape = ctx.to_torch(x), (1, -1) + (1,) * (rank - 2)
    scaled = ctx.mul(x, ctx.const(alpha.reshape(shape), "scale", nhwc=x.nhwc))
    return ctx.add(scaled, ctx.const(shift.reshape(shape), "shift", nhwc=x.nhwc))


def layer_norm(ctx, x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``(x - mean) * rsqrt(var + eps) * weight + bias`` over the last
    ``len(normalized_shape)`` dims (biased variance, as PyTorch)."""
    shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (
        normalized_shape,)
    x = ctx.to_torch(x)
    rank, k = len(x.shape), len(shape)
    if k == 0 or k > rank or tuple(x.shape[rank - k:]) != tuple(shape):
        raise ctx.error(f"layer_norm over {list(shape)} of a tensor of shape {list(x.shape)}")
    dims = tuple(range(rank - k, rank))
    scale = 1.0 / math.prod(shape)
    lead = (1,) * (rank - k)
    params = [(ctx.reshape(value, lead + shape) if isinstance(value, Value) else
               ctx.const(_param(value).reshape(lead + shape), suffix), combine)
              for value, combine, suffix in ((weight, ctx.mul, "weight"), (bias, ctx.add, "bias"))
              if value is not None]
    with ctx.composite("layer_norm"):
        mean = ctx.mul(ctx.reduce("tosa.reduce_sum", x, dims), scale)
        centered = ctx.sub(x, mean)
        var = ctx.mul(ctx.reduce("tosa.reduce_sum", ctx.mul(centered, centered), dims), scale)
        y = ctx.mul(centered, ctx.unary("tosa.rsqrt", ctx.add(var, float(eps))))
        for value, combine in params:
            y = combine(y, value)
    return y


def layer_norm_module(ctx, m, x):
    return layer_norm(ctx, x, m.normalized_shape, m.weight, m.bias, m.eps)


MODULES = {
    nn.BatchNorm1d: batch_norm, nn.BatchNorm2d: batch_norm,
    nn.LayerNorm: layer_norm_module,
}
FUNCTIONS = {F.layer_norm: layer_norm}
METHODS = {}
