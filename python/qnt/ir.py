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


ELEMENT_TYPES = {np.dtype("float32"): "f32", np.dtype("int8"): "i8",
                 np.dtype("int32"): "i32", np.dtype("int64"): "i64", np.dtype("bool"): "i1"}
NUMPY_DTYPES = {element: dtype for dtype, element in ELEMENT_TYPES.items()}


def _literal(value, element):
    if element == "f32":
        return float_literal(value)
    if element == "i1":
        return "true" if value else "false"
    return str(int(value))


def dense_attr(array):
    """``dense<...> : tensor<...>`` for a numpy array of a dtype in
    ``ELEMENT_TYPES``.

    Splats are written as one literal, booleans as nested lists of
    ``true``/``false`` (MLIR's hex form packs i1 differently), everything
    else as the array's little-endian bytes in hex (2 characters per byte)."""
    array = np.asarray(array)
    element = ELEMENT_TYPES[array.dtype]
    ttype = tensor_type(array.shape, element)
    if array.size and (array == array.flat[0]).all():
        return f"dense<{_literal(array.flat[0], element)}> : {ttype}"
    if element == "i1":
        def nested(a):
            if a.ndim == 0:
                return _literal(a, element)
            return "[" + ", ".join(nested(x) for x in a) + "]"
        return f"dense<{nested(array)}> : {ttype}"
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return f'dense<"0x{data.tobytes().hex()}"> : {ttype}'


_ELEMENT_OF_TYPE = re.compile(r"x?([a-z]+[0-9]+)>$")


def unique_name(base, taken):
    """``base``, or ``base_1``, ``base_2``, ... : the first not in the set
    ``taken``, which it joins."""
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


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
    def element(self):
        """The element type of a tensor value ("f32", "i64", "i1", ...)."""
        return _ELEMENT_OF_TYPE.search(self.type).group(1)

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
        self._args = []      # (Value, {attribute: value text}): qnt.name, qnt.valid_range
        self._lines = []
        self._results = []
        self._shared = {}    # key -> Value of constants without a location
        self.module_attributes = {}  # name -> attribute text, on the builtin.module

    # -- names -------------------------------------------------------------

    def fresh_name(self, hint):
        base = _SSA_INVALID.sub("_", hint) or "v"
        if base[0].isdigit():
            base = "_" + base
        return unique_name(base, self._names)

    # -- arguments, results ------------------------------------------------

    def argument(self, qnt_name, shape, element="f32"):
        value = Value(self.fresh_name(qnt_name), tensor_type(shape, element), shape)
        self._args.append((value, {"qnt.name": f'"{qnt_name}"'}))
        return value

    def bound_argument(self, value, lo, hi):
        """Declares that the integer argument ``value`` must hold values in
        [lo, hi) (token ids of an embedding): the argument attribute
        ``qnt.valid_range``, which quant-run and quant-compile's C API check
        before a run. Bounds from several uses intersect."""
        for arg, attrs in self._args:
            if arg.name == value.name:
                old = attrs.get("qnt.valid_range")
                if old is not None:
                    old_lo, old_hi = map(int, re.findall(r"-?[0-9]+", old.split(":")[1]))
                    lo, hi = max(lo, old_lo), min(hi, old_hi)
                attrs["qnt.valid_range"] = f"array<i64: {int(lo)}, {int(hi)}>"
                return
        raise ValueError(f"%{value.name} is not an argument")

    def set_results(self, values):
        self._results = list(values)

    # -- operations --------------------------------------------------------

    def op(self, name, operands, result_shape, attrs=None, loc=None, hint=None,
           nhwc=False, result_type=None, element="f32"):
        """Emits ``name`` in generic form; returns its (single) result (a
        tensor of ``element`` unless ``result_type`` is given)."""
        rtype = result_type or tensor_type(result_shape, element)
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
        """A ``tosa.const`` of an array of a dtype in ``ELEMENT_TYPES``
        (float32 for any other)."""
        array = np.asarray(array)
        if array.dtype not in ELEMENT_TYPES:
            array = array.astype(np.float32, copy=False)
        return self.op("tosa.const", [], array.shape, {"values": dense_attr(array)},
                       loc=loc, hint=hint, element=ELEMENT_TYPES[array.dtype])

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
        args = ", ".join(f"%{v.name}: {v.type} {{"
                         + ", ".join(f"{k} = {t}" for k, t in attrs.items()) + "}"
                         for v, attrs in self._args)
        rtypes = [v.type for v in self._results]
        rtext = rtypes[0] if len(rtypes) == 1 else "(" + ", ".join(rtypes) + ")"
        if self.module_attributes:
            yield ("module attributes {" + ", ".join(
                f"{k} = {v}" for k, v in self.module_attributes.items()) + "} {")
        else:
            yield "module {"
        yield f"  func.func @{self.name}({args}) -> {rtext} {{"
        yield from self._lines
        yield ("    return " + ", ".join("%" + v.name for v in self._results)
               + " : " + ", ".join(rtypes))
        yield "  }"
        yield "}"
