"""Calibration and evaluation data sets in the format quant-run reads.

A data set is an ``.npz`` with one array per function argument (float32;
int64, int32 or bool for token ids and masks),
named like the argument's ``qnt.name`` (the ``forward()`` parameter name for
exported models), shaped ``[S] + argument shape``: S samples, each one call
of the function.  Other arrays (``labels``) may be added; quant-run ignores
them.  ``quant-run model.mlir --calibrate set.npz`` and ``quant-run
model.mlir -i set.npz --samples`` read it.

Examples stacked the PyTorch way ([N, C, H, W] images) become samples of
the exported batch size: ``samples(images, batch=1)`` is [N, 1, C, H, W].
"""

import numpy as np

from ._files import atomic_output


# The dtypes an argument may have (quant-run's f32, i64, i32, i1), kept;
# other numbers (float64, uint8 pixels, ...) become float32.
_KEPT_DTYPES = {np.dtype(t) for t in ("float32", "int64", "int32", "bool")}


def _numpy(x):
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def samples(examples, batch=1):
    """Examples stacked along axis 0, [N, ...], as N / batch samples [batch, ...]."""
    a = _numpy(examples)
    if a.ndim == 0 or a.shape[0] == 0 or a.shape[0] % batch:
        raise ValueError(f"cannot split {a.shape[0] if a.ndim else 0} examples into "
                         f"samples of batch {batch}")
    return a.reshape(a.shape[0] // batch, batch, *a.shape[1:])


def save(path, inputs, *, batch=1, expect=None, **extra):
    """Writes a data set (atomically: nothing is written on error).

    inputs: {argument name: examples [N, ...]} (tensors or arrays), split
        into samples of ``batch`` examples; with ``batch=None`` the arrays
        already are [S] + argument shape and are stored as they are.
    expect: the `qnt.ExportInfo` that `qnt.export` returned: checks that
        every argument is there with the right shape.
    extra: more arrays (``labels=...``), stored unchanged.
    Returns the number of samples."""
    if not inputs:
        raise ValueError("a data set needs at least one input array")
    arrays = {}
    for name, value in inputs.items():
        a = _numpy(value)
        if a.dtype not in _KEPT_DTYPES:
            if not np.issubdtype(a.dtype, np.number):
                raise ValueError(f"input '{name}' is not numeric ({a.dtype})")
            a = a.astype(np.float32)
        arrays[name] = a if batch is None else samples(a, batch)
    counts = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(counts.values())) != 1 or not all(counts.values()):
        raise ValueError(f"inputs need the same, non-zero number of samples, got {counts}")
    if expect is not None:
        _check(arrays, expect)
    for name, value in extra.items():
        if name in arrays:
            raise ValueError(f"'{name}' is both an input and an extra array")
        arrays[name] = _numpy(value)
    with atomic_output(path, "wb") as f:
        np.savez(f, **arrays)
    return next(iter(counts.values()))


def _check(arrays, info):
    for name, shape in info.inputs:
        if name not in arrays:
            raise ValueError(f"no array for the function argument '{name}'")
        if tuple(arrays[name].shape[1:]) != tuple(shape):
            raise ValueError(f"'{name}': samples of shape {tuple(arrays[name].shape[1:])}, "
                             f"the function argument is {tuple(shape)}")


def collect(loader, limit=None):
    """Concatenates what a DataLoader (or any iterable of batches) yields.

    A batch is a tensor, or a tuple/list (inputs..., label), or a dict.
    Returns a list (tuple/list batches) or dict of arrays [N, ...] of the
    first ``limit`` examples (all if None)."""
    parts, count = None, 0
    for item in loader:
        if isinstance(item, dict):
            keys, values = list(item), list(item.values())
        else:
            keys, values = None, list(item) if isinstance(item, (tuple, list)) else [item]
        values = [_numpy(v) for v in values]
        if parts is None:
            parts = ({k: [] for k in keys} if keys else [[] for _ in values])
        take = len(values[0]) if limit is None else min(len(values[0]), limit - count)
        for slot, v in zip(keys or range(len(values)), values):
            parts[slot].append(v[:take])
        count += take
        if limit is not None and count >= limit:
            break
    if not count:
        raise ValueError("the loader yielded no examples")
    if isinstance(parts, dict):
        return {k: np.concatenate(v) for k, v in parts.items()}
    return [np.concatenate(v) for v in parts]


def save_loader(path, loader, names=("input",), *, batch=1, limit=None,
                label_name="labels", expect=None):
    """`collect` + `save`: the first len(names) items of each loader batch are
    the function's inputs, a following item (if any) is stored as ``label_name``.
    Returns the number of samples."""
    items = collect(loader, limit)
    if isinstance(items, dict):
        inputs = {name: items.pop(name) for name in names}
        return save(path, inputs, batch=batch, expect=expect, **items)
    inputs = dict(zip(names, items))
    extra = {label_name: items[len(names)]} if len(items) > len(names) else {}
    return save(path, inputs, batch=batch, expect=expect, **extra)


def load(path):
    """A data set (or quant-run output) as {name: array}."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
