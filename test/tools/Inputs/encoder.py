"""Writes encoder.mlir: a small FP32 transformer encoder (2 post-norm
nn.TransformerEncoderLayer, d_model 16, 2 heads, feed-forward 32, relu,
batch_first, input [1, 8, 16]; random weights, std 0.2) for the AArch64
test (/usr/bin/python3)."""
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "python"))
import qnt  # noqa: E402

torch.manual_seed(0)
model = nn.TransformerEncoder(
    nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), 2).eval()
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0.0, 0.2)
qnt.export(model, (torch.zeros(1, 8, 16),), Path(__file__).with_suffix(".mlir"))
