"""Normalization: batch norm (folded into a scale and a shift)."""

import numpy as np
import torch.nn as nn

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


MODULES = {nn.BatchNorm1d: batch_norm, nn.BatchNorm2d: batch_norm}
FUNCTIONS = {}
METHODS = {}
