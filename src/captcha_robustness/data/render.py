"""Batched CAPTCHA renderer following the reference recipe (docs/reference.md), in two
layouts: `reference` (`_reference_columns`, Pillow's passes reproduced exactly) and
`touching`, described here.

Per digit: scale and rotate about its ink centre (one bilinear sample into a small P x P
patch) and find its ink box; lay the ink boxes left to right with a random overlap, each
centred vertically; paste them onto a canvas in crop coordinates (content plus padding);
stretch the crop to height x width (separable bilinear: columns, then rows). All
randomness comes from `rng` keyed by (key, captcha_id), so a CAPTCHA does not depend on
its batch.

Where the reference differs: it resized and rotated in two uint8 PIL passes and pasted
digits with alpha; here one float pass samples scale+rotation, and strokes that cross in
the overlaps merge by max (order-independent, hence deterministic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from captcha_robustness.data import pil_geometry, rng
from captcha_robustness.data.settings import LAYOUT_NAMES, Augment, RenderConfig  # noqa: F401 - re-exported

DIGIT_SIZE = 28
# PIL works in uint8: a pixel is ink when it would round to at least 1/255.
INK_THRESHOLD = 0.5 / 255
REFERENCE = LAYOUT_NAMES.index("reference")
# The reference layout's working canvas (width, height) and where the first digit's ink starts.
WORK_CANVAS = (300, 100)
FIRST_X = 10


@dataclass(frozen=True)
class DigitPool:
    """Digits ready to render: uint8 images (N, 28, 28), int64 labels (N,), and each digit's
    ink-box centre (N, 2) as (x, y) in pixels, about which it is scaled and rotated."""

    images: torch.Tensor
    labels: torch.Tensor
    ink_center: torch.Tensor

    @staticmethod
    def from_tensors(images: torch.Tensor, labels: torch.Tensor) -> DigitPool:
        images = images.reshape(-1, DIGIT_SIZE, DIGIT_SIZE).to(torch.uint8)
        left, right, top, bottom = _ink_boxes(images)
        center = torch.stack([(left + right) / 2, (top + bottom) / 2], 1)
        return DigitPool(images, labels.reshape(-1).long(), center)

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> DigitPool:
        return DigitPool(self.images.to(device), self.labels.to(device), self.ink_center.to(device))


def _ink_boxes(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Float (left, right, top, bottom) pixel edges of each uint8 digit's ink; a blank digit gets its centre."""
    ink = images > 0
    rows, cols = ink.any(2), ink.any(1)
    idx = torch.arange(DIGIT_SIZE, device=images.device)

    def first_last(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = torch.where(mask, idx, DIGIT_SIZE).amin(1)
        last = torch.where(mask, idx + 1, 0).amax(1)
        blank = ~mask.any(1)
        return first.masked_fill(blank, DIGIT_SIZE // 2).float(), last.masked_fill(blank, DIGIT_SIZE // 2).float()

    left, right = first_last(cols)
    top, bottom = first_last(rows)
    return left, right, top, bottom


def _ink_offsets(images: torch.Tensor) -> torch.Tensor:
    """(K, 2) float: the distinct (x, y) offsets of ink-pixel centres from their digit's ink
    centre, over all `images` (uint8, (N, 28, 28)). Digits that share an ink centre (a
    multiple of half a pixel) share offsets, so their ink masks are merged first."""
    left, right, top, bottom = _ink_boxes(images)
    centres, group = torch.unique(torch.stack([left + right, top + bottom], 1), dim=0, return_inverse=True)
    ink = (images > 0).reshape(len(images), -1).float()
    merged = torch.zeros(len(centres), ink.shape[1]).index_add_(0, group, ink).view(-1, DIGIT_SIZE, DIGIT_SIZE)
    which, y, x = (merged > 0).nonzero(as_tuple=True)
    offsets = torch.stack([x, y], 1).float().add_(0.5) - centres[which] / 2
    return torch.unique(offsets, dim=0)


def patch_size(digits: torch.Tensor, cfg: RenderConfig, augment: Augment = Augment()) -> int:
    """Side of the (even) square patch that holds every nonzero pixel of any of `digits` after
    any allowed scale, rotation, elastic displacement, stroke change and restyling about its
    ink centre.
    It depends only on the digit source and the configs, so every sample position does too.

    A patch pixel at offset z from the patch centre samples the source at c + S^-1 R z / scale
    (plus the elastic field f, |f| <= alpha per axis), S being the digit's restyling (slant
    and width; the identity without them). Bilinear sampling is nonzero only within `reach`
    = 1 pixel (per axis) of an ink-pixel centre q (2 with a stroke augment, whose dilation
    spreads ink by one), so a nonzero z lies within scale * R^-1 S (q - c + d) for some d in
    (-(reach + alpha), reach + alpha)^2; its largest |x| or |y| is `bound` below. |S (q - c)|
    per axis is convex in S's shear and width, so it peaks at their extremes, and S d stays
    within (width + |shear|) (reach + alpha) per axis. Pixel centres sit at half-integers, and
    the patch must hold each one below `bound`. A larger patch only adds black pixels around
    the same samples, so the rendered CAPTCHAs do not depend on it."""
    offsets = _ink_offsets(digits.reshape(-1, DIGIT_SIZE, DIGIT_SIZE).cpu())
    if len(offsets) == 0:
        return 2
    angles = torch.linspace(math.radians(cfg.rotation_min), math.radians(cfg.rotation_max), 721, dtype=torch.float64)
    cos, sin = angles.cos(), angles.sin()
    x, y = offsets[:, :1].double(), offsets[:, 1:].double()
    widest = 1 + augment.aspect
    if augment.restyles:  # S (q - c) at each extreme of width and shear
        extremes = [(w, k) for w in (1 - augment.aspect, widest) for k in (-augment.slant, augment.slant)]
        x, y = torch.cat([w * x + k * y for w, k in extremes]), y.repeat(len(extremes), 1)
    rotated = torch.maximum((x * cos + y * sin).abs(), (y * cos - x * sin).abs())  # R^-1 S (q - c), either axis
    reach = 2 if augment.stroke > 0 else 1
    spill = (reach + augment.elastic_alpha) * (widest + augment.slant) * (cos.abs() + sin.abs())
    # Between sampled angles a coordinate can exceed its sampled maximum by at most
    # radius * (1 - cos(step / 2)) < 1e-4 pixels here; 1e-3 covers it.
    bound = ((rotated + spill).max().item() + 1e-3) * cfg.scale_max
    return max(2, 2 * math.ceil(bound - 0.5))


@dataclass(frozen=True)
class CaptchaParams:
    """The random choices behind a batch of CAPTCHAs, all (B, num_digits) except overlap
    (B, num_digits - 1), the elastic control-point offsets, in source pixels,
    (B, num_digits, 2, cells, cells) or None, the stroke weights (B, num_digits) or None, the
    crop's padding per side, int64 (B, 4) as left, right, top, bottom, or None (the config's
    padding on every side), each digit's restyling (B, num_digits, 2) as (shear, width
    factor), or None, and each digit's erased square, int64 (B, num_digits, 4) as its first
    and one-past-last column, then row, in the 28 x 28 source, or None; `baseline`, int64
    (B, num_digits) or None, moves each digit down (or up, when negative) by that many pixels
    of the working canvas (a layout corruption); `layout`, int64 (B,) or None (data.render's),
    indexes LAYOUT_NAMES. In the reference layout `overlap` is minus the gap between digits."""

    digit_index: torch.Tensor
    scale: torch.Tensor
    angle_deg: torch.Tensor
    overlap: torch.Tensor
    displacement: torch.Tensor | None = None
    stroke: torch.Tensor | None = None
    padding: torch.Tensor | None = None
    style: torch.Tensor | None = None
    erase: torch.Tensor | None = None
    baseline: torch.Tensor | None = None
    layout: torch.Tensor | None = None

    def __getitem__(self, rows: slice | torch.Tensor) -> CaptchaParams:
        def part(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[rows]

        return CaptchaParams(self.digit_index[rows], self.scale[rows], self.angle_deg[rows], self.overlap[rows],
                             part(self.displacement), part(self.stroke), part(self.padding), part(self.style),
                             part(self.erase), part(self.baseline), part(self.layout))

    def max_padding(self, cfg: RenderConfig) -> int:
        """The largest padding of any side of any CAPTCHA here, which sizes the canvas."""
        return cfg.padding if self.padding is None or not len(self.padding) else int(self.padding.max())

    def max_shift(self) -> int:
        """The largest vertical move of any digit here (`baseline`), which also sizes the canvas."""
        return 0 if self.baseline is None or not self.baseline.numel() else int(self.baseline.abs().max())

    def layouts(self, cfg: RenderConfig) -> torch.Tensor:
        """Each CAPTCHA's layout, (B,) int64 indexes into LAYOUT_NAMES."""
        if self.layout is not None:
            return self.layout
        return torch.full(self.scale.shape[:1], LAYOUT_NAMES.index(cfg.layout), device=self.scale.device)

    def widest_gap(self, cfg: RenderConfig) -> int:
        """The largest |overlap| here or in the recipe: the canvas is wide enough for it."""
        drawn = int(self.overlap.abs().max()) if self.overlap.numel() else 0
        return max(cfg.overlap_max, drawn)


def sample_params(keys: torch.Tensor, pool_size: int, cfg: RenderConfig, augment: Augment = Augment()) -> CaptchaParams:
    """Draw each CAPTCHA's digits and geometry from its own key. The augments' draws come from
    words after those (elastic offsets, then stroke weights, paddings, restyling, erasures),
    so an augmented CAPTCHA has the same digits, scales, angles and overlaps. A CAPTCHA's layout
    (among `augment.layouts`, when there are several) comes from the last word; its spacing
    draw is a gap in the reference layout and an overlap in the touching one."""
    n = cfg.num_digits
    cells = augment.elastic_cells
    elastic = 2 * n * cells * cells if augment.elastic_alpha > 0 else 0
    strokes = n if augment.stroke > 0 else 0
    jitter = augment.padding_jitter
    sides = 4 if jitter else 0
    styles = 2 * n if augment.restyles else 0
    erasures = 2 * n if augment.erase else 0
    choices = augment.layouts or (cfg.layout,)
    words = rng.random_words(keys, 4 * n + elastic + strokes + sides + styles + erasures + (len(choices) > 1))
    unit = rng.words_to_unit(words[:, n:]).float()
    digit_index = ((words[:, :n] >> 1) & ((1 << 62) - 1)) % pool_size
    scale = cfg.scale_min + unit[:, :n] * (cfg.scale_max - cfg.scale_min)
    angle = cfg.rotation_min + unit[:, n:2 * n] * (cfg.rotation_max - cfg.rotation_min)

    def integers(u: torch.Tensor, low: int, high: int) -> torch.Tensor:
        return low + (u * (high - low + 1)).long().clamp_(max=high - low)

    spacing = unit[:, 2 * n:3 * n - 1]
    codes = torch.tensor([LAYOUT_NAMES.index(name) for name in choices], device=keys.device)
    if len(choices) > 1:
        layout = codes[(unit[:, -1] * len(choices)).long().clamp_(max=len(choices) - 1)]
    else:
        layout = codes.expand(len(keys))
    overlap = integers(spacing, cfg.overlap_min, cfg.overlap_max)
    if REFERENCE in codes:
        gap = integers(spacing, cfg.gap_min, cfg.gap_max)
        overlap = torch.where((layout == REFERENCE).view(-1, 1), -gap, overlap)
    displacement = stroke = padding = style = erase = None
    if elastic:
        offsets = unit[:, 3 * n:3 * n + elastic] * 2 - 1
        displacement = offsets.mul_(augment.elastic_alpha).view(-1, n, 2, cells, cells)
    if strokes:
        stroke = (unit[:, 3 * n + elastic:3 * n + elastic + strokes] * 2 - 1).mul_(augment.stroke)
    if jitter:
        first = 3 * n + elastic + strokes
        steps = (unit[:, first:first + sides] * (2 * jitter + 1)).long().clamp_(max=2 * jitter)
        padding = steps.add_(cfg.padding - jitter).clamp_(min=0)
    if styles:
        first = 3 * n + elastic + strokes + sides
        signed = (unit[:, first:first + styles] * 2 - 1).view(-1, n, 2)
        style = torch.stack([signed[..., 0] * augment.slant, signed[..., 1] * augment.aspect + 1], -1)
    if erasures:  # each square's centre pixel (x, y), uniform over the digit image
        first = 3 * n + elastic + strokes + sides + styles
        centre = (unit[:, first:first + erasures] * DIGIT_SIZE).long().clamp_(max=DIGIT_SIZE - 1).view(-1, n, 2)
        start = centre - augment.erase // 2
        erase = torch.stack([start[..., 0], start[..., 0] + augment.erase,
                             start[..., 1], start[..., 1] + augment.erase], -1)
    return CaptchaParams(digit_index, scale, angle, overlap, displacement, stroke, padding, style, erase,
                         layout=layout)


def _erase_squares(digits: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) digits with each one's square (N, 4: first and one-past-last column,
    then row) set to 0, in place."""
    idx = torch.arange(DIGIT_SIZE, device=digits.device)
    x0, x1, y0, y1 = (b.view(-1, 1) for b in bounds.unbind(-1))
    cols = (idx >= x0) & (idx < x1)
    rows = (idx >= y0) & (idx < y1)
    return digits.masked_fill_((rows.unsqueeze(2) & cols.unsqueeze(1)).unsqueeze(1), 0.0)


def _restroke(digits: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) digits with thicker (weight > 0) or thinner (weight < 0) strokes: each
    blended with its 3x3 dilation or erosion by |weight| (N,)."""
    dilated = F.max_pool2d(digits, 3, 1, 1)
    eroded = F.max_pool2d(digits.neg(), 3, 1, 1).neg_()
    weight = weight.view(-1, 1, 1, 1)
    return torch.lerp(digits, torch.where(weight > 0, dilated, eroded), weight.abs())


def _digit_patches(digits: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, angle_deg: torch.Tensor,
                   size: int, displacement: torch.Tensor | None = None,
                   style: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 1, P, P): each 28x28 digit scaled and rotated about its ink centre, by one bilinear
    sample; with `displacement` (N, 2, cells, cells), in source pixels, also warped elastically;
    with `style` (N, 2) as (shear k, width factor w), slanted and resized first: the digit's
    point (x, y) about its ink centre moves to (w x + k y, y)."""
    # A rotation with a uniform scale is a multiplication by one complex number, so the
    # sampling grid, patch pixel offsets z -> source points c + w z, is a single complex
    # multiply-add, already in the interleaved (N, P, P, 2) layout that grid_sample reads.
    w = torch.polar(1.0 / (scale * (DIGIT_SIZE / 2)), torch.deg2rad(angle_deg))  # output pixels -> [-1, 1] units
    c = center * (2.0 / DIGIT_SIZE) - 1
    c = torch.complex(c[:, 0], c[:, 1])
    z = _patch_offsets(size, digits.device)
    c = c.view(-1, 1, 1)
    if displacement is not None:  # a smooth offset field d(z), added to the source points
        basis = _spline_basis(size, displacement.shape[-1], digits.device)
        field = basis @ displacement @ basis.T
        c = torch.complex(field[:, 0], field[:, 1]).mul_(2.0 / DIGIT_SIZE).add_(c)  # pixels -> [-1, 1] units
    if style is None:
        grid = torch.view_as_real(torch.addcmul(c, w.view(-1, 1, 1), z))
    else:  # undo the restyling of the rotated, scaled offsets: x = (x' - k y') / w
        t = w.view(-1, 1, 1) * z
        shear, width = style[:, 0].view(-1, 1, 1), style[:, 1].view(-1, 1, 1)
        grid = torch.view_as_real(torch.complex((t.real - shear * t.imag) / width, t.imag) + c)
    return F.grid_sample(digits, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# The constant index and offset tensors below are built once per size and device; callers
# must not modify them in place.
@lru_cache(maxsize=16)
def _patch_offsets(size: int, device: torch.device) -> torch.Tensor:
    """(P, P) complex: each patch pixel centre's offset x + iy from the patch centre."""
    offsets = torch.arange(size, device=device, dtype=torch.float32) + (0.5 - size / 2)
    return torch.complex(offsets.view(1, size), offsets.view(size, 1))


@lru_cache(maxsize=16)
def _spline_basis(size: int, cells: int, device: torch.device) -> torch.Tensor:
    """(P, cells) float32: uniform cubic B-spline weights of the control points at each patch
    row (or column), the control points spread evenly across the patch. The weights are
    non-negative and sum to 1, so the field never exceeds its largest control offset."""
    t = (torch.arange(size, dtype=torch.float64) + 0.5) * ((cells - 1) / size)
    i = t.floor()
    u = (t - i).unsqueeze(1)
    weights = torch.cat([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4, -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3], 1) / 6
    index = (i.long().unsqueeze(1) + torch.arange(-1, 3)).clamp_(0, cells - 1)
    basis = torch.zeros(size, cells, dtype=torch.float64).scatter_add_(1, index, weights)
    return basis.float().to(device)


@lru_cache(maxsize=16)
def _patch_pixel_index(size: int, column_height: int, device: torch.device) -> torch.Tensor:
    """(P, P) int64: where each patch pixel (y, x) lands in column-major storage of that column height."""
    within = torch.arange(size, device=device)
    return within.view(size, 1) + within.view(1, size) * column_height


@lru_cache(maxsize=16)
def _output_centres(size: int, device: torch.device) -> torch.Tensor:
    """(size,) float32: output pixel centres 0.5, 1.5, ..."""
    return torch.arange(size, device=device, dtype=torch.float32) + 0.5


def _canvas_height(patch: int, padding: int, shift: int = 0) -> int:
    """Rows of the compositing canvas: a crop is at most patch + 2 * (padding + shift) tall
    (`shift`: the largest baseline move), and the vertical stretch reads one row below it,
    which must be black (padding, or a spare row)."""
    return patch + 2 * (padding + shift) + (padding == 0)


def _ink_extent(profile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last index where a (N, P) max-profile shows ink; an empty digit gets (P//2, P//2)."""
    ink = profile > INK_THRESHOLD
    size = ink.shape[-1]
    first = ink.byte().argmax(-1)
    last = size - ink.flip(-1).byte().argmax(-1)
    empty = ~ink.any(-1)
    first = first.masked_fill(empty, size // 2)
    last = last.masked_fill(empty, size // 2)
    return first, last


def render(pool: DigitPool, params: CaptchaParams, cfg: RenderConfig, patch: int, chunk: int = 256) -> torch.Tensor:
    """Render clean CAPTCHAs: float32 (B, 1, height, width) in [0, 1], white digits on black,
    each in its layout (`params.layouts`).

    `params.digit_index` points into `pool`; `patch` comes from `patch_size` (the reference
    layout sizes its own). On a CPU all but the last step run `chunk` CAPTCHAs at a time, which
    bounds their temporaries (a few tens of MiB per 256 CAPTCHAs) while keeping each op large
    enough that its fixed cost is small; the last step (the vertical stretch) then writes the
    whole batch at once, so the result is never copied.
    """
    reference = params.layouts(cfg) == REFERENCE
    if bool(reference.all()):
        return _render(pool, params, cfg, patch, chunk, reference=True)
    if not bool(reference.any()):
        return _render(pool, params, cfg, patch, chunk, reference=False)
    images = torch.empty(len(reference), 1, cfg.height, cfg.width, device=pool.images.device)
    for rows, is_reference in ((reference.nonzero().view(-1), True), ((~reference).nonzero().view(-1), False)):
        images[rows] = _render(pool, params[rows], cfg, patch, chunk, is_reference)
    return images


def _render(pool: DigitPool, params: CaptchaParams, cfg: RenderConfig, patch: int, chunk: int,
            reference: bool) -> torch.Tensor:
    """`render` of CAPTCHAs all in one layout."""
    b = params.digit_index.shape[0]
    device = pool.images.device
    max_pad = params.max_padding(cfg)
    if reference:
        sides = digit_sides(params.scale)
        patch = pil_geometry.patch_for(sides, cfg.rotation_min, cfg.rotation_max)
        # Each digit's ink sits up to a patch below the centre line, and as far up as half its height.
        canvas_h = _canvas_height(patch, max_pad, params.max_shift() + math.ceil(patch / 4))
    else:
        canvas_h = _canvas_height(patch, max_pad, params.max_shift())
    step = max(b, 1) if device.type != "cpu" else chunk
    columns = torch.empty(b, canvas_h, cfg.width, device=device)
    crop_h = torch.empty(b, 1, dtype=torch.int64, device=device)
    for start in range(0, b, step):
        part = slice(start, start + step)
        if reference:
            crop_h[part] = _reference_columns(pool, params[part], sides[part], cfg, patch, canvas_h, out=columns[part])
        else:
            crop_h[part] = _stretch_columns(pool, params[part], cfg, patch, max_pad, out=columns[part])
    images = _resize_rows(columns.view(b * canvas_h, cfg.width), crop_h, canvas_h, cfg.height, like_pil=reference)
    return images.view(b, 1, cfg.height, cfg.width)


def digit_sides(scale: torch.Tensor) -> torch.Tensor:
    """The reference layout's digit sizes: int(28 * scale) pixels square, as it resized them."""
    return (scale.double() * DIGIT_SIZE).floor().long().clamp_(min=1)


def _stretch_columns(pool: DigitPool, params: CaptchaParams, cfg: RenderConfig, patch: int, max_pad: int,
                     out: torch.Tensor) -> torch.Tensor:
    """Lay out and composite each CAPTCHA's digits, then stretch its crop to the output width:
    writes `out` (B, canvas height, width) and returns the crop heights (B, 1) that the
    vertical stretch needs."""
    b, n = params.digit_index.shape
    device = pool.images.device
    flat_index = params.digit_index.reshape(-1)
    digits = pool.images.index_select(0, flat_index).unsqueeze(1).float().div_(255.0)
    if params.erase is not None:
        digits = _erase_squares(digits, params.erase.flatten(0, 1))
    if params.stroke is not None:
        digits = _restroke(digits, params.stroke.reshape(-1))
    displacement = None if params.displacement is None else params.displacement.flatten(0, 1)
    style = None if params.style is None else params.style.flatten(0, 1)
    patches = _digit_patches(digits, pool.ink_center[flat_index], params.scale.reshape(-1),
                             params.angle_deg.reshape(-1), patch, displacement, style)
    # Like the reference, paste only each digit's ink box. Every pixel outside it is below the
    # ink threshold, so zeroing the sub-threshold pixels does that in one pass.
    patches = F.threshold(patches.view(b * n, patch, patch), INK_THRESHOLD, 0.0, inplace=True)

    # Column and row profiles in one pass: left, top = first; right, bottom = last.
    first, last = _ink_extent(torch.cat([patches.amax(dim=1), patches.amax(dim=2)]))
    left, top = first.view(2, b, n)
    right, bottom = last.view(2, b, n)
    width, height = right - left, bottom - top

    # Ink boxes laid left to right, each next one starting `overlap` px before the last ends;
    # vertically each ink box is centred on y = 0 as PIL's (H - h) // 2 would place it.
    advance = width[:, :-1] - params.overlap
    ink_x = torch.cat([torch.zeros_like(width[:, :1]), advance.cumsum(1)], 1)
    ink_y = -torch.div(height + 1, 2, rounding_mode="floor")
    if params.baseline is not None:
        ink_y = ink_y + params.baseline
    pad_left, pad_right, pad_top, pad_bottom = _paddings(params, cfg)
    crop_x0 = ink_x.amin(1, keepdim=True) - pad_left
    crop_y0 = ink_y.amin(1, keepdim=True) - pad_top
    crop_w = (ink_x + width).amax(1, keepdim=True) + pad_right - crop_x0
    crop_h = (ink_y + height).amax(1, keepdim=True) + pad_bottom - crop_y0

    # A fixed-size canvas in crop coordinates (its size depends only on the config, the patch
    # size and the batch's largest padding, never on the digits; a larger one leaves the result
    # unchanged) holds every ink pixel. It is stored column-major, (canvas_w, canvas_h), so
    # that both resizing steps gather whole rows. Patch pixels outside the ink boxes are zero
    # and may land anywhere around the canvas, harmlessly under max-compositing: a margin of
    # one patch (whole columns) on either side keeps them in the CAPTCHA's own buffer row. One
    # row per CAPTCHA lets the scatter run on every core.
    canvas_h = _canvas_height(patch, max_pad, params.max_shift())
    canvas_w = n * patch + (n - 1) * params.widest_gap(cfg) + 2 * max_pad
    margin_cols = math.ceil((patch + 1) * (canvas_h + 1) / canvas_h)
    row_cols = canvas_w + 2 * margin_cols
    origin_x = ink_x - left - crop_x0 + margin_cols  # buffer column of each patch's left edge
    origin_y = ink_y - top - crop_y0
    index = (origin_x * canvas_h + origin_y).view(b, n, 1, 1) + _patch_pixel_index(patch, canvas_h, device)
    buffer = torch.zeros(b, row_cols * canvas_h, device=device)
    buffer.scatter_reduce_(1, index.view(b, -1), patches.view(b, -1), reduce="amax")
    canvas = buffer.view(b * row_cols, canvas_h)

    # Stretch each crop to height x width: bilinear, separable (columns here, then rows in
    # `render`), with PIL's pixel-centre convention. Canvas pixels beyond the crop are black,
    # like its padding.
    columns = _resize_rows(canvas, crop_w, row_cols, cfg.width, first=margin_cols)  # (B * width, canvas_h)
    out.copy_(columns.view(b, cfg.width, canvas_h).transpose(1, 2))  # rows of the crop, each `width` long
    return crop_h


def _reference_columns(pool: DigitPool, params: CaptchaParams, sides: torch.Tensor, cfg: RenderConfig, patch: int,
                       canvas_h: int, out: torch.Tensor) -> torch.Tensor:
    """`_stretch_columns` in the reference layout, as the reference drew it with Pillow: each
    digit resized to sides x sides and rotated into its layer, in two 8-bit passes; the ink
    boxes laid left to right with a gap (minus `params.overlap`) between them; each layer's top
    (not its ink's) at (100 - ink height) // 2 of the 300 x 100 working canvas, whose edges
    clip the ink and the crop; digits alpha-composited; the crop stretched with Pillow's filter,
    rounded to 8 bits."""
    b, n = params.digit_index.shape
    device = pool.images.device
    flat_index = params.digit_index.reshape(-1)
    digits = _augmented_sources(pool.images.index_select(0, flat_index), params)
    resized = pil_geometry.resize_squares(digits, sides.reshape(-1))
    layers, _, layer_top = pil_geometry.rotate_into(resized, sides.reshape(-1), params.angle_deg.reshape(-1), patch)
    patches = layers.div_(255.0)

    first, last = _ink_extent(torch.cat([patches.amax(dim=1), patches.amax(dim=2)]))
    left, top = first.view(2, b, n)
    right, bottom = last.view(2, b, n)
    width, height = right - left, bottom - top
    work_w, work_h = WORK_CANVAS
    advance = width[:, :-1] - params.overlap
    ink_x = torch.cat([torch.zeros_like(width[:, :1]), advance.cumsum(1)], 1)  # relative to x = FIRST_X
    ink_y = torch.div(work_h - height, 2, rounding_mode="floor") + top - layer_top.view(b, n) - work_h // 2
    if params.baseline is not None:
        ink_y = ink_y + params.baseline
    # Working-canvas coordinates relative to the first ink (x) and the centre line (y).
    x_range, y_range = (-FIRST_X, work_w - FIRST_X), (-(work_h // 2), work_h - work_h // 2)
    within = torch.arange(patch, device=device)
    cols_in = _between(ink_x - left, within, x_range)
    rows_in = _between(ink_y - top, within, y_range)
    patches = patches.view(b, n, patch, patch).mul_((rows_in.unsqueeze(-1) & cols_in.unsqueeze(-2)).float())

    pad_left, pad_right, pad_top, pad_bottom = _paddings(params, cfg)
    crop_x0 = (ink_x.amin(1, keepdim=True) - pad_left).clamp_(min=x_range[0])
    crop_y0 = (ink_y.amin(1, keepdim=True) - pad_top).clamp_(min=y_range[0])
    crop_w = (ink_x + width).amax(1, keepdim=True).add_(pad_right).clamp_(max=x_range[1]) - crop_x0
    crop_h = (ink_y + height).amax(1, keepdim=True).add_(pad_bottom).clamp_(max=y_range[1]) - crop_y0

    canvas_w = n * patch + (n - 1) * params.widest_gap(cfg) + 2 * params.max_padding(cfg)
    margin_cols = math.ceil((patch + 1) * (canvas_h + 1) / canvas_h)
    row_cols = canvas_w + 2 * margin_cols
    origin_x = ink_x - left - crop_x0 + margin_cols
    origin_y = ink_y - top - crop_y0
    index = (origin_x * canvas_h + origin_y).view(b, n, 1, 1) + _patch_pixel_index(patch, canvas_h, device)
    # Alpha compositing: the canvas keeps 1 - prod(1 - alpha), rounded to 8 bits as Pillow's is.
    clear = torch.ones(b, row_cols * canvas_h, device=device)
    clear.scatter_reduce_(1, index.view(b, -1), patches.view(b, -1).neg_().add_(1.0), reduce="prod")
    canvas = clear.mul_(-255.0).add_(255.0).round_().div_(255.0).view(b * row_cols, canvas_h)

    columns = _resize_rows(canvas, crop_w, row_cols, cfg.width, first=margin_cols, like_pil=True)
    out.copy_(columns.view(b, cfg.width, canvas_h).transpose(1, 2))
    return crop_h


def _between(start: torch.Tensor, within: torch.Tensor, bounds: tuple[int, int]) -> torch.Tensor:
    """(B, n, P) bool: whether pixel `within` of each patch, whose pixel 0 lands at `start`
    (B, n), falls inside [low, high) of the working canvas."""
    where = start.unsqueeze(-1) + within
    return (where >= bounds[0]) & (where < bounds[1])


def _paddings(params: CaptchaParams, cfg: RenderConfig) -> tuple[torch.Tensor | int, ...]:
    """The crop's padding (left, right, top, bottom): (B, 1) each, or the config's."""
    if params.padding is None:
        return (cfg.padding,) * 4
    return tuple(params.padding.split(1, dim=1))


def _augmented_sources(images: torch.Tensor, params: CaptchaParams) -> torch.Tensor:
    """(N, 28, 28) float64 8-bit values: the pool's digits with the training augments that act
    on the source digit (erasure, stroke, slant and width, elastic warp about the image centre)
    applied and rounded back to 8 bits, as if each augmented digit were an image of its own."""
    if params.erase is None and params.stroke is None and params.style is None and params.displacement is None:
        return images.double()
    digits = images.unsqueeze(1).float().div_(255.0)
    if params.erase is not None:
        digits = _erase_squares(digits, params.erase.flatten(0, 1))
    if params.stroke is not None:
        digits = _restroke(digits, params.stroke.reshape(-1))
    if params.style is not None or params.displacement is not None:
        count = digits.shape[0]
        centre = torch.full((count, 2), DIGIT_SIZE / 2, device=digits.device)
        ones = torch.ones(count, device=digits.device)
        displacement = None if params.displacement is None else params.displacement.flatten(0, 1)
        style = None if params.style is None else params.style.flatten(0, 1)
        digits = _digit_patches(digits, centre, ones, ones * 0, DIGIT_SIZE, displacement, style)
    return digits.squeeze(1).mul_(255.0).round_().clamp_(0, 255).double()


def _resize_rows(rows: torch.Tensor, size_in: torch.Tensor, stride: int, size_out: int, first: int = 0,
                 like_pil: bool = False) -> torch.Tensor:
    """Linear resizing along the first axis: `rows` holds B blocks of `stride` rows, of which
    `size_in` (B, 1) rows from the block's row `first` are item b's; returns B blocks of
    `size_out` rows. `like_pil`: Pillow's bilinear filter (wider when shrinking, reading only
    the item's rows) and its 8-bit rounding.

    Each output row is a weighted sum of input rows, which `embedding_bag` gathers and blends
    in one pass (several times faster on a CPU than gathering both, then blending).
    `rows` must be contiguous: a strided one takes another path that rounds differently."""
    base = torch.arange(size_in.shape[0], device=rows.device).view(-1, 1) * stride + first
    if like_pil:
        index, weight = _pil_taps(size_in, size_out)
        out = F.embedding_bag(index.add_(base.unsqueeze(-1)).flatten(0, 1), rows,
                              per_sample_weights=weight.flatten(0, 1), mode="sum")
        return out.mul_(255.0).round_().clamp_(0, 255).div_(255.0)
    pos = _output_centres(size_out, rows.device) * (size_in.float() / size_out) - 0.5
    low = pos.floor()
    frac = pos - low
    low = low.long()
    last = stride - 1 - first
    index = torch.stack([low.clamp(0, last), (low + 1).clamp_(0, last)], -1).add_(base.unsqueeze(-1))
    weight = torch.stack([1 - frac, frac], -1)
    return F.embedding_bag(index.view(-1, 2), rows, per_sample_weights=weight.view(-1, 2), mode="sum")


def _pil_taps(size_in: torch.Tensor, size_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pillow's bilinear filter from `size_in` (B, 1) to `size_out` rows: the rows each output
    row reads, (B, size_out, K) int64 within [0, size_in), and their normalised weights."""
    scale = size_in.double() / size_out
    support = scale.clamp(min=1.0)
    centre = (torch.arange(size_out, device=size_in.device, dtype=torch.float64) + 0.5) * scale  # (B, out)
    start = (centre - support + 0.5).floor().clamp_(min=0)
    stop = torch.minimum((centre + support + 0.5).floor(), size_in.double())
    taps = math.ceil(2 * float(support.max())) + 1 if size_in.numel() else 2
    index = start.unsqueeze(-1) + torch.arange(taps, device=size_in.device, dtype=torch.float64)
    weight = (1 - ((index - centre.unsqueeze(-1) + 0.5) / support.unsqueeze(-1)).abs()).clamp_(min=0)
    weight = weight.masked_fill_(index >= stop.unsqueeze(-1), 0.0)
    weight = weight / weight.sum(-1, keepdim=True).clamp_(min=1e-12)
    last = (size_in - 1).clamp(min=0).unsqueeze(-1)
    return torch.minimum(index.long(), last), weight.float()
