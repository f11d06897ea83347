"""qnt's pooling, mul, cat, hardswish, sigmoid, tanh, SiLU, relu, batch
norm, constant padding and nearest / bilinear resizing against PyTorch's
quantized ops (torch.ops.quantized, F.* on quantized tensors), in float
between quant.dcast and quant.qcast and in integer code (test_op_integer).

In the float path (test_op) qnt runs max pooling on the quantized integers
(same scale and zero point in and out, exact) and the other ops in FLOAT
between quant.dcast and quant.qcast (docs/numerics.md):

    out = qcast_out(f(dcast_in(q)))      dcast: f32(q - Z) * S
                                         qcast: clamp(rint(x * f32(1/S)) + Z)

Both sides get IDENTICAL integers: PyTorch gets the quantized tensor built
from the integers (torch._make_per_tensor_quantized_tensor), we get the
floats f32(q - Z) * S, which our quant.qcast turns back into q (checked). Our
side is hand-written MLIR (one module per op with every case, run once with
quant-run) in the form qnt's exporter writes (python/qnt/export.py), NHWC;
PyTorch's side is NCHW (plus some channels-last inputs for cat). Every op runs
on every quantized engine of this build (onednn, qnnpack here): PyTorch
dispatches pooling, hardswish and sigmoid to QNNPACK kernels when the engine
is qnnpack.

Per op and engine the test prints the share of exactly equal output integers
and the max difference in LSB, and asserts the tolerance (TOLERANCE below).
Average pooling: TOSA never counts padding in the divisor, so the
count_include_pad=True cases pad explicitly with zeros first, as the
exporter does (tosa.pad of the dequantized input, then tosa.avg_pool2d).
Systematic differences beyond 1 LSB are strict xfails; the formulas are in
docs/numerics-vs-pytorch.md ("Ops that run in float between quantize and
dequantize").
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import test_int8_reference as t8  # noqa: E402  (helpers only, no tests)
from qnt.ops.shape import _resize_axis  # noqa: E402  (the exporter's parameters)

torch = pytest.importorskip("torch")
F = torch.nn.functional

f32 = np.float32
F32_MAX = "3.40282347e+38"

ENGINES = [e for e in ("fbgemm", "x86", "onednn", "qnnpack")
           if e in torch.backends.quantized.supported_engines]
ENGINE_PARAMS = pytest.mark.parametrize("engine", ENGINES)

# Max |ours - PyTorch| in LSB per op (every engine), as observed; reasons:
TOLERANCE = {
    # both sides pick the same integer (the maximum is scale-independent)
    "max_pool2d": 0,
    # same integer sum; generic adds Z_out before rint (odd Z flips exact
    # .5), both use f32(1/div)-style multipliers that move near-.5 values
    "avg_pool2d": 1,
    "adaptive_avg_pool2d": 1,
    # same float32 dequantize, product and quantize on every element seen
    "mul": 0,
    "mul_relu": 0,
    # same float32 dequantize and quantize on every element seen
    "cat": 0,
    # qnnpack's table adds Z_out before rint (exact .5 with odd Z_out)
    "hardswish": 1,
    # same values on every element seen (1/256 output steps, no ties hit)
    "sigmoid": 0,
    # PyTorch folds the batch norm into one multiply-add per channel, as
    # qnt.batch_norm does: the same integers on every element seen (the
    # float path, dequantize -> x * alpha + shift -> quantize, too)
    "batch_norm": 0,
    "batch_norm_relu": 0,
    # both pad with the fill quantized to the input's parameters (clamped)
    "pad": 0,
    # nearest: the same source pixel (floor(o * f32(in / out)))
    "upsample_nearest": 0,
    # bilinear: TOSA's float weights (exact rationals) against PyTorch's f32
    # lambdas move near-.5 values by 1 LSB in the float path
    "upsample_bilinear": 1,
    # libm's tanh / expf against TOSA's (math dialect) approximations
    "tanh": 1,
    "silu": 1,
    "relu": 0,
}

# The same in integer code: tables and requantization follow the float
# formulas element by element, so the tolerances are the float path's.
INTEGER_TOLERANCE = dict(TOLERANCE)
# qnt.resize computes PyTorch's f32 tables and weighting, and the unary
# tables are computed with the host's libm, as PyTorch's kernels.
INTEGER_TOLERANCE.update({"upsample_bilinear": 0, "tanh": 0, "silu": 0})

N_CASES = {"max_pool2d": 40, "avg_pool2d": 60, "adaptive_avg_pool2d": 30,
           "mul": 40, "mul_relu": 30, "cat": 40, "hardswish": 40,
           "sigmoid": 40, "batch_norm": 30, "batch_norm_relu": 30,
           "pad": 30, "upsample_nearest": 40, "upsample_bilinear": 40,
           "tanh": 30, "silu": 30, "relu": 20}

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


# ---------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------


class Case:
    pass


def rand_qp(rng, ties):
    """u8 [0, 255]; ties: power-of-two scales (many exact .5 results)."""
    s = 2.0**-int(rng.integers(2, 7)) if ties else rng.uniform(0.005, 0.1)
    return t8.QParams("u8", f32(s), int(rng.integers(0, 256)))


def out_qp(rng, lo, hi, ties):
    """Output parameters covering about [lo, hi] (a little clamping)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    span = max(hi - lo, 1e-3) * rng.uniform(0.85, 1.05)
    s = span / 255
    if ties:
        s = 2.0**np.round(np.log2(s))
    z = int(np.clip(np.rint(-lo / s), 0, 255))
    return t8.QParams("u8", f32(s), z)


def rand_ints(rng, shape, qp, ties):
    if ties:  # small values around Z: exact .5 in averages and products
        return np.clip(qp.zp + rng.integers(-40, 41, size=shape), 0, 255)
    return rng.integers(0, 256, size=shape)


def deq(q, qp):
    """Our quant.dcast (float32); quant.qcast gives q back (checked)."""
    x = t8.ref_dequantize(q, qp)
    assert np.array_equal(t8.ref_quantize(x, qp), q)
    return x


def rand_nhwc(rng, lo_hw=1):
    n = int(rng.choice([1, 2, 2]))
    h, w = (int(v) for v in rng.integers(lo_hw, 13, size=2))
    c = int(rng.choice([1, 3, 5, 7, 8, 13, 17]))
    return n, h, w, c


def gen_pool(rng, i, op):
    c = Case()
    c.ties = i % 3 == 2
    c.qin = rand_qp(rng, c.ties)
    c.qout = c.qin  # PyTorch keeps the input parameters
    if op == "adaptive_avg_pool2d":
        c.shape = rand_nhwc(rng)
        n, h, w, ch = c.shape
        c.kernel, c.stride, c.pad, c.cip = (h, w), (h, w), (0, 0), False
    else:
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        if kh * kw == 1:  # QNNPACK rejects 1x1 pooling ("meaningless")
            kw = 2
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = (int(rng.integers(0, k // 2 + 1)) for k in (kh, kw))
        c.kernel, c.stride, c.pad = (kh, kw), (sh, sw), (ph, pw)
        n, h, w, ch = rand_nhwc(rng)
        h, w = max(h, kh - 2 * ph), max(w, kw - 2 * pw)
        c.shape = (n, h, w, ch)
        c.cip = bool(i % 2) if op == "avg_pool2d" else False
    c.q = [rand_ints(rng, c.shape, c.qin, c.ties)]
    c.qps = [c.qin]
    c.desc = (f"{c.shape} k{c.kernel} s{c.stride} p{c.pad} "
              f"cip={c.cip} {'ties' if c.ties else 'random'}")
    return c


def gen_mul(rng, i, op):
    c = Case()
    c.ties = i % 3 == 2
    c.shape = rand_nhwc(rng)
    n, h, w, ch = c.shape
    bshape = c.shape if i % 4 else (1, 1, 1, ch)  # some broadcasts
    qa, qb = rand_qp(rng, c.ties), rand_qp(rng, c.ties)
    c.qps = [qa, qb]
    c.q = [rand_ints(rng, c.shape, qa, c.ties),
           rand_ints(rng, bshape, qb, c.ties)]
    p = (deq(c.q[0], qa).astype(np.float64) *
         deq(c.q[1], qb).astype(np.float64))
    lo = 0.0 if op == "mul_relu" and i % 2 else p.min()
    c.qout = out_qp(rng, lo, p.max(), c.ties)
    c.desc = f"{c.shape} * {bshape} {'ties' if c.ties else 'random'}"
    return c


def gen_cat(rng, i, op):
    c = Case()
    c.ties = i % 3 == 2
    c.dim = int(rng.choice([1, 1, 0, 2, 3]))
    base = list(rand_nhwc(rng))
    k = int(rng.integers(2, 4))
    axis = NCHW_TO_NHWC_AXIS[c.dim]
    shapes = []
    for _ in range(k):
        s = list(base)
        s[axis] = int(rng.integers(1, 6))
        shapes.append(tuple(s))
    c.same = i % 8 == 7  # every input and the output share the parameters
    c.channels_last = i % 2 == 1  # PyTorch's NHWC cat kernel (dim 1)
    c.qps = [rand_qp(rng, c.ties) for _ in range(k)]
    if c.same:
        c.qps = [c.qps[0]] * k
    c.q = [rand_ints(rng, s, qp, c.ties) for s, qp in zip(shapes, c.qps)]
    vals = [deq(q, qp) for q, qp in zip(c.q, c.qps)]
    c.qout = (c.qps[0] if c.same else
              out_qp(rng, min(v.min() for v in vals),
                     max(v.max() for v in vals), c.ties))
    c.shape = shapes
    c.desc = (f"{shapes} dim{c.dim} {'same ' if c.same else ''}"
              f"{'channels_last ' if c.channels_last else ''}"
              f"{'ties' if c.ties else 'random'}")
    return c


def gen_unary(rng, i, op):
    c = Case()
    c.ties = i % 3 == 2
    c.shape = rand_nhwc(rng)
    c.qin = rand_qp(rng, c.ties)
    if not c.ties:  # inputs over about [-12, 12]
        c.qin = t8.QParams("u8", f32(rng.uniform(0.01, 0.1)),
                           int(rng.integers(0, 256)))
    c.qps = [c.qin]
    c.q = [rand_ints(rng, c.shape, c.qin, c.ties)]
    x = deq(c.q[0], c.qin).astype(np.float64)
    if op == "sigmoid":
        c.qout = t8.QParams("u8", f32(1.0 / 256), 0)  # PyTorch's fixed
    elif op == "tanh":
        c.qout = t8.QParams("u8", f32(2.0 / 256), 128)  # PyTorch's fixed
    elif op == "relu":
        c.qout = c.qin  # shares its input's parameters
    else:
        y = (x * np.clip(x + 3, 0, 6) / 6 if op == "hardswish"
             else x / (1 + np.exp(-x)))
        c.qout = out_qp(rng, y.min(), y.max(), c.ties)
    c.desc = f"{c.shape} {'ties' if c.ties else 'random'}"
    return c


def shared_qparams_case(rng, i):
    """A random u8 NHWC input for an op whose result keeps its parameters."""
    c = Case()
    c.ties = i % 3 == 2
    c.shape = rand_nhwc(rng)
    c.qin = rand_qp(rng, c.ties)
    c.qout = c.qin
    c.qps = [c.qin]
    c.q = [rand_ints(rng, c.shape, c.qin, c.ties)]
    return c


def gen_pad(rng, i, op):
    """Constant padding: zero, a value inside the range, a .5 tie of the
    grid, and one outside the range (clamped)."""
    c = shared_qparams_case(rng, i)
    c.pads = [int(v) for v in rng.integers(0, 4, size=4)]  # top bottom left right
    s, z = float(c.qin.scale), c.qin.zp
    c.fill = float(f32([0.0, rng.uniform(-z * s, (255 - z) * s),
                        (int(rng.integers(-z, 256 - z)) + 0.5) * s, 1e4][i % 4]))
    c.desc = f"{c.shape} pad {c.pads} value {c.fill}"
    return c


def gen_resize(rng, i, op):
    """F.interpolate: to a random size (down and up) or by a factor, and
    for bilinear with and without align_corners."""
    c = shared_qparams_case(rng, i)
    c.mode = "nearest" if op == "upsample_nearest" else "bilinear"
    c.align = c.mode == "bilinear" and i % 2 == 1
    c.factor = None
    if i % 4 == 0 and not c.align:
        c.factor = float(rng.choice([2.0, 3.0, 1.5, 0.5]))
        c.size = [max(int(math.floor(d * c.factor)), 1) for d in c.shape[1:3]]
    else:
        c.size = [int(v) for v in rng.integers(1, 17, size=2)]
    c.desc = (f"{c.shape} -> {c.size} {c.mode}{' align_corners' if c.align else ''}"
              f"{f' factor {c.factor}' if c.factor else ''} "
              f"{'ties' if c.ties else 'random'}")
    return c


def gen_batch_norm(rng, i, op):
    """A batch norm that no conv precedes (densenet), PyTorch's eval-mode
    parameters; ours is the exporter's x * alpha + shift, alpha and shift
    computed in float32 as python/qnt/export.py does."""
    c = Case()
    c.ties = i % 3 == 2
    c.shape = rand_nhwc(rng)
    ch = c.shape[3]
    c.qin = rand_qp(rng, c.ties)
    c.qps = [c.qin]
    c.q = [rand_ints(rng, c.shape, c.qin, c.ties)]
    c.eps = 1e-5
    c.mean = rng.uniform(-1, 1, ch).astype(f32)
    c.var = rng.uniform(0.2, 2, ch).astype(f32)
    c.gamma = rng.uniform(0.5, 1.5, ch).astype(f32)
    c.beta = rng.uniform(-0.5, 0.5, ch).astype(f32)
    c.alpha = f32(1) / np.sqrt(c.var + f32(c.eps)) * c.gamma
    c.shift = c.beta - c.mean * c.alpha
    y = deq(c.q[0], c.qin).astype(np.float64) * c.alpha + c.shift
    lo = 0.0 if op == "batch_norm_relu" else y.min()
    c.qout = out_qp(rng, lo, y.max(), c.ties)
    c.desc = f"{c.shape} {'ties' if c.ties else 'random'}"
    return c


GENERATORS = {"max_pool2d": gen_pool, "avg_pool2d": gen_pool,
              "adaptive_avg_pool2d": gen_pool, "mul": gen_mul,
              "mul_relu": gen_mul, "cat": gen_cat, "hardswish": gen_unary,
              "sigmoid": gen_unary, "batch_norm": gen_batch_norm,
              "batch_norm_relu": gen_batch_norm, "pad": gen_pad,
              "upsample_nearest": gen_resize, "upsample_bilinear": gen_resize,
              "tanh": gen_unary, "silu": gen_unary, "relu": gen_unary}
_CASES = {}


def cases(op):
    if op not in _CASES:
        rng = np.random.default_rng(2000 + 31 * len(op) + ord(op[0]))
        _CASES[op] = [GENERATORS[op](rng, i, op) for i in range(N_CASES[op])]
    return _CASES[op]


# ---------------------------------------------------------------------------
# Our side: one module per op with every case
# ---------------------------------------------------------------------------


def pool_out_hw(h, w, kernel, stride, pad):
    """PyTorch's output size (floor mode)."""
    return tuple((d + 2 * p - k) // s + 1 for d, k, s, p in
                 zip((h, w), kernel, stride, pad))


def tosa_pad(c):
    """The exporter's windows: TOSA needs in + pad_top + pad_bottom - kernel
    divisible by the stride; rows PyTorch never reads are cropped (our input
    only) and the bottom / right padding shortened (never more than
    PyTorch's, so the divisor of count_include_pad=False is the same)."""
    n, h, w, ch = c.shape
    oh, ow = pool_out_hw(h, w, c.kernel, c.stride, c.pad)
    pad, size = [], [n, h, w, ch]
    for j, (o, k, s, p) in enumerate(zip((oh, ow), c.kernel, c.stride,
                                         c.pad)):
        extra = (o - 1) * s + k - size[1 + j] - p
        if extra < 0:
            size[1 + j] += extra
            extra = 0
        pad += [p, extra]
    return (oh, ow), pad, tuple(size)


def pool_line(c, i, op):
    qin = c.qin.mlir
    (oh, ow), pad, size = tosa_pad(c)
    n, h, w, ch = size
    c.our_inputs = [deq(c.q[0][:, :h, :w, :], c.qin)]
    xf, xq = t8.tshape(size, "f32"), t8.tshape(size, qin)
    out = (n, oh, ow, ch)
    c.out_shape = out
    yq = t8.tshape(out, qin)
    yf = t8.tshape(out, "f32")
    win = (f"kernel = array<i64: {c.kernel[0]}, {c.kernel[1]}>, "
           f"stride = array<i64: {c.stride[0]}, {c.stride[1]}>")
    body = f"  %xq{i} = quant.qcast %x{i}_0 : {xf} to {xq}\n"
    if op == "max_pool2d":
        body += (f"  %y{i} = tosa.max_pool2d %xq{i} {{{win}, pad = array<i64: "
                 f"{pad[0]}, {pad[1]}, {pad[2]}, {pad[3]}>}} : ({xq}) -> "
                 f"{yq}\n")
        return body, yq
    body += (f"  %xd{i} = quant.dcast %xq{i} : {xq} to {xf}\n"
             f"  %zp{i} = \"tosa.const\"() {{values = dense<0.0> : "
             f"tensor<1xf32>}} : () -> tensor<1xf32>\n")
    src, st = f"%xd{i}", xf
    if c.cip and any(pad):
        # count_include_pad: explicit zero padding, then no TOSA padding.
        padded = (n, h + pad[0] + pad[1], w + pad[2] + pad[3], ch)
        st = t8.tshape(padded, "f32")
        body += (f"  %ps{i} = tosa.const_shape {{values = dense<[0, 0, "
                 f"{pad[0]}, {pad[1]}, {pad[2]}, {pad[3]}, 0, 0]> : "
                 f"tensor<8xindex>}} : () -> !tosa.shape<8>\n"
                 f"  %pv{i} = \"tosa.const\"() {{values = dense<0.0> : "
                 f"tensor<1xf32>}} : () -> tensor<1xf32>\n"
                 f"  %xp{i} = tosa.pad %xd{i}, %ps{i}, %pv{i} : ({xf}, "
                 f"!tosa.shape<8>, tensor<1xf32>) -> {st}\n")
        src, pad = f"%xp{i}", [0, 0, 0, 0]
    body += (f"  %a{i} = tosa.avg_pool2d {src}, %zp{i}, %zp{i} {{acc_type = "
             f"f32, {win}, pad = array<i64: {pad[0]}, {pad[1]}, {pad[2]}, "
             f"{pad[3]}>}} : ({st}, tensor<1xf32>, tensor<1xf32>) -> {yf}\n"
             f"  %y{i} = quant.qcast %a{i} : {yf} to {yq}\n")
    return body, yq


def shift_line(i):
    return (f"  %sh{i} = \"tosa.const\"() {{values = dense<0> : "
            f"tensor<1xi8>}} : () -> tensor<1xi8>\n")


def mul_line(c, i, op):
    c.our_inputs = [deq(q, qp) for q, qp in zip(c.q, c.qps)]
    c.out_shape = c.shape
    fa, fb = (t8.tshape(q.shape, "f32") for q in c.q)
    qa, qb = (t8.tshape(q.shape, qp.mlir) for q, qp in zip(c.q, c.qps))
    fo, yq = t8.tshape(c.shape, "f32"), t8.tshape(c.shape, c.qout.mlir)
    body = (f"  %aq{i} = quant.qcast %x{i}_0 : {fa} to {qa}\n"
            f"  %bq{i} = quant.qcast %x{i}_1 : {fb} to {qb}\n"
            f"  %ad{i} = quant.dcast %aq{i} : {qa} to {fa}\n"
            f"  %bd{i} = quant.dcast %bq{i} : {qb} to {fb}\n" + shift_line(i) +
            f"  %m{i} = tosa.mul %ad{i}, %bd{i}, %sh{i} : ({fa}, {fb}, "
            f"tensor<1xi8>) -> {fo}\n")
    res = f"%m{i}"
    if op == "mul_relu":
        body += (f"  %r{i} = tosa.clamp %m{i} {{min_val = 0.0 : f32, max_val "
                 f"= {F32_MAX} : f32}} : ({fo}) -> {fo}\n")
        res = f"%r{i}"
    body += f"  %y{i} = quant.qcast {res} : {fo} to {yq}\n"
    return body, yq


def cat_line(c, i, op):
    c.our_inputs = [deq(q, qp) for q, qp in zip(c.q, c.qps)]
    axis = NCHW_TO_NHWC_AXIS[c.dim]
    out = list(c.shape[0])
    out[axis] = sum(s[axis] for s in c.shape)
    c.out_shape = tuple(out)
    body, ds, fts = "", [], []
    for j, (s, qp) in enumerate(zip(c.shape, c.qps)):
        f, q = t8.tshape(s, "f32"), t8.tshape(s, qp.mlir)
        body += (f"  %q{i}_{j} = quant.qcast %x{i}_{j} : {f} to {q}\n"
                 f"  %d{i}_{j} = quant.dcast %q{i}_{j} : {q} to {f}\n")
        ds.append(f"%d{i}_{j}")
        fts.append(f)
    fo, yq = t8.tshape(out, "f32"), t8.tshape(out, c.qout.mlir)
    body += (f"  %c{i} = tosa.concat {', '.join(ds)} {{axis = {axis} : i32}} "
             f": ({', '.join(fts)}) -> {fo}\n"
             f"  %y{i} = quant.qcast %c{i} : {fo} to {yq}\n")
    return body, yq


def unary_line(c, i, op):
    c.our_inputs = [deq(c.q[0], c.qin)]
    c.out_shape = c.shape
    f, q = t8.tshape(c.shape, "f32"), t8.tshape(c.shape, c.qin.mlir)
    yq = t8.tshape(c.shape, c.qout.mlir)
    body = (f"  %xq{i} = quant.qcast %x{i}_0 : {f} to {q}\n"
            f"  %xd{i} = quant.dcast %xq{i} : {q} to {f}\n")
    if op == "sigmoid":
        body += f"  %h{i} = tosa.sigmoid %xd{i} : ({f}) -> {f}\n"
    elif op == "tanh":
        body += f"  %h{i} = tosa.tanh %xd{i} : ({f}) -> {f}\n"
    elif op == "relu":
        body += (f"  %h{i} = tosa.clamp %xd{i} {{min_val = 0.0 : f32, max_val "
                 f"= {F32_MAX} : f32}} : ({f}) -> {f}\n")
    elif op == "silu":  # the exporter's x * sigmoid(x)
        body += (f"  %sg{i} = tosa.sigmoid %xd{i} : ({f}) -> {f}\n" + shift_line(i) +
                 f"  %h{i} = tosa.mul %xd{i}, %sg{i}, %sh{i} : ({f}, {f}, "
                 f"tensor<1xi8>) -> {f}\n")
    else:  # the exporter's x * relu6(x + 3) * f32(1/6)
        c1 = "tensor<1x1x1x1xf32>"
        body += (f"  %three{i} = \"tosa.const\"() {{values = dense<3.0> : "
                 f"{c1}}} : () -> {c1}\n"
                 f"  %sixth{i} = \"tosa.const\"() {{values = dense<"
                 f"{t8.f32s(f32(1.0) / f32(6.0))}> : {c1}}} : () -> {c1}\n"
                 + shift_line(i) +
                 f"  %p3{i} = tosa.add %xd{i}, %three{i} : ({f}, {c1}) -> {f}\n"
                 f"  %r6{i} = tosa.clamp %p3{i} {{min_val = 0.0 : f32, "
                 f"max_val = 6.0 : f32}} : ({f}) -> {f}\n"
                 f"  %xm{i} = tosa.mul %xd{i}, %r6{i}, %sh{i} : ({f}, {f}, "
                 f"tensor<1xi8>) -> {f}\n"
                 f"  %h{i} = tosa.mul %xm{i}, %sixth{i}, %sh{i} : ({f}, {c1}, "
                 f"tensor<1xi8>) -> {f}\n")
    body += f"  %y{i} = quant.qcast %h{i} : {f} to {yq}\n"
    return body, yq


def batch_norm_line(c, i, op):
    c.our_inputs = [deq(c.q[0], c.qin)]
    c.out_shape = c.shape
    ch = c.shape[3]
    f, q = t8.tshape(c.shape, "f32"), t8.tshape(c.shape, c.qin.mlir)
    yq = t8.tshape(c.shape, c.qout.mlir)
    cc = f"tensor<1x1x1x{ch}xf32>"
    vals = lambda v: ", ".join(t8.f32s(x) for x in v)
    body = (f"  %xq{i} = quant.qcast %x{i}_0 : {f} to {q}\n"
            f"  %xd{i} = quant.dcast %xq{i} : {q} to {f}\n"
            f"  %al{i} = \"tosa.const\"() {{values = dense<[[[[{vals(c.alpha)}]]]]> : "
            f"{cc}}} : () -> {cc}\n"
            f"  %sf{i} = \"tosa.const\"() {{values = dense<[[[[{vals(c.shift)}]]]]> : "
            f"{cc}}} : () -> {cc}\n" + shift_line(i) +
            f"  %m{i} = tosa.mul %xd{i}, %al{i}, %sh{i} : ({f}, {cc}, tensor<1xi8>) -> {f}\n"
            f"  %b{i} = tosa.add %m{i}, %sf{i} : ({f}, {cc}) -> {f}\n")
    res = f"%b{i}"
    if op == "batch_norm_relu":
        body += (f"  %r{i} = tosa.clamp %b{i} {{min_val = 0.0 : f32, max_val "
                 f"= {F32_MAX} : f32}} : ({f}) -> {f}\n")
        res = f"%r{i}"
    body += f"  %y{i} = quant.qcast {res} : {f} to {yq}\n"
    return body, yq


def shape_const(name, values):
    return (f"  {name} = tosa.const_shape {{values = dense<{list(values)}> : "
            f"tensor<{len(values)}xindex>}} : () -> !tosa.shape<{len(values)}>\n")


def pad_line(c, i, op):
    """The exporter's F.pad: tosa.pad of the dequantized NHWC value."""
    c.our_inputs = [deq(c.q[0], c.qin)]
    n, h, w, ch = c.shape
    t, b, l, r = c.pads
    c.out_shape = (n, h + t + b, w + l + r, ch)
    f, q = t8.tshape(c.shape, "f32"), t8.tshape(c.shape, c.qin.mlir)
    yf, yq = t8.tshape(c.out_shape, "f32"), t8.tshape(c.out_shape, c.qout.mlir)
    body = (f"  %xq{i} = quant.qcast %x{i}_0 : {f} to {q}\n"
            f"  %xd{i} = quant.dcast %xq{i} : {q} to {f}\n"
            + shape_const(f"%pp{i}", [0, 0, t, b, l, r, 0, 0]) +
            f"  %pv{i} = \"tosa.const\"() {{values = dense<{t8.f32s(c.fill)}> : "
            f"tensor<1xf32>}} : () -> tensor<1xf32>\n"
            f"  %h{i} = tosa.pad %xd{i}, %pp{i}, %pv{i} : ({f}, !tosa.shape<8>, "
            f"tensor<1xf32>) -> {yf}\n"
            f"  %y{i} = quant.qcast %h{i} : {yf} to {yq}\n")
    return body, yq


def resize_line(c, i, op):
    """The exporter's F.interpolate: tosa.resize with its parameters."""
    c.our_inputs = [deq(c.q[0], c.qin)]
    n, h, w, ch = c.shape
    c.out_shape = (n, c.size[0], c.size[1], ch)
    axes = [_resize_axis(None, c.shape[1 + a], c.size[a], c.factor, c.mode, c.align)
            for a in range(2)]
    f, q = t8.tshape(c.shape, "f32"), t8.tshape(c.shape, c.qin.mlir)
    yf, yq = t8.tshape(c.out_shape, "f32"), t8.tshape(c.out_shape, c.qout.mlir)
    mode = "NEAREST_NEIGHBOR" if c.mode == "nearest" else "BILINEAR"
    body = (f"  %xq{i} = quant.qcast %x{i}_0 : {f} to {q}\n"
            f"  %xd{i} = quant.dcast %xq{i} : {q} to {f}\n"
            + shape_const(f"%rs{i}", [axes[0][0], axes[0][1], axes[1][0], axes[1][1]])
            + shape_const(f"%ro{i}", [axes[0][2], axes[1][2]])
            + shape_const(f"%rb{i}", [axes[0][3], axes[1][3]]) +
            f"  %h{i} = tosa.resize %xd{i}, %rs{i}, %ro{i}, %rb{i} {{mode = {mode}}} : "
            f"({f}, !tosa.shape<4>, !tosa.shape<2>, !tosa.shape<2>) -> {yf}\n"
            f"  %y{i} = quant.qcast %h{i} : {yf} to {yq}\n")
    return body, yq


LINES = {"max_pool2d": pool_line, "avg_pool2d": pool_line,
         "adaptive_avg_pool2d": pool_line, "mul": mul_line,
         "mul_relu": mul_line, "cat": cat_line, "hardswish": unary_line,
         "sigmoid": unary_line, "batch_norm": batch_norm_line,
         "batch_norm_relu": batch_norm_line, "pad": pad_line,
         "upsample_nearest": resize_line, "upsample_bilinear": resize_line,
         "tanh": unary_line, "silu": unary_line, "relu": unary_line}
_OURS = {}


# The integer path: --qnt-fuse lifts the product of two activations into
# qnt.mul, --qnt-convert rewrites every op into its integer form (qnt.table,
# qnt.mul, qnt.avg_pool2d, concat of requantized inputs), which
# --qnt-lower-to-linalg compiles; these ops must then be gone.
INTEGER_FORMS = {"batch_norm": "qnt.batch_norm", "batch_norm_relu": "qnt.batch_norm",
                 "max_pool2d": "tosa.max_pool2d", "avg_pool2d": "qnt.avg_pool2d",
                 "adaptive_avg_pool2d": "qnt.avg_pool2d", "mul": "qnt.mul",
                 "mul_relu": "qnt.mul", "cat": "tosa.concat",
                 "hardswish": "qnt.table", "sigmoid": "qnt.table",
                 "pad": "tosa.pad", "upsample_nearest": "qnt.resize",
                 "upsample_bilinear": "qnt.resize", "tanh": "qnt.table",
                 "silu": "qnt.table", "relu": "qnt.table"}
FLOAT_LEFT = ("tosa.sigmoid", "tosa.mul", "tosa.clamp")


def to_integer(tmp_path, op, mlir):
    """--qnt-fuse --qnt-convert on our module (the integer path)."""
    path = tmp_path / f"{op}.float.mlir"
    path.write_text(mlir)
    proc = subprocess.run([str(t8.BUILD_DIR / "bin" / "quant-opt"), str(path),
                           "--qnt-fuse", "--qnt-convert"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert INTEGER_FORMS[op] in out, (op, out[:2000])
    if op in ("mul", "mul_relu", "hardswish", "sigmoid", "cat", "batch_norm",
              "batch_norm_relu", "tanh", "silu", "relu"):
        assert not any(f in out for f in FLOAT_LEFT), (op, out[:2000])
    if op in ("upsample_nearest", "upsample_bilinear", "tanh"):
        assert "tosa.resize" not in out and "tosa.tanh" not in out, (op, out[:2000])
    if op == "pad":  # on the storage integers
        assert "xi8>, !tosa.shape<8>, tensor<1xi8>)" in out, (op, out[:2000])
    return out


def run_ours(tmp_path_factory, op, integer=False):
    if (op, integer) in _OURS:
        return _OURS[(op, integer)]
    cs = cases(op)
    args, bodies, rtypes, rtys, inputs = [], [], [], [], {}
    for i, c in enumerate(cs):
        body, rt = LINES[op](c, i, op)
        for j, x in enumerate(c.our_inputs):
            args.append(f"%x{i}_{j}: {t8.tshape(x.shape, 'f32')} "
                        f"{{qnt.name = \"x{i}_{j}\"}}")
            inputs[f"x{i}_{j}"] = x
        bodies.append(body)
        rtypes.append(f"{rt} {{qnt.name = \"y{i}\"}}")
        rtys.append(rt)
    rets = ", ".join(f"%y{i}" for i in range(len(cs)))
    mlir = (f"func.func @main({', '.join(args)}) -> ({', '.join(rtypes)}) {{\n"
            + "".join(bodies) + f"  return {rets} : {', '.join(rtys)}\n}}\n")
    tmp = tmp_path_factory.mktemp(op)
    if integer:
        mlir = to_integer(tmp, op, mlir)
    outs = t8.run_quant_run(tmp, op, mlir, inputs)
    res = []
    for i, c in enumerate(cs):
        got = outs[f"y{i}"]
        assert got.dtype == np.uint8 and got.shape == c.out_shape, \
            (op, i, got.dtype, got.shape, c.out_shape)
        res.append(got.astype(np.int64))
    _OURS[(op, integer)] = res
    return res


# ---------------------------------------------------------------------------
# PyTorch side
# ---------------------------------------------------------------------------


def tq(q_nhwc, qp, channels_last=False):
    """The quantized NCHW tensor holding exactly these integers."""
    t = torch.from_numpy(np.ascontiguousarray(
        q_nhwc.astype(np.uint8).transpose(0, 3, 1, 2)))
    x = torch._make_per_tensor_quantized_tensor(t, float(qp.scale), qp.zp)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def nhwc(y):
    return y.int_repr().permute(0, 2, 3, 1).numpy().astype(np.int64)


def torch_run(engine, op, c):
    torch.backends.quantized.engine = engine
    s, z = float(c.qout.scale), c.qout.zp
    if op in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"):
        x = tq(c.q[0], c.qin)
        if op == "max_pool2d":
            y = F.max_pool2d(x, c.kernel, c.stride, c.pad)
        elif op == "avg_pool2d":
            y = F.avg_pool2d(x, c.kernel, c.stride, c.pad,
                             count_include_pad=c.cip)
        else:
            y = F.adaptive_avg_pool2d(x, 1)
        assert (y.q_scale(), y.q_zero_point()) == (s, z)
    elif op in ("mul", "mul_relu"):
        a, b = (tq(q, qp) for q, qp in zip(c.q, c.qps))
        f = torch.ops.quantized.mul_relu if op == "mul_relu" \
            else torch.ops.quantized.mul
        y = f(a, b, s, z)
    elif op == "cat":
        xs = [tq(q, qp, c.channels_last) for q, qp in zip(c.q, c.qps)]
        y = torch.ops.quantized.cat(xs, c.dim, s, z)
    elif op == "hardswish":
        y = torch.nn.quantized.functional.hardswish(tq(c.q[0], c.qin), s, z)
    elif op == "pad":
        t, b, l, r = c.pads
        y = F.pad(tq(c.q[0], c.qin), (l, r, t, b), value=c.fill)
    elif op in ("upsample_nearest", "upsample_bilinear"):
        x = tq(c.q[0], c.qin)
        align = c.align if c.mode == "bilinear" else None
        if c.factor:
            y = F.interpolate(x, scale_factor=c.factor, mode=c.mode, align_corners=align)
        else:
            y = F.interpolate(x, size=tuple(c.size), mode=c.mode, align_corners=align)
    elif op == "tanh":
        y = torch.tanh(tq(c.q[0], c.qin))
        assert (y.q_scale(), y.q_zero_point()) == (s, z), (y.q_scale(), y.q_zero_point())
    elif op == "relu":
        y = F.relu(tq(c.q[0], c.qin))
    elif op == "silu":  # PyTorch 1.13 has no quantized SiLU: its float
        x = tq(c.q[0], c.qin)  # formula on the dequantized input
        y = torch.quantize_per_tensor(F.silu(x.dequantize()), s, z, torch.quint8)
    elif op in ("batch_norm", "batch_norm_relu"):
        f = torch.ops.quantized.batch_norm2d_relu if op == "batch_norm_relu" \
            else torch.ops.quantized.batch_norm2d
        t = torch.from_numpy
        y = f(tq(c.q[0], c.qin), t(c.gamma), t(c.beta), t(c.mean), t(c.var),
              c.eps, s, z)
    else:
        y = torch.sigmoid(tq(c.q[0], c.qin))
        assert (y.q_scale(), y.q_zero_point()) == (s, z), \
            (y.q_scale(), y.q_zero_point())
    return nhwc(y)


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------

def pt_windows(c):
    """PyTorch's pooling windows (floor mode): output position, clipped
    window, and pool_size (the window clipped to the padded input)."""
    n, h, w, ch = c.shape
    oh, ow = pool_out_hw(h, w, c.kernel, c.stride, c.pad)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * c.stride[0] - c.pad[0], j * c.stride[1] - c.pad[1]
            he = min(hs + c.kernel[0], h + c.pad[0])
            we = min(ws + c.kernel[1], w + c.pad[1])
            pool_size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            yield i, j, (slice(hs, he), slice(ws, we)), pool_size


def pt_model_avg(engine, c):
    """What PyTorch computes for quantized avg_pool2d / adaptive_avg_pool2d
    (S_out = S_in, Z_out = Z_in = Z), determined empirically:
      acc  = sum(q over the real elements of the window) - Z * size
      generic, NCHW:  q = rint(f32(acc) * f32(1/div) + f32(Z))
      generic, NHWC (here: C == 1, where NCHW is also channels last):
                      q = rint(f32(acc) * f32(1 / f32(1 / f32(1/div)))) + Z
      qnnpack:        q = rint(f32(acc) * f32(S / f32(S * kh * kw))) + Z
    div = count_include_pad ? pool_size : size; qnnpack always divides by
    kh * kw (padding counts as the value 0, whatever count_include_pad)."""
    q, z = c.q[0], c.qin.zp
    n, h, w, ch = c.shape
    oh, ow = pool_out_hw(h, w, c.kernel, c.stride, c.pad)
    y = np.zeros((n, oh, ow, ch), np.int64)
    for i, j, (hs, ws), pool_size in pt_windows(c):
        size = (hs.stop - hs.start) * (ws.stop - ws.start)
        acc = (q[:, hs, ws].sum(axis=(1, 2)) - size * z).astype(f32)
        div = pool_size if c.cip else size
        if engine == "qnnpack":
            kk = c.kernel[0] * c.kernel[1]
            m = f32(c.qin.scale / (c.qin.scale * f32(kk)))
            v = np.rint(acc * m) + z
        elif ch == 1:
            m = f32(1) / (f32(1) / f32(1.0 / div))
            v = np.rint(acc * m) + z
        else:
            v = np.rint(acc * f32(1.0 / div) + f32(z))
        y[:, i, j] = np.clip(v, 0, 255)
    return y


def pt_model_hardswish_qnnpack(c):
    """QNNPACK's hardswish table: the output zero point is added before
    rounding: q = rint(f32(y * f32(1/S_out)) + f32(Z_out)),
    y = x * min(max(x + 3, 0), 6) / 6 in float32, x = f32(q - Z) * S."""
    x = t8.ref_dequantize(c.q[0], c.qin)
    y = x * np.minimum(np.maximum(x + f32(3), f32(0)), f32(6)) / f32(6)
    v = np.rint(y * (f32(1) / c.qout.scale) + f32(c.qout.zp))
    return np.clip(v, 0, 255).astype(np.int64)


def pt_model(engine, op, c):
    """PyTorch's result where we have a formula for it (None otherwise)."""
    if op in ("avg_pool2d", "adaptive_avg_pool2d") and engine in (
            "onednn", "qnnpack"):
        return pt_model_avg(engine, c)
    if op == "hardswish" and engine == "qnnpack":
        return pt_model_hardswish_qnnpack(c)
    return None


def qnnpack_ignores_cip(engine, op, c):
    """QNNPACK's average pooling counts the padding in the divisor even with
    count_include_pad=False (see test_avg_pool2d_qnnpack_count_include_pad)."""
    return (engine == "qnnpack" and op == "avg_pool2d" and not c.cip
            and any(c.pad))


def compare(op, engine, tmp_path_factory, select=None, integer=False):
    cs = cases(op)
    ours = run_ours(tmp_path_factory, op, integer)
    stats = {}  # flavor -> [cases, elements, equal, max diff]
    worst = []
    for c, got in zip(cs, ours):
        if select is not None and not select(c):
            continue
        pt = torch_run(engine, op, c)
        assert pt.shape == got.shape, (c.desc, pt.shape, got.shape)
        if op == "max_pool2d":  # exact by construction: check numpy too
            assert np.array_equal(got, ref_max_pool(c)), c.desc
        model = pt_model(engine, op, c)
        if model is not None:
            assert np.array_equal(pt, model), (
                f"{c.desc} engine {engine}: PyTorch differs from the "
                f"documented formula at {int((pt != model).sum())} of "
                f"{pt.size} elements")
        d = np.abs(got - pt)
        for key in ("all", "ties" if c.ties else "random"):
            st = stats.setdefault(key, [0, 0, 0, 0])
            st[0] += 1
            st[1] += d.size
            st[2] += int((d == 0).sum())
            st[3] = max(st[3], int(d.max()))
        tolerance = (INTEGER_TOLERANCE if integer else TOLERANCE)[op]
        if d.max() > tolerance:
            worst.append(f"{c.desc}: max {int(d.max())} LSB at "
                         f"{np.argwhere(d == d.max())[0].tolist()}")
    tolerance = (INTEGER_TOLERANCE if integer else TOLERANCE)[op]
    print(f"\n[{op}/{engine}{'/integer' if integer else ''}] tolerance "
          f"{tolerance} LSB")
    for key in ("all", "random", "ties"):
        if key in stats:
            n, total, equal, mx = stats[key]
            print(f"  {key:6s}: {n:3d} cases, {total:6d} elements, "
                  f"{100.0 * equal / total:7.3f}% exact, max diff {mx} LSB")
    return worst


def ref_max_pool(c):
    (oh, ow), pad, size = tosa_pad(c)
    n, h, w, ch = c.shape
    x = np.full((n, h + 2 * c.pad[0] + c.stride[0] + c.kernel[0],
                 w + 2 * c.pad[1] + c.stride[1] + c.kernel[1], ch), -1)
    x[:, c.pad[0]:c.pad[0] + h, c.pad[1]:c.pad[1] + w] = c.q[0]
    y = np.empty((n, oh, ow, ch), np.int64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * c.stride[0], j * c.stride[1]
            y[:, i, j] = x[:, hs:hs + c.kernel[0],
                           ws:ws + c.kernel[1]].max(axis=(1, 2))
    return y


OPS = list(N_CASES)


@ENGINE_PARAMS
@pytest.mark.parametrize("op", OPS)
def test_op(tmp_path_factory, op, engine):
    worst = compare(op, engine, tmp_path_factory,
                    lambda c: not qnnpack_ignores_cip(engine, op, c))
    assert not worst, "\n".join(worst[:10])


@ENGINE_PARAMS
@pytest.mark.parametrize("op", OPS)
def test_op_integer(tmp_path_factory, op, engine):
    """The integer forms (docs/numerics.md, "Ops without weights") against
    PyTorch, with the tolerances of INTEGER_TOLERANCE."""
    worst = compare(op, engine, tmp_path_factory,
                    lambda c: not qnnpack_ignores_cip(engine, op, c),
                    integer=True)
    assert not worst, "\n".join(worst[:10])


@pytest.mark.skipif("qnnpack" not in ENGINES, reason="no qnnpack engine")
@pytest.mark.xfail(strict=True, reason=(
    "qnnpack avg_pool2d ignores count_include_pad=False: it pads with the "
    "input zero point and always divides by kh * kw, "
    "q = rint(f32(acc) * f32(S / f32(S * kh * kw))) + Z; we (TOSA) divide "
    "by the number of real elements in the window"))
def test_avg_pool2d_qnnpack_count_include_pad(tmp_path_factory):
    worst = compare("avg_pool2d", "qnnpack", tmp_path_factory,
                    lambda c: qnnpack_ignores_cip("qnnpack", "avg_pool2d", c))
    assert not worst, "\n".join(worst[:10])


def test_case_coverage():
    """The random cases cover what they claim (tests the test)."""
    for op in OPS:
        cs = cases(op)
        assert {c.ties for c in cs} == {True, False}, op
        shapes = [c.shape[0] if op == "cat" else c.shape for c in cs]
        assert any(s[0] == 2 for s in shapes), op
        assert any(s[3] % 2 and s[3] > 1 for s in shapes), op
    av = cases("avg_pool2d")
    assert any(c.cip and any(c.pad) for c in av)
    assert any(not c.cip and any(c.pad) for c in av)
    assert any(max(c.stride) > 1 for c in av)
    assert {c.dim for c in cases("cat")} == {0, 1, 2, 3}
    assert any(c.same for c in cases("cat"))
    assert any(c.channels_last and c.dim == 1 for c in cases("cat"))
