"""General-purpose OCR as CAPTCHA solvers (Tesseract locally, OCR.space over HTTP), behind
one small interface: `read(images) -> list[Reading]`."""
