"""The evaluation scripts' transformer encoder: eval/fx_vs_pytorch.py's
fx_traceable computes what nn.TransformerEncoder computes (which PyTorch's
prepare_fx cannot trace) and prepare_fx traces it; eval/ptq_vs_pytorch.py's
token_embeddings are deterministic, layer-normalized sequences."""

import copy
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "eval"))
sys.path.insert(0, str(REPO / "python"))
import fx_vs_pytorch  # noqa: E402
import ptq_vs_pytorch as pvp  # noqa: E402


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_traceable_encoder_matches(norm_first, activation):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 128, activation=activation, batch_first=True,
                                       norm_first=norm_first)
    model = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(64)).eval()
    x = pvp.token_embeddings(3, 0, sequence=16, width=64)
    traceable = fx_vs_pytorch.fx_traceable(copy.deepcopy(model))
    assert isinstance(traceable, nn.Sequential) and len(traceable) == 3
    with torch.no_grad():
        torch.testing.assert_close(traceable(x), model(x), rtol=1e-5, atol=1e-5)
    # prepare_fx traces the equivalent (not the original: TraceError).
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx
    from qnt.export import proxy_unpacking
    with warnings.catch_warnings(), proxy_unpacking():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(traceable, get_default_qconfig_mapping("onednn"), (x[:1],))
        with pytest.raises(Exception, match="control flow"):
            prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("onednn"), (x[:1],))
    with torch.no_grad():
        prepared(x[:1])


def test_other_models_unchanged():
    m = nn.Linear(2, 2)
    assert fx_vs_pytorch.fx_traceable(m) is m


def test_token_embeddings():
    a = pvp.token_embeddings(2, 5, sequence=8, width=32)
    b = pvp.token_embeddings(2, 5, sequence=8, width=32)
    c = pvp.token_embeddings(2, 6, sequence=8, width=32)
    assert a.shape == (2, 8, 32)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    torch.testing.assert_close(a.mean(-1), torch.zeros(2, 8), rtol=0, atol=1e-5)
