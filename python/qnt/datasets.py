"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist``.

Reads the gzip'ed IDX files in /usr/share/datasets/fashion-mnist/ (or
``root``, or $FASHION_MNIST_DIR): 60000 training and 10000 test images of
28x28 pixels, labels 0-9 (``CLASSES``)."""

import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # of the training images scaled to [0, 1]
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_SPLITS = {"train": ("train", 60000), "test": ("t10k", 10000)}
_IDX_UBYTE = 0x08  # IDX element type code of unsigned bytes


class DatasetNotFoundError(FileNotFoundError):
    """The data set's files are not installed."""


def read_idx(path):
    """A (gzip'ed) IDX file of unsigned bytes as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != _IDX_UBYTE:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != int(np.prod(dims)):
        raise ValueError(f"{path}: {len(raw) - header} data bytes, expected "
                         f"{int(np.prod(dims))} for shape {dims}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _root(root):
    return root or os.environ.get("FASHION_MNIST_DIR") or DEFAULT_DIR


def fashion_mnist(split="test", root=None, normalize=True, limit=None):
    """(images, labels) of one split ("train" or "test").

    images: float32 [N, 1, 28, 28], scaled to [0, 1] and, with ``normalize``,
    standardized as (x - MEAN) / STD; labels: int64 [N].  ``limit`` keeps the
    first N."""
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix, count = _SPLITS[split]
    directory = _root(root)
    paths = [os.path.join(directory, f"{prefix}-{kind}-idx{n}-ubyte.gz")
             for kind, n in (("images", 3), ("labels", 1))]
    for path in paths:
        if not os.path.isfile(path):
            raise DatasetNotFoundError(
                f"Fashion-MNIST not found: {path} is missing (install the Debian "
                f"package dataset-fashion-mnist, or pass root= / set FASHION_MNIST_DIR)")
    images, labels = (read_idx(p) for p in paths)
    if images.shape != (count, 28, 28) or labels.shape != (count,) or labels.max() > 9:
        raise ValueError(f"{directory}: unexpected Fashion-MNIST {split} data "
                         f"(images {images.shape}, labels {labels.shape})")
    images, labels = images[:limit], labels[:limit]
    x = images.astype(np.float32)[:, None] / np.float32(255)
    if normalize:
        x = (x - np.float32(MEAN)) / np.float32(STD)
    return x.astype(np.float32), labels.astype(np.int64)


def fashion_mnist_dataset(split="test", root=None, normalize=True, limit=None):
    """The same as a ``torch.utils.data.TensorDataset`` of (image, label)."""
    import torch
    x, y = fashion_mnist(split, root, normalize, limit)
    return torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
