"""The reference study's recipe, one CAPTCHA at a time with PIL and NumPy (REFERENCE.md).

Kept as the baseline of `benchmarks/bench_synthesis.py` and as the tests' oracle of what a
CAPTCHA should look like. Written from the recipe's description, not from its code. Like
the reference, it stores the CAPTCHA as RGB with equal channels and draws the noise once
per pixel for all three channels (`channels=3`); `channels=1` is a leaner grayscale variant
that the benchmark reports beside it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from captcha_robustness.data.render import RenderConfig

WORK_CANVAS = (300, 100)  # width, height of the reference's working canvas
FIRST_X = 10


def render_one(digits: list[np.ndarray], rng: np.random.Generator, cfg: RenderConfig = RenderConfig(),
               channels: int = 1) -> np.ndarray:
    """One clean CAPTCHA from uint8 28x28 digits: float32 (height, width[, 3]) in [0, 1]."""
    canvas = Image.new("L", WORK_CANVAS, 0)
    x = FIRST_X
    for i, digit in enumerate(digits):
        img = Image.fromarray(digit, mode="L")
        side = max(1, int(round(28 * rng.uniform(cfg.scale_min, cfg.scale_max))))
        img = img.resize((side, side), Image.BILINEAR)
        img = img.rotate(rng.uniform(cfg.rotation_min, cfg.rotation_max), resample=Image.BILINEAR, expand=True)
        box = img.getbbox()
        if box is None:
            continue
        ink = img.crop(box)
        if i > 0:
            x -= int(rng.integers(cfg.overlap_min, cfg.overlap_max + 1))
        y = (WORK_CANVAS[1] - ink.height) // 2
        canvas.paste(255, (x, y, x + ink.width, y + ink.height), mask=ink)  # white ink, alpha = digit
        x += ink.width
    left, top, right, bottom = canvas.getbbox()
    pad = cfg.padding
    content = canvas.crop((left - pad, top - pad, right + pad, bottom + pad))
    content = content.resize((cfg.width, cfg.height), Image.BILINEAR)
    if channels == 3:
        content = content.convert("RGB")
    return np.asarray(content, dtype=np.float32) / 255.0


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
                 level: float, cfg: RenderConfig = RenderConfig(), channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The reference's per-sample loop body: pick digits, render, noise; returns the (H, W)
    grayscale image the model reads, and the label."""
    idx = rng.integers(0, len(pool), cfg.num_digits)
    image = render_one([pool[i] for i in idx], rng, cfg, channels)
    if noise is not None:
        image = NOISE[noise](image, level, rng)
    return (image[..., 0] if channels == 3 else image), labels[idx]
