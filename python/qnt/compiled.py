"""A module compiled by quant-compile, called from Python.

``CompiledModel.build(int8_mlir, out_dir)`` compiles a qnt module (INT8 or
any other one quant-compile takes) into a directory:

    libmodel.so        the library (quant-compile --name model), its C API
    model.h            its header (docs/compile.md)
    model.int8.mlir    the compiled module
    model.fp32.mlir    the FP32 module, if given (for `CompiledModel.report`)
    manifest.json      {"format": 1, "inputs", "outputs", "summary", "pipeline", ...}

``load(out_dir)`` opens it again; the model is then called like a function
on numpy arrays or torch tensors, from any number of Python threads (each
thread runs its own instance of the C API, concurrently: ctypes releases
the GIL during a run).
"""

import contextlib
import ctypes
import json
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from . import compare
from . import data as qdata
from . import mlir_reader
from ._files import _umask
from .tools import run

FORMAT = 1
NAME = "model"
LIBRARY, HEADER, MANIFEST = f"lib{NAME}.so", f"{NAME}.h", "manifest.json"
INT8_MLIR, FP32_MLIR = f"{NAME}.int8.mlir", f"{NAME}.fp32.mlir"

# The C API's model_dtype values, in order, and the C element types of the header.
_DTYPES = ("float32", "int64", "int32", "bool")
_C_TYPES = {"float": "float32", "int64_t": "int64", "int32_t": "int32", "uint8_t": "bool"}
_MESSAGE_SIZE = 1024


class _Tensor(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("data", ctypes.c_void_p)]


# ---------------------------------------------------------------------------
# Directories
# ---------------------------------------------------------------------------

def _check_empty(directory):
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ValueError(f"{directory} exists and is not an empty directory")


@contextlib.contextmanager
def _atomic_directory(directory):
    """Yields a temporary directory beside ``directory`` that becomes it on
    success; ``directory`` must not exist or be empty (else ValueError).

    On any exception the temporary directory is removed."""
    directory = Path(os.path.abspath(directory))
    _check_empty(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp")
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, directory)  # replaces an empty directory, never a full one
        except OSError as e:
            if directory.exists():
                raise ValueError(f"{directory} exists and is not an empty directory") from e
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_header(path):
    """The inputs and outputs the header describes, as manifest specs."""
    specs = {"input": [], "output": []}
    pattern = re.compile(r'/\* (input|output) \d+: "(.*)", (\w+), shape \[([^\]]*)\]')
    for kind, name, ctype, shape in pattern.findall(Path(path).read_text()):
        specs[kind].append({"name": name, "shape": [int(d) for d in shape.split(",") if d],
                            "dtype": _C_TYPES[ctype]})
    return specs["input"], specs["output"]


def _is_torch(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _shape_text(shape):
    return "[" + ", ".join(map(str, shape)) + "]"


def _destroy(destroy, handles):
    for handle in handles:
        destroy(handle)
    handles.clear()


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

class CompiledModel:
    """A directory written by `build` (or `save`): the library, its header,
    the modules and manifest.json, loaded with ctypes."""

    @classmethod
    def build(cls, int8_mlir, out_dir, *, float_mlir=None, pipeline=(), extra=None,
              build_dir=None, num_threads=0):
        """Compiles ``int8_mlir`` into ``out_dir`` (which must not exist or
        be empty: ValueError) and returns it loaded.

        float_mlir: the FP32 module, copied for `report`; pipeline: how the
        module was made (stored in the manifest); extra: more manifest keys.
        Everything is written into a temporary directory beside ``out_dir``,
        renamed into place at the end: nothing half-written on an error.
        quant-compile failing raises qnt.tools.ToolError (a RuntimeError)
        with its stderr."""
        for path in (int8_mlir, float_mlir):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such file")
        _check_empty(out_dir)
        summary = module_summary(int8_mlir, build_dir)
        with _atomic_directory(out_dir) as tmp:
            run(f"compiling {int8_mlir}", "quant-compile", int8_mlir, "--name", NAME,
                "-o", tmp / LIBRARY, build=build_dir)
            shutil.copyfile(int8_mlir, tmp / INT8_MLIR)
            if float_mlir is not None:
                shutil.copyfile(float_mlir, tmp / FP32_MLIR)
            inputs, outputs = _read_header(tmp / HEADER)
            manifest = {"format": FORMAT, "inputs": inputs, "outputs": outputs,
                        "summary": summary, "pipeline": list(pipeline), **(extra or {})}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return cls(out_dir, num_threads)

    def __init__(self, directory, num_threads=0):
        """Loads a compiled model; ``num_threads`` goes to each thread's
        ``model_create`` (0: the runtime's defaults)."""
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory}: no such compiled model directory")
        for name in (MANIFEST, LIBRARY):
            if not (self.directory / name).is_file():
                raise FileNotFoundError(f"{self.directory / name}: no such file "
                                        f"(not a directory written by CompiledModel.build)")
        self.manifest = json.loads((self.directory / MANIFEST).read_text())
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{self.directory / MANIFEST}: unknown format "
                             f"{self.manifest.get('format')!r} (expected {FORMAT})")
        self.inputs, self.outputs = self.manifest["inputs"], self.manifest["outputs"]
        self.num_threads = num_threads
        try:
            lib = ctypes.CDLL(str((self.directory / LIBRARY).resolve()))
        except OSError as e:
            raise ValueError(f"cannot load {self.directory / LIBRARY}: {e}") from e
        lib.model_create.argtypes, lib.model_create.restype = [ctypes.c_int], ctypes.c_void_p
        lib.model_run_tensors.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Tensor), ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                          ctypes.c_size_t]
        lib.model_run_tensors.restype = ctypes.c_int
        lib.model_status_string.argtypes = [ctypes.c_int]
        lib.model_status_string.restype = ctypes.c_char_p
        lib.model_destroy.argtypes, lib.model_destroy.restype = [ctypes.c_void_p], None
        self._lib = lib
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles = []
        weakref.finalize(self, _destroy, lib.model_destroy, self._handles)

    @property
    def batch(self):
        """The compiled batch size: the leading dim of the first input."""
        shape = self.inputs[0]["shape"]
        return shape[0] if shape else 1

    def _instance(self):
        """This thread's instance of the C API, created on first use."""
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._lib.model_create(self.num_threads)
            if not handle:
                raise RuntimeError(f"model_create({self.num_threads}) failed")
            with self._lock:
                self._handles.append(handle)
            self._local.handle = handle
        return handle

    def _run(self, arrays, outputs, rows=""):
        """One model_run_tensors on arrays of the compiled shapes."""
        shapes = [(ctypes.c_int64 * a.ndim)(*a.shape) for a in arrays]
        tensors = (_Tensor * len(arrays))(*(
            _Tensor(_DTYPES.index(spec["dtype"]), a.ndim, shape, a.ctypes.data)
            for spec, a, shape in zip(self.inputs, arrays, shapes)))
        pointers = (ctypes.c_void_p * len(outputs))(*(o.ctypes.data for o in outputs))
        message = ctypes.create_string_buffer(_MESSAGE_SIZE)
        status = self._lib.model_run_tensors(self._instance(), tensors, len(arrays), pointers,
                                             message, _MESSAGE_SIZE)
        if status:
            text = message.value.decode(errors="replace") or \
                self._lib.model_status_string(status).decode()
            raise ValueError(f"{rows}{text}")

    def _convert(self, inputs):
        """The inputs as contiguous arrays of their dtypes; every dim but
        the leading one checked."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{len(inputs)} input(s) given, the model takes {len(self.inputs)}")
        arrays = []
        for i, (spec, x) in enumerate(zip(self.inputs, inputs)):
            a = np.ascontiguousarray(qdata._numpy(x), dtype=spec["dtype"])
            shape = spec["shape"]
            if a.ndim != len(shape) or list(a.shape[1:]) != shape[1:]:
                expected = _shape_text(["*"] + shape[1:]) if shape else "[]"
                raise ValueError(f"input {i} '{spec['name']}': shape {_shape_text(a.shape)}, "
                                 f"expected {expected} (compiled batch {self.batch})")
            arrays.append(a)
        return arrays

    def __call__(self, *inputs):
        """Runs the model on one array (or tensor) per input, in order.

        Inputs are converted to each input's dtype (float32, int64, int32,
        bool). The model is compiled for one batch size B, the leading dim;
        N other rows are run in chunks of B (the last chunk padded with
        zeros, whose output rows are dropped) and the outputs concatenated.
        Every other dim must match (ValueError). Returns numpy arrays, or
        torch tensors when an input was one; the output itself when the
        model has one, else a tuple."""
        arrays = self._convert(inputs)
        if all(list(a.shape) == s["shape"] for a, s in zip(arrays, self.inputs)):
            outputs = [np.empty(spec["shape"], np.float32) for spec in self.outputs]
            self._run(arrays, outputs)
        else:
            outputs = self._run_rows(arrays)
        if any(_is_torch(x) for x in inputs):
            import torch
            outputs = [torch.from_numpy(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _run_rows(self, arrays):
        """Runs N rows in chunks of the compiled batch; the outputs [N, ...]."""
        batch = self.batch
        if any(not s["shape"] or s["shape"][0] != batch for s in self.inputs + self.outputs):
            raise ValueError(f"input shapes {[_shape_text(a.shape) for a in arrays]}: the "
                             f"model runs only its compiled shapes (not every input and "
                             f"output has the leading dim {batch} to split rows into)")
        rows = {a.shape[0] for a in arrays}
        if len(rows) != 1:
            raise ValueError(f"the inputs have different numbers of rows: "
                             f"{[a.shape[0] for a in arrays]}")
        n = rows.pop()
        if n == 0:
            raise ValueError("no rows given")
        padded = -(-n // batch) * batch
        outputs = [np.empty([padded] + spec["shape"][1:], np.float32) for spec in self.outputs]
        for start in range(0, n, batch):
            chunk = [a[start:start + batch] for a in arrays]
            if start + batch > n:
                chunk = [np.concatenate([c, np.zeros((start + batch - n,) + c.shape[1:],
                                                     c.dtype)]) for c in chunk]
            self._run(chunk, [o[start:start + batch] for o in outputs],
                      rows=f"rows {start}..{min(start + batch, n) - 1}: ")
        return [o[:n] for o in outputs]

    def save(self, directory):
        """Copies the model's files into ``directory`` (atomically; it must
        not exist or be empty). Returns the copy, loaded."""
        with _atomic_directory(directory) as tmp:
            for name in (LIBRARY, HEADER, INT8_MLIR, FP32_MLIR, MANIFEST):
                if (self.directory / name).is_file():
                    shutil.copy2(self.directory / name, tmp / name)
        return type(self)(directory, self.num_threads)

    def benchmark(self, runs=100, warmup=10, inputs=None):
        """Times ``runs`` calls of the model (after ``warmup`` untimed ones),
        in this thread, on ``inputs`` (a tuple of arrays, converted once;
        default zeros of the compiled shapes). The times include the
        Python side of a call (checks, ctypes). Returns {"median_ms",
        "min_ms", "runs", "batch"} (batch: the rows of a call)."""
        if inputs is None:
            inputs = tuple(np.zeros(s["shape"], s["dtype"]) for s in self.inputs)
        arrays = self._convert(tuple(inputs))
        for _ in range(warmup):
            self(*arrays)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self(*arrays)
            times.append((time.perf_counter() - start) * 1e3)
        return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": runs,
                "batch": arrays[0].shape[0] if arrays[0].ndim else 1}

    def report(self, data, top=None, *, build_dir=None):
        """Per-layer SQNR of this model against its FP32 module
        (`qnt.compare.compare_layers`), a list of LayerError, worst first;
        ``top`` keeps the first ``top``.

        data: a data-set .npz path (`qnt.data`), a dict {input name: array
        [S] + input shape}, or a list of samples (a tuple of arrays per
        sample, or an array for a one-input model)."""
        float_mlir = self.directory / FP32_MLIR
        if not float_mlir.is_file():
            raise ValueError(f"{self.directory} has no {FP32_MLIR}: "
                             "build the model with float_mlir= for a report")
        with tempfile.TemporaryDirectory() as workdir:
            if not isinstance(data, (str, os.PathLike)):
                path = os.path.join(workdir, "data.npz")
                qdata.save(path, self._data_set(data), batch=None)
                data = path
            errors = compare.compare_layers(float_mlir, self.directory / INT8_MLIR, data,
                                            build_dir=build_dir)
        return errors[:top] if top is not None else errors

    def analyze(self, calibration_data, eval_data, **options):
        """Where this model (built by `qnt.quantize_static`) loses accuracy,
        why, and the fixes that recover it, each checked by quantizing
        again: `qnt.accuracy.analyze.analyze_compiled` with the settings of
        the manifest's pipeline (options: metric, worst, max_workers,
        out_dir, build_dir, log; docs/analyze.md). Returns an Analysis."""
        from .accuracy.analyze import analyze_compiled
        return analyze_compiled(self, calibration_data, eval_data, **options)

    def _data_set(self, data):
        if isinstance(data, dict):
            return data
        samples = [s if isinstance(s, (tuple, list)) else (s,) for s in data]
        return {spec["name"]: np.stack([qdata._numpy(s[i]) for s in samples])
                for i, spec in enumerate(self.inputs)}

    def __repr__(self):
        return f"CompiledModel({str(self.directory)!r}, batch={self.batch})"


def load(directory, num_threads=0):
    """The CompiledModel in ``directory`` (written by build or save)."""
    return CompiledModel(directory, num_threads)


# ---------------------------------------------------------------------------
# Module summary
# ---------------------------------------------------------------------------

_CONSTANTS = {"arith.constant", "tosa.const", "tosa.const_shape"}
_CASTS = {"quant.scast", "quant.qcast", "quant.dcast"}
_STUBS = {"qnt.quant_stub", "qnt.dequant_stub"}
# Layout ops that may stand between an argument and its quant.qcast, or a
# quant.dcast and a result.
_LAYOUT = {"tosa.transpose", "tosa.reshape"}
_WEIGHT_KINDS = {"i8": "int8", "u8": "int8", "ui8": "int8", "f32": "float", "i32": "int32"}
_BYTES = {"int8": 1, "float": 4, "int32": 4}


def _qparams(ttype):
    """[scale, zero_point] of a quantized type ([scales, zero_points] per axis)."""
    e = ttype.element
    if len(e.scales) == 1:
        return [float(e.scales[0]), int(e.zero_points[0])]
    return [[float(s) for s in e.scales], [int(z) for z in e.zero_points]]


def _input_qparams(func, arg):
    users = {}
    for op in func.ops:
        for operand in op.operands:
            users.setdefault(operand, []).append(op)
    pending = [arg]
    while pending:
        for op in users.get(pending.pop(), []):
            if op.name == "quant.qcast":
                return _qparams(op.result_type)
            if op.name in _LAYOUT:
                pending.append(op.results[0])
    return None


def _output_qparams(func, value):
    producers = {result: op for op in func.ops for result in op.results}
    op = producers.get(value)
    while op is not None and op.name in _LAYOUT:
        op = producers.get(op.operands[0])
    return _qparams(op.operand_types[0]) if op is not None and op.name == "quant.dcast" else None


def _weight_kind(ttype):
    e = ttype.element
    return _WEIGHT_KINDS.get(e.storage if isinstance(e, mlir_reader.UniformType) else e)


def module_summary(mlir_path, build_dir=None):
    """What a module computes in which precision (`mlir_reader.read_module`):

    ops_quantized: ops with a quantized result or operand (a dynamically
        quantized linear's weight); ops_float: other ops with an f32 result (neither counts constants, quant.scast/qcast/dcast or the qnt
        stubs; layout ops such as a float tosa.transpose count);
    op_types: {op name: {"int8": quantized count, "float": float count}};
    input_qparams / output_qparams: per argument, [scale, zero_point] of its
        quant.qcast (through transposes / reshapes), per result that of the
        quant.dcast producing it; None when there is none;
    weight_bytes: bytes of the constants, {"int8": i8 / u8 (also quantized
        storage), "float": f32, "int32": i32}."""
    func = mlir_reader.read_module(mlir_path, build_dir)
    summary = {"ops_quantized": 0, "ops_float": 0, "op_types": {},
               "input_qparams": [_input_qparams(func, ssa) for ssa, _ in func.args],
               "output_qparams": [_output_qparams(func, v) for v in func.returns],
               "weight_bytes": dict.fromkeys(_BYTES, 0)}
    for op in func.ops:
        types = [t for t in op.result_types if isinstance(t, mlir_reader.TensorType)]
        if op.name in _CONSTANTS:
            kind = _weight_kind(types[0]) if types else None
            if kind:
                summary["weight_bytes"][kind] += int(np.prod(types[0].shape)) * _BYTES[kind]
            continue
        if op.name in _CASTS or op.name in _STUBS:
            continue
        operands = [t for t in op.operand_types if isinstance(t, mlir_reader.TensorType)]
        if any(t.quantized for t in types + operands):  # dynamic linears: quantized weights
            kind = "int8"
        elif any(t.element == "f32" for t in types):
            kind = "float"
        else:
            continue
        summary["ops_quantized" if kind == "int8" else "ops_float"] += 1
        counts = summary["op_types"].setdefault(op.name, {"int8": 0, "float": 0})
        counts[kind] += 1
    return summary
