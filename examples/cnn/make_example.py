#!/usr/bin/python3
"""Generate the small Fashion-MNIST CNN example for qnt.

Trains a tiny CNN (conv-bn-relu x2, maxpool, linear) on Fashion-MNIST with
PyTorch on the CPU, then writes, next to this script:

  model.mlir              FP32 TOSA model (NHWC), wrapped in qnt.quant_stub /
                          qnt.dequant_stub, @main(%input: tensor<1x28x28x1xf32>)
  model.pt                trained PyTorch state_dict
  calib.npz               'input'  [200,1,28,28,1] f32  calibration images (train set)
  input.npz               'input'  [1,28,28,1]     f32  one test image
  expected_fp32.npz       'output' [1,10]          f32  PyTorch output on input.npz
  eval.npz                'input'  [500,1,28,28,1] f32, 'labels' [500] i64 (first 500 test images)
  expected_eval_fp32.npz  'output' [500,1,10]      f32  PyTorch outputs on eval.npz

Usage (needs torch + numpy; on the dev machine that is /usr/bin/python3):

  /usr/bin/python3 examples/cnn/make_example.py [--epochs N] [--verify-with-mlir]

--verify-with-mlir additionally parses model.mlir with upstream mlir-opt
(--allow-unregistered-dialect), lowers a stub-free copy to LLVM, runs it with
mlir-runner on input.npz and compares against PyTorch (max abs diff < 1e-4).
"""

import argparse
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
LLVM_BIN = os.environ.get("MLIR_BIN_DIR", "/usr/lib/llvm-22/bin")
LLVM_LIB = os.environ.get("MLIR_LIB_DIR", "/usr/lib/llvm-22/lib")

MEAN, STD = 0.2860, 0.3530
SEED = 0
N_CALIB, N_EVAL = 200, 500
INPUT_INDEX = 0  # test-set index of the single example image


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def read_idx(path, magic, expected_count, item_shape):
    """Read a gzip'ed IDX file (uint8 payload), checking magic and sizes."""
    if not os.path.isfile(path):
        sys.exit(f"error: Fashion-MNIST file not found: {path}\n"
                 f"(set FASHION_MNIST_DIR to the directory holding the "
                 f"*-ubyte.gz files)")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = len(item_shape) + 1
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated IDX header")
    got_magic = struct.unpack(">I", raw[:4])[0]
    if got_magic != magic:
        raise ValueError(f"{path}: bad magic 0x{got_magic:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header_len])
    if dims[0] != expected_count or tuple(dims[1:]) != tuple(item_shape):
        raise ValueError(f"{path}: unexpected dims {dims}, expected "
                         f"{(expected_count,) + tuple(item_shape)}")
    n = int(np.prod(dims))
    if len(raw) - header_len != n:
        raise ValueError(f"{path}: payload is {len(raw) - header_len} bytes, expected {n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def load_split(split, count):
    images = read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"),
                      0x00000803, count, (28, 28))
    labels = read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz"),
                      0x00000801, count, ())
    if labels.max() > 9:
        raise ValueError(f"{split}: label out of range")
    x = ((images.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    return x, labels.astype(np.int64)  # x: [N, 28, 28]


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):  # x: [N, 1, 28, 28]
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.pool(x)
        return self.fc(torch.flatten(x, 1))


def train(model, x_train, y_train, epochs, batch=64, lr=1e-3):
    g = torch.Generator().manual_seed(SEED)
    xt = torch.from_numpy(x_train).unsqueeze(1)
    yt = torch.from_numpy(y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    t0 = time.time()
    for ep in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        total, n = 0.0, 0
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        print(f"epoch {ep + 1}/{epochs}: train loss {total / n:.4f} "
              f"({time.time() - t0:.1f}s)")
    return time.time() - t0


@torch.no_grad()
def predict(model, x_nhw):
    model.eval()
    out = [model(torch.from_numpy(x_nhw[i:i + 1000]).unsqueeze(1))
           for i in range(0, len(x_nhw), 1000)]
    return torch.cat(out).numpy().astype(np.float32)


# --------------------------------------------------------------------------
# Export: weights in NHWC / TOSA layout
# --------------------------------------------------------------------------

def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype="<f4"))


def export_params(model):
    """Return the constants of the TOSA graph (all float32, TOSA layouts)."""
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()
          if v.dtype.is_floating_point}
    p = {}
    for conv, bn in (("conv1", model.bn1), ("conv2", model.bn2)):
        p[conv + "_w"] = f32(sd[conv + ".weight"].transpose(0, 2, 3, 1))  # OIHW -> OHWI
        p[conv + "_b"] = f32(sd[conv + ".bias"])
    for i, bn in ((1, model.bn1), (2, model.bn2)):
        name = f"bn{i}"
        gamma, beta = sd[name + ".weight"], sd[name + ".bias"]
        mean, var = sd[name + ".running_mean"], sd[name + ".running_var"]
        a = gamma / np.sqrt(var + bn.eps)
        b = beta - mean * a
        p[name + "_scale"] = f32(a.reshape(1, 1, 1, -1))
        p[name + "_shift"] = f32(b.reshape(1, 1, 1, -1))
    w = sd["fc.weight"]  # [10, 784], k = c*49 + h*7 + w  (NCHW flatten)
    w_nhwc = w.reshape(10, 16, 7, 7).transpose(0, 2, 3, 1).reshape(10, 784)  # k = (h, w, c)
    p["fc_w"] = f32(w_nhwc.T.reshape(1, 784, 10))
    p["fc_b"] = f32(sd["fc.bias"].reshape(1, 10))
    return p


def numpy_reference(p, x_nhwc):
    """Evaluate the exported graph (exactly as written in model.mlir) in numpy.

    x_nhwc: [N, 28, 28, 1].  Used as a cheap self-check of the layout
    conversions independent of MLIR."""
    def conv(x, w, b, stride):
        n, h, wd, c = x.shape
        o, kh, kw, _ = w.shape
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        oh, ow = (h + 2 - kh) // stride + 1, (wd + 2 - kw) // stride + 1
        out = np.zeros((n, oh, ow, o), np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
                out += patch @ w[:, i, j, :].T.astype(np.float64)
        return out + b
    x = x_nhwc.astype(np.float64)
    x = np.maximum(conv(x, p["conv1_w"], p["conv1_b"], 1) * p["bn1_scale"] + p["bn1_shift"], 0)
    x = np.maximum(conv(x, p["conv2_w"], p["conv2_b"], 2) * p["bn2_scale"] + p["bn2_shift"], 0)
    n = x.shape[0]
    x = x.reshape(n, 7, 2, 7, 2, 16).max(axis=(2, 4))
    x = x.reshape(n, 784)
    return x @ p["fc_w"][0].astype(np.float64) + p["fc_b"]


def ty(shape, elt="f32"):
    return "tensor<" + "x".join(str(d) for d in shape) + f"x{elt}>"


def hex_const(name, arr, loc):
    t = ty(arr.shape)
    return (f'    %{name} = "tosa.const"() {{values = dense<"0x{f32(arr).tobytes().hex().upper()}"> '
            f': {t}}} : () -> {t} loc("{loc}")')


def emit_mlir(p, accuracy, epochs):
    T_in, T_c1, T_c2 = ty((1, 28, 28, 1)), ty((1, 28, 28, 8)), ty((1, 14, 14, 16))
    T_p, T_f, T_mm, T_o = ty((1, 7, 7, 16)), ty((1, 1, 784)), ty((1, 1, 10)), ty((1, 10))
    T_zp, T_sh = ty((1,)), ty((1,), "i8")
    L = []
    L.append("// qnt example: small Fashion-MNIST CNN, FP32, TOSA (NHWC).")
    L.append("//   conv1(1->8,3x3,p1)+bn1+relu1 -> conv2(8->16,3x3,s2,p1)+bn2+relu2")
    L.append("//   -> maxpool 2x2 -> flatten (h,w,c) -> fc(784->10)")
    L.append("// Generated by examples/cnn/make_example.py (PyTorch, seed "
             f"{SEED}, {epochs} epoch(s), Adam lr 1e-3, batch 64); do not edit.")
    L.append(f"// FP32 test accuracy (PyTorch, full 10k Fashion-MNIST test set): {accuracy * 100:.2f}%")
    L.append("// Input: normalized image, x = (pixel/255 - 0.2860) / 0.3530, NHWC 1x28x28x1.")
    L.append("// BatchNorm is kept separate (per-channel tosa.mul + tosa.add) after the conv")
    L.append("// (conv bias = PyTorch conv bias); locations carry the PyTorch module names.")
    L.append("// conv2 pad is [1, 0, 1, 0] (top, bottom, left, right): TOSA needs exact stride")
    L.append("// divisibility; equivalent to PyTorch padding=1 with stride 2 on 28x28.")
    L.append("module {")
    L.append(f"  func.func @main(%input: {T_in} {{qnt.name = \"input\"}}) -> {T_o} {{")
    L.append(f'    %q = "qnt.quant_stub"(%input) : ({T_in}) -> {T_in} loc("quant")')
    L.append(f'    %zp = "tosa.const"() {{values = dense<0.0> : {T_zp}}} : () -> {T_zp}')
    L.append(f'    %shift = "tosa.const"() {{values = dense<0> : {T_sh}}} : () -> {T_sh}')

    def block(i, x, T_x, T_y, stride, pad):
        c, b = f"conv{i}", f"bn{i}"
        w = p[c + "_w"]
        L.append(hex_const(c + "_w", w, c))
        L.append(hex_const(c + "_b", p[c + "_b"], c))
        L.append(f"    %{c} = tosa.conv2d %{x}, %{c}_w, %{c}_b, %zp, %zp {{acc_type = f32, "
                 f"pad = array<i64: {pad}>, stride = array<i64: {stride}, {stride}>, "
                 f"dilation = array<i64: 1, 1>}} : ({T_x}, {ty(w.shape)}, {ty(p[c + '_b'].shape)}, "
                 f"{T_zp}, {T_zp}) -> {T_y} loc(\"{c}\")")
        T_s = ty(p[b + "_scale"].shape)
        L.append(hex_const(b + "_scale", p[b + "_scale"], b))
        L.append(hex_const(b + "_shift", p[b + "_shift"], b))
        L.append(f"    %{b}_mul = tosa.mul %{c}, %{b}_scale, %shift : ({T_y}, {T_s}, {T_sh}) -> {T_y} loc(\"{b}\")")
        L.append(f"    %{b} = tosa.add %{b}_mul, %{b}_shift : ({T_y}, {T_s}) -> {T_y} loc(\"{b}\")")
        L.append(f"    %relu{i} = tosa.clamp %{b} {{min_val = 0.0 : f32, max_val = 3.40282347E+38 : f32}} "
                 f": ({T_y}) -> {T_y} loc(\"relu{i}\")")

    block(1, "q", T_in, T_c1, 1, "1, 1, 1, 1")
    # TOSA requires (H - 1 + pad_top + pad_bottom - (K - 1)) % stride == 0, so
    # PyTorch's padding=1 on the stride-2 conv2 becomes [top 1, bottom 0, left 1,
    # right 0]: the extra bottom/right zero row/col is never read, same result.
    block(2, "relu1", T_c1, T_c2, 2, "1, 0, 1, 0")
    L.append(f"    %pool = tosa.max_pool2d %relu2 {{kernel = array<i64: 2, 2>, stride = array<i64: 2, 2>, "
             f"pad = array<i64: 0, 0, 0, 0>}} : ({T_c2}) -> {T_p} loc(\"pool\")")
    L.append('    %flatten_shape = tosa.const_shape {values = dense<[1, 1, 784]> : tensor<3xindex>} '
             ': () -> !tosa.shape<3> loc("flatten")')
    L.append(f'    %flatten = tosa.reshape %pool, %flatten_shape : ({T_p}, !tosa.shape<3>) -> {T_f} loc("flatten")')
    L.append(hex_const("fc_w", p["fc_w"], "fc"))
    L.append(f"    %fc_mm = tosa.matmul %flatten, %fc_w, %zp, %zp : ({T_f}, {ty(p['fc_w'].shape)}, {T_zp}, {T_zp}) "
             f"-> {T_mm} loc(\"fc\")")
    L.append('    %fc_shape = tosa.const_shape {values = dense<[1, 10]> : tensor<2xindex>} '
             ': () -> !tosa.shape<2> loc("fc")')
    L.append(f'    %fc_2d = tosa.reshape %fc_mm, %fc_shape : ({T_mm}, !tosa.shape<2>) -> {T_o} loc("fc")')
    L.append(hex_const("fc_b", p["fc_b"], "fc"))
    L.append(f'    %fc = tosa.add %fc_2d, %fc_b : ({T_o}, {T_o}) -> {T_o} loc("fc")')
    L.append(f'    %out = "qnt.dequant_stub"(%fc) : ({T_o}) -> {T_o} loc("dequant")')
    L.append(f"    return %out : {T_o}")
    L.append("  }")
    L.append("}")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------
# Optional check with upstream MLIR
# --------------------------------------------------------------------------

LOWERING = ("builtin.module(func.func(tosa-to-linalg-named,tosa-to-linalg,tosa-to-arith,tosa-to-tensor),"
            "one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},"
            "convert-linalg-to-loops,expand-strided-metadata,lower-affine,convert-scf-to-cf,"
            "convert-to-llvm,reconcile-unrealized-casts)")


def verify_with_mlir(mlir_text, x_nhwc, expected):
    """Parse model.mlir with mlir-opt, then lower + run a stub-free copy."""
    opt = os.path.join(LLVM_BIN, "mlir-opt")
    runner = os.path.join(LLVM_BIN, "mlir-runner")
    libs = [os.path.join(LLVM_LIB, l) for l in ("libmlir_runner_utils.so", "libmlir_c_runner_utils.so")]
    for f in [opt, runner] + libs:
        if not os.path.exists(f):
            sys.exit(f"error: --verify-with-mlir: {f} not found (set MLIR_BIN_DIR / MLIR_LIB_DIR)")
    tmp = tempfile.mkdtemp(prefix="qnt_cnn_verify_")
    try:
        def run(cmd, **kw):
            r = subprocess.run(cmd, capture_output=True, text=True, **kw)
            if r.returncode != 0:
                sys.exit(f"error: command failed: {' '.join(cmd)}\n{r.stderr[-4000:]}")
            return r.stdout

        path = os.path.join(tmp, "model.mlir")
        with open(path, "w") as f:
            f.write(mlir_text)
        run([opt, "--allow-unregistered-dialect", path, "-o", os.devnull])
        print("mlir-opt --allow-unregistered-dialect: model.mlir parses OK")

        # Remove the stubs (and forward their operands), add an @entry wrapper
        # that computes main(input) and main(input) - expected and prints both.
        body = []
        for line in mlir_text.splitlines():
            if '"qnt.quant_stub"' in line or '"qnt.dequant_stub"' in line:
                continue
            line = re.sub(r"%q\b", "%input", line)
            line = re.sub(r"return %out\b", "return %fc", line)
            body.append(line)
        text = "\n".join(body)
        assert text.rstrip().endswith("}")
        T_in, T_o = ty((1, 28, 28, 1)), ty((1, 10))
        entry = f"""
  func.func private @printMemrefF32(tensor<*xf32>)
  func.func @entry() {{
    %x = arith.constant dense<"0x{f32(x_nhwc).tobytes().hex().upper()}"> : {T_in}
    %e = arith.constant dense<"0x{f32(expected).tobytes().hex().upper()}"> : {T_o}
    %y = call @main(%x) : ({T_in}) -> {T_o}
    %d = tosa.sub %y, %e : ({T_o}, {T_o}) -> {T_o}
    %yu = tensor.cast %y : {T_o} to tensor<*xf32>
    %du = tensor.cast %d : {T_o} to tensor<*xf32>
    call @printMemrefF32(%yu) : (tensor<*xf32>) -> ()
    call @printMemrefF32(%du) : (tensor<*xf32>) -> ()
    return
  }}
}}
"""
        text = text.rstrip()[:-1] + entry
        src = os.path.join(tmp, "run.mlir")
        with open(src, "w") as f:
            f.write(text)
        llvm = os.path.join(tmp, "run.llvm.mlir")
        run([opt, src, f"--pass-pipeline={LOWERING}", "-o", llvm])
        out = run([runner, llvm, "-e", "entry", "-entry-point-result=void"]
                  + [f"-shared-libs={l}" for l in libs])
        rows = re.findall(r"\[\[([^\]]*)\]\]", out)
        if len(rows) != 2:
            sys.exit(f"error: unexpected mlir-runner output:\n{out}")
        y = np.array([float(v) for v in rows[0].split(",")], np.float64)
        d = np.array([float(v) for v in rows[1].split(",")], np.float64)
        diff_printed = float(np.abs(y - expected.reshape(-1)).max())
        diff = float(np.abs(d).max())
        print(f"mlir-runner: max |mlir - torch| = {diff:.3g} "
              f"(from printed logits: {diff_printed:.3g})")
        if diff >= 1e-4:
            sys.exit("error: MLIR result differs from PyTorch by >= 1e-4")
        return diff
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--verify-with-mlir", action="store_true",
                    help="parse model.mlir with mlir-opt and run it with mlir-runner")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_split("train", 60000)
    x_test, y_test = load_split("t10k", 10000)
    print(f"loaded Fashion-MNIST: train {x_train.shape}, test {x_test.shape}")

    model = Net()
    train_time = train(model, x_train, y_train, args.epochs)
    model.eval()
    logits = predict(model, x_test)
    acc = float((logits.argmax(1) == y_test).mean())
    print(f"train time: {train_time:.1f}s ({args.epochs} epochs, 2 threads)")
    print(f"FP32 test accuracy: {acc * 100:.2f}% (10000 images)")

    params = export_params(model)

    # Self-check of the NHWC export against PyTorch (numpy, no MLIR needed).
    ref = numpy_reference(params, x_test[:N_EVAL, :, :, None])
    ref_diff = float(np.abs(ref - logits[:N_EVAL]).max())
    print(f"numpy NHWC re-implementation vs PyTorch: max abs diff {ref_diff:.3g}")
    if ref_diff > 1e-4:
        sys.exit("error: exported parameters do not reproduce the PyTorch model")

    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    mlir_text = emit_mlir(params, acc, args.epochs)
    files = {}

    def save(name, **arrays):
        path = os.path.join(out, name)
        np.savez(path, **arrays)
        files[name] = path

    with open(os.path.join(out, "model.mlir"), "w") as f:
        f.write(mlir_text)
    files["model.mlir"] = os.path.join(out, "model.mlir")
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    files["model.pt"] = os.path.join(out, "model.pt")

    # Calibration: 20 random training images per class (seeded), shuffled.
    rng = np.random.RandomState(SEED)
    per_class = N_CALIB // 10
    idx = np.concatenate([rng.choice(np.flatnonzero(y_train == c), per_class, replace=False)
                          for c in range(10)])
    rng.shuffle(idx)
    save("calib.npz", input=f32(x_train[idx][:, None, :, :, None]))  # [200,1,28,28,1]

    x1 = f32(x_test[INPUT_INDEX][None, :, :, None])  # [1,28,28,1]
    y1 = f32(logits[INPUT_INDEX:INPUT_INDEX + 1])  # [1,10]
    save("input.npz", input=x1)
    save("expected_fp32.npz", output=y1)

    save("eval.npz", input=f32(x_test[:N_EVAL][:, None, :, :, None]),
         labels=y_test[:N_EVAL].astype(np.int64))
    save("expected_eval_fp32.npz", output=f32(logits[:N_EVAL][:, None, :]))  # [500,1,10]

    mlir_diff = None
    if args.verify_with_mlir:
        mlir_diff = verify_with_mlir(mlir_text, x1, y1)

    print("\nsummary")
    print(f"  FP32 test accuracy : {acc * 100:.2f}%")
    print(f"  eval subset (500)  : {(logits[:N_EVAL].argmax(1) == y_test[:N_EVAL]).mean() * 100:.2f}%")
    print(f"  train time         : {train_time:.1f}s")
    if mlir_diff is not None:
        print(f"  mlir-runner diff   : {mlir_diff:.3g}")
    for name, path in files.items():
        print(f"  {name:<24} {os.path.getsize(path) / 1024:8.1f} KB")


if __name__ == "__main__":
    main()
