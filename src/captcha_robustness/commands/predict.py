"""captcha-predict: read CAPTCHA images (PNG/JPEG, any mode PIL opens, 16-bit included) with
a trained checkpoint, or with an ensemble of them (`'ckpt_path=[a.ckpt,b.ckpt]'`), optionally averaged over shifted
copies of each image (`test_shifts`, as in captcha-eval).

Prints `path,prediction,confidence` per image; `out=FILE.csv` also writes them. An image that
cannot be read is reported on its own line after the others, and the command then exits 2.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError

from captcha_robustness.errors import ConfigError
from captcha_robustness.files import atomic_path
from captcha_robustness.models.module import check_shifts
from captcha_robustness.preflight import find_images
from captcha_robustness.runs import load_ensemble, plain

# Modes whose pixels are wider than 8 bits, and the value that stands for white in each.
WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def grayscale(img: Image.Image, invert: bool, path: Path) -> np.ndarray:
    """The image's gray levels as float32 in [0, 1] (before any inversion). RGBA is composed
    on black (or on white when `invert`, the background of dark-on-light images); 16-bit and
    32-bit images are scaled by their own full range, not clipped to 8 bits."""
    if img.mode in WIDE_MODES:
        pixels = np.asarray(img, dtype=np.float64)
        white = WIDE_MODES[img.mode]
        if img.mode == "I" and pixels.size and 0 <= pixels.min() and pixels.max() <= 255:
            white = 255  # 32-bit integers holding 8-bit levels (e.g. an "L" image converted to "I")
        if pixels.size and (pixels.min() < 0 or pixels.max() > white):
            raise ConfigError(f"images: {path}: {img.mode} pixels outside 0-{white:g} cannot be read as gray levels")
        return (pixels / white).astype(np.float32)
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255) if invert else (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def load_image(path: Path, height: int, width: int, invert: bool) -> torch.Tensor:
    """(1, height, width) float in [0, 1], white digits on black, from an image of any mode
    PIL opens (8-bit, 16-bit or float gray, palette, RGB, RGBA)."""
    try:
        with Image.open(path) as img:
            img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigError(f"images: cannot read {path} as an image ({exc})") from exc
    gray = Image.fromarray(grayscale(img, invert, path)).resize((width, height), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(gray, dtype=np.float32).clip(0, 1))
    return (1.0 - pixels if invert else pixels).unsqueeze(0)


def predict(cfg: DictConfig, unreadable: list[str] | None = None) -> list[tuple[str, str, float]]:
    """(path, prediction, confidence) for every image that could be read. Images that could
    not are left out and their one-line reasons appended to `unreadable`; without that list,
    the first of them is an error."""
    for field in ("ckpt_path", "images"):
        if OmegaConf.is_missing(cfg, field):
            raise ConfigError(f"{field}: required (captcha-predict ckpt_path=PATH images=PATH_OR_GLOB)")
    module = load_ensemble(cfg.ckpt_path)[0].eval()
    height, width = module.hparams.image_size
    module.test_shifts = check_shifts(plain(cfg.test_shifts), height, width)
    paths = find_images(str(cfg.images))
    rows = []
    for start in range(0, len(paths), cfg.batch_size):
        part, images = [], []
        for path in paths[start:start + cfg.batch_size]:
            try:
                images.append(load_image(path, height, width, cfg.invert))
                part.append(path)
            except ConfigError as exc:
                if unreadable is None:
                    raise
                unreadable.append(str(exc))
        if not images:
            continue
        with torch.inference_mode():
            result = module.predict_step(torch.stack(images), 0)
        rows += [(str(p), pred, conf) for p, pred, conf in zip(part, result["prediction"], result["confidence"])]
    return rows


def write_rows(rows: list[tuple[str, str, float]], stream) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["path", "prediction", "confidence"])
    writer.writerows((path, pred, f"{conf:.4f}") for path, pred, conf in rows)


def predict_command(cfg: DictConfig) -> None:
    """Prints (and with `out`, writes) the rows of the images it could read, then one line per
    image it could not, and then exits with status 2 if there were any."""
    unreadable: list[str] = []
    rows = predict(cfg, unreadable)
    write_rows(rows, sys.stdout)
    if cfg.out:
        with atomic_path(Path(cfg.out)) as tmp, open(tmp, "w", newline="") as stream:
            write_rows(rows, stream)
    for line in unreadable:
        print(f"error: {line}", file=sys.stderr)
    if unreadable:
        sys.exit(2)


if __name__ == "__main__":
    from captcha_robustness.commands.entry import predict

    predict()
