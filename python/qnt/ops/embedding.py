"""Embedding lookups: nn.Embedding and F.embedding, as ``tosa.gather``.

The ids are clamped into [0, num_embeddings) before the gather, so no id
can read outside the table; ids that come from a model input (directly or
through reshapes and integer casts) also put a ``qnt.valid_range`` on that
argument, which quant-run and the compiled C API check before a run: an id
out of range is an error there, as it is in PyTorch, not a clamped lookup.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ir import Value
from ._common import _param

# Ops that pass ids through unchanged (up to shape and integer width), back
# to the input an embedding's ids come from.
_ID_PRESERVING_METHODS = {"view", "reshape", "flatten", "unsqueeze", "squeeze", "contiguous",
                          "long", "int", "to", "expand", "permute", "transpose"}
_ID_PRESERVING_FUNCTIONS = {torch.flatten, torch.reshape, torch.unsqueeze, torch.squeeze,
                            torch.permute, torch.transpose}


def _source_argument(ctx, node):
    """The model input the ids node forwards, or None."""
    while node.op != "placeholder":
        if not node.args or not hasattr(node.args[0], "op"):
            return None
        if node.op == "call_method" and node.target in _ID_PRESERVING_METHODS:
            node = node.args[0]
        elif node.op == "call_function" and node.target in _ID_PRESERVING_FUNCTIONS:
            node = node.args[0]
        else:
            return None
    return ctx.arguments.get(node)


def embedding(ctx, ids, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """``weight[ids]``: padding_idx only changes training (its row's
    gradient), so the lookup is the same for every id."""
    if max_norm is not None:
        raise ctx.error("embedding with max_norm is not supported (it renormalizes the "
                        "weight in place)")
    if ids.element not in ("i64", "i32"):
        raise ctx.error(f"embedding ids must be an int64 or int32 tensor, got {ids.element}")
    table = ctx.constant(weight) if isinstance(weight, Value) else weight
    if table is None:
        raise ctx.error("embedding of a computed weight is not supported (a parameter or "
                        "buffer of the model)")
    vocab, dim = table.shape
    ids_node = ctx.node.args[0] if ctx.node.args else ctx.node.kwargs.get("input")
    argument = _source_argument(ctx, ids_node) if hasattr(ids_node, "op") else None
    if argument is not None:
        ctx.b.bound_argument(argument, 0, vocab)
    count = 1
    for d in ids.torch_shape:
        count *= d
    flat = ctx.reshape(ids, (1, count))
    flat = ctx.op("tosa.clamp", [flat], flat.shape,
                  {"min_val": f"0 : {flat.element}", "max_val": f"{vocab - 1} : {flat.element}"})
    if flat.element != "i32":
        flat = ctx.op("tosa.cast", [flat], flat.shape, element="i32")
    values = ctx.const(table.reshape(1, vocab, dim), "weight")
    rows = ctx.op("tosa.gather", [values, flat], (1, count, dim))
    return ctx.reshape(rows, tuple(ids.torch_shape) + (dim,))


def embedding_module(ctx, m, ids):
    return embedding(ctx, ids, _param(m.weight), m.padding_idx, m.max_norm)


MODULES = {nn.Embedding: embedding_module}

FUNCTIONS = {F.embedding: embedding}

METHODS = {}
