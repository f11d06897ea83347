"""Writes integer-forms.mlir (FP32) and calib.npz, from which
integer-forms-int8.mlir is made (/usr/bin/python3, PYTHONPATH=python)."""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "python"))
import qnt  # noqa: E402


class SE(nn.Module):
    """Every integer form: hardswish/hardsigmoid/sigmoid/tanh tables, squeeze-excite
    mul, global and 2x2 average pooling, concat with requantized inputs, a batch norm
    that no conv precedes (+ relu), constant padding, bilinear and nearest resizing."""
    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(3, 8, 3, padding=1)
        s.fc1 = nn.Conv2d(8, 4, 1); s.fc2 = nn.Conv2d(4, 8, 1)
        s.bn = nn.BatchNorm2d(16)
        s.c2 = nn.Conv2d(16, 8, 3, padding=1)
        s.fc = nn.Linear(8, 10)
    def forward(s, x):
        x = F.hardswish(s.c1(x))
        y = F.hardsigmoid(s.fc2(F.relu(s.fc1(F.adaptive_avg_pool2d(x, 1)))))
        z = torch.cat([x * y, x], 1)
        z = torch.sigmoid(s.c2(F.relu(s.bn(z)))) * 2.0 + 0.5
        z = F.pad(torch.tanh(F.avg_pool2d(z, 2)), (1, 1, 1, 1), value=0.25)
        z = F.interpolate(F.interpolate(z, scale_factor=2, mode="bilinear"), size=(5, 7))
        return s.fc(z.mean((2, 3)))
torch.manual_seed(0)
m = SE().eval()
m.bn.running_mean.uniform_(-1, 1); m.bn.running_var.uniform_(0.5, 2)
m.bn.weight.data.uniform_(0.5, 1.5); m.bn.bias.data.uniform_(0, 1)
qnt.export(m, torch.randn(1, 3, 8, 8), "integer-forms.mlir")
np.savez("calib.npz", x=np.random.RandomState(0).randn(8, 1, 3, 8, 8).astype(np.float32))
# integer-forms-int8.mlir is then (build/bin):
#   quant-opt integer-forms.mlir --qnt-ptq-pipeline="qconfig=x86" --mlir-print-debuginfo -o prep.mlir
#   quant-run prep.mlir --calibrate calib.npz --stats-file stats.json
#   quant-opt integer-forms.mlir --qnt-ptq-pipeline="qconfig=x86 stats=stats.json" -o integer-forms-int8.mlir
