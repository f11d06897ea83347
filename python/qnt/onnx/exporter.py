"""qnt module (MLIR) -> ONNX: QDQ for quantized values, plain ops for float.

The module is read through quant-opt (`qnt.mlir_reader`). Every MLIR value
becomes an ONNX tensor: a float value its float tensor, a quantized value
(``!quant.uniform``) its storage integers, the output of a QuantizeLinear.
A qnt op on quantized types becomes the QDQ form that ONNX Runtime fuses
into its integer operators (QLinearConv, QLinearMatMul, QLinearAdd, ...):

    DequantizeLinear(x), DequantizeLinear(w int8), DequantizeLinear(b int32)
      -> Conv [-> Relu | Clip] -> QuantizeLinear(y's scale, zero point)

Ops that only move or compare integers (reshape, transpose, max pool,
concat of one type, clamp, `qnt.table` as a Gather) run on the integers.

Layout: the IR is NHWC inside and ONNX is NCHW. Each exported tensor holds
its MLIR value with its dims permuted (``perm``: ONNX dim j is MLIR dim
perm[j]); a ``tosa.transpose`` only changes the permutation, convs and
pools take NCHW, and a Transpose node is written only where an op needs
another layout than its operand has (a reshape, the function's results).

A storage range narrower than the type's (``u8<0:127>``, reduce_range) is
exact: QuantizeLinear then an integer Clip to [qmin, qmax].
"""

import numpy as np

from .._files import atomic_output
from ..ir import unique_name
from ..mlir_reader import MlirReadError, TensorType, UniformType, read_module

OPSET = 13
NCHW = (0, 3, 1, 2)  # ONNX dim j holds the NHWC MLIR dim NCHW[j]


class OnnxExportError(Exception):
    """The module cannot be exported (the message names the op or file)."""


class Unsupported(Exception):
    """Raised by a handler; located by the caller."""


def _identity(rank):
    return tuple(range(rank))


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


class Value:
    """An exported MLIR value: ``type`` (TensorType or other type text);
    ``name`` the ONNX tensor holding it permuted by ``perm``, or ``array``
    (numpy, MLIR layout) for a constant, or ``dq`` (a quantized constant
    Value) for a dequantized weight: the last two are written where used,
    in the layout the user needs (a DequantizeLinear right before a Conv)."""

    __slots__ = ("type", "name", "perm", "array", "dq")

    def __init__(self, type, name=None, perm=None, array=None, dq=None):
        self.type, self.name, self.array, self.dq = type, name, array, dq
        self.perm = tuple(perm) if perm is not None else (
            _identity(type.rank) if isinstance(type, TensorType) else None)

    @property
    def const(self):
        return self.array is not None

    @property
    def fixed(self):
        """A constant, or a dequantized one: written where it is used."""
        return self.array is not None or self.dq is not None

    @property
    def qtype(self):
        return self.type.element if self.type.quantized else None


_ONNX_DTYPE = {"f32": "FLOAT", "i64": "INT64", "i32": "INT32", "i1": "BOOL", "i8": "INT8",
               "u8": "UINT8"}
_NP_STORAGE = {"i8": np.int8, "u8": np.uint8, "i32": np.int32}


class Exporter:
    """``exact``: write qnt's rounding where ORT would otherwise round its own
    way (ORT's outputs then match quant-run's, docs/onnx.md); else the
    canonical QDQ form, QuantizeLinear(S, Z) everywhere (what other QDQ tools
    write and `import_onnx` reads back to the same module). A module with
    ``qnt.numerics = "onnxruntime"`` computes ORT's arithmetic: always the
    canonical form. The model's metadata ``qnt.numerics`` records which."""

    def __init__(self, func, exact=True):
        # A module compiled with ONNX Runtime's arithmetic (an imported
        # model) is exactly the canonical QDQ form on ORT.
        self.numerics = func.module_attrs.get("qnt.numerics", "qnt")
        self.exact = exact and self.numerics == "qnt"
        from onnx import TensorProto, helper, numpy_helper
        self.helper, self.numpy_helper, self.TensorProto = helper, numpy_helper, TensorProto
        self.func = func
        self.nodes, self.inits = [], []
        self.values = {}
        self._names = set()
        self._transposed = {}  # (tensor name, perm) -> name
        self.loc = "op"

    # -- names, nodes, initializers ------------------------------------------

    def fresh(self, base):
        return unique_name(base.replace(" ", "_") or "t", self._names)

    def node(self, op_type, inputs, n_out=1, domain=None, **attrs):
        outs = [self.fresh(f"{self.loc}/{op_type}" + (f":{k}" if k else ""))
                for k in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs,
                                                name=self.fresh(f"{self.loc}/{op_type}"),
                                                domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def init(self, array, base="c"):
        name = self.fresh(f"{self.loc}/{base}")
        self.inits.append(self.numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    # -- values ---------------------------------------------------------------

    def storage(self, v, perm=None):
        """The ONNX tensor of ``v``'s storage (integers if quantized), its
        dims permuted by ``perm`` (default: v's own layout)."""
        perm = v.perm if perm is None else tuple(perm)
        if v.dq is not None:
            return self.dequantized(v.dq, perm)
        if v.const:
            return self.init(np.transpose(v.array, perm) if perm else v.array)
        if perm == v.perm:
            return v.name
        key = (v.name, perm)
        if key not in self._transposed:
            # ONNX tensor dim j holds MLIR dim v.perm[j]; want perm[j].
            inv = _inverse(v.perm)
            self._transposed[key] = self.node("Transpose", [v.name],
                                              perm=[inv[p] for p in perm])
        return self._transposed[key]

    def qparams(self, q, perm):
        """(scale, zero point) initializers and the ONNX axis of ``q``."""
        dtype = _NP_STORAGE.get(q.storage) if q.storage != "i32" else None
        if dtype is None:
            raise Unsupported(f"storage type {q.storage} (ONNX quantizes to u8 and i8)")
        if q.axis is None:
            scale, zp, axis = np.float32(q.scales[0]), dtype(q.zero_points[0]), None
        else:
            scale = np.array(q.scales, np.float32)
            zp = np.array(q.zero_points, dtype)
            axis = perm.index(q.axis)
        return self.init(scale, "scale"), self.init(np.array(zp, dtype), "zero_point"), axis

    def dequantized(self, v, perm=None):
        """The float tensor of ``v`` in layout ``perm``: DequantizeLinear of
        its integers when quantized."""
        perm = v.perm if perm is None else tuple(perm)
        if not v.type.quantized:
            return self.storage(v, perm)
        scale, zp, axis = self.qparams(v.qtype, perm)
        attrs = {} if axis is None else {"axis": axis}
        return self.node("DequantizeLinear", [self.storage(v, perm), scale, zp], **attrs)

    def dequantized_exactly(self, v, perm):
        """``dequantized``, but for a per-tensor quantized ``v`` in the exact
        form as qnt's `f32(q - Z) * f32(S)` (Cast, Sub, Mul), which ORT
        fuses into none of its integer operators."""
        if not (self.exact and v.type.quantized and v.qtype.axis is None):
            return self.dequantized(v, perm)
        q = v.qtype
        ints = self.node("Cast", [self.storage(v, perm)], to=self.TensorProto.FLOAT)
        centered = self.node("Sub", [ints, self.init(np.float32(q.zero_points[0]), "zero_point")])
        return self.node("Mul", [centered, self.init(np.float32(q.scales[0]), "scale")])

    def quantize(self, x, rtype, perm, exact=True, multiplier=None):
        """Float tensor ``x`` (layout ``perm``) quantized to ``rtype``.

        ``exact``: qnt's rounding, ``rint(x * f32(1 / S)) + Z``, as a Mul by
        the reciprocal (or ``multiplier``) and a QuantizeLinear of scale 1
        (ONNX's QuantizeLinear divides by S, which differs at ties); otherwise
        QuantizeLinear(S, Z), the form ORT fuses into the op before it. An
        integer Clip follows when the range is narrower than the storage's."""
        q = rtype.element
        if exact and self.exact:
            shape = [1] * len(perm)
            if q.axis is not None:
                shape[perm.index(q.axis)] = -1
            inv = (np.float32(1) / np.array(q.scales, np.float32) if multiplier is None
                   else np.array([multiplier], np.float32))
            x = self.node("Mul", [x, self.init(inv.reshape(shape) if q.axis is not None
                                                 else inv[0], "inv_scale")])
            q = UniformType(q.storage, q.qmin, q.qmax, q.axis, [1.0] * len(q.scales),
                            q.zero_points)
        scale, zp, axis = self.qparams(q, perm)
        attrs = {} if axis is None else {"axis": axis}
        y = self.node("QuantizeLinear", [x, scale, zp], **attrs)
        if not q.full_range:
            dtype = _NP_STORAGE[q.storage]
            y = self.node("Clip", [y, self.init(dtype(q.qmin), "qmin"),
                                   self.init(dtype(q.qmax), "qmax")])
        return Value(rtype, y, perm)

    def result(self, x, rtype, perm, exact=True):
        """A float op's output ``x`` as the MLIR result of type ``rtype``
        (``exact``: see `quantize`)."""
        if rtype.quantized:
            return self.quantize(x, rtype, perm, exact)
        return Value(rtype, x, perm)

    def activation(self, x, op):
        """A fused activation (relu, relu6, clamp) applied to float ``x``."""
        kind = op.attrs.get("activation", "none")
        if kind == "none":
            return x
        if kind == "relu":
            return self.node("Relu", [x])
        lo, hi = ((0.0, 6.0) if kind == "relu6"
                  else (op.attrs.get("clamp_min", -np.inf), op.attrs.get("clamp_max", np.inf)))
        return self.node("Clip", [x, self.init(np.float32(lo), "min"),
                                  self.init(np.float32(hi), "max")])

    # -- the function -----------------------------------------------------------

    def run(self):
        f = self.func
        unsupported = [op for op in f.ops if op.name not in HANDLERS]
        if unsupported:
            raise OnnxExportError(
                f"{len(unsupported)} op(s) cannot be exported to ONNX:\n" + "\n".join(
                    f"  line {op.line}{' (' + op.loc + ')' if op.loc else ''}: {op.name}"
                    for op in unsupported))
        graph_inputs = []
        for i, ((ssa, ty), name) in enumerate(zip(f.args, f.arg_names)):
            if not isinstance(ty, TensorType) or ty.element not in _ONNX_DTYPE \
                    or ty.quantized:
                raise OnnxExportError(f"argument {i} has type {ty}: inputs must be tensors "
                                      f"of f32, i64, i32 or i1")
            name = self.fresh(name or (f"input_{i}" if len(f.args) > 1 else "input"))
            graph_inputs.append(self.helper.make_tensor_value_info(
                name, getattr(self.TensorProto, _ONNX_DTYPE[ty.element]), ty.shape))
            self.values[ssa] = Value(ty, name)
        for op in f.ops:
            self.loc = op.loc or f"{op.name.split('.')[-1]}_{op.line}"
            try:
                results = HANDLERS[op.name](self, op, [self.values[o] for o in op.operands])
            except Unsupported as e:
                raise OnnxExportError(f"line {op.line}{' (' + op.loc + ')' if op.loc else ''}:"
                                      f" {op.name}: {e}") from None
            if not isinstance(results, (list, tuple)):
                results = [results]
            for ssa, v in zip(op.results, results):
                self.values[ssa] = v
        outputs = []
        self.loc = "output"
        for i, ssa in enumerate(f.returns):
            v = self.values[ssa]
            if not isinstance(v.type, TensorType) or v.type.quantized:
                raise OnnxExportError(f"result {i} has type {v.type}: results must be float "
                                      f"or integer tensors (end with quant.dcast)")
            name = "output" if len(f.returns) == 1 else f"output_{i}"
            self._names.add(name)
            self.nodes.append(self.helper.make_node("Identity", [self.storage(
                v, _identity(v.type.rank))], [name], name=self.fresh(f"{name}/Identity")))
            outputs.append(self.helper.make_tensor_value_info(
                name, getattr(self.TensorProto, _ONNX_DTYPE[v.type.element]), v.type.shape))
        graph = self.helper.make_graph(self.nodes, f.name or "main", graph_inputs, outputs,
                                       initializer=self.inits)
        model = self.helper.make_model(graph, producer_name="qnt", opset_imports=[
            self.helper.make_operatorsetid("", OPSET)])
        model.ir_version = 8
        # Whose arithmetic the file's integers follow: import_onnx reads it back.
        self.helper.set_model_props(model, {"qnt.numerics": self.numerics})
        return model


# ---------------------------------------------------------------------------
# Handlers: (exporter, op, operand Values) -> result Value(s)
# ---------------------------------------------------------------------------

def _const_array(v, what):
    if not v.const:
        raise Unsupported(f"{what} must be a constant")
    return v.array


def constant(ex, op, ins):
    value = op.attrs.get("value", op.attrs.get("values"))
    return Value(op.result_type, array=np.asarray(value))


def alias(ex, op, ins):
    """The operand under another type: stubs, identity, quant.scast (the same
    integers)."""
    v = ins[0]
    return Value(op.result_type, v.name, v.perm, v.array, v.dq)


def _quantized_const(array, qtype):
    """A float constant quantized here with qnt's rounding (docs/numerics.md):
    ``clamp(rint(x * f32(1 / S)) + Z, qmin, qmax)``."""
    q = qtype.element
    shape = [1] * qtype.rank
    if q.axis is not None:
        shape[q.axis] = -1
    inv = (np.float32(1) / np.array(q.scales, np.float32)).reshape(shape)
    ints = np.clip(np.rint(array.astype(np.float32) * inv)
                   + np.array(q.zero_points).reshape(shape), q.qmin, q.qmax)
    return Value(qtype, array=ints.astype(_NP_STORAGE[q.storage]))


def qcast(ex, op, ins):
    x = ins[0]
    if x.const:
        return _quantized_const(x.array, op.result_type)
    return ex.quantize(ex.dequantized(x), op.result_type, x.perm)


def dcast(ex, op, ins):
    x = ins[0]
    if x.const:
        return Value(op.result_type, dq=x)
    return Value(op.result_type, ex.dequantized(x), x.perm)


def fake_quant(ex, op, ins):
    """qnt.fake_quant: QuantizeLinear then DequantizeLinear (a constant
    weight: its integers, computed here, then DequantizeLinear)."""
    x = ins[0]
    spec = op.attrs["qspec"]
    storage = {"u8": "u8", "s8": "i8"}.get(spec.get("dtype"))
    if storage is None:
        raise Unsupported(f"fake quant to {spec.get('dtype')}")
    scales = [float(s) for s in op.attrs["scale"]]
    zps = [int(z) for z in op.attrs["zero_point"]]
    q = UniformType(storage, int(spec["quant_min"]), int(spec["quant_max"]),
                    spec.get("axis") if len(scales) > 1 or "axis" in spec else None,
                    scales, zps)
    qtype = TensorType(x.type.shape, q)
    if x.const:
        return Value(op.result_type, dq=_quantized_const(x.array, qtype))
    quantized = ex.quantize(ex.storage(x), qtype, x.perm)
    return Value(op.result_type, ex.dequantized(quantized), quantized.perm)


def _bias(ex, op, ins, x, w):
    """The bias operand: an int32 constant in units of S_x * S_w[c]
    (DequantizeLinear, as ORT's QDQ convs read it) or a float one."""
    if len(ins) < 3:
        return []
    b = _const_array(ins[2], "the bias")
    if b.dtype != np.int32:
        return [ex.init(b.astype(np.float32), "bias")]
    wq, xq = w.qtype, x.qtype
    scale = (np.float32(xq.scales[0]) * np.array(wq.scales, np.float32)).astype(np.float32)
    if scale.size == 1:
        scale, zp, attrs = scale[0], np.int32(0), {}
    else:
        zp, attrs = np.zeros(scale.size, np.int32), {"axis": 0}
    return [ex.node("DequantizeLinear", [ex.init(b, "bias"), ex.init(scale, "bias_scale"),
                                         ex.init(zp, "bias_zero_point")], **attrs)]


def qnt_multipliers(x_scale, w_scales, y_scale):
    """qnt's requantization multipliers: f32(S_x * S_w[c] / S_y) computed in
    double from the f32 scales (docs/numerics.md)."""
    f = lambda v: np.asarray(v, np.float32).astype(np.float64)  # noqa: E731
    return (f(x_scale) * f(w_scales) / f(y_scale)).astype(np.float32)


def ort_multipliers(x_scale, w_scales, y_scale):
    """ONNX Runtime's (QLinearConv, QGemm): ``X_scale * W_scale[c] / Y_scale``
    in f32, rounded after each operation."""
    return ((np.float32(x_scale) * np.asarray(w_scales, np.float32)).astype(np.float32)
            / np.float32(y_scale)).astype(np.float32)


def ort_matching_scales(x_scale, w_scales, y_scale, max_ulps=8):
    """``w_scales`` (f32), each moved by the fewest ulps (at most
    ``max_ulps``) for which ORT's multiplier equals qnt's; unchanged where
    they already agree or no such scale is that near."""
    scales = np.asarray(w_scales, np.float32)
    want = qnt_multipliers(x_scale, scales, y_scale)
    best = scales.copy()
    done = ort_multipliers(x_scale, scales, y_scale) == want
    for k in range(1, max_ulps + 1):
        for sign in (1, -1):
            trial = (scales.view(np.int32) + sign * k).view(np.float32)
            hit = ~done & (ort_multipliers(x_scale, trial, y_scale) == want)
            best[hit], done = trial[hit], done | hit
    return best


def _fused_weight(ex, op, x, w):
    """``w`` with weight scales that make ORT's multipliers equal qnt's.

    ORT's fused conv / gemm requantizes with `ort_multipliers`, qnt with
    `qnt_multipliers`; they differ by an ulp for some channels, which moves
    a value at a .5 boundary by one step. Exact export moves such a
    channel's weight scale by the fewest ulps (at most 8) that give qnt's
    multiplier through ORT's formula: the integers are kept, the float
    reading of the weight moves by ~1e-7 relative. Not every multiplier is
    reachable so (about a fifth of the differing channels of resnet18 are
    not, whatever the distance): those keep ORT's."""
    out = op.result_type
    if not (ex.exact and x.type.quantized and out.quantized and (w.dq or w).type.quantized):
        return w
    q = (w.dq or w).qtype
    scales = np.array(q.scales, np.float32)
    best = ort_matching_scales(x.qtype.scales[0], scales, out.element.scales[0])
    if np.array_equal(best, scales):
        return w
    adjusted = UniformType(q.storage, q.qmin, q.qmax, q.axis, [float(v) for v in best],
                           q.zero_points)
    quantized = Value(TensorType((w.dq or w).type.shape, adjusted), array=(w.dq or w).array)
    return Value(w.type, dq=quantized) if w.dq is not None else quantized


def _weight(ex, w, perm):
    """A constant weight in layout ``perm`` (integers + DequantizeLinear)."""
    if w.dq is None:
        _const_array(w, "the weight")
    return ex.dequantized(w, perm)


def _onnx_pads(op, x, kernel, stride, dilation=(1, 1)):
    """ONNX pads [top, left, bottom, right] of the op's [top, bottom, left,
    right]. TOSA trims the end pads to what the windows read; where the
    begin pad on both ends gives the same output size it is written so
    (symmetric, as PyTorch and most ONNX readers expect): the extra end
    padding is never read."""
    pad = [int(p) for p in op.attrs.get("pad", [0, 0, 0, 0])]
    out = op.result_type.shape[1:3]
    ends = []
    for i in range(2):
        begin, end = pad[2 * i], pad[2 * i + 1]
        window = dilation[i] * (kernel[i] - 1) + 1
        if end < begin and (x.type.shape[1 + i] + 2 * begin - window) // stride[i] + 1 == out[i]:
            end = begin
        ends.append(end)
    return [pad[0], pad[2], ends[0], ends[1]]


def conv2d(ex, op, ins, groups=None):
    """qnt.conv2d and tosa.conv2d (OHWI weight, pad [top, bottom, left,
    right]; TOSA's zero-point operands are 0 in float)."""
    x = ins[0]
    w = _fused_weight(ex, op, x, ins[1])
    if "dynamic_qspec" in op.attrs:
        raise Unsupported("dynamic quantization (export the float model instead)")
    kernel = w.type.shape[1:3]
    stride, dilation = [int(s) for s in op.attrs["stride"]], [int(d) for d in op.attrs["dilation"]]
    y = ex.node("Conv", [ex.dequantized(x, NCHW), _weight(ex, w, NCHW)] + _bias(ex, op, ins, x, w),
                kernel_shape=list(kernel), strides=stride, dilations=dilation,
                pads=_onnx_pads(op, x, kernel, stride, dilation),
                group=groups or int(op.attrs.get("groups", 1)))
    return ex.result(ex.activation(y, op), op.result_type, NCHW, exact=False)


def depthwise_conv2d(ex, op, ins):
    """tosa.depthwise_conv2d: weight [KH, KW, C, M] -> OHWI [C * M, KH, KW, 1]
    with C groups (a float constant: --qnt-fuse makes quantizable ones
    qnt.conv2d)."""
    w = ins[1]
    kh, kw, c, m = w.type.shape
    array = _const_array(w, "the weight").transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
    ohwi = Value(TensorType((c * m, kh, kw, 1), w.type.element),
                 array=array.transpose(0, 2, 3, 1))
    return conv2d(ex, op, [ins[0], ohwi] + ins[2:], groups=c)


def linear(ex, op, ins):
    x = ins[0]
    w = _fused_weight(ex, op, x, ins[1])
    if "dynamic_qspec" in op.attrs:
        raise Unsupported("dynamic quantization (export the float model instead)")
    if x.type.rank != 2:
        raise Unsupported(f"input of rank {x.type.rank}")
    y = ex.node("Gemm", [ex.dequantized(x, (0, 1)), _weight(ex, w, (0, 1))]
                + _bias(ex, op, ins, x, w), transB=1)
    return ex.result(ex.activation(y, op), op.result_type, (0, 1), exact=False)


def _common_perm(ins):
    """The layout of the first computed operand (constants follow it)."""
    for v in ins:
        if isinstance(v.type, TensorType) and not v.fixed:
            return v.perm
    return ins[0].perm


def binary(onnx_op):
    """qnt.add / qnt.mul. Quantized and exact: qnt's formula, the operands
    dequantized exactly (`Exporter.dequantized_exactly`) rather than in the
    QDQ form ORT fuses into QLinearAdd / QLinearMul, whose arithmetic differs
    (docs/numerics.md)."""
    def handler(ex, op, ins):
        perm = _common_perm(ins[:2])
        dequantize = (ex.dequantized_exactly if op.result_type.quantized
                      else ex.dequantized)
        y = ex.node(onnx_op, [dequantize(v, perm) for v in ins[:2]])
        return ex.result(ex.activation(y, op), op.result_type, perm)
    return handler


def batch_matmul(ex, op, ins):
    a = ex.dequantized(ins[0], (0, 1, 2))
    b = ex.dequantized(ins[1], (0, 2, 1) if op.attrs.get("transpose_b") else (0, 1, 2))
    return ex.result(ex.node("MatMul", [a, b]), op.result_type, (0, 1, 2), exact=False)


def avg_pool2d(ex, op, ins):
    """Quantized (qnt.avg_pool2d): qnt's arithmetic, exact: the window sums
    of the integers (ReduceSum, or a depthwise Conv of ones: float sums of
    integers below 2^24 are exact), minus Z_in * count, times
    f32(S_in / S_out / count), rounded. Float (tosa.avg_pool2d, padding
    excluded from the count): AveragePool."""
    x = ins[0]
    kernel = [int(k) for k in op.attrs["kernel"]]
    stride = [int(s) for s in op.attrs["stride"]]
    pad = _onnx_pads(op, x, kernel, stride)
    global_ = kernel == list(x.type.shape[1:3]) and not any(pad)
    if not x.type.quantized or not ex.exact:
        xin = ex.dequantized(x, NCHW)
        if global_ and op.result_type.shape[1:3] == (1, 1):
            y = ex.node("GlobalAveragePool", [xin])
        else:
            y = ex.node("AveragePool", [xin], kernel_shape=kernel, strides=stride, pads=pad)
        return ex.result(y, op.result_type, NCHW)
    q, out, count = x.qtype, op.result_type.element, kernel[0] * kernel[1]
    ints = ex.node("Cast", [ex.storage(x, NCHW)], to=ex.TensorProto.FLOAT)
    if global_:
        sums = ex.node("ReduceSum", [ints, ex.init(np.array([2, 3], np.int64), "axes")],
                       keepdims=1)
    else:
        ones = np.ones((x.type.shape[3], 1, *kernel), np.float32)
        sums = ex.node("Conv", [ints, ex.init(ones, "ones")], kernel_shape=kernel,
                       strides=stride, group=x.type.shape[3])
    centered = ex.node("Sub", [sums, ex.init(np.float32(q.zero_points[0] * count), "offset")])
    multiplier = np.float32(np.float64(q.scales[0]) / np.float64(out.scales[0]) / count)
    return ex.quantize(centered, op.result_type, NCHW, multiplier=multiplier)


def max_pool2d(ex, op, ins):
    """On the integers when quantized (max commutes with the monotone map)."""
    x = ins[0]
    kernel, stride = [int(k) for k in op.attrs["kernel"]], [int(s) for s in op.attrs["stride"]]
    y = ex.node("MaxPool", [ex.storage(x, NCHW)], kernel_shape=kernel, strides=stride,
                pads=_onnx_pads(op, x, kernel, stride))
    return Value(op.result_type, y, NCHW)


def table(ex, op, ins):
    """qnt.table: output = table[input - qmin], a Gather on the integers."""
    x = ins[0]
    out = op.result_type.element
    entries = np.asarray(op.attrs["table"], np.int8).view(_NP_STORAGE[out.storage])
    index = ex.node("Cast", [ex.storage(x)], to=ex.TensorProto.INT32)
    if x.qtype.qmin:
        index = ex.node("Sub", [index, ex.init(np.int32(x.qtype.qmin), "qmin")])
    y = ex.node("Gather", [ex.init(entries, "table"), index], axis=0)
    return Value(op.result_type, y, x.perm)


def batch_norm(ex, op, ins):
    """qnt.batch_norm: clamp(x * scale[c] + shift[c]) on the last MLIR dim."""
    x = ins[0]
    shape = [1] * x.type.rank
    shape[x.perm.index(x.type.rank - 1)] = -1
    y = ex.node("Mul", [ex.dequantized(x), ex.init(
        np.asarray(op.attrs["scale"], np.float32).reshape(shape), "scale")])
    y = ex.node("Add", [y, ex.init(np.asarray(op.attrs["shift"], np.float32).reshape(shape),
                                   "shift")])
    if "clamp_min" in op.attrs or "clamp_max" in op.attrs:
        y = ex.node("Clip", [y, ex.init(np.float32(op.attrs.get("clamp_min", -np.inf)), "min"),
                             ex.init(np.float32(op.attrs.get("clamp_max", np.inf)), "max")])
    return ex.result(y, op.result_type, x.perm)


def transpose(ex, op, ins):
    """Only the layout changes: ONNX dim j stays MLIR input dim perm[j],
    which is result dim perms^-1[perm[j]]."""
    x = ins[0]
    perms = [int(p) for p in op.attrs["perms"]]
    if x.const:
        return Value(op.result_type, array=np.transpose(x.array, perms))
    inv = _inverse(perms)
    return Value(op.result_type, x.name, [inv[p] for p in x.perm])


def reshape(ex, op, ins):
    x = ins[0]
    if x.const:
        return Value(op.result_type, array=x.array.reshape(op.result_type.shape))
    shape = ex.init(np.array(op.result_type.shape, np.int64), "shape")
    y = ex.node("Reshape", [ex.storage(x, _identity(x.type.rank)), shape])
    return Value(op.result_type, y)


def clamp(ex, op, ins):
    """tosa.clamp: on floats, or on the integers of a quantized value (its
    bounds are then integers)."""
    x = ins[0]
    if x.type.quantized:
        dtype = _NP_STORAGE[x.qtype.storage]
        lo, hi = dtype(op.attrs["min_val"]), dtype(op.attrs["max_val"])
    else:
        lo, hi = np.float32(op.attrs["min_val"]), np.float32(op.attrs["max_val"])
    y = ex.node("Clip", [ex.storage(x), ex.init(lo, "min"), ex.init(hi, "max")])
    return Value(op.result_type, y, x.perm)


def elementwise(onnx_op, operands=None):
    """A float (or same-type integer) elementwise op; ``operands``: how
    many leading operands are data (the rest are TOSA zero points, shifts)."""
    def handler(ex, op, ins):
        data = ins[:operands] if operands else ins
        perm = _common_perm(data)
        if any(v.type.quantized for v in data):
            raise Unsupported("quantized operands (expected the float op)")
        y = ex.node(onnx_op, [ex.storage(v, perm) for v in data])
        return Value(op.result_type, y, perm)
    return handler


def rsqrt(ex, op, ins):
    x = ins[0]
    y = ex.node("Reciprocal", [ex.node("Sqrt", [ex.storage(x)])])
    return Value(op.result_type, y, x.perm)


def concat(ex, op, ins):
    """On the integers when every operand has the result's type, else
    dequantize, concatenate, quantize."""
    perm = _common_perm(ins)
    axis = perm.index(int(op.attrs["axis"]))
    rtype = op.result_type
    if all(not v.type.quantized or v.qtype == rtype.element for v in ins) and (
            rtype.quantized or not any(v.type.quantized for v in ins)):
        return Value(rtype, ex.node("Concat", [ex.storage(v, perm) for v in ins], axis=axis), perm)
    y = ex.node("Concat", [ex.dequantized(v, perm) for v in ins], axis=axis)
    return ex.result(y, rtype, perm)


def _shape_operand(v, what):
    return [int(d) for d in _const_array(v, what).reshape(-1)]


def slice_(ex, op, ins):
    x = ins[0]
    start, size = _shape_operand(ins[1], "start"), _shape_operand(ins[2], "size")
    perm = x.perm
    starts = [start[p] for p in perm]
    ends = [start[p] + size[p] for p in perm]
    if x.const:
        index = tuple(slice(s, s + n) for s, n in zip(start, size))
        return Value(op.result_type, array=x.array[index])
    y = ex.node("Slice", [ex.storage(x), ex.init(np.array(starts, np.int64), "starts"),
                          ex.init(np.array(ends, np.int64), "ends")])
    return Value(op.result_type, y, perm)


def pad(ex, op, ins):
    """tosa.pad: padding [lo0, hi0, lo1, hi1, ...] with a constant (the
    integer pad value for a quantized tensor)."""
    x = ins[0]
    padding = _shape_operand(ins[1], "padding")
    perm = x.perm
    pads = [padding[2 * p] for p in perm] + [padding[2 * p + 1] for p in perm]
    value = _const_array(ins[2], "the pad value").reshape(-1)[:1].reshape(())
    if x.type.quantized:
        value = value.astype(_NP_STORAGE[x.qtype.storage])
    y = ex.node("Pad", [ex.storage(x), ex.init(np.array(pads, np.int64), "pads"),
                        ex.init(value, "value")])
    return Value(op.result_type, y, perm)


def reduce(onnx_op, axes_input):
    def handler(ex, op, ins):
        x = ins[0]
        if x.type.quantized:
            raise Unsupported("quantized operand")
        axis = x.perm.index(int(op.attrs["axis"]))
        if axes_input:
            y = ex.node(onnx_op, [ex.storage(x), ex.init(np.array([axis], np.int64), "axes")],
                        keepdims=1)
        else:
            y = ex.node(onnx_op, [ex.storage(x)], axes=[axis], keepdims=1)
        return Value(op.result_type, y, x.perm)
    return handler


def matmul(ex, op, ins):
    """tosa.matmul (float): [N, M, K] x [N, K, W]."""
    a, b = ins[0], ins[1]
    y = ex.node("MatMul", [ex.storage(a, (0, 1, 2)), ex.storage(b, (0, 1, 2))])
    return Value(op.result_type, y)


def tile(ex, op, ins):
    x = ins[0]
    multiples = _shape_operand(ins[1], "multiples")
    y = ex.node("Tile", [ex.storage(x), ex.init(np.array([multiples[p] for p in x.perm],
                                                         np.int64), "repeats")])
    return Value(op.result_type, y, x.perm)


def cast(ex, op, ins):
    x = ins[0]
    to = _ONNX_DTYPE.get(op.result_type.element)
    if to is None or x.type.quantized:
        raise Unsupported(f"cast to {op.result_type.element}")
    y = ex.node("Cast", [ex.storage(x)], to=getattr(ex.TensorProto, to))
    return Value(op.result_type, y, x.perm)


HANDLERS = {
    "arith.constant": constant, "tosa.const": constant, "tosa.const_shape": constant,
    "quant.qcast": qcast, "quant.dcast": dcast, "quant.scast": alias,
    "qnt.quant_stub": alias, "qnt.dequant_stub": alias, "tosa.identity": alias,
    "qnt.fake_quant": fake_quant,
    "qnt.conv2d": conv2d, "tosa.conv2d": conv2d, "tosa.depthwise_conv2d": depthwise_conv2d,
    "qnt.linear": linear, "qnt.add": binary("Add"),
    "qnt.mul": binary("Mul"), "qnt.batch_matmul": batch_matmul, "qnt.avg_pool2d": avg_pool2d,
    "qnt.table": table, "qnt.batch_norm": batch_norm,
    "tosa.avg_pool2d": avg_pool2d, "tosa.max_pool2d": max_pool2d,
    "tosa.transpose": transpose, "tosa.reshape": reshape, "tosa.clamp": clamp,
    "tosa.concat": concat, "tosa.slice": slice_, "tosa.pad": pad, "tosa.tile": tile,
    "tosa.cast": cast, "tosa.matmul": matmul,
    "tosa.add": elementwise("Add"), "tosa.sub": elementwise("Sub"),
    "tosa.mul": elementwise("Mul", 2), "tosa.pow": elementwise("Pow"),
    "tosa.maximum": elementwise("Max"), "tosa.minimum": elementwise("Min"),
    "tosa.sigmoid": elementwise("Sigmoid"), "tosa.tanh": elementwise("Tanh"),
    "tosa.exp": elementwise("Exp"), "tosa.log": elementwise("Log"),
    "tosa.erf": elementwise("Erf"), "tosa.reciprocal": elementwise("Reciprocal"),
    "tosa.abs": elementwise("Abs"), "tosa.floor": elementwise("Floor"),
    "tosa.ceil": elementwise("Ceil"), "tosa.negate": elementwise("Neg", 1),
    "tosa.rsqrt": rsqrt,
    "tosa.select": elementwise("Where"), "tosa.equal": elementwise("Equal"),
    "tosa.greater": elementwise("Greater"), "tosa.greater_equal": elementwise("GreaterOrEqual"),
    "tosa.logical_not": elementwise("Not"), "tosa.logical_and": elementwise("And"),
    "tosa.logical_or": elementwise("Or"),
    "tosa.reduce_sum": reduce("ReduceSum", True), "tosa.reduce_max": reduce("ReduceMax", False),
    "tosa.reduce_min": reduce("ReduceMin", False),
}


def to_onnx(path, build_dir=None, exact=True):
    """The ONNX ModelProto of the qnt module at ``path`` (``exact``: see
    `Exporter`)."""
    try:
        func = read_module(path, build_dir)
    except MlirReadError as e:
        raise OnnxExportError(str(e)) from None
    model = Exporter(func, exact).run()
    import onnx
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:  # a bug here, not the user's
        raise OnnxExportError(f"the exported model does not pass onnx.checker: {e}") from None
    return model


def export_onnx(path, out, build_dir=None, exact=True):
    """Write the qnt module at ``path`` as ONNX to ``out`` (written whole or
    not at all); returns the ModelProto. ``exact``: see `Exporter`."""
    model = to_onnx(path, build_dir, exact)
    with atomic_output(out, "wb") as f:
        f.write(model.SerializeToString())
    return model
