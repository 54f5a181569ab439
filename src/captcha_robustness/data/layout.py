"""Corruptions of the drawing, not of the drawn image: registered as noise types like the
others, but applied by `CaptchaSynth` while it renders, since they need the digits.

- Layout types (`baseline`, `spacing`, `digit_size`) change how the recipe lays the digits
  out, beyond what training saw: what another implementation of the same recipe would draw
  differently. Each is a function of the CAPTCHA's render parameters.
- `stray_strokes` lays fragments of other digits (of a second CAPTCHA drawn by the same
  recipe) over the CAPTCHA: the clutter real CAPTCHA generators draw.

Each takes `level` in [0, 1] (0: the clean CAPTCHA, exactly) and draws its random parts from
the CAPTCHA's `NoiseDraw`, so a higher level moves the same digits further.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from captcha_robustness.data.noise import NoiseDraw, register_noise
from captcha_robustness.data.render import CaptchaParams

LayoutFn = Callable[[CaptchaParams, torch.Tensor, NoiseDraw], CaptchaParams]
OverlayFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, NoiseDraw], torch.Tensor]
LAYOUTS: dict[str, LayoutFn] = {}
OVERLAYS: dict[str, OverlayFn] = {}  # `fn(images, other, level, draw)`: `other` is a CAPTCHA of other digits


def _drawn_by_the_synth(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """The image step of a type that `CaptchaSynth` applies while rendering: nothing left to do."""
    return images


def register_layout(name: str) -> Callable[[LayoutFn], LayoutFn]:
    """Register `fn(params, level, draw) -> params`, a change of layout by (B,) levels."""

    def wrap(fn: LayoutFn) -> LayoutFn:
        LAYOUTS[name] = fn
        register_noise(name)(_drawn_by_the_synth)
        return fn

    return wrap


BASELINE_SHIFT = 14  # pixels of the working canvas at level 1: half a 28-pixel MNIST digit


@register_layout("baseline")
def baseline(params: CaptchaParams, level: torch.Tensor, draw: NoiseDraw) -> CaptchaParams:
    """Each digit moved up or down from the common centre line by v * 14 * level pixels of the
    working canvas (rounded), v uniform in [-1, 1] per digit: at level 1 by up to half a digit.
    The recipe centres every digit; the taller crop is stretched to the same size."""
    v = draw.unit(70, params.scale.shape[1]) * 2 - 1
    shift = (v * (BASELINE_SHIFT * level.view(-1, 1))).round().long()
    return replace(params, baseline=shift if params.baseline is None else params.baseline + shift)


SPACING_CHANGE = 12  # pixels of overlap added or removed at level 1


@register_layout("spacing")
def spacing(params: CaptchaParams, level: torch.Tensor, draw: NoiseDraw) -> CaptchaParams:
    """Each gap between neighbouring digits made tighter or looser (the sign drawn per gap) by
    round(12 * level) pixels of overlap: the recipe's 2-6 pixels become up to 18 (digits
    over each other) or -10 (10 pixels of space between them) at level 1."""
    sign = torch.where(draw.unit(71, params.overlap.shape[1]) < 0.5, -1, 1)
    change = (SPACING_CHANGE * level.view(-1, 1)).round().long() * sign
    return replace(params, overlap=params.overlap + change)


@register_layout("digit_size")
def digit_size(params: CaptchaParams, level: torch.Tensor, draw: NoiseDraw) -> CaptchaParams:
    """Each digit's size multiplied by 2^(v * level), v uniform in [-1, 1] per digit: at level 1
    from half to twice the size the recipe drew (whose own range is 0.9-1.3)."""
    v = draw.unit(72, params.scale.shape[1]) * 2 - 1
    return replace(params, scale=params.scale * torch.exp2(v * level.view(-1, 1)))


def grown_patch(patch: int, ratio: float) -> int:
    """A patch side that holds every digit scaled `ratio` (>= 1) times past the largest scale
    that sized `patch`: `patch_size`'s bound grows linearly with the scale."""
    return max(patch, 2 * math.ceil((patch / 2 + 0.5) * ratio - 0.5))


STRAY_CELLS = (6, 8)  # the mask's coarse grid, rows x columns: fragments a digit stroke or two long
STRAY_SHARE = 0.6  # of the other CAPTCHA's area kept at level 1


def stray_strokes(images: torch.Tensor, other: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Fragments of another CAPTCHA's digits (`other`, drawn by the same recipe from other
    MNIST digits) laid over the image: the other CAPTCHA seen through a blobby random mask
    (a coarse uniform field, enlarged bicubically) that keeps the places where the field
    is below 0.6 * level, so level 1 keeps about 60% of it and a lower level a subset of
    that. Kept strokes are composited by maximum, as the recipe merges digits."""
    batch, _, height, width = images.shape
    field = draw.unit(80, STRAY_CELLS[0] * STRAY_CELLS[1]).view(batch, 1, *STRAY_CELLS)
    field = F.interpolate(field, size=(height, width), mode="bicubic", align_corners=True)
    mask = ((STRAY_SHARE * level.view(-1, 1, 1, 1) - field) * 20).clamp_(0, 1)
    return torch.maximum(images, other * mask)


register_noise("stray_strokes")(_drawn_by_the_synth)
OVERLAYS["stray_strokes"] = stray_strokes
