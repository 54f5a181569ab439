"""Accuracy of a set of predictions rows, with intervals: pure functions on DataFrames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (NaN, NaN for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def digit_arrays(labels: pd.Series, predictions: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Two (n, num_digits) uint8 arrays of character codes: the labels, and the predictions
    cut or padded with "_" to the same length (an OCR answer may be shorter or longer)."""
    width = int(labels.str.len().max())
    padded = predictions.fillna("").str.pad(width, side="right", fillchar="_").str[:width]
    as_array = lambda s: np.frombuffer("".join(s).encode(), dtype=np.uint8).reshape(len(s), width)  # noqa: E731
    return as_array(labels), as_array(padded)


def position_hits(labels: pd.Series, predictions: pd.Series) -> np.ndarray:
    """(n, num_digits) bool: digit k read right, compared position by position."""
    truth, read = digit_arrays(labels, predictions)
    return truth == read


def summarize(rows: pd.DataFrame) -> dict[str, float]:
    """n, acc_seq with its 95% Wilson interval, acc_mean with a 95% normal interval over
    CAPTCHAs, per-position accuracy acc_digit_k, and digits_right (mean digits read right)."""
    n = len(rows)
    hits = position_hits(rows["label"], rows["prediction"])
    correct = int(rows["correct"].sum())
    low, high = wilson_interval(correct, n)
    per_captcha = hits.mean(axis=1)
    half = Z95 * per_captcha.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    out = {"n": n, "acc_seq": correct / n if n else math.nan, "acc_seq_ci_low": low, "acc_seq_ci_high": high,
           "acc_mean": per_captcha.mean(), "acc_mean_ci_low": per_captcha.mean() - half,
           "acc_mean_ci_high": per_captcha.mean() + half}
    out.update({f"acc_digit_{k}": hits[:, k - 1].mean() for k in range(1, hits.shape[1] + 1)})
    out["digits_right"] = hits.sum(axis=1).mean()
    return out


def over_seeds(summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, standard deviation, min and max of acc_seq and acc_mean over seeds, per group `by`."""
    done = summary[summary["status"] == "done"]
    stats = done.groupby(by, dropna=False).agg(
        seeds=("seed", "nunique"),
        acc_seq=("acc_seq", "mean"), acc_seq_std=("acc_seq", "std"),
        acc_seq_min=("acc_seq", "min"), acc_seq_max=("acc_seq", "max"),
        acc_mean=("acc_mean", "mean"), acc_mean_std=("acc_mean", "std"),
    )
    return stats.reset_index()
