"""The reference study's renderer, one CAPTCHA at a time with Pillow and NumPy, written from
the description of how it drew its CAPTCHAs (docs/reference.md), not from its code.

It is the tests' oracle of what a CAPTCHA should look like in each layout, and the baseline of
`benchmarks/bench_synthesis.py`:
- `render_reference`: the reference's own layout, step by step: each digit resized to
  int(28 * scale) pixels square and rotated (`expand=True`), both bilinear, as a white RGBA
  layer whose alpha is the digit; laid on a transparent 300 x 100 working canvas, the first
  ink at x = 10, each next ink `gap` blank columns after the last, each layer's top edge (not
  its ink's) at (100 - ink height) // 2, by alpha compositing; the alpha's bounding box cropped
  with `padding` pixels (clamped to the canvas), resized to width x height and pasted onto black.
- `render_touching`: this project's earlier layout, kept as a condition: inks overlapping by
  `overlap` pixels, each ink box centred vertically, pasted with its alpha.
Like the reference, a CAPTCHA is stored as RGB with equal channels and noise is drawn once per
pixel for all three channels (`channels=3`); `channels=1` is a leaner grayscale variant that
the benchmark reports beside it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from captcha_robustness.data.render import FIRST_X, WORK_CANVAS, RenderConfig


def _layer(digit: np.ndarray, scale: float, angle: float, side: int) -> Image.Image:
    """A digit resized to side x side and rotated by `angle` degrees, as an 8-bit image."""
    img = Image.fromarray(digit, mode="L").resize((side, side), Image.BILINEAR)
    return img.rotate(angle, resample=Image.BILINEAR, expand=True)


def _finish(canvas: Image.Image, cfg: RenderConfig, channels: int) -> np.ndarray:
    """Crop the canvas's content with padding (clamped to the canvas), stretch it, as float32."""
    box = canvas.getbbox()
    if box is None:
        return np.zeros((cfg.height, cfg.width, 3) if channels == 3 else (cfg.height, cfg.width), np.float32)
    left, top, right, bottom = box
    pad = cfg.padding
    box = (max(left - pad, 0), max(top - pad, 0), min(right + pad, canvas.width), min(bottom + pad, canvas.height))
    content = canvas.crop(box).resize((cfg.width, cfg.height), Image.BILINEAR)
    if content.mode == "RGBA":  # onto black through its alpha
        black = Image.new("RGB", content.size, (0, 0, 0))
        black.paste(content, (0, 0), content)
        content = black
    else:
        content = content.convert("RGB")
    image = np.asarray(content, dtype=np.float32) / 255.0
    return image if channels == 3 else image[..., 0]


def render_reference(digits: list[np.ndarray], scales: list[float], angles: list[float], gaps: list[int],
                     cfg: RenderConfig = RenderConfig(), channels: int = 1) -> np.ndarray:
    """One clean CAPTCHA in the reference layout from uint8 28x28 digits and their draws (a gap
    before each digit but the first): float32 (height, width[, 3]) in [0, 1]."""
    canvas = Image.new("RGBA", WORK_CANVAS, (0, 0, 0, 0))
    x = FIRST_X
    for i, digit in enumerate(digits):
        alpha = _layer(digit, scales[i], angles[i], int(28 * scales[i]))
        box = alpha.getbbox()
        if box is None:
            continue
        white = Image.new("L", alpha.size, 255)
        layer = Image.merge("RGBA", (white, white, white, alpha))
        if i > 0:
            x += gaps[i - 1]
        layer_top = (WORK_CANVAS[1] - (box[3] - box[1])) // 2
        # The layer's top at layer_top puts its ink box at (x, layer_top + box[1]).
        canvas.alpha_composite(layer.crop(box), dest=(x, layer_top + box[1]))
        x += box[2] - box[0]
    return _finish(canvas, cfg, channels)


def render_touching(digits: list[np.ndarray], scales: list[float], angles: list[float], overlaps: list[int],
                    cfg: RenderConfig = RenderConfig(), channels: int = 1) -> np.ndarray:
    """One clean CAPTCHA in the touching layout: inks overlapping, each ink box centred."""
    canvas = Image.new("L", WORK_CANVAS, 0)
    x = FIRST_X
    for i, digit in enumerate(digits):
        img = _layer(digit, scales[i], angles[i], max(1, int(round(28 * scales[i]))))
        box = img.getbbox()
        if box is None:
            continue
        ink = img.crop(box)
        if i > 0:
            x -= overlaps[i - 1]
        y = (WORK_CANVAS[1] - ink.height) // 2
        canvas.paste(255, (x, y, x + ink.width, y + ink.height), mask=ink)  # white ink, alpha = digit
        x += ink.width
    return _finish(canvas, cfg, channels)


def render_one(digits: list[np.ndarray], rng: np.random.Generator, cfg: RenderConfig = RenderConfig(),
               channels: int = 1, layout: str | None = None) -> np.ndarray:
    """One clean CAPTCHA in `layout` (default: the config's), its draws taken from `rng`."""
    n = len(digits)
    scales = [float(rng.uniform(cfg.scale_min, cfg.scale_max)) for _ in range(n)]
    angles = [float(rng.uniform(cfg.rotation_min, cfg.rotation_max)) for _ in range(n)]
    if (layout or cfg.layout) == "reference":
        gaps = [int(g) for g in rng.integers(cfg.gap_min, cfg.gap_max + 1, n - 1)]
        return render_reference(digits, scales, angles, gaps, cfg, channels)
    overlaps = [int(o) for o in rng.integers(cfg.overlap_min, cfg.overlap_max + 1, n - 1)]
    return render_touching(digits, scales, angles, overlaps, cfg, channels)


def _per_pixel(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A per-pixel (H, W) draw, shaped to apply identically to every channel."""
    return values[..., None] if image.ndim == 3 else values


def gaussian_noise(image: np.ndarray, level: float, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    mask = rng.random(image.shape[:2]) < level
    noise = mask * rng.normal(0.0, sigma, image.shape[:2])
    return np.clip(image + _per_pixel(image, noise), 0.0, 1.0).astype(np.float32)


def salt_and_pepper_noise(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(image.shape[:2]) < level
    values = rng.integers(0, 2, image.shape[:2]).astype(np.float32)
    return np.where(_per_pixel(image, hit), _per_pixel(image, values), image)


NOISE = {"gaussian": gaussian_noise, "salt_and_pepper": salt_and_pepper_noise}


def render_noisy(pool: np.ndarray, labels: np.ndarray, rng: np.random.Generator, noise: str | None,
                 level: float, cfg: RenderConfig = RenderConfig(), channels: int = 3,
                 layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reference's per-sample loop body: pick digits, render, noise; returns the (H, W)
    grayscale image the model reads, and the label."""
    idx = rng.integers(0, len(pool), cfg.num_digits)
    image = render_one([pool[i] for i in idx], rng, cfg, channels, layout)
    if noise is not None:
        image = NOISE[noise](image, level, rng)
    return (image[..., 0] if channels == 3 else image), labels[idx]
