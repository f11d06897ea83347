"""PyTorch's quantization vocabulary, compiled: one call from an nn.Module
to a `qnt.CompiledModel`.

    model8 = qnt.quantize_dynamic(model, (tokens,))                 # linears
    model8 = qnt.quantize_static(model, (x,), calibration_loader)   # PTQ
    model8 = qnt.convert_qat(qat_model, (x,))                       # after prepare_qat
    y = model8(x)                 # torch in, torch out (numpy in, numpy out)
    model8.save("out/"); model8 = qnt.load("out/")

Each call runs the tools a user would (docs/python-api.md lists the
commands): `qnt.export` -> quant-opt (fuse, prepare, ...) -> quant-run
--calibrate -> quant-opt (fold, convert) -> quant-compile, in a working
directory, and returns the compiled library loaded through ctypes. No
second implementation: the IR, the passes and the numbers are the ones of
the command line. A failing step raises `QuantizeError` naming the step
and carrying the tool's messages.
"""

import json
import shutil
import tempfile
import time
import weakref
from pathlib import Path

from ._files import atomic_output
from .calibration import calibrate
from .compiled import MANIFEST, CompiledModel
from .export import ExportError, export
from .tools import ToolError, run

QCONFIGS = ("x86", "fbgemm", "onednn", "qnnpack", "xnnpack")
OBSERVERS = ("minmax", "moving_average_minmax", "histogram", "percentile", "entropy")
NUMERICS = ("qnt", "onnxruntime")  # the module's qnt.numerics (docs/numerics.md)


class QuantizeError(RuntimeError):
    """A step of the quantization failed (the message names it)."""


class _Steps:
    """The working directory (removed on leaving the ``with``), the
    commands run (the manifest's pipeline), the time of each step and an
    optional log callable."""

    def __init__(self, build_dir, log):
        self.dir = Path(tempfile.mkdtemp(prefix="qnt-quantize-"))
        self.build_dir, self.log = build_dir, log
        self.commands, self.seconds = [], {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return self.dir / name

    def _timed(self, step, fn):
        if self.log:
            self.log(f"{step} ...")
        start = time.perf_counter()
        try:
            result = fn()
        except ToolError as e:
            text = str(e)
            raise QuantizeError(text if text.startswith(step) else f"{step} failed: {text}") \
                from None
        except (ValueError, RuntimeError, ExportError) as e:
            raise QuantizeError(f"{step} failed: {e}") from None
        self.seconds[step] = time.perf_counter() - start
        return result

    def tool(self, step, name, *args):
        if name == "quant-opt":  # keep the locations: reports name layers by module path
            args = (*args, "--mlir-print-debuginfo")
        self.commands.append(" ".join([name, *map(str, args)]))
        return self._timed(step, lambda: run(step, name, *args, build=self.build_dir))

    def call(self, step, fn, command=None):
        if command:
            self.commands.append(command)
        return self._timed(step, fn)

    def finish(self, int8, float_mlir, out_dir, extra, num_threads):
        """quant-compile into ``out_dir`` (a temporary directory, removed
        with the model, when None)."""
        owned = out_dir is None
        target = Path(tempfile.mkdtemp(prefix="qnt-model-")) if owned else Path(out_dir)
        if owned:
            target.rmdir()
        extra = dict(extra, seconds=self.seconds)
        model = self.call("compile", lambda: CompiledModel.build(
            int8, target, float_mlir=float_mlir, pipeline=self.commands + [
                f"quant-compile {int8.name} --name model -o libmodel.so"],
            extra=extra, build_dir=self.build_dir, num_threads=num_threads))
        model.manifest["seconds"] = dict(self.seconds)  # now with the compile step
        with atomic_output(Path(model.directory) / MANIFEST) as f:
            json.dump(model.manifest, f, indent=2)
            f.write("\n")
        if owned:
            weakref.finalize(model, shutil.rmtree, str(target), True)
        return model


def _option_list(name, values):
    values = [values] if isinstance(values, str) else list(values or ())
    for v in values:
        if not v or "," in v or " " in v:
            raise ValueError(f"{name}: {v!r} (names without commas or spaces)")
    return values


def match_inputs(arrays, names):
    """A dict of data keyed by the model's input ``names``: a single-input
    model takes the only array there is (besides ``labels``) whatever its
    name; else every name must be there (ValueError naming the missing)."""
    keys = [k for k in arrays if k != "labels"]
    if len(names) == 1 and names[0] not in arrays and len(keys) == 1:
        return {names[0]: arrays[keys[0]]}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"the data has arrays {keys}, the model's inputs are {list(names)}: "
                         f"no {missing}")
    return {n: arrays[n] for n in names}


def _export(steps, model, example_inputs, name="model.fp32.mlir"):
    path = steps.path(name)
    info = steps.call("export", lambda: export(model, example_inputs, path),
                      f"python -m qnt export -o {name}")
    return path, info


def quantize_static(model, example_inputs, calibration_data, qconfig="x86", *,
                    observer=None, per_channel=None, exclude=(), override=None,
                    limit=None, client=None, shards=None, numerics="qnt", out_dir=None,
                    num_threads=0, build_dir=None, log=None, progress=None):
    """Static post-training quantization (PyTorch's prepare / calibrate /
    convert) of ``model`` traced on ``example_inputs`` (a tensor or a tuple,
    one per forward() argument: their shapes, the batch included, are the
    compiled ones).

    calibration_data: a DataLoader (its batches' inputs: the first element
        of a (inputs, labels) batch), an iterable of tensors or tuples, an
        .npz data set, or a dict {input name: examples}; ``limit`` samples
        at most. Streamed: see `qnt.calibration.calibrate`.
    qconfig: a preset (x86, fbgemm, onednn, qnnpack, xnnpack: docs/numerics.md).
    observer: the activation observer instead of the preset's (minmax,
        moving_average_minmax, histogram, percentile, entropy).
    per_channel: None (the preset's), True (per-channel weights where the
        backend has them, --qnt-per-channel) or False (keep the preset's;
        presets that are per-channel stay so: an error).
    exclude: op or module-path names kept in float; override: {selector:
        qconfig} presets for some ops (quant-opt --qnt-prepare's options).
    client: a dask.distributed Client: calibration shards run on its
        workers (``shards`` of them, default one per worker).
    numerics: whose integer arithmetic the model computes: "qnt"
        (docs/numerics.md) or "onnxruntime" (ONNX Runtime's, for a model
        also deployed there: `qnt.onnx.export_onnx` of it then runs on ORT
        to the same integers; --qnt-set-numerics).
    out_dir: where the library, header and manifest go (default: a
        temporary directory removed with the model; `CompiledModel.save`
        copies it). log(text): a line per step; progress(done, total):
        calibration progress.
    """
    if qconfig not in QCONFIGS:
        raise ValueError(f"qconfig must be one of {QCONFIGS}, got {qconfig!r}")
    if observer is not None and observer not in OBSERVERS:
        raise ValueError(f"observer must be one of {OBSERVERS}, got {observer!r}")
    options = [f"qconfig={qconfig}"]
    if observer:
        options.append(f"activation-observer={observer}")
    if exclude:
        options.append("exclude=" + ",".join(_option_list("exclude", exclude)))
    for selector, preset in (override or {}).items():
        if preset not in QCONFIGS:
            raise ValueError(f"override {selector!r}: unknown qconfig {preset!r}")
        options.append(f"override={_option_list('override', [selector])[0]}={preset}")
    if numerics not in NUMERICS:
        raise ValueError(f"numerics must be one of {NUMERICS}, got {numerics!r}")
    if per_channel is False and qconfig in ("x86", "fbgemm", "onednn"):
        raise ValueError(f"the {qconfig} preset quantizes weights per channel; use qnnpack "
                         f"or xnnpack for per-tensor weights")
    with _Steps(build_dir, log) as steps:
        fp32, info = _export(steps, model, example_inputs)
        prepared, stats, int8 = (steps.path(n) for n in ("prepared.mlir", "stats.json",
                                                         "model.int8.mlir"))
        steps.tool("prepare", "quant-opt", fp32, "--qnt-fuse",
                   "--qnt-prepare=" + " ".join(options), "-o", prepared)
        names = [name for name, _ in info.inputs]
        batch = info.inputs[0][1][0] if info.inputs[0][1] else 1
        if isinstance(calibration_data, dict):
            calibration_data = match_inputs(calibration_data, names)
        calib = steps.call("calibrate", lambda: calibrate(
            prepared, calibration_data, stats, names=names, batch=batch, client=client,
            shards=shards, limit=limit, build_dir=build_dir, progress=progress),
            "quant-run prepared.mlir --calibrate calib.npz --stats-file stats.json")
        convert = [f"--qnt-fold-calibration=stats={stats}"]
        if per_channel:
            convert.append("--qnt-per-channel")
        if numerics != "qnt":
            convert.append(f"--qnt-set-numerics=numerics={numerics}")
        steps.tool("convert", "quant-opt", prepared, *convert, "--qnt-convert", "-o", int8)
        return steps.finish(int8, fp32, out_dir, {
            "mode": "static", "qconfig": qconfig, "observer": observer,
            "numerics": numerics, "calibration_samples": calib["samples"]}, num_threads)


def quantize_dynamic(model, example_inputs, qconfig_spec=None, dtype=None, *, qconfig="x86",
                     per_channel=False, all_linears=False, out_dir=None, num_threads=0,
                    build_dir=None, log=None):
    """Dynamic quantization (PyTorch's ``quantize_dynamic``): linear layers'
    weights int8 at compile time, their inputs quantized at run time.

    qconfig_spec: the module types to quantize, ``{nn.Linear}`` (and
        ``nn.LSTM``, whose gates are linears once exported) as PyTorch's
        default; other types are an error. dtype: ``torch.qint8`` only.
    qconfig: x86 (inputs on [0, 127], PyTorch's fbgemm/x86 reduce_range)
        or another preset ([0, 255]). per_channel: per-channel weights.
    all_linears: also the linears PyTorch leaves in float (attention's)."""
    import torch
    import torch.nn as nn
    spec = set(qconfig_spec) if qconfig_spec is not None else {nn.Linear, nn.LSTM}
    unsupported = [t for t in spec if t not in (nn.Linear, nn.LSTM)]
    if unsupported:
        raise ValueError("quantize_dynamic quantizes nn.Linear (and nn.LSTM's linears); "
                         f"not {', '.join(getattr(t, '__name__', str(t)) for t in unsupported)}")
    if dtype not in (None, torch.qint8):
        raise ValueError(f"dtype must be torch.qint8, got {dtype}")
    if qconfig not in QCONFIGS:
        raise ValueError(f"qconfig must be one of {QCONFIGS}, got {qconfig!r}")
    options = [f"qconfig={qconfig}"] + (["per-channel"] if per_channel else []) \
        + (["all-linears"] if all_linears else [])
    with _Steps(build_dir, log) as steps:
        fp32, _ = _export(steps, model, example_inputs)
        int8 = steps.path("model.int8.mlir")
        steps.tool("convert", "quant-opt", fp32,
                   "--qnt-dynamic-pipeline=" + " ".join(options), "-o", int8)
        return steps.finish(int8, fp32, out_dir, {"mode": "dynamic", "qconfig": qconfig},
                            num_threads)


def convert_qat(model, example_inputs, *, out_dir=None, num_threads=0, build_dir=None,
                log=None):
    """A model trained after ``torch.ao.quantization.prepare_qat`` (see
    `qnt.qat`): its learned scales and zero points, compiled (PyTorch's
    ``convert``). The per-layer report compares with the fake-quantized
    float model."""
    from .qat import export_qat
    with _Steps(build_dir, log) as steps:
        qat = steps.path("model.qat.mlir")
        steps.call("export", lambda: export_qat(model, example_inputs, qat),
                   "qnt.qat.export_qat -> model.qat.mlir")
        int8 = steps.path("model.int8.mlir")
        steps.tool("convert", "quant-opt", qat, "--qnt-fuse", "--qnt-fold-fake-quant",
                   "--qnt-convert", "-o", int8)
        return steps.finish(int8, qat, out_dir, {"mode": "qat"}, num_threads)
