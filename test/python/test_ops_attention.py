"""FP32 parity of python/qnt/ops/attention.py: matmul / bmm / @, F.linear,
softmax, nn.MultiheadAttention and the transformer layers of torch.nn,
within TOLERANCE (1e-5) of PyTorch."""

import pytest
from frontend_util import (TOLERANCE, F, Fn, Fn2, check, check_case, check_inputs, nn,
                           parametrize_cases, qnt, torch)


class Attention(nn.Module):
    """self_attn(x, x, x) or self_attn(x, m, m) with the given call options,
    and attn_mask the given mask (a buffer) or, with mask_input, m."""

    def __init__(self, attn, cross=False, mask=None, mask_input=False, **call):
        super().__init__()
        self.attn, self.cross, self.mask_input, self.call = attn, cross, mask_input, call
        self.register_buffer("mask", mask)

    def forward(self, x, m):
        kv = m if self.cross else x
        mask = m if self.mask_input else self.mask
        call = self.call if mask is None else dict(self.call, attn_mask=mask)
        out, weights = self.attn(x, kv, kv, **call)
        return (out, weights) if self.call.get("need_weights", True) else out


class Masked(nn.Module):
    """A layer called with a float attn_mask (a buffer: a causal mask) and/or
    a float key_padding_mask (an input)."""

    def __init__(self, layer, causal=None, padding=False):
        super().__init__()
        self.layer, self.padding = layer, padding
        self.register_buffer("mask", causal)

    def forward(self, x, pad):
        kwargs = {"src_key_padding_mask": pad} if self.padding else {}
        return self.layer(x, self.mask, **kwargs)


def causal(n):
    return torch.triu(torch.full((n, n), float("-inf")), diagonal=1)


def head_mask(shape, dtype=torch.float32):
    """A 3-D attn_mask [N * heads, L, S], different for each batch and head:
    True (bool) or -inf (float) at random positions, never at column 1 (no
    row fully masked); random finite values elsewhere (float)."""
    gen = torch.Generator().manual_seed(2)
    masked = torch.rand(shape, generator=gen) > 0.6
    masked[..., 1] = False
    if dtype == torch.bool:
        return masked
    return (torch.randn(shape, generator=gen) * 2).masked_fill(masked, float("-inf"))


CASES = [
    ("matmul_batched", lambda: Fn2(lambda s, a, b: a @ b), [(2, 3, 4, 5), (2, 3, 5, 6)],
     "tosa.matmul"),
    ("matmul_broadcast", lambda: Fn2(lambda s, a, b: torch.matmul(a, b)),
     [(2, 1, 4, 5), (3, 5, 6)], "tosa.tile"),
    ("matmul_2d_rhs", lambda: Fn2(lambda s, a, b: a.matmul(b)), [(2, 3, 4, 5), (5, 6)], None),
    ("matmul_vector_rhs", lambda: Fn(lambda s, a: a @ s.v, v=nn.Parameter(torch.randn(5))),
     [(2, 3, 5)], None),
    ("matmul_parameter", lambda: Fn(lambda s, a: a @ s.w, w=nn.Parameter(torch.randn(5, 7))),
     [(2, 3, 5)], None),
    ("bmm", lambda: Fn2(lambda s, a, b: torch.bmm(a, b) + a.bmm(b)), [(3, 4, 5), (3, 5, 2)], None),
    ("linear_functional", lambda: Fn(lambda s, x: F.linear(x, s.w, s.b), w=nn.Parameter(
        torch.randn(6, 5)), b=nn.Parameter(torch.randn(6))), [(2, 3, 5)], None),
    ("linear_activation_weight", lambda: Fn2(lambda s, x, w: F.linear(x, w)), [(4, 5), (3, 5)],
     None),
    ("softmax", lambda: nn.Softmax(-1), [(2, 3, 7)], "tosa.reduce_max"),
    ("softmax_dim1_nchw", lambda: Fn(lambda s, x: F.softmax(s.c(x), 1), c=nn.Conv2d(3, 5, 1)),
     [(1, 3, 4, 4)], None),
    ("log_softmax", lambda: Fn(lambda s, x: torch.log_softmax(x, 0) + x.log_softmax(dim=1)),
     [(4, 6)], "tosa.log"),
    ("scaled_scores", lambda: Fn2(lambda s, q, k: (q @ k.transpose(-2, -1) / 8.0).softmax(-1)),
     [(2, 4, 6, 8), (2, 4, 6, 8)], None),
    ("mha_self", lambda: Attention(nn.MultiheadAttention(16, 4)), [(5, 2, 16), (1, 1, 1)],
     None),
    ("mha_batch_first_weights", lambda: Attention(nn.MultiheadAttention(16, 2, batch_first=True),
                                                  need_weights=True),
     [(2, 5, 16), (1, 1, 1)], None),
    ("mha_head_weights", lambda: Attention(nn.MultiheadAttention(8, 2), need_weights=True,
                                           average_attn_weights=False),
     [(3, 2, 8), (1, 1, 1)], None),
    ("mha_cross", lambda: Attention(nn.MultiheadAttention(16, 4), cross=True,
                                    need_weights=False), [(5, 2, 16), (7, 2, 16)], None),
    ("mha_kdim_vdim", lambda: Attention(nn.MultiheadAttention(16, 4, kdim=6, vdim=6,
                                                              bias=False), cross=True),
     [(5, 2, 16), (7, 2, 6)], None),
    # 3-D attn_mask [N * heads, L, S]: a buffer (float with -inf, or bool), or an input
    ("mha_mask_3d_float", lambda: Attention(nn.MultiheadAttention(16, 4),
                                            mask=head_mask((8, 5, 5))),
     [(5, 2, 16), (1, 1, 1)], None),
    ("mha_mask_3d_float_cross_batch_first_head_weights", lambda: Attention(
        nn.MultiheadAttention(16, 4, batch_first=True), cross=True, mask=head_mask((8, 5, 7)),
        need_weights=True, average_attn_weights=False), [(2, 5, 16), (2, 7, 16)], None),
    ("mha_mask_3d_bool", lambda: Attention(nn.MultiheadAttention(16, 4),
                                           mask=head_mask((8, 5, 5), torch.bool)),
     [(5, 2, 16), (1, 1, 1)], "tosa.select"),
    ("mha_mask_3d_float_input", lambda: Attention(nn.MultiheadAttention(16, 2), mask_input=True),
     [(5, 2, 16), (4, 5, 5)], None),
    ("encoder_layer", lambda: Masked(nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0)),
     [(6, 2, 16), (1,)], None),
    ("encoder_layer_norm_first_gelu_batch_first", lambda: Masked(nn.TransformerEncoderLayer(
        16, 2, 24, activation="gelu", batch_first=True, norm_first=True)), [(2, 6, 16), (1,)],
     "tosa.erf"),
    ("encoder_causal", lambda: Masked(nn.TransformerEncoder(nn.TransformerEncoderLayer(
        16, 4, 32), 2, norm=nn.LayerNorm(16)), causal(6)), [(6, 2, 16), (1,)], None),
    # PyTorch 1.13 adds a float key_padding_mask when there is no attn_mask
    ("encoder_key_padding", lambda: Masked(nn.TransformerEncoderLayer(16, 4, 32), padding=True),
     [(6, 2, 16), (2, 6)], None),
]


@parametrize_cases(CASES)
def test_op(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path)


class Decoder(nn.Module):
    def __init__(self, norm_first, activation):
        super().__init__()
        layer = nn.TransformerDecoderLayer(16, 4, 32, norm_first=norm_first,
                                           activation=activation)
        self.decoder = nn.TransformerDecoder(layer, 2)
        self.register_buffer("mask", causal(5))

    def forward(self, tgt, memory):
        return self.decoder(tgt, memory, tgt_mask=self.mask)


@pytest.mark.parametrize("activation", [F.gelu, "relu"], ids=["gelu", "relu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder(norm_first, activation, tmp_path):
    torch.manual_seed(0)
    err, text = check(Decoder(norm_first, activation), (5, 2, 16), (7, 2, 16), tmp_path=tmp_path)
    assert err <= TOLERANCE
    # one activation per layer, and only that one
    gelu = activation is F.gelu
    assert (text.count('"tosa.erf"'), text.count('"tosa.clamp"')) == ((2, 0) if gelu else (0, 2))
    # every submodule's ops at its own path (so each linear has its observers)
    for name in ("decoder.layers.1.multihead_attn.q_proj", "decoder.layers.0.self_attn.in_proj",
                 "decoder.layers.1.self_attn.out_proj", "decoder.layers.0.linear2",
                 "decoder.layers.1.norm3"):
        assert f'loc("{name}")' in text, name


@pytest.mark.parametrize("batch_first", [False, True])
def test_bool_masks(batch_first, tmp_path):
    """Bool attn_mask (a causal buffer) and key_padding_mask (an input):
    True positions are -inf, as PyTorch makes them; a batch-first encoder
    with a padding mask is PyTorch's nested-tensor path."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=batch_first)
    stack = Masked(nn.TransformerEncoder(layer, 2), padding=True)
    x = torch.randn((2, 6, 16) if batch_first else (6, 2, 16))
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    err, _ = check_inputs(stack, x, pad, tmp_path=tmp_path)
    assert err <= TOLERANCE
    causal_bool = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    err, _ = check_inputs(Masked(layer, causal_bool, padding=True), x, pad, tmp_path=tmp_path)
    assert err <= TOLERANCE


def test_mha_bool_mask_3d_input(tmp_path):
    """A bool attn_mask [N * heads, L, S] given as an input."""
    torch.manual_seed(0)
    attn = Attention(nn.MultiheadAttention(16, 4), mask_input=True)
    x = torch.randn(5, 2, 16)
    err, _ = check_inputs(attn, x, head_mask((8, 5, 5), torch.bool), tmp_path=tmp_path)
    assert err <= TOLERANCE


ERRORS = [
    ("mha_bias_kv", lambda: Attention(nn.MultiheadAttention(8, 2, add_bias_kv=True)),
     "MultiheadAttention with add_bias_kv or add_zero_attn is not supported at 'attn'"),
    ("mha_mask_shape", lambda: Masked(nn.TransformerEncoderLayer(8, 2, 16), torch.zeros(3, 3)),
     "running the traced model on the example inputs failed: The shape of the 2D attn_mask "
     "is torch.Size([3, 3]), but should be (4, 4)."),
]


@pytest.mark.parametrize("factory,message", [pytest.param(f, m, id=i) for i, f, m in ERRORS])
def test_error(factory, message, tmp_path):
    with pytest.raises(qnt.ExportError) as info:
        qnt.export(factory(), (torch.randn(4, 2, 8), torch.zeros(1)), tmp_path / "m.mlir")
    assert str(info.value).startswith(message)


def vision_transformer(**config):
    """torchvision's VisionTransformer with random class token and head
    (torchvision initializes both to zeros)."""
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(**config) if config else \
        torchvision.models.vit_b_16()
    with torch.no_grad():
        model.class_token.normal_()
        for p in model.heads.parameters():
            p.normal_(0, 0.02)
    return model


@pytest.mark.parametrize("config,shape", [
    (dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
          num_classes=10), (2, 3, 32, 32)),
    ({}, (1, 3, 224, 224)),  # vit_b_16
], ids=["small", "vit_b_16"])
def test_vision_transformer(config, shape, tmp_path):
    err, text = check(vision_transformer(**config), shape, tmp_path=tmp_path)
    print(f"\nVisionTransformer {shape}: max relative error {err:.3g}")
    assert err <= TOLERANCE
    assert '"tosa.erf"' in text  # GELU
    assert ('"tosa.tile"' in text) == (shape[0] > 1)  # the class token's expand
