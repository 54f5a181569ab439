"""Corruptions beyond the reference study's two noise types, registered as noise types.

Each takes `level` in [0, 1], from clean (0: the image unchanged) to destroyed (1), with the
physical meaning in its docstring, and draws its random parts (a per-pixel field, an angle,
stroke positions) from the CAPTCHA's `NoiseDraw`: the same CAPTCHA gets the same field, angle
or strokes at every level, and a higher level strengthens that same damage. Batched, on the
images' device. Where kornia has the operation (Gaussian and motion blur, JPEG) it does the
work; the elastic warp uses kornia's blur on a coarse field (see `elastic` for why); defocus,
pixelate, fog and the strokes and dots have no batched equivalent there and are written here.

Pixel noise works on (B, pixels) rows like the reference's types; the others (registered
with `spatial=True`) get (B, 1, H, W) images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import gaussian_blur2d
from kornia.filters import motion_blur as kornia_motion_blur

from captcha_robustness.data.noise import NoiseDraw, register_noise


def _rows(level: torch.Tensor) -> torch.Tensor:
    return level.view(-1, 1, 1, 1)


def _clean_at_zero(images: torch.Tensor, corrupted: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """`corrupted` clipped to [0, 1] (in place), with the CAPTCHAs at level 0 exactly as they were."""
    corrupted = corrupted.clamp_(0, 1)
    return corrupted if bool((level > 0).all()) else torch.where(_rows(level) > 0, corrupted, images)


def _by_value(images: torch.Tensor, values: torch.Tensor, fn) -> torch.Tensor:
    """`fn(images[rows], value)` for each distinct value, put back in place: for operations
    whose kernel size must be one number per call."""
    distinct = values.unique().tolist()
    if len(distinct) == 1:
        return fn(images, distinct[0])
    out = images.clone()
    for value in distinct:
        rows = (values == value).nonzero().view(-1)
        out[rows] = fn(images[rows], value)
    return out


# --- pixel noise -------------------------------------------------------------------------

@register_noise("uniform")
def uniform(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Every pixel gets u added, u uniform in [-level, level] gray levels (the uniform noise of
    Geirhos et al., 2018), then the image is clipped."""
    u = draw.uniform16(1).float().mul_(1 / 32768)  # in [-1, 1)
    return images.addcmul_(u, level.view(-1, 1)).clamp_(0, 1)


@register_noise("shot")
def shot(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Photon (shot) noise in its Gaussian approximation: a pixel of gray x gets
    sqrt(x) * level * z added, z ~ N(0, 1), so a white pixel's standard deviation is `level`
    (as if it had caught 1 / level^2 photons) and black stays black."""
    return images.add_(images.sqrt() * draw.normal(1) * level.view(-1, 1)).clamp_(0, 1)


@register_noise("speckle")
def speckle(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Multiplicative noise: x becomes x (1 + level z), z ~ N(0, 1)."""
    return images.add_(images * draw.normal(1) * level.view(-1, 1)).clamp_(0, 1)


# --- blur, pixelation, compression -------------------------------------------------------

@register_noise("gaussian_blur", spatial=True)
def gaussian_blur(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """A Gaussian blur of standard deviation 4 * level pixels."""
    sigma = (4 * level).clamp(min=1e-3)
    size = 2 * math.ceil(3 * float(sigma.max())) + 1
    blurred = gaussian_blur2d(images, (size, size), sigma.view(-1, 1).expand(-1, 2).contiguous())
    return _clean_at_zero(images, blurred, level)


@register_noise("motion_blur", spatial=True)
def motion_blur(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """A straight motion blur over about 24 * level pixels, at an angle drawn per CAPTCHA."""
    size = (2 * (12 * level).round() + 1).long()  # odd kernel sizes, 1 (no blur) to 25
    angle = draw.unit(0, 1)[:, 0] * 180

    def blur(rows: torch.Tensor, k: int) -> torch.Tensor:
        picked = (size == k).nonzero().view(-1)
        return rows if k == 1 else kornia_motion_blur(rows, k, angle[picked], torch.zeros_like(angle[picked]))

    return _clean_at_zero(images, _by_value(images, size, blur), level)


def _disk(radius: float, device: torch.device) -> torch.Tensor:
    """A normalised disk of `radius` pixels with an anti-aliased rim, (1, 1, k, k)."""
    half = math.ceil(radius + 0.5)
    axis = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    distance = (axis.view(-1, 1) ** 2 + axis.view(1, -1) ** 2).sqrt()
    disk = (radius + 0.5 - distance).clamp(0, 1)
    return (disk / disk.sum()).view(1, 1, 2 * half + 1, 2 * half + 1)


@register_noise("defocus", spatial=True)
def defocus(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """An out-of-focus blur: the image averaged over a disk of radius 6 * level pixels."""
    radius = (12 * level).round() / 2  # half-pixel steps

    def blur(rows: torch.Tensor, r: float) -> torch.Tensor:
        kernel = _disk(r, rows.device)
        pad = kernel.shape[-1] // 2
        padded = F.pad(rows, (pad,) * 4, mode="reflect")
        # The batch as the channels of one image, each filtered alone (groups): 10x faster on
        # CPUs than the same kernel over a batch of one-channel images.
        depthwise = F.conv2d(padded.view(1, -1, *padded.shape[-2:]), kernel.expand(len(rows), 1, -1, -1),
                             groups=len(rows))
        return depthwise.view(rows.shape)

    return _clean_at_zero(images, _by_value(images, radius, blur), level)


@register_noise("pixelate", spatial=True)
def pixelate(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Averaged over blocks and shown at full size: the image is shrunk by a factor of
    1 + 7 * level (area average), then enlarged back (nearest neighbour)."""
    factor = (1 + 7 * level).mul(4).round() / 4  # quarter steps
    height, width = images.shape[-2:]

    def blocks(rows: torch.Tensor, f: float) -> torch.Tensor:
        small = F.interpolate(rows, size=(max(1, round(height / f)), max(1, round(width / f))), mode="area")
        return F.interpolate(small, size=(height, width), mode="nearest")

    return _clean_at_zero(images, _by_value(images, factor, blocks), level)


@register_noise("jpeg", spatial=True)
def jpeg(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """JPEG compression at quality 100 - 99 * level (kornia's codec: 8 x 8 DCT blocks with
    the standard quantisation tables scaled by quality)."""
    quality = 100 - 99 * level
    decoded = jpeg_codec_differentiable(images.expand(-1, 3, -1, -1), quality).mean(1, keepdim=True)
    return _clean_at_zero(images, decoded, level)


# --- geometry and photometry -------------------------------------------------------------

@register_noise("contrast", spatial=True)
def contrast(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Contrast reduced towards the CAPTCHA's mean gray: x becomes m + (1 - level) (x - m)."""
    mean = images.mean((1, 2, 3), keepdim=True)
    return _clean_at_zero(images, mean + (1 - _rows(level)) * (images - mean), level)


ELASTIC_RMS = 4.0  # pixels: the root-mean-square displacement at level 1
ELASTIC_CELLS = 4  # the random field is drawn on a grid 4 times coarser than the image


@register_noise("elastic", spatial=True)
def elastic(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """The whole CAPTCHA warped by a smooth random displacement field (Simard et al., 2003):
    uniform noise smoothed by a Gaussian of 8 pixels, scaled so that pixels move by
    4 * level pixels (root mean square) and sampled bilinearly.

    kornia's `elastic_transform2d` does the same at full resolution, where smoothing the
    field with a 49-tap kernel cost three quarters of the time (1,600 CAPTCHAs/s). The
    field is smooth, so it is drawn and smoothed here on a 4 times coarser grid (kornia's
    Gaussian blur) and enlarged bilinearly: 4 times faster."""
    batch, _, height, width = images.shape
    coarse = (math.ceil(height / ELASTIC_CELLS), math.ceil(width / ELASTIC_CELLS))
    noise = draw.unit(50, 2 * coarse[0] * coarse[1]).view(batch, 2, *coarse) * 2 - 1
    field = gaussian_blur2d(noise, (13, 13), (8.0 / ELASTIC_CELLS, 8.0 / ELASTIC_CELLS), border_type="reflect")
    field = F.interpolate(field, size=(height, width), mode="bilinear", align_corners=False)
    rms = field.square().mean((1, 2, 3), keepdim=True).sqrt().clamp(min=1e-6)
    shift = field * (ELASTIC_RMS * _rows(level) / rms)  # pixels, (dx, dy)
    ys, xs = torch.meshgrid(torch.arange(height, device=images.device, dtype=images.dtype),
                            torch.arange(width, device=images.device, dtype=images.dtype), indexing="ij")
    grid = torch.stack([(xs + shift[:, 0]) * (2 / (width - 1)) - 1, (ys + shift[:, 1]) * (2 / (height - 1)) - 1], -1)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return _clean_at_zero(images, warped, level)


@register_noise("fog", spatial=True)
def fog(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """A cloudy background (plasma: five octaves of smoothly enlarged random grids, 2 x 2 to
    32 x 32, each half the weight of the coarser one, scaled to [0, 1] per CAPTCHA) laid over
    the image with opacity `level`: x becomes x + level f (1 - x)."""
    batch, _, height, width = images.shape
    cloud = torch.zeros_like(images)
    for octave in range(5):
        cells = 2 ** (octave + 1)
        grid = draw.unit(10 + octave, cells * cells).view(batch, 1, cells, cells)
        cloud += 0.5**octave * F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=True)
    low, high = cloud.amin((2, 3), keepdim=True), cloud.amax((2, 3), keepdim=True)
    cloud = (cloud - low) / (high - low).clamp(min=1e-6)
    return _clean_at_zero(images, images + _rows(level) * cloud * (1 - images), level)


# --- occlusion and clutter: what CAPTCHA generators draw over the digits ------------------

def _strokes_ink(points: torch.Tensor, height: int, width: int, half_width: float) -> torch.Tensor:
    """(B, L, H, W) ink of the polylines `points` (B, L, N, 2) in pixels (x, y), whose x rises
    along each line: strokes of `half_width` pixels with an anti-aliased edge.

    A pixel's distance to a polyline is its distance to the nearest segment; measuring it
    against the segment spanning the pixel's column and that segment's two neighbours only
    (exact while segments span over 3 columns, as here) is far cheaper than against all."""
    xs = points[..., 0].contiguous()
    columns = torch.arange(width, device=points.device, dtype=torch.float32)
    rows = torch.arange(height, device=points.device, dtype=torch.float32).view(-1, 1)
    spanning = torch.searchsorted(xs, columns.expand(*xs.shape[:2], width).contiguous(), right=True) - 1
    nearest = None
    for step in (-1, 0, 1) if xs.shape[-1] > 2 else (0,):
        segment = (spanning + step).clamp_(0, xs.shape[-1] - 2)
        start = points.gather(2, segment.unsqueeze(-1).expand(-1, -1, -1, 2))  # (B, L, W, 2)
        direction = points.gather(2, (segment + 1).unsqueeze(-1).expand(-1, -1, -1, 2)) - start
        (x0, y0), (dx, dy) = start.unbind(-1), direction.unbind(-1)
        across = (columns - x0).unsqueeze(-2)  # (B, L, 1, W)
        down = rows - y0.unsqueeze(-2)  # (B, L, H, W)
        length2 = (dx * dx + dy * dy).clamp(min=1e-6).unsqueeze(-2)
        t = (across * dx.unsqueeze(-2) + down * dy.unsqueeze(-2)).div_(length2).clamp_(0, 1)
        squared = (across - t * dx.unsqueeze(-2)).square_().add_((down - t * dy.unsqueeze(-2)).square_())
        nearest = squared if nearest is None else torch.minimum(nearest, squared)
    return nearest.sqrt_().neg_().add_(half_width + 0.5).clamp_(0, 1)


def _draw_strokes(images: torch.Tensor, level: torch.Tensor, points: torch.Tensor, half_width: float) -> torch.Tensor:
    """Lay the strokes `points` (B, L, N, 2) over the images, stroke k at full strength once
    level * L >= k + 1 and fading in before: more strokes at higher levels, the same ones."""
    height, width = images.shape[-2:]
    strokes = points.shape[1]
    strength = (level.view(-1, 1) * strokes - torch.arange(strokes, device=images.device)).clamp(0, 1)
    drawn = max(1, math.ceil(float(level.max()) * strokes))  # strokes past it have no strength in this batch
    ink = _strokes_ink(points[:, :drawn], height, width, half_width)
    ink = ink.mul_(strength[:, :drawn, None, None]).amax(1, keepdim=True)
    return _clean_at_zero(images, torch.maximum(images, ink), level)


LINES = 6


@register_noise("lines", spatial=True)
def lines(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Strike-through strokes across the digits, as text CAPTCHAs draw them: up to 6 strokes
    2 pixels wide (level * 6 of them), each from the left fifth to the right fifth of the
    image, straight or bent into an arc (a quadratic curve through a random middle point)."""
    batch, _, height, width = images.shape
    u = draw.unit(20, LINES * 4).view(batch, LINES, 4)
    x0, x1 = u[..., 0] * 0.2 * width, (0.8 + u[..., 1] * 0.2) * width
    y0, y1 = (0.15 + 0.7 * u[..., 2]) * height, (0.15 + 0.7 * u[..., 3]) * height
    bend = (draw.unit(21, LINES) - 0.5) * 0.8 * height  # the arc's sag; near 0: straight
    t = torch.linspace(0, 1, 9, device=images.device).view(1, 1, -1)
    xs = x0[..., None] + (x1 - x0)[..., None] * t
    ys = y0[..., None] + (y1 - y0)[..., None] * t + 4 * bend[..., None] * t * (1 - t)
    return _draw_strokes(images, level, torch.stack([xs, ys], -1), half_width=1.0)


@register_noise("zigzag", spatial=True)
def zigzag(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """MNIST-C's zigzag: up to 3 zigzag lines (level * 3 of them) across the image, 1.5
    pixels wide, each of 12 teeth whose height and vertical place are drawn per line."""
    batch, _, height, width = images.shape
    count, corners = 3, 13
    u = draw.unit(30, count * 2).view(batch, count, 2)
    centre, amplitude = (0.25 + 0.5 * u[..., 0]) * height, (0.05 + 0.15 * u[..., 1]) * height
    k = torch.arange(corners, device=images.device).view(1, 1, -1)
    xs = (k / (corners - 1) * (width - 1)).float().expand(batch, count, -1)
    ys = centre[..., None] + amplitude[..., None] * torch.where(k % 2 == 0, -1.0, 1.0)
    return _draw_strokes(images, level, torch.stack([xs, ys], -1), half_width=0.75)


DOTS = 60


@register_noise("dots", spatial=True)
def dots(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Noise dots: up to 60 white dots of 3 x 3 pixels (level * 60 of them, each fading in),
    anywhere in the image."""
    batch, _, height, width = images.shape
    u = draw.unit(40, DOTS * 2).view(batch, DOTS, 2)
    index = (u[..., 1] * height).long().clamp_(max=height - 1) * width + (u[..., 0] * width).long().clamp_(max=width - 1)
    strength = (level.view(-1, 1) * DOTS - torch.arange(DOTS, device=images.device)).clamp(0, 1)
    canvas = torch.zeros(batch, height * width, device=images.device)
    canvas.scatter_reduce_(1, index, strength, reduce="amax")
    ink = F.max_pool2d(canvas.view(batch, 1, height, width), 3, stride=1, padding=1)
    return _clean_at_zero(images, torch.maximum(images, ink), level)


DOTTED_LINES = 4
DASH = 3  # pixels on, then off


@register_noise("dotted_line", spatial=True)
def dotted_line(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """MNIST-C's dotted line: up to 4 straight dashed lines (level * 4 of them) from the left
    edge to the right one at heights drawn per line, 2 pixels wide, dashes of 3 pixels on and
    3 off."""
    batch, _, height, width = images.shape
    u = draw.unit(60, DOTTED_LINES * 3).view(batch, DOTTED_LINES, 3)
    ys = (0.1 + 0.8 * u[..., :2]) * height
    xs = torch.tensor([0.0, width - 1.0], device=images.device).expand(batch, DOTTED_LINES, 2)
    points = torch.stack([xs, ys], -1)
    phase = (u[..., 2] * 2 * DASH).long()  # where each line's dashes start
    columns = torch.arange(width, device=images.device)
    dashes = ((columns + phase.unsqueeze(-1)) // DASH % 2 == 0).float().unsqueeze(-2)  # (B, L, 1, W)
    strength = (level.view(-1, 1) * DOTTED_LINES - torch.arange(DOTTED_LINES, device=images.device)).clamp(0, 1)
    ink = (_strokes_ink(points, height, width, 1.0) * dashes).mul_(strength[..., None, None]).amax(1, keepdim=True)
    return _clean_at_zero(images, torch.maximum(images, ink), level)


STRIPES = 10


@register_noise("stripe", spatial=True)
def stripe(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """MNIST-C's stripe, in steps: the width cut into 10 vertical stripes, of which level * 10,
    taken in an order drawn per CAPTCHA, are inverted (x becomes 1 - x; the next one fades in).
    Level 0.5 inverts half the image, as MNIST-C's stripe does."""
    batch, _, height, width = images.shape
    rank = draw.unit(61, STRIPES).argsort(1).argsort(1)  # each stripe's place in the order
    strength = (level.view(-1, 1) * STRIPES - rank).clamp(0, 1)  # (B, stripes)
    stripe_of_column = torch.arange(width, device=images.device) * STRIPES // width
    weight = strength[:, stripe_of_column].view(batch, 1, 1, width)
    return _clean_at_zero(images, images + weight * (1 - 2 * images), level)
