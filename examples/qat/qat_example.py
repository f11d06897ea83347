#!/usr/bin/env python3
"""Quantization-aware training of the bundled Fashion-MNIST CNN
(examples/cnn), for `scripts/demo.sh --mode qat`.

    /usr/bin/python3 examples/qat/qat_example.py OUT_DIR [--backend qnnpack]

Starts from the trained FP32 weights (examples/cnn/model.pt), fuses
conv + bn + relu, runs PyTorch's eager-mode QAT for one epoch on 4000
training images, and writes to OUT_DIR:
  qat.mlir            the QAT model exported with its fake quantization
  eval.npz            500 test images (argument `x`, NCHW) and their labels
  pytorch_int8.npz    PyTorch's own convert() of the same model on them
  fp32.npz            the FP32 model on them
"""

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
import torch.ao.quantization as tq
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
from qnt import data as qdata  # noqa: E402
from qnt import datasets as qdatasets  # noqa: E402
from qnt import qat  # noqa: E402


class Net(nn.Module):
    """examples/cnn's CNN with PyTorch's quantization stubs."""

    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1, self.relu1 = nn.BatchNorm2d(8), nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2, self.relu2 = nn.BatchNorm2d(16), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(self.quant(x))))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.dequant(self.fc(torch.flatten(x, 1)))


FUSE = [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--backend", default="qnnpack", choices=("qnnpack", "onednn"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)

    fp32 = Net()
    fp32.load_state_dict(torch.load(ROOT / "examples" / "cnn" / "model.pt"))
    fp32.eval()
    train_x, train_y = qdatasets.fashion_mnist("train", limit=4000)
    test_x, test_y = qdatasets.fashion_mnist("test", limit=500)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(train_x),
                                             torch.from_numpy(train_y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    model = qat.train_qat(copy.deepcopy(fp32), loader, epochs=1, backend=args.backend,
                          fuse=FUSE)
    info = qat.export_qat(model, torch.zeros(1, 1, 28, 28), args.out_dir / "qat.mlir")
    qdata.save(args.out_dir / "eval.npz", {"x": test_x}, batch=1, expect=info,
               labels=test_y)
    with torch.no_grad():
        x = torch.from_numpy(test_x)
        np.savez(args.out_dir / "fp32.npz", output=fp32(x).numpy())
        np.savez(args.out_dir / "pytorch_int8.npz",
                 output=qat.convert_pytorch(model, args.backend)(x).numpy())
    print(f"QAT ({args.backend}): wrote {args.out_dir}/qat.mlir", file=sys.stderr)


if __name__ == "__main__":
    main()
