"""The default solver: a small multi-head CNN designed for CPU throughput.

Why it looks like this (measured with scripts/bench_models.py, 2-core CPU, batch 64):
- The stretched CAPTCHA is 2.5x taller than its content, so the input is average-pooled
  4x vertically and 2x horizontally first: each digit is still ~14 x 15 pixels, like a
  half-size MNIST digit, and every later layer works on 8x fewer pixels.
- Strided 3x3 convolutions with batch norm instead of convolution + max-pool: same
  receptive field, a quarter of the compute, and no slow max-pool backward on a CPU.
- channels_last memory layout, which oneDNN's CPU convolutions run fastest.
- One shared dense layer, then one linear head per digit position.
- Where accuracy matters more than speed, keep every column at the input
  (model=multihead_cnn_hires: input_pool [4, 1]): the digits sit side by side, so width is
  where detail is scarce (full MNIST, 15 minutes of training: 96.2% of CAPTCHAs against
  95.6% for multihead_cnn_large; after 60 minutes, no better).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from captcha_robustness.errors import ConfigError


def _conv_bn_relu(cin: int, cout: int, stride: int | tuple[int, int]) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class MultiHeadCNN(nn.Module):
    """Returns logits (B, num_digits, 10) for images (B, 1, height, width)."""

    def __init__(self, num_digits: int = 4, height: int = 100, width: int = 110,
                 channels: Sequence[int] = (16, 32, 64, 128),
                 strides: Sequence[int | Sequence[int]] = ((1, 2), 2, 1, 2),
                 input_pool: Sequence[int] = (4, 2), hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ConfigError(f"model.channels, model.strides: must have the same length "
                              f"(got {len(channels)} and {len(strides)})")
        layers: list[nn.Module] = [nn.AvgPool2d(tuple(input_pool))]
        cin = 1
        for cout, stride in zip(channels, strides):
            layers += _conv_bn_relu(cin, cout, tuple(stride) if isinstance(stride, Sequence) else stride)
            cin = cout
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            features = self.trunk(torch.zeros(1, 1, height, width)).shape[1]
        self.shared = nn.Sequential(nn.Linear(features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout))
        self.heads = nn.ModuleList(nn.Linear(hidden, 10) for _ in range(num_digits))
        self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # With one channel, NCHW and channels_last share a layout: this only relabels strides.
        shared = self.shared(self.trunk(images.contiguous(memory_format=torch.channels_last)))
        return torch.stack([head(shared) for head in self.heads], dim=1)
