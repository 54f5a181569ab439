"""`solver=tesseract`: Tesseract OCR through pytesseract, images read in parallel processes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytesseract
from PIL import Image

from captcha_robustness.errors import ConfigError
from captcha_robustness.solvers.base import Reading
from captcha_robustness.validate import check_field

INSTALL = ("install it: apt-get install tesseract-ocr (Debian/Ubuntu), brew install tesseract (macOS), "
           "or see https://tesseract-ocr.github.io/tessdoc/Installation.html")


class TesseractSolver:
    """`psm`: Tesseract's page segmentation mode (7: one text line, 8: one word, 13: raw line);
    `whitelist`: the characters it may output ("" for any); `workers`: images read at once
    (each a tesseract process; 0: one per CPU core)."""

    name = "tesseract"

    def __init__(self, psm: int = 7, whitelist: str = "0123456789", workers: int = 0, timeout_s: float = 30) -> None:
        if psm not in range(14):
            raise ConfigError(f"solver.psm: must be a page segmentation mode 0-13 (got {psm!r})")
        check_field("solver.workers", workers)
        try:
            version = pytesseract.get_tesseract_version()
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise ConfigError(f"solver=tesseract: the tesseract program was not found; {INSTALL}") from exc
        self.config = f"--psm {psm}" + (f" -c tessedit_char_whitelist={whitelist}" if whitelist else "")
        self.workers = workers or os.cpu_count() or 1
        self.timeout_s = timeout_s
        self.model_id = f"tesseract-{version} psm{psm}"

    def read(self, images: Sequence[Image.Image]) -> list[Reading]:
        # Threads suffice: each image is a tesseract subprocess. Parallel ones get one thread
        # each, or they fight for the cores.
        with _environment_while_reading("OMP_THREAD_LIMIT", "1" if self.workers > 1 else None), \
                ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(self._read_one, images))

    def _read_one(self, image: Image.Image) -> Reading:
        try:
            data = pytesseract.image_to_data(image, config=self.config, timeout=self.timeout_s,
                                             output_type=pytesseract.Output.DICT)
        except RuntimeError as exc:  # pytesseract's timeout
            return Reading(None, error=f"tesseract: {exc}")
        except pytesseract.TesseractError as exc:
            return Reading(None, error=f"tesseract: {exc.message or exc.status}")
        words = [(w, float(c)) for w, c in zip(data["text"], data["conf"]) if w.strip()]
        if not words:
            return Reading("")
        confidence = min(c for _, c in words) / 100 if all(c >= 0 for _, c in words) else None
        return Reading(" ".join(w for w, _ in words), confidence=confidence)


@contextmanager
def _environment_while_reading(name: str, value: str | None) -> Iterator[None]:
    """Set `name` (unless the user did) for the tesseract processes started inside, then restore.

    pytesseract hands its subprocesses this process's own environment. Left set, the limit
    would reach every later child, e.g. a training run: OMP_THREAD_LIMIT=1 under torch's
    two threads deadlocks oneDNN's convolution backward on some CPUs."""
    if value is None or name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
