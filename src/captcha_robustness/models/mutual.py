"""Several networks trained side by side in one process, on the same batches, each also
learning from the others' predictions (deep mutual learning, Zhang et al., CVPR 2018), and
read as one ensemble. `captcha-train members=2` (CaptchaModule) builds one.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def log_mean_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(K, ..., 10) logits of K readings -> (..., 10): the log of their averaged softmax, in
    float32. Argmax, softmax and cross-entropy read it as the averaged prediction."""
    probs = logits.float().softmax(-1).mean(0)
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def mutual_loss(member_logits: torch.Tensor, labels: torch.Tensor, weight: float,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed over the K members (K, B, D, 10): each one's cross-entropy with the labels (B, D)
    plus `weight` times KL(others' averaged softmax || its own softmax), averaged over the
    B x D digits. The others' side is detached, so each member's gradient is exactly that
    of its own loss, as if it trained alone against fixed soft targets."""
    count = member_logits.shape[0]
    log_probs = member_logits.float().log_softmax(-1).reshape(count, -1, 10)
    targets = labels.reshape(-1)
    probs = log_probs.detach().exp()
    summed = probs.sum(0)
    total = member_logits.new_zeros((), dtype=torch.float32)
    for k in range(count):
        total = total + F.cross_entropy(log_probs[k], targets, label_smoothing=label_smoothing)
        if weight and count > 1:
            others = (summed - probs[k]) / (count - 1)
            total = total + weight * F.kl_div(log_probs[k], others, reduction="batchmean")
    return total


class MutualEnsemble(nn.Module):
    """Returns the log of the members' averaged softmax (B, D, 10) for images (B, 1, H, W)."""

    def __init__(self, networks: Iterable[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(networks)

    def member_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(K, B, D, 10): every member's logits."""
        return torch.stack([network(images) for network in self.members])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return log_mean_softmax(self.member_logits(images))
