"""Read a qnt module (one function) from MLIR text into Python objects.

There are no MLIR Python bindings on Debian, so the module goes through
``quant-opt`` (which parses and verifies it: malformed IR fails there with
MLIR's own diagnostics) and is printed in the generic operation form with
local types and hex constants, one operation per line:

    %4 = "qnt.conv2d"(%2, %3, %1) <{pad = array<i64: 1, 1, 1, 1>, ...}>
        : (tensor<1x8x8x3x!quant.uniform<u8:f32, 0.02:128>>, ...) -> ... loc("conv1")

`read_module` returns the function: its arguments, operations (name,
operands, result types, attributes as Python values, location name) and
returned values. Types are `TensorType` (shape, element) with element a
builtin name (``f32``, ``i8``, ...) or a `UniformType`.
"""

import re
from pathlib import Path

import numpy as np

from .tools import ToolError, run


class MlirReadError(Exception):
    """The file is not a module quant-opt accepts, or not one function."""


class UniformType:
    """``!quant.uniform<storage<min:max>:f32[:axis], scale:zp | {s:z, ...}>``."""

    __slots__ = ("storage", "qmin", "qmax", "axis", "scales", "zero_points")

    def __init__(self, storage, qmin, qmax, axis, scales, zero_points):
        self.storage, self.qmin, self.qmax, self.axis = storage, qmin, qmax, axis
        self.scales, self.zero_points = scales, zero_points

    @property
    def signed(self):
        return self.storage.startswith("i")

    @property
    def full_range(self):
        """The storage type's whole range (no ``<min:max>`` narrowing)."""
        bits = int(self.storage[1:])
        lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed
                  else (0, (1 << bits) - 1))
        return (self.qmin, self.qmax) == (lo, hi)

    def __eq__(self, other):
        return (isinstance(other, UniformType)
                and all(getattr(self, k) == getattr(other, k) for k in self.__slots__))

    def __repr__(self):
        return (f"UniformType({self.storage}<{self.qmin}:{self.qmax}>, axis={self.axis}, "
                f"scales={self.scales}, zero_points={self.zero_points})")


class TensorType:
    __slots__ = ("shape", "element")

    def __init__(self, shape, element):
        self.shape, self.element = tuple(shape), element

    @property
    def quantized(self):
        return isinstance(self.element, UniformType)

    @property
    def rank(self):
        return len(self.shape)

    def __repr__(self):
        return f"TensorType({self.shape}, {self.element})"


class Op:
    """One operation: ``name`` (``qnt.conv2d``), ``operands`` and ``results``
    (SSA names), ``operand_types``, ``result_types``, ``attrs`` (properties
    and attributes, parsed) and ``loc`` (the location's name, or None)."""

    __slots__ = ("name", "operands", "results", "operand_types", "result_types", "attrs",
                 "loc", "line")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def result_type(self):
        return self.result_types[0]


class Function:
    """The module's one function; ``module_attrs``: the ``builtin.module``'s
    attributes (``qnt.numerics``)."""
    __slots__ = ("name", "args", "arg_names", "ops", "returns", "module_attrs")

    def __init__(self, name, args, arg_names, ops, returns, module_attrs=None):
        self.name, self.args, self.arg_names = name, args, arg_names
        self.ops, self.returns = ops, returns
        self.module_attrs = module_attrs or {}


# ---------------------------------------------------------------------------
# Scanning
# ---------------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _matching(text, i):
    """Index just past the bracket that closes ``text[i]``, skipping strings
    and nested brackets (``->`` is not a closing ``>``)."""
    stack = [_OPEN[text[i]]]
    j = i + 1
    while stack:
        if j >= len(text):
            raise MlirReadError(f"unbalanced {text[i]!r} in: {text[:200]}")
        c = text[j]
        if c == '"':
            j = _string_end(text, j)
            continue
        if c == ">" and text[j - 1] == "-":
            pass
        elif c == stack[-1]:
            stack.pop()
        elif c in _OPEN:
            stack.append(_OPEN[c])
        j += 1
    return j


def _string_end(text, i):
    j = i + 1
    while text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j + 1


def split_top(text, sep=","):
    """``text`` split at the ``sep`` characters outside brackets and strings."""
    parts, depth, start, j = [], 0, 0, 0
    while j < len(text):
        c = text[j]
        if c == '"':
            j = _string_end(text, j)
            continue
        if c in _OPEN:
            j = _matching(text, j)
            continue
        if c == sep and depth == 0:
            parts.append(text[start:j].strip())
            start = j + 1
        j += 1
    tail = text[start:].strip()
    return parts + [tail] if tail or parts else parts


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

_UNIFORM = re.compile(r"!quant\.uniform<([iu]\d+)(?:<(-?\d+):(-?\d+)>)?:f32(?::(\d+))?,\s*(.*)>$",
                      re.S)


def _scale_zp(text):
    scale, _, zp = text.strip().partition(":")
    return float(scale), int(zp) if zp else 0


def parse_uniform(text):
    m = _UNIFORM.match(text.strip())
    if not m:
        raise MlirReadError(f"unsupported element type {text}")
    storage, lo, hi, axis, params = m.groups()
    bits = int(storage[1:])
    if lo is None:
        lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if storage[0] == "i"
                  else (0, (1 << bits) - 1))
    params = params.strip()
    if params.startswith("{"):
        pairs = [_scale_zp(p) for p in split_top(params[1:-1])]
    else:
        pairs = [_scale_zp(params)]
    return UniformType(storage, int(lo), int(hi), None if axis is None else int(axis),
                       [p[0] for p in pairs], [p[1] for p in pairs])


def parse_type(text):
    """A TensorType, or the text itself for other types (``!tosa.shape<2>``)."""
    text = text.strip()
    if not text.startswith("tensor<"):
        return text
    body = text[len("tensor<"):-1]
    dims = []
    while True:
        m = re.match(r"(\d+)x", body)
        if not m:
            break
        dims.append(int(m.group(1)))
        body = body[m.end():]
    if body.startswith("?") or body.startswith("*"):
        raise MlirReadError(f"dynamic shape {text}: only static shapes are supported")
    return TensorType(dims, parse_uniform(body) if body.startswith("!quant") else body)


def parse_types(text):
    text = text.strip()
    if text.startswith("(") and _matching(text, 0) == len(text):
        text = text[1:-1]
    return [parse_type(t) for t in split_top(text)] if text else []


# ---------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------

_NP = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64,
       "i32": np.int32, "i16": np.int16, "i8": np.int8, "ui8": np.uint8, "i1": np.bool_,
       "index": np.int64}


def _dense(body, type_text):
    ttype = parse_type(type_text)
    element = ttype.element
    if element not in _NP:
        raise MlirReadError(f"unsupported constant element type {element}")
    dtype = np.dtype(_NP[element])
    if body.startswith('"0x'):
        data = bytes.fromhex(body[3:-1])
        if dtype == np.bool_ and len(data) != int(np.prod(ttype.shape)):
            raise MlirReadError("packed i1 constants are not supported")
        array = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
        return array.astype(dtype).reshape(ttype.shape)
    text = body.replace("true", "1").replace("false", "0")
    if dtype.kind == "f":
        values = [_float(v) for v in re.findall(r"[^\s\[\],]+", text)]
    else:
        values = [int(v, 0) for v in re.findall(r"[^\s\[\],]+", text)]
    array = np.array(values, dtype=dtype)
    if array.size == 1:
        return np.full(ttype.shape, array[0], dtype=dtype)
    return array.reshape(ttype.shape)


def _float(text):
    if text.startswith("0x"):
        return np.array([int(text, 16)], dtype="<u4").view("<f4")[0]
    return float(text)


def parse_attr(text):
    """An attribute value as Python: numpy arrays for ``dense<>`` and
    ``array<>``, int / float / bool / str, lists, dicts; enum attributes
    (``#qnt.activation<relu>``) as their value's text; ``#qnt.qspec<...>``
    as a dict; anything else as its text."""
    text = text.strip()
    if text.startswith("dense<"):
        end = _matching(text, 5)
        rest = text[end:].strip()
        if not rest.startswith(":"):
            raise MlirReadError(f"untyped dense attribute {text[:80]}")
        return _dense(text[6:end - 1].strip(), rest[1:])
    if text.startswith("array<"):
        element, _, values = text[6:-1].partition(":")
        dtype = _NP[element.strip()]
        vals = values.strip()
        if not vals:
            return np.zeros(0, dtype)
        if np.dtype(dtype).kind == "f":
            return np.array([_float(v) for v in split_top(vals)], dtype=dtype)
        return np.array([int(v.replace("true", "1").replace("false", "0"))
                         for v in split_top(vals)], dtype=dtype)
    if text.startswith("#qnt.qspec<"):
        return parse_dict(text[len("#qnt.qspec<"):-1])
    m = re.match(r"#[\w.]+<(\w+)>$", text)
    if m:
        return m.group(1)
    if text.startswith('"'):
        return text[1:-1].encode().decode("unicode_escape")
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("{"):
        return parse_dict(text[1:-1])
    if text.startswith("["):
        return [parse_attr(v) for v in split_top(text[1:-1])]
    m = re.match(r"(-?[\d.eE+-]+|0x[0-9A-Fa-f]+)\s*:\s*(\w+)$", text)
    if m:
        value, kind = m.groups()
        return _float(value) if kind.startswith("f") else int(value, 0)
    if re.match(r"-?\d+$", text):
        return int(text)
    return text


def parse_dict(text):
    attrs = {}
    for part in split_top(text):
        key, sep, value = part.partition("=")
        attrs[key.strip()] = parse_attr(value) if sep else True
    return attrs


# ---------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------

_OP = re.compile(r'\s*(?:(%[\w$.-]+)(?::(\d+))? = )?"([\w.]+)"\(')
_LOC_NAME = re.compile(r'loc\((?:fused\[)?"([^"]*)"(?!:\d)')


def _parse_op(line, lineno):
    m = _OP.match(line)
    if not m:
        raise MlirReadError(f"line {lineno}: cannot read {line.strip()[:120]}")
    result, count, name = m.groups()
    i = m.end() - 1
    end = _matching(line, i)
    operands = [o.strip() for o in split_top(line[i + 1:end - 1])]
    rest = line[end:].lstrip()
    attrs = {}
    if rest.startswith("<{"):
        end = _matching(rest, 1)
        attrs.update(parse_dict(rest[2:end - 1]))
        rest = rest[end + 1:].lstrip()
    if rest.startswith("{"):
        end = _matching(rest, 0)
        attrs.update(parse_dict(rest[1:end - 1]))
        rest = rest[end:].lstrip()
    if not rest.startswith(":"):
        raise MlirReadError(f"line {lineno}: no type in {line.strip()[:120]}")
    rest = rest[1:].strip()
    loc = None
    lm = re.search(r"\s+loc\(", rest)
    if lm:
        loc_text = rest[lm.start():]
        rest = rest[:lm.start()]
        nm = _LOC_NAME.search(loc_text)
        loc = nm.group(1) if nm else None
    end = _matching(rest, 0)
    operand_types = parse_types(rest[:end])
    arrow = rest[end:].strip()
    result_types = parse_types(arrow[2:]) if arrow.startswith("->") else []
    if result is None:
        results = []
    elif count:
        results = [f"{result}#{k}" for k in range(int(count))]
    else:
        results = [result]
    return Op(name=name, operands=operands, results=results, operand_types=operand_types,
              result_types=result_types, attrs=attrs, loc=loc, line=lineno)


def generic_text(path, build_dir=None):
    """The module at ``path`` printed by quant-opt in the generic form."""
    try:
        return run(f"reading {path}", "quant-opt", path, "--mlir-print-op-generic",
                   "--mlir-print-local-scope", "--mlir-print-debuginfo",
                   "--mlir-print-elementsattrs-with-hex-if-larger=1", build=build_dir)
    except ToolError as e:
        raise MlirReadError(str(e)) from None


def read_module(path, build_dir=None):
    """The one function of the module at ``path``."""
    if not Path(path).is_file():
        raise MlirReadError(f"{path}: no such file")
    return parse_generic(generic_text(path, build_dir))


def parse_generic(text):
    lines = text.splitlines()
    funcs = [i for i, line in enumerate(lines) if line.lstrip().startswith('"func.func"')]
    if len(funcs) != 1:
        raise MlirReadError(f"expected one function in the module, found {len(funcs)}")
    head = lines[funcs[0]]
    props = parse_dict(head[head.index("<{") + 2:head.rindex("}>")])
    arg_names = [a.get("qnt.name") if isinstance(a, dict) else None
                 for a in props.get("arg_attrs", [])]
    block = lines[funcs[0] + 1].strip()
    if not block.startswith("^bb0("):
        raise MlirReadError("the function has no arguments block")
    args = []
    for part in split_top(block[5:_matching(block, 4) - 1]):
        name, _, ty = part.partition(":")
        ty = re.sub(r"\s+loc\(.*\)$", "", ty)
        args.append((name.strip(), parse_type(ty)))
    arg_names += [None] * (len(args) - len(arg_names))
    ops, returns = [], None
    for lineno in range(funcs[0] + 2, len(lines)):
        line = lines[lineno]
        if line.strip().startswith("})"):
            break
        if not line.strip():
            continue
        op = _parse_op(line, lineno + 1)
        if op.name == "func.return":
            returns = op.operands
        else:
            ops.append(op)
    if returns is None:
        raise MlirReadError("the function has no return")
    return Function(props.get("sym_name"), args, arg_names, ops, returns,
                    _module_attributes(lines))


def _module_attributes(lines):
    """The attribute dictionary of the ``builtin.module`` (its closing line
    ``}) {qnt.numerics = "..."} : () -> ()``)."""
    if not lines or not lines[0].startswith('"builtin.module"'):
        return {}
    for line in reversed(lines):
        if line.startswith("})"):
            rest = line[2:].strip()
            if rest.startswith("{"):
                return parse_dict(rest[1:_matching(rest, 0) - 1])
            return {}
    return {}
