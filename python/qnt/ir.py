"""MLIR text emission: types, attributes, constants and one function body.

Everything is written in MLIR's generic operation form
(``%r = "tosa.add"(%a, %b) : (T, T) -> T loc("name")``), which every
dialect parses the same way; ``quant-opt FILE`` prints the custom forms.
"""

import re

import numpy as np

F32_MAX = float(np.finfo(np.float32).max)

_SSA_INVALID = re.compile(r"[^A-Za-z0-9_$.-]")


# ---------------------------------------------------------------------------
# Types and attributes
# ---------------------------------------------------------------------------

def tensor_type(shape, element="f32"):
    """``tensor<1x3x8x8xf32>`` (``tensor<f32>`` for rank 0)."""
    return "tensor<" + "".join(f"{int(d)}x" for d in shape) + element + ">"


def shape_type(rank):
    return f"!tosa.shape<{rank}>"


def float_literal(value):
    """An MLIR float literal that denotes exactly float32(value)."""
    value = float(np.float32(value))
    if not np.isfinite(value):
        bits = np.array([value], dtype="<f4").view("<u4")[0]
        return f"0x{int(bits):08X}"
    text = repr(value)
    if "." not in text:  # "1e-05" -> "1.0e-05"; MLIR needs the dot
        mantissa, _, exponent = text.partition("e")
        text = mantissa + ".0" + ("e" + exponent if exponent else "")
    return text


def f32_attr(value):
    return f"{float_literal(value)} : f32"


def i32_attr(value):
    return f"{int(value)} : i32"


def i64_attr(value):
    return f"{int(value)} : i64"


def i64_array(values):
    return "array<i64: " + ", ".join(str(int(v)) for v in values) + ">"


def i32_array(values):
    return "array<i32: " + ", ".join(str(int(v)) for v in values) + ">"


_ELEMENT_TYPES = {np.dtype("float32"): "f32", np.dtype("int8"): "i8"}


def dense_attr(array):
    """``dense<...> : tensor<...>`` for a float32 or int8 numpy array.

    Splats are written as one literal, everything else as the array's
    little-endian bytes in hex (2 characters per byte)."""
    array = np.asarray(array)
    element = _ELEMENT_TYPES[array.dtype]
    ttype = tensor_type(array.shape, element)
    if array.size and (array == array.flat[0]).all():
        first = array.flat[0]
        literal = float_literal(first) if element == "f32" else str(int(first))
        return f"dense<{literal}> : {ttype}"
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return f'dense<"0x{data.tobytes().hex()}"> : {ttype}'


def location(name):
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'loc("{escaped}")'


# ---------------------------------------------------------------------------
# Values and the function builder
# ---------------------------------------------------------------------------

class Value:
    """An SSA value: its name, MLIR type and, for f32 tensors, its shape.

    ``nhwc`` marks a 4-D activation kept in NHWC order inside the function:
    its ``shape`` is [N, H, W, C] while PyTorch sees [N, C, H, W]."""

    __slots__ = ("name", "type", "shape", "nhwc")

    def __init__(self, name, type_, shape=None, nhwc=False):
        self.name = name
        self.type = type_
        self.shape = tuple(shape) if shape is not None else None
        self.nhwc = nhwc

    @property
    def rank(self):
        return len(self.shape)

    @property
    def torch_shape(self):
        """The shape PyTorch sees."""
        if self.nhwc:
            n, h, w, c = self.shape
            return (n, c, h, w)
        return self.shape

    def __repr__(self):
        return f"%{self.name}: {self.type}{' (NHWC)' if self.nhwc else ''}"


class FunctionBuilder:
    """Accumulates the body of one ``func.func`` as lines of text."""

    def __init__(self, name="main"):
        self.name = name
        self._names = set()
        self._args = []      # (Value, qnt.name)
        self._lines = []
        self._results = []
        self._shared = {}    # key -> Value of constants without a location

    # -- names -------------------------------------------------------------

    def fresh_name(self, hint):
        base = _SSA_INVALID.sub("_", hint) or "v"
        if base[0].isdigit():
            base = "_" + base
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    # -- arguments, results ------------------------------------------------

    def argument(self, qnt_name, shape):
        value = Value(self.fresh_name(qnt_name), tensor_type(shape), shape)
        self._args.append((value, qnt_name))
        return value

    def set_results(self, values):
        self._results = list(values)

    # -- operations --------------------------------------------------------

    def op(self, name, operands, result_shape, attrs=None, loc=None, hint=None,
           nhwc=False, result_type=None):
        """Emits ``name`` in generic form; returns its (single) result."""
        rtype = result_type or tensor_type(result_shape)
        result = Value(self.fresh_name(hint or name.split(".")[-1]), rtype,
                       result_shape, nhwc)
        args = ", ".join("%" + v.name for v in operands)
        attr_text = ""
        if attrs:
            attr_text = " {" + ", ".join(f"{k} = {v}" for k, v in attrs.items()) + "}"
        in_types = ", ".join(v.type for v in operands)
        loc_text = " " + location(loc) if loc else ""
        self._lines.append(f'    %{result.name} = "{name}"({args}){attr_text} : '
                           f"({in_types}) -> {rtype}{loc_text}")
        return result

    def const(self, array, loc=None, hint="const"):
        """A ``tosa.const`` of a float32 (or int8) array."""
        array = np.asarray(array)
        if array.dtype != np.int8:
            array = array.astype(np.float32, copy=False)
        return self.op("tosa.const", [], array.shape, {"values": dense_attr(array)},
                       loc=loc, hint=hint,
                       result_type=tensor_type(array.shape, _ELEMENT_TYPES[array.dtype]))

    def shape(self, dims):
        """A ``tosa.const_shape`` (shared between users)."""
        dims = tuple(int(d) for d in dims)
        key = ("shape", dims)
        if key not in self._shared:
            values = "[" + ", ".join(map(str, dims)) + "]"
            self._shared[key] = self.op(
                "tosa.const_shape", [], None,
                {"values": f"dense<{values}> : tensor<{len(dims)}xindex>"},
                hint="shape", result_type=shape_type(len(dims)))
        return self._shared[key]

    def shared_const(self, key, array, hint):
        """A constant emitted once and reused (zero points, shifts)."""
        if key not in self._shared:
            self._shared[key] = self.const(array, hint=hint)
        return self._shared[key]

    def zero_point(self):
        """The f32 zero point operand of conv/matmul/avg_pool/pad."""
        return self.shared_const("zp", np.zeros([1], np.float32), "zp")

    def mul_shift(self):
        """tosa.mul's (required) i8 shift operand."""
        return self.shared_const("shift", np.zeros([1], np.int8), "shift")

    # -- output ------------------------------------------------------------

    def lines(self):
        """The module's text, line by line (weights make some lines huge)."""
        args = ", ".join(f'%{v.name}: {v.type} {{qnt.name = "{n}"}}' for v, n in self._args)
        rtypes = [v.type for v in self._results]
        rtext = rtypes[0] if len(rtypes) == 1 else "(" + ", ".join(rtypes) + ")"
        yield "module {"
        yield f"  func.func @{self.name}({args}) -> {rtext} {{"
        yield from self._lines
        yield ("    return " + ", ".join("%" + v.name for v in self._results)
               + " : " + ", ".join(rtypes))
        yield "  }"
        yield "}"
