"""The default solver: a small multi-head CNN designed for CPU throughput.

Why it looks like this (measured with benchmarks/bench_models.py, 2-core CPU, batch 64):
- The stretched CAPTCHA is 2.5x taller than its content, so the input is average-pooled
  4x vertically and 2x horizontally first: each digit is still ~14 x 15 pixels, like a
  half-size MNIST digit, and every later layer works on 8x fewer pixels.
- Strided 3x3 convolutions with batch norm instead of convolution + max-pool: same
  receptive field, a quarter of the compute, and no slow max-pool backward on a CPU.
- channels_last memory layout, which oneDNN's CPU convolutions run fastest.
- One shared dense layer, then one linear head per digit position; or, with `glimpses`,
  GlimpseHeads (below): a classifier shared by every position, which reads a few
  attention-pooled glimpses of the features per digit (model=multihead_cnn_glimpse).
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
from captcha_robustness.validate import check_field


def _conv_bn_relu(cin: int, cout: int, stride: int | tuple[int, int]) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class GlimpseHeads(nn.Module):
    """Reads each digit from a few attention-pooled glimpses of the feature map, with one
    classifier shared by all positions (so it learns from every digit, not from a quarter).

    Digit d has `glimpses` softmax maps over the feature map's cells: a 1x1 convolution of
    the features plus a learned bias per cell, which starts as a bump over the d-th of
    num_digits equal slices of the width (where the renderer lays digit d). Its pooled
    features (glimpses x channels), plus a learned embedding of d, go to the classifier."""

    def __init__(self, channels: int, rows: int, cols: int, num_digits: int, glimpses: int, hidden: int,
                 dropout: float) -> None:
        super().__init__()
        self.num_digits, self.glimpses = num_digits, glimpses
        self.attend = nn.Conv2d(channels, num_digits * glimpses, 1)
        centre = (torch.arange(cols) + 0.5) / cols * num_digits - 0.5  # column centres in digit units
        bump = -2.0 * (centre[None, :] - torch.arange(num_digits)[:, None]) ** 2  # (num_digits, cols)
        bias = bump[:, None, None, :].expand(num_digits, glimpses, rows, cols)
        self.cell_bias = nn.Parameter(bias.reshape(num_digits * glimpses, rows * cols).clone())
        self.position = nn.Parameter(torch.zeros(num_digits, glimpses * channels))
        self.hidden = nn.Sequential(nn.Linear(glimpses * channels, hidden), nn.BatchNorm1d(hidden),
                                    nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.classify = nn.Linear(hidden, 10)

    def attention(self, features: torch.Tensor) -> torch.Tensor:
        """(B, num_digits * glimpses, rows * cols) weights, each map summing to 1."""
        return (self.attend(features).flatten(2) + self.cell_bias).softmax(-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels = features.shape[:2]
        pooled = torch.bmm(self.attention(features), features.flatten(2).transpose(1, 2))  # (B, D * G, C)
        per_digit = pooled.reshape(batch, self.num_digits, self.glimpses * channels) + self.position
        hidden = self.hidden(per_digit.reshape(batch * self.num_digits, -1))
        return self.classify(hidden).reshape(batch, self.num_digits, 10)


class MultiHeadCNN(nn.Module):
    """Returns logits (B, num_digits, 10) for images (B, 1, height, width)."""

    def __init__(self, num_digits: int = 4, height: int = 100, width: int = 110,
                 channels: Sequence[int] = (16, 32, 64, 128),
                 strides: Sequence[int | Sequence[int]] = ((1, 2), 2, 1, 2),
                 input_pool: Sequence[int] = (4, 2), hidden: int = 256, dropout: float = 0.1,
                 glimpses: int = 0) -> None:
        super().__init__()
        check_field("model.glimpses", glimpses)
        if len(channels) != len(strides):
            raise ConfigError(f"model.channels, model.strides: must have the same length "
                              f"(got {len(channels)} and {len(strides)})")
        layers: list[nn.Module] = [nn.AvgPool2d(tuple(input_pool))]
        cin = 1
        for cout, stride in zip(channels, strides):
            layers += _conv_bn_relu(cin, cout, tuple(stride) if isinstance(stride, Sequence) else stride)
            cin = cout
        self.trunk = nn.Sequential(*layers)
        with torch.no_grad():
            _, _, rows, cols = self.trunk(torch.zeros(1, 1, height, width)).shape
        if glimpses:
            self.glimpse_heads = GlimpseHeads(cin, rows, cols, num_digits, glimpses, hidden, dropout)
        else:
            self.glimpse_heads = None
            self.shared = nn.Sequential(nn.Linear(cin * rows * cols, hidden), nn.BatchNorm1d(hidden),
                                        nn.ReLU(inplace=True), nn.Dropout(dropout))
            self.heads = nn.ModuleList(nn.Linear(hidden, 10) for _ in range(num_digits))
        self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # With one channel, NCHW and channels_last share a layout: this only relabels strides.
        features = self.trunk(images.contiguous(memory_format=torch.channels_last))
        if self.glimpse_heads is not None:
            return self.glimpse_heads(features)
        shared = self.shared(features.flatten(1))
        return torch.stack([head(shared) for head in self.heads], dim=1)
