"""FP32 parity of python/qnt/ops/normalization.py: batch norm (folded) and
layer norm (within TOLERANCE, 1e-5)."""

from frontend_util import (TOLERANCE, F, Fn, check_case, conv, nn, parametrize_cases, qnt,
                           torch)

CASES = [
    # batch norm (randomized statistics)
    ("batchnorm2d", lambda: nn.Sequential(conv(), nn.BatchNorm2d(8)), [(1, 3, 8, 8)], "tosa.mul"),
    ("batchnorm1d_2d", lambda: nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)), [(3, 6)], None),
    ("batchnorm1d_3d", lambda: nn.BatchNorm1d(4), [(2, 4, 5)], None),
]

LAYER_NORM_CASES = [
    ("layer_norm", lambda: nn.LayerNorm(7), [(2, 3, 7)], "tosa.rsqrt"),
    ("layer_norm_2d_shape", lambda: nn.LayerNorm((3, 7)), [(2, 3, 7)], None),
    ("layer_norm_no_affine", lambda: nn.LayerNorm(5, elementwise_affine=False, eps=1e-3),
     [(4, 5)], None),
    ("layer_norm_functional", lambda: Fn(lambda s, x: F.layer_norm(x, (6,), s.w, s.b),
                                         w=nn.Parameter(torch.rand(6) + 0.5),
                                         b=nn.Parameter(torch.randn(6))), [(3, 6)], None),
    # over the channels of an NCHW tensor (ConvNeXt): through permutes
    ("layer_norm_channels", lambda: Fn(lambda s, x: s.n(s.c(x).permute(0, 2, 3, 1)).permute(
        0, 3, 1, 2), c=conv(), n=nn.LayerNorm(8)), [(1, 3, 5, 6)], None),
]


@parametrize_cases(CASES)
def test_op(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path)


@parametrize_cases(LAYER_NORM_CASES)
def test_layer_norm(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path, tolerance=TOLERANCE)


def test_layer_norm_is_a_float_composite():
    """Every op of the decomposition, and only those, carries
    qnt.float_composite (static quantization keeps it one float op); the
    softmax after it is a composite of its own."""
    text = qnt.to_mlir(Fn(lambda s, x: F.softmax(s.n(x), -1), n=nn.LayerNorm(8)),
                       torch.randn(2, 8))
    ops = [line for line in text.splitlines() if '= "tosa.' in line
           and '"tosa.const' not in line]
    norm = [line for line in ops if 'loc("n")' in line]
    assert norm and all('qnt.float_composite = "layer_norm"' in line for line in norm)
    soft = [line for line in ops if 'loc("softmax")' in line]
    assert soft and all('qnt.float_composite = "softmax"' in line for line in soft)
