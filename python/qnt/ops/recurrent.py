"""Recurrent layers: LSTM and GRU, unrolled over the sequence."""

import numpy as np
import torch.nn as nn

from .. import ir
from ._common import _param
from .conv_pool import _linear
from .elementwise import sigmoid, tanh


def _rnn_cell_lstm(ctx, gates, h, c, hidden):
    """PyTorch's LSTMCell on the summed gates [B, 4H] (order i, f, g, o)."""
    rows = gates.shape[0]
    i, f, g, o = (ctx.slice(gates, [0, j * hidden], [rows, hidden]) for j in range(4))
    i, f, g, o = sigmoid(ctx, i), sigmoid(ctx, f), tanh(ctx, g), sigmoid(ctx, o)
    c = ctx.mul(i, g) if c is None else ctx.add(ctx.mul(f, c), ctx.mul(i, g))
    return ctx.mul(o, tanh(ctx, c)), c


def _rnn_cell_gru(ctx, gi, gh, h, hidden):
    """PyTorch's GRUCell: gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh (order r, z, n);
    h' = (h - n) * z + n, as ATen computes it."""
    part = lambda v, j: ctx.slice(v, [0, j * hidden], [v.shape[0], hidden])  # noqa: E731
    r = sigmoid(ctx, ctx.add(part(gi, 0), part(gh, 0)))
    z = sigmoid(ctx, ctx.add(part(gi, 1), part(gh, 1)))
    n = tanh(ctx, ctx.add(part(gi, 2), ctx.mul(part(gh, 2), r)))
    if h is None:  # (0 - n) * z + n
        return ctx.binary("tosa.sub", n, ctx.mul(n, z))
    return ctx.add(ctx.mul(ctx.binary("tosa.sub", h, n), z), n)


def _rnn(ctx, m, x, hx, kind):
    """nn.LSTM / nn.GRU (eval, static sequence length), unrolled.  As ATen on
    the CPU: the input projection x W_ih^T + b_ih of a layer is one linear over
    the whole sequence, then per step h W_hh^T + b_hh (located
    ``<module>.l<k>[_reverse].t<step>.hh``) is added and the cell applied."""
    if getattr(m, "proj_size", 0):
        raise ctx.error(f"{type(m).__name__} with proj_size is not supported")
    if x.rank != 3:
        raise ctx.error(f"{type(m).__name__} needs a batched 3-D input, got shape {x.shape}")
    x = ctx.to_torch(x)
    gates_per_h = 4 if kind == "lstm" else 3
    hidden, layers = m.hidden_size, m.num_layers
    dirs = 2 if m.bidirectional else 1
    tdim = 1 if m.batch_first else 0
    steps, batch = x.shape[tdim], x.shape[1 - tdim]
    if kind == "lstm":
        h0, c0 = hx if hx is not None else (None, None)
    else:
        h0, c0 = hx, None
    base = ctx.loc

    def state(v, index):  # [L*D, B, H] -> [B, H] of one layer and direction
        if v is None:
            return None
        return ctx.reshape(ctx.slice(ctx.to_torch(v), [index, 0, 0], [1, batch, hidden]),
                           (batch, hidden))

    def step_of(v, t):  # [T, B, N] / [B, T, N] -> [B, N]
        begin, size = [0, 0, 0], list(v.shape)
        begin[tdim], size[tdim] = t, 1
        return ctx.reshape(ctx.slice(v, begin, size), (batch, v.shape[2]))

    def stack(values):  # [B, N] per step -> [T, B, N] / [B, T, N]
        one = (1, batch) if tdim == 0 else (batch, 1)
        parts = [ctx.reshape(v, one + (v.shape[1],)) for v in values]
        shape = list(parts[0].shape)
        shape[tdim] = len(parts)
        return ctx.op("tosa.concat", parts, tuple(shape), {"axis": ir.i32_attr(tdim)})

    h_n, c_n, seq = [], [], x
    try:
        for layer in range(layers):
            outs = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                name = f"{base}.l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh = _param(getattr(m, "weight_ih" + sfx)), _param(getattr(m, "weight_hh" + sfx))
                b_ih = _param(getattr(m, "bias_ih" + sfx)) if m.bias else None
                b_hh = _param(getattr(m, "bias_hh" + sfx)) if m.bias else None
                n = gates_per_h * hidden
                ctx.loc = f"{name}.ih"
                proj = _linear(ctx, seq, w_ih, b_ih)
                ctx.loc = f"{name}.hh"
                w_hh_t = ctx.const(w_hh.T.reshape(1, hidden, n), "weight")
                b_hh_c = ctx.const((b_hh if b_hh is not None else np.zeros([n], np.float32))
                                   .reshape(1, n), "bias")
                h, c = state(h0, layer * dirs + d), state(c0, layer * dirs + d)
                order = range(steps - 1, -1, -1) if d else range(steps)
                hs = {}
                for t in order:
                    ctx.loc = f"{name}.t{t}"
                    gi = step_of(proj, t)
                    ctx.loc = f"{name}.t{t}.hh"
                    if h is None:  # zero state: h W_hh^T + b_hh = b_hh
                        gh = b_hh_c  # [1, 4H], broadcast by the add
                    else:
                        gh = _linear(ctx, h, w_hh_t, b_hh_c)
                    ctx.loc = f"{name}.t{t}"
                    if kind == "lstm":
                        h, c = _rnn_cell_lstm(ctx, ctx.add(gh, gi), h, c, hidden)
                    else:
                        h = _rnn_cell_gru(ctx, gi, gh, h, hidden)
                    hs[t] = h
                ctx.loc = name
                outs.append(stack([hs[t] for t in range(steps)]))
                h_n.append(h)
                c_n.append(c)
            ctx.loc = f"{base}.l{layer}"
            seq = outs[0] if dirs == 1 else ctx.op(
                "tosa.concat", outs, outs[0].shape[:2] + (2 * hidden,), {"axis": ir.i32_attr(2)})
        ctx.loc = base

        def final(values):
            parts = [ctx.reshape(v, (1, batch, hidden)) for v in values]
            if len(parts) == 1:
                return parts[0]
            return ctx.op("tosa.concat", parts, (len(parts), batch, hidden),
                          {"axis": ir.i32_attr(0)})
        if kind == "lstm":
            return seq, (final(h_n), final(c_n))
        return seq, final(h_n)
    finally:
        ctx.loc = base


def lstm(ctx, m, x, hx=None):
    return _rnn(ctx, m, x, hx, "lstm")


def gru(ctx, m, x, hx=None):
    return _rnn(ctx, m, x, hx, "gru")


MODULES = {nn.LSTM: lstm, nn.GRU: gru}
FUNCTIONS = {}
METHODS = {}
