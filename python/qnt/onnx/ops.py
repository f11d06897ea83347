"""The ONNX op table: one converter per op type, ``CONVERTERS[op_type](b,
node, inputs, attrs)`` -> the output `Tensor` (or a list, one per output).

A converter builds with `Builder.call` / ``method`` / ``module`` (PyTorch
functions and modules that `qnt.export` has handlers for), reads constant
inputs with `const` and raises `Unsupported` for what it cannot express.
`fuse_patterns` first rewrites multi-node idioms of exporters (the erf
GELU) into single synthetic nodes.
"""

import math
import operator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.qat as nnqat
from torch.ao.quantization import default_qat_qconfig

from ..ops.quantization import FixedFakeQuantize
from .importer import DYNAMIC_USE, Tensor, Unsupported, np_dtype


def const(t, what):
    """The constant value of input ``t`` (a torch tensor)."""
    if t is None or not t.const:
        raise Unsupported(f"{what} must be a constant (an initializer or computed from "
                          f"constants and shapes only)")
    return t.value


def ints(t, what):
    return [int(v) for v in const(t, what).reshape(-1).tolist()]


def optional_input(ins, i):
    return ins[i] if len(ins) > i and ins[i] is not None else None


def _axes_of(b, ins, a, index=1):
    """``axes``: an attribute, or an input from opset 13 (Squeeze, Unsqueeze,
    ReduceSum) / 18 (the other reductions) on."""
    t = optional_input(ins, index)
    if t is not None:
        return ints(t, "axes")
    return [int(v) for v in a["axes"]] if "axes" in a else None


# ---------------------------------------------------------------------------
# Convolution, linear, normalization
# ---------------------------------------------------------------------------

def _same_pads(in_size, kernel, stride, dilation, upper):
    pads_begin, pads_end = [], []
    for i, k, s, d in zip(in_size, kernel, stride, dilation):
        out = -(-i // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - i)
        small, big = total // 2, total - total // 2
        pads_begin.append(small if upper else big)
        pads_end.append(big if upper else small)
    return pads_begin + pads_end


def _window(x, a, kernel):
    """(strides, dilations, pads [begin..., end...]) of a conv / pool node."""
    rank = len(kernel)
    strides = list(a.get("strides", [1] * rank))
    dilations = list(a.get("dilations", [1] * rank))
    auto_pad = a.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(x.shape[2:], kernel, strides, dilations, auto_pad == "SAME_UPPER")
    elif auto_pad == "VALID":
        pads = [0] * (2 * rank)
    else:
        pads = list(a.get("pads", [0] * (2 * rank)))
    return strides, dilations, pads


def _torch_pad(pads):
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, ...] of the trailing dims
    -> F.pad's list (last dimension first)."""
    rank = len(pads) // 2
    out = []
    for d in reversed(range(rank)):
        out += [pads[d], pads[rank + d]]
    return out


def _weight_fake_quant(t, axis):
    """A dequantized weight's fake quant, per channel along ``axis`` of the
    weight as the module holds it."""
    fq = t.fq
    if fq is None or fq.ch_axis < 0:
        return fq
    return FixedFakeQuantize(fq.scale, fq.zero_point, fq.dtype, axis)


def conv(b, node, ins, a):
    x, m = _conv_module(b, ins[0], ins[1], optional_input(ins, 2), a)
    return b.module(m, x)


def _conv_module(b, x, w, bias, a):
    """(input, module) of a Conv node: ``x`` padded first when the pads are
    asymmetric; nn.qat.Conv2d when the weight ``w`` has a fake quant."""
    weight = const(w, "the weight")
    rank = weight.dim() - 2
    if rank not in (1, 2) or x.rank != rank + 2:
        raise Unsupported(f"a {rank}-D convolution is not supported (1-D and 2-D are)")
    kernel = list(a.get("kernel_shape", weight.shape[2:]))
    strides, dilations, pads = _window(x, a, kernel)
    groups = int(a.get("group", 1))
    if pads[:rank] != pads[rank:]:
        x = b.call(F.pad, x, _torch_pad(pads))
        pads = [0] * (2 * rank)
    out_channels, in_per_group = weight.shape[:2]
    args = (in_per_group * groups, out_channels, kernel)
    kwargs = dict(stride=strides, padding=pads[:rank], dilation=dilations, groups=groups,
                  bias=True)
    if w.fq is not None:
        if rank != 2:
            raise Unsupported("a quantized 1-D convolution is not supported")
        if w.fq.ch_axis not in (-1, 0):
            raise Unsupported(f"a convolution weight quantized along axis {w.fq.ch_axis} "
                              f"(per output channel is axis 0)")
        m = nnqat.Conv2d(*args, **kwargs, qconfig=default_qat_qconfig)
        m.weight_fake_quant = _weight_fake_quant(w, 0)
    else:
        m = (nn.Conv2d if rank == 2 else nn.Conv1d)(*args, **kwargs)
    with torch.no_grad():
        m.weight.copy_(weight)
        m.bias.copy_(const(bias, "the bias") if bias is not None else 0)
    return x, m


def _linear_module(weight, bias, fq):
    """nn.Linear of weight [N, K] (nn.qat.Linear with the weight's fake quant)."""
    n, k = weight.shape
    if fq is not None:
        m = nnqat.Linear(k, n, bias=True, qconfig=default_qat_qconfig)
        m.weight_fake_quant = fq
    else:
        m = nn.Linear(k, n, bias=bias is not None)
    with torch.no_grad():
        m.weight.copy_(weight)
        if m.bias is not None:
            m.bias.copy_(bias if bias is not None else 0)
    return m


def gemm(b, node, ins, a):
    x, w, c = ins[0], ins[1], optional_input(ins, 2)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if a.get("transA", 0):
        x = b.call(torch.permute, x, (1, 0))
    if not w.const:
        y = b.call(torch.matmul, x, w if a.get("transB", 0) == 0
                   else b.call(torch.permute, w, (1, 0)))
        if alpha != 1.0:
            y = b.call(torch.mul, y, alpha)
        if c is not None:
            y = b.call(torch.add, y, c if beta == 1.0 else b.call(torch.mul, c, beta))
        return y
    trans_b = bool(a.get("transB", 0))
    weight = w.value if trans_b else w.value.t()
    # B's output dimension N is axis 0 with transB, else axis 1.
    if w.fq is not None and w.fq.ch_axis >= 0 and w.fq.ch_axis != (0 if trans_b else 1):
        raise Unsupported("a Gemm weight quantized along its input dimension")
    fq = _weight_fake_quant(w, 0)
    if alpha != 1.0:
        if fq is not None:
            raise Unsupported("a quantized Gemm with alpha != 1")
        weight = weight * alpha
    n = weight.shape[0]
    bias = None
    if c is not None:
        cv = const(c, "C") * beta
        if cv.numel() in (1, n) and (cv.dim() == 0 or cv.shape[-1] in (1, n)):
            bias = cv.reshape(-1).expand(n).clone()
        else:
            return b.call(torch.add, b.module(_linear_module(weight, None, fq), x), c)
    return b.module(_linear_module(weight.contiguous(), bias, fq), x)


def matmul(b, node, ins, a):
    x, w = ins
    if w.const and w.rank == 2 and x.rank >= 2 and w.value.dtype == torch.float32:
        fq = None
        if w.fq is not None:
            if w.fq.ch_axis == 0:
                raise Unsupported("a MatMul weight quantized along its input dimension")
            fq = _weight_fake_quant(w, 0)
        m = _linear_module(w.value.t().contiguous(), None, fq)
        y = b.module(m, x)
        y.linear = m
        return y
    return b.call(torch.matmul, x, w)


def batch_norm(b, node, ins, a):
    x = ins[0]
    if a.get("training_mode", 0):
        raise Unsupported("BatchNormalization in training mode")
    scale, bias, mean, var = (const(t, n) for t, n in
                              zip(ins[1:5], ("scale", "B", "input_mean", "input_var")))
    if x.rank not in (2, 3, 4):
        raise Unsupported(f"BatchNormalization of a rank-{x.rank} tensor")
    m = (nn.BatchNorm2d if x.rank == 4 else nn.BatchNorm1d)(
        scale.numel(), eps=float(a.get("epsilon", 1e-5)))
    with torch.no_grad():
        m.weight.copy_(scale)
        m.bias.copy_(bias)
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
    return b.module(m, x)


def layer_norm(b, node, ins, a):
    x, scale, bias = ins[0], ins[1], optional_input(ins, 2)
    axis = int(a.get("axis", -1)) % x.rank
    return b.call(F.layer_norm, x, x.shape[axis:], scale, bias, float(a.get("epsilon", 1e-5)))


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

def _pool_args(x, a):
    kernel = list(a["kernel_shape"])
    if len(kernel) != 2 or x.rank != 4:
        raise Unsupported(f"{len(kernel)}-D pooling is not supported (2-D is)")
    strides, dilations, pads = _window(x, a, kernel)
    if dilations != [1, 1]:
        raise Unsupported("pooling with dilations")
    if pads[:2] != pads[2:]:
        raise Unsupported(f"pooling with asymmetric pads {pads}")
    return kernel, strides, pads[:2], bool(a.get("ceil_mode", 0))


def max_pool(b, node, ins, a):
    if len([o for o in node.output if o]) > 1:
        raise Unsupported("MaxPool's Indices output")
    kernel, strides, pads, ceil = _pool_args(ins[0], a)
    return b.call(F.max_pool2d, ins[0], kernel, strides, pads, ceil_mode=ceil)


def _avg_pool2d(b, x, a, whole_kernel):
    """ONNX AveragePool of ``x``. With ceil_mode and count_include_pad a last
    window may run past the padded input: ONNX Runtime's float AveragePool
    (and PyTorch) divides it by the part inside, its QLinearAveragePool
    (``whole_kernel``) by the whole kernel, which zeros appended there and a
    pooling without ceil_mode give."""
    kernel, strides, pads, ceil = _pool_args(x, a)
    include = bool(a.get("count_include_pad", 0))
    if ceil and include and whole_kernel:
        extra = []
        for size, k, st, p in zip(x.shape[2:], kernel, strides, pads):
            out = -(-(size + 2 * p - k) // st) + 1
            if (out - 1) * st >= size + p:  # a window starting in the padding
                out -= 1
            extra.append(max(0, (out - 1) * st + k - (size + 2 * p)))
        if any(extra):
            (ph, pw), (eh, ew) = pads, extra
            x = b.call(F.pad, x, (pw, pw + ew, ph, ph + eh))
            return b.call(F.avg_pool2d, x, kernel, strides, 0, ceil_mode=False,
                          count_include_pad=True)
    return b.call(F.avg_pool2d, x, kernel, strides, pads, ceil_mode=ceil,
                  count_include_pad=include)


def average_pool(b, node, ins, a):
    """Between DequantizeLinear and QuantizeLinear under ONNX Runtime's
    numerics, ORT runs it as QLinearAveragePool."""
    x = ins[0]
    quantized = b.numerics == "onnxruntime" and any(
        t is x for t in b.dequantized.values())
    return _avg_pool2d(b, x, a, whole_kernel=quantized)


def global_average_pool(b, node, ins, a):
    x = ins[0]
    if x.rank == 4:
        return b.call(F.adaptive_avg_pool2d, x, 1)
    return b.call(torch.mean, x, tuple(range(2, x.rank)), keepdim=True)


def global_max_pool(b, node, ins, a):
    x = ins[0]
    return b.call(torch.amax, x, tuple(range(2, x.rank)), keepdim=True)


# ---------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------

def _binary(fn):
    def convert(b, node, ins, a):
        x, y = ins
        return b.call(fn, x, y)
    return convert


def div(b, node, ins, a):
    x, y = ins
    if not x.value.dtype.is_floating_point and not y.value.dtype.is_floating_point:
        return b.call(torch.div, x, y, rounding_mode="trunc")
    return b.call(torch.div, x, y)


def add(b, node, ins, a):
    """Add; a MatMul's bias-less linear absorbs a constant vector as its bias
    (the MatMul + Add an nn.Linear of a 3-D input exports as)."""
    x, y = ins
    if y.linear is not None and x.const:
        x, y = y, x
    m = x.linear
    if (m is not None and y.const and m.bias is None
            and b.single_use(node.input[0 if x is ins[0] else 1])
            and y.value.numel() == m.out_features and y.value.shape[-1] == m.out_features
            and y.rank <= 1):
        m.bias = nn.Parameter(y.value.reshape(-1).clone())
        return Tensor(x.node, x.value + y.value)
    return b.call(torch.add, x, y)


def _unary(fn):
    def convert(b, node, ins, a):
        return b.call(fn, ins[0])
    return convert


def clip(b, node, ins, a):
    x = ins[0]
    lo, hi = a.get("min"), a.get("max")
    if optional_input(ins, 1) is not None:
        lo = float(const(ins[1], "min"))
    if optional_input(ins, 2) is not None:
        hi = float(const(ins[2], "max"))
    if lo == 0.0 and hi == 6.0:
        return b.call(F.relu6, x)
    if lo == 0.0 and hi is None:
        return b.call(torch.relu, x)
    return b.call(torch.clamp, x, lo, hi)


def hard_sigmoid(b, node, ins, a):
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if np.float32(alpha) == np.float32(1 / 6) and beta == 0.5:
        return b.call(F.hardsigmoid, ins[0])
    y = b.call(torch.add, b.call(torch.mul, ins[0], alpha), beta)
    return b.call(torch.clamp, y, 0.0, 1.0)


def gelu(b, node, ins, a):
    return b.call(F.gelu, ins[0], approximate=a.get("approximate", "none"))


def pow_(b, node, ins, a):
    x, y = ins
    if y.const and y.value.numel() == 1 and not x.const:
        return b.call(torch.pow, x, float(y.value.reshape(-1)[0]))
    return b.call(torch.pow, x, y)


def softmax(fn):
    def convert(b, node, ins, a):
        return b.call(fn, ins[0], int(a.get("axis", -1)))
    return convert


def _reduce(fn):
    def convert(b, node, ins, a):
        x = ins[0]
        axes = _axes_of(b, ins, a)
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.rank))
        return b.call(fn, x, tuple(int(d) for d in axes), keepdim=bool(a.get("keepdims", 1)))
    return convert


def where(b, node, ins, a):
    return b.call(torch.where, *ins)


def mod(b, node, ins, a):
    """Mod of constants (index arithmetic such as Swin's window shifts):
    folded, with the sign of the divisor (Python's %), or with `fmod` 1 of
    the dividend (C's fmod)."""
    x, y = (const(t, f"Mod's {n}") for t, n in zip(ins, ("A", "B")))
    if not a.get("fmod", 0) and (x.is_floating_point() or y.is_floating_point()):
        raise Unsupported("Mod of floats with fmod 0 (ONNX asks for fmod 1)")
    if not x.is_floating_point() and not y.is_floating_point() and not y.all():
        raise Unsupported("integer Mod by zero")
    return Tensor(None, (torch.fmod if a.get("fmod", 0) else torch.remainder)(x, y))


def scatter_nd(b, node, ins, a):
    """ScatterND of constants (the attention masks torch.onnx.export writes
    for index assignments such as Swin's `mask[h, w] = i`): folded."""
    data, indices, updates = (const(t, f"ScatterND's {n}") for t, n in
                              zip(ins, ("data", "indices", "updates")))
    reduction = a.get("reduction", b"none")
    reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
    ops = {"none": lambda old, new: new, "add": torch.add, "mul": torch.mul,
           "max": torch.maximum, "min": torch.minimum}
    if reduction not in ops:
        raise Unsupported(f"ScatterND with reduction '{reduction}'")
    out = data.clone()
    k = indices.shape[-1]
    if k > data.dim():
        raise Unsupported(f"ScatterND with index tuples of {k} for a rank-{data.dim()} tensor")
    tuples = int(np.prod(indices.shape[:-1]))
    for index, update in zip(indices.reshape(tuples, k).tolist(),
                             updates.reshape(tuples, *data.shape[k:])):
        if any(not -data.shape[d] <= i < data.shape[d] for d, i in enumerate(index)):
            raise Unsupported(f"ScatterND index {index} out of range for data of shape "
                              f"{list(data.shape)}")
        at = tuple(int(i) % data.shape[d] for d, i in enumerate(index))
        out[at] = ops[reduction](out[at], update)
    return Tensor(None, out)


def _einsum_matmul(equation):
    """For an Einsum that is a batched matrix product, "<batch>ik,<batch>kj
    -> <batch>ij" with either operand's last two labels in either order,
    the second operand with the same batch labels or none ("bsd,dh->bsh",
    a projection): (transpose the first, transpose the second); else
    None."""
    eq = equation.replace(" ", "")
    if eq.count("->") != 1 or "." in eq:
        return None
    lhs, out = eq.split("->")
    operands = lhs.split(",")
    if len(operands) != 2:
        return None
    x, y = operands
    if len(x) < 2 or len(y) < 2 or len(out) != len(x) or y[:-2] not in ("", x[:-2]) \
            or out[:-2] != x[:-2] or len(set(x)) != len(x) or len(set(y)) != len(y) \
            or set(y[-2:]) & set(x[:-2]):
        return None
    i, j = out[-2:]
    shared = set(x[-2:]) & set(y[-2:])
    if len(shared) != 1 or set(x[-2:]) - shared != {i} or set(y[-2:]) - shared != {j}:
        return None
    (k,) = shared
    return x[-2:] == k + i, y[-2:] == j + k


def einsum(b, node, ins, a):
    """Einsum of a batched matrix product ("bhid,bhjd->bhij", "bhij,bhjd->bhid",
    "bsd,dh->bsh", ...): MatMul (`matmul`: a linear for a constant 2-D
    second operand), with the transposes the labels ask for."""
    eq = a["equation"]
    eq = eq.decode() if isinstance(eq, bytes) else eq
    form = _einsum_matmul(eq)
    if form is None or len(ins) != 2:
        raise Unsupported(f"Einsum '{eq}' (batched matrix products are supported)")
    x, y = ins
    if form[0]:
        x = b.call(torch.transpose, x, -1, -2)
    if form[1]:
        y = b.call(torch.transpose, y, -1, -2)
    return matmul(b, node, [x, y], a)


_CAST_DTYPES = {np.dtype("float32"): torch.float32, np.dtype("int64"): torch.int64,
                np.dtype("int32"): torch.int32, np.dtype("bool"): torch.bool}


def cast(b, node, ins, a):
    x = ins[0]
    dtype = np.dtype(np_dtype(int(a["to"])))
    if x.dyn is not None:  # MatMulInteger / ConvInteger -> Cast to float (ORT's dynamic form)
        if x.dyn.role != "acc" or dtype != np.float32:
            raise Unsupported(DYNAMIC_USE)
        return x
    if x.q is not None:  # QuantizeLinear -> Cast to its own type (PyTorch's exports)
        if _QDTYPES.get(dtype) != x.q[1].dtype:
            raise Unsupported(f"Cast of a QuantizeLinear output to {dtype}")
        return x
    if x.const:
        return Tensor(None, torch.from_numpy(x.value.numpy().astype(dtype)))
    if dtype not in _CAST_DTYPES:
        raise Unsupported(f"Cast to {dtype}")
    return b.method("to", x, _CAST_DTYPES[dtype])


def identity(b, node, ins, a):
    return ins[0]


def dropout(b, node, ins, a):
    """Dropout at inference, or of ratio 0: the input, and a mask of ones
    if asked for (torch.onnx.export writes one, unused, for `F.dropout`;
    torchvision 0.14's Swin calls `F.dropout(attn, p=0.0)` in training
    mode, the identity)."""
    mode, ratio = optional_input(ins, 2), optional_input(ins, 1)
    if mode is not None and bool(const(mode, "Dropout's training_mode")) and (
            ratio is None or float(const(ratio, "Dropout's ratio")) != 0.0):
        raise Unsupported("Dropout in training mode")
    if len(node.output) > 1 and node.output[1]:
        return [ins[0], Tensor(None, torch.ones(ins[0].shape, dtype=torch.bool))]
    return ins[0]


# ---------------------------------------------------------------------------
# Shapes and constants
# ---------------------------------------------------------------------------

def _reshaped(b, x, shape):
    shape = tuple(int(d) for d in shape)
    if shape == x.shape:
        return x
    return b.call(torch.reshape, x, shape)


def reshape(b, node, ins, a):
    x, target = ins[0], ints(ins[1], "the shape")
    if not a.get("allowzero", 0):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = x.value.numel() // max(known, 1)
    return _reshaped(b, x, target)


def flatten(b, node, ins, a):
    x = ins[0]
    axis = int(a.get("axis", 1)) % (x.rank + 1) if x.rank else 0
    return _reshaped(b, x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def squeeze(b, node, ins, a):
    x = ins[0]
    axes = _axes_of(b, ins, a)
    axes = {d % x.rank for d in axes} if axes else {d for d in range(x.rank) if x.shape[d] == 1}
    return _reshaped(b, x, [d for i, d in enumerate(x.shape) if i not in axes])


def unsqueeze(b, node, ins, a):
    x = ins[0]
    axes = _axes_of(b, ins, a)
    rank = x.rank + len(axes)
    axes = sorted(d % rank for d in axes)
    shape = list(x.shape)
    for d in axes:
        shape.insert(d, 1)
    return _reshaped(b, x, shape)


def transpose(b, node, ins, a):
    x = ins[0]
    perm = [int(p) for p in a.get("perm", reversed(range(x.rank)))]
    if perm == list(range(x.rank)):
        return x
    return b.call(torch.permute, x, tuple(perm))


def concat(b, node, ins, a):
    return b.call(torch.cat, [t for t in ins if t is not None], int(a["axis"]))


def split(b, node, ins, a):
    x = ins[0]
    axis = int(a.get("axis", 0)) % x.rank
    outputs = len(node.output)
    sizes = optional_input(ins, 1)
    sizes = ints(sizes, "split") if sizes is not None else list(a.get("split", []))
    if not sizes:
        size = -(-x.shape[axis] // outputs)
        sizes = [min(size, x.shape[axis] - i * size) for i in range(outputs)]
    parts = b.call(torch.split, x, sizes, axis)
    return [b.call(operator.getitem, parts, i) for i in range(outputs)]


def slice_(b, node, ins, a):
    x = ins[0]
    starts, ends = ints(ins[1], "starts"), ints(ins[2], "ends")
    axes = ints(ins[3], "axes") if optional_input(ins, 3) is not None else list(
        range(len(starts)))
    steps = ints(ins[4], "steps") if optional_input(ins, 4) is not None else [1] * len(starts)
    index = [slice(None)] * x.rank
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis % x.rank] = slice(start, end, step)
    if x.const:
        return Tensor(None, torch.from_numpy(np.ascontiguousarray(x.value.numpy()[tuple(index)])))
    if any(s.step is not None and s.step < 1 for s in index):
        raise Unsupported("Slice with a negative step")
    return b.call(operator.getitem, x, tuple(index))


def gather(b, node, ins, a):
    data, indices = ins
    axis = int(a.get("axis", 0)) % data.rank
    if data.const and indices.const:
        return Tensor(None, torch.from_numpy(np.asarray(np.take(
            data.value.numpy(), indices.value.numpy(), axis=axis))))
    if data.const and axis == 0 and data.rank == 2 and data.value.is_floating_point():
        return b.call(F.embedding, indices, data)
    idx = const(indices, "Gather's indices of a computed tensor")
    if idx.dim() == 0:
        index = [slice(None)] * axis + [int(idx)]
        return b.call(operator.getitem, data, tuple(index))
    flat = [int(i) % data.shape[axis] for i in idx.reshape(-1).tolist()]
    if idx.dim() == 1 and flat == list(range(flat[0], flat[0] + len(flat))):
        index = [slice(None)] * axis + [slice(flat[0], flat[0] + len(flat))]
        return b.call(operator.getitem, data, tuple(index))
    raise Unsupported("Gather of a computed tensor with indices other than one integer or "
                      "a contiguous range")


def shape(b, node, ins, a):
    dims = list(ins[0].shape)
    start, end = int(a.get("start", 0)), a.get("end")
    return Tensor(None, torch.tensor(dims[start:None if end is None else int(end)],
                                     dtype=torch.int64))


def size(b, node, ins, a):
    return Tensor(None, torch.tensor(ins[0].value.numel(), dtype=torch.int64))


def constant(b, node, ins, a):
    for key, value in a.items():
        if key == "value":
            return Tensor(None, torch.from_numpy(np.array(value)))
        if key in ("value_float", "value_int"):
            return Tensor(None, torch.tensor(value, dtype=torch.float32 if key == "value_float"
                                             else torch.int64))
        if key in ("value_floats", "value_ints"):
            return Tensor(None, torch.tensor(list(value), dtype=torch.float32
                                             if key == "value_floats" else torch.int64))
    raise Unsupported(f"Constant with attributes {sorted(a)}")


def constant_of_shape(b, node, ins, a):
    dims = ints(ins[0], "the shape")
    value = np.array(a["value"]).reshape(-1) if "value" in a else np.zeros(1, np.float32)
    return Tensor(None, torch.from_numpy(np.full(dims, value[0], dtype=value.dtype)))


def range_(b, node, ins, a):
    start, limit, delta = (const(t, n).item() for t, n in zip(ins, ("start", "limit", "delta")))
    return Tensor(None, torch.arange(start, limit, delta, dtype=ins[0].value.dtype))


def expand(b, node, ins, a):
    x, target = ins[0], ints(ins[1], "the shape")
    out = torch.broadcast_shapes(x.shape, tuple(target))
    if x.const:
        return Tensor(None, x.value.expand(out).clone())
    if out == x.shape:
        return x
    return b.method("expand", x, *out)


def pad(b, node, ins, a):
    x = ins[0]
    mode = a.get("mode", "constant")
    if mode != "constant":
        raise Unsupported(f"Pad with mode '{mode}'")
    pads = ints(ins[1], "pads") if len(ins) > 1 else list(a["pads"])
    value = optional_input(ins, 2)
    value = float(const(value, "constant_value")) if value is not None else float(
        a.get("value", 0.0))
    axes = ints(ins[3], "axes") if optional_input(ins, 3) is not None else None
    if axes is not None:
        full = [0] * (2 * x.rank)
        for i, d in enumerate(axes):
            full[d % x.rank], full[x.rank + d % x.rank] = pads[i], pads[len(axes) + i]
        pads = full
    if min(pads) < 0:
        raise Unsupported("Pad with negative pads")
    return b.call(F.pad, x, _torch_pad(pads), value=value)


def resize(b, node, ins, a):
    x = ins[0]
    mode = a.get("mode", "nearest")
    transform = a.get("coordinate_transformation_mode", "half_pixel")
    scales, sizes = optional_input(ins, 2), optional_input(ins, 3)
    if sizes is not None:
        out = ints(sizes, "sizes")
    elif scales is not None and const(scales, "scales").numel():
        out = [int(math.floor(d * s)) for d, s in
               zip(x.shape, const(scales, "scales").tolist())]
    else:
        raise Unsupported("Resize without scales or sizes")
    if x.rank != 4 or out[:2] != list(x.shape[:2]):
        raise Unsupported("Resize of other than the spatial dimensions of an NCHW tensor")
    if mode == "nearest" and transform == "asymmetric" and a.get(
            "nearest_mode", "round_prefer_floor") == "floor":
        return b.call(F.interpolate, x, size=tuple(out[2:]), mode="nearest")
    if mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        return b.call(F.interpolate, x, size=tuple(out[2:]), mode="bilinear",
                      align_corners=transform == "align_corners")
    raise Unsupported(f"Resize with mode '{mode}' and coordinate_transformation_mode "
                      f"'{transform}' (nearest/asymmetric/floor and linear/half_pixel or "
                      f"align_corners are supported)")


# ---------------------------------------------------------------------------
# Quantization (QDQ)
# ---------------------------------------------------------------------------

_QDTYPES = {np.dtype("uint8"): torch.quint8, np.dtype("int8"): torch.qint8}


def _qparams(ins, a, x_rank, dtype=None):
    """FixedFakeQuantize of a QuantizeLinear / DequantizeLinear's scale,
    zero point and axis (``dtype``: of the integer data, when known)."""
    scale = const(ins[1], "the scale").to(torch.float32)
    zp = optional_input(ins, 2)
    zp_value = const(zp, "the zero point") if zp is not None else None
    if dtype is None:
        dtype = np.dtype(zp_value.numpy().dtype) if zp_value is not None else np.dtype("uint8")
    if dtype not in _QDTYPES:
        raise Unsupported(f"quantization to {dtype} (uint8 and int8 are supported)")
    zero = zp_value.to(torch.int64) if zp_value is not None else torch.zeros_like(
        scale, dtype=torch.int64)
    if (scale <= 0).any() or not torch.isfinite(scale).all():
        raise Unsupported("a scale that is not positive and finite")
    axis = None
    if scale.numel() > 1 or scale.dim() == 1 and "axis" in a:
        axis = int(a.get("axis", 1)) % x_rank
    return FixedFakeQuantize(scale, zero, _QDTYPES[dtype], axis)


_NP_QDTYPES = {v: k for k, v in _QDTYPES.items()}


def _quantized(x, fq):
    """``x`` quantized by ``fq``: the integer output of a QuantizeLinear or a
    QLinear op (the float ``x`` and ``fq`` become a fake quant where a
    DequantizeLinear or QLinear op reads it)."""
    values = fq(x.value) if x.value.is_floating_point() else x.value
    return Tensor(None, values, q=(x, fq))


def quantize_linear(b, node, ins, a):
    return _quantized(ins[0], _qparams(ins, a, ins[0].rank))


def _fake_quantized(b, x):
    """The float value of quantized ``x``: its source's fake quant, one per
    quantized value however many ops read it (a residual's two branches are
    one quantized value in the IR)."""
    source, fq = x.q
    if source.const:
        return Tensor(None, fq(source.value), fq=fq)
    if id(x) not in b.dequantized:
        b.dequantized[id(x)] = b.module(fq, source)
    return b.dequantized[id(x)]


def _dequantized(b, ins, a, what):
    """The float value of ``ins[0]`` read with the scale ``ins[1]`` and zero
    point ``ins[2]`` (``a``: the axis attribute), as DequantizeLinear reads
    it: a quantized value's `_fake_quantized`, or a dequantized constant
    (an int8 / uint8 weight keeps its fake quant in ``fq``, an int32 bias is
    only dequantized: --qnt-convert quantizes it again)."""
    x = ins[0]
    if x.q is not None:
        fq = x.q[1]
        if not fq.same_grid(_qparams(ins, a, x.rank, _NP_QDTYPES[fq.dtype])):
            raise Unsupported(f"{what} is read with other parameters than the QuantizeLinear "
                              f"or QLinear op that made it")
        return _fake_quantized(b, x)
    if not x.const:
        raise Unsupported(f"{what} is neither the output of a QuantizeLinear or QLinear op "
                          f"nor a constant")
    data = x.value
    dtype = np.dtype(data.numpy().dtype)
    if dtype == np.int32:  # a bias: dequantized, convert quantizes it again
        fq = _qparams(ins, a, max(x.rank, 1), np.dtype("int8"))  # for the broadcast only
        return Tensor(None, _dequantize(data, fq))
    fq = _qparams(ins, a, max(x.rank, 1), dtype)
    return Tensor(None, _dequantize(data, fq), fq=fq)


def _on_integers(convert):
    """An op that moves or picks values (MaxPool, Reshape, ...), which ORT's
    operator-form models run on the quantized integers: on a quantized input,
    the op of its float value, quantized again with the same per-tensor
    parameters (exact: the values stay on the grid)."""
    def wrapped(b, node, ins, a):
        x = ins[0]
        if x is None or x.q is None:
            return convert(b, node, ins, a)
        fq = x.q[1]
        if fq.ch_axis >= 0:
            raise Unsupported(f"{node.op_type} of a per-axis quantized tensor")
        y = convert(b, node, [_fake_quantized(b, x), *ins[1:]], a)
        return _quantized(y, fq)
    return wrapped


def dequantize_linear(b, node, ins, a):
    return _dequantized(b, ins, a, "the input of the DequantizeLinear")


def _dequantize(data, fq):
    shape = [1] * data.dim()
    if fq.ch_axis >= 0 and data.dim():
        shape[fq.ch_axis] = -1
    scale = fq.scale.reshape(shape) if data.dim() else fq.scale[0]
    zp = fq.zero_point.reshape(shape) if data.dim() else fq.zero_point[0]
    return ((data.to(torch.int64) - zp).to(torch.float32) * scale).to(torch.float32)


# ---------------------------------------------------------------------------
# Quantization: operator forms (QLinear*, as QDQ: dequantize, float op, quantize)
# ---------------------------------------------------------------------------

def _read(b, ins, i, what, axis=None):
    """`_dequantized` of the (data, scale, zero point) inputs at ``i`` of an
    operator form; ``axis``: of per-channel scales."""
    triple = [ins[i], ins[i + 1], optional_input(ins, i + 2)]
    per_channel = axis is not None and const(ins[i + 1], "the scale").numel() > 1
    return _dequantized(b, triple, {"axis": axis} if per_channel else {}, what)


def _write(y, ins, i):
    """Float ``y`` quantized with the (scale, zero point) inputs at ``i``:
    an operator form's output."""
    return _quantized(y, _qparams([y, ins[i], optional_input(ins, i + 1)], {}, y.rank))


def qlinear_conv(b, node, ins, a):
    """QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B.
    B (int32) is dequantized with x_scale * w_scale (float32, as ORT)."""
    x = _read(b, ins, 0, "QLinearConv's x")
    w = _read(b, ins, 3, "QLinearConv's w", axis=0)
    bias = optional_input(ins, 8)
    if bias is not None:
        data = const(bias, "QLinearConv's B")
        if data.dtype != torch.int32:
            raise Unsupported(f"QLinearConv's B of type {data.dtype} (int32 expected)")
        scale = (const(ins[1], "x_scale").to(torch.float32).reshape(-1) *
                 const(ins[4], "w_scale").to(torch.float32).reshape(-1))
        bias = Tensor(None, data.to(torch.float32) * scale)
    return _write(conv(b, node, [x, w, bias], a), ins, 6)


def qlinear_matmul(b, node, ins, a):
    """QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp; a
    constant 2-D b (scales per tensor or per column) becomes a linear."""
    x = _read(b, ins, 0, "QLinearMatMul's a")
    w = _read(b, ins, 3, "QLinearMatMul's b", axis=ins[3].rank - 1)
    return _write(matmul(b, node, [x, w], a), ins, 6)


def _qlinear_binary(fn):
    """com.microsoft QLinearAdd / QLinearMul: A, A_scale, A_zp, B, B_scale,
    B_zp, C_scale, C_zp."""
    def convert(b, node, ins, a):
        x = _read(b, ins, 0, f"{node.op_type}'s A")
        y = _read(b, ins, 3, f"{node.op_type}'s B")
        return _write(b.call(fn, x, y), ins, 6)
    return convert


def _qlinear_unary(fn):
    """com.microsoft QLinear ops of one input: X, X_scale, X_zp, Y_scale,
    Y_zp; ``fn(b, x, attrs)`` builds the float op."""
    def convert(b, node, ins, a):
        return _write(fn(b, _read(b, ins, 0, f"{node.op_type}'s X"), a), ins, 3)
    return convert


def _leaky_relu(b, x, a):
    negative = b.call(torch.mul, x, float(a.get("alpha", 0.01)))
    return b.call(torch.where, b.call(torch.ge, x, 0.0), x, negative)


def _mean_pool(b, x, a):
    if a.get("channels_last", 0):
        return b.call(torch.mean, x, tuple(range(1, x.rank - 1)), keepdim=True)
    return global_average_pool(b, None, [x], a)


def _average_pool(b, x, a):
    """com.microsoft QLinearAveragePool's float op: ONNX AveragePool, on NHWC
    with ``channels_last``."""
    if not a.get("channels_last", 0):
        return _avg_pool2d(b, x, a, whole_kernel=True)
    if x.rank != 4:
        raise Unsupported(f"{x.rank - 2}-D pooling is not supported (2-D is)")
    nchw = b.call(torch.permute, x, (0, 3, 1, 2))
    return b.call(torch.permute, _avg_pool2d(b, nchw, a, whole_kernel=True), (0, 2, 3, 1))


def qlinear_concat(b, node, ins, a):
    """com.microsoft QLinearConcat: Y_scale, Y_zp, then (X, X_scale, X_zp)
    per input."""
    xs = [_read(b, ins, i, f"QLinearConcat's input {(i - 2) // 3}")
          for i in range(2, len(ins), 3)]
    return _write(b.call(torch.cat, xs, int(a["axis"])), ins, 0)


# ---------------------------------------------------------------------------
# Quantization: ORT's dynamic form (DynamicQuantizeLinear -> MatMulInteger /
# ConvInteger -> Cast -> Mul by the input's scale times the weight's)
# ---------------------------------------------------------------------------

class Dynamic:
    """What a value of ORT's dynamic quantization of the float ``source``
    (the input of its DynamicQuantizeLinear) stands for: ``role`` "q" (the
    integers), "zero_point", "scale" (times the constant ``factor``), or
    "acc" (a MatMulInteger / ConvInteger result: the float ``module`` on
    ``source`` whose weight is the integer weight minus its zero point,
    times the constants multiplied in so far)."""

    __slots__ = ("role", "source", "factor", "module")

    def __init__(self, role, source, factor=None, module=None):
        self.role, self.source, self.factor, self.module = role, source, factor, module


def dynamic_quantize_linear(b, node, ins, a):
    x = ins[0]
    return [Tensor(None, x.value, dyn=Dynamic("q", x)),
            Tensor(None, torch.ones(()), dyn=Dynamic("scale", x, torch.ones(()))),
            Tensor(None, torch.zeros((), dtype=torch.uint8), dyn=Dynamic("zero_point", x))]


def _dynamic_source(ins, op):
    """The float input of the DynamicQuantizeLinear that made ``ins[0]``
    (whose zero point must be ``ins[2]``)."""
    q, zp = ins[0], optional_input(ins, 2)
    if q.dyn is None or q.dyn.role != "q":
        raise Unsupported(f"{op} of other than the integers of a DynamicQuantizeLinear")
    if zp is None or zp.dyn is None or zp.dyn.role != "zero_point" or \
            zp.dyn.source is not q.dyn.source:
        raise Unsupported(f"{op} without the zero point of the DynamicQuantizeLinear of its "
                          f"input")
    return q.dyn.source


def _integer_weight(ins, op, rank):
    """(a MatMulInteger / ConvInteger weight minus its zero point (per
    tensor, or per output channel: B's columns, w's axis 0) as float,
    whether those integers lie in [-128, 127]: a symmetric s8 weight, which
    qnt's INT8 kernels take as it is; an int8 weight with zero point 0, or
    a uint8 one with zero point 128, ORT's symmetric QUInt8)."""
    data = const(ins[1], f"{op}'s weight")
    if data.dtype not in (torch.int8, torch.uint8) or data.dim() != rank:
        raise Unsupported(f"{op} with a weight of type {data.dtype} and rank {data.dim()} "
                          f"(an int8 or uint8 constant of rank {rank} is supported)")
    zp = optional_input(ins, 3)
    zp = const(zp, f"{op}'s weight zero point").to(torch.int64) if zp is not None else \
        torch.zeros(())
    if zp.numel() > 1:
        zp = zp.reshape(-1) if rank == 2 else zp.reshape(-1, *[1] * (rank - 1))
    shifted = data.to(torch.int64) - zp
    fits_s8 = bool(((shifted >= -128) & (shifted <= 127)).all())
    return shifted.to(torch.float32), fits_s8


def _accumulator(b, x, source, m):
    y = b.module(m, x)
    return Tensor(y.node, y.value, dyn=Dynamic("acc", source, module=m))


def matmul_integer(b, node, ins, a):
    """MatMulInteger(DynamicQuantizeLinear's integers, constant 2-D B): a
    float linear on the DynamicQuantizeLinear's input, scaled by the Mul.
    Under ONNX Runtime's numerics a weight whose integers minus its zero
    point fit int8 (`_integer_weight`) keeps them: the linear is an
    nn.qat.Linear whose weight fake quant has the scales the Mul multiplies
    in (`_scale_accumulator`), which qnt's dynamic pipeline takes as they
    are."""
    x = _dynamic_source(ins, "MatMulInteger")
    weight, fits_s8 = _integer_weight(ins, "MatMulInteger", 2)
    weight = weight.t().contiguous()
    if b.numerics == "onnxruntime" and fits_s8:
        # No bias yet: a following Add of a constant becomes it.
        m = nnqat.Linear(weight.shape[1], weight.shape[0], bias=False,
                         qconfig=default_qat_qconfig)
        m.weight_fake_quant = FixedFakeQuantize(torch.ones(1), torch.zeros(1), torch.qint8)
        with torch.no_grad():
            m.weight.copy_(weight)
    else:
        m = _linear_module(weight, None, None)
    return _accumulator(b, x, x, m)


def conv_integer(b, node, ins, a):
    """ConvInteger(DynamicQuantizeLinear's integers, constant w): a float
    conv on the DynamicQuantizeLinear's input, scaled by the Mul. Under ONNX
    Runtime's numerics a weight whose integers minus its zero point fit
    int8 keeps them, as MatMulInteger's does: an nn.qat.Conv2d whose weight
    fake quant gets the scales the Mul multiplies in."""
    source = _dynamic_source(ins, "ConvInteger")
    weight, fits_s8 = _integer_weight(ins, "ConvInteger", ins[1].rank)
    fq = None
    if b.numerics == "onnxruntime" and fits_s8 and weight.dim() == 4:
        fq = FixedFakeQuantize(torch.ones(1), torch.zeros(1), torch.qint8)
    x, m = _conv_module(b, source, Tensor(None, weight, fq=fq), None, a)
    return _accumulator(b, x, source, m)


def _scale_accumulator(t, factor):
    """The value of accumulator ``t`` times constant ``factor`` (one value,
    or one per output channel), multiplied into its module's weight."""
    m = t.dyn.module
    axis = t.rank - 1 if isinstance(m, nn.Linear) else 1
    channels = t.shape[axis]
    f = factor.to(torch.float32)
    shape = [1] * (t.rank - f.dim()) + list(f.shape)
    if f.dim() > t.rank or f.numel() not in (1, channels) or (
            f.numel() > 1 and shape[axis] != channels):
        raise Unsupported(f"a MatMulInteger / ConvInteger result multiplied by a constant of "
                          f"shape {list(f.shape)} (one value or one per output channel is "
                          f"supported)")
    f = f.reshape(-1).expand(channels)
    with torch.no_grad():
        m.weight.mul_(f.reshape(-1, *[1] * (m.weight.dim() - 1)))
    fq = getattr(m, "weight_fake_quant", None)
    if isinstance(fq, FixedFakeQuantize):  # the file's integers, their scales
        per_channel = fq.ch_axis >= 0 or factor.numel() > 1
        scale = fq.scale * (f if per_channel else f[:1])
        m.weight_fake_quant = FixedFakeQuantize(
            scale, torch.zeros(scale.shape, dtype=torch.int64), torch.qint8,
            0 if per_channel else None)
    return t.value * f.reshape([channels if d == axis else 1 for d in range(t.rank)])


def mul(b, node, ins, a):
    """Mul; in ORT's dynamic form, the Mul of a DynamicQuantizeLinear's
    scale by a constant (the weight's scale) and of a MatMulInteger /
    ConvInteger result by constants and that scale, which all fold into the
    float module's weight."""
    x, y = ins
    if x.dyn is None and y.dyn is None:
        return b.call(torch.mul, x, y)
    if x.dyn is None or y.dyn is not None and y.dyn.role == "acc":
        x, y = y, x
    if y.dyn is None and y.const and x.dyn.role == "scale":
        return Tensor(None, x.value, dyn=Dynamic("scale", x.dyn.source, x.dyn.factor * y.value))
    if y.dyn is None and y.const and x.dyn.role == "acc":
        return Tensor(x.node, _scale_accumulator(x, y.value), dyn=x.dyn)
    if x.dyn.role == "acc" and y.dyn is not None and y.dyn.role == "scale" and \
            y.dyn.source is x.dyn.source:
        m = x.dyn.module
        return Tensor(x.node, _scale_accumulator(x, y.dyn.factor),
                      linear=m if isinstance(m, nn.Linear) else None)
    raise Unsupported(DYNAMIC_USE)


# ---------------------------------------------------------------------------
# Patterns
# ---------------------------------------------------------------------------

def _gelu_node(nodes, i, producers, consumers, constant_value):
    """If nodes[i] is the Erf of ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (as
    torch.onnx exports F.gelu before opset 20): (nodes to drop, Gelu node)."""
    from onnx import helper
    erf = nodes[i]
    scaled = producers.get(erf.input[0])
    if scaled is None or scaled.op_type not in ("Div", "Mul"):
        return None
    c = constant_value(scaled.input[1])
    want = math.sqrt(2) if scaled.op_type == "Div" else 1 / math.sqrt(2)
    if c is None or c.size != 1 or not math.isclose(float(c.reshape(-1)[0]), want,
                                                    rel_tol=1e-6):
        return None
    x = scaled.input[0]

    def only_user(name):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 else None

    def other_operand_is(node, name, value):
        """The operand of binary ``node`` beside ``name`` is the scalar ``value``."""
        c = constant_value(node.input[1] if node.input[0] == name else node.input[0])
        return c is not None and c.size == 1 and float(c.reshape(-1)[0]) == value

    plus = only_user(erf.output[0])
    if plus is None or plus.op_type != "Add" or not other_operand_is(plus, erf.output[0], 1.0):
        return None
    times = only_user(plus.output[0])
    if times is None or times.op_type != "Mul" or x not in times.input:
        return None
    half = only_user(times.output[0])
    if half is None or half.op_type != "Mul" or \
            not other_operand_is(half, times.output[0], 0.5):
        return None
    if len(consumers.get(scaled.output[0], [])) != 1:
        return None
    name = erf.name.rsplit("/", 1)[0] + "/Gelu" if "/" in erf.name else erf.name + "_gelu"
    return ({id(scaled), id(erf), id(plus), id(times), id(half)},
            helper.make_node("Gelu", [x], [half.output[0]], name=name), half)


def fuse_patterns(nodes, graph):
    """``nodes`` with exporter idioms replaced by single nodes (the fused
    node takes the place of the idiom's last node)."""
    from onnx import numpy_helper
    producers = {o: n for n in nodes for o in n.output}
    consumers = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    initializers = {t.name: t for t in graph.initializer}

    def constant_value(name):
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        p = producers.get(name)
        if p is not None and p.op_type == "Constant" and p.attribute and \
                p.attribute[0].name == "value":
            return numpy_helper.to_array(p.attribute[0].t)
        return None

    drop, replace = set(), {}
    for i, n in enumerate(nodes):
        if n.op_type == "Erf":
            found = _gelu_node(nodes, i, producers, consumers, constant_value)
            if found:
                dropped, fused, last = found
                drop |= dropped
                replace[id(last)] = fused
    return [replace.get(id(n), n) for n in nodes if id(n) not in drop or id(n) in replace]


CONVERTERS = {
    "Conv": conv, "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batch_norm,
    "LayerNormalization": layer_norm,
    "MaxPool": _on_integers(max_pool), "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool,
    "GlobalMaxPool": global_max_pool,
    "Relu": _unary(torch.relu), "Sigmoid": _unary(torch.sigmoid), "Tanh": _unary(torch.tanh),
    "HardSwish": _unary(F.hardswish), "HardSigmoid": hard_sigmoid, "Clip": clip, "Gelu": gelu,
    "Sqrt": _unary(torch.sqrt), "Reciprocal": _unary(torch.reciprocal),
    "Neg": _unary(torch.neg), "Exp": _unary(torch.exp), "Log": _unary(torch.log),
    "Abs": _unary(torch.abs), "Not": _unary(torch.logical_not),
    "Add": add, "Sub": _binary(torch.sub), "Mul": mul, "Div": div, "Pow": pow_,
    "Equal": _binary(torch.eq), "Less": _binary(torch.lt), "Greater": _binary(torch.gt),
    "LessOrEqual": _binary(torch.le), "GreaterOrEqual": _binary(torch.ge),
    "And": _binary(torch.logical_and), "Or": _binary(torch.logical_or),
    "Softmax": softmax(torch.softmax), "LogSoftmax": softmax(torch.log_softmax),
    "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "ReduceMax": _reduce(torch.amax), "ReduceMin": _reduce(torch.amin),
    "Where": where, "Mod": mod, "ScatterND": scatter_nd, "Einsum": einsum,
    "Cast": cast, "Identity": identity, "Dropout": dropout,
    "Reshape": _on_integers(reshape), "Flatten": _on_integers(flatten),
    "Squeeze": _on_integers(squeeze), "Unsqueeze": _on_integers(unsqueeze),
    "Transpose": _on_integers(transpose), "Concat": concat, "Split": split, "Slice": slice_,
    "Gather": gather, "Shape": shape, "Size": size, "Constant": constant,
    "ConstantOfShape": constant_of_shape, "Range": range_, "Expand": expand, "Pad": pad,
    "Resize": resize,
    "QuantizeLinear": quantize_linear, "DequantizeLinear": dequantize_linear,
    "QLinearConv": qlinear_conv, "QLinearMatMul": qlinear_matmul,
    "DynamicQuantizeLinear": dynamic_quantize_linear, "MatMulInteger": matmul_integer,
    "ConvInteger": conv_integer,
}

# The com.microsoft ops (ONNX Runtime's contrib ops) that are supported.
MICROSOFT_CONVERTERS = {
    "QLinearAdd": _qlinear_binary(torch.add), "QLinearMul": _qlinear_binary(torch.mul),
    "QLinearSigmoid": _qlinear_unary(lambda b, x, a: b.call(torch.sigmoid, x)),
    "QLinearLeakyRelu": _qlinear_unary(_leaky_relu),
    "QLinearGlobalAveragePool": _qlinear_unary(_mean_pool),
    "QLinearAveragePool": _qlinear_unary(_average_pool),
    "QLinearConcat": qlinear_concat,
}

# Op types whose converters take quantized (`Tensor.q`) or dynamically
# quantized (`Tensor.dyn`) inputs; the importer rejects them elsewhere.
READS_QUANTIZED = {"DequantizeLinear", "Cast", "Identity", "QLinearConv", "QLinearMatMul",
                   "MatMulInteger", "ConvInteger", "Mul", "MaxPool", "Reshape", "Flatten",
                   "Squeeze", "Unsqueeze", "Transpose", *MICROSOFT_CONVERTERS}


def converter(node):
    """The converter of ``node``'s domain and op type, or None."""
    table = {"": CONVERTERS, "ai.onnx": CONVERTERS,
             "com.microsoft": MICROSOFT_CONVERTERS}.get(node.domain, {})
    return table.get(node.op_type)
