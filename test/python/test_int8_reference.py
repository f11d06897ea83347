"""Integer-exact execution tests of INT8 code run through quant-run.

Every case writes a small MLIR module from Python, runs it with
``quant-run`` (JIT) and compares the result with an independent numpy model
of the quantized arithmetic defined in runtime/include/qnt/Runtime.h and
docs/runtime.md:

  quantize     q = clamp(rint(x * (1/S)) + Z, qmin, qmax)        (float32)
  dequantize   x = float32(q - Z) * float32(S)
  conv/linear  acc = sum((q_in - Z_in) * w) + bias               (exact int)
               M[c] = f32(f64(f32 S_in) * f64(f32 S_w[c]) / f64(f32 S_out))
               q = clamp(rint(f32(acc) * M[c]) + Z_out, lo, hi)
  add          r = f32(qa - za) * Sa + f32(qb - zb) * Sb  (relu: max(r, 0))
               q = clamp(rint(r * (1/So)) + zo, qmin, qmax)

All comparisons are exact: the dequantized float32 output must equal
float32(q_ref - Z_out) * S_out bit for bit (which implies equal integers).

Kernel-backed cases (conv2d, linear) run under three CPU settings: native,
ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN's int16-saturating vpmaddubsw kernels, the
runtime must fall back where they would be wrong) and
QNT_RT_FORCE_REFERENCE=1 (the runtime's own reference kernels).

Binaries: $QNT_BUILD_DIR/bin/quant-run (default <repo>/build).
"""

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("QNT_BUILD_DIR", str(REPO_ROOT / "build")))
QUANT_RUN = BUILD_DIR / "bin" / "quant-run"
# The binary may be briefly missing while someone relinks it.
BINARY_WAIT_SECONDS = float(os.environ.get("QNT_BINARY_WAIT", "120"))

ISA_ENVS = {
    "native": {},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "reference": {"QNT_RT_FORCE_REFERENCE": "1"},
}
ISA_PARAMS = pytest.mark.parametrize("isa", list(ISA_ENVS))

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ---------------------------------------------------------------------------
# Running quant-run
# ---------------------------------------------------------------------------


def _quant_run_binary():
    deadline = time.monotonic() + BINARY_WAIT_SECONDS
    while not (QUANT_RUN.is_file() and os.access(QUANT_RUN, os.X_OK)):
        if time.monotonic() > deadline:
            pytest.fail(
                f"quant-run not found at {QUANT_RUN}: build the project first "
                f"(cmake --build {BUILD_DIR}) or set QNT_BUILD_DIR",
                pytrace=False,
            )
        time.sleep(2)
    return QUANT_RUN


def run_quant_run(tmp_path, name, mlir, inputs, env_extra=None):
    """Runs `mlir` on `inputs` (dict name -> array); returns the outputs."""
    binary = _quant_run_binary()
    mlir_path = tmp_path / f"{name}.mlir"
    in_path = tmp_path / f"{name}.in.npz"
    out_path = tmp_path / f"{name}.out.npz"
    mlir_path.write_text(mlir)
    np.savez(in_path, **inputs)
    env = dict(os.environ)
    env["QNT_RT_VERBOSE"] = "1"
    env.update(env_extra or {})
    cmd = [str(binary), str(mlir_path), "-i", str(in_path), "-o",
           str(out_path), "--quiet"]
    for attempt in range(3):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env=env, timeout=600)
            break
        except OSError:  # e.g. "Text file busy" during a relink
            if attempt == 2:
                raise
            time.sleep(5)
            binary = _quant_run_binary()
    kernels = sorted({line.strip() for line in
                      (proc.stdout + proc.stderr).splitlines()
                      if line.startswith("qnt_rt:")})
    for k in kernels:
        print(f"  [{name}] {k}")
    if proc.returncode != 0 or not out_path.exists():
        pytest.fail(
            f"quant-run failed (exit code {proc.returncode}) on case {name}\n"
            f"command: {' '.join(cmd)}\n"
            f"env: {env_extra or {}}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}\n"
            f"module:\n{mlir if len(mlir) < 4000 else mlir[:4000] + '...'}",
            pytrace=False,
        )
    with np.load(out_path) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------------------
# MLIR text helpers
# ---------------------------------------------------------------------------


def f32s(value):
    """A decimal literal that parses (as double) to exactly float32(value)."""
    text = repr(float(np.float32(value)))
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def qtype(storage, scale, zp, qrange=None):
    st = storage if qrange is None else f"{storage}<{qrange[0]}:{qrange[1]}>"
    return f"!quant.uniform<{st}:f32, {f32s(scale)}:{zp}>"


def wtype(scales, per_channel):
    scales = np.atleast_1d(np.asarray(scales, np.float32))
    if not per_channel:
        assert scales.size == 1
        return f"!quant.uniform<i8:f32, {f32s(scales[0])}>"
    return ("!quant.uniform<i8:f32:0, {"
            + ", ".join(f32s(s) for s in scales) + "}>")


def tshape(shape, elem):
    return "tensor<" + "x".join(str(d) for d in shape) + f"x{elem}>"


def dense(arr):
    return f"dense<{json.dumps(np.asarray(arr).tolist())}>"


def act_attrs(act, clamp):
    attrs = [f"activation = #qnt.activation<{act}>"]
    if act == "clamp":
        attrs += [f"clamp_max = {f32s(clamp[1])} : f32",
                  f"clamp_min = {f32s(clamp[0])} : f32"]
    return attrs


# ---------------------------------------------------------------------------
# Independent numpy reference
# ---------------------------------------------------------------------------


class QParams:
    def __init__(self, storage, scale, zp, qrange=None):
        self.storage = storage
        self.scale = np.float32(scale)
        self.zp = int(zp)
        full = {"u8": (0, 255), "i8": (-128, 127)}[storage]
        self.qmin, self.qmax = qrange if qrange is not None else full
        self.qrange = qrange

    @property
    def mlir(self):
        return qtype(self.storage, self.scale, self.zp, self.qrange)


def ref_quantize(x, qp):
    x = np.asarray(x, dtype=np.float32)
    inv = np.float32(1) / qp.scale
    v = np.rint(x * inv)  # float32 multiply, half to even
    q = np.clip(v.astype(np.float64) + qp.zp, qp.qmin, qp.qmax)
    return q.astype(np.int64)


def ref_dequantize(q, qp):
    return (np.asarray(q, np.int64) - qp.zp).astype(np.float32) * qp.scale


def ref_multipliers(s_in, s_w, s_out):
    s_w = np.atleast_1d(np.asarray(s_w, np.float32)).astype(np.float64)
    m = (np.float64(np.float32(s_in)) * s_w) / np.float64(np.float32(s_out))
    return m.astype(np.float32)


def ref_act_bounds(act, out, clamp=None):
    inv = np.float32(1) / out.scale
    lo, hi = out.qmin, out.qmax

    def to_q(v):
        return out.zp + int(np.rint(np.float32(v) * inv))

    if act in ("relu", "relu6"):
        lo = max(lo, out.zp)
    if act == "relu6":
        hi = min(hi, to_q(6.0))
    if act == "clamp":
        lo = max(lo, to_q(clamp[0]))
        hi = min(hi, to_q(clamp[1]))
    assert lo <= hi
    return lo, hi


def ref_requantize(acc, m, out, lo, hi):
    acc = np.asarray(acc, np.int64)
    assert acc.min() >= INT32_MIN and acc.max() <= INT32_MAX, \
        "test bug: accumulator outside int32"
    v = np.rint(acc.astype(np.float32) * m)  # float32 multiply
    assert v.dtype == np.float32
    return np.clip(v.astype(np.int64) + out.zp, lo, hi)


def conv_out_hw(h, w, kh, kw, stride, pad, dil):
    oh = (h + pad[0] + pad[1] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pad[2] + pad[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def ref_conv_acc(q_in, z_in, w, bias, stride, pad, dil, groups):
    """int64 accumulators [N, OH, OW, OC]; padding contributes nothing."""
    n, h, wd, c = q_in.shape
    oc, kh, kw, cg = w.shape
    assert c == cg * groups and oc % groups == 0
    ocg = oc // groups
    oh, ow = conv_out_hw(h, wd, kh, kw, stride, pad, dil)
    d = np.asarray(q_in, np.int64) - z_in
    d = np.pad(d, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3]), (0, 0)))
    acc = np.zeros((n, oh, ow, oc), np.int64)
    w = np.asarray(w, np.int64)
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dil[0], j * dil[1]
                patch = d[:, r0:r0 + stride[0] * (oh - 1) + 1:stride[0],
                          c0:c0 + stride[1] * (ow - 1) + 1:stride[1],
                          g * cg:(g + 1) * cg]
                wk = w[g * ocg:(g + 1) * ocg, i, j, :]
                acc[..., g * ocg:(g + 1) * ocg] += np.einsum(
                    "nhwc,oc->nhwo", patch, wk)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return acc


def ref_conv_acc_naive(q_in, z_in, w, bias, stride, pad, dil, groups):
    """Scalar loops, only to cross-check ref_conv_acc on small shapes."""
    n, h, wd, c = q_in.shape
    oc, kh, kw, cg = w.shape
    ocg = oc // groups
    oh, ow = conv_out_hw(h, wd, kh, kw, stride, pad, dil)
    acc = np.zeros((n, oh, ow, oc), np.int64)
    for b in range(n):
        for y in range(oh):
            for x in range(ow):
                for o in range(oc):
                    g = o // ocg
                    s = 0 if bias is None else int(bias[o])
                    for i in range(kh):
                        for j in range(kw):
                            iy = y * stride[0] - pad[0] + i * dil[0]
                            ix = x * stride[1] - pad[2] + j * dil[1]
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue
                            for ci in range(cg):
                                s += (int(q_in[b, iy, ix, g * cg + ci]) -
                                      z_in) * int(w[o, i, j, ci])
                    acc[b, y, x, o] = s
    return acc


# ---------------------------------------------------------------------------
# Exact comparison
# ---------------------------------------------------------------------------


def check_exact(case, got, q_ref, out):
    """got: float32 output of quant-run; q_ref: expected integers."""
    q_ref = np.asarray(q_ref, np.int64)
    expected = ref_dequantize(q_ref, out)
    assert got.dtype == np.float32, f"{case}: output dtype {got.dtype}"
    assert got.shape == expected.shape, \
        f"{case}: output shape {got.shape}, expected {expected.shape}"
    with np.errstate(all="ignore"):
        got_q = np.rint(got.astype(np.float64) /
                        np.float64(out.scale)) + out.zp
    bad = ~(got == expected)
    print(f"[{case}] compared {got.size} elements, "
          f"{int(bad.sum())} mismatches; expected q in "
          f"[{q_ref.min()}, {q_ref.max()}], {np.unique(q_ref).size} "
          f"distinct values")
    if bad.any():
        idx = np.argwhere(bad)
        lines = [f"{case}: {len(idx)} of {got.size} elements differ "
                 f"(S_out={out.scale!r}, Z_out={out.zp}); first ones:"]
        for i in idx[:12]:
            t = tuple(int(k) for k in i)
            lines.append(f"  index {t}: expected q={int(q_ref[t])} "
                         f"(x={expected[t]!r}), got q={got_q[t]:.0f} "
                         f"(x={got[t]!r})")
        pytest.fail("\n".join(lines), pytrace=False)


def check_exact_int(case, got, q_ref):
    """got: integer storage output of quant-run."""
    q_ref = np.asarray(q_ref, np.int64)
    assert got.shape == q_ref.shape
    got = got.astype(np.int64)
    bad = got != q_ref
    print(f"[{case}] compared {got.size} elements, "
          f"{int(bad.sum())} mismatches")
    if bad.any():
        idx = np.argwhere(bad)
        lines = [f"{case}: {len(idx)} of {got.size} elements differ:"]
        for i in idx[:12]:
            t = tuple(int(k) for k in i)
            lines.append(f"  index {t}: expected q={int(q_ref[t])}, "
                         f"got q={int(got[t])}")
        pytest.fail("\n".join(lines), pytrace=False)


# ---------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------


def random_input(rng, shape, qp, margin=8):
    """Floats whose quantized values cover [qmin, qmax] plus clamped ones."""
    k = rng.integers(qp.qmin - margin, qp.qmax + margin + 1, size=shape)
    frac = rng.uniform(-0.45, 0.45, size=shape)
    return ((k - qp.zp + frac) * np.float64(qp.scale)).astype(np.float32)


def pick_weight_scales(rng, acc, s_in, out, lo, hi, per_channel):
    """Weight scales that spread each output channel over [lo, hi].

    The accumulators do not depend on the weight scales, so the scales are
    chosen after them: |acc| at the 90th percentile maps to about 80% of the
    output range (some values clamp, most do not).
    """
    oc = acc.shape[-1]
    mag = np.percentile(np.abs(acc.reshape(-1, oc)), 90, axis=0)
    mag = np.maximum(mag, 1.0)
    span = 0.8 * max(hi - out.zp, out.zp - lo, 1)
    target = span * np.float64(out.scale) / (np.float64(s_in) * mag)
    target *= rng.uniform(0.7, 1.3, size=oc)
    if not per_channel:
        target = np.array([np.median(target)])
    return target.astype(np.float32)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------


def conv_module(x_shape, w_int, bias, qin, wscales, per_channel, qout, act,
                clamp, stride, pad, dil, groups):
    n, h, w, c = x_shape
    oc, kh, kw, cg = w_int.shape
    oh, ow = conv_out_hw(h, w, kh, kw, stride, pad, dil)
    y_shape = (n, oh, ow, oc)
    attrs = act_attrs(act, clamp) + [
        f"dilation = array<i64: {dil[0]}, {dil[1]}>",
        f"groups = {groups} : i64",
        "pad = array<i64: " + ", ".join(str(p) for p in pad) + ">",
        f"stride = array<i64: {stride[0]}, {stride[1]}>",
    ]
    xf, xq = tshape(x_shape, "f32"), tshape(x_shape, "!qin")
    wi, wq = tshape(w_int.shape, "i8"), tshape(w_int.shape, "!w")
    yq, yf = tshape(y_shape, "!qout"), tshape(y_shape, "f32")
    operands = "%xq, %w"
    types = f"{xq}, {wq}"
    bias_line = ""
    if bias is not None:
        operands += ", %b"
        types += f", tensor<{oc}xi32>"
        bias_line = (f"  %b = arith.constant {dense(bias)} : "
                     f"tensor<{oc}xi32>\n")
    return f"""!qin = {qin.mlir}
!qout = {qout.mlir}
!w = {wtype(wscales, per_channel)}
func.func @main(%x: {xf} {{qnt.name = "x"}}) -> {yf} {{
  %xq = quant.qcast %x : {xf} to {xq}
  %wi = arith.constant {dense(w_int)} : {wi}
  %w = quant.scast %wi : {wi} to {wq}
{bias_line}  %y = qnt.conv2d {operands} {{{", ".join(attrs)}}} : ({types}) -> {yq}
  %r = quant.dcast %y : {yq} to {yf}
  return %r : {yf}
}}
"""


def run_conv_case(tmp_path, isa, name, x, qin, w_int, bias, qout, act,
                  stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1,
                  clamp=None, per_channel=True, wscales=None, seed=0):
    rng = np.random.default_rng(seed + 1000)
    q_in = ref_quantize(x, qin)
    acc = ref_conv_acc(q_in, qin.zp, w_int, bias, stride, pad, dil, groups)
    lo, hi = ref_act_bounds(act, qout, clamp)
    if wscales is None:
        wscales = pick_weight_scales(rng, acc, qin.scale, qout, lo, hi,
                                     per_channel)
    wscales = np.asarray(wscales, np.float32)
    m = ref_multipliers(qin.scale, wscales, qout.scale)
    q_ref = ref_requantize(acc, m, qout, lo, hi)
    mlir = conv_module(x.shape, w_int, bias, qin, wscales, per_channel, qout,
                       act, clamp, stride, pad, dil, groups)
    outs = run_quant_run(tmp_path, name, mlir, {"x": x}, ISA_ENVS[isa])
    check_exact(f"{name}/{isa}", outs["output"], q_ref, qout)


X86_IN_Z3 = dict(storage="u8", scale=0.05, zp=3, qrange=(0, 127))
X86_IN_Z64 = dict(storage="u8", scale=0.03125, zp=64, qrange=(0, 127))
X86_OUT_Z5 = dict(storage="u8", scale=0.1, zp=5, qrange=(0, 127))
X86_OUT_Z64 = dict(storage="u8", scale=0.0625, zp=64, qrange=(0, 127))

# name: (N, H, W, C, OC, KH, KW, stride, pad, dil, groups, act, in, out,
#        bias?, per-channel?)
CONV_CASES = {
    "basic_3x3_relu": (1, 7, 7, 3, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1,
                       "relu", X86_IN_Z3, X86_OUT_Z5, True, True),
    "stride2_asympad_batch2": (2, 9, 8, 5, 7, 3, 3, (2, 2), (1, 0, 1, 0),
                               (1, 1), 1, "none", X86_IN_Z64, X86_OUT_Z64,
                               True, True),
    "dilation2_relu6": (1, 9, 10, 7, 3, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2),
                        1, "relu6", X86_IN_Z3, X86_OUT_Z5, True, True),
    "groups2_clamp": (2, 6, 7, 6, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 2,
                      "clamp", X86_IN_Z64, X86_OUT_Z64, True, True),
    "groups2_wide_relu": (1, 8, 8, 16, 32, 3, 3, (1, 1), (1, 1, 1, 1),
                          (1, 1), 2, "relu", X86_IN_Z3, X86_OUT_Z5, True,
                          True),
    "depthwise5_stride2_relu": (2, 7, 7, 5, 5, 3, 3, (2, 2), (1, 1, 1, 1),
                                (1, 1), 5, "relu", X86_IN_Z3, X86_OUT_Z5,
                                True, True),
    "depthwise16_none": (1, 8, 9, 16, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1),
                         16, "none", X86_IN_Z64, X86_OUT_Z64, True, True),
    "pointwise_nobias_relu": (2, 5, 6, 7, 5, 1, 1, (1, 1), (0, 0, 0, 0),
                              (1, 1), 1, "relu", X86_IN_Z64, X86_OUT_Z5,
                              False, True),
    "kernel1x3_pertensor": (1, 4, 9, 5, 3, 1, 3, (1, 2), (0, 0, 1, 1),
                            (1, 1), 1, "none", X86_IN_Z3, X86_OUT_Z64, True,
                            False),
    "kernel5x5_stride2_relu6": (2, 11, 11, 3, 7, 5, 5, (2, 2), (2, 1, 2, 1),
                                (1, 1), 1, "relu6", X86_IN_Z64, X86_OUT_Z64,
                                True, True),
}


def test_reference_conv_self_check():
    """The vectorized numpy conv agrees with scalar loops (tests the test)."""
    rng = np.random.default_rng(7)
    for groups, c, oc, stride, pad, dil in [
            (1, 3, 4, (1, 1), (1, 1, 1, 1), (1, 1)),
            (1, 5, 2, (2, 1), (1, 0, 2, 0), (1, 2)),
            (2, 4, 6, (1, 2), (0, 1, 0, 1), (2, 1)),
            (3, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1))]:
        q = rng.integers(0, 128, size=(2, 6, 5, c))
        w = rng.integers(-128, 128, size=(oc, 3, 3, c // groups))
        b = rng.integers(-1000, 1000, size=oc)
        a = ref_conv_acc(q, 7, w, b, stride, pad, dil, groups)
        e = ref_conv_acc_naive(q, 7, w, b, stride, pad, dil, groups)
        assert np.array_equal(a, e)
    print("[reference self-check] conv reference matches scalar loops")


@ISA_PARAMS
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_x86(tmp_path, name, isa):
    (n, h, w, c, oc, kh, kw, stride, pad, dil, groups, act, qin_d, qout_d,
     has_bias, per_channel) = CONV_CASES[name]
    seed = sum(map(ord, name))
    rng = np.random.default_rng(seed)
    qin, qout = QParams(**qin_d), QParams(**qout_d)
    x = random_input(rng, (n, h, w, c), qin)
    w_int = rng.integers(-128, 128, size=(oc, kh, kw, c // groups),
                         dtype=np.int64)
    bias = None
    if has_bias:
        # Comparable to the accumulators' spread: bias matters.
        span = int(np.sqrt(kh * kw * c // groups) * 60 * 74)
        bias = rng.integers(-span, span + 1, size=oc)
    clamp = None
    if act == "clamp":
        # Bounds that are not multiples of S_out, so their rint matters.
        clamp = (float(np.float32(-23.4 * qout.scale)),
                 float(np.float32(37.6 * qout.scale)))
    if act == "relu6":
        # Make 6.0 fall inside the output range so relu6 clamps something:
        # the output scale is chosen so rint(6/S) is well below qmax - zp.
        qout = QParams(qout.storage, np.float32(6.0 / 40.3), qout.zp,
                       qout.qrange)
    run_conv_case(tmp_path, isa, name, x, qin, w_int, bias, qout, act,
                  stride, pad, dil, groups, clamp, per_channel, seed=seed)


# Requantization ties: power-of-two scales make float(acc) * M land exactly
# on k + 0.5 for many accumulators; with an odd Z_out, rint(v) + Z differs
# from rint(v + Z) there (oneDNN adds the zero point before rounding).
# name: (act, Z_out, output range, per-channel weight scales)
REQUANT_TIE_CASES = {
    "odd_zout65_none": ("none", 65, (0, 127),
                        [0.25, 0.125, 0.5, 0.0625, 0.25]),
    "odd_zout7_relu": ("relu", 7, (0, 127), [0.5, 0.25, 0.125, 0.25, 0.5]),
    "odd_zout129_fullrange": ("none", 129, None,
                              [0.125, 0.25, 0.0625, 0.5, 0.25]),
}


@ISA_PARAMS
@pytest.mark.parametrize("name", list(REQUANT_TIE_CASES))
def test_conv2d_requant_ties(tmp_path, name, isa):
    act, z_out, out_range, wscales = REQUANT_TIE_CASES[name]
    seed = sum(map(ord, name))
    rng = np.random.default_rng(seed)
    qin = QParams("u8", 0.5, 3, (0, 127))
    qout = QParams("u8", 0.25, z_out, out_range)
    x = random_input(rng, (2, 6, 5, 3), qin)
    # Small inputs and weights keep |acc| * M inside the output range.
    x = np.clip(x, np.float32(-2.0), np.float32(10.0))
    oc = len(wscales)
    w_int = rng.integers(-4, 5, size=(oc, 3, 3, 3), dtype=np.int64)
    bias = rng.integers(-25, 26, size=oc)
    wscales = np.array(wscales, np.float32)
    m = ref_multipliers(qin.scale, wscales, qout.scale)
    acc = ref_conv_acc(ref_quantize(x, qin), qin.zp, w_int, bias, (1, 1),
                       (1, 1, 1, 1), (1, 1), 1)
    v = acc.astype(np.float32) * m
    ties = int((v - np.floor(v) == 0.5).sum())
    print(f"[{name}] {ties} of {v.size} requantized values are exact ties")
    assert ties > v.size // 10  # test sanity
    run_conv_case(tmp_path, isa, f"requant_ties_{name}", x, qin, w_int, bias,
                  qout, act, stride=(1, 1), pad=(1, 1, 1, 1), dil=(1, 1),
                  groups=1, per_channel=True, wscales=wscales, seed=seed)


# ---------------------------------------------------------------------------
# Extreme values
# ---------------------------------------------------------------------------


def extreme_weights(rng, oc, kh, kw, c, values):
    """Per output channel a different worst-case pattern."""
    vmax, vmin = values
    pats = []
    for o in range(oc):
        kind = o % 6
        if kind == 0:
            p = np.full((kh, kw, c), vmax)
        elif kind == 1:
            p = np.full((kh, kw, c), vmin)
        elif kind == 2:
            p = np.full((kh, kw, c), -127)
        elif kind == 3:  # alternating along the channel (pairs cancel)
            p = np.where(np.arange(c) % 2 == 0, vmax, vmin)
            p = np.broadcast_to(p, (kh, kw, c))
        elif kind == 4:  # pairs of equal sign, sign flips every two
            p = np.where((np.arange(c) // 2) % 2 == 0, vmax, vmin)
            p = np.broadcast_to(p, (kh, kw, c))
        else:
            p = rng.choice([vmax, vmin, -127], size=(kh, kw, c))
        pats.append(np.array(p, dtype=np.int64))
    return np.stack(pats)


# name: (input kind, C, in params, weight extremes, bias, act)
# bias: None, "small" (|b| < 3e5, keeps the oneDNN path eligible) or "huge"
# (|b| > 2^24: the runtime must not let oneDNN add it in float).
FULL_RANGE_IN = dict(storage="u8", scale=0.0078125, zp=0)
FULL_RANGE_OUT = dict(storage="u8", scale=0.25, zp=128)
X86_IN_127 = dict(storage="u8", scale=0.015625, zp=0, qrange=(0, 127))
EXTREME_CASES = {
    # Full-range u8 (oneDNN vpmaddubsw would saturate 255*127*2 > 32767).
    "fullrange_all255_c16": ("all_max", 16, FULL_RANGE_IN, (127, -128),
                             "small", "none"),
    "fullrange_all255_c32_nobias": ("all_max", 32, FULL_RANGE_IN,
                                    (127, -128), None, "none"),
    "fullrange_all255_c16_relu": ("all_max", 16, FULL_RANGE_IN, (127, -127),
                                  "small", "relu"),
    "fullrange_high_c24": ("high", 24, FULL_RANGE_IN, (127, -128), "small",
                           "none"),
    "fullrange_all255_c16_hugebias": ("all_max", 16, FULL_RANGE_IN,
                                      (127, -128), "huge", "none"),
    # acc beyond 2^24 (float(acc) rounds), with a bias.
    "fullrange_all255_c64": ("all_max", 64, FULL_RANGE_IN, (127, -128),
                             "small", "none"),
    # Full-range u8 with a nonzero input zero point.
    "fullrange_zp100_c16": ("all_max", 16,
                            dict(storage="u8", scale=0.0078125, zp=100),
                            (127, -128), "small", "none"),
    # x86 preset [0, 127] at 127: no saturation possible, oneDNN path.
    "x86_all127_c16": ("all_max", 16, X86_IN_127, (127, -128), "small",
                       "none"),
    "x86_all127_c32_nobias": ("all_max", 32, X86_IN_127, (127, -128), None,
                              "none"),
    "x86_all127_c32_zp3_relu": ("all_max", 32,
                                dict(storage="u8", scale=0.015625, zp=3,
                                     qrange=(0, 127)), (127, -128), "small",
                                "relu"),
}


@ISA_PARAMS
@pytest.mark.parametrize("name", list(EXTREME_CASES))
def test_conv2d_extreme(tmp_path, name, isa):
    kind, c, qin_d, values, bias_kind, act = EXTREME_CASES[name]
    seed = sum(map(ord, name))
    rng = np.random.default_rng(seed)
    qin, qout = QParams(**qin_d), QParams(**FULL_RANGE_OUT)
    shape = (2, 6, 7, c)
    if kind == "all_max":
        # Far above the range: every element quantizes to qmax.
        x = np.full(shape, np.float32(qin.scale) * (qin.qmax + 1000),
                    np.float32)
        x[1, ::2, ::3, :] = np.float32(1e4)
    else:
        k = rng.integers(qin.qmax - 40, qin.qmax + 1, size=shape)
        x = ((k - qin.zp) * np.float64(qin.scale)).astype(np.float32)
    q_in = ref_quantize(x, qin)
    if kind == "all_max":
        assert (q_in == qin.qmax).all()
    oc = 12
    w_int = extreme_weights(rng, oc, 3, 3, c, values)
    bias = None
    if bias_kind is not None:
        bias = rng.integers(-300000, 300001, size=oc)
    if bias_kind == "huge":
        bias[0] = INT32_MAX - 20_000_000  # acc stays inside int32
        bias[1] = -(2**24) - 12345
        bias[2] = 2**24 + 3
    run_conv_case(tmp_path, isa, name, x, qin, w_int, bias, qout, act,
                  stride=(1, 1), pad=(1, 1, 1, 1), dil=(1, 1), groups=1,
                  per_channel=True, seed=seed)


# ---------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------


def linear_module(x_shape, w_int, bias, qin, wscales, per_channel, qout,
                  act):
    m, k = x_shape
    n = w_int.shape[0]
    xf, xq = tshape((m, k), "f32"), tshape((m, k), "!qin")
    wi, wq = tshape((n, k), "i8"), tshape((n, k), "!w")
    yq, yf = tshape((m, n), "!qout"), tshape((m, n), "f32")
    operands, types, bias_line = "%xq, %w", f"{xq}, {wq}", ""
    if bias is not None:
        operands += ", %b"
        types += f", tensor<{n}xi32>"
        bias_line = f"  %b = arith.constant {dense(bias)} : tensor<{n}xi32>\n"
    return f"""!qin = {qin.mlir}
!qout = {qout.mlir}
!w = {wtype(wscales, per_channel)}
func.func @main(%x: {xf} {{qnt.name = "x"}}) -> {yf} {{
  %xq = quant.qcast %x : {xf} to {xq}
  %wi = arith.constant {dense(w_int)} : {wi}
  %w = quant.scast %wi : {wi} to {wq}
{bias_line}  %y = qnt.linear {operands} {{{", ".join(act_attrs(act, None))}}} : ({types}) -> {yq}
  %r = quant.dcast %y : {yq} to {yf}
  return %r : {yf}
}}
"""


# name: (M, K, N, in, out, per-channel?, bias?, act, extreme?)
LINEAR_CASES = {
    "m1_perchannel_relu_zp3": (1, 37, 24, X86_IN_Z3, X86_OUT_Z5, True, True,
                               "relu", False),
    "m4_perchannel_relu_zp64": (4, 64, 20, X86_IN_Z64, X86_OUT_Z5, True,
                                True, "relu", False),
    "m1_pertensor_none_zp64": (1, 50, 17, X86_IN_Z64, X86_OUT_Z64, False,
                               True, "none", False),
    "m4_pertensor_relu_zp3": (4, 29, 13, X86_IN_Z3, X86_OUT_Z5, False, True,
                              "relu", False),
    "m4_perchannel_nobias_zp3": (4, 33, 6, X86_IN_Z3, X86_OUT_Z64, True,
                                 False, "none", False),
    "m4_fullrange_extreme": (4, 96, 8, dict(storage="u8", scale=0.0078125,
                                            zp=0), FULL_RANGE_OUT, True,
                             True, "none", True),
    "m1_fullrange_extreme_zp128_relu": (1, 64, 18,
                                        dict(storage="u8", scale=0.0078125,
                                             zp=128), FULL_RANGE_OUT, True,
                                        True, "relu", True),
}


@ISA_PARAMS
@pytest.mark.parametrize("name", list(LINEAR_CASES))
def test_linear(tmp_path, name, isa):
    m, k, n, qin_d, qout_d, per_channel, has_bias, act, extreme = \
        LINEAR_CASES[name]
    seed = sum(map(ord, name))
    rng = np.random.default_rng(seed)
    qin, qout = QParams(**qin_d), QParams(**qout_d)
    if extreme:
        x = np.full((m, k), np.float32(qin.scale) * 300, np.float32)
        x[-1, ::5] = np.float32(-1e3)  # quantizes to qmin
        w_int = extreme_weights(rng, n, 1, 1, k, (127, -128))[:, 0, 0, :]
    else:
        x = random_input(rng, (m, k), qin)
        w_int = rng.integers(-128, 128, size=(n, k), dtype=np.int64)
    q_in = ref_quantize(x, qin)
    bias = rng.integers(-40000, 40001, size=n) if has_bias else None
    acc = (q_in - qin.zp) @ w_int.T
    if bias is not None:
        acc = acc + bias
    lo, hi = ref_act_bounds(act, qout)
    wscales = pick_weight_scales(rng, acc, qin.scale, qout, lo, hi,
                                 per_channel)
    mult = ref_multipliers(qin.scale, wscales, qout.scale)
    q_ref = ref_requantize(acc, mult, qout, lo, hi)
    mlir = linear_module((m, k), w_int, bias, qin, wscales, per_channel,
                         qout, act)
    outs = run_quant_run(tmp_path, name, mlir, {"x": x}, ISA_ENVS[isa])
    check_exact(f"{name}/{isa}", outs["output"], q_ref, qout)


# ---------------------------------------------------------------------------
# add
# ---------------------------------------------------------------------------


def add_module(shape, qa, qb, qo, relu):
    f = tshape(shape, "f32")
    a, b, o = (tshape(shape, t) for t in ("!qa", "!qb", "!qo"))
    act = "relu" if relu else "none"
    return f"""!qa = {qa.mlir}
!qb = {qb.mlir}
!qo = {qo.mlir}
func.func @main(%a: {f} {{qnt.name = "a"}}, %b: {f} {{qnt.name = "b"}}) -> {f} {{
  %aq = quant.qcast %a : {f} to {a}
  %bq = quant.qcast %b : {f} to {b}
  %y = qnt.add %aq, %bq {{activation = #qnt.activation<{act}>}} : ({a}, {b}) -> {o}
  %r = quant.dcast %y : {o} to {f}
  return %r : {f}
}}
"""


def ref_add(q_a, qa, q_b, qb, qo, relu):
    r = ((q_a - qa.zp).astype(np.float32) * qa.scale +
         (q_b - qb.zp).astype(np.float32) * qb.scale)
    assert r.dtype == np.float32
    if relu:
        r = np.maximum(r, np.float32(0))
    inv = np.float32(1) / qo.scale
    v = np.rint(r * inv)
    return np.clip(v.astype(np.int64) + qo.zp, qo.qmin, qo.qmax)


ADD_CASES = {
    "fullrange": (dict(storage="u8", scale=0.1, zp=10),
                  dict(storage="u8", scale=0.0625, zp=200),
                  dict(storage="u8", scale=0.15, zp=80)),
    "x86_ranges": (dict(storage="u8", scale=0.05, zp=3, qrange=(0, 127)),
                   dict(storage="u8", scale=0.0703125, zp=64,
                        qrange=(0, 127)),
                   dict(storage="u8", scale=0.09, zp=45, qrange=(0, 127))),
    # Scales where r / So often lands on .5 ties.
    "ties": (dict(storage="u8", scale=0.25, zp=7),
             dict(storage="u8", scale=0.125, zp=130),
             dict(storage="u8", scale=0.25, zp=60)),
}


@pytest.mark.parametrize("relu", [False, True], ids=["none", "relu"])
@pytest.mark.parametrize("name", list(ADD_CASES))
def test_add(tmp_path, name, relu):
    qa, qb, qo = (QParams(**d) for d in ADD_CASES[name])
    seed = sum(map(ord, name)) + int(relu)
    rng = np.random.default_rng(seed)
    shape = (2, 5, 6, 7)
    a = random_input(rng, shape, qa, margin=20)
    b = random_input(rng, shape, qb, margin=20)
    # Boundary combinations: every pair of (qmin, zp, qmax) of a and b,
    # reached through far-out floats (clamped by qcast) or exact values.
    edges_a = [np.float32(-1e4), np.float32(0), np.float32(1e4)]
    edges_b = [np.float32(-1e4), np.float32(0), np.float32(1e4)]
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    i = 0
    for ea in edges_a:
        for eb in edges_b:
            flat_a[i], flat_b[i] = ea, eb
            i += 1
    # Sums that land exactly on the output's qmin/qmax and just beyond.
    for target in (qo.qmin - 1, qo.qmin, qo.qmax, qo.qmax + 1):
        for _ in range(5):
            k_a = int(rng.integers(qa.qmin, qa.qmax + 1))
            real = (target - qo.zp) * float(qo.scale) - \
                (k_a - qa.zp) * float(qa.scale)
            flat_a[i] = np.float32((k_a - qa.zp) * float(qa.scale))
            flat_b[i] = np.float32(real)
            i += 1
    q_a, q_b = ref_quantize(a, qa), ref_quantize(b, qb)
    q_ref = ref_add(q_a, qa, q_b, qb, qo, relu)
    # The data reaches both clamp boundaries of the output (test sanity).
    assert q_ref.max() == qo.qmax
    assert q_ref.min() == (max(qo.qmin, qo.zp) if relu else qo.qmin)
    mlir = add_module(shape, qa, qb, qo, relu)
    outs = run_quant_run(tmp_path, f"add_{name}", mlir, {"a": a, "b": b})
    check_exact(f"add_{name}/{'relu' if relu else 'none'}", outs["output"],
                q_ref, qo)


# ---------------------------------------------------------------------------
# batch_matmul (attention's scores and context)
# ---------------------------------------------------------------------------


def batch_matmul_module(a_shape, b_shape, out_shape, qa, qb, qo, transpose_b):
    fa, fb, fo = (tshape(s, "f32") for s in (a_shape, b_shape, out_shape))
    a, b, o = (tshape(s, t) for s, t in
               ((a_shape, "!qa"), (b_shape, "!qb"), (out_shape, "!qo")))
    attr = " {transpose_b}" if transpose_b else ""
    return f"""!qa = {qa.mlir}
!qb = {qb.mlir}
!qo = {qo.mlir}
func.func @main(%a: {fa} {{qnt.name = "a"}}, %b: {fb} {{qnt.name = "b"}}) -> {fo} {{
  %aq = quant.qcast %a : {fa} to {a}
  %bq = quant.qcast %b : {fb} to {b}
  %y = qnt.batch_matmul %aq, %bq{attr} : ({a}, {b}) -> {o}
  %r = quant.dcast %y : {o} to {fo}
  return %r : {fo}
}}
"""


BATCH_MATMUL_CASES = {
    # (batch, m, k, n), transpose_b, qa, qb, qo
    "scores_onednn": ((6, 9, 16, 9), True, dict(storage="u8", scale=0.05, zp=128),
                      dict(storage="u8", scale=0.04, zp=120),
                      dict(storage="u8", scale=0.3, zp=100)),
    "context_x86": ((4, 7, 33, 8), False,
                    dict(storage="u8", scale=1 / 128, zp=0, qrange=(0, 127)),
                    dict(storage="u8", scale=0.06, zp=64, qrange=(0, 127)),
                    dict(storage="u8", scale=0.02, zp=60, qrange=(0, 127))),
    # M = 0.5 and operands near their zero points: every odd accumulator
    # is a .5 tie, rounded to even before Z_out is added.
    "ties": ((2, 5, 6, 4), False, dict(storage="u8", scale=1 / 16, zp=101),
             dict(storage="u8", scale=1 / 16, zp=99),
             dict(storage="u8", scale=1 / 128, zp=101)),
    "s8": ((3, 4, 10, 5), True, dict(storage="i8", scale=0.05, zp=-5),
           dict(storage="i8", scale=0.07, zp=3),
           dict(storage="i8", scale=0.4, zp=-2)),
}


@ISA_PARAMS
@pytest.mark.parametrize("name", list(BATCH_MATMUL_CASES))
def test_batch_matmul(tmp_path, name, isa):
    (batch, m, k, n), transpose_b, qa_d, qb_d, qo_d = BATCH_MATMUL_CASES[name]
    qa, qb, qo = QParams(**qa_d), QParams(**qb_d), QParams(**qo_d)
    rng = np.random.default_rng(sum(map(ord, name)))
    b_shape = (batch, n, k) if transpose_b else (batch, k, n)
    if name == "ties":
        a = rng.integers(-12, 13, size=(batch, m, k)) * np.float32(qa.scale)
        b = rng.integers(-12, 13, size=b_shape) * np.float32(qb.scale)
        a, b = a.astype(np.float32), b.astype(np.float32)
        a.flat[0], b.flat[0] = 1e4, 1e4  # the ends of the output range
        a.flat[1], b.flat[1] = -1e4, 1e4
    else:
        a = random_input(rng, (batch, m, k), qa)
        b = random_input(rng, b_shape, qb)
    q_a, q_b = ref_quantize(a, qa), ref_quantize(b, qb)
    b_kn = np.swapaxes(q_b, 1, 2) if transpose_b else q_b
    acc = np.matmul(q_a - qa.zp, b_kn - qb.zp)
    mult = ref_multipliers(qa.scale, qb.scale, qo.scale)
    q_ref = ref_requantize(acc, mult, qo, qo.qmin, qo.qmax)
    # The outputs reach both ends of the range (test sanity), and the ties
    # case has ties.
    assert q_ref.min() == qo.qmin and q_ref.max() == qo.qmax
    if name == "ties":
        assert (acc % 2 == 1).sum() >= 10
    mlir = batch_matmul_module(a.shape, b_shape, q_ref.shape, qa, qb, qo,
                               transpose_b)
    outs = run_quant_run(tmp_path, f"bmm_{name}", mlir, {"a": a, "b": b},
                         ISA_ENVS[isa])
    check_exact(f"bmm_{name}/{isa}", outs["output"], q_ref, qo)


# ---------------------------------------------------------------------------
# quantize rounding at exact .5 ties
# ---------------------------------------------------------------------------

TIE_CASES = {
    "u8_S0.25_Z11": dict(storage="u8", scale=0.25, zp=11),  # odd zp
    "u8_S0.25_Z10": dict(storage="u8", scale=0.25, zp=10),
    "u8x86_S0.5_Z3": dict(storage="u8", scale=0.5, zp=3, qrange=(0, 127)),
    "i8_S0.25_Zm3": dict(storage="i8", scale=0.25, zp=-3),
    "i8_S0.0625_Z0": dict(storage="i8", scale=0.0625, zp=0),
}


def tie_inputs(qp):
    """x = (k + 0.5) * S for k covering [qmin - Z - 6, qmax - Z + 5]."""
    ks = np.arange(qp.qmin - qp.zp - 6, qp.qmax - qp.zp + 6)
    x = ((ks + 0.5) * np.float64(qp.scale)).astype(np.float32)
    # S is a power of two: x * (1/S) is exactly k + 0.5.
    inv = np.float32(1) / qp.scale
    assert np.array_equal((x * inv).astype(np.float64), ks + 0.5)
    return x


def check_tie_reference(x, qp, q_ref):
    """Hand-checkable facts about the reference itself."""
    v = x.astype(np.float64) / np.float64(qp.scale)  # k + 0.5
    k = np.floor(v).astype(np.int64)
    even = np.where(k % 2 == 0, k, k + 1)  # half to even
    assert np.array_equal(q_ref, np.clip(even + qp.zp, qp.qmin, qp.qmax))
    assert q_ref.min() == qp.qmin and q_ref.max() == qp.qmax


def tie_case(name):
    """Parameters, inputs on exact .5 ties, their reference integers, and the
    float / quantized tensor types of a tie case."""
    qp = QParams(**TIE_CASES[name])
    x = tie_inputs(qp)
    q_ref = ref_quantize(x, qp)
    check_tie_reference(x, qp, q_ref)
    return qp, x, q_ref, tshape(x.shape, "f32"), tshape(x.shape, "!q")


@pytest.mark.parametrize("name", list(TIE_CASES))
def test_quantize_ties_qcast_dcast(tmp_path, name):
    """qcast -> dcast only: half-to-even rounding and clamping."""
    qp, x, q_ref, t, tq = tie_case(name)
    mlir = f"""!q = {qp.mlir}
func.func @main(%x: {t} {{qnt.name = "x"}}) -> {t} {{
  %q = quant.qcast %x : {t} to {tq}
  %r = quant.dcast %q : {tq} to {t}
  return %r : {t}
}}
"""
    outs = run_quant_run(tmp_path, f"ties_{name}", mlir, {"x": x})
    check_exact(f"ties_qcast_dcast_{name}", outs["output"], q_ref, qp)


@pytest.mark.parametrize("name", list(TIE_CASES))
def test_quantize_ties_storage_result(tmp_path, name):
    """qcast alone, the quantized result returned as its storage integers."""
    qp, x, q_ref, t, tq = tie_case(name)
    mlir = f"""!q = {qp.mlir}
func.func @main(%x: {t} {{qnt.name = "x"}}) -> {tq} {{
  %q = quant.qcast %x : {t} to {tq}
  return %q : {tq}
}}
"""
    outs = run_quant_run(tmp_path, f"ties_storage_{name}", mlir, {"x": x})
    got = outs["output"]
    assert got.dtype == {"u8": np.uint8, "i8": np.int8}[qp.storage], got.dtype
    check_exact_int(f"ties_storage_{name}", got, q_ref)
