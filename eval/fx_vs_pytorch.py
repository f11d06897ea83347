#!/usr/bin/python3
"""Static PTQ with qnt vs PyTorch 1.13's FX graph mode (prepare_fx / convert_fx).

For torchvision's efficientnet_b0, densenet121, mobilenet_v3_large and
googlenet, with --models vit_small a 4-layer ViT-S on 64x64 images, and
with --models bert_encoder a BERT-base-shaped nn.TransformerEncoder (12
layers, 768, GELU) on 128 token embeddings (eval/ptq_vs_pytorch.py's
SMALL_MODELS; PyTorch FX traces its layers as _TraceableEncoderLayer, the
same computation) (torchvision.models, not the quantizable variants: FX needs no
stubs; googlenet with aux_logits=False, init_weights=True; random weights,
batch norms from eval/ptq_vs_pytorch.py's realistic_batch_norms, eval
mode), per qconfig x86 and onednn, with the same calibration images (one
per forward, batch 1) and the same evaluation images on both sides:

* PyTorch: prepare_fx(model, get_default_qconfig_mapping(QCONFIG)),
  calibration, convert_fx, run on the onednn engine (Debian's torch 1.13
  has no fbgemm/x86 engine; the engine picks kernels, the qconfig mapping
  the observers).
* ours, FX-matching: quant-opt --qnt-fuse
  --qnt-prepare="qconfig=QCONFIG float-functions=silu,gelu
  float-in-pytorch=true" (nn.MultiheadAttention's projections float, as FX
  leaves that module; no observer
  on SiLU/GELU results, the inputs of their consumers are observed: where
  PyTorch 1.13 FX, which runs them in float, quantizes again;
  --qnt-convert then computes dequantize, SiLU, quantize as one table, the
  same function of the 8-bit input), quant-run --calibrate,
  --qnt-fold-calibration --qnt-convert, quant-run.
* ours, default: --qnt-ptq-pipeline="qconfig=QCONFIG" (every op integer);
  the same IR as the matching one for models without SiLU/GELU, then not
  run twice.
* eager cat rule (models with concatenations): ours FX-matching with
  --qnt-prepare's cat-observer=own (a concatenation's result observed
  alone, each input requantized to it, as PyTorch's eager FloatFunctional
  .cat) instead of the default shared observer (PyTorch FX makes a cat's
  input and output observers one instance), to show what that rule is
  worth (docs/accuracy.md, "PyTorch FX").

Metrics over all logits of the evaluation images: SQNR of INT8 vs FP32
(10 log10(sum ref^2 / sum (ref - x)^2)) and top-1 agreement with FP32
(bert_encoder: of the argmax over the features of each token).
Target: ours FX-matching at most 0.5 dB below PyTorch FX (PASS/FAIL).
Also lists the observers each side used.

    QNT_BUILD_DIR=/work/build-snap /usr/bin/python3 eval/fx_vs_pytorch.py    # ~9 min on 2 shared cores
    /usr/bin/python3 eval/fx_vs_pytorch.py --models densenet121 --qconfigs x86 --layers

Options: --models, --qconfigs, --calib-samples (16), --eval-samples (32),
--layers (also per-layer SQNR, ours via qnt.compare and PyTorch via forward
hooks, for the layers both name; DenseNet-121: +2 min per qconfig),
--no-eager-cat, --out (eval/results-fx.md), --json, --work-dir,
--build-dir ($QNT_BUILD_DIR or build), --threads (1).
Exit status: 0 every target met, 1 a target missed, 2 a step failed (its
cells read "error", the messages are listed).
"""

import argparse
import copy
import json
import os
import re
import shutil
import sys
import time
import traceback
import warnings
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.observer import ObserverBase
from torch.ao.quantization.quantize_fx import convert_fx, fuse_fx, prepare_fx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ptq_vs_pytorch as pvp  # noqa: E402  (tools, models, metrics, tables)
from qnt.export import proxy_unpacking  # noqa: E402

MODELS = ["efficientnet_b0", "densenet121", "mobilenet_v3_large", "googlenet"]
QCONFIGS = ["x86", "onednn"]
ENGINE = "onednn"
FLOAT_FUNCTIONS = "silu,gelu"      # what PyTorch 1.13 FX leaves in float
# ... and nn.MultiheadAttention, a leaf module FX does not quantize (its
# projections are marked qnt.float_in_pytorch).
FX_MATCHING = f"float-functions={FLOAT_FUNCTIONS} float-in-pytorch=true"
MAX_LOSS_DB = 0.5                  # ours FX-matching vs PyTorch FX


# ---------------------------------------------------------------------------
# PyTorch FX
# ---------------------------------------------------------------------------

def describe_observer(obs):
    """"HistogramObserver u8 [0, 127] per_tensor_affine" and the like."""
    dtype = {torch.quint8: "u8", torch.qint8: "s8", torch.qint32: "s32"}.get(obs.dtype, str(obs.dtype))
    qscheme = str(getattr(obs, "qscheme", "")).replace("torch.", "")
    if hasattr(obs, "quant_min") and obs.quant_min is not None:
        rng = f" [{obs.quant_min}, {obs.quant_max}]"
    else:
        rng = ""
    return f"{type(obs).__name__} {dtype}{rng} {qscheme}".strip()


class _TraceableEncoderLayer(torch.nn.Module):
    """nn.TransformerEncoderLayer's computation (its slow path, eval mode:
    no dropout) on the same submodules, without the fast-path checks on the
    input that symbolic tracing cannot take (`src.dim() == 3 and ...`)."""

    def __init__(self, layer):
        super().__init__()
        self.self_attn, self.linear1, self.linear2 = layer.self_attn, layer.linear1, layer.linear2
        self.norm1, self.norm2, self.activation = layer.norm1, layer.norm2, layer.activation
        self.norm_first = layer.norm_first

    def _sa(self, x):
        return self.self_attn(x, x, x, need_weights=False)[0]

    def _ff(self, x):
        return self.linear2(self.activation(self.linear1(x)))

    def forward(self, x):
        if self.norm_first:
            x = x + self._sa(self.norm1(x))
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x))
        return self.norm2(x + self._ff(x))


def fx_traceable(model):
    """model, or for an nn.TransformerEncoder (which prepare_fx cannot trace)
    the same computation as an nn.Sequential of _TraceableEncoderLayer."""
    if not isinstance(model, torch.nn.TransformerEncoder):
        return model
    layers = [_TraceableEncoderLayer(layer) for layer in model.layers]
    return torch.nn.Sequential(*layers, *([model.norm] if model.norm is not None else []))


def pytorch_fx_int8(model, qconfig, calib):
    """prepare_fx with get_default_qconfig_mapping(qconfig), one forward per
    calibration sample, convert_fx. Returns (quantized GraphModule,
    Counter of the distinct observer instances by description (the weight
    observers, which convert_fx makes, from the global qconfig),
    number of quantize_per_tensor nodes)."""
    torch.backends.quantized.engine = ENGINE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # reduce_range deprecation, tracing
        mapping = get_default_qconfig_mapping(qconfig)
        with proxy_unpacking():  # torch 1.13 on Python 3.11
            prepared = prepare_fx(fx_traceable(copy.deepcopy(model).eval()), mapping,
                                  (calib[:1],))
        observers = {id(m): describe_observer(m) for m in prepared.modules()
                     if isinstance(m, ObserverBase)}
        weights = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in prepared.modules())
        observers["weight"] = f"{describe_observer(mapping.global_qconfig.weight())} (weights)"
        with torch.no_grad():
            for x in calib:
                prepared(x[None])
        quantized = convert_fx(prepared)
    quantizes = sum(1 for n in quantized.graph.nodes if n.target is torch.quantize_per_tensor)
    census = Counter(observers.values())
    census[observers["weight"]] = weights
    return quantized, census, quantizes


def pytorch_layer_outputs(module, images, names):
    """{module path: outputs [S, ...]} of the named modules (dequantized),
    one forward per image."""
    outs, hooks = {}, []
    for name, m in module.named_modules():
        if name in names:
            def hook(_m, _inputs, out, name=name):
                if isinstance(out, torch.Tensor):
                    out = out.dequantize() if out.is_quantized else out
                    outs.setdefault(name, []).append(out.detach().numpy().copy())
            hooks.append(m.register_forward_hook(hook))
    torch.backends.quantized.engine = ENGINE
    try:
        with torch.no_grad():
            for x in images:
                module(x[None])
    finally:
        for h in hooks:
            h.remove()
    return {k: np.concatenate(v) for k, v in outs.items()}


# ---------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------

_OBSERVER = re.compile(r'kind = #qnt\.observer<([^>]*)>, qspec = #qnt\.qspec<dtype = (\w+), '
                       r'quant_min = (-?\d+), quant_max = (-?\d+), scheme = (\w+)')


def observer_census(prepared_text):
    """Counter of the qnt.observe ops by kind and qspec."""
    return Counter(f"{kind} {dtype} [{lo}, {hi}] {scheme}"
                   for kind, dtype, lo, hi, scheme in _OBSERVER.findall(prepared_text))


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def ours_variant(tools, work, prep, calib_npz, eval_npz, tag):
    stats = pvp.ours_calibrate(tools, work, prep, calib_npz, tag)
    int8 = pvp.ours_convert(tools, work, prep, stats, tag)
    out = pvp.ours_run(tools, int8, eval_npz, work / f"out_{tag}.npz")
    return stats, int8, out


def evaluate_model(tools, work, name, qconfigs, args, errors):
    pvp.log(f"[{name}]")
    t0 = time.monotonic()
    work = work / name
    work.mkdir()
    model, calib, images = pvp.torchvision_model(name, args.calib_samples, args.eval_samples,
                                                 quantizable=False)
    mlir = work / "model.mlir"
    info = pvp.qnt.export(model, torch.zeros(1, *images.shape[1:]), mlir)
    arg = info.inputs[0][0]
    calib_npz, eval_npz = work / "calib.npz", work / "eval.npz"
    pvp.qdata.save(calib_npz, {arg: calib}, expect=info)
    pvp.qdata.save(eval_npz, {arg: images}, expect=info)
    fp32 = pvp.pytorch_outputs(model, images, batch=64)
    width = pvp.SEQUENCE_MODELS.get(name)

    def agree(a, b):
        return pvp.agree(a, b, width)

    res = OrderedDict()
    for qc in qconfigs:
        r = {"sqnr_pytorch": None, "top1_pytorch": None, "sqnr_ours": None, "top1_ours": None,
             "sqnr_ours_pytorch": None, "sqnr_default": None, "top1_default": None,
             "default_same_ir": None, "sqnr_own": None, "top1_own": None,
             "census_ours": None, "census_default": None, "layers": None}
        res[qc] = r
        t = time.monotonic()
        q, observers, quantizes = pytorch_fx_int8(model, qc, calib)
        pt = pvp.pytorch_outputs(q, images, engine=ENGINE)
        r.update(sqnr_pytorch=pvp.sqnr(fp32, pt), top1_pytorch=agree(pt, fp32),
                 observers_pytorch=dict(observers), quantize_pytorch=quantizes,
                 seconds_pytorch=time.monotonic() - t)
        t = time.monotonic()
        try:
            prep = pvp.ours_prepare(tools, work, mlir, f"{qc}_fx",
                                    ["--qnt-fuse",
                                     f"--qnt-prepare=qconfig={qc} {FX_MATCHING}"])
            prep_text = prep.read_text()
            r["observers_ours"] = dict(observer_census(prep_text))
            stats, int8, ours = ours_variant(tools, work, prep, calib_npz, eval_npz, f"{qc}_fx")
            r.update(sqnr_ours=pvp.sqnr(fp32, ours), top1_ours=agree(ours, fp32),
                     sqnr_ours_pytorch=pvp.sqnr(pt, ours), census_ours=pvp.op_census(int8))
        except pvp.ToolError as e:
            errors.append(f"{name} {qc} (ours, FX-matching): {e}")
            prep = None
        try:
            prep_default = pvp.ours_prepare(tools, work, mlir, f"{qc}_default",
                                            [f"--qnt-ptq-pipeline=qconfig={qc}"])
            same = prep is not None and prep_default.read_text() == prep_text
            r["default_same_ir"] = same
            if same:
                r.update(sqnr_default=r["sqnr_ours"], top1_default=r["top1_ours"],
                         census_default=r["census_ours"])
            else:
                _s, int8_d, default = ours_variant(tools, work, prep_default, calib_npz, eval_npz,
                                                   f"{qc}_default")
                r.update(sqnr_default=pvp.sqnr(fp32, default), top1_default=agree(default, fp32),
                         census_default=pvp.op_census(int8_d))
        except pvp.ToolError as e:
            errors.append(f"{name} {qc} (ours, default): {e}")
        if prep is not None and not args.no_eager_cat and "tosa.concat" in prep_text:
            try:
                prep_own = pvp.ours_prepare(
                    tools, work, mlir, f"{qc}_own",
                    ["--qnt-fuse", f"--qnt-prepare=qconfig={qc} {FX_MATCHING}"
                     " cat-observer=own"])
                _s, int8_o, out_o = ours_variant(tools, work, prep_own, calib_npz, eval_npz,
                                                 f"{qc}_own")
                r.update(sqnr_own=pvp.sqnr(fp32, out_o), top1_own=agree(out_o, fp32),
                         concats=prep_text.count("tosa.concat"),
                         tables_own=int8_o.read_text().count("qnt.table"))
            except pvp.ToolError as e:
                errors.append(f"{name} {qc} (cat-observer=own): {e}")
        if prep is not None and args.layers:
            try:
                r["layers"] = layer_sqnrs(tools, work, model, q, mlir, prep, stats, eval_npz,
                                          images, qc)
            except Exception as e:  # a diagnostic: report and go on
                errors.append(f"{name} {qc} (layers): {type(e).__name__}: {e}")
        r["seconds_ours"] = time.monotonic() - t
    pvp.log(f"[{name}] {time.monotonic() - t0:.1f} s")
    return res


def layer_sqnrs(tools, work, model, quantized, mlir, prep, stats, eval_npz, images, qc):
    """{layer: (SQNR ours, SQNR PyTorch)} for the layers both sides name
    (module paths; conv + batch norm + relu are one layer on both sides)."""
    from qnt import compare
    int8 = pvp.ours_convert(tools, work, prep, stats, f"{qc}_fx_loc", debuginfo=True)
    ours = {e.name: e.sqnr_db for e in compare.compare_layers(mlir, int8, eval_npz,
                                                             build_dir=tools.bin.parent)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = fuse_fx(copy.deepcopy(model).eval())
    ref = pytorch_layer_outputs(fused, images, set(ours))
    act = pytorch_layer_outputs(quantized, images, set(ref))
    return OrderedDict((k, (ours[k], pvp.sqnr(ref[k], act[k])))
                       for k in ours if k in act and ref[k].shape == act[k].shape)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def float_ops(census):
    return "error" if census is None else pvp.census_text(census)[1]


def tables(results):
    main, default, diag = [], [], []
    verdicts = []
    for name, per_qc in results.items():
        for qc, r in per_qc.items():
            d = None if r["sqnr_ours"] is None else r["sqnr_ours"] - r["sqnr_pytorch"]
            ok = d is not None and d >= -MAX_LOSS_DB - 1e-9
            r["pass"] = ok
            verdicts.append(ok)
            verdict = "FAIL (error)" if d is None else ("PASS" if ok else "FAIL")
            main.append([name, qc, pvp.fmt(r["sqnr_pytorch"]), pvp.fmt(r["sqnr_ours"]),
                         "error" if d is None else f"{d:+.2f}",
                         pvp.fmt(r["top1_pytorch"], 0, " %"), pvp.fmt(r["top1_ours"], 0, " %"),
                         pvp.fmt(r["sqnr_ours_pytorch"]), verdict])
            dd = None if r["sqnr_default"] is None else r["sqnr_default"] - r["sqnr_pytorch"]
            default.append([name, qc, pvp.fmt(r["sqnr_default"]),
                            "error" if dd is None else f"{dd:+.2f}",
                            pvp.fmt(r["top1_default"], 0, " %"),
                            "same IR" if r["default_same_ir"] else float_ops(r["census_default"]),
                            float_ops(r["census_ours"])])
            if r.get("sqnr_own") is not None:
                do = r["sqnr_own"] - r["sqnr_pytorch"]
                diag.append([name, qc, str(r["concats"]), str(r["tables_own"]),
                             pvp.fmt(r["sqnr_ours"]), pvp.fmt(r["sqnr_own"]),
                             pvp.fmt(r["sqnr_pytorch"]), f"{do:+.2f}",
                             pvp.fmt(r["top1_own"], 0, " %")])
    t_main = pvp.md_table(["model", "qconfig", "SQNR PyTorch FX (dB)", "SQNR ours (dB)",
                           "Δ ours − PyTorch (dB)", "top-1 PyTorch = FP32", "top-1 ours = FP32",
                           "SQNR ours vs PyTorch (dB)", f"target (Δ ≥ −{MAX_LOSS_DB} dB)"], main)
    t_default = pvp.md_table(["model", "qconfig", "SQNR ours default (dB)", "Δ vs PyTorch FX (dB)",
                              "top-1 = FP32", "float ops, default", "float ops, FX-matching"],
                             default)
    t_diag = pvp.md_table(["model", "qconfig", "concats", "qnt.table ops, own", "SQNR ours (dB)",
                           "SQNR ours, cat-observer=own (dB)", "SQNR PyTorch FX (dB)",
                           "Δ own − PyTorch (dB)", "top-1 own = FP32"], diag) if diag else ""
    return t_main, t_default, t_diag, all(verdicts) and bool(verdicts)


def observer_table(results):
    rows = []
    for qc in QCONFIGS:
        pt, ours = Counter(), Counter()
        for per_qc in results.values():
            if qc in per_qc:
                pt.update(per_qc[qc].get("observers_pytorch", {}))
                ours.update(per_qc[qc].get("observers_ours", {}))
        if pt or ours:
            rows.append([qc, "<br>".join(f"{k} ×{v}" for k, v in sorted(pt.items())),
                         "<br>".join(f"{k} ×{v}" for k, v in sorted(ours.items()))])
    return pvp.md_table(["qconfig", "PyTorch FX: observer instances (all models)",
                         "ours: qnt.observe ops (all models)"], rows)


def layer_tables(results):
    out = []
    for name, per_qc in results.items():
        for qc, r in per_qc.items():
            if not r.get("layers"):
                continue
            rows = [[k, pvp.fmt(o, 2), pvp.fmt(p, 2), f"{o - p:+.2f}"]
                    for k, (o, p) in r["layers"].items()]
            out += [f"### {name}, {qc}", "",
                    pvp.md_table(["layer", "SQNR ours (dB)", "SQNR PyTorch FX (dB)", "Δ"], rows), ""]
    return out


def data_description(models, args):
    n = f"{args.calib_samples} calibration and {args.eval_samples} evaluation"
    parts = []
    if any(m not in pvp.SEQUENCE_MODELS for m in models):
        parts.append("torchvision.models with random weights and realistic batch norms, "
                     f"{n} images 3x64x64 (structured random)")
    if any(m in pvp.SEQUENCE_MODELS for m in models):
        parts.append("bert_encoder: random weights normal(0, 0.02), "
                     f"{n} sequences of 128 token embeddings (pvp.token_embeddings)")
    return "; ".join(parts) + "; one per forward, the same on both sides."


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all four)")
    ap.add_argument("--qconfigs", default=",".join(QCONFIGS), help="comma-separated: x86,onednn")
    ap.add_argument("--calib-samples", type=int, default=16)
    ap.add_argument("--eval-samples", type=int, default=32)
    ap.add_argument("--layers", action="store_true", help="per-layer SQNR, ours and PyTorch (slow)")
    ap.add_argument("--no-eager-cat", action="store_true",
                    help="skip the run with cat-observer=own")
    ap.add_argument("--out", default=str(pvp.REPO / "eval" / "results-fx.md"))
    ap.add_argument("--json", help="also write the numbers as JSON")
    ap.add_argument("--work-dir", help="keep intermediate files here")
    ap.add_argument("--build-dir", default=os.environ.get("QNT_BUILD_DIR", str(pvp.REPO / "build")))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    models = args.models.split(",")
    qconfigs = args.qconfigs.split(",")
    for m in models:
        if m not in MODELS + list(pvp.SMALL_MODELS):
            ap.error(f"unknown model {m!r} (one of {', '.join(MODELS + list(pvp.SMALL_MODELS))})")
    for qc in qconfigs:
        if qc not in QCONFIGS:
            ap.error(f"unknown qconfig {qc!r} (one of {', '.join(QCONFIGS)})")
    if ENGINE not in torch.backends.quantized.supported_engines:
        ap.error(f"this torch has no {ENGINE} quantized engine")

    t_start = time.monotonic()
    torch.set_num_threads(args.threads)
    tools = pvp.Tools(args.build_dir, float(os.environ.get("QNT_BINARY_WAIT", "120")), args.threads)
    work = pvp.make_work_dir(args.work_dir, "qnt_fx_")
    errors, results = [], OrderedDict()
    try:
        for name in models:
            try:
                results[name] = evaluate_model(tools, work, name, qconfigs, args, errors)
            except Exception as e:  # keep the other models going
                errors.append(f"{name}: {type(e).__name__}: {e}")
                pvp.log(traceback.format_exc())
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    t_main, t_default, t_diag, all_pass = tables(results)
    runtime = time.monotonic() - t_start

    out = [
        "# qnt static PTQ vs PyTorch 1.13 FX graph mode",
        "",
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, PyTorch engine "
        f"`{ENGINE}`; `eval/fx_vs_pytorch.py` (method: docs/accuracy.md, \"PyTorch FX\"). "
        f"{data_description(models, args)} SQNR over all outputs vs FP32 PyTorch; top-1: "
        "agreement of the argmax with FP32 (sequence models: over the features of each "
        "token).",
        "",
        f"## FX-matching: PyTorch `prepare_fx`/`convert_fx` vs ours `--qnt-prepare=\"qconfig=Q "
        f"{FX_MATCHING}\"`",
        "",
        t_main,
        "",
        f"Target (ours at most {MAX_LOSS_DB} dB below PyTorch FX): "
        f"**{'PASS' if all_pass and not errors else 'FAIL'}**",
        "",
        "## Ours default (every op integer, `--qnt-ptq-pipeline=\"qconfig=Q\"`)",
        "",
        "\"same IR\": the model has no SiLU/GELU, the default prepared IR is the FX-matching one. "
        "Float ops: ops left in float between quant.dcast and quant.qcast in our INT8 IR "
        "(FX-matching keeps no SiLU in float either: `dcast -> silu -> qcast` between PyTorch's "
        "parameters becomes a `qnt.table`, the same function of the 8-bit input as PyTorch's "
        "dequantize, float SiLU, quantize).",
        "",
        t_default,
        "",
    ]
    if t_diag:
        out += [
            "## Concatenations: FX's shared observer against the eager rule",
            "",
            "Ours FX-matching (a concatenation's inputs and result share one observer, the "
            "default) against `--qnt-prepare=\"cat-observer=own\"` (the result observed alone "
            "and every input requantized to it by a `qnt.table`, PyTorch's eager "
            "`FloatFunctional.cat`).",
            "",
            t_diag,
            "",
        ]
    out += [
        "## Observers",
        "",
        observer_table(results),
        "",
    ]
    if args.layers:
        out += ["## Per-layer SQNR vs FP32 (evaluation images)", ""] + layer_tables(results)
    out.append(f"Runtime: {runtime:.0f} s (quant-opt {tools.seconds['quant-opt']:.0f} s, "
               f"quant-run {tools.seconds['quant-run']:.0f} s), {args.threads} thread(s).")
    pvp.write_report(out, errors, args.out)
    if args.json:
        for per_qc in results.values():
            for r in per_qc.values():
                if r.get("layers"):
                    r["layers"] = {k: list(v) for k, v in r["layers"].items()}
        Path(args.json).write_text(json.dumps({"models": results, "errors": errors,
                                               "runtime_s": runtime,
                                               "target_max_loss_db": MAX_LOSS_DB}, indent=1))
    if errors:
        return 2
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
