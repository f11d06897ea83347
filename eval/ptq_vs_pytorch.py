#!/usr/bin/python3
"""Static PTQ with qnt vs PyTorch 1.13's torch.ao.quantization.

Quantizes the same float models with the same calibration samples (one
sample per forward, batch 1, so every observer sees the same batches) with
qnt (export -> quant-opt -> quant-run) and with PyTorch's eager-mode static
PTQ (fuse, prepare, calibrate, convert), and compares the INT8 results:

1. The trained Fashion-MNIST CNN of examples/cnn: test accuracy (full 10k
   test set; --quick: the first 1000 images) of FP32, ours and PyTorch INT8
   per preset, calibrated on the example's 200 training images (calib.npz),
   with PASS/FAIL against the targets: ours loses at most 0.5 points against
   FP32 and at most 0.2 points against PyTorch INT8 with the same preset.
2. The frontend models (torchvision.models.quantization with quantize=False,
   a plain MLP, the Fashion-MNIST CNN), random weights with realistic batch
   norms: top-1 agreement and SQNR of ours and PyTorch INT8 vs FP32, per
   preset (x86, qnnpack), and per-tensor vs per-channel weights.
3. Which ops each model keeps in float in our INT8 IR.

Prints markdown tables and writes them to --out (default eval/results.md);
--json writes the numbers. Exit status: 0 all targets pass, 1 a target
fails, 2 a step failed (its cells read "error", the message is listed).

    /usr/bin/python3 eval/ptq_vs_pytorch.py              # full run, ~2 min on 2 cores
    /usr/bin/python3 eval/ptq_vs_pytorch.py --quick      # MLP + CNN, 1000 test images

Binaries: $QNT_BUILD_DIR/bin/{quant-opt,quant-run} (default <repo>/build).
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torch.ao import quantization as tq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
import qnt  # noqa: E402
from qnt import data as qdata  # noqa: E402
from qnt import datasets as qdatasets  # noqa: E402

EXAMPLE = REPO / "examples" / "cnn"

# Targets of the Fashion-MNIST comparison, in accuracy points (percent).
MAX_LOSS_VS_FP32 = 0.5
MAX_LOSS_VS_PYTORCH = 0.2

TORCHVISION_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large",
                      "shufflenet_v2_x1_0", "googlenet"]
ALL_MODELS = ["mlp", "fmnist_cnn"] + TORCHVISION_MODELS
QUICK_MODELS = ["mlp", "fmnist_cnn"]

# PyTorch engines: x86 (fbgemm) is preferred for the x86 preset; builds
# without FBGEMM (Debian's arm/x86 python3-torch 1.13 has qnnpack and onednn
# only) run the x86 qconfig on oneDNN, whose INT8 kernels are exact too.
X86_ENGINES = ("x86", "fbgemm", "onednn")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# qnt tools
# ---------------------------------------------------------------------------

class ToolError(RuntimeError):
    pass


class Tools:
    """Runs build/bin/quant-opt and quant-run; waits for (and retries after)
    a binary that is being relinked."""

    def __init__(self, build_dir, wait=120.0, threads=1):
        self.bin = Path(build_dir) / "bin"
        self.wait = wait
        self.threads = threads
        self.seconds = Counter()

    def path(self, name):
        path = self.bin / name
        deadline = time.monotonic() + self.wait
        while not (path.is_file() and os.access(path, os.X_OK)):
            if time.monotonic() > deadline:
                raise ToolError(f"{path} not found: build the project or set QNT_BUILD_DIR")
            time.sleep(2)
        return path

    def run(self, name, *args):
        cmd = None
        for attempt in range(4):
            path = self.path(name)
            cmd = [str(path), *map(str, args)]
            if name == "quant-run" and self.threads:
                cmd.append(f"--num-threads={self.threads}")
            try:
                mtime = path.stat().st_mtime
                t0 = time.monotonic()
                r = subprocess.run(cmd, capture_output=True, text=True)
                self.seconds[name] += time.monotonic() - t0
            except OSError:  # ETXTBSY / vanished between the check and exec
                time.sleep(2)
                continue
            if r.returncode == 0:
                return r.stdout
            try:
                relinked = path.stat().st_mtime != mtime
            except OSError:
                relinked = True
            if relinked or r.returncode in (126, 127) or r.returncode < 0 and attempt == 0:
                time.sleep(2)
                continue
            break
        else:
            raise ToolError(f"{' '.join(cmd)}: could not run the binary")
        raise ToolError(f"{' '.join(cmd)} failed (exit {r.returncode}):\n"
                        f"{r.stderr.strip()[-3000:]}")


def ours_prepare(tools, work, model_mlir, tag, passes):
    """quant-opt PASSES (--qnt-ptq-pipeline without stats, or --qnt-fuse
    --qnt-prepare=...): the IR to calibrate, work/prepared_<tag>.mlir."""
    prep = work / f"prepared_{tag}.mlir"
    tools.run("quant-opt", model_mlir, *passes, "--mlir-print-debuginfo", "-o", prep)
    return prep


def ours_calibrate(tools, work, prep, calib_npz, tag):
    """quant-run --calibrate: work/stats_<tag>.json."""
    stats = work / f"stats_{tag}.json"
    tools.run("quant-run", prep, "--calibrate", calib_npz, "--stats-file", stats, "--quiet")
    return stats


def ours_convert(tools, work, prep, stats, tag, per_channel=None, debuginfo=False):
    """--qnt-fold-calibration [--qnt-per-channel] --qnt-convert: work/int8_<tag>.mlir
    (debuginfo: with the locations, which qnt.compare needs)."""
    out = work / f"int8_{tag}.mlir"
    passes = [f"--qnt-fold-calibration=stats={stats}"]
    if per_channel:
        passes.append(f"--qnt-per-channel=backend={per_channel}")
    if debuginfo:
        passes.append("--mlir-print-debuginfo")
    tools.run("quant-opt", prep, *passes, "--qnt-convert", "-o", out)
    return out


def ours_int8(tools, work, model_mlir, calib_npz, variants):
    """Builds the INT8 IR of every variant; returns {variant: int8.mlir}.

    variants: names in VARIANTS; each is (preset, per-channel backend or None)."""
    prepared, results = {}, {}
    for variant in variants:
        preset, per_channel = VARIANTS[variant]
        if preset not in prepared:
            prep = ours_prepare(tools, work, model_mlir, preset,
                                [f"--qnt-ptq-pipeline=qconfig={preset}"])
            prepared[preset] = (prep, ours_calibrate(tools, work, prep, calib_npz, preset))
        prep, stats = prepared[preset]
        results[variant] = ours_convert(tools, work, prep, stats, variant, per_channel)
    return results


def ours_run(tools, mlir, eval_npz, out_npz):
    """Outputs of every sample, [S, ...] without the batch-1 axis."""
    tools.run("quant-run", mlir, "-i", eval_npz, "--samples", "-o", out_npz, "--quiet")
    out = qdata.load(out_npz)["output"]
    return out.reshape(out.shape[0], -1)


# Our variants: (preset for --qnt-ptq-pipeline, --qnt-per-channel backend).
# "qnnpack_pc" reuses qnnpack's statistics (u8 [0, 255] activations) with
# per-channel weights: the same activation quantization as "qnnpack", so
# the pair isolates per-tensor vs per-channel weights. PyTorch's
# counterpart is get_default_qconfig("onednn") (same activation observer,
# per-channel weights).
VARIANTS = OrderedDict([
    ("x86", ("x86", None)),
    ("qnnpack", ("qnnpack", None)),
    ("qnnpack_pc", ("qnnpack", "onednn")),
])
# PyTorch counterparts: variant -> (qconfig name, engine candidates).
PYTORCH = {
    "x86": ("x86", X86_ENGINES),
    "qnnpack": ("qnnpack", ("qnnpack",)),
    "qnnpack_pc": ("onednn", ("onednn",)),
}
VARIANT_LABEL = {
    "x86": "x86 (u8 [0,127], per-channel)",
    "qnnpack": "qnnpack (u8 [0,255], per-tensor)",
    "qnnpack_pc": "onednn (u8 [0,255], per-channel)",
}


def engine_for(variant):
    qconfig, engines = PYTORCH[variant]
    for e in engines:
        if e in torch.backends.quantized.supported_engines:
            return qconfig, e
    raise RuntimeError(f"none of the PyTorch quantized engines {engines} is available")


# ---------------------------------------------------------------------------
# Ops in our INT8 IR
# ---------------------------------------------------------------------------

_OP = re.compile(r'^\s*(?:%[^=]*=\s*)?"?([a-z_]+\.[a-z_0-9]+)"?')
_BOOKKEEPING = {"tosa.const", "arith.constant", "tosa.const_shape", "func.return", "func.func",
                "quant.scast"}
_LAYOUT = {"tosa.reshape", "tosa.transpose", "tosa.slice"}


def op_census(path):
    """{"quantized" | "float": {op name: count}, "qcast": n} for an IR file.

    An op is quantized when a !quant.uniform type appears on its line (its
    operand or result types). Constants, layout ops (reshape, transpose,
    slice) and the casts themselves are not listed."""
    ops = {"quantized": Counter(), "float": Counter()}
    qcasts = 0
    with open(path, errors="replace") as f:
        for line in f:
            m = _OP.match(line[:300])
            if not m or m.group(1) in _BOOKKEEPING or m.group(1) in _LAYOUT:
                continue
            name = m.group(1)
            if name == "quant.qcast":
                qcasts += 1
            elif name != "quant.dcast":
                ops["quantized" if "!quant.uniform" in line else "float"][name] += 1
    return {"quantized": dict(ops["quantized"]), "float": dict(ops["float"]), "qcast": qcasts}


def census_text(census):
    def fmt_ops(ops):
        return ", ".join(f"{n.split('.')[1]} {c}" for n, c in sorted(ops.items())) or "-"
    return fmt_ops(census["quantized"]), fmt_ops(census["float"]), census["qcast"]


# ---------------------------------------------------------------------------
# Models and data
# ---------------------------------------------------------------------------

class MLP(nn.Module):
    """A plain MLP on 28x28 images (random weights)."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.fc1, self.relu1 = nn.Linear(784, 128), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(128, 64), nn.ReLU()
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.quant(torch.flatten(x, 1))
        return self.dequant(self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x))))))

    def fuse_model(self):
        tq.fuse_modules(self, [["fc1", "relu1"], ["fc2", "relu2"]], inplace=True)


class FashionCNN(nn.Module):
    """examples/cnn/make_example.py's network (same state_dict keys), with stubs."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2, self.relu2 = nn.BatchNorm2d(16), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, input):
        x = self.relu1(self.bn1(self.conv1(self.quant(input))))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.dequant(self.fc(torch.flatten(x, 1)))

    def fuse_model(self):
        tq.fuse_modules(self, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"]], inplace=True)


def trained_cnn():
    model = FashionCNN()
    model.load_state_dict(torch.load(EXAMPLE / "model.pt"))
    return model.eval()


def structured_images(n, seed, size=64):
    """Smooth random images (8x8 noise upsampled) plus fine noise, ~unit scale."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 8, 8, generator=g)
    x = nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return (x + 0.3 * torch.randn(n, 3, size, size, generator=g)).contiguous()


def realistic_batch_norms(model, seed=0):
    """Random affine parameters (gamma in [0.5, 1], beta in [0, 1]) and
    running statistics measured in train mode on 4 batches of 8 images
    (cumulative average), then eval mode.

    With torchvision's defaults (gamma 1, beta 0) random deep networks are
    chaotic: every BN re-centres its channels, and a 40 dB perturbation of
    the input comes out at ~9 dB after ResNet-50, so no 8-bit quantizer can
    do well and top-1 agreements are noise. Positive betas keep the
    networks in a regime closer to trained ones (26-46 dB)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g))
    model.train()
    with torch.no_grad():
        for i in range(4):
            model(structured_images(8, 1000 + i))
    return model.eval()


def fashion_mnist_sets(n_calib, n_eval):
    train, _ = qdatasets.fashion_mnist("train", limit=n_calib)
    test, _ = qdatasets.fashion_mnist("test", limit=n_eval)
    return torch.from_numpy(train), torch.from_numpy(test)


def build_model(name, n_calib=32, n_eval=32):
    """(float model in eval mode, calibration inputs [n_calib, ...], evaluation inputs [n_eval, ...])."""
    torch.manual_seed(0)
    if name == "mlp":
        calib, ev = fashion_mnist_sets(n_calib, n_eval)
        return MLP().eval(), calib, ev
    if name == "fmnist_cnn":
        calib, ev = fashion_mnist_sets(n_calib, n_eval)
        return trained_cnn(), calib, ev
    return torchvision_model(name, n_calib, n_eval)


def _vit_small():
    """ViT-S (hidden 384, 6 heads, MLP 1536) with 4 of its 12 layers, on the
    64x64 images here in 8x8 patches (a sequence of 65). torchvision
    initializes the classifier to zeros (all logits 0): random instead."""
    model = torchvision.models.VisionTransformer(
        image_size=64, patch_size=8, num_layers=4, num_heads=6, hidden_dim=384, mlp_dim=1536)
    nn.init.normal_(model.heads.head.weight, std=0.05)
    return model


BERT_SEQUENCE, BERT_WIDTH = 128, 768


def _bert_encoder():
    """A BERT-base-shaped encoder: nn.TransformerEncoder, 12 post-norm
    layers, d_model 768, 12 heads, feed-forward 3072, GELU, batch first;
    weights normal(0, 0.02) as BERT initializes them, distinct per layer."""
    model = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(BERT_WIDTH, 12, 3072, activation="gelu", batch_first=True),
        12)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0.0, 0.02)
    return model


def token_embeddings(n, seed, sequence=BERT_SEQUENCE, width=BERT_WIDTH, vocab=1000):
    """BERT-like encoder inputs [n, sequence, width]: layer-normalized sums
    of token embeddings (random ids into a random table, normal(0, 1), the
    same table for every seed) and position embeddings."""
    table = torch.randn(vocab, width, generator=torch.Generator().manual_seed(1234))
    positions = 0.5 * torch.randn(sequence, width, generator=torch.Generator().manual_seed(4321))
    ids = torch.randint(0, vocab, (n, sequence), generator=torch.Generator().manual_seed(seed))
    return nn.functional.layer_norm(table[ids] + positions, (width,)).contiguous()


# Configurations of torchvision's model classes that are not in
# torchvision.models, and torch.nn models.
SMALL_MODELS = {"vit_small": _vit_small, "bert_encoder": _bert_encoder}
# Models on token sequences: {name: feature width}. Their data are
# token_embeddings; their "top-1" is the argmax over the features of each
# token.
SEQUENCE_MODELS = {"bert_encoder": BERT_WIDTH}


def torchvision_model(name, n_calib=32, n_eval=32, quantizable=True):
    """A torchvision model with random weights (seed 0) and realistic batch
    norms, in eval mode, and its structured calibration / evaluation images.

    quantizable: torchvision.models.quantization.<name>(quantize=False)
    (QuantStub / DeQuantStub, fuse_model: what eager-mode PTQ needs) where
    it exists; else, or with quantizable=False, torchvision.models.<name>.
    GoogLeNet: init_weights=True (the plain one also aux_logits=False)."""
    torch.manual_seed(0)
    if name in SMALL_MODELS:
        model = SMALL_MODELS[name]()
    elif quantizable and hasattr(torchvision.models.quantization, name):
        kwargs = {"init_weights": True} if name == "googlenet" else {}
        model = getattr(torchvision.models.quantization, name)(quantize=False, **kwargs)
    else:
        kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        model = getattr(torchvision.models, name)(**kwargs)
    if name in SEQUENCE_MODELS:
        return model.eval(), token_embeddings(n_calib, 1), token_embeddings(n_eval, 2)
    realistic_batch_norms(model)
    return model, structured_images(n_calib, 1), structured_images(n_eval, 2)


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

def pytorch_int8(model, variant, calib):
    """Eager-mode static PTQ: fuse, prepare, one forward per calibration
    sample (batch 1), convert."""
    qconfig, engine = engine_for(variant)
    torch.backends.quantized.engine = engine
    q = copy.deepcopy(model).eval()
    q.fuse_model()
    q.qconfig = tq.get_default_qconfig(qconfig)
    tq.prepare(q, inplace=True)
    with torch.no_grad():
        for x in calib:
            q(x[None])
    tq.convert(q, inplace=True)
    return q, engine


def pytorch_outputs(model, images, batch=None, engine=None):
    if engine:
        torch.backends.quantized.engine = engine
    outs = []
    with torch.no_grad():
        step = batch or 1
        for i in range(0, len(images), step):
            x = images[i:i + step] if batch else images[i][None]
            outs.append(model(x).reshape(len(x), -1).numpy())
    return np.concatenate(outs)


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------

def sqnr(ref, x):
    ref, x = np.asarray(ref, np.float64), np.asarray(x, np.float64)
    noise = np.sum((ref - x) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise))


def agree(a, b, width=None):
    """% of rows of a and b [S, N] with the same argmax; with `width`, of
    the rows of width elements (the tokens of a sequence model's outputs)."""
    if width:
        a, b = np.reshape(a, (-1, width)), np.reshape(b, (-1, width))
    return float(np.mean(np.argmax(a, 1) == np.argmax(b, 1)) * 100)


def fmt(v, digits=1, suffix=""):
    if v is None:
        return "error"
    if isinstance(v, float) and np.isinf(v):
        return "inf"
    return f"{v:.{digits}f}{suffix}"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# 1. Fashion-MNIST accuracy
# ---------------------------------------------------------------------------

def fashion_mnist_accuracy(tools, work, n_test, errors):
    log(f"[fashion-mnist] {n_test} test images, 200 calibration images")
    work = work / "fmnist_accuracy"
    work.mkdir()
    model = trained_cnn()
    calib = np.load(EXAMPLE / "calib.npz")["input"]           # [200, 1, 28, 28, 1] NHWC
    calib = torch.from_numpy(np.ascontiguousarray(calib[:, 0].transpose(0, 3, 1, 2)))
    images, labels = qdatasets.fashion_mnist("test", limit=n_test)
    images = torch.from_numpy(images)

    info = qnt.export(model, torch.zeros(1, 1, 28, 28), work / "model.mlir")
    qdata.save(work / "calib.npz", {"input": calib}, expect=info)
    qdata.save(work / "eval.npz", {"input": images}, expect=info, labels=labels)

    def accuracy(logits):
        return int(np.sum(np.argmax(logits, 1) == labels))

    rows = OrderedDict()
    rows["fp32_pytorch"] = ("FP32", "PyTorch", None, accuracy(pytorch_outputs(model, images, 1000)))
    try:
        rows["fp32_ours"] = ("FP32", "ours (quant-run)", None,
                             accuracy(ours_run(tools, work / "model.mlir", work / "eval.npz",
                                               work / "out_fp32.npz")))
    except ToolError as e:
        errors.append(f"fashion-mnist FP32 (ours): {e}")
        rows["fp32_ours"] = ("FP32", "ours (quant-run)", None, None)
    try:
        int8 = ours_int8(tools, work, work / "model.mlir", work / "calib.npz", list(VARIANTS))
    except ToolError as e:
        errors.append(f"fashion-mnist INT8 (ours): {e}")
        int8 = {}
    for variant in VARIANTS:
        q, engine = pytorch_int8(model, variant, calib)
        rows[f"pytorch_{variant}"] = (VARIANT_LABEL[variant], f"PyTorch ({engine} engine)", variant,
                                      accuracy(pytorch_outputs(q, images, 1000, engine)))
        correct = None
        if variant in int8:
            try:
                correct = accuracy(ours_run(tools, int8[variant], work / "eval.npz",
                                            work / f"out_{variant}.npz"))
            except ToolError as e:
                errors.append(f"fashion-mnist INT8 {variant} (ours): {e}")
        rows[f"ours_{variant}"] = (VARIANT_LABEL[variant], "ours", variant, correct)

    fp32 = rows["fp32_pytorch"][3]
    result = {"n_test": n_test, "n_calib": len(calib), "correct": {}, "accuracy": {},
              "checks": {}, "pass": True}
    table = []
    for key, (config, who, variant, correct) in rows.items():
        result["correct"][key] = correct
        acc = None if correct is None else 100.0 * correct / n_test
        result["accuracy"][key] = acc
        d_fp32 = d_pt = verdict = ""
        if key.startswith("ours_"):
            pt = rows[f"pytorch_{variant}"][3]
            if correct is None:
                ok = False
                verdict = "FAIL (error)"
            else:
                # Compare counts (exact): a loss of L points is L/100 * N images.
                loss_fp32 = (fp32 - correct) * 100.0 / n_test
                loss_pt = (pt - correct) * 100.0 / n_test
                ok = loss_fp32 <= MAX_LOSS_VS_FP32 + 1e-9 and loss_pt <= MAX_LOSS_VS_PYTORCH + 1e-9
                d_fp32 = f"{(correct - fp32) * 100.0 / n_test:+.2f}"
                d_pt = f"{(correct - pt) * 100.0 / n_test:+.2f}"
                verdict = "PASS" if ok else "FAIL"
            result["checks"][variant] = ok
            result["pass"] &= ok
        elif key.startswith("pytorch_"):
            d_fp32 = f"{(correct - fp32) * 100.0 / n_test:+.2f}"
        table.append([config, who, fmt(acc, 2, " %"), d_fp32, d_pt, verdict])
    text = md_table(["configuration", "run by", "accuracy", "Δ vs FP32", "Δ vs PyTorch INT8",
                     f"target (≥ −{MAX_LOSS_VS_FP32} vs FP32, ≥ −{MAX_LOSS_VS_PYTORCH} vs PyTorch)"],
                    table)
    return result, text


# ---------------------------------------------------------------------------
# 2. Frontend models
# ---------------------------------------------------------------------------

def evaluate_model(tools, work, name, errors, n_calib, n_eval):
    log(f"[{name}]")
    t0 = time.monotonic()
    work = work / name
    work.mkdir()
    model, calib, images = build_model(name, n_calib, n_eval)
    example = torch.zeros(1, *images.shape[1:])
    info = qnt.export(model, example, work / "model.mlir")
    arg = info.inputs[0][0]
    qdata.save(work / "calib.npz", {arg: calib}, expect=info)
    qdata.save(work / "eval.npz", {arg: images}, expect=info)

    fp32 = pytorch_outputs(model, images, batch=64)
    g = torch.Generator().manual_seed(5)
    noisy = images + 0.01 * images.std() * torch.randn(images.shape, generator=g)
    sensitivity = sqnr(fp32, pytorch_outputs(model, noisy, batch=64))

    res = {"sensitivity_db": sensitivity, "input": list(images.shape[1:]), "variants": {}}
    t_ours = time.monotonic()
    try:
        int8 = ours_int8(tools, work, work / "model.mlir", work / "calib.npz", list(VARIANTS))
        res["census"] = op_census(int8["x86"])
    except ToolError as e:
        errors.append(f"{name}: {e}")
        int8 = {}
    t_ours = time.monotonic() - t_ours
    t_pytorch = 0.0
    for variant in VARIANTS:
        t = time.monotonic()
        q, engine = pytorch_int8(model, variant, calib)
        pt = pytorch_outputs(q, images, engine=engine)
        r = {"engine": engine, "sqnr_pytorch": sqnr(fp32, pt), "top1_pytorch_fp32": agree(pt, fp32),
             "sqnr_ours": None, "sqnr_ours_pytorch": None, "top1_ours_pytorch": None,
             "top1_ours_fp32": None}
        t_pytorch += time.monotonic() - t
        t = time.monotonic()
        if variant in int8:
            try:
                ours = ours_run(tools, int8[variant], work / "eval.npz", work / f"out_{variant}.npz")
                r.update(sqnr_ours=sqnr(fp32, ours), sqnr_ours_pytorch=sqnr(pt, ours),
                         top1_ours_pytorch=agree(ours, pt), top1_ours_fp32=agree(ours, fp32))
            except ToolError as e:
                errors.append(f"{name} {variant}: {e}")
        t_ours += time.monotonic() - t
        res["variants"][variant] = r
    res["seconds"] = time.monotonic() - t0
    log(f"[{name}] {res['seconds']:.1f} s (ours {t_ours:.1f} s, PyTorch {t_pytorch:.1f} s)")
    return res


def model_tables(models):
    preset_rows, pc_rows, census_rows = [], [], []
    for name, res in models.items():
        if "variants" not in res:
            continue
        for variant in ("x86", "qnnpack"):
            r = res["variants"][variant]
            preset_rows.append([name, variant, fmt(r["top1_ours_pytorch"], 0, " %"),
                                fmt(r["top1_ours_fp32"], 0, " %"), fmt(r["top1_pytorch_fp32"], 0, " %"),
                                fmt(r["sqnr_ours"]), fmt(r["sqnr_pytorch"]), fmt(r["sqnr_ours_pytorch"])])
        v = res["variants"]
        pc_rows.append([name, "x".join(map(str, res["input"])), fmt(res["sensitivity_db"]),
                        fmt(v["qnnpack"]["sqnr_ours"]), fmt(v["qnnpack_pc"]["sqnr_ours"]),
                        fmt(v["qnnpack"]["sqnr_pytorch"]), fmt(v["qnnpack_pc"]["sqnr_pytorch"]),
                        fmt(v["x86"]["sqnr_ours"]), fmt(v["x86"]["sqnr_pytorch"])])
        if "census" in res:
            q, f, casts = census_text(res["census"])
            census_rows.append([name, q, f, casts])
    engines = {v: next(iter(models.values()))["variants"][v]["engine"]
               for v in VARIANTS} if models else {}
    t1 = md_table(["model", "preset", "top-1 ours = PyTorch", "top-1 ours = FP32",
                   "top-1 PyTorch = FP32", "SQNR ours (dB)", "SQNR PyTorch (dB)",
                   "SQNR ours vs PyTorch (dB)"], preset_rows)
    t2 = md_table(["model", "input", "FP32 at 40 dB input noise",
                   "ours per-tensor", "ours per-channel", "PyTorch per-tensor",
                   "PyTorch per-channel", "ours x86", "PyTorch x86"], pc_rows)
    t3 = md_table(["model", "quantized ops", "float ops (between quant.dcast and quant.qcast)",
                   "quant.qcast"],
                  census_rows)
    return t1, t2, t3, engines


# ---------------------------------------------------------------------------

def make_work_dir(path, prefix):
    """`path` emptied (--work-dir: kept afterwards), or a new temporary
    directory."""
    if not path:
        return Path(tempfile.mkdtemp(prefix=prefix))
    work = Path(path)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def write_report(lines, errors, path):
    """Prints the markdown report (`lines`, then the step errors, each with
    its message as a code block) and writes it to `path`."""
    out = list(lines)
    if errors:
        out += ["", "## Errors", ""]
        for e in errors:
            first, _, rest = e.partition("\n")
            out.append(f"* {first}" + (f"\n\n  ```\n{rest}\n  ```" if rest else ""))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="MLP + Fashion-MNIST CNN only, accuracy on the first 1000 test images")
    ap.add_argument("--models", help=f"comma-separated subset of {','.join(ALL_MODELS)}")
    ap.add_argument("--test-images", type=int,
                    help="Fashion-MNIST test images for the accuracy table (default 10000, --quick 1000)")
    ap.add_argument("--calib-samples", type=int, default=32,
                    help="calibration inputs per frontend model (default 32)")
    ap.add_argument("--eval-samples", type=int,
                    help="evaluation inputs per frontend model (default 256, --quick 32)")
    ap.add_argument("--out", default=str(REPO / "eval" / "results.md"), help="markdown output")
    ap.add_argument("--json", help="also write the numbers as JSON")
    ap.add_argument("--work-dir", help="keep intermediate files here (default: a temporary directory)")
    ap.add_argument("--build-dir", default=os.environ.get("QNT_BUILD_DIR", str(REPO / "build")))
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of PyTorch and quant-run (default 1: the results do not depend "
                         "on it, and OpenMP with as many threads as cores slows down by orders "
                         "of magnitude when another process holds a core)")
    args = ap.parse_args(argv)

    t_start = time.monotonic()
    torch.set_num_threads(args.threads)
    models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else ALL_MODELS)
    for m in models:
        if m not in ALL_MODELS:
            ap.error(f"unknown model {m!r} (one of {', '.join(ALL_MODELS)})")
    n_test = args.test_images or (1000 if args.quick else 10000)
    if args.eval_samples is None:
        args.eval_samples = 32 if args.quick else 256
    tools = Tools(args.build_dir, float(os.environ.get("QNT_BINARY_WAIT", "120")), args.threads)

    work = make_work_dir(args.work_dir, "qnt_eval_")
    errors = []
    try:
        fm, fm_table = fashion_mnist_accuracy(tools, work, n_test, errors)
        results = OrderedDict()
        for name in models:
            try:
                results[name] = evaluate_model(tools, work, name, errors,
                                               args.calib_samples, args.eval_samples)
            except Exception as e:  # keep the other models going
                errors.append(f"{name}: {type(e).__name__}: {e}")
                log(traceback.format_exc())
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    t1, t2, t3, engines = model_tables(results)
    runtime = time.monotonic() - t_start

    verdict = "PASS" if fm["pass"] else "FAIL"
    out = [
        "# qnt static PTQ vs PyTorch 1.13",
        "",
        f"torch {torch.__version__}, torchvision {torchvision.__version__}; PyTorch engines: "
        + ", ".join(f"{VARIANT_LABEL[v]} on `{engine_for(v)[1]}`" for v in VARIANTS) + ".",
        "",
        f"## Fashion-MNIST CNN: test accuracy ({n_test} test images, "
        f"calibration: the {fm['n_calib']} training images of examples/cnn/calib.npz)",
        "",
        fm_table,
        "",
        f"Targets (ours vs FP32 ≥ −{MAX_LOSS_VS_FP32} points, vs PyTorch INT8 of the same "
        f"preset ≥ −{MAX_LOSS_VS_PYTORCH} points): **{verdict}**",
        "",
        "## Frontend models: ours and PyTorch INT8 vs FP32",
        "",
        f"{args.calib_samples} calibration and {args.eval_samples} evaluation inputs per model, "
        "one per forward (torchvision models: structured random images 3x64x64, random weights, batch norms from `realistic_batch_norms`; MLP and CNN: "
        "Fashion-MNIST train / test images). Top-1: agreement of the argmax; "
        "SQNR over all outputs: 10 log10(Σ ref² / Σ (ref − x)²).",
        "",
        t1,
        "",
        "## Per-tensor vs per-channel weights (SQNR vs FP32, dB)",
        "",
        "Per-tensor: the qnnpack preset (u8 [0, 255] activations, per-tensor s8 weights; PyTorch "
        "`get_default_qconfig('qnnpack')`). Per-channel: the same statistics with "
        "`--qnt-per-channel=\"backend=onednn\"` (PyTorch: `get_default_qconfig('onednn')`, the same "
        "activation observer with per-channel weights). The x86 columns (7-bit activations, "
        "per-channel weights) for reference. \"FP32 at 40 dB input noise\": SQNR of the FP32 "
        "outputs when the inputs get noise 40 dB below them, the model's own sensitivity.",
        "",
        t2,
        "",
        "## Ops in our INT8 IR (x86 preset)",
        "",
        "From the `--qnt-convert` output of this build: ops on `!quant.uniform` types vs ops "
        "left in float (layout ops and constants not listed). Every quant.qcast after the input's "
        "is a requantization point PyTorch may not have.",
        "",
        t3,
        "",
        f"Runtime: {runtime:.0f} s (quant-opt {tools.seconds['quant-opt']:.0f} s, "
        f"quant-run {tools.seconds['quant-run']:.0f} s).",
    ]
    write_report(out, errors, args.out)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"fashion_mnist": fm, "models": results, "errors": errors, "runtime_s": runtime,
             "engines": engines, "targets": {"max_loss_vs_fp32": MAX_LOSS_VS_FP32,
                                             "max_loss_vs_pytorch": MAX_LOSS_VS_PYTORCH}},
            indent=1))
    if errors:
        return 2
    return 0 if fm["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
