"""The two Fashion-MNIST models of docs/accuracy.md's evidence: torchvision
classes shrunk to 28x28 grayscale.

* ``mobilenet_v2()``: torchvision's MobileNetV2 (inverted residuals,
  depthwise-separable blocks, ReLU6), width 0.5, four stages of strides
  1, 2, 2, 2 after a stride-1 stem on one channel: 28 -> 4 pixels.
* ``vit()``: torchvision's VisionTransformer with 7x7 patches on one channel
  (16 tokens + class token), 4 layers, hidden 64, 4 heads, MLP 128.
"""

import torch.nn as nn
import torchvision

SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2]]  # t, c, n, s


def mobilenet_v2():
    model = torchvision.models.MobileNetV2(num_classes=10, width_mult=0.5,
                                           inverted_residual_setting=SETTING, round_nearest=8)
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(1, stem.out_channels, 3, stride=1, padding=1, bias=False)
    return model


def vit():
    model = torchvision.models.VisionTransformer(
        image_size=28, patch_size=7, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128,
        num_classes=10)
    model.conv_proj = nn.Conv2d(1, 64, kernel_size=7, stride=7)
    return model


MODELS = {"mobilenet_v2": mobilenet_v2, "vit": vit}
