"""Dynamic INT8 quantization of an FP32 ONNX model, as ONNX Runtime's
`onnxruntime.quantization.quantize_dynamic(model, out)` writes it with its
defaults (weight_type QInt8, per_channel False, reduce_range False): the
Python tool is on PyPI only, so the benchmark rewrites the graph itself.

Every MatMul whose second input is a 2-D constant weight [K, N], and every
Gemm (alpha 1, transA 0) with a constant B, becomes

    A_q, A_scale, A_zp = DynamicQuantizeLinear(A)     # u8, per call
    Y_i32 = MatMulInteger(A_q, W_q, A_zp, 0)           # W_q s8 [K, N]
    Y = Cast(Y_i32, float) * (A_scale * W_scale)  (+ beta * C for a Gemm)

with W_q = round(W / W_scale) (half to even), W_scale = max|W| / 127
(ORT's symmetric QInt8 range: 2 max|W| / 254). MatMuls between two
computed tensors (attention scores and context) stay float, as ORT leaves
them unless they have a constant input.

    quantize_dynamic(onnx.load("fp32.onnx")) -> (onnx.ModelProto, count)
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _weights(graph):
    """{name: numpy array} of the initializers and of Identity / Constant
    nodes that forward one (torch.onnx.export shares equal weights so)."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
        elif node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def quantize_weight(w):
    """(s8 array, float32 scale): ORT's symmetric per-tensor QInt8."""
    w = np.asarray(w, np.float32)
    rmax = float(np.max(np.abs(w))) if w.size else 0.0
    scale = np.float32(rmax / 127.0) if rmax > 0 else np.float32(1.0)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def quantize_dynamic(model):
    """The rewritten copy of `model` and the number of quantized nodes."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = _weights(graph)
    nodes, extra_inits, count = [], [], 0
    for node in graph.node:
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        attrs = _attrs(node)
        plain_gemm = (node.op_type == "Gemm" and attrs.get("transA", 0) == 0
                      and attrs.get("alpha", 1.0) == 1.0)
        if w is None or w.ndim != 2 or not (node.op_type == "MatMul" or plain_gemm):
            nodes.append(node)
            continue
        if node.op_type == "Gemm" and attrs.get("transB", 0):
            w = w.T
        count += 1
        p = f"{node.name or node.output[0]}_qnt"
        q, scale = quantize_weight(w)
        extra_inits += [numpy_helper.from_array(np.ascontiguousarray(q), p + "_W_q"),
                        numpy_helper.from_array(np.array(0, np.int8), p + "_W_zp"),
                        numpy_helper.from_array(np.array(scale, np.float32), p + "_W_scale")]
        out = node.output[0]
        product = out if node.op_type == "MatMul" or len(node.input) < 3 else p + "_product"
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [node.input[0]],
                             [p + "_A_q", p + "_A_scale", p + "_A_zp"], name=p + "_quantize"),
            helper.make_node("MatMulInteger", [p + "_A_q", p + "_W_q", p + "_A_zp", p + "_W_zp"],
                             [p + "_i32"], name=p + "_matmul"),
            helper.make_node("Cast", [p + "_i32"], [p + "_f32"], to=TensorProto.FLOAT,
                             name=p + "_cast"),
            helper.make_node("Mul", [p + "_A_scale", p + "_W_scale"], [p + "_scale"],
                             name=p + "_scale"),
            helper.make_node("Mul", [p + "_f32", p + "_scale"], [product], name=p + "_dequantize"),
        ]
        if product != out:
            bias = node.input[2]
            beta = attrs.get("beta", 1.0)
            if beta != 1.0:
                extra_inits.append(numpy_helper.from_array(np.array(beta, np.float32),
                                                           p + "_beta"))
                nodes.append(helper.make_node("Mul", [bias, p + "_beta"], [p + "_bias"],
                                              name=p + "_beta"))
                bias = p + "_bias"
            nodes.append(helper.make_node("Add", [product, bias], [out], name=p + "_bias"))
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(extra_inits)
    # Nodes and weights nothing reads any more (the float weights and the
    # Identity nodes that forwarded them) leave the file.
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        live = [n for n in nodes if any(o in used for o in n.output)]
        if len(live) == len(nodes):
            break
        nodes = live
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    return model, count
