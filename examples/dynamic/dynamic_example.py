#!/usr/bin/env python3
"""Dynamic quantization of the bundled Fashion-MNIST CNN (examples/cnn), for
`scripts/demo.sh --mode dynamic`.

    /usr/bin/python3 examples/dynamic/dynamic_example.py OUT_DIR [--engine qnnpack]

Exports the trained FP32 model (examples/cnn/model.pt) with python/qnt and
writes to OUT_DIR:
  model.mlir              the FP32 model
  eval.npz                500 test images (argument `x`, NCHW) and labels
  pytorch_dynamic.npz     torch.quantization.quantize_dynamic(model,
                          {nn.Linear}, dtype=torch.qint8) on them
  fp32.npz                the FP32 model on them
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "examples" / "qat"))
import qnt  # noqa: E402
from qnt import data as qdata  # noqa: E402
from qnt import datasets as qdatasets  # noqa: E402
from qat_example import Net  # noqa: E402  (the CNN, with no-op stubs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--engine", default="qnnpack", choices=("qnnpack", "onednn"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)

    model = Net()
    model.load_state_dict(torch.load(ROOT / "examples" / "cnn" / "model.pt"))
    model.eval()
    info = qnt.export(model, (torch.zeros(1, 1, 28, 28),), args.out_dir / "model.mlir")
    test_x, test_y = qdatasets.fashion_mnist("test", limit=500)
    qdata.save(args.out_dir / "eval.npz", {"x": test_x}, batch=1, expect=info,
               labels=test_y)
    torch.backends.quantized.engine = args.engine
    dynamic = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    with torch.no_grad():
        x = torch.from_numpy(test_x)
        np.savez(args.out_dir / "fp32.npz", output=model(x).numpy())
        np.savez(args.out_dir / "pytorch_dynamic.npz",
                 output=torch.cat([dynamic(x[i:i + 1]) for i in range(len(x))]).numpy())
    print(f"exported {args.out_dir}/model.mlir", file=sys.stderr)


if __name__ == "__main__":
    main()
