"""Models of the benchmark that torchvision does not have.

`mlp` is importable as `bench_models:mlp` by `python -m qnt export --model`
(with bench/ on PYTHONPATH) and is ready for PyTorch's eager-mode static
quantization (QuantStub / DeQuantStub, fuse_model). `vit_s_16` (likewise
`bench_models:vit_s_16`) is torchvision's VisionTransformer in the ViT-S/16
configuration, which torchvision.models does not name; PyTorch quantizes it
in FX graph mode."""

import torch.nn as nn
import torchvision
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


def vit_s_16():
    """ViT-S/16 at 224x224: 12 layers, hidden 384, 6 heads, MLP 1536 (197
    tokens). torchvision initializes the classifier to zeros (all logits
    0): random instead."""
    model = torchvision.models.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384,
        mlp_dim=1536)
    nn.init.normal_(model.heads.head.weight, std=0.05)
    return model


# Models of this file by the name bench/run.py takes.
MODELS = {"mlp": mlp, "vit_s_16": vit_s_16}
