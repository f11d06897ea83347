"""qnt's INT8 conv2d / linear / add (+relu) against torch.ops.quantized.

Both sides get IDENTICAL integers: the same float inputs quantize to the same
u8 values (checked), the same s8 weights (torch.quantize_per_channel /
quantize_per_tensor of w_int * S_w, checked), the same scales and zero points,
and a bias that PyTorch takes in float:

* "int" bias cases: we pick bias_i32, PyTorch gets
  b_f = float32(double(bias_i32) * S_in * S_w[c]);
* "float" bias cases: PyTorch gets a random float b_f, our int32 bias is what
  --qnt-convert computes: rint(double(b_f) / (double(S_in) * double(S_w[c]))).

Our side is hand-written quantized MLIR (as test_int8_reference.py), one
module per op with every case in it, run once with quant-run; PyTorch runs on
every quantized engine of this build (fbgemm / x86 / onednn / qnnpack).

Every comparison checks three things:
1. ours == our documented arithmetic (docs/numerics.md), exactly;
2. PyTorch == the formula we determined empirically for that engine
   (docs/numerics-vs-pytorch.md), exactly (engines without such a model,
   e.g. fbgemm, which this Debian build lacks, skip this step);
3. |ours - PyTorch| <= the tolerance of the op (TOLERANCE below), and prints
   the exact share and the max difference in LSB.

Systematic differences beyond 1 LSB (reduce_range output clamp, int32 bias
overflow) are strict xfails with the exact explanation.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_int8_reference as t8  # noqa: E402  (helpers only, no tests)

torch = pytest.importorskip("torch")

f32 = np.float32
INT32_MIN, INT32_MAX = t8.INT32_MIN, t8.INT32_MAX
QUANT_OPT = t8.BUILD_DIR / "bin" / "quant-opt"

ENGINES = [e for e in ("fbgemm", "x86", "onednn", "qnnpack")
           if e in torch.backends.quantized.supported_engines]
ENGINE_PARAMS = pytest.mark.parametrize("engine", ENGINES)

# Max |ours - PyTorch| in LSB per op (all engines); one-line reasons:
TOLERANCE = {
    # same exact int32 acc; only the requantization rounding differs
    # (qnnpack: M in float32; onednn: Z_out added before rint, unrounded bias)
    "conv2d": 1,  # same integers; M / zero-point / float-bias rounding at .5
    "linear": 1,  # same integers; M / zero-point / float-bias rounding at .5
    "add": 1,  # qnnpack rounds ties away from zero; generic kernel uses FMA
}


def has_vnni():
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_vnni|avx_vnni)\b", flags))


# ---------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------

RANGES = {"127": (0, 127), "255": None}  # x86 reduce_range / full u8


def qparams(rng, rng_kind, top_margin=0):
    qrange = RANGES[rng_kind]
    hi = 127 if qrange else 255
    return qrange, int(rng.integers(0, hi + 1 - top_margin)), hi


def exact_input(rng, shape, qp, spread=None):
    """Floats that quantize (ours and torch) to random ints in [qmin, qmax]
    (within +-spread of the zero point if given)."""
    if spread is None:
        k = rng.integers(qp.qmin, qp.qmax + 1, size=shape)
    else:
        k = np.clip(qp.zp + rng.integers(-spread, spread + 1, size=shape),
                    qp.qmin, qp.qmax)
    frac = rng.uniform(-0.45, 0.45, size=shape)
    frac[k == qp.qmin] = np.abs(frac[k == qp.qmin])
    frac[k == qp.qmax] = -np.abs(frac[k == qp.qmax])
    x = ((k - qp.zp + frac) * np.float64(qp.scale)).astype(f32)
    q = t8.ref_quantize(x, qp)
    assert np.array_equal(q, k)
    return x, q


def choose_scales(rng, acc, s_in, qout, lo, hi, per_channel):
    """Weight scales spreading acc over the output; for a [0, 127] output
    nothing may exceed 127 (PyTorch would not clamp there, see
    test_reduce_range_output_clamp)."""
    ws = t8.pick_weight_scales(rng, acc, s_in, qout, lo, hi, per_channel)
    if qout.qrange is not None:
        oc = acc.shape[-1]
        top = np.maximum(acc.reshape(-1, oc).max(axis=0), 1).astype(
            np.float64)
        # The largest value lands at a random point below qmax - 1.
        room = (qout.qmax - 1 - qout.zp) * rng.uniform(0.8, 1.0, size=oc)
        cap = room * np.float64(qout.scale) / (np.float64(s_in) * top)
        cap = cap.min() if not per_channel else cap
        ws = np.minimum(ws.astype(np.float64), np.maximum(cap, 1e-9))
    return np.asarray(ws, f32)


class Case:
    pass


def make_bias(rng, c, oc, kind, s_in, wscales):
    """Returns (bias_f32 for PyTorch, our int32 bias)."""
    if kind is None:
        return None, None
    s = np.broadcast_to(wscales.astype(np.float64), (oc,)) * np.float64(s_in)
    if kind == "int":
        bias_q = c.bias_units
        bias_f = (bias_q * s).astype(f32)
    else:  # "float": random float, our compiler's rounding
        frac = rng.uniform(-0.5, 0.5, size=oc)
        if c.ties:  # exact halves (the scales are powers of two)
            frac = rng.choice([-0.5, 0.5, 0.25], size=oc)
        bias_f = ((c.bias_units + frac) * s).astype(f32)
        bias_q = np.rint(bias_f.astype(np.float64) / s).astype(np.int64)
    return bias_f, bias_q


def finish_case(rng, c, acc_nobias, oc, relu):
    """Scales, bias and expected values, given the bias-free accumulators."""
    approx = acc_nobias + (0 if c.bias_kind is None else c.bias_units)
    if c.ties:
        # Powers of two: M = 2^-m exactly in every formula, so float(acc) * M
        # lands on k + 0.5 for many accumulators (requantization ties); the
        # output zero point is mid-range and nothing clamps.
        qo = c.qout
        half = (qo.qmax - qo.qmin) // 2
        zout = qo.qmin + half + int(rng.integers(-10, 11))
        c.qout = t8.QParams("u8", f32(c.qin.scale * 2.0**-4), zout, qo.qrange)
        mag = np.abs(approx.reshape(-1, oc)).max(axis=0) + 1
        m = np.maximum(1, np.ceil(np.log2(mag / (half - 15)))).astype(int)
        if not c.per_channel:
            m = np.array([m.max()])
        c.wscales = (2.0 ** -(4 + m)).astype(f32)
    lo, hi = t8.ref_act_bounds("relu" if relu else "none", c.qout)
    if not c.ties:
        c.wscales = choose_scales(rng, approx, c.qin.scale, c.qout, lo, hi,
                                  c.per_channel)
    if c.flavor == "near":
        # Random scales, but S_w[c] set so that the channel's largest
        # accumulator a lands on a .5 in real arithmetic: float(a) * M is
        # then a near-tie that depends on how M is rounded.
        top = approx.reshape(-1, oc).max(axis=0)
        s_in, s_out = np.float64(c.qin.scale), np.float64(c.qout.scale)
        ws = c.wscales.astype(np.float64)
        chans = range(oc) if c.per_channel else [int(np.argmax(top))]
        for ch in chans:
            a = top[ch]
            if a <= 0:
                continue
            j = ch if c.per_channel else 0
            v = np.floor(a * s_in * ws[j] / s_out) + 0.5
            ws[j] = v * s_out / (s_in * a)
        c.wscales = ws.astype(f32)
    c.bias_f, c.bias_q = make_bias(rng, c, oc, c.bias_kind, c.qin.scale,
                                   c.wscales)
    c.acc_nobias = acc_nobias
    c.lo, c.hi = lo, hi
    acc = acc_nobias + (0 if c.bias_q is None else c.bias_q)
    m = t8.ref_multipliers(c.qin.scale, c.wscales, c.qout.scale)
    c.ours_model = t8.ref_requantize(acc, m, c.qout, lo, hi)


# Case flavors of conv2d / linear by i % 6: random scales; "near": random
# scales with each channel's largest value on a near-tie; "ties": powers of
# two, small values, many exact .5 (requantization and bias ties).
FLAVORS = ["random"] * 4 + ["near", "ties"]


def gen_conv_case(rng, i, relu):
    c = Case()
    c.name = f"conv{i}"
    kind = ["dense", "dense", "groups", "depthwise", "pointwise"][i % 5]
    n = int(rng.integers(1, 4))
    if kind == "groups":
        g = int(rng.integers(2, 4))
        cin = g * int(rng.integers(1, 6))
        oc = g * int(rng.integers(1, 5))
    elif kind == "depthwise":
        cin = int(rng.integers(1, 18))
        g, oc = cin, cin * int(rng.integers(1, 3))
    else:
        g, cin, oc = 1, int(rng.integers(1, 18)), int(rng.integers(1, 20))
    if kind == "pointwise":
        kh = kw = 1
    else:
        kh, kw = (int(v) for v in rng.choice([1, 2, 3, 5], size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dil = tuple(int(v) for v in rng.choice([1, 1, 2], size=2))
    ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
    ph, pw = min(ph, (kh - 1) * dil[0]), min(pw, (kw - 1) * dil[1])
    h = int(rng.integers(max(dil[0] * (kh - 1) + 1 - 2 * ph, 1), 11))
    w = int(rng.integers(max(dil[1] * (kw - 1) + 1 - 2 * pw, 1), 11))
    c.shape, c.groups, c.stride, c.dil = (n, h, w, cin), g, stride, dil
    c.pad = (ph, ph, pw, pw)  # PyTorch pads symmetrically
    c.range_kind = ["127", "255"][i % 2]
    c.ties = i % 6 == 5
    c.flavor = FLAVORS[i % 6]
    qr, zin, _ = qparams(rng, c.range_kind)
    s_in = 2.0**-int(rng.integers(3, 7)) if c.ties else rng.uniform(.005, .1)
    c.qin = t8.QParams("u8", f32(s_in), zin, qr)
    qr, zout, _ = qparams(rng, c.range_kind, top_margin=20)
    c.qout = t8.QParams("u8", f32(rng.uniform(0.02, 0.3)), zout, qr)
    c.per_channel = bool(rng.integers(0, 4))  # 3 of 4 per channel
    c.bias_kind = [None, "int", "int", "float"][int(rng.integers(0, 4))]
    c.x, c.q_in = exact_input(rng, c.shape, c.qin, 3 if c.ties else None)
    wmax = 4 if c.ties else 128
    c.w_int = rng.integers(-wmax, wmax, size=(oc, kh, kw, cin // g))
    span = int(np.sqrt(kh * kw * cin // g) * 60 * 74)
    if c.ties:
        span = 20
    c.bias_units = rng.integers(-span, span + 1, size=oc)
    acc = t8.ref_conv_acc(c.q_in, c.qin.zp, c.w_int, None, stride, c.pad,
                          dil, g)
    finish_case(rng, c, acc, oc, relu)
    c.desc = (f"{kind} n{n} {h}x{w}x{cin}->{oc} k{kh}x{kw} s{stride} "
              f"p{(ph, pw)} d{dil} g{g} u8[{c.range_kind}] "
              f"{'pc' if c.per_channel else 'pt'} bias={c.bias_kind} "
              f"{c.flavor}")
    return c


def gen_linear_case(rng, i, relu):
    c = Case()
    c.name = f"linear{i}"
    m = int(rng.integers(1, 10))
    k = int(rng.integers(1, 80))
    n = int(rng.integers(1, 40))
    c.shape = (m, k)
    c.range_kind = ["127", "255"][i % 2]
    c.ties = i % 6 == 5
    c.flavor = FLAVORS[i % 6]
    qr, zin, _ = qparams(rng, c.range_kind)
    s_in = 2.0**-int(rng.integers(3, 7)) if c.ties else rng.uniform(.005, .1)
    c.qin = t8.QParams("u8", f32(s_in), zin, qr)
    qr, zout, _ = qparams(rng, c.range_kind, top_margin=20)
    c.qout = t8.QParams("u8", f32(rng.uniform(0.02, 0.3)), zout, qr)
    c.per_channel = bool(rng.integers(0, 4))
    c.bias_kind = [None, "int", "int", "float"][int(rng.integers(0, 4))]
    c.x, c.q_in = exact_input(rng, c.shape, c.qin, 3 if c.ties else None)
    wmax = 4 if c.ties else 128
    c.w_int = rng.integers(-wmax, wmax, size=(n, k))
    span = 20 if c.ties else int(np.sqrt(k) * 60 * 74)
    c.bias_units = rng.integers(-span, span + 1, size=n)
    acc = (c.q_in - c.qin.zp) @ c.w_int.T
    finish_case(rng, c, acc, n, relu)
    c.desc = (f"m{m} k{k} n{n} u8[{c.range_kind}] "
              f"{'pc' if c.per_channel else 'pt'} bias={c.bias_kind} "
              f"{c.flavor}")
    return c


def gen_add_case(rng, i, relu):
    c = Case()
    c.name = f"add{i}"
    dims = [int(v) for v in rng.integers(1, 9, size=4)]
    dims[0] = int(rng.integers(1, 4))
    c.shape = tuple(dims)
    c.range_kind = ["127", "255"][i % 2]
    c.ties = i % 4 == 3
    c.flavor = "ties" if c.ties else "random"
    e = int(rng.integers(2, 6))
    qs = []
    for j in range(2):
        qr, z, _ = qparams(rng, c.range_kind)
        s = 2.0**-(e + j) if c.ties else rng.uniform(0.01, 0.2)
        qs.append(t8.QParams("u8", f32(s), z, qr))
    c.qa, c.qb = qs
    c.a, c.q_a = exact_input(rng, c.shape, c.qa, 40 if c.ties else None)
    c.b, c.q_b = exact_input(rng, c.shape, c.qb, 40 if c.ties else None)
    r = ((c.q_a - c.qa.zp) * np.float64(c.qa.scale) +
         (c.q_b - c.qb.zp) * np.float64(c.qb.scale))
    qr, zo, hi = qparams(rng, c.range_kind, top_margin=20)
    if relu:
        r = np.maximum(r, 0)
    top = max(r.max(), 1e-3)
    # Full range: some clamp at the top; [0, 127]: nothing above 127.
    frac = rng.uniform(0.75, 1.0) if qr is None else rng.uniform(1.0, 1.2)
    s_out = top / ((hi - 1 - zo) / frac)
    # qnnpack's add rejects Sa / S_out or Sb / S_out outside [2^-14, 2^8).
    s_out = max(s_out, max(c.qa.scale, c.qb.scale) / 200.0)
    if c.ties:  # r / S_out in quarters: many exact .5
        s_out = 2.0**-(e - 1)
        zo = (hi + 1) // 2 + int(rng.integers(-10, 11))
    c.qout = t8.QParams("u8", f32(s_out), zo, qr)
    c.ours_model = t8.ref_add(c.q_a, c.qa, c.q_b, c.qb, c.qout, relu)
    c.desc = f"{c.shape} u8[{c.range_kind}] {c.flavor}"
    return c


N_CASES = {"conv2d": 100, "linear": 80, "add": 60}
GENERATORS = {"conv2d": gen_conv_case, "linear": gen_linear_case,
              "add": gen_add_case}
_CASES = {}


def cases(op, relu):
    key = (op, relu)
    if key not in _CASES:
        rng = np.random.default_rng(1000 + 17 * len(op) + int(relu))
        _CASES[key] = [GENERATORS[op](rng, i, relu)
                       for i in range(N_CASES[op])]
    return _CASES[key]


# ---------------------------------------------------------------------------
# Our side: one module per (op, relu) with every case
# ---------------------------------------------------------------------------


def weighted_operands(c, i, xf, xq, wi, wq, channels):
    """Operands, their types and the lines defining them (input qcast, i8
    weight scast, optional i32 bias) of conv2d / linear case `c`."""
    ops, types = f"%xq{i}, %w{i}", f"{xq}, {wq}"
    head = (f"  %xq{i} = quant.qcast %x{i} : {xf} to {xq}\n"
            f"  %wi{i} = arith.constant {t8.dense(c.w_int)} : {wi}\n"
            f"  %w{i} = quant.scast %wi{i} : {wi} to {wq}\n")
    if c.bias_q is not None:
        ops += f", %b{i}"
        types += f", tensor<{channels}xi32>"
        head += (f"  %b{i} = arith.constant {t8.dense(c.bias_q)} : "
                 f"tensor<{channels}xi32>\n")
    return ops, types, head


def conv_line(c, i, act):
    n, h, w, cin = c.shape
    oc, kh, kw, cg = c.w_int.shape
    oh, ow = t8.conv_out_hw(h, w, kh, kw, c.stride, c.pad, c.dil)
    c.out_shape = (n, oh, ow, oc)
    xf = t8.tshape(c.shape, "f32")
    xq = t8.tshape(c.shape, c.qin.mlir)
    wi = t8.tshape(c.w_int.shape, "i8")
    wq = t8.tshape(c.w_int.shape, t8.wtype(c.wscales, c.per_channel))
    yq = t8.tshape(c.out_shape, c.qout.mlir)
    attrs = t8.act_attrs(act, None) + [
        f"dilation = array<i64: {c.dil[0]}, {c.dil[1]}>",
        f"groups = {c.groups} : i64",
        "pad = array<i64: " + ", ".join(map(str, c.pad)) + ">",
        f"stride = array<i64: {c.stride[0]}, {c.stride[1]}>"]
    ops, types, head = weighted_operands(c, i, xf, xq, wi, wq, oc)
    body = (f"{head}  %y{i} = qnt.conv2d {ops} {{{', '.join(attrs)}}} : "
            f"({types}) -> {yq}\n")
    return f"%x{i}: {xf} {{qnt.name = \"x{i}\"}}", body, yq


def linear_line(c, i, act):
    m, k = c.shape
    n = c.w_int.shape[0]
    c.out_shape = (m, n)
    xf, xq = t8.tshape(c.shape, "f32"), t8.tshape(c.shape, c.qin.mlir)
    wi = t8.tshape(c.w_int.shape, "i8")
    wq = t8.tshape(c.w_int.shape, t8.wtype(c.wscales, c.per_channel))
    yq = t8.tshape(c.out_shape, c.qout.mlir)
    ops, types, head = weighted_operands(c, i, xf, xq, wi, wq, n)
    body = (f"{head}  %y{i} = qnt.linear {ops} "
            f"{{{', '.join(t8.act_attrs(act, None))}}} : ({types}) -> {yq}\n")
    return f"%x{i}: {xf} {{qnt.name = \"x{i}\"}}", body, yq


def add_line(c, i, act):
    c.out_shape = c.shape
    f = t8.tshape(c.shape, "f32")
    ta, tb, to = (t8.tshape(c.shape, q.mlir) for q in (c.qa, c.qb, c.qout))
    body = (f"  %aq{i} = quant.qcast %a{i} : {f} to {ta}\n"
            f"  %bq{i} = quant.qcast %b{i} : {f} to {tb}\n"
            f"  %y{i} = qnt.add %aq{i}, %bq{i} {{activation = "
            f"#qnt.activation<{act}>}} : ({ta}, {tb}) -> {to}\n")
    args = (f"%a{i}: {f} {{qnt.name = \"a{i}\"}}, "
            f"%b{i}: {f} {{qnt.name = \"b{i}\"}}")
    return args, body, to


LINES = {"conv2d": conv_line, "linear": linear_line, "add": add_line}
_OURS = {}


def run_ours(tmp_path_factory, op, relu):
    key = (op, relu)
    if key in _OURS:
        return _OURS[key]
    cs = cases(op, relu)
    act = "relu" if relu else "none"
    args, bodies, rtypes, rtys, inputs = [], [], [], [], {}
    for i, c in enumerate(cs):
        a, body, rt = LINES[op](c, i, act)
        args.append(a)
        bodies.append(body)
        rtypes.append(f"{rt} {{qnt.name = \"y{i}\"}}")
        rtys.append(rt)
        if op == "add":
            inputs[f"a{i}"], inputs[f"b{i}"] = c.a, c.b
        else:
            inputs[f"x{i}"] = c.x
    rets = ", ".join(f"%y{i}" for i in range(len(cs)))
    mlir = (f"func.func @main({', '.join(args)}) -> ({', '.join(rtypes)}) {{\n"
            + "".join(bodies) + f"  return {rets} : {', '.join(rtys)}\n}}\n")
    tmp = tmp_path_factory.mktemp(f"{op}_{act}")
    outs = t8.run_quant_run(tmp, f"{op}_{act}", mlir, inputs)
    res = []
    for i, c in enumerate(cs):
        got = outs[f"y{i}"]
        assert got.dtype == np.uint8 and got.shape == c.out_shape, \
            (c.name, got.dtype, got.shape)
        res.append(got.astype(np.int64))
    _OURS[key] = res
    return res


# ---------------------------------------------------------------------------
# PyTorch side
# ---------------------------------------------------------------------------


def torch_q_input(x, qp, nchw):
    t = torch.from_numpy(np.ascontiguousarray(x))
    if nchw:
        t = t.permute(0, 3, 1, 2).contiguous()
    q = torch.quantize_per_tensor(t, float(qp.scale), qp.zp, torch.quint8)
    return q


def torch_weight(w_int, wscales, per_channel):
    oc = w_int.shape[0]
    s = np.broadcast_to(wscales.astype(np.float64), (oc,))
    w_f = (w_int * s.reshape((-1,) + (1,) * (w_int.ndim - 1))).astype(f32)
    t = torch.from_numpy(w_f)
    if per_channel:
        w = torch.quantize_per_channel(t, torch.from_numpy(s.copy()),
                                       torch.zeros(oc, dtype=torch.long), 0,
                                       torch.qint8)
    else:
        w = torch.quantize_per_tensor(t, float(wscales[0]), 0, torch.qint8)
    assert np.array_equal(w.int_repr().numpy(), w_int)
    return w


def torch_run(engine, op, relu, c):
    torch.backends.quantized.engine = engine
    bias = None
    if op != "add" and c.bias_f is not None:
        bias = torch.from_numpy(c.bias_f.copy())
    if op == "conv2d":
        x = torch_q_input(c.x, c.qin, nchw=True)
        assert np.array_equal(x.int_repr().permute(0, 2, 3, 1).numpy(),
                              c.q_in)
        w = torch_weight(c.w_int.transpose(0, 3, 1, 2), c.wscales,
                         c.per_channel)
        pk = torch.ops.quantized.conv2d_prepack(
            w, bias, list(c.stride), [c.pad[0], c.pad[2]], list(c.dil),
            c.groups)
        f = (torch.ops.quantized.conv2d_relu if relu
             else torch.ops.quantized.conv2d)
        y = f(x, pk, float(c.qout.scale), c.qout.zp)
        return y.int_repr().permute(0, 2, 3, 1).numpy().astype(np.int64)
    if op == "linear":
        x = torch_q_input(c.x, c.qin, nchw=False)
        assert np.array_equal(x.int_repr().numpy(), c.q_in)
        w = torch_weight(c.w_int, c.wscales, c.per_channel)
        pk = torch.ops.quantized.linear_prepack(w, bias)
        f = (torch.ops.quantized.linear_relu if relu
             else torch.ops.quantized.linear)
        y = f(x, pk, float(c.qout.scale), c.qout.zp)
        return y.int_repr().numpy().astype(np.int64)
    a = torch_q_input(c.a, c.qa, nchw=False)
    b = torch_q_input(c.b, c.qb, nchw=False)
    assert np.array_equal(a.int_repr().numpy(), c.q_a)
    assert np.array_equal(b.int_repr().numpy(), c.q_b)
    f = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
    y = f(a, b, float(c.qout.scale), c.qout.zp)
    return y.int_repr().numpy().astype(np.int64)


# ---------------------------------------------------------------------------
# What PyTorch computes (determined empirically, docs/numerics-vs-pytorch.md)
# ---------------------------------------------------------------------------


def wrap_i32(v):
    return (np.asarray(v, np.int64) - INT32_MIN) % (2**32) + INT32_MIN


def recip(s):
    return (1.0 / np.asarray(s, np.float64)).astype(f32)


def pt_model_gemm(engine, c, relu):
    """conv2d / linear output channels last; None if no model."""
    oc = c.acc_nobias.shape[-1]
    sw = np.broadcast_to(c.wscales, (oc,)).astype(f32)
    s_in, s_out, z = c.qin.scale, c.qout.scale, c.qout.zp
    a = c.acc_nobias
    if engine == "qnnpack":
        acc = a
        if c.bias_f is not None:
            unit = (sw.astype(np.float64) * np.float64(s_in)).astype(f32)
            bq = np.rint(c.bias_f * (f32(1) / unit)).astype(np.float64)
            bq = np.clip(bq, INT32_MIN, INT32_MAX).astype(np.int64)
            acc = wrap_i32(a + bq)
        m = (sw * s_in) * (f32(1) / s_out)
        q = np.rint(acc.astype(f32) * m) + z
        return np.clip(q, z if relu else 0, 255).astype(np.int64)
    if engine == "onednn":
        isin, isw, iso = recip(s_in), recip(sw), recip(s_out)
        m = iso / (isin * isw)
        v = a.astype(f32)
        if c.bias_f is not None:
            v = v + c.bias_f * (isin * isw)
        v = v * m
        if relu:
            v = np.maximum(v, f32(0))
        with np.errstate(over="ignore", invalid="ignore"):
            q = np.rint(v + f32(z))
        return np.clip(q, 0, 255).astype(np.int64)
    return None


def pt_model_add(engine, c, relu):
    """A list of admissible results (elementwise: any of them)."""
    qa, qb, qo = c.qa, c.qb, c.qout
    if engine == "qnnpack":
        a_s = f32(np.float64(qa.scale) / np.float64(qo.scale))
        b_s = f32(np.float64(qb.scale) / np.float64(qo.scale))
        e = int(np.array(max(a_s, b_s), f32).view(np.uint32) >> 23) - 127
        shift = 21 - e
        am = int(np.rint(a_s * f32(2.0**shift)))
        bm = int(np.rint(b_s * f32(2.0**shift)))
        acc = c.q_a * am + c.q_b * bm - (am * qa.zp + bm * qb.zp)
        mask = (1 << shift) - 1
        rem = (acc & mask) - (acc < 0)
        q = (acc >> shift) + (rem > (mask >> 1)) + qo.zp
        return [np.clip(q, qo.zp if relu else 0, 255)]
    # Generic kernel (fbgemm / x86 / onednn engines): the scalar formula
    # (= ours with [0, 255]) on the last numel % 64 elements, an FMA
    # dequantize fma(q, S, -Z*S) on the vectorized part.
    inv = f32(1) / qo.scale

    def finish(r):
        if relu:
            r = np.maximum(r, f32(0))
        return np.clip(np.rint(r * inv) + qo.zp, 0, 255).astype(np.int64)

    def fma(q, qp):  # exact in double here: one rounding to float32
        return (q.astype(np.float64) * np.float64(qp.scale) +
                np.float64(qp.scale * f32(-qp.zp))).astype(f32)

    plain = finish((c.q_a - qa.zp).astype(f32) * qa.scale +
                   (c.q_b - qb.zp).astype(f32) * qb.scale)
    return [plain, finish(fma(c.q_a, qa) + fma(c.q_b, qb))]


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------


def compare(op, engine, relu, tmp_path_factory):
    if (engine == "onednn" and not has_vnni() and op != "add"):
        # Without VNNI oneDNN's vpmaddubsw saturates u8*s8 pairs at int16
        # (docs/numerics.md); PyTorch's onednn engine does not avoid it.
        pytest.skip("CPU without VNNI: PyTorch onednn saturates full-range u8")
    cs = cases(op, relu)
    ours = run_ours(tmp_path_factory, op, relu)
    stats = {}  # flavor -> [cases, elements, equal, max diff]
    model_checked = True
    worst = []
    for c, got in zip(cs, ours):
        # 1. ours == docs/numerics.md
        assert np.array_equal(got, c.ours_model), \
            f"{c.name} ({c.desc}): quant-run differs from docs/numerics.md"
        pt = torch_run(engine, op, relu, c)
        assert pt.shape == got.shape
        # 2. PyTorch == the formula in docs/numerics-vs-pytorch.md
        if op == "add":
            admissible = pt_model_add(engine, c, relu)
            ok = np.zeros(pt.shape, bool)
            for cand in admissible:
                ok |= pt == cand
        else:
            model = pt_model_gemm(engine, c, relu)
            ok = None if model is None else pt == model
        if ok is None:
            model_checked = False
        else:
            assert ok.all(), (
                f"{c.name} ({c.desc}) engine {engine}: PyTorch differs from "
                f"the documented model at {int((~ok).sum())} of {ok.size} "
                f"elements, first {np.argwhere(~ok)[:5].tolist()}")
        # 3. ours vs PyTorch
        d = np.abs(got - pt)
        for key in ("all", c.flavor):
            st = stats.setdefault(key, [0, 0, 0, 0])
            st[0] += 1
            st[1] += d.size
            st[2] += int((d == 0).sum())
            st[3] = max(st[3], int(d.max()))
        if d.max() > TOLERANCE[op]:
            worst.append(f"{c.name} ({c.desc}): max {int(d.max())} LSB at "
                         f"{np.argwhere(d == d.max())[0].tolist()}")
    name = f"{op}{'_relu' if relu else ''}/{engine}"
    print(f"\n[{name}] tolerance {TOLERANCE[op]} LSB; PyTorch model "
          f"{'verified' if model_checked else 'not available'}")
    for key in ("all", "random", "near", "ties"):
        if key not in stats:
            continue
        n_cases, total, equal, max_diff = stats[key]
        print(f"  {key:6s}: {n_cases:3d} cases, {total:6d} elements, "
              f"{100.0 * equal / total:7.3f}% exact, max diff {max_diff} LSB")
    assert not worst, "\n".join(worst)


@ENGINE_PARAMS
@pytest.mark.parametrize("relu", [False, True], ids=["none", "relu"])
def test_conv2d(tmp_path_factory, engine, relu):
    compare("conv2d", engine, relu, tmp_path_factory)


@ENGINE_PARAMS
@pytest.mark.parametrize("relu", [False, True], ids=["none", "relu"])
def test_linear(tmp_path_factory, engine, relu):
    compare("linear", engine, relu, tmp_path_factory)


@ENGINE_PARAMS
@pytest.mark.parametrize("relu", [False, True], ids=["none", "relu"])
def test_add(tmp_path_factory, engine, relu):
    compare("add", engine, relu, tmp_path_factory)


def test_case_coverage():
    """The random cases cover what they claim (tests the test)."""
    cs = cases("conv2d", False) + cases("conv2d", True)
    assert any(c.groups > 1 and c.groups == c.shape[3] for c in cs)
    assert any(1 < c.groups < c.shape[3] for c in cs)
    assert any(c.shape[0] > 1 for c in cs)
    assert any(c.shape[3] % 2 == 1 and c.shape[3] > 1 for c in cs)
    assert any(max(c.stride) > 1 for c in cs) and any(max(c.dil) > 1
                                                      for c in cs)
    assert any(max(c.pad) > 0 for c in cs)
    for op in ("conv2d", "linear"):
        cs = cases(op, False) + cases(op, True)
        assert {c.per_channel for c in cs} == {True, False}
        assert {c.bias_kind for c in cs} == {None, "int", "float"}
        assert {c.range_kind for c in cs} == {"127", "255"}
        # Odd output zero points (where adding Z before rint matters).
        assert any(c.qout.zp % 2 for c in cs)
        # Both output clamps are reached on the full-range cases.
        full = [c for c in cs if c.range_kind == "255"]
        assert any((c.ours_model == 255).any() for c in full)
        assert any((c.ours_model == c.lo).any() for c in full)


@ENGINE_PARAMS
def test_add_generic_kernel_fma_probe(engine):
    """The generic quantized add (every engine but qnnpack) dequantizes with
    fma(q, S, -Z * S) in its vectorized part (blocks of 64 u8 elements under
    AVX2) and with our formula float(q - Z) * S on the remaining numel % 64:
    elements where the two differ show both behaviours."""
    if engine == "qnnpack":
        pytest.skip("qnnpack has its own fixed-point add")
    rng = np.random.default_rng(4)
    hits = {"vector": [0, 0], "tail": [0, 0]}  # [= fma model, total]
    for _ in range(400):
        c = Case()
        c.qa, c.qb, c.qout = (t8.QParams("u8", f32(v), int(z)) for v, z in zip(
            rng.uniform(0.01, 0.2, size=3), rng.integers(0, 256, size=3)))
        c.q_a = rng.integers(0, 256, size=50000)
        c.q_b = rng.integers(0, 256, size=50000)
        plain, fma = pt_model_add(engine, c, False)
        idx = np.nonzero(plain != fma)[0][:8]
        if len(idx) == 0:
            continue
        k = len(idx)
        # The k discriminating pairs at the start (vectorized part) and again
        # after 64 elements (scalar tail of numel = 64 + k).
        fill = np.arange(64 - k)
        c.q_a = np.concatenate([c.q_a[idx], c.q_a[fill], c.q_a[idx]])
        c.q_b = np.concatenate([c.q_b[idx], c.q_b[fill], c.q_b[idx]])
        c.a, c.b = (ref_dequantize_exact(q, qp) for q, qp in
                    ((c.q_a, c.qa), (c.q_b, c.qb)))
        pt = torch_run(engine, "add", False, c)
        plain, fma = pt_model_add(engine, c, False)
        for part, sl in (("vector", slice(0, k)), ("tail", slice(64, None))):
            hits[part][0] += int((pt[sl] == fma[sl]).sum())
            hits[part][1] += k
            assert np.array_equal(pt[sl], fma[sl] if part == "vector"
                                  else plain[sl]), part
        if hits["tail"][1] >= 40:
            break
    print(f"\n[add fma/{engine}] discriminating elements: vectorized part "
          f"= FMA model {hits['vector'][0]}/{hits['vector'][1]}, scalar tail "
          f"= FMA model {hits['tail'][0]}/{hits['tail'][1]}")
    assert hits["tail"][1] >= 40


def ref_dequantize_exact(q, qp):
    """Floats that quantize back to q (q - Z is exact in float32)."""
    x = ((np.asarray(q) - qp.zp) * np.float64(qp.scale)).astype(f32)
    assert np.array_equal(t8.ref_quantize(x, qp), q)
    return x


# ---------------------------------------------------------------------------
# Bias rounding (how PyTorch turns the float bias into acc units)
# ---------------------------------------------------------------------------


def probe_bias(engine, b, s_in, s_w, m_factor):
    """1x1 linear with weight 0: acc = bias; S_out = S_in*S_w / m_factor."""
    torch.backends.quantized.engine = engine
    n = len(b)
    x = torch._make_per_tensor_quantized_tensor(
        torch.full((1, 1), 3, dtype=torch.uint8), float(s_in), 3)
    w = torch.quantize_per_tensor(torch.zeros(n, 1), float(s_w), 0,
                                  torch.qint8)
    pk = torch.ops.quantized.linear_prepack(w, torch.from_numpy(b))
    s_out = float(f32(np.float64(s_in) * np.float64(s_w))) / m_factor
    y = torch.ops.quantized.linear(x, pk, s_out, 128)
    return y.int_repr().numpy()[0].astype(np.int64) - 128


@ENGINE_PARAMS
def test_bias_rounding_probe(engine):
    """Exact ties k + 0.5 (power-of-two scales) and near-ties of random
    scales: qnnpack rounds the bias to int32 with rint(b * f32(1 / f32(S_in
    * S_w))) in float32, half to even; onednn does not round it at all."""
    if engine not in ("qnnpack", "onednn"):
        pytest.skip(f"no bias model for {engine}")
    k = np.arange(-15, 15)
    s_in, s_w = f32(2.0**-3), f32(2.0**-4)
    b = ((k + 0.5) * np.float64(s_in) * np.float64(s_w)).astype(f32)
    y = probe_bias(engine, b, s_in, s_w, 4.0)  # M = 4 shows the .5
    if engine == "qnnpack":
        assert np.array_equal(y, 4 * np.rint(k + 0.5))  # integer, even
    else:
        assert np.array_equal(y, 4 * k + 2)  # float bias kept
    rng = np.random.default_rng(5)
    agree_f32 = agree_ours = total = 0
    for _ in range(20):
        s_in, s_w = f32(rng.uniform(0.005, 0.2)), f32(rng.uniform(5e-4, .02))
        unit = np.float64(s_in) * np.float64(s_w)
        kk = rng.integers(-120, 120, size=100)
        b = ((kk + 0.5) * unit).astype(f32)
        d = rng.choice([-1, 0, 1], size=100)  # below / on / above the tie
        b = np.where(d == 0, b, np.nextafter(b, np.where(d > 0, f32(np.inf),
                                                       f32(-np.inf))))
        b = b.astype(f32)
        y = probe_bias(engine, b, s_in, s_w, 1.0)  # M ~ 1: y = rint(bias)
        pt_f32 = np.rint(b * (f32(1) / f32(unit)))
        ours = np.rint(b.astype(np.float64) / unit)
        agree_f32 += int((y == pt_f32).sum())
        agree_ours += int((y == ours).sum())
        total += y.size
    print(f"\n[bias rounding/{engine}] near-ties: PyTorch = f32 formula "
          f"{agree_f32}/{total}, = our double formula {agree_ours}/{total}")
    if engine == "qnnpack":
        assert agree_f32 == total
        assert agree_ours < total  # the probe does discriminate


# ---------------------------------------------------------------------------
# Systematic differences (> 1 LSB): strict xfails
# ---------------------------------------------------------------------------


def reduce_range_case():
    rng = np.random.default_rng(77)
    c = Case()
    c.name = "rr"
    qin = t8.QParams("u8", f32(0.05), 10, (0, 127))
    qout = t8.QParams("u8", f32(0.1), 40, (0, 127))
    c.qin, c.qout, c.per_channel, c.bias_kind = qin, qout, True, None
    c.x, c.q_in = exact_input(rng, (2, 16), qin)
    c.w_int = rng.integers(-128, 128, size=(8, 16))
    acc = (c.q_in - qin.zp) @ c.w_int.T
    # Scales that map |acc| to ~250 LSB: far beyond 127 (data outside the
    # calibrated range, which PyTorch's reduce_range scale does not clamp).
    c.wscales = (250 * np.float64(qout.scale) / (
        np.float64(qin.scale) * np.maximum(np.abs(acc).max(0), 1))).astype(f32)
    c.bias_f = c.bias_q = None
    c.acc_nobias = acc
    c.shape = (2, 16)
    c.lo, c.hi = t8.ref_act_bounds("none", qout)
    m = t8.ref_multipliers(qin.scale, c.wscales, qout.scale)
    c.ours_model = t8.ref_requantize(acc, m, qout, c.lo, c.hi)
    return c


@ENGINE_PARAMS
@pytest.mark.xfail(strict=True, reason=(
    "u8<0:127> (x86 reduce_range) output: we clamp q to [0, 127]; PyTorch's "
    "quint8 result is clamped to [0, 255] whatever the observer's quant_max, "
    "so results beyond the calibrated range differ by up to 128 LSB"))
def test_reduce_range_output_clamp(tmp_path, engine):
    c = reduce_range_case()
    a, body, rt = linear_line(c, 0, "none")
    mlir = (f"func.func @main({a}) -> {rt} {{\n{body}  return %y0 : {rt}\n}}\n")
    got = t8.run_quant_run(tmp_path, "rr", mlir, {"x0": c.x})["output"]
    got = got.astype(np.int64)
    assert np.array_equal(got, c.ours_model)
    assert got.max() == 127
    pt = torch_run(engine, "linear", False, c)
    model = pt_model_gemm(engine, c, False)
    if model is not None:
        assert np.array_equal(pt, model)
    print(f"\n[reduce_range/{engine}] ours max {got.max()}, PyTorch max "
          f"{pt.max()}, max diff {np.abs(got - pt).max()} LSB")
    assert pt.max() > 127  # the explanation holds ...
    assert np.abs(got - pt).max() <= TOLERANCE["linear"]  # ... so this fails


def bias_overflow_case():
    """S_in = S_w = 1e-3: bias unit 1e-6; biases 3e3, 1e4, -1e4, 2.1e3 and
    2e3 are 3e9, 1e10, -1e10, 2.1e9, 2e9 units (int32 max: 2.147e9)."""
    c = Case()
    c.name = "bias_overflow"
    c.qin = t8.QParams("u8", f32(1e-3), 0)
    unit = np.float64(f32(1e-3)) ** 2
    c.qout = t8.QParams("u8", f32(unit * 2**31 / 100), 128)  # 2^31 -> 100
    c.per_channel, c.bias_kind = False, "float"
    c.wscales = np.array([f32(1e-3)], f32)
    c.shape = (3, 2)
    c.q_in = np.array([[10, 20], [0, 0], [255, 255]])
    c.x = ((c.q_in) * np.float64(c.qin.scale)).astype(f32)
    c.w_int = np.array([[100, 100], [1, -1], [-5, 5], [127, 127], [30, 30]])
    c.bias_f = np.array([3e3, 1e4, -1e4, 2.1e3, 2e3], f32)
    c.acc_nobias = c.q_in @ c.w_int.T
    return c


def ours_bias_overflow(tmp_path):
    """Through the compiler: float module -> quant-opt --qnt-convert (which
    must clamp the bias with a warning) -> quant-run."""
    c = bias_overflow_case()
    qin, qout = c.qin.mlir, c.qout.mlir
    w_f = (c.w_int * np.float64(c.wscales[0])).astype(f32)
    mlir = f"""func.func @main(%x: tensor<3x2xf32> {{qnt.name = "x"}}) -> tensor<3x5xf32> {{
  %xq = quant.qcast %x : tensor<3x2xf32> to tensor<3x2x{qin}>
  %xd = quant.dcast %xq : tensor<3x2x{qin}> to tensor<3x2xf32>
  %w = arith.constant {t8.dense(w_f)} : tensor<5x2xf32>
  %wq = quant.qcast %w : tensor<5x2xf32> to tensor<5x2x{t8.wtype(c.wscales, False)}>
  %wd = quant.dcast %wq : tensor<5x2x{t8.wtype(c.wscales, False)}> to tensor<5x2xf32>
  %b = arith.constant {t8.dense(c.bias_f)} : tensor<5xf32>
  %y = qnt.linear %xd, %wd, %b : (tensor<3x2xf32>, tensor<5x2xf32>, tensor<5xf32>) -> tensor<3x5xf32>
  %yq = quant.qcast %y : tensor<3x5xf32> to tensor<3x5x{qout}>
  %yd = quant.dcast %yq : tensor<3x5x{qout}> to tensor<3x5xf32>
  return %yd : tensor<3x5xf32>
}}
"""
    src = tmp_path / "bias_overflow.mlir"
    conv = tmp_path / "bias_overflow.converted.mlir"
    src.write_text(mlir)
    t8._quant_run_binary()
    deadline = time.monotonic() + t8.BINARY_WAIT_SECONDS
    while not QUANT_OPT.is_file():  # may briefly vanish during a rebuild
        if time.monotonic() > deadline:
            pytest.fail(f"quant-opt not found at {QUANT_OPT}", pytrace=False)
        time.sleep(2)
    proc = subprocess.run([str(QUANT_OPT), str(src), "--qnt-convert", "-o",
                           str(conv)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # One warning per op: how many channels were clamped, and the first.
    warned = re.findall(r"bias of (\d+) channel\(s\) exceeds int32 .* is clamped "
                        r"\(first: channel (\d+),", proc.stderr)
    assert warned == [("3", "0")], proc.stderr
    text = conv.read_text()
    unit = np.float64(c.qin.scale) * np.float64(c.wscales[0])
    bq = np.clip(np.rint(c.bias_f.astype(np.float64) / unit), INT32_MIN,
                 INT32_MAX).astype(np.int64)
    assert bq[0] == bq[1] == INT32_MAX and bq[2] == INT32_MIN
    assert f"{t8.dense(bq)} : tensor<5xi32>".replace(" ", "") in \
        text.replace(" ", ""), text
    outs = t8.run_quant_run(tmp_path, "bias_overflow_run", text,
                            {"x": c.x})
    got = np.rint(outs["output"].astype(np.float64) /
                  np.float64(c.qout.scale)).astype(np.int64) + c.qout.zp
    # Ours: bias clamped to int32, then acc + bias saturates in int32.
    acc = np.clip(c.acc_nobias + bq, INT32_MIN, INT32_MAX)
    m = t8.ref_multipliers(c.qin.scale, c.wscales, c.qout.scale)
    assert np.array_equal(got, np.clip(np.rint(acc.astype(f32) * m) + 128,
                                       0, 255))
    return c, got


@ENGINE_PARAMS
def test_bias_overflow_behaviour(tmp_path, engine):
    """What each side does with a bias beyond int32 (in S_in * S_w units):
    ours clamps it (warning) and saturates acc + bias; qnnpack clamps it
    too but adds in int32 with wrap-around; onednn keeps it in float."""
    c, got = ours_bias_overflow(tmp_path)
    pt = torch_run(engine, "linear", False, c)
    model = pt_model_gemm(engine, c, False)
    print(f"\n[bias overflow/{engine}] ours\n{got}\nPyTorch\n{pt}")
    if model is not None:
        assert np.array_equal(pt, model)
    if engine == "qnnpack":
        # bias 3e9 units -> INT32_MAX; acc 3000 + INT32_MAX wraps negative.
        assert pt[0, 0] == 28 and got[0, 0] == 228
    if engine == "onednn":
        # bias 3e9 units: 3e9 * M = 140 LSB above Z: saturates at 255.
        assert pt[1, 0] == 255 and got[1, 0] == 228


@ENGINE_PARAMS
@pytest.mark.xfail(strict=True, reason=(
    "int32 bias overflow: we clamp the bias to int32 (with a warning) and "
    "saturate acc + bias; qnnpack clamps the bias but wraps acc + bias "
    "around int32; onednn adds the unclamped float bias b * (1/S_in)(1/S_w)"))
def test_bias_overflow_vs_pytorch(tmp_path, engine):
    c, got = ours_bias_overflow(tmp_path)
    pt = torch_run(engine, "linear", False, c)
    assert np.abs(got - pt).max() <= TOLERANCE["linear"]
