"""Models of the benchmark that torchvision does not have.

`mlp` is importable as `bench_models:mlp` by `python -m qnt export --model`
(with bench/ on PYTHONPATH) and is ready for PyTorch's eager-mode static
quantization (QuantStub / DeQuantStub, fuse_model)."""

import torch.nn as nn
from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules

MLP_IN = 784


class MLP(nn.Module):
    """784 -> 1024 -> 1024 -> 10 with ReLU: 1.85 MMAC per example."""

    def __init__(self, sizes=(MLP_IN, 1024, 1024, 10)):
        super().__init__()
        self.quant = QuantStub()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(sizes[2], sizes[3])
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        return self.dequant(self.fc3(x))

    def fuse_model(self, is_qat=None):
        fuse_modules(self, [["fc1", "relu1"], ["fc2", "relu2"]], inplace=True)


def mlp():
    return MLP()
