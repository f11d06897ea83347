"""Quantization-aware training (eager mode, after prepare_qat): fake-quant
modules, QAT conv / linear, quant / dequant stubs, and the ops whose output
stays on their input's grid."""

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.intrinsic.qat as nniqat
import torch.nn.qat as nnqat
from torch.ao.quantization import DeQuantStub, QuantStub
from torch.ao.quantization.fake_quantize import (FakeQuantize, FakeQuantizeBase,
                                                 FixedQParamsFakeQuantize,
                                                 FusedMovingAvgObsFakeQuantize)

from .. import ir
from ._common import NCHW_PERM, _param
from .conv_pool import _conv_padding


# observer_enabled of every FakeQuantize of the model being exported, as the
# user left it (observers are disabled while tracing so that export never
# changes the model's quantization parameters).
_OBSERVERS_ENABLED = {}


_QSCHEMES = {torch.per_tensor_affine: ("affine", False),
             torch.per_tensor_symmetric: ("symmetric", False),
             torch.per_channel_affine: ("affine", True),
             torch.per_channel_symmetric: ("symmetric", True)}


_QDTYPES = {torch.quint8: "u8", torch.qint8: "s8"}


def fake_quant_params(ctx, fq, observe=None):
    """(scale, zero_point, qspec attribute) of a FakeQuantize, as PyTorch's
    convert takes them: ``fq.calculate_qparams()``.  With ``observe`` (a weight),
    convert first runs the fake quant on it (which updates the statistics if its
    observer is enabled): this is done on a copy."""
    if observe is not None:
        enabled = _OBSERVERS_ENABLED.get(id(fq))
        fq = copy.deepcopy(fq)
        if enabled is not None:
            fq.observer_enabled.copy_(enabled)
        fq(observe)
    if fq.dtype not in _QDTYPES or fq.qscheme not in _QSCHEMES:
        raise ctx.error(f"{type(fq).__name__} with dtype {fq.dtype} and qscheme "
                        f"{fq.qscheme} is not supported")
    scale, zero_point = fq.calculate_qparams()
    scale = scale.detach().reshape(-1).to(torch.float32).numpy()
    zero_point = zero_point.detach().reshape(-1).to(torch.int64).numpy()
    scheme, per_channel = _QSCHEMES[fq.qscheme]
    qspec = (f"#qnt.qspec<dtype = {_QDTYPES[fq.dtype]}, quant_min = {int(fq.quant_min)}, "
             f"quant_max = {int(fq.quant_max)}, scheme = {scheme}")
    if per_channel:
        qspec += f", axis = {int(fq.ch_axis)}"
    return scale, zero_point, qspec + ">"


def fake_quant(ctx, fq, x, observe=None, axis=None):
    """``qnt.fake_quant`` of ``x`` with the parameters of ``fq``; ``axis``
    overrides a per-channel axis (layout changes)."""
    scale, zero_point, qspec = fake_quant_params(ctx, fq, observe)
    if "axis =" in qspec:
        if axis is None:
            axis = int(fq.ch_axis) % len(x.torch_shape)
            axis = NCHW_PERM.index(axis) if x.nhwc else axis
        qspec = qspec.rsplit("axis =", 1)[0] + f"axis = {axis}>"
        if x.shape[axis] != scale.size:
            raise ctx.error(f"{scale.size} per-channel scales for axis {axis} of "
                            f"{list(x.shape)}")
    elif scale.size != 1:
        raise ctx.error("per-tensor fake quantization with several scales")
    attrs = {"scale": "array<f32: " + ", ".join(ir.float_literal(v) for v in scale) + ">",
             "zero_point": ir.i64_array(zero_point), "qspec": qspec}
    y = ctx.op("qnt.fake_quant", [x], x.shape, attrs, nhwc=x.nhwc,
               hint=f"{ctx.loc}.fq" if observe is None else f"{ctx.loc}.weight_fq")
    if observe is None and "axis =" not in qspec:
        ctx.qat_grid[y.name] = fq
    return y


class FixedFakeQuantize(FakeQuantizeBase):
    """A fake quant with given parameters and no observer: a QuantizeLinear /
    DequantizeLinear pair of an imported ONNX model (`qnt.onnx`).

    ``scale`` and ``zero_point`` have one element, or one per slice along
    ``axis``; ``dtype`` is torch.quint8 or torch.qint8; the range is the
    dtype's whole range, as ONNX clamps."""

    def __init__(self, scale, zero_point, dtype, axis=None):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).reshape(-1))
        self.register_buffer("zero_point",
                             torch.as_tensor(zero_point, dtype=torch.int64).reshape(-1))
        self.dtype = dtype
        self.quant_min, self.quant_max = (0, 255) if dtype == torch.quint8 else (-128, 127)
        self.ch_axis = axis if axis is not None else -1
        symmetric = dtype == torch.qint8 and not self.zero_point.any()
        self.qscheme = ({True: torch.per_channel_symmetric, False: torch.per_channel_affine}
                        if axis is not None else
                        {True: torch.per_tensor_symmetric, False: torch.per_tensor_affine}
                        )[bool(symmetric)]
        self.disable_observer()

    def forward(self, x):
        if self.ch_axis >= 0:
            return torch.fake_quantize_per_channel_affine(
                x, self.scale, self.zero_point.to(torch.int32), self.ch_axis, self.quant_min,
                self.quant_max)
        return torch.fake_quantize_per_tensor_affine(
            x, float(self.scale[0]), int(self.zero_point[0]), self.quant_min, self.quant_max)

    def calculate_qparams(self):
        return self.scale, self.zero_point

    def same_grid(self, other):
        """Whether ``other`` quantizes to the same grid."""
        return (isinstance(other, FixedFakeQuantize) and self.dtype == other.dtype
                and self.ch_axis == other.ch_axis and torch.equal(self.scale, other.scale)
                and torch.equal(self.zero_point, other.zero_point))


def fake_quant_module(ctx, m, x):
    """A FakeQuantize called as a module."""
    return fake_quant(ctx, m, x)


def _qat_weight_bias(m):
    """Weight and bias as PyTorch's convert computes them: batch norm of
    ConvBn* folded with ``fuse_conv_bn_weights`` (eval statistics)."""
    weight, bias = m.weight.detach(), m.bias.detach() if m.bias is not None else None
    bn = getattr(m, "bn", None)
    if bn is not None:
        weight, bias = torch.nn.utils.fuse_conv_bn_weights(
            weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
        weight, bias = weight.detach(), bias.detach()
    if bias is None:
        bias = torch.zeros(weight.shape[0])
    return weight, bias


def qat_conv2d(ctx, m, x):
    """nn.qat.Conv2d and nn.intrinsic.qat ConvBn2d / ConvBnReLU2d / ConvReLU2d:
    qnt.conv2d on the fake-quantized (folded) weight, relu fused."""
    if m.padding_mode != "zeros":
        raise ctx.error(f"{type(m).__name__} with padding_mode={m.padding_mode!r} "
                        f"is not supported")
    weight, bias = _qat_weight_bias(m)
    x = ctx.to_nhwc(x)
    w = ctx.const(_param(weight).transpose(0, 2, 3, 1), "weight")  # OHWI
    w = fake_quant(ctx, m.weight_fake_quant, w, observe=weight, axis=0)
    attrs = {"stride": ir.i64_array(m.stride), "dilation": ir.i64_array(m.dilation),
             "pad": ir.i64_array(_conv_padding(m)), "groups": ir.i64_attr(m.groups)}
    if type(m) in (nniqat.ConvBnReLU2d, nniqat.ConvReLU2d):
        attrs["activation"] = "#qnt.activation<relu>"
    return ctx.op("qnt.conv2d", [x, w, ctx.const(_param(bias), "bias")],
                  ctx.out_shape(nhwc=True), attrs, nhwc=True)


def qat_linear(ctx, m, x):
    """nn.qat.Linear, nn.intrinsic.qat.LinearReLU: qnt.linear on the
    fake-quantized weight [N, K]."""
    weight, bias = _qat_weight_bias(m)
    x = ctx.to_torch(x)
    *lead, k = x.shape
    rows, n = math.prod(lead), m.out_features
    a = ctx.reshape(x, (rows, k))
    w = ctx.const(_param(weight), "weight")
    w = fake_quant(ctx, m.weight_fake_quant, w, observe=weight, axis=0)
    attrs = {"activation": "#qnt.activation<relu>"} if type(m) is nniqat.LinearReLU else None
    y = ctx.op("qnt.linear", [a, w, ctx.const(_param(bias), "bias")], (rows, n), attrs)
    return ctx.reshape(y, (*lead, n))


def _output_fake_quant(module):
    """The FakeQuantize eager-mode prepare_qat attached to ``module``'s output
    (called by a forward hook, which torch.fx does not run for leaves)."""
    fq = getattr(module, "activation_post_process", None)
    return fq if isinstance(fq, FakeQuantizeBase) else None


# Ops that PyTorch's converted model runs on the quantized integers, keeping
# their input's scale and zero point: their result is on the input's grid, so
# the exporter repeats the input's qnt.fake_quant after them (exact: values on
# the grid stay where they are), which keeps the IR quantized end to end.
_SAME_GRID_MODULES = (nn.MaxPool2d, nn.ReLU, nn.Flatten, nn.Identity, nn.Dropout,
                      nn.Dropout2d)


_SAME_GRID_FUNCTIONS = (F.relu, torch.relu, F.max_pool2d, torch.flatten, torch.reshape,
                        torch.permute, torch.transpose, F.dropout)


_SAME_GRID_METHODS = ("relu", "view", "reshape", "flatten", "permute", "transpose",
                      "contiguous")


def _same_grid(node, module):
    if node.op == "call_module":
        return type(module) in _SAME_GRID_MODULES
    if node.op == "call_function":
        return node.target in _SAME_GRID_FUNCTIONS and "qnt_path" not in node.meta
    return node.target in _SAME_GRID_METHODS


def stub(op_name, layout):
    """QuantStub / DeQuantStub: qnt.quant_stub on NHWC data, qnt.dequant_stub as is."""
    def handler(ctx, m, x):
        x = layout(ctx, x)
        return ctx.op(op_name, [x], x.shape, nhwc=x.nhwc)
    return handler


MODULES = {
    QuantStub: stub("qnt.quant_stub", lambda ctx, x: ctx.to_nhwc(x)),
    DeQuantStub: stub("qnt.dequant_stub", lambda ctx, x: x),
    nnqat.Conv2d: qat_conv2d,
    nniqat.ConvBn2d: qat_conv2d,
    nniqat.ConvBnReLU2d: qat_conv2d,
    nniqat.ConvReLU2d: qat_conv2d,
    nnqat.Linear: qat_linear,
    nniqat.LinearReLU: qat_linear,
    FakeQuantize: fake_quant_module,
    FusedMovingAvgObsFakeQuantize: fake_quant_module,
    FixedQParamsFakeQuantize: fake_quant_module,
    FixedFakeQuantize: fake_quant_module,
}
FUNCTIONS = {}
METHODS = {}
