"""Command line: ``python -m qnt quantize|analyze|export|import-onnx|export-onnx|compare ...``.

  python -m qnt quantize --model torchvision:resnet18 --input-shape 1,3,224,224 \\
      --calib calib.npz [--mode static|dynamic] [--qconfig x86] [--analyze] -o out/
  python -m qnt analyze --model mypkg.models:cnn --input-shape 1,3,32,32 \\
      --calib calib.npz [--eval eval.npz] [--qconfig qnnpack] -o analysis/

  python -m qnt export --model torchvision:resnet18 --input-shape 1,3,224,224 \\
      [--weights FILE] [--seed N] -o model.mlir
  python -m qnt export --model mypkg.lm:tiny --input-shape 1,128:int64 -o lm.mlir
  python -m qnt import-onnx model.onnx [--input-shape NAME=1,3,224,224] -o model.mlir
  python -m qnt export-onnx int8.mlir -o model.int8.onnx     (QDQ; FP32 modules too)
  python -m qnt fashion-mnist --split test --limit 500 [--name input] -o eval.npz
  python -m qnt compare model.mlir int8.mlir data.npz     (per-layer SQNR, worst first)

--model: ``torchvision:NAME`` (torchvision.models.NAME()),
``torchvision.quantization:NAME`` (torchvision.models.quantization.NAME(quantize=False)),
or ``package.module:factory`` (any callable returning an nn.Module).
Errors print one line and exit with status 1; no output file is written then.
"""

import argparse
import importlib
import sys
import time


class CommandError(Exception):
    pass


def load_model(spec):
    """The nn.Module named by a --model spec (random weights: fixed by the seed)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommandError(f"--model must look like 'torchvision:resnet18' or "
                           f"'package.module:factory', got {spec!r}")
    kwargs = {}
    if module_name == "torchvision":
        module_name = "torchvision.models"
    elif module_name == "torchvision.quantization":
        module_name, kwargs = "torchvision.models.quantization", {"quantize": False}
    try:
        factory = importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
    except (ImportError, AttributeError) as e:
        raise CommandError(f"cannot load --model {spec!r}: {e}") from None
    import torch.nn as nn
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise CommandError(f"--model {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model


def load_weights(model, path):
    import torch
    try:
        state = torch.load(path, map_location="cpu")
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        model.load_state_dict(state)
    except Exception as e:  # unreadable file, wrong keys or shapes
        raise CommandError(f"cannot load --weights {path}: {e}") from None


_DTYPES = ("float32", "int64", "int32", "bool")


def parse_shape(text):
    """``1,3,224,224`` or ``1,128:int64``: (shape, dtype name)."""
    dims, _, dtype = text.partition(":")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1 or (dtype and dtype not in _DTYPES):
        raise argparse.ArgumentTypeError(
            f"expected positive integers like 1,3,224,224, optionally with a dtype "
            f"({', '.join(_DTYPES)}) like 1,128:int64, got {text!r}")
    return shape, dtype or "float32"


def example_inputs(args):
    """--input-shape's tensors: float inputs random, integer ones zeros (a
    valid token id), bools False."""
    import torch
    return tuple(torch.randn(shape) if dtype == "float32" else
                 torch.zeros(shape, dtype=getattr(torch, dtype))
                 for shape, dtype in args.input_shape)


def cmd_quantize(args):
    import torch
    from . import cli_quantize
    torch.manual_seed(args.seed)
    args.override = overrides(args)
    return cli_quantize.run(args, load_model, load_weights, example_inputs)


def cmd_analyze(args):
    import torch
    from .accuracy.analyze import main
    torch.manual_seed(args.seed)
    args.override = overrides(args)
    main(args, load_model, load_weights, example_inputs)


def cmd_export(args):
    import torch
    from .export import export
    torch.manual_seed(args.seed)
    model = load_model(args.model)
    if args.weights:
        load_weights(model, args.weights)
    inputs = example_inputs(args)
    start = time.perf_counter()
    info = export(model, inputs, args.output)
    signature = ", ".join(f"{n}: {'x'.join(map(str, s))}"
                          + ("" if dtype == "float32" else f" {dtype}")
                          for (n, s), (_, dtype) in zip(info.inputs, args.input_shape))
    results = ", ".join("x".join(map(str, s)) for s in info.outputs)
    print(f"wrote {args.output}: @main({signature}) -> {results} "
          f"in {time.perf_counter() - start:.1f}s", file=sys.stderr)


def parse_named_shape(text):
    """``1,3,224,224`` or ``NAME=1,3,224,224``: (name or None, shape)."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1 or (sep and not name):
        raise argparse.ArgumentTypeError(
            f"expected positive integers like 1,3,224,224, optionally after the input's "
            f"name (input_ids=1,128), got {text!r}")
    return name or None, shape


def cmd_import_onnx(args):
    from .onnx import import_onnx
    shapes = {}
    for name, shape in args.input_shape or []:
        if name in shapes:
            raise CommandError(f"--input-shape given twice for "
                               f"{repr(name) if name else 'the input'}")
        shapes[name] = shape
    start = time.perf_counter()
    info = import_onnx(args.model, args.output, shapes, numerics=args.numerics)
    signature = ", ".join(f"{n}: {'x'.join(map(str, s))}" for n, s in info.inputs)
    results = ", ".join("x".join(map(str, s)) for s in info.outputs)
    print(f"wrote {args.output}: @main({signature}) -> {results} "
          f"in {time.perf_counter() - start:.1f}s", file=sys.stderr)


def cmd_export_onnx(args):
    from .onnx import export_onnx
    start = time.perf_counter()
    model = export_onnx(args.module, args.output, build_dir=args.build_dir,
                        exact=args.form == "exact")
    ops = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    summary = ", ".join(f"{n} {op}" for op, n in sorted(ops.items(), key=lambda kv: -kv[1]))
    print(f"wrote {args.output}: {len(model.graph.node)} nodes ({summary}) "
          f"in {time.perf_counter() - start:.1f}s", file=sys.stderr)


def cmd_fashion_mnist(args):
    from . import data, datasets
    images, labels = datasets.fashion_mnist(args.split, args.root, limit=args.limit)
    count = data.save(args.output, {args.name: images}, batch=args.batch, labels=labels)
    print(f"wrote {args.output}: '{args.name}' [{count}, {args.batch}, 1, 28, 28], "
          f"'labels' [{len(labels)}]", file=sys.stderr)


def cmd_compare(args):
    from .compare import compare_layers, format_report
    errors = compare_layers(args.float_model, args.quantized_model, args.data,
                            build_dir=args.build_dir)
    print(format_report(errors[:args.top] if args.top else errors))


def add_model_options(p):
    """The PyTorch model of `quantize` and `analyze`: --model, --input-shape,
    --weights, --seed, --build-dir."""
    p.add_argument("--model", required=True,
                   help="torchvision:NAME, torchvision.quantization:NAME or package.module:factory")
    p.add_argument("--input-shape", type=parse_shape, action="append", required=True,
                   help="shape of one forward() argument, batch included (as for export)")
    p.add_argument("--weights", help="state_dict saved with torch.save (default: random init)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the random init")
    p.add_argument("--build-dir", help="qnt build directory (default: $QNT_BUILD_DIR "
                   "or <repo>/build)")


def parse_override(text):
    """``SELECTOR=QCONFIG``: (selector, preset)."""
    selector, sep, preset = text.rpartition("=")
    if not sep or not selector or not preset:
        raise argparse.ArgumentTypeError(f"expected SELECTOR=QCONFIG like conv1=onednn, "
                                         f"got {text!r}")
    return selector, preset


def overrides(args):
    """--override's (selector, preset) pairs as quantize_static's override= (None
    without any; a selector given twice is an error)."""
    out = {}
    for selector, preset in args.override or ():
        if selector in out:
            raise CommandError(f"--override {selector}: given twice")
        out[selector] = preset
    return out or None


def add_quantization_options(p, scope=""):
    """Static quantization's choices (``scope``: when they apply, " (static)",
    for the help)."""
    when = f"; {scope.strip(' ()')}" if scope else ""
    p.add_argument("--qconfig", default="x86",
                   choices=("x86", "fbgemm", "onednn", "qnnpack", "xnnpack"))
    p.add_argument("--observer", choices=("minmax", "moving_average_minmax", "histogram",
                                          "percentile", "entropy"),
                   help=f"activation observer instead of the preset's{scope}")
    p.add_argument("--per-channel", action="store_true", help="per-channel weights")
    p.add_argument("--exclude", action="append",
                   help=f"op or module path kept in float (repeat for each{when})")
    p.add_argument("--override", type=parse_override, action="append",
                   metavar="SELECTOR=QCONFIG",
                   help=f"another preset for an op or module path, e.g. conv1=onednn "
                   f"(per-channel weights on qnnpack; repeat for each{when})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m qnt", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("export", help="export a PyTorch model as FP32 TOSA MLIR")
    p.add_argument("--model", required=True,
                   help="torchvision:NAME, torchvision.quantization:NAME or package.module:factory")
    p.add_argument("--input-shape", type=parse_shape, action="append", required=True,
                   help="shape of one forward() argument, e.g. 1,3,224,224, with :int64, "
                        ":int32 or :bool for token ids and masks (repeat for each)")
    p.add_argument("--weights", help="state_dict saved with torch.save (default: random init)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for the random init")
    p.add_argument("-o", "--output", required=True, help="the .mlir file to write")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser(
        "quantize", help="quantize and compile a PyTorch model in one command",
        description="Exports, prepares, calibrates, folds, converts and compiles a PyTorch "
        "model (qnt.quantize_static / quantize_dynamic), then prints a summary: ops "
        "quantized and kept float, weight size, FP32-vs-INT8 agreement on held-out "
        "samples of --calib, latency of both; with --analyze also the per-layer "
        "analysis (worst layers, causes, checked fixes; docs/analyze.md). -o gets "
        "libmodel.so, model.h, manifest.json, the modules and summary.txt (qnt.load(DIR) "
        "loads it), with --analyze analysis.md and analysis.png. With --accuracy-budget "
        "the model is the fastest configuration found within the budget (search.md, "
        "search.png). See docs/python-api.md.")
    add_model_options(p)
    p.add_argument("--calib", help="calibration data set (.npz, quant-run's format: "
                   "[samples, batch, ...] per input); the last --holdout samples are kept "
                   "for the FP32-vs-INT8 check")
    p.add_argument("--mode", choices=("static", "dynamic"), default="static",
                   help="static: calibrated activations (needs --calib); dynamic: linear "
                   "layers, activations quantized at run time")
    add_quantization_options(p, " (static)")
    p.add_argument("--numerics", default="qnt", choices=("qnt", "onnxruntime"),
                   help="whose integer arithmetic the model computes (static): qnt's "
                   "(docs/numerics.md) or ONNX Runtime's, for a model also exported to ORT")
    p.add_argument("--holdout", type=int, default=0,
                   help="held-out samples (default: a fifth of --calib, at most 16)")
    p.add_argument("--runs", type=int, default=50, help="runs per latency measurement")
    p.add_argument("--analyze", action="store_true",
                   help="also find which layers lose accuracy and check fixes (static; as "
                   "`python -m qnt analyze` on the model just built, the held-out samples "
                   "as eval set): -o also gets analysis.md and analysis.png, the summary "
                   "the metric, the worst layers, their causes and the fixes that improve it")
    p.add_argument("--worst", type=int,
                   help="with --analyze: layers to find causes and fixes for (default 3)")
    p.add_argument("--metric", choices=("sqnr", "top1"),
                   help="with --analyze: sqnr (output SQNR vs FP32, dB) or top1 (accuracy on "
                   "the data set's 'labels'); default top1 if --calib has labels, else sqnr")
    p.add_argument("--jobs", type=int,
                   help="with --analyze or --accuracy-budget: variants evaluated at once "
                   "(default: min(4, CPUs))")
    p.add_argument("--accuracy-budget", metavar="top1=DROP|sqnr=DB",
                   help="search for the fastest configuration (per layer INT8 or float, "
                   "per-tensor or per-channel weights, the observer; ranked by measured "
                   "latency) whose top-1 accuracy on the held-out samples (--holdout: a top-1 "
                   "budget needs many) is at most DROP "
                   "points below FP32's (needs 'labels' in --calib), or whose output SQNR is "
                   "at least DB; the flags above are where it starts. -o gets the model found, "
                   "search.md and search.png (latency vs metric of every candidate); "
                   "when no candidate meets the budget, the best one found, a warning, "
                   "and exit status 3; docs/accuracy.md")
    p.add_argument("--max-evaluations", type=int,
                   help="with --accuracy-budget: the most candidates evaluated (default 40)")
    p.add_argument("-o", "--output", required=True, help="the directory to write (new or empty)")
    p.set_defaults(run=cmd_quantize)

    p = commands.add_parser(
        "analyze", help="find which layers lose accuracy in INT8, why, and check fixes",
        description="Quantizes a PyTorch model as `quantize` does (static), then per layer: "
        "SQNR, the metric with only this layer and with all but this layer quantized, "
        "saturation and clipping; for the worst layers a cause and a fix, each checked by "
        "quantizing again. Prints markdown; -o gets analysis.md and analysis.png. "
        "See docs/analyze.md.")
    add_model_options(p)
    p.add_argument("--calib", required=True, help="calibration data set (.npz, quant-run's "
                   "format); without --eval its last --holdout samples are the eval set")
    p.add_argument("--eval", help="eval data set (.npz; 'labels' for --metric top1)")
    p.add_argument("--holdout", type=int, default=0,
                   help="held-out samples without --eval (default: a fifth, at most 16)")
    p.add_argument("--metric", choices=("sqnr", "top1"), default="sqnr",
                   help="sqnr: output SQNR vs FP32 PyTorch (dB); top1: accuracy on the labels")
    add_quantization_options(p)
    p.add_argument("--worst", type=int, default=3, help="layers to find causes and fixes for")
    p.add_argument("--jobs", type=int, help="variants evaluated at once (default: min(4, CPUs))")
    p.add_argument("-o", "--output", required=True, help="directory for analysis.md and .png")
    p.set_defaults(run=cmd_analyze)

    p = commands.add_parser(
        "import-onnx", help="import an ONNX model (FP32 or QDQ) as TOSA MLIR",
        description="Imports an ONNX model (opsets 13-18; FP32, or QDQ-quantized with "
        "QuantizeLinear/DequantizeLinear pairs, whose scales become qnt.fake_quant) as the "
        "FP32 TOSA IR that `export` writes. QDQ models then compile with quant-opt "
        "--qnt-fuse --qnt-fold-fake-quant --qnt-convert. See docs/onnx.md.")
    p.add_argument("model", help="the .onnx file (external data next to it is read)")
    p.add_argument("--input-shape", type=parse_named_shape, action="append",
                   help="shape of an input with dynamic dimensions: NAME=1,3,224,224 "
                        "(or just the dimensions for a single input); repeat for each")
    p.add_argument("--numerics", choices=["onnxruntime", "qnt"],
                   help="whose integer arithmetic a quantized model compiles to: ONNX "
                        "Runtime's (the default; its outputs then match ORT's) or qnt's "
                        "own (docs/numerics.md); a file from export-onnx says which in its "
                        "metadata")
    p.add_argument("-o", "--output", required=True, help="the .mlir file to write")
    p.set_defaults(run=cmd_import_onnx)

    p = commands.add_parser(
        "export-onnx", help="export a qnt module (quantized or FP32) as ONNX",
        description="Writes a qnt module as ONNX (opset 13): quantized values as "
        "QuantizeLinear/DequantizeLinear around each op (the QDQ form ONNX Runtime fuses "
        "into QLinearConv, QGemm, ...), with qnt's rounding where no fused operator "
        "follows, so ORT's outputs match quant-run's; FP32 modules as plain ops. "
        "See docs/onnx.md.")
    p.add_argument("module", help="the .mlir file (after --qnt-convert, or an FP32 module)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--form", choices=("exact", "qdq"), default="exact",
                   help="exact (default): qnt's rounding written out where ORT fuses no "
                   "operator, so ORT's outputs match quant-run's; qdq: QuantizeLinear(S, Z) "
                   "everywhere, the canonical form other QDQ tools write, which import-onnx "
                   "reads back to the same integers (ORT then rounds its own way: within a "
                   "step per op)")
    p.add_argument("--build-dir", help="qnt build directory, for quant-opt (default: "
                   "$QNT_BUILD_DIR or <repo>/build)")
    p.set_defaults(run=cmd_export_onnx)

    p = commands.add_parser("fashion-mnist", help="write a Fashion-MNIST data set (.npz)")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--limit", type=int, help="first N images (default: all)")
    p.add_argument("--batch", type=int, default=1, help="images per sample (the model's batch)")
    p.add_argument("--name", default="input", help="the model argument's name (qnt.name)")
    p.add_argument("--root", help="directory of the *-ubyte.gz files")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=cmd_fashion_mnist)

    p = commands.add_parser("compare", help="per-layer SQNR of a quantized model "
                            "against the float one, worst layers first")
    p.add_argument("float_model", help="the FP32 model (.mlir, as exported)")
    p.add_argument("quantized_model", help="the quantized model (after --qnt-convert)")
    p.add_argument("data", help=".npz with a leading sample axis (quant-run --samples)")
    p.add_argument("--top", type=int, default=0, help="show only the N worst layers")
    p.add_argument("--build-dir", help="qnt build directory (default: $QNT_BUILD_DIR "
                   "or <repo>/build)")
    p.set_defaults(run=cmd_compare)

    args = parser.parse_args(argv)
    from .compare import CompareError
    from .datasets import DatasetNotFoundError
    from .export import ExportError
    from .onnx import OnnxExportError, OnnxImportError
    from .api import QuantizeError
    from .tools import ToolError
    try:
        status = args.run(args)
    except (CommandError, CompareError, ExportError, OnnxImportError, OnnxExportError,
            ToolError, QuantizeError, DatasetNotFoundError,
            ValueError, OSError) as e:
        print(f"qnt: error: {e}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
