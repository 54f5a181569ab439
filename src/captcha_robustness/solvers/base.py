"""What every OCR solver shares: its answer per image, the preprocessing of CAPTCHA tensors
into images OCR engines expect, and the post-processing of raw text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from PIL import Image, ImageFilter

from captcha_robustness.errors import ConfigError
from captcha_robustness.validate import check_field


@dataclass(frozen=True)
class Reading:
    """One image's answer: the raw text as read, a confidence in [0, 1] when the engine gives
    one, or the error that kept it from answering (raw_text None)."""

    raw_text: str | None
    confidence: float | None = None
    error: str | None = None


class OcrSolver(Protocol):
    name: str
    model_id: str

    def read(self, images: Sequence[Image.Image]) -> list[Reading]: ...


@dataclass(frozen=True)
class Preprocess:
    """CAPTCHA tensor -> grayscale PIL image for OCR: invert to dark digits on light, resize to
    `height` pixels with the width widened by `widen` (the renderer squeezes four digits into
    110 x 100; OCR reads wider lines better), optionally sharpen and binarise, add a border."""

    invert: bool = True
    height: int = 100
    widen: float = 1.5
    sharpen: bool = False
    binarize: float | None = None  # threshold in (0, 1) on the (inverted) image; null: keep grays
    border: int = 10  # pixels of background around the CAPTCHA (Tesseract misses ink at the edge)

    def __post_init__(self) -> None:
        check_field("ocr.height", self.height)
        check_field("ocr.widen", self.widen)
        check_field("ocr.binarize", self.binarize)
        check_field("ocr.border", self.border)

    def __call__(self, image: torch.Tensor) -> Image.Image:
        pixels = image.reshape(image.shape[-2:]).clamp(0, 1)
        if self.invert:
            pixels = 1 - pixels
        pil = Image.fromarray((pixels.numpy() * 255).round().astype(np.uint8), mode="L")
        width = round(pil.width * self.height / pil.height * self.widen)
        if (width, self.height) != pil.size:
            pil = pil.resize((width, self.height), Image.Resampling.BICUBIC)
        if self.sharpen:
            pil = pil.filter(ImageFilter.SHARPEN)
        if self.binarize is not None:
            cut = round(self.binarize * 255)
            pil = pil.point(lambda v: 255 if v > cut else 0)
        if self.border:
            background = 255 if self.invert else 0
            framed = Image.new("L", (pil.width + 2 * self.border, pil.height + 2 * self.border), background)
            framed.paste(pil, (self.border, self.border))
            pil = framed
        return pil


KEEP = ("digits", "raw")


def postprocess(raw_text: str | None, keep: str) -> str:
    """The prediction compared with the label: the digits of the raw text in order
    (`keep=digits`), or the raw text without whitespace (`keep=raw`)."""
    if raw_text is None:
        return ""
    if keep == "digits":
        return re.sub(r"[^0-9]", "", raw_text)
    if keep == "raw":
        return re.sub(r"\s", "", raw_text)
    raise ConfigError(f"ocr.keep: must be one of {', '.join(KEEP)} (got {keep!r})")
