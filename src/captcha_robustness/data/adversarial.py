"""Adversarial noise: CAPTCHAs perturbed against a surrogate solver (`noise.surrogate`, one
checkpoint or a list read as an ensemble) within the budget `level`, untargeted, with the loss
over all digit heads.

- `adversarial_linf`: every pixel moves by at most `level` (torchattacks' PGD, random start;
  the adversarial counterpart of `uniform` noise at the same level).
- `adversarial_l2`: the perturbation's root mean square over pixels is at most `level`, i.e.
  an L2 norm of `level * sqrt(pixels)` (torchattacks' PGDL2, random start).
- `adversarial_l0`: at most a fraction `level` of pixels is set to 0 or 1 (the adversarial
  counterpart of salt & pepper at the same level). No attack library has a fixed-count L0
  attack with values pinned to the image's range (torchattacks' JSMA is targeted and moves
  pixels one way, Foolbox's L0 attacks minimise the count instead), so this one is ours: it
  starts from salt & pepper with exactly that many pixels hit, then `steps` times sets the
  pixels with the largest first-order gain in loss to 0 or 1, keeping each CAPTCHA's worst
  iterate.

Crafting is deterministic per (seed, split, captcha_id): CAPTCHAs are crafted in fixed blocks
of BLOCK ids, each with its own random start seeded from its block, whatever batch asked.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from captcha_robustness.data.noise import NoiseDraw
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.mutual import log_mean_softmax

BLOCK = 64
PGD_STEP = 2.5  # step size = PGD_STEP * budget / steps (Madry et al., 2018)


class Surrogate(torch.nn.Module):
    """The networks of one or more checkpoints read as one (log of their mean softmax), with
    logits shaped (B, 10, num_digits): cross-entropy against (B, num_digits) labels is then the
    loss over every digit head, as attack libraries compute it for one-head classifiers."""

    def __init__(self, networks: list[torch.nn.Module]) -> None:
        super().__init__()
        self.networks = torch.nn.ModuleList(networks)
        self.train(networks[0].training)  # the networks' mode, which crafting restores

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return log_mean_softmax(torch.stack([net(images) for net in self.networks])).transpose(1, 2)


@functools.lru_cache(maxsize=4)
def load_surrogate(paths: tuple[str, ...], device: str, shape: tuple[int, int, int]) -> Surrogate:
    """The checkpoints of `noise.surrogate` as one frozen Surrogate on `device`; one line naming
    noise.surrogate when a file is missing, is not a checkpoint or reads other CAPTCHAs than
    `shape` (num_digits, height, width)."""
    from captcha_robustness.runs import load_module  # the models, only when a surrogate is asked for

    networks = []
    with torch.inference_mode(False):  # weights that autograd may use, even when asked inside a test loop
        for path in paths:
            module = load_module(path, field="noise.surrogate")
            got = (module.hparams.num_digits, *module.hparams.image_size)
            if tuple(got) != tuple(shape):
                raise ConfigError(f"noise.surrogate: {path} reads CAPTCHAs of num_digits, height, width = "
                                  f"{tuple(got)}, these are {tuple(shape)}; give a checkpoint trained on this "
                                  f"data.render")
            networks.append(module.model)
        surrogate = Surrogate(networks).to(device).eval()
    surrogate.requires_grad_(False)
    return surrogate


def per_captcha_loss(surrogate: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) cross-entropy summed over the digit heads."""
    return F.cross_entropy(surrogate(images), labels, reduction="none").sum(1)


def _seeded(attack: Callable, images: torch.Tensor, labels: torch.Tensor, start_key: int) -> torch.Tensor:
    """`attack(images, labels)` with torch's random numbers (the random start) seeded by `start_key`."""
    devices = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(start_key & ((1 << 63) - 1))
        return attack(images, labels)


def linf(surrogate: Surrogate, images: torch.Tensor, labels: torch.Tensor, level: float, draw: NoiseDraw,
         steps: int, start_key: int) -> torch.Tensor:
    import torchattacks

    attack = torchattacks.PGD(surrogate, eps=level, alpha=PGD_STEP * level / steps, steps=steps, random_start=True)
    return _seeded(attack, images, labels, start_key)


def l2(surrogate: Surrogate, images: torch.Tensor, labels: torch.Tensor, level: float, draw: NoiseDraw,
       steps: int, start_key: int) -> torch.Tensor:
    import torchattacks

    eps = level * math.sqrt(images[0].numel())
    attack = torchattacks.PGDL2(surrogate, eps=eps, alpha=PGD_STEP * eps / steps, steps=steps, random_start=True)
    return _seeded(attack, images, labels, start_key)


def l0_count(level: float, pixels: int) -> int:
    """How many pixels `adversarial_l0` may set at `level`."""
    return round(level * pixels)


def l0(surrogate: Surrogate, images: torch.Tensor, labels: torch.Tensor, level: float, draw: NoiseDraw,
       steps: int, start_key: int) -> torch.Tensor:
    clean = images.flatten(1)
    k = l0_count(level, clean.shape[1])
    if k == 0:
        return images.clone()

    def with_pixels_set(index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return clean.scatter(1, index, values).view_as(images)

    # Start: salt & pepper hitting exactly the k pixels with the lowest hit lanes.
    lanes = draw.hit_lanes
    index = lanes.topk(k, largest=False).indices
    current = with_pixels_set(index, lanes.gather(1, index).bitwise_and(1).float())
    best, best_loss = current, torch.full((len(images),), -math.inf, device=images.device)
    for step in range(steps + 1):
        current.requires_grad_(True)
        loss = per_captcha_loss(surrogate, current, labels)
        better = loss.detach() > best_loss
        best = torch.where(better.view(-1, *[1] * (images.dim() - 1)), current.detach(), best)
        best_loss = torch.maximum(best_loss, loss.detach())
        if step == steps:
            break
        grad = torch.autograd.grad(loss.sum(), current)[0].flatten(1)
        target = (grad > 0).float()  # the loss rises by moving the pixel up (to 1) or down (to 0)
        index = (grad * (target - clean)).topk(k).indices  # first-order gain of each pixel moved from clean
        current = with_pixels_set(index, target.gather(1, index))
    return best


ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    "adversarial_l0": l0,
    "adversarial_linf": linf,
    "adversarial_l2": l2,
}


def craft(name: str, surrogate: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, level: float,
          keys: torch.Tensor, steps: int, start_key: int) -> torch.Tensor:
    """Adversarial versions of (B, C, H, W) `images` in [0, 1] under attack `name` at budget
    `level`; `keys` (B,) are the CAPTCHAs' noise keys (the L0 start), `start_key` seeds the
    library attacks' random start. Level 0 returns the images unchanged."""
    if level == 0:
        return images.clone()
    draw = NoiseDraw(keys, images[0].numel())
    training = surrogate.training
    surrogate.eval()  # batch norm with its running statistics, no dropout, as the solver reads
    try:
        with torch.inference_mode(False), torch.enable_grad():
            images, labels = images.clone(), labels.clone()  # ordinary tensors, even inside inference mode
            return ATTACKS[name](surrogate, images, labels, level, draw, steps, start_key).detach()
    finally:
        surrogate.train(training)


def ssim_per_image(images: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """(B,) SSIM of each image against its clean version."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(images, clean, data_range=1.0, reduction="none")
