"""Writes token-ids.mlir: a model on token ids (int64, vocabulary 40) and a
bool padding mask, for the typed-input tests of quant-run and quant-compile
(/usr/bin/python3)."""
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "python"))
import qnt  # noqa: E402


class Pooled(nn.Module):
    """Embeddings of the tokens, padding zeroed, summed, then a linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 4, padding_idx=0)
        self.fc = nn.Linear(4, 3)

    def forward(self, ids, padding):
        x = self.emb(ids).masked_fill(padding.unsqueeze(-1), 0.0)
        return self.fc(x.sum(1))


torch.manual_seed(0)
qnt.export(Pooled(), (torch.zeros(2, 6, dtype=torch.int64), torch.zeros(2, 6, dtype=torch.bool)),
           Path(__file__).with_suffix(".mlir"))
