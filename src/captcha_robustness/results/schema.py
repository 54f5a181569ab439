"""The predictions table: one row per (solver or model, condition, CAPTCHA), written by
captcha-train and captcha-eval as predictions.parquet and read by every analysis. This is
the only list of its columns; docs/schema.md describes them for users."""

from __future__ import annotations

import pandas as pd

from captcha_robustness.errors import ConfigError

# name -> (dtype, meaning). The dtypes are those written; "string" columns may hold nulls.
COLUMNS: dict[str, tuple[str, str]] = {
    "solver": ("object", "cnn, tesseract or ocrspace"),
    "model_id": ("object", "which model: '<run>/<checkpoint stem>', a sweep job's 'train/0/last', an ensemble "
                           "'a + b', or the OCR engine and its settings"),
    "train_noise": ("object", "the model's training noise, e.g. 'salt_and_pepper:[0.2, 0.3, 0.4]' (for OCR: a null "
                              "of pandas' string dtype)"),
    "architecture": ("object", "the network's class (MultiHeadCNN, SeedCNN), or the OCR solver's name"),
    "noise_type": ("object", "the test noise: none, gaussian, salt_and_pepper, or a mixture 'a+b'"),
    "noise_level": ("float64", "the level this CAPTCHA's noise was drawn at, in [0, 1]"),
    "seed": ("int64", "the seed that fixes the test CAPTCHAs and their noise"),
    "layout": ("object", "the layout the CAPTCHAs were drawn in, data.render.layout: reference or touching "
                         "(tables written before the layout was named lack the column: they are touching)"),
    "captcha_id": ("int64", "the CAPTCHA's index: the same clean image and label at every noise and solver"),
    "label": ("object", "the true digits, e.g. '0427'"),
    "prediction": ("object", "the digits as read; OCR may give another length or ''"),
    "correct": ("bool", "the whole CAPTCHA read right (prediction == label)"),
    "n_correct": ("int64", "digits right, compared position by position"),
    "confidence": ("float64", "the model's probability of its whole answer; the OCR engine's, or null"),
    "error": ("string", "null, or why a solver gave no answer"),
    "raw_text": ("string", "OCR: the engine's text before keeping digits (null for the CNN)"),
    "surrogate": ("string", "adversarial noise: the model_id of the checkpoint(s) it was crafted against (the "
                            "same as model_id when white-box); null for other noise"),
    "ssim": ("float64", "adversarial noise: the CAPTCHA's SSIM against its clean version; null for other noise"),
}

# What every analysis needs; a table without one of these is refused when read.
REQUIRED = ("solver", "model_id", "train_noise", "noise_type", "noise_level", "seed", "captcha_id", "label",
            "prediction", "correct", "n_correct", "confidence", "error")

FILE_NAME = "predictions.parquet"


def in_column_order(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with exactly the schema's columns, in its order."""
    return table[list(COLUMNS)]


def check_columns(table: pd.DataFrame, source: str = "predictions") -> None:
    """One line naming the missing columns, or nothing."""
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ConfigError(f"{source}: missing columns {', '.join(missing)}; a predictions table written by "
                          f"captcha-train or captcha-eval has them (docs/schema.md)")
