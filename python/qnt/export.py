"""PyTorch nn.Module -> FP32 TOSA MLIR for quant-opt.

Pipeline: ``torch.fx`` symbolic trace (eval mode) -> one run of the traced
graph on the example inputs, recording every node's output shape (and the
value of shape computations such as ``x.size(0)``) -> one pass over the
nodes, each mapped to MLIR by a handler looked up in ``MODULES`` (by module
type), ``FUNCTIONS`` (by function) or ``METHODS`` (by tensor method name).

Layout: the function takes and returns PyTorch layouts; 4-D activations are
NHWC inside (``Value.nhwc``).  Conversions are emitted where a value changes
layout: NCHW -> NHWC in front of the first op that needs NHWC (conv, pool,
batch norm, quant stub), NHWC -> NCHW in front of ops that need PyTorch's
element order (flatten, view, permute, linear, ...) and at the return.
"""

import copy
import dis
import inspect
import math
import operator
from collections import OrderedDict, namedtuple
from fractions import Fraction

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.intrinsic.qat as nniqat
import torch.nn.qat as nnqat
from torch.ao.quantization import DeQuantStub, QuantStub
from torch.ao.quantization.fake_quantize import (FakeQuantize, FakeQuantizeBase,
                                                 FixedQParamsFakeQuantize,
                                                 FusedMovingAvgObsFakeQuantize)
from torch.nn.quantized import FloatFunctional

from . import ir
from ._files import atomic_output
from .ir import F32_MAX, Value


class ExportError(Exception):
    """The model cannot be exported (the message says what and where)."""


ExportInfo = namedtuple("ExportInfo", "inputs outputs")
ExportInfo.__doc__ = """What `export` wrote: ``inputs`` is a list of (qnt.name, shape),
``outputs`` a list of shapes, all in PyTorch layout."""

TensorMeta = namedtuple("TensorMeta", "shape dtype")

NHWC_PERM = (0, 2, 3, 1)   # NCHW value -> NHWC
NCHW_PERM = (0, 3, 1, 2)   # NHWC value -> NCHW; also: PyTorch dim d is NHWC axis NCHW_PERM[d]


def _nhwc_shape(shape):
    return tuple(shape[p] for p in NHWC_PERM)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _keeps_order(shape, perm):
    """True if transposing ``shape`` by ``perm`` only moves size-1 dims (a reshape)."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def _qualified_name(obj):
    """``torch.nn.LSTM``, ``torch.nn.functional.gelu``, ``mypkg.MyModule``."""
    name = getattr(obj, "__name__", repr(obj))
    for namespace, prefix in ((nn, "torch.nn"), (F, "torch.nn.functional"), (torch, "torch")):
        if getattr(namespace, name, None) is obj:
            return f"{prefix}.{name}"
    module = getattr(obj, "__module__", None)
    return f"{module}.{getattr(obj, '__qualname__', name)}" if module else name


# ---------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------

def _add_relu(x, y):
    """FloatFunctional.add_relu."""
    return F.relu(torch.add(x, y))


# FloatFunctional methods, recorded as one call of an equivalent function
# located at the FloatFunctional's module path (not as the ops inside).
_FLOAT_FUNCTIONAL = {"add": torch.add, "mul": torch.mul, "cat": torch.cat,
                     "add_scalar": torch.add, "mul_scalar": torch.mul,
                     "add_relu": _add_relu}


class _Tracer(fx.Tracer):
    """fx tracer that keeps the handled modules whole, records the module
    path each node comes from, and unpacks ``a, b = proxy`` on Python 3.11."""

    def __init__(self):
        super().__init__()
        self._scopes = [""]

    def is_leaf_module(self, m, qualname):
        return type(m) in MODULES or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        self._scopes.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._scopes.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["qnt_scope"] = self._scopes[-1]
        return node

    def iter(self, obj):
        # torch 1.13's Proxy.__iter__ finds UNPACK_SEQUENCE with an instruction
        # index that is wrong on Python 3.11: look it up by byte offset.
        frame = inspect.currentframe().f_back.f_back  # user code -> Proxy.__iter__
        for inst in dis.get_instructions(frame.f_code):
            if inst.offset == frame.f_lasti and inst.opname == "UNPACK_SEQUENCE":
                return (obj[i] for i in range(inst.argval))
        return super().iter(obj)

    def _float_functional_method(self, fn):
        tracer = self

        def method(ff, *args, **kwargs):
            proxy = tracer.create_proxy("call_function", fn, args, kwargs)
            proxy.node.meta["qnt_path"] = tracer.path_of_module(ff)
            return proxy
        return method

    def trace(self, root, concrete_args=None):
        originals = {name: getattr(FloatFunctional, name) for name in _FLOAT_FUNCTIONAL}
        proxy_iter = fx.Proxy.__iter__
        try:
            for name, fn in _FLOAT_FUNCTIONAL.items():
                setattr(FloatFunctional, name, self._float_functional_method(fn))
            # torch 1.13's Proxy.__iter__ indexes the instruction list by
            # f_lasti // 2, out of range on Python 3.11 (e.g. ``out, (h, c) =
            # self.lstm(x)``): go straight to iter() (user code -> lambda -> iter).
            fx.Proxy.__iter__ = lambda proxy: proxy.tracer.iter(proxy)
            return super().trace(root, concrete_args)
        finally:
            fx.Proxy.__iter__ = proxy_iter
            for name, method in originals.items():
                setattr(FloatFunctional, name, method)


def _trace(module):
    parameters = inspect.signature(module.forward).parameters.values()
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        raise ExportError(f"{_qualified_name(type(module))}.forward(*args) cannot be traced: "
                          f"give forward() one named parameter per input")
    if type(module) in MODULES:  # fx never keeps the root whole: wrap it
        module = nn.Sequential(OrderedDict([(type(module).__name__, module)]))
    try:
        graph = _Tracer().trace(module)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"torch.fx cannot trace {_qualified_name(type(module))}: {e}") from e
    gm = fx.GraphModule(module, graph)
    gm.__dict__["qnt_root"] = module  # the traced module, with its FloatFunctionals
    return gm


def _describe(value):
    if isinstance(value, torch.Tensor):
        return TensorMeta(tuple(value.shape), value.dtype)
    if isinstance(value, list):
        return [_describe(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_describe(v) for v in value)
    return value


def _has_tensor(meta):
    if isinstance(meta, TensorMeta):
        return True
    return isinstance(meta, (list, tuple)) and any(_has_tensor(m) for m in meta)


def _tensor_metas(meta):
    if isinstance(meta, TensorMeta):
        yield meta
    elif isinstance(meta, (list, tuple)):
        for m in meta:
            yield from _tensor_metas(m)


class _Recorder(fx.Interpreter):
    """Runs the traced graph once; stores each node's output as meta["qnt_out"]
    (TensorMeta for tensors, the value itself for shapes and numbers)."""

    def run_node(self, node):
        result = super().run_node(node)
        node.meta["qnt_out"] = _describe(result)
        return result


# ---------------------------------------------------------------------------
# Emission context
# ---------------------------------------------------------------------------

# Nodes that may turn a tensor into a Python value: shape queries only.
_SHAPE_METHODS = {"size", "dim", "numel", "nelement", "ndimension"}
_SHAPE_FUNCTIONS = {getattr, len}


def _location(node):
    """The PyTorch path an op comes from: the module's qualified name, or
    ``<enclosing module>.<node name>`` for functions and methods."""
    if "qnt_path" in node.meta:
        return node.meta["qnt_path"]
    if node.op in ("call_module", "get_attr", "placeholder"):
        return str(node.target)
    scope = node.meta.get("qnt_scope", "")
    return f"{scope}.{node.name}" if scope else node.name


class _Emitter:
    """State while converting one graph; handlers call its helpers."""

    def __init__(self, gm):
        self.gm = gm
        self.b = ir.FunctionBuilder("main")
        self.node = None
        self.loc = None
        self._converted = {}  # (value name, perm, nhwc) -> Value
        self.qat_grid = {}    # QAT: value name -> the FakeQuantize whose grid it is on

    # -- the node being converted ------------------------------------------

    @property
    def out(self):
        """Recorded output of the current node (TensorMeta or structure)."""
        return self.node.meta["qnt_out"]

    def out_shape(self, nhwc=False):
        shape = self.out.shape
        return _nhwc_shape(shape) if nhwc else shape

    def error(self, message):
        return ExportError(f"{message} at '{self.loc}'")

    # -- emission ------------------------------------------------------------

    def op(self, name, operands, shape, attrs=None, nhwc=False, hint=None):
        return self.b.op(name, operands, shape, attrs, loc=self.loc,
                         hint=hint or self.loc, nhwc=nhwc)

    def const(self, array, suffix="const", nhwc=False):
        value = self.b.const(np.asarray(array, np.float32), loc=self.loc,
                             hint=f"{self.loc}.{suffix}")
        value.nhwc = nhwc
        return value

    def shape(self, dims):
        return self.b.shape(dims)

    # -- layouts -------------------------------------------------------------

    def permute(self, v, perm, nhwc=False):
        """``v`` transposed by ``perm`` (a reshape if only size-1 dims move)."""
        perm = tuple(perm)
        key = (v.name, perm, nhwc)
        if key not in self._converted:
            shape = tuple(v.shape[p] for p in perm)
            if perm == tuple(range(v.rank)):
                result = Value(v.name, v.type, shape, nhwc)
            elif _keeps_order(v.shape, perm):
                result = self.op("tosa.reshape", [v, self.shape(shape)], shape, nhwc=nhwc)
            else:
                result = self.op("tosa.transpose", [v], shape,
                                 {"perms": ir.i32_array(perm)}, nhwc=nhwc)
            self._converted[key] = result
        return self._converted[key]

    def to_nhwc(self, v):
        if v.rank != 4 or v.nhwc:
            return v
        return self.permute(v, NHWC_PERM, nhwc=True)

    def to_torch(self, v):
        return self.permute(v, NCHW_PERM) if v.nhwc else v

    def reshape(self, v, shape):
        """``v`` (any layout) reshaped in PyTorch's element order."""
        shape = tuple(int(d) for d in shape)
        if v.nhwc and not _keeps_order(v.shape, NCHW_PERM):
            v = self.to_torch(v)
        if v.shape == shape:
            return Value(v.name, v.type, shape)
        return self.op("tosa.reshape", [v, self.shape(shape)], shape)

    def slice(self, v, begin, size):
        return self.op("tosa.slice", [v, self.shape(begin), self.shape(size)], size,
                       nhwc=v.nhwc)

    # -- elementwise -------------------------------------------------------

    def binary(self, name, a, b):
        """``tosa.add/sub/mul`` with PyTorch broadcasting; a or b may be a number."""
        rank = max(len(x.torch_shape) for x in (a, b) if isinstance(x, Value))
        nhwc = rank == 4 and any(isinstance(x, Value) and x.nhwc for x in (a, b))

        def operand(x):
            if not isinstance(x, Value):
                return self.b.shared_const(("scalar", rank, float(np.float32(x))),
                                           np.full([1] * rank, x, np.float32), "scalar")
            if len(x.torch_shape) < rank:
                x = self.reshape(x, (1,) * (rank - len(x.torch_shape)) + x.torch_shape)
            return self.to_nhwc(x) if nhwc else self.to_torch(x)

        operands = [operand(a), operand(b)]
        shape = np.broadcast_shapes(*(x.shape for x in operands))
        if name == "tosa.mul":
            operands.append(self.b.mul_shift())
        return self.op(name, operands, shape, nhwc=nhwc)

    def add(self, a, b):
        return self.binary("tosa.add", a, b)

    def mul(self, a, b):
        return self.binary("tosa.mul", a, b)

    def clamp(self, x, lo, hi):
        return self.op("tosa.clamp", [x], x.shape,
                       {"min_val": ir.f32_attr(lo), "max_val": ir.f32_attr(hi)}, nhwc=x.nhwc)

    # -- windows (conv, pool) ----------------------------------------------

    @staticmethod
    def tosa_windows(shape, pad, window, stride, out_hw):
        """TOSA needs ``in + pad_top + pad_bottom - window`` to be exactly
        ``(out - 1) * stride``: the bottom/right padding that gives this, and
        the input size to keep (rows and columns PyTorch never reads are
        dropped when the padding is not enough; ceil_mode windows get more
        padding)."""
        pad = list(pad)
        size = list(shape)
        for i in range(2):
            extra = (out_hw[i] - 1) * stride[i] + window[i] - size[1 + i] - pad[2 * i]
            if extra < 0:
                size[1 + i] += extra
                extra = 0
            pad[2 * i + 1] = extra
        return pad, size

    def fit_windows(self, x, pad, window, stride, out_hw):
        """`tosa_windows`, slicing the input when rows must be dropped."""
        pad, size = self.tosa_windows(x.shape, pad, window, stride, out_hw)
        if list(x.shape) != size:
            x = self.slice(x, [0, 0, 0, 0], size)
        return x, pad

    def pad(self, x, pad):
        """Zero padding of an NHWC value, pad = [top, bottom, left, right]."""
        padding = [0, 0, pad[0], pad[1], pad[2], pad[3], 0, 0]
        n, h, w, c = x.shape
        shape = (n, h + pad[0] + pad[1], w + pad[2] + pad[3], c)
        return self.op("tosa.pad", [x, self.shape(padding), self.b.zero_point()], shape,
                       nhwc=True)

    def avg_pool(self, x, kernel, stride, pad, out):
        zp = self.b.zero_point()
        return self.op("tosa.avg_pool2d", [x, zp, zp], out,
                       {"kernel": ir.i64_array(kernel), "stride": ir.i64_array(stride),
                        "pad": ir.i64_array(pad), "acc_type": "f32"}, nhwc=True)


# ---------------------------------------------------------------------------
# Op handlers: handler(ctx, *args, **kwargs) for functions and methods (the
# same signature as PyTorch's), handler(ctx, module, *args) for modules.
# ---------------------------------------------------------------------------

def _normalize_dims(dims, rank):
    return tuple(sorted(int(d) % rank for d in dims))


# -- activations -------------------------------------------------------------

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


# -- elementwise -------------------------------------------------------------

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
    const = ctx.b.shared_const(("pad", fill), np.full([1], fill, np.float32), "pad_value")
    return ctx.op("tosa.pad", [x, ctx.shape(padding), const], tuple(shape), nhwc=x.nhwc)


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


def _reduce(name):
    """Tensor.amax / amin (torch.amax / amin): tosa.reduce_max / reduce_min."""
    def handler(ctx, x, dim=(), keepdim=False):
        rank = len(x.torch_shape)
        dims = _normalize_dims(range(rank) if dim in ((), None) else
                               (dim if isinstance(dim, (tuple, list)) else [dim]), rank)
        y = x
        for d in dims:
            axis = NCHW_PERM[d] if x.nhwc else d
            shape = list(y.shape)
            shape[axis] = 1
            y = ctx.op(name, [y], shape, {"axis": ir.i32_attr(axis)}, nhwc=x.nhwc)
        return y if keepdim else ctx.reshape(y, ctx.out_shape())
    return handler


amax, amin = _reduce("tosa.reduce_max"), _reduce("tosa.reduce_min")


def stochastic_depth(ctx, x, p, mode, training=True):
    """torchvision's stochastic depth: the identity in eval mode."""
    if training and p > 0:
        raise ctx.error("stochastic_depth with training=True is random")
    return x


def dropout(ctx, x, p=0.5, training=True, inplace=False):
    if training:
        raise ctx.error("F.dropout with training=True is random; pass training=self.training")
    return x


# -- shapes and data movement -----------------------------------------------

def reshape_to_output(ctx, x, *args, **kwargs):
    """flatten / view / reshape: the recorded output shape, PyTorch's element order."""
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


def getitem(ctx, container, index):
    if isinstance(container, Value):
        raise ctx.error("tensor indexing / slicing (x[...]) is not supported")
    return container[index]


def mean(ctx, x, dim=None, keepdim=False, dtype=None):
    rank = len(x.torch_shape)
    dims = _normalize_dims(range(rank) if dim is None else
                           (dim if isinstance(dim, (tuple, list)) else [dim]), rank)
    if rank == 4 and dims == (2, 3):  # global average pooling
        x = ctx.to_nhwc(x)
        n, h, w, c = x.shape
        y = ctx.avg_pool(x, (h, w), (h, w), (0, 0, 0, 0), (n, 1, 1, c))
    else:
        axes = [NCHW_PERM[d] if x.nhwc else d for d in dims]
        y = x
        for axis in axes:
            shape = list(y.shape)
            shape[axis] = 1
            y = ctx.op("tosa.reduce_sum", [y], shape, {"axis": ir.i32_attr(axis)}, nhwc=x.nhwc)
        y = ctx.mul(y, 1.0 / math.prod(x.shape[a] for a in axes))
    return y if keepdim else ctx.reshape(y, ctx.out_shape())


# -- pooling -------------------------------------------------------------------

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


# -- modules with parameters -------------------------------------------------

def _param(t):
    return t.detach().cpu().numpy().astype(np.float32)


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


def conv2d(ctx, m, x):
    if m.padding_mode != "zeros":
        raise ctx.error(f"Conv2d with padding_mode={m.padding_mode!r} is not supported")
    x = ctx.to_nhwc(x)
    channels = x.shape[3]
    weight = _param(m.weight)  # OIHW
    oc, _, kh, kw = weight.shape
    bias = _param(m.bias) if m.bias is not None else np.zeros([oc], np.float32)
    pad, groups, out = _conv_padding(m), m.groups, ctx.out_shape(nhwc=True)
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


def _linear(ctx, x, weight, bias):
    """``x @ weight^T + bias`` in the form --qnt-fuse lifts into qnt.linear:
    reshape to [1, M, K] -> tosa.matmul with [1, K, N] -> reshape -> add.
    ``weight`` is a [N, K] array or an already emitted [1, K, N] constant,
    ``bias`` a [N] array, a [1, N] constant or None."""
    x = ctx.to_torch(x)
    *lead, k = x.shape
    rows = math.prod(lead)
    w = weight if isinstance(weight, Value) else ctx.const(weight.T.reshape(1, k, -1), "weight")
    n = w.shape[2]
    a = ctx.reshape(x, (1, rows, k))
    zp = ctx.b.zero_point()
    y = ctx.reshape(ctx.op("tosa.matmul", [a, w, zp, zp], (1, rows, n)), (rows, n))
    if bias is not None:
        y = ctx.add(y, bias if isinstance(bias, Value) else ctx.const(bias.reshape(1, n), "bias"))
    return ctx.reshape(y, (*lead, n))


def linear(ctx, m, x):
    return _linear(ctx, x, _param(m.weight), _param(m.bias) if m.bias is not None else None)


# -- recurrent layers (unrolled over the static sequence length) -------------

def tanh(ctx, x):
    return ctx.op("tosa.tanh", [x], x.shape, nhwc=x.nhwc)


def _rnn_cell_lstm(ctx, gates, h, c, hidden):
    """PyTorch's LSTMCell on the summed gates [B, 4H] (order i, f, g, o)."""
    rows = gates.shape[0]
    i, f, g, o = (ctx.slice(gates, [0, j * hidden], [rows, hidden]) for j in range(4))
    i, f, g, o = sigmoid(ctx, i), sigmoid(ctx, f), tanh(ctx, g), sigmoid(ctx, o)
    c = ctx.mul(i, g) if c is None else ctx.add(ctx.mul(f, c), ctx.mul(i, g))
    return ctx.mul(o, tanh(ctx, c)), c


def _rnn_cell_gru(ctx, gi, gh, h, hidden):
    """PyTorch's GRUCell: gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh (order r, z, n);
    h' = (h - n) * z + n, as ATen computes it."""
    part = lambda v, j: ctx.slice(v, [0, j * hidden], [v.shape[0], hidden])  # noqa: E731
    r = sigmoid(ctx, ctx.add(part(gi, 0), part(gh, 0)))
    z = sigmoid(ctx, ctx.add(part(gi, 1), part(gh, 1)))
    n = tanh(ctx, ctx.add(part(gi, 2), ctx.mul(part(gh, 2), r)))
    if h is None:  # (0 - n) * z + n
        return ctx.binary("tosa.sub", n, ctx.mul(n, z))
    return ctx.add(ctx.mul(ctx.binary("tosa.sub", h, n), z), n)


def _rnn(ctx, m, x, hx, kind):
    """nn.LSTM / nn.GRU (eval, static sequence length), unrolled.  As ATen on
    the CPU: the input projection x W_ih^T + b_ih of a layer is one linear over
    the whole sequence, then per step h W_hh^T + b_hh (located
    ``<module>.l<k>[_reverse].t<step>.hh``) is added and the cell applied."""
    if getattr(m, "proj_size", 0):
        raise ctx.error(f"{type(m).__name__} with proj_size is not supported")
    if x.rank != 3:
        raise ctx.error(f"{type(m).__name__} needs a batched 3-D input, got shape {x.shape}")
    x = ctx.to_torch(x)
    gates_per_h = 4 if kind == "lstm" else 3
    hidden, layers = m.hidden_size, m.num_layers
    dirs = 2 if m.bidirectional else 1
    tdim = 1 if m.batch_first else 0
    steps, batch = x.shape[tdim], x.shape[1 - tdim]
    if kind == "lstm":
        h0, c0 = hx if hx is not None else (None, None)
    else:
        h0, c0 = hx, None
    base = ctx.loc

    def state(v, index):  # [L*D, B, H] -> [B, H] of one layer and direction
        if v is None:
            return None
        return ctx.reshape(ctx.slice(ctx.to_torch(v), [index, 0, 0], [1, batch, hidden]),
                           (batch, hidden))

    def step_of(v, t):  # [T, B, N] / [B, T, N] -> [B, N]
        begin, size = [0, 0, 0], list(v.shape)
        begin[tdim], size[tdim] = t, 1
        return ctx.reshape(ctx.slice(v, begin, size), (batch, v.shape[2]))

    def stack(values):  # [B, N] per step -> [T, B, N] / [B, T, N]
        one = (1, batch) if tdim == 0 else (batch, 1)
        parts = [ctx.reshape(v, one + (v.shape[1],)) for v in values]
        shape = list(parts[0].shape)
        shape[tdim] = len(parts)
        return ctx.op("tosa.concat", parts, tuple(shape), {"axis": ir.i32_attr(tdim)})

    h_n, c_n, seq = [], [], x
    try:
        for layer in range(layers):
            outs = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                name = f"{base}.l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh = _param(getattr(m, "weight_ih" + sfx)), _param(getattr(m, "weight_hh" + sfx))
                b_ih = _param(getattr(m, "bias_ih" + sfx)) if m.bias else None
                b_hh = _param(getattr(m, "bias_hh" + sfx)) if m.bias else None
                n = gates_per_h * hidden
                ctx.loc = f"{name}.ih"
                proj = _linear(ctx, seq, w_ih, b_ih)
                ctx.loc = f"{name}.hh"
                w_hh_t = ctx.const(w_hh.T.reshape(1, hidden, n), "weight")
                b_hh_c = ctx.const((b_hh if b_hh is not None else np.zeros([n], np.float32))
                                   .reshape(1, n), "bias")
                h, c = state(h0, layer * dirs + d), state(c0, layer * dirs + d)
                order = range(steps - 1, -1, -1) if d else range(steps)
                hs = {}
                for t in order:
                    ctx.loc = f"{name}.t{t}"
                    gi = step_of(proj, t)
                    ctx.loc = f"{name}.t{t}.hh"
                    if h is None:  # zero state: h W_hh^T + b_hh = b_hh
                        gh = b_hh_c  # [1, 4H], broadcast by the add
                    else:
                        gh = _linear(ctx, h, w_hh_t, b_hh_c)
                    ctx.loc = f"{name}.t{t}"
                    if kind == "lstm":
                        h, c = _rnn_cell_lstm(ctx, ctx.add(gh, gi), h, c, hidden)
                    else:
                        h = _rnn_cell_gru(ctx, gi, gh, h, hidden)
                    hs[t] = h
                ctx.loc = name
                outs.append(stack([hs[t] for t in range(steps)]))
                h_n.append(h)
                c_n.append(c)
            ctx.loc = f"{base}.l{layer}"
            seq = outs[0] if dirs == 1 else ctx.op(
                "tosa.concat", outs, outs[0].shape[:2] + (2 * hidden,), {"axis": ir.i32_attr(2)})
        ctx.loc = base

        def final(values):
            parts = [ctx.reshape(v, (1, batch, hidden)) for v in values]
            if len(parts) == 1:
                return parts[0]
            return ctx.op("tosa.concat", parts, (len(parts), batch, hidden),
                          {"axis": ir.i32_attr(0)})
        if kind == "lstm":
            return seq, (final(h_n), final(c_n))
        return seq, final(h_n)
    finally:
        ctx.loc = base


def lstm(ctx, m, x, hx=None):
    return _rnn(ctx, m, x, hx, "lstm")


def gru(ctx, m, x, hx=None):
    return _rnn(ctx, m, x, hx, "gru")


# -- quantization-aware training (eager mode, after prepare_qat) -------------

# observer_enabled of every FakeQuantize of the model being exported, as the
# user left it (observers are disabled while tracing so that export never
# changes the model's quantization parameters).
_OBSERVERS_ENABLED = {}

_QSCHEMES = {torch.per_tensor_affine: ("affine", False),
             torch.per_tensor_symmetric: ("symmetric", False),
             torch.per_channel_affine: ("affine", True),
             torch.per_channel_symmetric: ("symmetric", True)}
_QDTYPES = {torch.quint8: "u8", torch.qint8: "s8"}


def fake_quant_params(ctx, fq, observe=None):
    """(scale, zero_point, qspec attribute) of a FakeQuantize, as PyTorch's
    convert takes them: ``fq.calculate_qparams()``.  With ``observe`` (a weight),
    convert first runs the fake quant on it (which updates the statistics if its
    observer is enabled): this is done on a copy."""
    if observe is not None:
        enabled = _OBSERVERS_ENABLED.get(id(fq))
        fq = copy.deepcopy(fq)
        if enabled is not None:
            fq.observer_enabled.copy_(enabled)
        fq(observe)
    if fq.dtype not in _QDTYPES or fq.qscheme not in _QSCHEMES:
        raise ctx.error(f"{type(fq).__name__} with dtype {fq.dtype} and qscheme "
                        f"{fq.qscheme} is not supported")
    scale, zero_point = fq.calculate_qparams()
    scale = scale.detach().reshape(-1).to(torch.float32).numpy()
    zero_point = zero_point.detach().reshape(-1).to(torch.int64).numpy()
    scheme, per_channel = _QSCHEMES[fq.qscheme]
    qspec = (f"#qnt.qspec<dtype = {_QDTYPES[fq.dtype]}, quant_min = {int(fq.quant_min)}, "
             f"quant_max = {int(fq.quant_max)}, scheme = {scheme}")
    if per_channel:
        qspec += f", axis = {int(fq.ch_axis)}"
    return scale, zero_point, qspec + ">"


def fake_quant(ctx, fq, x, observe=None, axis=None):
    """``qnt.fake_quant`` of ``x`` with the parameters of ``fq``; ``axis``
    overrides a per-channel axis (layout changes)."""
    scale, zero_point, qspec = fake_quant_params(ctx, fq, observe)
    if "axis =" in qspec:
        if axis is None:
            axis = int(fq.ch_axis) % len(x.torch_shape)
            axis = NCHW_PERM.index(axis) if x.nhwc else axis
        qspec = qspec.rsplit("axis =", 1)[0] + f"axis = {axis}>"
        if x.shape[axis] != scale.size:
            raise ctx.error(f"{scale.size} per-channel scales for axis {axis} of "
                            f"{list(x.shape)}")
    elif scale.size != 1:
        raise ctx.error("per-tensor fake quantization with several scales")
    attrs = {"scale": "array<f32: " + ", ".join(ir.float_literal(v) for v in scale) + ">",
             "zero_point": ir.i64_array(zero_point), "qspec": qspec}
    y = ctx.op("qnt.fake_quant", [x], x.shape, attrs, nhwc=x.nhwc,
               hint=f"{ctx.loc}.fq" if observe is None else f"{ctx.loc}.weight_fq")
    if observe is None and "axis =" not in qspec:
        ctx.qat_grid[y.name] = fq
    return y


def fake_quant_module(ctx, m, x):
    """A FakeQuantize called as a module."""
    return fake_quant(ctx, m, x)


def _qat_weight_bias(m):
    """Weight and bias as PyTorch's convert computes them: batch norm of
    ConvBn* folded with ``fuse_conv_bn_weights`` (eval statistics)."""
    weight, bias = m.weight.detach(), m.bias.detach() if m.bias is not None else None
    bn = getattr(m, "bn", None)
    if bn is not None:
        weight, bias = torch.nn.utils.fuse_conv_bn_weights(
            weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
        weight, bias = weight.detach(), bias.detach()
    if bias is None:
        bias = torch.zeros(weight.shape[0])
    return weight, bias


def qat_conv2d(ctx, m, x):
    """nn.qat.Conv2d and nn.intrinsic.qat ConvBn2d / ConvBnReLU2d / ConvReLU2d:
    qnt.conv2d on the fake-quantized (folded) weight, relu fused."""
    if m.padding_mode != "zeros":
        raise ctx.error(f"{type(m).__name__} with padding_mode={m.padding_mode!r} "
                        f"is not supported")
    weight, bias = _qat_weight_bias(m)
    x = ctx.to_nhwc(x)
    w = ctx.const(_param(weight).transpose(0, 2, 3, 1), "weight")  # OHWI
    w = fake_quant(ctx, m.weight_fake_quant, w, observe=weight, axis=0)
    attrs = {"stride": ir.i64_array(m.stride), "dilation": ir.i64_array(m.dilation),
             "pad": ir.i64_array(_conv_padding(m)), "groups": ir.i64_attr(m.groups)}
    if type(m) in (nniqat.ConvBnReLU2d, nniqat.ConvReLU2d):
        attrs["activation"] = "#qnt.activation<relu>"
    return ctx.op("qnt.conv2d", [x, w, ctx.const(_param(bias), "bias")],
                  ctx.out_shape(nhwc=True), attrs, nhwc=True)


def qat_linear(ctx, m, x):
    """nn.qat.Linear, nn.intrinsic.qat.LinearReLU: qnt.linear on the
    fake-quantized weight [N, K]."""
    weight, bias = _qat_weight_bias(m)
    x = ctx.to_torch(x)
    *lead, k = x.shape
    rows, n = math.prod(lead), m.out_features
    a = ctx.reshape(x, (rows, k))
    w = ctx.const(_param(weight), "weight")
    w = fake_quant(ctx, m.weight_fake_quant, w, observe=weight, axis=0)
    attrs = {"activation": "#qnt.activation<relu>"} if type(m) is nniqat.LinearReLU else None
    y = ctx.op("qnt.linear", [a, w, ctx.const(_param(bias), "bias")], (rows, n), attrs)
    return ctx.reshape(y, (*lead, n))


def _output_fake_quant(module):
    """The FakeQuantize eager-mode prepare_qat attached to ``module``'s output
    (called by a forward hook, which torch.fx does not run for leaves)."""
    fq = getattr(module, "activation_post_process", None)
    return fq if isinstance(fq, FakeQuantizeBase) else None


# Ops that PyTorch's converted model runs on the quantized integers, keeping
# their input's scale and zero point: their result is on the input's grid, so
# the exporter repeats the input's qnt.fake_quant after them (exact: values on
# the grid stay where they are), which keeps the IR quantized end to end.
_SAME_GRID_MODULES = (nn.MaxPool2d, nn.ReLU, nn.Flatten, nn.Identity, nn.Dropout,
                      nn.Dropout2d)
_SAME_GRID_FUNCTIONS = (F.relu, torch.relu, F.max_pool2d, torch.flatten, torch.reshape,
                        torch.permute, torch.transpose, F.dropout)
_SAME_GRID_METHODS = ("relu", "view", "reshape", "flatten", "permute", "transpose",
                      "contiguous")


def _same_grid(node, module):
    if node.op == "call_module":
        return type(module) in _SAME_GRID_MODULES
    if node.op == "call_function":
        return node.target in _SAME_GRID_FUNCTIONS and "qnt_path" not in node.meta
    return node.target in _SAME_GRID_METHODS


def stub(op_name, layout):
    """QuantStub / DeQuantStub: qnt.quant_stub on NHWC data, qnt.dequant_stub as is."""
    def handler(ctx, m, x):
        x = layout(ctx, x)
        return ctx.op(op_name, [x], x.shape, nhwc=x.nhwc)
    return handler


# ---------------------------------------------------------------------------
# The op table
# ---------------------------------------------------------------------------

MODULES = {
    nn.Conv2d: conv2d,
    nn.BatchNorm1d: batch_norm,
    nn.BatchNorm2d: batch_norm,
    nn.Linear: linear,
    nn.LSTM: lstm,
    nn.GRU: gru,
    nn.ReLU: lambda ctx, m, x: relu(ctx, x),
    nn.ReLU6: lambda ctx, m, x: relu6(ctx, x),
    nn.Hardtanh: lambda ctx, m, x: hardtanh(ctx, x, m.min_val, m.max_val),
    nn.Hardswish: lambda ctx, m, x: hardswish(ctx, x),
    nn.Hardsigmoid: lambda ctx, m, x: hardsigmoid(ctx, x),
    nn.Sigmoid: lambda ctx, m, x: sigmoid(ctx, x),
    nn.Tanh: lambda ctx, m, x: tanh(ctx, x),
    nn.SiLU: lambda ctx, m, x: silu(ctx, x),
    nn.MaxPool2d: lambda ctx, m, x: max_pool2d(
        ctx, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices),
    nn.AvgPool2d: lambda ctx, m, x: avg_pool2d(
        ctx, x, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
        m.divisor_override),
    nn.AdaptiveAvgPool2d: lambda ctx, m, x: adaptive_avg_pool2d(ctx, x, m.output_size),
    nn.Flatten: lambda ctx, m, x: reshape_to_output(ctx, x),
    nn.Dropout: lambda ctx, m, x: x,
    nn.Dropout2d: lambda ctx, m, x: x,
    nn.Identity: lambda ctx, m, x: x,
    nn.ZeroPad2d: lambda ctx, m, x: pad(ctx, x, m.padding),
    nn.Upsample: upsample, nn.UpsamplingNearest2d: upsample,
    nn.UpsamplingBilinear2d: upsample,
    nn.ConstantPad2d: lambda ctx, m, x: pad(ctx, x, m.padding, "constant", m.value),
    QuantStub: stub("qnt.quant_stub", lambda ctx, x: ctx.to_nhwc(x)),
    DeQuantStub: stub("qnt.dequant_stub", lambda ctx, x: x),
    # quantization-aware training (eager mode, after prepare_qat)
    nnqat.Conv2d: qat_conv2d,
    nniqat.ConvBn2d: qat_conv2d,
    nniqat.ConvBnReLU2d: qat_conv2d,
    nniqat.ConvReLU2d: qat_conv2d,
    nnqat.Linear: qat_linear,
    nniqat.LinearReLU: qat_linear,
    FakeQuantize: fake_quant_module,
    FusedMovingAvgObsFakeQuantize: fake_quant_module,
    FixedQParamsFakeQuantize: fake_quant_module,
}

FUNCTIONS = {
    F.relu: relu, torch.relu: relu, F.relu6: relu6, F.hardtanh: hardtanh,
    F.hardswish: hardswish, F.hardsigmoid: hardsigmoid, F.silu: silu,
    torch.sigmoid: sigmoid, F.sigmoid: sigmoid, torch.tanh: tanh, F.tanh: tanh,
    operator.add: add, operator.iadd: add, torch.add: add,
    operator.sub: sub, operator.isub: sub, torch.sub: sub,
    operator.mul: mul, operator.imul: mul, torch.mul: mul,
    _add_relu: add_relu,
    torch.cat: cat, torch.concat: cat,
    torch.flatten: reshape_to_output, torch.reshape: reshape_to_output,
    torch.permute: permute, torch.transpose: transpose,
    torch.chunk: chunk, torch.split: split, operator.getitem: getitem,
    torch.mean: mean,
    F.max_pool2d: max_pool2d, F.avg_pool2d: avg_pool2d,
    F.adaptive_avg_pool2d: adaptive_avg_pool2d,
    F.dropout: dropout,
    F.pad: pad,
    F.interpolate: interpolate,
    torch.amax: amax, torch.amin: amin,
}
try:  # torchvision's functions, when it is installed
    import torchvision.ops
    FUNCTIONS[torchvision.ops.stochastic_depth] = stochastic_depth
except ImportError:
    pass

METHODS = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
    "add": add, "sub": sub, "mul": mul,
    "view": reshape_to_output, "reshape": reshape_to_output, "flatten": reshape_to_output,
    "permute": permute, "transpose": transpose, "contiguous": identity,
    "chunk": chunk, "split": split, "mean": mean, "amax": amax, "amin": amin,
}


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def _lookup(ctx, node):
    """(handler or None, leading handler args, description) for a call node."""
    if node.op == "call_module":
        module = ctx.gm.get_submodule(node.target)
        handler = MODULES.get(type(module))
        return handler, (module,), f"module {_qualified_name(type(module))}"
    if node.op == "call_function":
        return FUNCTIONS.get(node.target), (), f"function {_qualified_name(node.target)}"
    return METHODS.get(node.target), (), f"tensor method Tensor.{node.target}"


def _convert_node(ctx, node, env):
    meta = node.meta["qnt_out"]
    if not _has_tensor(meta):
        # Shape arithmetic (x.size(0), h // 2): its value is known statically.
        from_tensor = any(_has_tensor(n.meta["qnt_out"]) for n in node.all_input_nodes)
        if from_tensor and node.target not in _SHAPE_METHODS | _SHAPE_FUNCTIONS:
            raise ctx.error(f"{node.op} {node.target} returns a Python value computed "
                            f"from tensor data, which is not supported")
        return meta
    for t in _tensor_metas(meta):
        if t.dtype != torch.float32:
            raise ctx.error(f"only float32 tensors are supported, got {t.dtype}")
    if node.op == "get_attr":
        return ctx.const(_param(operator.attrgetter(node.target)(ctx.gm)), "value")
    handler, leading, what = _lookup(ctx, node)
    args = fx.node.map_arg(node.args, env.__getitem__)
    kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
    if handler is None:
        raise ctx.error(f"unsupported {what}")
    try:
        inspect.signature(handler).bind(ctx, *leading, *args, **kwargs)
    except TypeError as e:
        raise ctx.error(f"unsupported arguments to {what} ({e})") from None
    result = handler(ctx, *leading, *args, **kwargs)
    # QAT: the output FakeQuantize of a module (eager mode's forward hook) or
    # of a FloatFunctional (called inside its methods).
    owner = (leading[0] if leading else
             ctx.gm.qnt_root.get_submodule(node.meta["qnt_path"]) if "qnt_path" in node.meta
             else None)
    fq = _output_fake_quant(owner) if owner is not None and not isinstance(
        owner, FakeQuantizeBase) else None
    if fq is not None and isinstance(result, Value):
        result = fake_quant(ctx, fq, result)
    elif (ctx.qat_grid and isinstance(result, Value) and args and isinstance(args[0], Value)
          and args[0].name in ctx.qat_grid and result.name != args[0].name
          and _same_grid(node, owner)):
        result = fake_quant(ctx, ctx.qat_grid[args[0].name], result)
    return result


def _flatten_outputs(value):
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flatten_outputs(item)]
    return [value]


def _convert(module, example_inputs):
    """Returns (FunctionBuilder, ExportInfo)."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    for i, t in enumerate(example_inputs):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.float32:
            raise ExportError(f"example input {i} must be a float32 tensor")
    was_training = module.training
    module.eval()
    # QAT: keep the quantization parameters as they are while tracing.
    fake_quants = [m for m in module.modules() if isinstance(m, FakeQuantizeBase)]
    _OBSERVERS_ENABLED.clear()
    _OBSERVERS_ENABLED.update((id(m), m.observer_enabled.clone()) for m in fake_quants)
    for m in fake_quants:
        m.disable_observer()
    try:
        with torch.no_grad():
            gm = _trace(module)
            placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
            if len(placeholders) != len(example_inputs):
                raise ExportError(f"forward() takes {len(placeholders)} tensor arguments "
                                  f"({', '.join(str(n.target) for n in placeholders)}), "
                                  f"got {len(example_inputs)} example inputs")
            try:
                _Recorder(gm).run(*example_inputs)
            except Exception as e:
                raise ExportError(f"running the traced model on the example inputs "
                                  f"failed: {e}") from e
            return _emit(gm, placeholders, example_inputs)
    finally:
        for m in fake_quants:
            m.observer_enabled.copy_(_OBSERVERS_ENABLED[id(m)])
        _OBSERVERS_ENABLED.clear()
        module.train(was_training)


def _emit(gm, placeholders, example_inputs):
    ctx = _Emitter(gm)
    env = {}
    inputs = []
    for node, example in zip(placeholders, example_inputs):
        name = str(node.target).lstrip("*")
        env[node] = ctx.b.argument(name, tuple(example.shape))
        inputs.append((name, tuple(example.shape)))
    # Every unsupported op in one message, before anything is emitted.
    unsupported = [(_location(node), what) for node in gm.graph.nodes
                   if node.op in ("call_module", "call_function", "call_method")
                   and _has_tensor(node.meta["qnt_out"])
                   and all(t.dtype == torch.float32 for t in _tensor_metas(node.meta["qnt_out"]))
                   for handler, _, what in [_lookup(ctx, node)] if handler is None]
    if len(unsupported) == 1:
        raise ExportError(f"unsupported {unsupported[0][1]} at '{unsupported[0][0]}'")
    if unsupported:
        raise ExportError(f"{len(unsupported)} unsupported ops:\n" +
                          "\n".join(f"  {loc}: {what}" for loc, what in unsupported))
    for node in gm.graph.nodes:
        ctx.node, ctx.loc = node, _location(node)
        if node.op == "placeholder":
            continue
        if node.op == "output":
            results = _flatten_outputs(fx.node.map_arg(node.args[0], env.__getitem__))
            if not results or not all(isinstance(v, Value) for v in results):
                raise ExportError("the model must return a tensor or a tuple/list of tensors")
            ctx.loc = "output"
            results = [ctx.to_torch(v) for v in results]
            ctx.b.set_results(results)
            return ctx.b, ExportInfo(inputs, [v.shape for v in results])
        env[node] = _convert_node(ctx, node, env)
    raise ExportError("the traced graph has no output")


def to_mlir(module, example_inputs):
    """The exported MLIR as a string (see `export`)."""
    builder, _ = _convert(module, example_inputs)
    return "\n".join(builder.lines()) + "\n"


def export(module, example_inputs, path):
    """Exports ``module`` (an ``nn.Module``, traced in eval mode with torch.fx)
    as an FP32 TOSA ``func.func @main`` to ``path``.

    ``example_inputs`` is a float32 tensor or a tuple of them, one per
    ``forward()`` argument: their shapes become the function's argument
    types (the values only drive shape propagation).  Returns an
    `ExportInfo`.  Raises `ExportError` for an unsupported module, function
    or argument; nothing is written then."""
    builder, info = _convert(module, example_inputs)
    with atomic_output(path) as f:
        for line in builder.lines():
            f.write(line)
            f.write("\n")
    return info
