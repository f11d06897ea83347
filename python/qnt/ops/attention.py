"""Attention: matmul / bmm / ``@`` between activations (broadcast batch
dims), ``F.linear``, softmax and log_softmax, ``nn.MultiheadAttention``
and the transformer layers of ``torch.nn`` (encoder and decoder, post- and
pre-norm), decomposed into linears, matmuls, softmax and layer norm."""

import math
import operator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ir
from ._common import _normalize_dims, _param
from .conv_pool import _linear
from .conv_pool import linear as linear_module
from .elementwise import gelu, logical_and, logical_not, masked_fill, relu, where
from .normalization import layer_norm_module


def _matmul3(ctx, a, b):
    """``tosa.matmul`` of [N, M, K] and [N, K, W]."""
    zp = ctx.b.zero_point()
    return ctx.op("tosa.matmul", [a, b, zp, zp], (a.shape[0], a.shape[1], b.shape[2]))


def matmul(ctx, a, b):
    """torch.matmul: 1-D operands get a unit dim, batch dims broadcast. When
    the right operand has no batch (a weight, ``x @ w``), the left one's
    batches become rows of one matmul."""
    a, b = ctx.to_torch(a), ctx.to_torch(b)
    if a.rank == 1 and b.rank == 1:
        raise ctx.error("matmul of two vectors (a dot product) is not supported")
    out = ctx.out_shape()
    if a.rank == 1:
        a = ctx.reshape(a, (1,) + a.shape)
    if b.rank == 1:
        b = ctx.reshape(b, b.shape + (1,))
    *batch_a, m, k = a.shape
    *batch_b, _, n = b.shape
    constant = ctx.constant(b)
    if math.prod(batch_b) == 1:
        if constant is not None:  # the form --qnt-fuse lifts into a linear
            return ctx.reshape(_linear(ctx, a, constant.reshape(k, n).T, None,
                                       float_in_pytorch=True), out)
        rows = math.prod(batch_a) * m
        y = _matmul3(ctx, ctx.reshape(a, (1, rows, k)), ctx.reshape(b, (1, k, n)))
        return ctx.reshape(y, out)
    batch = tuple(np.broadcast_shapes(tuple(batch_a), tuple(batch_b)))
    count = math.prod(batch)
    operands = []
    for v, tail in ((a, (m, k)), (b, (k, n))):
        operands.append(ctx.reshape(ctx.broadcast(v, batch + tail), (count,) + tail))
    return ctx.reshape(_matmul3(ctx, *operands), out)


def linear(ctx, x, weight, bias=None):
    """F.linear; a weight that is not a constant is an activation."""
    w, b = ctx.constant(weight), ctx.constant(bias) if bias is not None else None
    if w is not None and (bias is None or b is not None):
        return _linear(ctx, x, w, b, float_in_pytorch=True)
    y = matmul(ctx, x, transpose_last(ctx, weight))
    return y if bias is None else ctx.add(y, bias)


def transpose_last(ctx, v):
    v = ctx.to_torch(v)
    perm = list(range(v.rank))
    perm[-2:] = perm[-1], perm[-2]
    return ctx.permute(v, perm)


def _softmax_parts(ctx, name, x, dim, dtype):
    """(x - max, exp(x - max), its sum) over ``dim``, for ``name``."""
    if dtype not in (None, torch.float32):
        raise ctx.error(f"{name} with dtype={dtype} is not supported")
    if dim is None:
        raise ctx.error(f"{name} without dim is not supported")
    d = _normalize_dims([dim], len(x.torch_shape))
    shifted = ctx.sub(x, ctx.reduce("tosa.reduce_max", x, d))
    exp = ctx.unary("tosa.exp", shifted)
    return shifted, exp, ctx.reduce("tosa.reduce_sum", exp, d)


def softmax(ctx, x, dim=None, _stacklevel=3, dtype=None):
    with ctx.composite("softmax"):
        _, exp, total = _softmax_parts(ctx, "softmax", x, dim, dtype)
        return ctx.mul(exp, ctx.unary("tosa.reciprocal", total))


def log_softmax(ctx, x, dim=None, _stacklevel=3, dtype=None):
    with ctx.composite("log_softmax"):
        shifted, _, total = _softmax_parts(ctx, "log_softmax", x, dim, dtype)
        return ctx.sub(shifted, ctx.unary("tosa.log", total))


# ---------------------------------------------------------------------------
# nn.MultiheadAttention and the transformer layers
# ---------------------------------------------------------------------------

def _child(ctx, parent, name, handler, *args):
    """``handler(ctx, parent.<name>, *args)`` located at the child's path."""
    with ctx.scope(name):
        return handler(ctx, getattr(parent, name), *args)


def _heads(ctx, x, heads, batch_first):
    """[L, N, E] (batch_first: [N, L, E]) -> [N * heads, L, E / heads], as
    PyTorch's ``view(L, N * heads, d).transpose(0, 1)``. The heads are split
    off before the transpose, so the transpose reads its input where it lies
    (a slice of the fused q/k/v projection included) instead of a copy."""
    if batch_first:
        batch, length, embed = x.shape
        split, perm = (batch, length, heads, embed // heads), (0, 2, 1, 3)
    else:
        length, batch, embed = x.shape
        split, perm = (length, batch, heads, embed // heads), (1, 2, 0, 3)
    per_head = ctx.permute(ctx.reshape(x, split), perm)  # [N, heads, L, d]
    return ctx.reshape(per_head, (batch * heads, length, embed // heads))


def _merge_heads(ctx, context, batch, batch_first):
    """[N * heads, L, d] -> [L * N, E] (batch_first: [N * L, E]), the
    layout of the input rows."""
    count, length, d = context.shape
    heads = count // batch
    per_head = ctx.reshape(context, (batch, heads, length, d))
    rows = ctx.permute(per_head, (0, 2, 1, 3) if batch_first else (2, 0, 1, 3))
    return ctx.reshape(rows, (batch * length, heads * d))


def _projections(ctx, m, query, key, value):
    """q, k, v of [L or S, N, E] (batch_first: [N, L or S, E]): one linear
    for self-attention (query, key and value the same tensor), else one per
    input."""
    embed = m.embed_dim
    bias = _param(m.in_proj_bias) if m.in_proj_bias is not None else None
    if m._qkv_same_embed_dim:
        weight = _param(m.in_proj_weight)
        weights = [weight[i * embed:(i + 1) * embed] for i in range(3)]
        if query.name == key.name == value.name:
            with ctx.scope("in_proj"):
                qkv = _linear(ctx, query, weight, bias, float_in_pytorch=True)
            rows, columns, _ = query.shape
            return [ctx.slice(qkv, [0, 0, i * embed], [rows, columns, embed]) for i in range(3)]
    else:
        weights = [_param(getattr(m, f"{n}_proj_weight")) for n in "qkv"]
    out = []
    for i, (name, x) in enumerate(zip("qkv", (query, key, value))):
        with ctx.scope(f"{name}_proj"):
            b = bias[i * embed:(i + 1) * embed] if bias is not None else None
            out.append(_linear(ctx, x, weights[i], b, float_in_pytorch=True))
    return out


def _mask_operand(ctx, mask, what, shape):
    """An additive float mask: a bool mask (True: not attended) becomes
    -inf / 0 as PyTorch makes it."""
    if mask is None:
        return None
    if tuple(mask.torch_shape) not in shape:
        raise ctx.error(f"MultiheadAttention {what} of shape {list(mask.torch_shape)}, expected "
                        + " or ".join(str(list(s)) for s in shape))
    if mask.element == "i1":
        return where(ctx, mask, float("-inf"), 0.0)
    if mask.element != "f32":
        raise ctx.error(f"MultiheadAttention {what} must be bool or float, got {mask.element}")
    return ctx.to_torch(mask)


def multi_head_attention(ctx, m, query, key, value, key_padding_mask=None, need_weights=True,
                         attn_mask=None, average_attn_weights=True):
    """PyTorch's multi_head_attention_forward in eval mode: projections,
    ``softmax(q / sqrt(d) @ k^T + masks) @ v`` per head, out_proj. Masks are
    additive float tensors (attn_mask [L, S] or [N * heads, L, S],
    key_padding_mask [N, S]). Every op is marked qnt.float_in_pytorch: FX
    leaves the module float."""
    with ctx.float_in_pytorch():
        return _multi_head_attention(ctx, m, query, key, value, key_padding_mask, need_weights,
                                     attn_mask, average_attn_weights)


def _multi_head_attention(ctx, m, query, key, value, key_padding_mask, need_weights, attn_mask,
                          average_attn_weights):
    if m.bias_k is not None or m.add_zero_attn:
        raise ctx.error("MultiheadAttention with add_bias_kv or add_zero_attn is not supported")
    query, key, value = (ctx.to_torch(v) for v in (query, key, value))
    # batch_first inputs keep their layout: the head split and merge below
    # transpose them anyway.
    if m.batch_first:
        batch, length, embed = query.shape
        source = key.shape[1]
    else:
        length, batch, embed = query.shape
        source = key.shape[0]
    heads = m.num_heads
    attn_mask = _mask_operand(ctx, attn_mask, "attn_mask",
                              [(length, source), (batch * heads, length, source)])
    key_padding_mask = _mask_operand(ctx, key_padding_mask, "key_padding_mask",
                                     [(batch, source)])
    q, k, v = (_heads(ctx, x, heads, m.batch_first)
               for x in _projections(ctx, m, query, key, value))
    q = ctx.mul(q, 1.0 / math.sqrt(embed // heads))
    scores = _matmul3(ctx, q, ctx.permute(k, (0, 2, 1)))
    if attn_mask is not None:
        scores = ctx.add(scores, attn_mask)
    if key_padding_mask is not None:
        per_batch = ctx.reshape(scores, (batch, heads, length, source))
        padded = ctx.add(per_batch, ctx.reshape(key_padding_mask, (batch, 1, 1, source)))
        scores = ctx.reshape(padded, (batch * heads, length, source))
    attn = softmax(ctx, scores, -1)
    context = _matmul3(ctx, attn, v)  # [N * heads, L, d]
    context = _merge_heads(ctx, context, batch, m.batch_first)
    out = ctx.reshape(_child(ctx, m, "out_proj", linear_module, context),
                      query.shape)
    if not need_weights:
        return out, None
    weights = ctx.reshape(attn, (batch, heads, length, source))
    if average_attn_weights:
        weights = ctx.reshape(ctx.mul(ctx.reduce("tosa.reduce_sum", weights, (1,)), 1.0 / heads),
                              (batch, length, source))
    return out, weights


def _activation(ctx, layer, x):
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return relu(ctx, x)
    if act is F.gelu:
        return gelu(ctx, x)
    if isinstance(act, nn.GELU):
        return gelu(ctx, x, act.approximate)
    raise ctx.error(f"{type(layer).__name__} with activation {act!r} is not supported "
                    f"(relu or gelu)")


def _attention_block(ctx, layer, name, x, memory, mask, padding):
    out, _ = _child(ctx, layer, name, multi_head_attention, x, memory, memory, padding, False,
                    mask)
    return out


def _feed_forward(ctx, layer, x):
    hidden = _child(ctx, layer, "linear1", linear_module, x)
    with ctx.scope("activation"):
        hidden = _activation(ctx, layer, hidden)
    return _child(ctx, layer, "linear2", linear_module, hidden)


def _residual_blocks(ctx, layer, x, blocks):
    """``x + block(norm(x))`` (norm_first) or ``norm(x + block(x))`` for each
    (norm name, block) in order."""
    for norm, block in blocks:
        if layer.norm_first:
            x = ctx.add(x, block(_child(ctx, layer, norm, layer_norm_module, x)))
        else:
            x = _child(ctx, layer, norm, layer_norm_module, ctx.add(x, block(x)))
    return x


def encoder_layer(ctx, m, src, src_mask=None, src_key_padding_mask=None):
    return _residual_blocks(ctx, m, ctx.to_torch(src), [
        ("norm1", lambda x: _attention_block(ctx, m, "self_attn", x, x, src_mask,
                                             src_key_padding_mask)),
        ("norm2", lambda x: _feed_forward(ctx, m, x))])


def decoder_layer(ctx, m, tgt, memory, tgt_mask=None, memory_mask=None,
                  tgt_key_padding_mask=None, memory_key_padding_mask=None):
    memory = ctx.to_torch(memory)
    return _residual_blocks(ctx, m, ctx.to_torch(tgt), [
        ("norm1", lambda x: _attention_block(ctx, m, "self_attn", x, x, tgt_mask,
                                             tgt_key_padding_mask)),
        ("norm2", lambda x: _attention_block(ctx, m, "multihead_attn", x, memory, memory_mask,
                                             memory_key_padding_mask)),
        ("norm3", lambda x: _feed_forward(ctx, m, x))])


def _stack(ctx, m, x, layer_handler, *args, before_norm=lambda x: x):
    for i in range(len(m.layers)):
        with ctx.scope(f"layers.{i}"):
            x = layer_handler(ctx, m.layers[i], x, *args)
    x = before_norm(x)
    if m.norm is not None:
        x = _child(ctx, m, "norm", layer_norm_module, x)
    return x


def _takes_nested_path(m, src, mask, padding):
    """Whether PyTorch 1.13's TransformerEncoder.forward (eval, no grad)
    runs the layers on a nested tensor, for everything but the mask's
    alignment, which depends on its values."""
    first = m.layers[0]
    return (isinstance(first, nn.TransformerEncoderLayer) and not first.norm_first
            and first.self_attn.batch_first and first.self_attn._qkv_same_embed_dim
            and first.activation_relu_or_gelu and first.norm1.eps == first.norm2.eps
            and src.rank == 3 and m.enable_nested_tensor and padding is not None
            and mask is None and first.self_attn.num_heads % 2 == 0)


def _zero_padding(ctx, m, x, padding):
    """PyTorch's nested-tensor result: the padded positions of ``x`` are 0
    when every row of the padding mask is left-aligned (valid positions,
    then padding), which PyTorch checks on the values unless
    ``mask_check=False``; otherwise ``x`` as computed."""
    padded = ctx.cast(ctx.to_torch(padding), "i1")
    batch, source = padded.shape
    zero = padded
    if getattr(m, "mask_check", True) and source > 1:
        head = ctx.slice(padded, (0, 0), (batch, source - 1))
        tail = ctx.slice(padded, (0, 1), (batch, source - 1))
        gap = logical_and(ctx, head, logical_not(ctx, tail))  # padding, then a valid position
        for axis in (1, 0):
            shape = list(gap.shape)
            shape[axis] = 1
            gap = ctx.op("tosa.reduce_any", [gap], tuple(shape), {"axis": ir.i32_attr(axis)},
                         element="i1")
        zero = logical_and(ctx, padded, logical_not(ctx, gap))
    return masked_fill(ctx, ctx.to_torch(x), ctx.reshape(zero, (batch, source, 1)), 0.0)


def encoder(ctx, m, src, mask=None, src_key_padding_mask=None):
    nested = _takes_nested_path(m, src, mask, src_key_padding_mask)
    return _stack(ctx, m, src, encoder_layer, mask, src_key_padding_mask,
                  before_norm=lambda x: _zero_padding(ctx, m, x, src_key_padding_mask)
                  if nested else x)


def decoder(ctx, m, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
            memory_key_padding_mask=None):
    return _stack(ctx, m, tgt, decoder_layer, memory, tgt_mask, memory_mask,
                  tgt_key_padding_mask, memory_key_padding_mask)


MODULES = {
    nn.MultiheadAttention: multi_head_attention,
    nn.TransformerEncoderLayer: encoder_layer,
    nn.TransformerDecoderLayer: decoder_layer,
    nn.TransformerEncoder: encoder,
    nn.TransformerDecoder: decoder,
    nn.Softmax: lambda ctx, m, x: softmax(ctx, x, m.dim),
    nn.LogSoftmax: lambda ctx, m, x: log_softmax(ctx, x, m.dim),
}

FUNCTIONS = {
    torch.matmul: matmul, operator.matmul: matmul, torch.bmm: matmul,
    F.linear: linear,
    F.softmax: softmax, torch.softmax: softmax,
    F.log_softmax: log_softmax, torch.log_softmax: log_softmax,
}

METHODS = {"matmul": matmul, "bmm": matmul, "softmax": softmax, "log_softmax": log_softmax}
