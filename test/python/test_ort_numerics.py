"""ONNX Runtime's INT8 arithmetic, pinned down as executable facts.

docs/onnx.md ("Parity with ONNX Runtime") explains qnt's differences from
ORT on imported models by three rules of ORT's; these tests check two of
them against ORT itself (the third, the conv multiplier
f32(f32(S_x * S_w) / S_y), is measured in docs/onnx.md): an emulation in
numpy must give ORT's integers exactly, and qnt's own rule must not.

* QuantizeLinear divides: ``rint(x / S) + Z`` (qnt: ``rint(x * f32(1/S))``).
* QLinearAdd (what ORT fuses DequantizeLinear x2 -> Add -> QuantizeLinear
  into; MLAS's AVX2 kernel): ``r_a = f32(S_a / S_c)``, ``r_b = f32(S_b /
  S_c)``, ``k = f32(Z_c - fma(r_a, Z_a, f32(r_b Z_b)))`` (the compiler
  contracted MLAS's ``r_a * Z_a + r_b * Z_b``: seeds 6 and 11 are scales
  where that differs from rounding each product), then
  ``rint(fma(a, r_a, fma(b, r_b, k)))`` saturated (qnt:
  ``rint((f32(a - Z_a) S_a + f32(b - Z_b) S_b) * f32(1 / S_c)) + Z_c``).
* QLinearMul is qnt's own formula: no rule needed.
* QLinearAveragePool of a window smaller than the image pools floats:
  ``rint(f32(sum(f32(S_a * f32(q - Z_a))) / K / S_c) + Z_c)`` (the sum in
  window order); qnt compiles that under ONNX Runtime's numerics.
"""

import sys

import onnx
from onnx import TensorProto, helper, numpy_helper

from frontend_util import REPO_ROOT, np, pytest
from test_onnx_import import ort, run_imported  # noqa: F401 (ort: a fixture)

sys.path.insert(0, str(REPO_ROOT / "bench"))

f32 = np.float32
N = 1 << 16


def _model(path, nodes, inputs, output, inits):
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, t, [N]) for n, t in inputs],
        [helper.make_tensor_value_info(output, TensorProto.UINT8, [N])],
        initializer=[numpy_helper.from_array(np.asarray(v, d), n) for n, v, d in inits])
    m = helper.make_model(g, opset_imports=[helper.make_operatorsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _fma(a, b, c):
    """f32 fused multiply-add (exact in f64 for these magnitudes)."""
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(np.float32)


def test_quantize_linear_divides(ort, tmp_path):
    rng = np.random.default_rng(0)
    scale, zp = f32(0.0123), 128
    # Values at and around the .5 boundaries, where the two rules can part.
    q = rng.integers(-128, 127, N)
    x = ((q + 0.5) * np.float64(scale) + rng.normal(0, 1e-7, N)).astype(np.float32)
    path = _model(tmp_path / "q.onnx", [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
                  [("x", TensorProto.FLOAT)], "y",
                  [("s", scale, np.float32), ("z", zp, np.uint8)])
    got = ort.outputs(path, [x])[0]
    division = np.clip(np.rint(x / scale) + zp, 0, 255)
    reciprocal = np.clip(np.rint(x * (f32(1) / scale)) + zp, 0, 255)
    assert np.array_equal(got, division)
    assert not np.array_equal(got, reciprocal)


def _run_binary(ort, tmp_path, op, sa, sb, sc, za, zb, zc):
    """ORT's integers of DequantizeLinear x2 -> ``op`` -> QuantizeLinear on
    every pair of u8 inputs (a, b), after checking ORT fused the four nodes
    into its QLinear``op``: (a, b, c)."""
    a, b = (g.reshape(-1).astype(np.uint8) for g in np.meshgrid(np.arange(256), np.arange(256)))
    nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["af"]),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bf"]),
             helper.make_node(op, ["af", "bf"], ["cf"]),
             helper.make_node("QuantizeLinear", ["cf", "sc", "zc"], ["c"])]
    path = _model(tmp_path / f"{op}.onnx", nodes,
                  [("a", TensorProto.UINT8), ("b", TensorProto.UINT8)], "c",
                  [("sa", sa, np.float32), ("za", za, np.uint8), ("sb", sb, np.float32),
                   ("zb", zb, np.uint8), ("sc", sc, np.float32), ("zc", zc, np.uint8)])
    optimized = tmp_path / "opt.onnx"
    got = ort.outputs(path, [a, b], optimized=optimized)[0]
    assert [n.op_type for n in onnx.load(str(optimized)).graph.node] == [f"QLinear{op}"]
    return a, b, got


def _random_qparams(seed, output_scale):
    """(S_a, S_b, S_c, Z_a, Z_b, Z_c), S_c = output_scale(S_a, S_b, rng)."""
    rng = np.random.default_rng(seed)
    sa, sb = (f32(rng.uniform(0.005, 0.05)) for _ in range(2))
    sc = f32(output_scale(sa, sb, rng))
    za, zb, zc = (int(rng.integers(0, 256)) for _ in range(3))
    return sa, sb, sc, za, zb, zc


@pytest.mark.parametrize("seed", [0, 6, 11])
def test_qlinear_add_arithmetic(ort, tmp_path, seed):
    sa, sb, sc, za, zb, zc = _random_qparams(
        seed, lambda sa, sb, rng: (sa + sb) * rng.uniform(0.5, 1.0))  # mostly within range
    a, b, got = _run_binary(ort, tmp_path, "Add", sa, sb, sc, za, zb, zc)
    ra, rb = f32(sa / sc), f32(sb / sc)
    k = f32(f32(zc) - _fma(ra, f32(za), f32(rb * f32(zb))))
    t = _fma(a.astype(np.float32), ra, _fma(b.astype(np.float32), rb, k))
    assert np.array_equal(got, np.clip(np.rint(t), 0, 255))
    # qnt's add (docs/numerics.md) parts from it on some elements.
    r = (a.astype(np.float32) - za) * sa + (b.astype(np.float32) - zb) * sb
    ours = np.clip(np.rint(r * (f32(1) / sc)) + zc, 0, 255)
    print(f"qnt's add differs on {(ours != got).sum()} of {N} input pairs")
    assert (ours != got).mean() < 0.01


@pytest.mark.parametrize("seed", [0, 2])
def test_qlinear_mul_is_qnts_formula(ort, tmp_path, seed):
    """QLinearMul (what ORT fuses DequantizeLinear x2 -> Mul ->
    QuantizeLinear into) gives qnt's own `rint(f32(a - Z_a) S_a * f32(b -
    Z_b) S_b * f32(1 / S_c)) + Z_c` on every input pair (measured on 6 scale
    sets): ONNX Runtime's numerics need no rule of their own for mul."""
    sa, sb, sc, za, zb, zc = _random_qparams(
        seed, lambda sa, sb, rng: sa * sb * rng.uniform(20, 60))
    a, b, got = _run_binary(ort, tmp_path, "Mul", sa, sb, sc, za, zb, zc)
    fa = (a.astype(np.float32) - za) * sa
    fb = (b.astype(np.float32) - zb) * sb
    ours = np.clip(np.rint(fa * fb * (f32(1) / sc)) + zc, 0, 255)
    assert ((got > 0) & (got < 255)).mean() > 0.3  # not saturated
    assert np.array_equal(got, ours)


def _pool_model(path, shape, kernel, strides, sa, za, sc, zc, form="qdq"):
    """float -> QuantizeLinear -> DequantizeLinear -> AveragePool (no pads) ->
    QuantizeLinear -> DequantizeLinear, what ORT fuses into
    QLinearAveragePool (``form="qdq"``); or that com.microsoft op itself
    between the QuantizeLinear and the last DequantizeLinear (``"op"``; with
    ``"op_nhwc"`` on an NHWC input, channels_last)."""
    pool = dict(kernel_shape=list(kernel), strides=list(strides))
    if form == "qdq":
        nodes = [helper.make_node("DequantizeLinear", ["xq", "sa", "za"], ["xf"]),
                 helper.make_node("AveragePool", ["xf"], ["pf"], **pool),
                 helper.make_node("QuantizeLinear", ["pf", "sc", "zc"], ["pq"])]
    else:
        nodes = [helper.make_node("QLinearAveragePool", ["xq", "sa", "za", "sc", "zc"], ["pq"],
                                  domain="com.microsoft", channels_last=int(form == "op_nhwc"),
                                  **pool)]
    nodes = ([helper.make_node("QuantizeLinear", ["x", "sa", "za"], ["xq"])] + nodes
             + [helper.make_node("DequantizeLinear", ["pq", "sc", "zc"], ["output"])])
    oh, ow = ((shape[2] - kernel[0]) // strides[0] + 1, (shape[3] - kernel[1]) // strides[1] + 1)
    out_shape = [shape[0], shape[1], oh, ow]
    if form == "op_nhwc":
        shape = [shape[0], shape[2], shape[3], shape[1]]
        out_shape = [shape[0], oh, ow, shape[3]]
    g = helper.make_graph(
        nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v, d), n) for n, v, d in
                     [("sa", sa, np.float32), ("za", za, np.uint8), ("sc", sc, np.float32),
                      ("zc", zc, np.uint8)]])
    m = helper.make_model(g, opset_imports=[helper.make_operatorsetid("", 13),
                                            helper.make_operatorsetid("com.microsoft", 1)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


# Scale sets where qnt's own formula parts from ORT's on some outputs.
@pytest.mark.parametrize("seed,kernel,strides", [(49, (3, 3), (1, 1)), (96, (2, 2), (1, 1)),
                                                 (49, (3, 2), (2, 1))])
def test_qlinear_average_pool_arithmetic(ort, tmp_path, seed, kernel, strides):
    """QLinearAveragePool of a window smaller than the image (ORT's
    contrib_ops/cpu/qlinear_pool.cc): every input dequantized as ``f32(S_a *
    f32(q - Z_a))``, summed in f32 in window order (rows, then columns),
    divided by the window size, then ``rint(f32(y / S_c) + Z_c)`` (the zero
    point added before rounding) saturated. qnt compiles it to the same
    integers under ONNX Runtime's numerics; its own integer window sum parts
    from it on some outputs."""
    rng = np.random.default_rng(seed)
    sa, sc = f32(rng.uniform(0.005, 0.05)), f32(rng.uniform(0.005, 0.05))
    za, zc = (int(rng.integers(0, 256)) for _ in range(2))
    shape = (2, 16, 48, 48)
    q = rng.integers(0, 256, shape)
    # Quantizes back to q exactly (ORT's division rounds f32((q - Z) S) / S
    # to q - Z).
    x = ((q - za).astype(np.float32) * sa).astype(np.float32)
    path = _pool_model(tmp_path / "pool.onnx", shape, kernel, strides, sa, za, sc, zc)
    optimized = tmp_path / "opt.onnx"
    got = ort.outputs(path, [x], optimized=optimized)[0]
    assert "QLinearAveragePool" in [n.op_type for n in onnx.load(str(optimized)).graph.node]
    got_q = np.rint(got / sc).astype(np.int64) + zc

    # The emulation, in f32 and in ORT's order.
    d = (sa * (q - za).astype(np.float32)).astype(np.float32)
    kh, kw = kernel
    oh, ow = got.shape[2:]
    acc = np.zeros(got.shape, np.float32)
    for i in range(kh):
        for j in range(kw):
            acc = (acc + d[:, :, i:i + strides[0] * (oh - 1) + 1:strides[0],
                           j:j + strides[1] * (ow - 1) + 1:strides[1]]).astype(np.float32)
    y = (acc / f32(kh * kw)).astype(np.float32)
    t = (y / sc).astype(np.float32) + f32(zc)
    emulated = np.clip(np.rint(t.astype(np.float32)), 0, 255)
    assert ((emulated > 0) & (emulated < 255)).mean() > 0.5  # not saturated
    assert np.array_equal(got_q, emulated)
    # qnt's own formula: integer sum times f32(S_a / S_c / K).
    isum = sum((q - za)[:, :, i:i + strides[0] * (oh - 1) + 1:strides[0],
                        j:j + strides[1] * (ow - 1) + 1:strides[1]]
               for i in range(kh) for j in range(kw))
    ours = np.clip(np.rint(isum.astype(np.float32) * f32(sa / sc / (kh * kw))) + zc, 0, 255)
    print(f"qnt's formula differs on {(ours != got_q).sum()} of {got_q.size} outputs")
    assert (ours != got_q).any()

    # The imported model gives ORT's outputs bit for bit, and so does the
    # operator form (NCHW and NHWC).
    np.testing.assert_array_equal(
        run_imported(path, [x], tmp_path, int8=True, names=("x",)), got)
    op = _pool_model(tmp_path / "op.onnx", shape, kernel, strides, sa, za, sc, zc, "op")
    np.testing.assert_array_equal(ort.outputs(op, [x])[0], got)
    np.testing.assert_array_equal(run_imported(op, [x], tmp_path, int8=True, names=("x",)), got)
    nhwc = _pool_model(tmp_path / "nhwc.onnx", shape, kernel, strides, sa, za, sc, zc, "op_nhwc")
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got_nhwc = got.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(ort.outputs(nhwc, [x_nhwc])[0], got_nhwc)
    np.testing.assert_array_equal(
        run_imported(nhwc, [x_nhwc], tmp_path, int8=True, names=("x",)), got_nhwc)


@pytest.mark.parametrize("size,kernel,stride,pad,ceil", [
    (24, 3, 2, 1, 1), (23, 3, 2, 0, 1), (10, 4, 3, 1, 1),
    (5, 7, 1, 1, 0)])  # a kernel the size of the padded image: not ORT's global pooling
def test_average_pool_padded_windows(ort, tmp_path, size, kernel, stride, pad, ceil):
    """AveragePool with ceil_mode=1 and count_include_pad=1, where a last
    window runs past the padded input: ONNX Runtime's float AveragePool
    divides it by the part inside (as PyTorch), its QLinearAveragePool (what
    it runs between QDQ) by the whole kernel. The importer gives ORT's
    outputs in both: FP32 within 1e-5, QDQ bit for bit. (A padded window
    the size of the padded image is not ORT's QLinearGlobalAveragePool
    either: ORT takes that only without pads.)"""
    # One output per image and channel without ceil_mode: many of them.
    shape = [1, 4, size, size] if ceil else [64, 64, size, size]
    if ceil:
        out = -(-(size + 2 * pad - kernel) // stride) + 1
        if (out - 1) * stride >= size + pad:
            out -= 1
    else:
        out = (size + 2 * pad - kernel) // stride + 1
    pool = dict(kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pad] * 4,
                ceil_mode=ceil, count_include_pad=1)
    rng = np.random.default_rng(size)
    x = rng.uniform(-1, 3, shape).astype(np.float32)
    # (S_in, S_out, Z): without ceil_mode a scale set where ORT's global
    # pooling formula would part from its windowed one on a few outputs, on
    # inputs spread over the whole u8 range.
    scales = (0.02, 0.013, 60) if ceil else (0.04102268069982529, 0.022057052701711655, 249)
    if not ceil:
        q = rng.integers(0, 256, shape)
        x = ((q - scales[2]).astype(np.float32) * np.float32(scales[0])).astype(np.float32)
    for qdq in (False, True):
        if qdq:
            nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                     helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
                     helper.make_node("AveragePool", ["xf"], ["pf"], **pool),
                     helper.make_node("QuantizeLinear", ["pf", "s2", "z"], ["pq"]),
                     helper.make_node("DequantizeLinear", ["pq", "s2", "z"], ["output"])]
        else:
            nodes = [helper.make_node("AveragePool", ["x"], ["output"], **pool)]
        g = helper.make_graph(
            nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape[:2] + [out, out])],
            initializer=[numpy_helper.from_array(np.asarray(v, d), n) for n, v, d in
                         [("s", scales[0], np.float32), ("s2", scales[1], np.float32),
                          ("z", scales[2], np.uint8)]])
        m = helper.make_model(g, opset_imports=[helper.make_operatorsetid("", 13)])
        m.ir_version = 8
        path = tmp_path / f"pool{int(qdq)}.onnx"
        onnx.save(m, str(path))
        want = ort.outputs(path, [x])[0]
        got = run_imported(path, [x], tmp_path, int8=qdq, names=("x",))
        assert got.shape == want.shape
        if qdq:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
