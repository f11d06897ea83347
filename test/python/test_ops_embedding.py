"""FP32 parity of python/qnt/ops/embedding.py (nn.Embedding, F.embedding) and
of models that take token ids and masks as inputs, within TOLERANCE
(1e-5) of PyTorch; the ids' valid range on the exported argument."""

import re

import pytest
from frontend_util import (TOLERANCE, F, check_inputs, nn, np, qnt, quant_run, run_tool,
                           torch)


class Lookup(nn.Module):
    """emb(ids) through the given id transformation."""

    def __init__(self, vocab=11, dim=6, padding_idx=None, ids=lambda ids: ids):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=padding_idx)
        self.ids = ids

    def forward(self, ids):
        return self.emb(self.ids(ids))


class FunctionalLookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(9, 4))

    def forward(self, ids):
        return F.embedding(ids, self.weight) * 2.0


class TinyLM(nn.Module):
    """A GPT-style decoder: token + position embeddings (positions from
    torch.arange), a causal mask from torch.triu, pre-norm encoder layers,
    a tied output projection."""

    def __init__(self, vocab=50, d=16, heads=2, layers=2, length=7):
        super().__init__()
        self.tok = nn.Embedding(vocab, d, padding_idx=0)
        self.pos = nn.Embedding(length, d)
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.body = nn.TransformerEncoder(layer, layers)
        self.norm = nn.LayerNorm(d)

    def forward(self, ids):
        t = ids.shape[1]
        positions = torch.arange(t)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        x = self.tok(ids) + self.pos(positions).unsqueeze(0)
        return self.norm(self.body(x, mask=causal)) @ self.tok.weight.t()


class TinyBert(nn.Module):
    """A BERT-style encoder on (ids, attention_mask): the mask (1 = token,
    0 = padding, int64 as tokenizers give it) becomes the bool
    src_key_padding_mask; the output is the masked mean of the tokens."""

    def __init__(self, vocab=40, d=16, heads=2, layers=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d, padding_idx=0)
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers)

    def forward(self, ids, attention_mask):
        h = self.body(self.tok(ids), src_key_padding_mask=attention_mask == 0)
        keep = attention_mask.unsqueeze(-1).float()
        return (h * keep).sum(1) * (1.0 / ids.shape[1])


def ids(shape, vocab, seed=0):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def valid_ranges(text):
    """{qnt.name: (lo, hi)} of the exported arguments."""
    return {name: (int(lo), int(hi)) for name, lo, hi in re.findall(
        r'qnt\.name = "(\w+)", qnt\.valid_range = array<i64: (-?\d+), (-?\d+)>', text)}


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_embedding(dtype, tmp_path):
    torch.manual_seed(0)
    err, text = check_inputs(Lookup(padding_idx=0), ids((2, 5), 11).to(dtype), tmp_path=tmp_path)
    assert err <= TOLERANCE
    assert '"tosa.gather"' in text
    assert valid_ranges(text) == {"ids": (0, 11)}


def test_embedding_of_reshaped_ids(tmp_path):
    """The range reaches the argument through view and integer casts."""
    torch.manual_seed(0)
    module = Lookup(ids=lambda i: i.view(-1).long())
    err, text = check_inputs(module, ids((3, 4), 11).int(), tmp_path=tmp_path)
    assert err <= TOLERANCE
    assert valid_ranges(text) == {"ids": (0, 11)}


def test_functional_embedding(tmp_path):
    torch.manual_seed(0)
    err, text = check_inputs(FunctionalLookup(), ids((4,), 9), tmp_path=tmp_path)
    assert err <= TOLERANCE
    assert valid_ranges(text) == {"ids": (0, 9)}


def test_embedding_max_norm_is_an_error():
    module = nn.Sequential(nn.Embedding(5, 3, max_norm=1.0))
    with pytest.raises(qnt.ExportError, match="max_norm"):
        qnt.to_mlir(module, ids((2,), 5))


def test_float_ids_are_an_error():
    """PyTorch refuses them while the model is run on the example inputs."""
    with pytest.raises(qnt.ExportError, match="running the traced model.*Long, Int"):
        qnt.to_mlir(FunctionalLookup(), torch.zeros(3))


def test_other_dtypes_are_an_error():
    with pytest.raises(qnt.ExportError, match="float16"):
        qnt.to_mlir(Lookup(), torch.zeros(3, dtype=torch.float16))


def test_tiny_lm(tmp_path):
    """Positions and the causal mask are computed from no input: constants."""
    torch.manual_seed(0)
    err, text = check_inputs(TinyLM(), ids((2, 7), 50), tmp_path=tmp_path)
    assert err <= TOLERANCE
    # pos(arange(t)).unsqueeze(0) is a constant table, the causal mask a
    # bool constant.
    assert '%unsqueeze.value = "tosa.const"' in text
    assert '%triu.value = "tosa.const"() {values = dense<[[false, true, true' in text
    assert valid_ranges(text) == {"ids": (0, 50)}


@pytest.mark.parametrize("padding", ["right", "left"])
def test_tiny_bert_with_padding(padding, tmp_path):
    """PyTorch runs a right-padded batch as a nested tensor (padded
    positions 0 before the mean); a left-padded one the masked way."""
    torch.manual_seed(0)
    mask = torch.ones(3, 6, dtype=torch.int64)
    if padding == "right":
        mask[1, 4:] = 0
        mask[2, 2:] = 0
    else:
        mask[1, :3] = 0
    err, text = check_inputs(TinyBert(), ids((3, 6), 40), mask, tmp_path=tmp_path)
    assert err <= TOLERANCE
    assert valid_ranges(text) == {"ids": (0, 40)}


def test_masks_as_inputs_run_through_quant_run(tmp_path):
    """Bool and int inputs from an .npz; outputs as PyTorch's."""
    torch.manual_seed(0)
    module = TinyBert().eval()
    token_ids, mask = ids((2, 6), 40), torch.ones(2, 6, dtype=torch.int64)
    mask[0, 3:] = 0
    path = tmp_path / "bert.mlir"
    qnt.export(module, (token_ids, mask), path)
    (got,) = quant_run(path, {"ids": token_ids.numpy(), "attention_mask": mask.numpy()},
                       tmp_path)
    with torch.no_grad():
        want = module(token_ids, mask).numpy()
    assert np.abs(got - want).max() <= TOLERANCE * np.abs(want).max()
    # The PTQ and dynamic pipelines leave the integer edges alone.
    for pipeline in ("--qnt-ptq-pipeline=qconfig=x86", "--qnt-dynamic-pipeline=qconfig=x86"):
        run_tool("quant-opt", path, pipeline, "-o", tmp_path / "q.mlir")


def test_data_set_keeps_ids_and_masks(tmp_path):
    """qnt.data.save keeps int64 ids and bool masks (quant-run takes them as
    the arguments' types; other numbers become float32, strings are an
    error); quant-run --samples runs every sample as PyTorch."""
    torch.manual_seed(0)
    module = TinyBert().eval()
    token_ids, mask = ids((4, 6), 40), torch.ones(4, 6, dtype=torch.int64)
    mask[1, 2:] = 0
    path = tmp_path / "bert.mlir"
    info = qnt.export(module, (token_ids[:2], mask[:2]), path)
    qnt.data.save(tmp_path / "set.npz", {"ids": token_ids, "attention_mask": mask}, batch=2,
                  expect=info)
    saved = np.load(tmp_path / "set.npz")
    assert saved["ids"].dtype == np.int64 and saved["ids"].shape == (2, 2, 6)
    run_tool("quant-run", path, "-i", tmp_path / "set.npz", "--samples", "-o", tmp_path / "o.npz",
             "--quiet")
    got = np.load(tmp_path / "o.npz")["output"]
    with torch.no_grad():
        want = np.stack([module(token_ids[i:i + 2], mask[i:i + 2]).numpy() for i in (0, 2)])
    assert np.abs(got - want).max() <= TOLERANCE * np.abs(want).max()
    for dtype in (np.float64, np.uint8):
        qnt.data.save(tmp_path / "f.npz", {"x": np.zeros((2, 3), dtype)})
        assert np.load(tmp_path / "f.npz")["x"].dtype == np.float32
    with pytest.raises(ValueError, match="not numeric"):
        qnt.data.save(tmp_path / "s.npz", {"x": np.array([["a"]])})
