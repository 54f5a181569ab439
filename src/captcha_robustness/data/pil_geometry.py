"""Pillow's bilinear resize and rotation of 8-bit images, batched in torch and exact: the two
passes through which the reference study's renderer scaled and rotated each digit.

Pillow resizes with a triangle filter whose support widens when it shrinks (antialiasing), in
22-bit fixed point, rounding to 8 bits after the horizontal and again after the vertical pass.
It rotates with `expand=True` into a layer just large enough for the turned image, sampling
each layer pixel bilinearly in double precision and truncating to 8 bits; a point outside the
source is 0. Images here hold the 8-bit values 0-255 as float64, whose integer arithmetic is
exact at these sizes, so the results equal Pillow's pixel for pixel.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling (32 - 8 - 2)


def filter_weights(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in) float64: Pillow's bilinear coefficients, normalised per output pixel."""
    scale = size_in / size_out
    support = max(scale, 1.0)
    weights = torch.zeros(size_out, size_in, dtype=torch.float64)
    for out in range(size_out):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        stop = min(int(centre + support + 0.5), size_in)
        taps = torch.arange(first, stop, dtype=torch.float64)
        k = (1 - ((taps - centre + 0.5) / support).abs()).clamp_(min=0)
        weights[out, first:stop] = k / k.sum() if k.sum() else k
    return weights


@lru_cache(maxsize=256)
def fixed_point_weights(size_in: int, size_out: int) -> torch.Tensor:
    """`filter_weights` in Pillow's fixed point: round(w * 2^22), as float64."""
    return (filter_weights(size_in, size_out) * (1 << PRECISION_BITS) + 0.5).floor_()


def _resample(images: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """One fixed-point pass along `dim` (-1: columns, -2: rows) with (N, out, in) weights."""
    total = images @ weights.transpose(1, 2) if dim == -1 else weights @ images
    return total.add_(1 << (PRECISION_BITS - 1)).div_(1 << PRECISION_BITS).floor_().clamp_(0, 255)


def resize_squares(images: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """(N, S, S) float64: each (N, H, W) 8-bit image resized to sides[i] x sides[i] as Pillow's
    `resize(..., BILINEAR)` does, at the top left of an S x S block (S = the largest side),
    zero elsewhere."""
    n, height, width = images.shape
    largest = int(sides.max()) if n else 1
    unique, which = torch.unique(sides.cpu(), return_inverse=True)

    def bank(size_in: int) -> torch.Tensor:
        rows = torch.zeros(len(unique), largest, size_in, dtype=torch.float64)
        for k, side in enumerate(unique.tolist()):
            rows[k, :side] = fixed_point_weights(size_in, side)
        return rows.to(images.device)[which.to(images.device)]

    across = _resample(images.double(), bank(width), -1)  # (N, H, S)
    return _resample(across, bank(height), -2)  # (N, S, S)


def rotation(angle_deg: torch.Tensor, sides: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pillow's `rotate(angle, expand=True)` of side x side images: the inverse affine maps
    (N, 2, 3) float64, from layer pixel centres (x + 0.5, y + 0.5) to source coordinates, and
    the layers' widths and heights (N,) int64."""
    # Computed as Pillow does, in Python's float arithmetic and rounding, to the last bit.
    turns = [-math.radians(angle) for angle in angle_deg.double().tolist()]
    a = torch.tensor([round(math.cos(t), 15) for t in turns], dtype=torch.float64)
    b = torch.tensor([round(math.sin(t), 15) for t in turns], dtype=torch.float64)
    d = torch.tensor([round(-math.sin(t), 15) for t in turns], dtype=torch.float64)
    e = a
    sides = sides.cpu()
    w = sides.double()
    centre = w / 2
    c = a * -centre + b * -centre + centre
    f = d * -centre + e * -centre + centre
    corners_x = torch.stack([c, a * w + c, a * w + b * w + c, b * w + c])
    corners_y = torch.stack([f, d * w + f, d * w + e * w + f, e * w + f])
    layer_w = (corners_x.amax(0).ceil() - corners_x.amin(0).floor()).long()
    layer_h = (corners_y.amax(0).ceil() - corners_y.amin(0).floor()).long()
    tx, ty = -(layer_w - sides) / 2.0, -(layer_h - sides) / 2.0
    matrix = torch.stack([torch.stack([a, b, a * tx + b * ty + c], -1), torch.stack([d, e, d * tx + e * ty + f], -1)], 1)
    return matrix, layer_w, layer_h


def layer_bound(side: int, rotation_min: float, rotation_max: float) -> int:
    """The largest width or height of a side x side image rotated by an angle in the range."""
    angles = [rotation_min, rotation_max] + [a for a in (-45.0, 45.0) if rotation_min <= a <= rotation_max]
    sides = torch.full((len(angles),), side)
    _, width, height = rotation(torch.tensor(angles), sides)
    return int(torch.maximum(width, height).max())


def rotate_into(images: torch.Tensor, sides: torch.Tensor, angle_deg: torch.Tensor, size: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each image (its top left sides[i] x sides[i] of the (N, S, S) 8-bit `images`) rotated as
    Pillow's `rotate(angle, BILINEAR, expand=True)` into its layer, and the layer laid in a
    size x size patch at column and row ((size - layer_w) // 2, (size - layer_h) // 2).
    Returns the patches (N, size, size) float32 (8-bit values) and those offsets (N,), (N,).

    Every step is Pillow's own arithmetic in double precision (its source point of each layer
    pixel, neighbours clamped to the image, 0 outside it, truncation to 8 bits). Exactness
    matters here: where Pillow's rounding drops a faint pixel at an ink box's edge, the
    reference layout moves that whole digit by a pixel; `grid_sample`, rounding otherwise,
    would not."""
    n, block, _ = images.shape
    device = images.device
    matrix, layer_w, layer_h = rotation(angle_deg, sides)
    matrix, sides = matrix.to(device), sides.to(device)
    off_x, off_y = (size - layer_w.to(device)) // 2, (size - layer_h.to(device)) // 2
    pixel = torch.arange(size, device=device, dtype=torch.float64) + 0.5
    x = pixel.view(1, 1, size) - off_x.view(n, 1, 1)  # layer pixel centres of each patch column
    y = pixel.view(1, size, 1) - off_y.view(n, 1, 1)
    m = matrix.view(n, 6, 1, 1).unbind(1)
    xin = m[0] * x + m[1] * y + m[2]
    yin = m[3] * x + m[4] * y + m[5]
    limit = sides.view(n, 1, 1).double()
    inside = (xin >= 0) & (xin < limit) & (yin >= 0) & (yin < limit)
    xin, yin = xin.sub_(0.5), yin.sub_(0.5)
    x0, y0 = xin.floor(), yin.floor()
    dx, dy = xin.sub_(x0), yin.sub_(y0)
    top = limit - 1
    col0, col1 = x0.clamp(min=0).minimum(top), (x0 + 1).clamp_(min=0).minimum(top)
    row0, row1 = y0.clamp(min=0).minimum(top).mul_(block), (y0 + 1).clamp_(min=0).minimum(top).mul_(block)
    index = torch.stack([row0 + col0, row0 + col1, row1 + col0, row1 + col1], 1).long()
    p00, p01, p10, p11 = images.reshape(n, -1).gather(1, index.view(n, -1)).view(n, 4, size, size).unbind(1)
    v1 = (p01 - p00).mul_(dx).add_(p00)
    v2 = (p11 - p10).mul_(dx).add_(p10)
    value = (v2 - v1).mul_(dy).add_(v1).floor_().masked_fill_(~inside, 0.0)
    return value.float(), off_x, off_y


def patch_for(sides: torch.Tensor, rotation_min: float, rotation_max: float) -> int:
    """An even patch side that holds the layer of every side here at any angle in the range."""
    largest = int(sides.max()) if sides.numel() else 1
    return 2 * math.ceil(layer_bound(largest, rotation_min, rotation_max) / 2)
