"""PyTorch nn.Module -> FP32 TOSA MLIR for quant-opt.

Pipeline: ``torch.fx`` symbolic trace (eval mode) -> one run of the traced
graph on the example inputs, recording every node's output shape (and the
value of shape computations such as ``x.size(0)``) -> one pass over the
nodes, each mapped to MLIR by a handler looked up in ``MODULES`` (by module
type), ``FUNCTIONS`` (by function) or ``METHODS`` (by tensor method name):
the op table of `qnt.ops`, one module per op family.

Layout: the function takes and returns PyTorch layouts; 4-D activations are
NHWC inside (``Value.nhwc``).  Conversions are emitted where a value changes
layout: NCHW -> NHWC in front of the first op that needs NHWC (conv, pool,
batch norm, quant stub), NHWC -> NCHW in front of ops that need PyTorch's
element order (flatten, view, permute, linear, ...) and at the return.
"""

import contextlib
import dis
import inspect
import operator
from collections import OrderedDict, namedtuple

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization.fake_quantize import FakeQuantizeBase
from torch.nn.quantized import FloatFunctional

from . import ir
from ._files import atomic_output
from .ir import Value
from .ops import FUNCTIONS, METHODS, MODULES
from .ops._common import (ELEMENTS, NCHW_PERM, NHWC_PERM, _keeps_order, _nhwc_shape, _param,
                          promote)
from .ops.elementwise import _add_relu
from .ops.quantization import _OBSERVERS_ENABLED, _output_fake_quant, _same_grid, fake_quant


class ExportError(Exception):
    """The model cannot be exported (the message says what and where)."""


ExportInfo = namedtuple("ExportInfo", "inputs outputs")
ExportInfo.__doc__ = """What `export` wrote: ``inputs`` is a list of (qnt.name, shape),
``outputs`` a list of shapes, all in PyTorch layout."""

TensorMeta = namedtuple("TensorMeta", "shape dtype")

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

# FloatFunctional methods, recorded as one call of an equivalent function
# located at the FloatFunctional's module path (not as the ops inside).
_FLOAT_FUNCTIONAL = {"add": torch.add, "mul": torch.mul, "cat": torch.cat,
                     "add_scalar": torch.add, "mul_scalar": torch.mul,
                     "add_relu": _add_relu}


def _unpacking_proxy_iter(proxy):
    """Proxy.__iter__ for ``a, b = proxy`` on Python 3.11: the length from
    the caller's UNPACK_SEQUENCE, looked up by byte offset."""
    frame = inspect.currentframe().f_back  # the user code unpacking
    for inst in dis.get_instructions(frame.f_code):
        if inst.offset == frame.f_lasti and inst.opname == "UNPACK_SEQUENCE":
            return (proxy[i] for i in range(inst.argval))
    return proxy.tracer.iter(proxy)


@contextlib.contextmanager
def proxy_unpacking():
    """While tracing with any torch.fx tracer (also PyTorch's prepare_fx):
    torch 1.13's Proxy.__iter__ indexes the instruction list by
    ``f_lasti // 2``, out of range on Python 3.11, so ``n, c, h, w =
    x.shape`` or ``out, (h, c) = self.lstm(x)`` fail to trace."""
    saved = fx.Proxy.__iter__
    fx.Proxy.__iter__ = _unpacking_proxy_iter
    try:
        yield
    finally:
        fx.Proxy.__iter__ = saved


# Tensor factories that take sizes, not tensors.
_FACTORIES = ("arange", "ones", "zeros", "full", "empty", "eye")


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

    def _float_functional_method(self, fn):
        tracer = self

        def method(ff, *args, **kwargs):
            proxy = tracer.create_proxy("call_function", fn, args, kwargs)
            proxy.node.meta["qnt_path"] = tracer.path_of_module(ff)
            return proxy
        return method

    def _factory(self, fn):
        """torch.arange(n) and the like with a traced size (``x.shape[1]``),
        which they cannot take: recorded as a call of ``fn``."""
        tracer = self

        def factory(*args, **kwargs):
            if any(isinstance(a, fx.Proxy) for a in (*args, *kwargs.values())):
                return tracer.create_proxy("call_function", fn, args, kwargs)
            return fn(*args, **kwargs)
        return factory

    def trace(self, root, concrete_args=None):
        originals = {name: getattr(FloatFunctional, name) for name in _FLOAT_FUNCTIONAL}
        factories = {name: getattr(torch, name) for name in _FACTORIES}
        try:
            for name, fn in factories.items():
                setattr(torch, name, self._factory(fn))
            for name, fn in _FLOAT_FUNCTIONAL.items():
                setattr(FloatFunctional, name, self._float_functional_method(fn))
            with proxy_unpacking():
                return super().trace(root, concrete_args)
        finally:
            for name, fn in factories.items():
                setattr(torch, name, fn)
            for name, method in originals.items():
                setattr(FloatFunctional, name, method)


def _trace(module):
    if isinstance(module, fx.GraphModule) and getattr(module, "qnt_prebuilt", False):
        # A graph built by an importer (qnt.onnx): used as it is, its nodes
        # located by meta["qnt_loc"] and its inputs named by meta["qnt_name"].
        module.__dict__["qnt_root"] = module
        return module
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
    (TensorMeta for tensors, the value itself for shapes and numbers).

    Tensors that do not depend on the model's inputs and are not computed
    from its float parameters (``torch.arange(n)``, a causal mask built with
    ``torch.triu``, an integer buffer) are kept as meta["qnt_const"]: they
    are emitted as constants instead of as the ops that made them."""

    def run_node(self, node):
        result = super().run_node(node)
        node.meta["qnt_out"] = _describe(result)
        inputs = node.all_input_nodes
        # Through tensors only: x.shape[1] is known statically.
        node.meta["qnt_dynamic"] = node.op == "placeholder" or _has_tensor(
            node.meta["qnt_out"]) and any(n.meta["qnt_dynamic"] for n in inputs)
        node.meta["qnt_from_params"] = (node.op == "get_attr" and _is_float(result)) or any(
            n.meta["qnt_from_params"] for n in inputs)
        if (isinstance(result, torch.Tensor) and not node.meta["qnt_dynamic"]
                and not node.meta["qnt_from_params"] and result.dtype in ELEMENTS):
            node.meta["qnt_const"] = result.detach().clone()
        return result


def _is_float(value):
    return isinstance(value, torch.Tensor) and value.dtype.is_floating_point


# ---------------------------------------------------------------------------
# Emission context
# ---------------------------------------------------------------------------

# Ops whose result has the element type of their (first) operand.
_SAME_ELEMENT = {"tosa.reshape", "tosa.transpose", "tosa.slice", "tosa.tile", "tosa.concat",
                 "tosa.identity", "tosa.clamp"}

# Nodes that may turn a tensor into a Python value: shape queries only.
_SHAPE_METHODS = {"size", "dim", "numel", "nelement", "ndimension"}
_SHAPE_FUNCTIONS = {getattr, len}


def _location(node):
    """The PyTorch path an op comes from: the module's qualified name, or
    ``<enclosing module>.<node name>`` for functions and methods; an
    imported graph's own names (meta["qnt_loc"]) first."""
    if "qnt_loc" in node.meta:
        return node.meta["qnt_loc"]
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
        self._constants = {}  # value name -> array of a directly read parameter
        self.qat_grid = {}    # QAT: value name -> the FakeQuantize whose grid it is on
        self.arguments = {}   # placeholder node -> its argument Value
        self._composite = None  # the float composite being emitted (`composite`)
        self._float_in_pytorch = False  # inside `float_in_pytorch()`

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

    def op(self, name, operands, shape, attrs=None, nhwc=False, hint=None, element=None):
        """Emits ``name``; its result has ``element`` type, by default the
        element type of the data it moves (shape ops, select) or f32."""
        if element is None:
            data = (operands[1] if name == "tosa.select" else
                    operands[0] if name in _SAME_ELEMENT and operands else None)
            element = data.element if data is not None else "f32"
        if self._composite:
            attrs = dict(attrs or {}, **{"qnt.float_composite": f'"{self._composite}"'})
        if self._float_in_pytorch:
            attrs = dict(attrs or {}, **{"qnt.float_in_pytorch": "unit"})
        return self.b.op(name, operands, shape, attrs, loc=self.loc,
                         hint=hint or self.loc, nhwc=nhwc, element=element)

    def const(self, array, suffix="const", nhwc=False):
        """A constant of ``array`` (float32 unless it is of another dtype
        in `qnt.ir.ELEMENT_TYPES`)."""
        array = np.asarray(array)
        if array.dtype not in ir.ELEMENT_TYPES:
            array = array.astype(np.float32)
        value = self.b.const(array, loc=self.loc, hint=f"{self.loc}.{suffix}")
        value.nhwc = nhwc
        return value

    def parameter(self, array):
        """A parameter or buffer the model reads directly: a constant whose
        array `constant` can give back (weights of modules are not kept)."""
        value = self.const(array, "value")
        self._constants[value.name] = np.asarray(array, np.float32)
        return value

    def folded(self, tensor):
        """A tensor the model computes from no input (meta["qnt_const"])."""
        array = tensor.numpy()
        if array.dtype == np.float32:
            return self.parameter(array)
        return self.const(array, "value")

    def constant(self, v):
        """The array of ``v`` if it is a parameter or buffer the model reads
        directly (`parameter`), else None."""
        return self._constants.get(v.name) if isinstance(v, Value) else None

    @contextlib.contextmanager
    def scope(self, name):
        """Emits at the location ``<current>.<name>``: the ops of a submodule
        that a handler of its parent emits (a transformer layer's linears),
        each with its own location and so its own observers."""
        saved = self.loc
        self.loc = f"{saved}.{name}" if saved else name
        try:
            yield
        finally:
            self.loc = saved

    @contextlib.contextmanager
    def composite(self, name):
        """Marks the ops emitted inside with ``qnt.float_composite =
        "<name>"``: the decomposition of one op that quantization treats as
        a unit computed in float (layer norm, softmax; PyTorch's quantized
        layer norm takes and returns int8 and computes in float), so that
        qnt-prepare observes none of its inner values."""
        saved, self._composite = self._composite, self._composite or name
        try:
            yield
        finally:
            self._composite = saved

    @contextlib.contextmanager
    def float_in_pytorch(self):
        """Marks the ops emitted inside with ``qnt.float_in_pytorch``: a
        module PyTorch 1.13's FX quantization leaves float
        (``nn.MultiheadAttention``), which ``--qnt-prepare``'s
        ``float-in-pytorch=true`` keeps float too."""
        saved, self._float_in_pytorch = self._float_in_pytorch, True
        try:
            yield
        finally:
            self._float_in_pytorch = saved

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

    def broadcast(self, v, shape):
        """``v`` (any layout) in PyTorch's layout, tiled to ``shape`` (size-1
        dims repeated; missing leading dims added), as ``expand``."""
        v = self.to_torch(v)
        shape = tuple(int(d) for d in shape)
        v = self.reshape(v, (1,) * (len(shape) - v.rank) + v.shape)
        if v.shape == shape:
            return v
        multiples = [s // d for s, d in zip(shape, v.shape)]
        return self.op("tosa.tile", [v, self.shape(multiples)], shape)

    def slice(self, v, begin, size):
        return self.op("tosa.slice", [v, self.shape(begin), self.shape(size)], size,
                       nhwc=v.nhwc)

    # -- elementwise -------------------------------------------------------

    def binary(self, name, a, b, element=None):
        """A binary TOSA op with PyTorch broadcasting and type promotion
        (``tosa.add/sub/mul``, comparisons: pass ``element="i1"``); a or b
        may be a number, a constant of the other operand's type."""
        return self.elementwise(name, [a, b], element)

    def elementwise(self, name, operands, element=None):
        """``name`` on ``operands`` (Values or numbers) broadcast to one
        shape; Values converted to the promoted element type of them all
        (`promote`), numbers constants of it. The result has ``element``,
        by default the promoted type."""
        values = [x for x in operands if isinstance(x, Value)]
        rank = max(len(x.torch_shape) for x in values)
        nhwc = rank == 4 and any(x.nhwc for x in values)
        common = promote(x.element for x in values)

        def operand(x):
            if not isinstance(x, Value):
                return self.scalar(x, common, rank)
            x = self.cast(x, common)
            if len(x.torch_shape) < rank:
                x = self.reshape(x, (1,) * (rank - len(x.torch_shape)) + x.torch_shape)
            return self.to_nhwc(x) if nhwc else self.to_torch(x)

        converted = [operand(x) for x in operands]
        shape = np.broadcast_shapes(*(x.shape for x in converted))
        if name == "tosa.mul":
            converted.append(self.b.mul_shift())
        return self.op(name, converted, shape, nhwc=nhwc, element=element or common)

    def cast(self, x, element):
        """``x`` converted to ``element`` as PyTorch's ``Tensor.to`` does:
        booleans to 0/1, to bool as ``x != 0``, float to integer rounded
        toward zero."""
        if x.element == element:
            return x
        if x.element == "i1":
            return self.op("tosa.select", [x, self.scalar(1, element, x.rank),
                                           self.scalar(0, element, x.rank)],
                           x.shape, nhwc=x.nhwc, element=element)
        if element == "i1":
            zero = self.scalar(0, x.element, x.rank)
            equal = self.op("tosa.equal", [x, zero], x.shape, nhwc=x.nhwc, element="i1")
            return self.op("tosa.logical_not", [equal], x.shape, nhwc=x.nhwc, element="i1")
        if x.element == "f32":
            negative = self.op("tosa.greater", [self.scalar(0.0, "f32", x.rank), x], x.shape,
                               nhwc=x.nhwc, element="i1")
            x = self.op("tosa.select", [negative, self.unary("tosa.ceil", x),
                                        self.unary("tosa.floor", x)], x.shape, nhwc=x.nhwc)
        return self.op("tosa.cast", [x], x.shape, nhwc=x.nhwc, element=element)

    def scalar(self, value, element, rank):
        """A shared constant of shape [1] * rank."""
        literal = np.array(value, ir.NUMPY_DTYPES[element])
        return self.b.shared_const(("scalar", rank, element, literal.item()),
                                   np.full([1] * rank, literal), "scalar")

    def add(self, a, b):
        return self.binary("tosa.add", a, b)

    def mul(self, a, b):
        return self.binary("tosa.mul", a, b)

    def unary(self, name, x):
        """An elementwise TOSA op of one operand (``tosa.exp``, ``tosa.erf``, ...)."""
        return self.op(name, [x], x.shape, nhwc=x.nhwc, element=x.element)

    def sub(self, a, b):
        return self.binary("tosa.sub", a, b)

    def reduce(self, name, x, dims):
        """``tosa.reduce_sum/max/min`` over the PyTorch dims ``dims`` of ``x``,
        keeping them as size 1 (in ``x``'s layout)."""
        y = x
        for d in dims:
            axis = NCHW_PERM[d] if x.nhwc else d
            shape = list(y.shape)
            shape[axis] = 1
            y = self.op(name, [y], shape, {"axis": ir.i32_attr(axis)}, nhwc=x.nhwc,
                        element=x.element)
        return y

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
        # An element of a module's tuple result (the None of
        # MultiheadAttention's weights) is known statically too.
        unpacked = node.target is operator.getitem and isinstance(
            node.args[0].meta["qnt_out"], (tuple, list))
        if from_tensor and not unpacked and node.target not in _SHAPE_METHODS | _SHAPE_FUNCTIONS:
            raise ctx.error(f"{node.op} {node.target} returns a Python value computed "
                            f"from tensor data, which is not supported")
        return meta
    for t in _tensor_metas(meta):
        if t.dtype not in ELEMENTS:
            raise ctx.error(f"tensors of {t.dtype} are not supported (float32, int64, "
                            f"int32 and bool are)")
    if "qnt_const" in node.meta:
        value = node.meta.pop("qnt_const")
        if node.users and all("qnt_const" in user.meta for user in node.users):
            return None  # only folded nodes use it
        return ctx.folded(value)
    if node.op == "get_attr":
        return ctx.parameter(_param(operator.attrgetter(node.target)(ctx.gm)))
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
        if not isinstance(t, torch.Tensor) or t.dtype not in ELEMENTS:
            raise ExportError(f"example input {i} must be a tensor of float32, int64, int32 "
                              f"or bool (token ids, masks), got "
                              f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
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
        name = node.meta.get("qnt_name", str(node.target).lstrip("*"))
        env[node] = ctx.b.argument(name, tuple(example.shape), ELEMENTS[example.dtype])
        ctx.arguments[node] = env[node]
        inputs.append((name, tuple(example.shape)))
    # Every unsupported op in one message, before anything is emitted.
    unsupported = [(_location(node), what) for node in gm.graph.nodes
                   if node.op in ("call_module", "call_function", "call_method")
                   and _has_tensor(node.meta["qnt_out"]) and "qnt_const" not in node.meta
                   and all(t.dtype in ELEMENTS for t in _tensor_metas(node.meta["qnt_out"]))
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
        if (node.op == "call_method" and node.target.endswith("_") and node.args
                and isinstance(node.args[0], fx.Node)):
            env[node.args[0]] = env[node]  # x.masked_fill_(...): later uses of x see it
    raise ExportError("the traced graph has no output")


def to_mlir(module, example_inputs, module_attributes=None):
    """The exported MLIR as a string (see `export`)."""
    builder, _ = _convert(module, example_inputs)
    builder.module_attributes.update(module_attributes or {})
    return "\n".join(builder.lines()) + "\n"


def export(module, example_inputs, path, module_attributes=None):
    """Exports ``module`` (an ``nn.Module``, traced in eval mode with torch.fx)
    as an FP32 TOSA ``func.func @main`` to ``path``.

    ``example_inputs`` is a tensor or a tuple of them, one per
    ``forward()`` argument (float32; int64, int32 or bool for token ids and
    masks): their shapes and dtypes become the function's argument types
    (the values only drive shape propagation and tensors computed from no
    input).  Returns an
    `ExportInfo`.  Raises `ExportError` for an unsupported module, function
    or argument; nothing is written then. ``module_attributes``: ``{name:
    attribute text}`` for the ``builtin.module`` (``qnt.numerics``)."""
    builder, info = _convert(module, example_inputs)
    builder.module_attributes.update(module_attributes or {})
    with atomic_output(path) as f:
        for line in builder.lines():
            f.write(line)
            f.write("\n")
    return info
