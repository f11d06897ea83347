"""FP32 parity of python/qnt/ops/quantization.py's stubs (the QAT handlers are
tested against PyTorch in test_qat.py)."""

from frontend_util import check_case, conv, nn, parametrize_cases, torch

CASES = [
    ("quant_stubs", lambda: nn.Sequential(torch.ao.quantization.QuantStub(), conv(),
                                          torch.ao.quantization.DeQuantStub()),
     [(1, 3, 6, 6)], "qnt.quant_stub"),
]


@parametrize_cases(CASES)
def test_op(factory, shapes, expect, tmp_path):
    check_case(factory, shapes, expect, tmp_path)
