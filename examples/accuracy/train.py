#!/usr/bin/env python3
"""Train docs/accuracy.md's Fashion-MNIST models (FP32) on the real data.

    /usr/bin/python3 examples/accuracy/train.py mobilenet_v2 -o mnv2.pt [--epochs 4]
    /usr/bin/python3 examples/accuracy/train.py vit -o vit.pt

Fashion-MNIST comes from the Debian package dataset-fashion-mnist (no
downloads). Adam with a cosine learning rate, batch 128, seed 0, light
augmentation (random crops of the 2-pixel padded image, horizontal flips).
Prints the loss per epoch and the FP32 accuracy on the 10000 test images;
writes the state_dict (the weights evaluate.py quantizes).
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import MODELS  # noqa: E402
from qnt import datasets  # noqa: E402

LR = {"mobilenet_v2": 3e-3, "vit": 1e-3}


def augment(x, generator):
    """Random 28x28 crops of the 2-pixel zero-padded batch and random flips."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2), value=float((0 - datasets.MEAN) / datasets.STD))
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    x = padded[:, :, dy:dy + 28, dx:dx + 28]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def accuracy(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(name, epochs, log=print):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = MODELS[name]()
    x, y = (torch.from_numpy(a) for a in datasets.fashion_mnist("train"))
    xt, yt = (torch.from_numpy(a) for a in datasets.fashion_mnist("test"))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR[name], weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, LR[name], total_steps=steps)
    for epoch in range(epochs):
        model.train()
        start, total = time.time(), 0.0
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            loss = F.cross_entropy(model(augment(x[idx], generator)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        log(f"{name} epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} "
            f"({time.time() - start:.0f} s)")
    acc = accuracy(model, xt, yt)
    log(f"{name}: FP32 test accuracy {acc * 100:.2f} % on {len(xt)} images")
    return model.eval(), acc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("-o", "--output", required=True, help="the state_dict to write")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, _ = train(args.model, args.epochs)
    torch.save(model.state_dict(), args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
