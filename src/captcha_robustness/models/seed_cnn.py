"""The reference study's multi-head CNN, exactly as docs/reference.md describes it."""

from __future__ import annotations

import torch
from torch import nn


class SeedCNN(nn.Module):
    """Three unpadded 3x3 convs (32/64/64) with 2x2 max-pooling, dense 128, and one head per
    digit position (dense 64, dense 10). 1,074,536 parameters at 100 x 110 with 4 digits.
    Returns logits (B, num_digits, 10)."""

    def __init__(self, num_digits: int = 4, height: int = 100, width: int = 110) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            features = self.trunk(torch.zeros(1, 1, height, width)).shape[1]
        self.shared = nn.Sequential(nn.Linear(features, 128), nn.ReLU())
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)) for _ in range(num_digits)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        shared = self.shared(self.trunk(images))
        return torch.stack([head(shared) for head in self.heads], dim=1)
