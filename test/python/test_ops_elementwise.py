"""FP32 parity of python/qnt/ops/elementwise.py: activations, add / sub / mul,
FloatFunctional, dropout and identities; comparisons, masks and dtype
conversions on bool and integer inputs."""

import pytest
from frontend_util import (F, Fn, Fn2, TOLERANCE, check, check_case, check_inputs, conv, nn,
                           parametrize_cases, torch)

CASES = [
    # activations (inputs scaled by 4 to reach every clamp bound)
    ("relu", lambda: nn.Sequential(conv(), nn.ReLU()), [(1, 3, 6, 6)], "tosa.clamp"),
    ("relu6", lambda: nn.ReLU6(), [(1, 3, 6, 6)], None),
    ("hardtanh", lambda: nn.Hardtanh(-0.5, 0.7), [(1, 3, 6, 6)], None),
    ("hardswish", lambda: nn.Sequential(conv(), nn.Hardswish()), [(1, 3, 6, 6)], None),
    ("hardsigmoid", lambda: nn.Hardsigmoid(), [(2, 9)], None),
    ("sigmoid", lambda: nn.Sigmoid(), [(1, 3, 6, 6)], "tosa.sigmoid"),
    ("silu", lambda: nn.SiLU(), [(1, 3, 6, 6)], None),
    ("gelu", lambda: nn.GELU(), [(2, 3, 8)], "tosa.erf"),
    ("gelu_tanh", lambda: nn.GELU(approximate="tanh"), [(2, 3, 8)], "tosa.tanh"),
    ("gelu_functional", lambda: Fn(lambda s, x: F.gelu(s.c(x)), c=conv()), [(1, 3, 5, 5)], None),
    ("exp_log", lambda: Fn(lambda s, x: torch.exp(x * 0.5) + torch.log(x.abs() + 1)
                           + (x * x + 1).log() * x.exp().clamp(max=2.0)), [(2, 3, 8)], "tosa.exp"),
    ("rsqrt_sqrt_pow", lambda: Fn(lambda s, x: torch.rsqrt(x * x + 1) + torch.sqrt(x.abs())
                                  + x.pow(2) + x ** 3 * 0.01 + (x.abs() + 1) ** 0.25),
     [(2, 9)], "tosa.rsqrt"),
    ("abs_reciprocal_neg", lambda: Fn(lambda s, x: -x.abs() + torch.reciprocal(x * x + 1)
                                      + torch.abs(x).neg()), [(3, 5)], "tosa.abs"),
    ("tanh_wide", lambda: Fn(lambda s, x: torch.tanh(x * 3)), [(4, 64)], "tosa.tanh"),
    ("div", lambda: Fn2(lambda s, x, y: x / 3.0 + torch.div(x, y * y + 1) + (2 / (y * y + 1))
                        + x.div(4)), [(2, 5), (2, 5)], "tosa.reciprocal"),
    ("functional_activations",
     lambda: Fn(lambda s, x: F.relu(x) + F.relu6(x) + F.hardtanh(x, -2.0, 3.0) + F.hardswish(x)
                + F.hardsigmoid(x) + torch.sigmoid(x) + F.silu(x) + torch.relu(x) + x.relu()
                + x.sigmoid()),
     [(1, 3, 6, 6)], None),
    # elementwise
    ("add_sub_mul", lambda: Fn2(lambda s, x, y: (x + y) * (x - y) + torch.add(x, y) * torch.mul(x, y)),
     [(1, 3, 4, 4), (1, 3, 4, 4)], None),
    ("add_nhwc_and_nchw", lambda: Fn(lambda s, x: s.c(x) + x, c=conv(3, 3)), [(1, 3, 5, 5)], None),
    ("broadcast_channel_scale", lambda: Fn(lambda s, x: s.c(x) * torch.sigmoid(
        F.adaptive_avg_pool2d(s.c(x), 1)), c=conv()), [(1, 3, 6, 6)], None),
    ("scalars", lambda: Fn(lambda s, x: 3 + x * 0.5 - 1 - (2 - x)), [(2, 5)], None),
    ("parameter_operand", lambda: Fn(lambda s, x: s.c(x) + s.bias, c=conv(),
                                     bias=nn.Parameter(torch.randn(1, 8, 1, 1))),
     [(1, 3, 5, 5)], None),
    ("identity_dropout", lambda: nn.Sequential(nn.Identity(), nn.Dropout(0.3), nn.Dropout2d(),
                                               Fn(lambda s, x: F.dropout(x, 0.2, s.training))),
     [(1, 3, 4, 4)], None),
]


@parametrize_cases(CASES)
def test_op(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path)


class FloatFunctionalOps(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = conv()
        for name in ("ff_add", "ff_mul", "ff_cat", "ff_add_relu", "ff_add_scalar", "ff_mul_scalar"):
            setattr(self, name, nn.quantized.FloatFunctional())

    def forward(self, x):
        y = self.c(x)
        a = self.ff_add.add(y, y * 2)
        b = self.ff_mul.mul(a, y)
        c = self.ff_add_relu.add_relu(b, y)
        d = self.ff_mul_scalar.mul_scalar(self.ff_add_scalar.add_scalar(c, -0.5), 3.0)
        return self.ff_cat.cat([d, y], 1)


def test_float_functional(tmp_path):
    torch.manual_seed(0)
    err, text = check(FloatFunctionalOps(), (1, 3, 6, 6), tmp_path=tmp_path, scale=4.0)
    assert err <= TOLERANCE
    # each FloatFunctional call is located at the FloatFunctional's path
    for name in ("ff_add", "ff_mul", "ff_cat", "ff_add_relu", "ff_add_scalar", "ff_mul_scalar"):
        assert f'loc("{name}")' in text
    assert "activation_post_process" not in text


# -- comparisons, masks, dtypes: (id, forward(x, m), input x, input m) --------

def _mask(*shape):
    return torch.rand(shape, generator=torch.Generator().manual_seed(1)) > 0.5


MASK_CASES = [
    ("masked_fill", lambda x, m: x.masked_fill(m, -5.0) + torch.masked_fill(x, m, float("-inf"))
     .clamp(min=-1.0), (2, 3, 4), _mask(2, 3, 4)),
    ("masked_fill_broadcast", lambda x, m: x.masked_fill(m.unsqueeze(1), 0.5), (2, 3, 4),
     _mask(2, 4)),
    ("masked_fill_inplace", lambda x, m: (x.masked_fill_(m, 2.0), x * 3)[1], (3, 4), _mask(3, 4)),
    ("where", lambda x, m: torch.where(m, x, -x) + torch.where(m, 1.0, x), (2, 5), _mask(2, 5)),
    ("compare", lambda x, m: ((x > 0.5).float() + (x >= 0.5).float() * 2 + (x < -0.2).float() * 4
                              + (x <= 0).float() * 8 + (x == x).float() * 16
                              + (x != 0.25).float() * 32), (3, 7), _mask(1)),
    ("logical", lambda x, m: ((~m) & (x > 0) | m.logical_not()).float() * x, (2, 6), _mask(2, 6)),
    ("bool_to_float_and_sum", lambda x, m: m.float() * x + m.sum(-1, keepdim=True).float(),
     (2, 6), _mask(2, 6)),
    ("float_to_int_truncates", lambda x, m: (x * 3).long().float() + (x * 3).int().to(x.dtype),
     (4, 5), _mask(1)),
    ("int_compare", lambda x, m: (m.long() * 3 == 3).float() + x.type_as(x), (2, 6), _mask(2, 6)),
]


@pytest.mark.parametrize("fn,shape,mask", [pytest.param(f, s, m, id=i)
                                           for i, f, s, m in MASK_CASES])
def test_mask_op(fn, shape, mask, tmp_path):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 2
    err, _ = check_inputs(Fn2(lambda s, x, m: fn(x, m)), x, mask, tmp_path=tmp_path)
    assert err <= TOLERANCE
