"""What the op handlers share: layouts and small helpers."""

import numpy as np
import torch

NHWC_PERM = (0, 2, 3, 1)   # NCHW value -> NHWC
NCHW_PERM = (0, 3, 1, 2)   # NHWC value -> NCHW; also: PyTorch dim d is NHWC axis NCHW_PERM[d]


def _nhwc_shape(shape):
    return tuple(shape[p] for p in NHWC_PERM)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _keeps_order(shape, perm):
    """True if transposing ``shape`` by ``perm`` only moves size-1 dims (a reshape)."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def _normalize_dims(dims, rank):
    return tuple(sorted(int(d) % rank for d in dims))


def _param(t):
    return t.detach().cpu().numpy().astype(np.float32)


# The dtypes a model's tensors may have, and their MLIR element types.
ELEMENTS = {torch.float32: "f32", torch.int64: "i64", torch.int32: "i32", torch.bool: "i1"}

_PROMOTION = ("i1", "i32", "i64", "f32")


def promote(elements):
    """PyTorch's type promotion among the element types of ``ELEMENTS``."""
    return max(elements, key=_PROMOTION.index)
