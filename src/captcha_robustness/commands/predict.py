"""captcha-predict: read CAPTCHA images (PNG/JPEG, any mode) with a trained checkpoint, or
with an ensemble of them (`'ckpt_path=[a.ckpt,b.ckpt]'`), optionally averaged over shifted
copies of each image (`test_shifts`, as in captcha-eval).

Prints `path,prediction,confidence` per image; `out=FILE.csv` also writes them.
"""

from __future__ import annotations

import csv
import glob
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError

from captcha_robustness.commands.cli import hydra_entry
from captcha_robustness.errors import ConfigError
from captcha_robustness.files import atomic_path
from captcha_robustness.models.module import check_shifts
from captcha_robustness.runs import load_ensemble, plain

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def find_images(pattern: str) -> list[Path]:
    path = Path(pattern)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [path]
    if not found or not all(p.is_file() for p in found):
        missing = next((p for p in found if not p.is_file()), pattern)
        raise ConfigError(f"images: no such image file(s): {missing}; give a file, a directory or a glob of PNG/JPEG")
    return found


def load_image(path: Path, height: int, width: int, invert: bool) -> torch.Tensor:
    """(1, height, width) float in [0, 1], white digits on black. RGBA is composed on black
    (or on white when `invert`, the background of dark-on-light images)."""
    try:
        with Image.open(path) as img:
            img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigError(f"images: cannot read {path} as an image ({exc})") from exc
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255) if invert else (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    gray = img.convert("L").resize((width, height), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(gray, dtype=np.float32) / 255.0)
    return (1.0 - pixels if invert else pixels).unsqueeze(0)


def predict(cfg: DictConfig) -> list[tuple[str, str, float]]:
    for field in ("ckpt_path", "images"):
        if OmegaConf.is_missing(cfg, field):
            raise ConfigError(f"{field}: required (captcha-predict ckpt_path=PATH images=PATH_OR_GLOB)")
    module = load_ensemble(cfg.ckpt_path)[0].eval()
    height, width = module.hparams.image_size
    module.test_shifts = check_shifts(plain(cfg.test_shifts), height, width)
    paths = find_images(str(cfg.images))
    rows = []
    for start in range(0, len(paths), cfg.batch_size):
        part = paths[start:start + cfg.batch_size]
        batch = torch.stack([load_image(p, height, width, cfg.invert) for p in part])
        with torch.inference_mode():
            result = module.predict_step(batch, 0)
        rows += [(str(p), pred, conf) for p, pred, conf in zip(part, result["prediction"], result["confidence"])]
    return rows


def write_rows(rows: list[tuple[str, str, float]], stream) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["path", "prediction", "confidence"])
    writer.writerows((path, pred, f"{conf:.4f}") for path, pred, conf in rows)


def predict_command(cfg: DictConfig) -> None:
    rows = predict(cfg)
    write_rows(rows, sys.stdout)
    if cfg.out:
        with atomic_path(Path(cfg.out)) as tmp, open(tmp, "w", newline="") as stream:
            write_rows(rows, stream)


main = hydra_entry("predict", predict_command)

if __name__ == "__main__":
    main()
