"""ONNX model -> torch.fx graph of the ops `qnt.export` knows -> FP32 TOSA IR.

An ONNX graph is translated node by node (`qnt.onnx.ops`, one converter per
op type) into a ``torch.fx`` graph of PyTorch modules and functions, which
`qnt.export` then emits exactly as it emits a traced PyTorch model: the same
IR, NHWC inside, the same op handlers. While building, every node also runs
eagerly on example inputs, so shapes are known and everything computed from
constants only (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape`` chains,
transposed or dequantized weights) folds into constants.

QDQ models: a ``QuantizeLinear`` -> ``DequantizeLinear`` pair on an activation
becomes a `FixedFakeQuantize` (``qnt.fake_quant`` with the file's scale and
zero point); a ``DequantizeLinear`` of a constant int8 weight becomes the
float weight on its grid plus its fake quant, which the conv / linear
converters keep as a QAT weight fake quant. ``--qnt-fold-fake-quant`` turns
them into ``quant.qcast`` / ``quant.dcast``, ``--qnt-convert`` into INT8 ops.
The operator forms (``QLinearConv``, ``QLinearMatMul``, ``com.microsoft``
``QLinearAdd`` ...) are read as their QDQ equivalent: dequantized inputs,
the float op, a quantized output. ORT's dynamic quantization
(``DynamicQuantizeLinear`` -> ``MatMulInteger`` -> ``Cast`` -> ``Mul`` by the
scales) becomes the float linear of the dequantized weight, which qnt's
dynamic pipeline quantizes; under ONNX Runtime's numerics with the file's
int8 weights and scales (a weight fake quant), which the pipeline keeps.

A quantized model's module carries ``qnt.numerics = "onnxruntime"``: the
lowering then computes the integers ONNX Runtime computes for the file
(QuantizeLinear's division, ORT's requantization multipliers and
QLinearAdd; docs/numerics.md, "ONNX Runtime numerics"). ``numerics="qnt"``
keeps qnt's own arithmetic; a file written by `export_onnx` says which it
follows in its ``qnt.numerics`` metadata.
"""

import keyword
import re
from pathlib import Path

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from ..export import ExportError, export
from ..export import to_mlir as _export_to_mlir

OPSETS = range(13, 19)  # the default domain's versions the converters handle
NUMERICS = ("onnxruntime", "qnt")  # values of the module's qnt.numerics
NUMERICS_KEY = "qnt.numerics"      # the ONNX metadata_props key export_onnx writes
# Op types whose presence makes a model quantized (any com.microsoft op too).
_QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                  "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}


class OnnxImportError(Exception):
    """The model cannot be imported (the message names the node or file)."""


class Unsupported(Exception):
    """Raised by a converter: the node cannot be imported (located by the caller)."""


QUANTIZED_USE = ("the integer output of a QuantizeLinear or QLinear op is used by another op "
                 "than DequantizeLinear or a QLinear op")
DYNAMIC_USE = ("an output of a DynamicQuantizeLinear is used by another op than MatMulInteger "
               "/ ConvInteger (its integers and zero point) or the Mul of the result by its "
               "scale")


def np_dtype(elem_type):
    """numpy dtype of an ONNX TensorProto element type (None if it has none)."""
    from onnx import mapping
    return mapping.TENSOR_TYPE_TO_NP_TYPE.get(elem_type)


class Tensor:
    """An ONNX value while importing.

    ``node``: the fx node computing it, None for a constant; ``value``: the
    constant, or the value on the example inputs (shapes, dtypes);
    ``fq``: a dequantized constant weight's `FixedFakeQuantize`;
    ``q``: (float source Tensor, FixedFakeQuantize) of a ``QuantizeLinear``
    or QLinear op's output, which only the ops of ``ops.READS_QUANTIZED``
    (``DequantizeLinear``, QLinear ops, a ``Cast`` to its own type) may use;
    ``linear``: the bias-less ``nn.Linear`` a ``MatMul`` became (a
    following ``Add`` of a constant vector becomes its bias); ``dyn``: an
    ``ops.Dynamic`` for the outputs of a ``DynamicQuantizeLinear`` and what
    ``MatMulInteger`` / ``ConvInteger`` and the ``Mul`` of their scales make
    of them."""

    __slots__ = ("node", "value", "fq", "q", "linear", "dyn")

    def __init__(self, node, value, fq=None, q=None, linear=None, dyn=None):
        self.node, self.value, self.fq, self.q, self.linear = node, value, fq, q, linear
        self.dyn = dyn

    @property
    def const(self):
        return self.node is None and self.q is None and self.dyn is None

    @property
    def shape(self):
        return tuple(self.value.shape)

    @property
    def rank(self):
        return self.value.dim()


_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def identifier(name, fallback="v"):
    name = _NOT_IDENTIFIER.sub("_", name).strip("_") or fallback
    return "_" + name if name[0].isdigit() or keyword.iskeyword(name) else name


class Builder:
    """The fx graph being built, its root module (submodules, constants),
    the ONNX node being converted (``loc``, its name) and the module's
    ``qnt.numerics`` (None for a float model)."""

    def __init__(self, opset, numerics=None):
        self.opset = opset
        self.numerics = numerics
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.loc = None
        self._names = set()
        self._attr_nodes = {}  # id(constant Tensor) -> get_attr node
        self.uses = {}  # ONNX value name -> how many nodes and graph outputs read it
        self.dequantized = {}  # id(QuantizeLinear output Tensor) -> its fake quant Tensor

    def single_use(self, name):
        return self.uses.get(name, 0) == 1

    def _unique(self, base):
        name, i = base, 0
        while name in self._names or hasattr(self.root, name):
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def input(self, name, example):
        node = self.graph.placeholder(self._unique(identifier(name, "input")))
        node.meta["qnt_name"] = name
        return Tensor(node, example)

    def node_of(self, t):
        """The fx node of ``t`` (a get_attr of a buffer for a constant)."""
        if t.q is not None:
            raise Unsupported(QUANTIZED_USE)
        if t.dyn is not None:
            raise Unsupported(DYNAMIC_USE)
        if t.node is not None:
            return t.node
        if id(t) not in self._attr_nodes:
            name = self._unique("c_" + identifier(self.loc or "const"))
            self.root.register_buffer(name, t.value.detach().clone())
            node = self.graph.get_attr(name)
            node.meta["qnt_loc"] = self.loc
            self._attr_nodes[id(t)] = node
        return self._attr_nodes[id(t)]

    def _map(self, args, fn):
        if isinstance(args, Tensor):
            return fn(args)
        if isinstance(args, (list, tuple)):
            return type(args)(self._map(a, fn) for a in args)
        if isinstance(args, dict):
            return {k: self._map(v, fn) for k, v in args.items()}
        return args

    def _tensors(self, args):
        found = []
        self._map(args, found.append)
        return found

    def _emit(self, kind, target, args, kwargs, run):
        with torch.no_grad():
            value = run(*self._map(args, lambda t: t.value), **self._map(kwargs, lambda t: t.value))
        if all(t.const for t in self._tensors((args, kwargs))):
            return Tensor(None, value)
        node = self.graph.create_node(kind, target, self._map(args, self.node_of),
                                      self._map(kwargs, self.node_of))
        node.meta["qnt_loc"] = self.loc
        return Tensor(node, value)

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``: a constant when every tensor argument is."""
        return self._emit("call_function", fn, args, kwargs, fn)

    def method(self, name, x, *args, **kwargs):
        return self._emit("call_method", name, (x, *args), kwargs,
                          lambda v, *a, **k: getattr(v, name)(*a, **k))

    def module(self, m, *args):
        """A call of submodule ``m`` (named after the ONNX node)."""
        m.eval()
        name = self._unique(identifier(self.loc or type(m).__name__))
        self.root.add_module(name, m)
        return self._emit("call_module", name, args, {}, m)

    def graph_module(self, outputs):
        self.loc = "output"
        nodes = [self.node_of(t) for t in outputs]
        self.graph.output(nodes[0] if len(nodes) == 1 else tuple(nodes))
        gm = fx.GraphModule(self.root, self.graph)
        gm.qnt_prebuilt = True
        return gm


# ---------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------

def _load(path):
    import onnx
    from onnx import external_data_helper
    path = Path(path)
    if not path.is_file():
        raise OnnxImportError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 (protobuf decode errors of any kind)
        raise OnnxImportError(f"{path}: not an ONNX model, or a truncated one "
                              f"({type(e).__name__}: {e})") from None
    if not model.HasField("graph") or not model.graph.output:
        raise OnnxImportError(f"{path}: not an ONNX model (no graph with outputs)")
    base = path.parent
    for t in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(t):
            continue
        info = {e.key: e.value for e in t.external_data}
        location = base / info.get("location", "")
        if not info.get("location") or not location.is_file():
            raise OnnxImportError(f"{path}: initializer '{t.name}' is stored in "
                                  f"'{info.get('location', '')}', which does not exist "
                                  f"(looked in {base})")
        end = int(info.get("offset", 0)) + int(info.get("length", 0))
        if end > location.stat().st_size:
            raise OnnxImportError(f"{path}: initializer '{t.name}' needs bytes up to {end} "
                                  f"of '{location}', which has {location.stat().st_size} "
                                  f"(truncated)")
    try:
        external_data_helper.load_external_data_for_model(model, str(base))
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 (onnx's ValidationError and friends)
        raise OnnxImportError(f"{path}: invalid ONNX model: {str(e).strip()}") from None
    return model


def _opset(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return None


def _attributes(node):
    from onnx import AttributeProto, helper, numpy_helper
    attrs = {}
    for a in node.attribute:
        if a.type == AttributeProto.TENSOR:
            attrs[a.name] = numpy_helper.to_array(a.t)
        else:
            value = helper.get_attribute_value(a)
            attrs[a.name] = value.decode() if isinstance(value, bytes) else value
    return attrs


def _inputs(graph, input_shapes):
    """[(name, shape, numpy dtype)] of the graph inputs that are not
    initializers, with ``input_shapes`` (name -> shape, or one shape under
    None for a single input) filling in dynamic dimensions."""
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    shapes = dict(input_shapes or {})
    if None in shapes:
        if len(inputs) != 1:
            raise OnnxImportError(f"the model has {len(inputs)} inputs "
                                  f"({', '.join(i.name for i in inputs)}): name the input of "
                                  f"each --input-shape (NAME=1,3,224,224)")
        shapes[inputs[0].name] = shapes.pop(None)
    unknown = set(shapes) - {i.name for i in inputs}
    if unknown:
        raise OnnxImportError(f"--input-shape names {', '.join(sorted(unknown))}, which the "
                              f"model does not have (inputs: "
                              f"{', '.join(i.name for i in inputs)})")
    result = []
    for i in inputs:
        tt = i.type.tensor_type
        dtype = np_dtype(tt.elem_type)
        if not i.type.HasField("tensor_type") or dtype is None:
            raise OnnxImportError(f"input '{i.name}' is not a tensor of a known element type")
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in tt.shape.dim]
        if i.name in shapes:
            shape = tuple(int(d) for d in shapes[i.name])
            fixed = [(k, d) for k, d in enumerate(dims) if isinstance(d, int)]
            if len(shape) != len(dims) or any(shape[k] != d for k, d in fixed):
                raise OnnxImportError(f"--input-shape {i.name}={','.join(map(str, shape))} "
                                      f"does not fit the model's shape {dims}")
        elif all(isinstance(d, int) and d > 0 for d in dims):
            shape = tuple(dims)
        else:
            raise OnnxImportError(f"input '{i.name}' has dynamic dimensions {dims}: give its "
                                  f"shape with --input-shape {i.name}=" +
                                  ",".join(str(d) if isinstance(d, int) and d else "N"
                                           for d in dims))
        result.append((i.name, shape, np.dtype(dtype)))
    return result


_TORCH_DTYPES = {np.dtype("float32"): torch.float32, np.dtype("int64"): torch.int64,
                 np.dtype("int32"): torch.int32, np.dtype("bool"): torch.bool}


def _example(name, shape, dtype):
    if dtype not in _TORCH_DTYPES:
        raise OnnxImportError(f"input '{name}' is {dtype}: qnt's inputs are float32, int64, "
                              f"int32 or bool")
    return torch.zeros(shape, dtype=_TORCH_DTYPES[dtype])


def _numerics(model, path, requested):
    """The module's ``qnt.numerics``: ``requested``, else the file's
    ``qnt.numerics`` metadata, else "onnxruntime" for a quantized model;
    None for a float model."""
    if requested is None:
        requested = {p.key: p.value for p in model.metadata_props}.get(NUMERICS_KEY)
        if requested is not None and requested not in NUMERICS:
            raise OnnxImportError(f"{path}: metadata {NUMERICS_KEY} = {requested!r} is not "
                                  f"one of {', '.join(NUMERICS)}")
    elif requested not in NUMERICS:
        raise ValueError(f"numerics must be one of {', '.join(NUMERICS)}, got {requested!r}")
    if requested is not None:
        return requested
    quantized = any(n.op_type in _QUANTIZED_OPS or n.domain == "com.microsoft"
                    for n in model.graph.node)
    return "onnxruntime" if quantized else None


def build(path, input_shapes=None, numerics=None):
    """(GraphModule, example inputs, module attributes) of the ONNX model at
    ``path`` (see `import_onnx`)."""
    from . import ops
    model = _load(path)
    numerics = _numerics(model, path, numerics)
    opset = _opset(model)
    if opset not in OPSETS:
        raise OnnxImportError(f"{path}: opset {opset} of the default domain is not supported "
                              f"({OPSETS.start}-{OPSETS.stop - 1}); "
                              f"onnx.version_converter.convert_version(model, 17) converts it")
    graph = model.graph
    nodes = ops.fuse_patterns(list(graph.node), graph)
    unsupported = [(n.name, n.op_type, n.domain or "ai.onnx") for n in nodes
                   if ops.converter(n) is None]
    if unsupported:
        versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        raise OnnxImportError(
            f"{path}: {len(unsupported)} unsupported node{'s' * (len(unsupported) > 1)}:\n" +
            "\n".join(f"  '{name}': {op} ({domain} opset {versions.get(domain, '?')})"
                      for name, op, domain in unsupported))
    b = Builder(opset, numerics)
    for n in nodes:
        for name in n.input:
            b.uses[name] = b.uses.get(name, 0) + 1
    for o in graph.output:
        b.uses[o.name] = b.uses.get(o.name, 0) + 1
    env = {}
    from onnx import numpy_helper
    for t in graph.initializer:
        env[t.name] = Tensor(None, torch.from_numpy(np.array(numpy_helper.to_array(t))))
    examples = []
    for name, shape, dtype in _inputs(graph, input_shapes):
        example = _example(name, shape, dtype)
        examples.append(example)
        env[name] = b.input(name, example)
    for i, node in enumerate(nodes):
        b.loc = node.name or f"{node.op_type}_{i}"
        try:
            ins = [env[name] if name else None for name in node.input]
        except KeyError as e:
            raise OnnxImportError(f"node '{b.loc}' ({node.op_type}) reads {e}, which no node "
                                  f"before it computes") from None
        try:
            if node.op_type not in ops.READS_QUANTIZED:
                for t in ins:
                    if t is not None and t.q is not None:
                        raise Unsupported(QUANTIZED_USE)
                    if t is not None and t.dyn is not None:
                        raise Unsupported(DYNAMIC_USE)
            outs = ops.converter(node)(b, node, ins, _attributes(node))
        except (Unsupported, OnnxImportError) as e:
            raise OnnxImportError(f"node '{b.loc}' ({node.op_type}): {e}") from None
        except Exception as e:  # noqa: BLE001 (torch's shape errors while running the node)
            raise OnnxImportError(f"node '{b.loc}' ({node.op_type}): cannot be imported: "
                                  f"{type(e).__name__}: {e}") from None
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for name, t in zip(node.output, outs):
            if name:
                env[name] = t
    outputs = []
    for o in graph.output:
        t = env.get(o.name)
        if t is None:
            raise OnnxImportError(f"graph output '{o.name}' is computed by no node")
        if t.q is not None or t.dyn is not None:
            raise OnnxImportError(f"graph output '{o.name}' is the integer output of a "
                                  f"QuantizeLinear, QLinear op or DynamicQuantizeLinear "
                                  f"(qnt's models return float)")
        outputs.append(t)
    attributes = {"qnt.numerics": f'"{numerics}"'} if numerics else {}
    return b.graph_module(outputs), tuple(examples), attributes


def to_mlir(path, input_shapes=None, numerics=None):
    """The imported MLIR as a string (see `import_onnx`)."""
    gm, examples, attributes = build(path, input_shapes, numerics)
    try:
        return _export_to_mlir(gm, examples, attributes)
    except ExportError as e:
        raise OnnxImportError(str(e)) from None


def import_onnx(path, out, input_shapes=None, numerics=None):
    """Imports the ONNX model at ``path`` and writes the MLIR to ``out``
    (nothing is written when it fails). ``input_shapes``: ``{input name:
    shape}`` for inputs with dynamic dimensions (``{None: shape}`` for a
    single input). ``numerics``: whose integer arithmetic a quantized model
    compiles to, "onnxruntime" (the default, unless the file's
    ``qnt.numerics`` metadata says otherwise) or "qnt"; it becomes the
    module's ``qnt.numerics``. Returns `qnt.export.ExportInfo`. Raises
    `OnnxImportError`."""
    gm, examples, attributes = build(path, input_shapes, numerics)
    try:
        return export(gm, examples, out, attributes)
    except ExportError as e:
        raise OnnxImportError(str(e)) from None
