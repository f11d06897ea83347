"""bench/onnx_dynamic.py: the FP32 ONNX model rewritten as ONNX Runtime's
quantize_dynamic writes it (ORT's Python tool is not installable here),
which bench/transformer.py runs as ORT's dynamic INT8 column.

Checks the rewritten graph, not ORT (the benchmark is where ORT runs it and
reports the SQNR of its output): which nodes are quantized, the s8
weights and scales against ORT's symmetric QInt8 formula (max|W| / 127,
round half to even), a Gemm's transposed weight and its bias, and that a
MatMul of two computed tensors stays float. Needs python3-onnx."""

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import onnx_dynamic  # noqa: E402


def model():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 6)).astype(np.float32)
    w[0, 0] = 2.5 * np.abs(w).max()          # the scale's maximum
    g = rng.normal(size=(4, 6)).astype(np.float32)   # Gemm B [N, K], transB
    bias = rng.normal(size=(4,)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
        helper.make_node("Identity", ["g"], ["g_shared"]),
        helper.make_node("Gemm", ["h", "g_shared", "bias"], ["y"], transB=1, beta=0.5,
                         name="fc2"),
        helper.make_node("Transpose", ["y"], ["yt"]),
        helper.make_node("MatMul", ["y", "yt"], ["scores"], name="scores"),
    ]
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [3, 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(g, "g"),
         numpy_helper.from_array(bias, "bias")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), w, g


def test_rewrite():
    m, w, g = model()
    q, count = onnx_dynamic.quantize_dynamic(m)
    assert count == 2
    ops = Counter(n.op_type for n in q.graph.node)
    assert ops["DynamicQuantizeLinear"] == 2 and ops["MatMulInteger"] == 2
    assert ops["MatMul"] == 1 and ops["Gemm"] == 0 and ops["Identity"] == 0
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    assert "w" not in inits and "g" not in inits  # the float weights left the file
    for name, ref in (("fc1", w), ("fc2", g.T)):
        wq, scale = inits[f"{name}_qnt_W_q"], inits[f"{name}_qnt_W_scale"]
        assert wq.dtype == np.int8 and wq.shape == ref.shape
        assert scale == np.float32(np.abs(ref).max() / 127)
        np.testing.assert_array_equal(wq, np.rint(ref / scale).astype(np.int8))
        assert inits[f"{name}_qnt_W_zp"] == 0
    assert inits["fc1_qnt_W_q"][0, 0] == 127
    # The Gemm's bias, times beta, is added to the dequantized product.
    add = next(n for n in q.graph.node if n.op_type == "Add")
    assert add.output[0] == "y" and add.input[0] == "fc2_qnt_product"
    beta = next(n for n in q.graph.node if n.name == "fc2_qnt_beta")
    assert list(beta.input) == ["bias", "fc2_qnt_beta"]
    assert inits["fc2_qnt_beta"] == np.float32(0.5)
    onnx.checker.check_model(q)


def test_ties_round_to_even():
    q, scale = onnx_dynamic.quantize_weight(np.array([[127.0, 0.5, 1.5, -2.5]], np.float32))
    assert scale == 1.0
    np.testing.assert_array_equal(q, [[127, 0, 2, -2]])
    q, scale = onnx_dynamic.quantize_weight(np.zeros((2, 2), np.float32))
    assert scale == 1.0 and not q.any()
