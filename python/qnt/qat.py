"""Quantization-aware training with PyTorch (eager mode) and its export.

    model = qnt.qat.train_qat(model, loader, epochs=1, backend="qnnpack",
                              fuse=[["conv1", "bn1", "relu1"], ...])
    qnt.qat.export_qat(model, torch.zeros(1, 1, 28, 28), "qat.mlir")

then ``quant-opt qat.mlir --qnt-fuse --qnt-fold-fake-quant --qnt-convert``
gives the INT8 model with the learned quantization parameters (see
docs/frontend.md, "Quantization-aware training")."""

import copy

import torch
import torch.ao.quantization as tq
import torch.nn as nn
from torch.ao.quantization.fake_quantize import FakeQuantizeBase

from .export import ExportError, export

BACKENDS = ("qnnpack", "onednn", "x86", "fbgemm")


def prepare_qat(model, backend="qnnpack", fuse=None):
    """Fuses (``fuse``: lists of module names for ``fuse_modules_qat``, or a
    callable taking the model) and runs ``prepare_qat`` with
    ``get_default_qat_qconfig(backend)``, in place; returns the model."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    model.train()
    if callable(fuse):
        fuse(model)
    elif fuse:
        tq.fuse_modules_qat(model, fuse, inplace=True)
    model.qconfig = tq.get_default_qat_qconfig(backend)
    tq.prepare_qat(model, inplace=True)
    return model


def freeze(model):
    """Ends training: observers off (the quantization parameters stay as
    they are), batch-norm statistics frozen, eval mode."""
    model.apply(tq.disable_observer)
    model.apply(torch.nn.intrinsic.qat.freeze_bn_stats)
    return model.eval()


def train_qat(model, train_loader, epochs=1, backend="qnnpack", fuse=None, optimizer=None,
              lr=1e-3, loss_fn=None, max_batches=None, prepared=False, log=None):
    """PyTorch's QAT: fuse -> prepare_qat -> ``epochs`` epochs over
    ``train_loader`` ((inputs, targets) batches; at most ``max_batches`` per
    epoch) with Adam(lr) unless ``optimizer`` is given (it must then be
    built on the prepared model: pass ``prepared=True``) -> `freeze`.
    Returns the model (modified in place), ready for `export_qat` and for
    ``torch.ao.quantization.convert``."""
    if not prepared:
        prepare_qat(model, backend, fuse)
    model.train()
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    for epoch in range(epochs):
        total, count = 0.0, 0
        for i, (inputs, targets) in enumerate(train_loader):
            if max_batches is not None and i >= max_batches:
                break
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss) * len(targets), count + len(targets)
        if log:
            log(f"qat epoch {epoch + 1}/{epochs}: loss {total / max(count, 1):.4f}")
    return freeze(model)


def export_qat(model, example_inputs, path):
    """Exports a model prepared with ``prepare_qat`` (and trained): every
    FakeQuantize becomes ``qnt.fake_quant`` with the parameters PyTorch's
    ``convert`` would use, QAT conv/linear modules ``qnt.conv2d`` /
    ``qnt.linear`` on the fake-quantized (batch-norm folded) weight.  The
    model is not modified.  Returns `qnt.ExportInfo`."""
    if not any(isinstance(m, FakeQuantizeBase) for m in model.modules()):
        raise ExportError("the model has no FakeQuantize: run prepare_qat first "
                          "(or use qnt.export for a float model)")
    return export(model, example_inputs, path)


def convert_pytorch(model, backend="qnnpack"):
    """PyTorch's own INT8 model of a QAT model (a converted copy)."""
    torch.backends.quantized.engine = backend
    return tq.convert(copy.deepcopy(model).eval(), inplace=False)
