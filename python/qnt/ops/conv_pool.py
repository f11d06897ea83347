"""Convolution (2-D, and 1-D as 2-D of height 1), linear layers, pooling
and reductions over axes (mean, amax, amin)."""

import math
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ir
from ..ir import Value
from ._common import ELEMENTS, _normalize_dims, _pair, _param


def _reduce(name):
    """Tensor.amax / amin / sum (torch.amax / amin / sum): tosa.reduce_max /
    reduce_min / reduce_sum, in the traced output's dtype (a bool mask sums
    to int64)."""
    def handler(ctx, x, dim=(), keepdim=False, dtype=None):
        x = ctx.cast(x, ELEMENTS[ctx.out.dtype])
        rank = len(x.torch_shape)
        dims = _normalize_dims(range(rank) if dim in ((), None) else
                               (dim if isinstance(dim, (tuple, list)) else [dim]), rank)
        y = ctx.reduce(name, x, dims)
        return y if keepdim else ctx.reshape(y, ctx.out_shape())
    return handler


amax, amin = _reduce("tosa.reduce_max"), _reduce("tosa.reduce_min")
reduce_sum = _reduce("tosa.reduce_sum")


def mean(ctx, x, dim=None, keepdim=False, dtype=None):
    rank = len(x.torch_shape)
    dims = _normalize_dims(range(rank) if dim is None else
                           (dim if isinstance(dim, (tuple, list)) else [dim]), rank)
    if rank == 4 and dims == (2, 3):  # global average pooling
        x = ctx.to_nhwc(x)
        n, h, w, c = x.shape
        y = ctx.avg_pool(x, (h, w), (h, w), (0, 0, 0, 0), (n, 1, 1, c))
    else:
        y = ctx.reduce("tosa.reduce_sum", x, dims)
        y = ctx.mul(y, 1.0 / math.prod(x.torch_shape[d] for d in dims))
    return y if keepdim else ctx.reshape(y, ctx.out_shape())


def max_pool2d(ctx, x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False, return_indices=False):
    if return_indices or _pair(dilation) != (1, 1):
        raise ctx.error("max_pool2d with dilation or return_indices is not supported")
    kernel = _pair(kernel_size)
    stride = _pair(stride) if stride else kernel
    ph, pw = _pair(padding)
    x = ctx.to_nhwc(x)
    out = ctx.out_shape(nhwc=True)
    x, pad = ctx.fit_windows(x, (ph, ph, pw, pw), kernel, stride, out[1:3])
    return ctx.op("tosa.max_pool2d", [x], out,
                  {"kernel": ir.i64_array(kernel), "stride": ir.i64_array(stride),
                   "pad": ir.i64_array(pad)}, nhwc=True)


def avg_pool2d(ctx, x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    if divisor_override:
        raise ctx.error("avg_pool2d with divisor_override is not supported")
    kernel = _pair(kernel_size)
    stride = _pair(stride) if stride else kernel
    ph, pw = _pair(padding)
    pad = (ph, ph, pw, pw)
    x = ctx.to_nhwc(x)
    if count_include_pad and any(pad):
        # TOSA never counts padding in the divisor: pad explicitly with zeros.
        x, pad = ctx.pad(x, pad), (0, 0, 0, 0)
    out = ctx.out_shape(nhwc=True)
    x, pad = ctx.fit_windows(x, pad, kernel, stride, out[1:3])
    return ctx.avg_pool(x, kernel, stride, pad, out)


def adaptive_avg_pool2d(ctx, x, output_size):
    x = ctx.to_nhwc(x)
    out = ctx.out_shape(nhwc=True)
    (h, w), (oh, ow) = x.shape[1:3], out[1:3]
    if h % oh or w % ow:
        raise ctx.error(f"adaptive_avg_pool2d from {h}x{w} to {oh}x{ow} is not supported "
                        f"(the input size must be a multiple of the output size)")
    kernel = (h // oh, w // ow)
    return ctx.avg_pool(x, kernel, kernel, (0, 0, 0, 0), out)


def _conv_padding(m):
    """[top, bottom, left, right] of a Conv2d (padding may be 'same'/'valid')."""
    if m.padding == "valid":
        return (0, 0, 0, 0)
    if m.padding == "same":
        pads = []
        for d, k in zip(m.dilation, m.kernel_size):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    ph, pw = m.padding
    return (ph, ph, pw, pw)


def conv2d(ctx, m, x, out=None):
    """``out``: the NHWC output shape (default: the node's)."""
    if m.padding_mode != "zeros":
        raise ctx.error(f"{type(m).__name__} with padding_mode={m.padding_mode!r} is not "
                        f"supported")
    x = ctx.to_nhwc(x)
    channels = x.shape[3]
    weight = _param(m.weight)  # OIHW
    oc, _, kh, kw = weight.shape
    bias = _param(m.bias) if m.bias is not None else np.zeros([oc], np.float32)
    pad, groups = _conv_padding(m), m.groups
    out = out or ctx.out_shape(nhwc=True)
    attrs = {"stride": ir.i64_array(m.stride), "dilation": ir.i64_array(m.dilation)}
    window = [d * (k - 1) + 1 for d, k in zip(m.dilation, (kh, kw))]
    tosa_pad, size = ctx.tosa_windows(x.shape, pad, window, m.stride, out[1:3])
    if groups == 1 and list(x.shape) == size:
        name, weight = "tosa.conv2d", weight.transpose(0, 2, 3, 1)  # OHWI
    elif groups == channels and list(x.shape) == size:
        # depthwise: w[kh, kw, c, m] = w_pt[c * M + m, 0, kh, kw]
        name = "tosa.depthwise_conv2d"
        weight = weight.reshape(channels, oc // channels, kh, kw).transpose(2, 3, 0, 1)
    else:
        # Other groups, or windows TOSA cannot express without copying a
        # slice of the input (a 1x1 stride-2 conv on an even size):
        # qnt.conv2d takes PyTorch's padding as it is.
        attrs.update(pad=ir.i64_array(pad), groups=ir.i64_attr(groups))
        return ctx.op("qnt.conv2d", [x, ctx.const(weight.transpose(0, 2, 3, 1), "weight"),
                                     ctx.const(bias, "bias")], out, attrs, nhwc=True)
    pad = tosa_pad
    zp = ctx.b.zero_point()
    attrs.update(pad=ir.i64_array(pad), acc_type="f32")
    return ctx.op(name, [x, ctx.const(weight, "weight"), ctx.const(bias, "bias"), zp, zp],
                  out, attrs, nhwc=True)


def conv1d(ctx, m, x):
    """nn.Conv1d as a Conv2d over [N, C, 1, L] (height 1)."""
    n, _, length = ctx.out_shape()
    as_2d = types.SimpleNamespace(
        weight=m.weight.unsqueeze(2), bias=m.bias, groups=m.groups,
        padding_mode=m.padding_mode, kernel_size=(1,) + tuple(m.kernel_size),
        stride=(1,) + tuple(m.stride), dilation=(1,) + tuple(m.dilation),
        padding=m.padding if isinstance(m.padding, str) else (0,) + tuple(m.padding))
    x = ctx.reshape(ctx.to_torch(x), x.torch_shape[:2] + (1, x.torch_shape[2]))
    y = conv2d(ctx, as_2d, x, out=(n, 1, length, m.out_channels))
    return ctx.reshape(ctx.to_torch(y), ctx.out_shape())


def _linear(ctx, x, weight, bias, float_in_pytorch=False):
    """``x @ weight^T + bias`` in the form --qnt-fuse lifts into qnt.linear:
    reshape to [1, M, K] -> tosa.matmul with [1, K, N] -> reshape -> add.
    ``weight`` is a [N, K] array or an already emitted [1, K, N] constant,
    ``bias`` a [N] array, a [1, N] constant or None. ``float_in_pytorch``
    marks a linear that is not an ``nn.Linear`` module, which PyTorch's
    quantize_dynamic leaves in float (the matmul's qnt.float_in_pytorch)."""
    x = ctx.to_torch(x)
    *lead, k = x.shape
    rows = math.prod(lead)
    w = weight if isinstance(weight, Value) else ctx.const(weight.T.reshape(1, k, -1), "weight")
    n = w.shape[2]
    a = ctx.reshape(x, (1, rows, k))
    zp = ctx.b.zero_point()
    attrs = {"qnt.float_in_pytorch": "unit"} if float_in_pytorch else None
    y = ctx.reshape(ctx.op("tosa.matmul", [a, w, zp, zp], (1, rows, n), attrs), (rows, n))
    if bias is not None:
        y = ctx.add(y, bias if isinstance(bias, Value) else ctx.const(bias.reshape(1, n), "bias"))
    return ctx.reshape(y, (*lead, n))


def linear(ctx, m, x):
    # A subclass (MultiheadAttention's NonDynamicallyQuantizableLinear out_proj)
    # is not swapped by quantize_dynamic, which matches module types exactly.
    return _linear(ctx, x, _param(m.weight), _param(m.bias) if m.bias is not None else None,
                   float_in_pytorch=type(m) is not nn.Linear)


MODULES = {
    nn.Conv2d: conv2d,
    nn.Conv1d: conv1d,
    nn.Linear: linear,
    nn.MaxPool2d: lambda ctx, m, x: max_pool2d(
        ctx, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices),
    nn.AvgPool2d: lambda ctx, m, x: avg_pool2d(
        ctx, x, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
        m.divisor_override),
    nn.AdaptiveAvgPool2d: lambda ctx, m, x: adaptive_avg_pool2d(ctx, x, m.output_size),
}

FUNCTIONS = {
    torch.mean: mean, torch.sum: reduce_sum,
    F.max_pool2d: max_pool2d, F.avg_pool2d: avg_pool2d,
    F.adaptive_avg_pool2d: adaptive_avg_pool2d,
    torch.amax: amax, torch.amin: amin,
}

METHODS = {"mean": mean, "amax": amax, "amin": amin, "sum": reduce_sum}
