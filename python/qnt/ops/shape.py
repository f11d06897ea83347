"""Shape ops: reshape / flatten / view, permute, transpose, concatenation,
split / chunk, indexing (of their results, and basic tensor indexing),
expand, constant padding and resizing (nearest, bilinear)."""

import operator
from fractions import Fraction

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ir
from ..ir import Value
from ._common import NCHW_PERM


def pad(ctx, x, pad, mode="constant", value=None):
    """F.pad with a constant (nn.ZeroPad2d, nn.ConstantPad2d): pad lists
    (before, after) pairs from the last dimension backwards."""
    if mode != "constant":
        raise ctx.error(f"F.pad with mode='{mode}' is not supported (only 'constant')")
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > x.rank or min(pad) < 0:
        raise ctx.error(f"F.pad with padding {tuple(pad)} is not supported "
                        f"(non-negative pairs, at most one per dimension)")
    before, after = [0] * x.rank, [0] * x.rank
    for i in range(len(pad) // 2):  # PyTorch dimension rank - 1 - i
        before[x.rank - 1 - i], after[x.rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    perm = NCHW_PERM if x.nhwc else list(range(x.rank))
    padding, shape = [0] * (2 * x.rank), list(x.shape)
    for d in range(x.rank):  # PyTorch dimension d is dimension perm[d] of x
        padding[2 * perm[d]], padding[2 * perm[d] + 1] = before[d], after[d]
        shape[perm[d]] += before[d] + after[d]
    fill = float(value or 0.0)
    dtype = ir.NUMPY_DTYPES[x.element]
    const = ctx.b.shared_const(("pad", fill, dtype.name), np.full([1], fill, dtype),
                               "pad_value")
    return ctx.op("tosa.pad", [x, ctx.shape(padding), const], tuple(shape), nhwc=x.nhwc,
                  element=x.element)


def _resize_axis(ctx, size_in, size_out, scale_factor, mode, align_corners):
    """tosa.resize's (scale_n, scale_d, offset, border) along one axis, so
    that its source coordinate is PyTorch's: ``floor(o * in / out)`` for
    nearest, ``(o + 0.5) * in / out - 0.5`` for bilinear (``o * (in - 1) /
    (out - 1)`` with align_corners), ``in / out`` being ``1 / scale_factor``
    when the model gave one."""
    if mode == "bilinear" and align_corners and size_in > 1 and size_out > 1:
        ratio = Fraction(size_out - 1, size_in - 1)
    elif scale_factor is not None:
        ratio = Fraction(scale_factor)
        if ratio.limit_denominator(1024) != ratio or ratio <= 0:
            raise ctx.error(f"interpolate with scale_factor={scale_factor} is not "
                            f"supported (a positive ratio of integers up to 1024)")
    else:
        ratio = Fraction(size_out, size_in)
    n, d = 2 * ratio.numerator, 2 * ratio.denominator
    if mode == "bilinear" and align_corners:
        offset = 0
    else:
        offset = -n // 2 if mode == "nearest" else (d - n) // 2
    border = (size_out - 1) * d - (size_in - 1) * n + offset
    return n, d, offset, border


def interpolate(ctx, x, size=None, scale_factor=None, mode="nearest",
                align_corners=None, recompute_scale_factor=None, antialias=False):
    """F.interpolate / nn.Upsample of an NCHW tensor, nearest and bilinear:
    tosa.resize (NHWC) with PyTorch's source coordinates."""
    if mode not in ("nearest", "bilinear") or antialias:
        raise ctx.error(f"interpolate with mode={mode!r}"
                        f"{', antialias' if antialias else ''} is not supported "
                        f"(only 'nearest' and 'bilinear')")
    if x.rank != 4:
        raise ctx.error(f"interpolate needs a 4-D NCHW input, got shape {x.torch_shape}")
    x = ctx.to_nhwc(x)
    out = ctx.out_shape()
    factors = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor] * 2
    if recompute_scale_factor or size is not None:
        factors = [None, None]
    params = [_resize_axis(ctx, x.torch_shape[2 + i], out[2 + i], factors[i], mode,
                           align_corners) for i in range(2)]
    n, c = x.shape[0], x.shape[3]
    attrs = {"mode": "#tosa.resize_mode<%s>" % ("NEAREST_NEIGHBOR" if mode == "nearest"
                                                 else "BILINEAR")}
    return ctx.op("tosa.resize",
                  [x, ctx.shape([params[0][0], params[0][1], params[1][0], params[1][1]]),
                   ctx.shape([params[0][2], params[1][2]]),
                   ctx.shape([params[0][3], params[1][3]])],
                  (n, out[2], out[3], c), attrs, nhwc=True)


def upsample(ctx, m, x):
    """nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d."""
    return interpolate(ctx, x, m.size, m.scale_factor, m.mode, m.align_corners,
                       getattr(m, "recompute_scale_factor", None))


def reshape_to_output(ctx, x, *args, **kwargs):
    """flatten / view / reshape / (un)squeeze: the recorded output shape, PyTorch's element order."""
    return ctx.reshape(x, ctx.out_shape())


def permute(ctx, x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    dims = [int(d) % x.rank for d in dims]
    if x.nhwc:  # compose with NHWC -> NCHW
        return ctx.permute(x, [NCHW_PERM[d] for d in dims])
    return ctx.permute(x, dims)


def transpose(ctx, x, dim0, dim1):
    dims = list(range(x.rank))
    dim0, dim1 = dim0 % x.rank, dim1 % x.rank
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(ctx, x, dims)


def t(ctx, x):
    """``x.t()``: a 2-D transpose (0-D and 1-D tensors unchanged)."""
    return transpose(ctx, x, 0, 1) if x.rank == 2 else x


def cat(ctx, tensors, dim=0):
    rank = len(ctx.out_shape())
    dim %= rank
    nhwc = rank == 4 and any(t.nhwc for t in tensors)
    tensors = [ctx.to_nhwc(t) if nhwc else ctx.to_torch(t) for t in tensors]
    axis = NCHW_PERM[dim] if nhwc else dim
    return ctx.op("tosa.concat", tensors, ctx.out_shape(nhwc),
                  {"axis": ir.i32_attr(axis)}, nhwc=nhwc)


def _split(ctx, x, dim):
    dim %= x.rank
    axis = NCHW_PERM[dim] if x.nhwc else dim
    parts, start = [], 0
    for meta in ctx.out:
        begin, size = [0] * x.rank, list(x.shape)
        begin[axis], size[axis] = start, meta.shape[dim]
        parts.append(ctx.slice(x, begin, size))
        start += meta.shape[dim]
    return tuple(parts)


def chunk(ctx, x, chunks, dim=0):
    return _split(ctx, x, dim)


def split(ctx, x, split_size_or_sections, dim=0):
    return _split(ctx, x, dim)


def _strided(ctx, x, d, start, stop, step):
    """``x`` (PyTorch layout) sliced ``start:stop:step`` along ``d`` (step
    > 1), without a strided slice in TOSA: the window from ``start``, padded
    at the end to a multiple of ``step`` if the image ends first, reshaped
    to (count, step), its first column taken."""
    shape = list(x.shape)
    count = len(range(start, stop, step))
    window = min(count * step, shape[d] - start)
    if window != shape[d]:
        begin, size = [0] * x.rank, list(shape)
        begin[d], size[d] = start, window
        x = ctx.slice(x, begin, size)
    if window < count * step:  # F.pad's pairs run from the last dimension
        x = pad(ctx, x, [0] * (2 * (x.rank - 1 - d)) + [0, count * step - window])
    x = ctx.reshape(x, shape[:d] + [count, step] + shape[d + 1:])
    x = ctx.slice(x, [0] * (x.rank), shape[:d] + [count, 1] + shape[d + 1:])
    return ctx.reshape(x, shape[:d] + [count] + shape[d + 1:])


def getitem(ctx, container, index):
    """A tuple's element, or basic indexing of a tensor: integers and slices
    (``x[:, 0]``, ``x[..., 1:3]``, ``x[:, 0::2]``) as a ``tosa.slice`` and a
    reshape that drops the integer-indexed dims; a slice of step above 1
    first as `_strided`."""
    if not isinstance(container, Value):
        return container[index]
    x = container
    index = index if isinstance(index, tuple) else (index,)
    shape = x.torch_shape
    if index.count(Ellipsis) > 1 or any(
            not isinstance(i, (int, slice)) and i is not Ellipsis for i in index):
        raise ctx.error("tensor indexing with other than integers, slices and one ... "
                        "is not supported")
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) - len(index) + 1) + index[at + 1:]
    begin, size, strided = [0] * len(shape), list(shape), []
    for d, i in enumerate(index):
        if isinstance(i, int):
            if not -shape[d] <= i < shape[d]:
                raise ctx.error(f"index {i} is out of range for dimension {d} of size "
                                f"{shape[d]}")
            begin[d], size[d] = i % shape[d], 1
            continue
        start, stop, step = i.indices(shape[d])
        if step < 1:
            raise ctx.error("tensor slicing with a negative step is not supported")
        if step > 1:
            strided.append((d, start, stop, step))
            size[d] = len(range(start, stop, step))
            continue
        begin[d], size[d] = start, max(0, stop - start)
    if 0 in size:
        raise ctx.error("tensor slicing to an empty tensor is not supported")
    x = ctx.to_torch(x)
    for d, start, stop, step in strided:
        x = _strided(ctx, x, d, start, stop, step)
    if list(size) != list(x.shape):
        x = ctx.slice(x, begin, size)
    return ctx.reshape(x, ctx.out_shape())


def expand(ctx, x, *sizes):
    """``x.expand(...)``: ``tosa.tile`` to the traced shape."""
    return ctx.broadcast(x, ctx.out_shape())


MODULES = {
    nn.Flatten: lambda ctx, m, x: reshape_to_output(ctx, x),
    nn.ZeroPad2d: lambda ctx, m, x: pad(ctx, x, m.padding),
    nn.ConstantPad2d: lambda ctx, m, x: pad(ctx, x, m.padding, "constant", m.value),
    nn.Upsample: upsample, nn.UpsamplingNearest2d: upsample,
    nn.UpsamplingBilinear2d: upsample,
}

FUNCTIONS = {
    torch.cat: cat, torch.concat: cat,
    torch.flatten: reshape_to_output, torch.reshape: reshape_to_output,
    torch.unsqueeze: reshape_to_output, torch.squeeze: reshape_to_output,
    torch.permute: permute, torch.transpose: transpose, torch.t: t,
    torch.chunk: chunk, torch.split: split, operator.getitem: getitem,
    F.pad: pad,
    F.interpolate: interpolate,
}

METHODS = {
    "view": reshape_to_output, "reshape": reshape_to_output, "flatten": reshape_to_output,
    "unsqueeze": reshape_to_output, "squeeze": reshape_to_output,
    "permute": permute, "transpose": transpose, "t": t, "chunk": chunk, "split": split,
    "expand": expand,
}
