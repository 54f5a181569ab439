"""The reference study's recipe, one CAPTCHA at a time with PIL and NumPy (REFERENCE.md).

Kept as the baseline of `scripts/bench_synthesis.py` and as the tests' oracle of what a
CAPTCHA should look like. Written from the recipe's description, not from its code, and
kept plain: grayscale ('L') images throughout, which is what the reference's RGB with
equal channels amounted to.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from captcha_robustness.data.render import RenderConfig

WORK_CANVAS = (300, 100)  # width, height of the reference's working canvas
FIRST_X = 10


def render_one(digits: list[np.ndarray], rng: np.random.Generator, cfg: RenderConfig = RenderConfig()) -> np.ndarray:
    """One clean CAPTCHA from uint8 28x28 digits: float32 (height, width) in [0, 1]."""
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
    return np.asarray(content, dtype=np.float32) / 255.0


def gaussian_noise(image: np.ndarray, level: float, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    mask = rng.random(image.shape) < level
    return np.clip(image + mask * rng.normal(0.0, sigma, image.shape), 0.0, 1.0).astype(np.float32)


def salt_and_pepper_noise(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    hit = rng.random(image.shape) < level
    out[hit] = rng.integers(0, 2, int(hit.sum())).astype(np.float32)
    return out


NOISE = {"gaussian": gaussian_noise, "salt_and_pepper": salt_and_pepper_noise}


def render_noisy(pool: np.ndarray, labels: np.ndarray, rng: np.random.Generator, noise: str | None,
                 level: float, cfg: RenderConfig = RenderConfig()) -> tuple[np.ndarray, np.ndarray]:
    """The reference's per-sample loop body: pick digits, render, noise. Returns (image, label)."""
    idx = rng.integers(0, len(pool), cfg.num_digits)
    image = render_one([pool[i] for i in idx], rng, cfg)
    if noise is not None:
        image = NOISE[noise](image, level, rng)
    return image, labels[idx]
