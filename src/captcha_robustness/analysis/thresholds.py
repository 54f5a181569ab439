"""The noise level at which whole-CAPTCHA accuracy falls to 50%, and the area under the
accuracy-vs-level curve, with intervals from a bootstrap that resamples CAPTCHAs.

The curve is the per-level accuracy made non-increasing in level (isotonic regression, pool
adjacent violators, weighted by n): no shape is assumed beyond "more noise never helps".
The 50% level is where that curve crosses 0.5, interpolated between the two levels around it
on the logit scale (accuracy curves are close to logistic, so this is far less biased than
interpolating the accuracy itself on a coarse grid of levels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP = ["solver", "model_id", "noise_type"]


def decreasing_fit(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit of y (pool adjacent violators)."""
    values, weights, sizes = [], [], []
    for yi, wi in zip(y.astype(float), w.astype(float)):
        values.append(yi), weights.append(wi), sizes.append(1)
        while len(values) > 1 and values[-2] < values[-1]:
            total = weights[-2] + weights[-1]
            merged = (values[-2] * weights[-2] + values[-1] * weights[-1]) / total if total > 0 else values[-1]
            values[-2:], weights[-2:], sizes[-2:] = [merged], [total], [sizes[-2] + sizes[-1]]
    return np.repeat(values, sizes)


def crossing(levels: np.ndarray, curve: np.ndarray, target: float = 0.5) -> float:
    """The first level where a non-increasing `curve` reaches `target` (interpolated linearly
    in logit(curve)); NaN when it starts below or never gets there."""
    if curve[0] < target:
        return np.nan
    below = np.nonzero(curve <= target)[0]
    if len(below) == 0:
        return np.nan
    k = below[0]
    if k == 0 or curve[k] == target:
        return float(levels[k])
    x0, x1 = levels[k - 1], levels[k]
    y0, y1, t = _logit(curve[k - 1]), _logit(curve[k]), _logit(target)
    return float(x0 + (y0 - t) * (x1 - x0) / (y0 - y1))


def _logit(p: float, eps: float = 1e-6) -> float:
    p = min(max(p, eps), 1 - eps)
    return float(np.log(p / (1 - p)))


def curve_stats(levels: np.ndarray, successes: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """(level at 50%, normalised area under the accuracy curve) of per-level success counts."""
    accuracy = np.divide(successes, counts, out=np.zeros(len(counts)), where=counts > 0)
    fitted = decreasing_fit(accuracy, counts)
    span = levels[-1] - levels[0]
    area = float(np.trapezoid(accuracy, levels) / span) if span > 0 else float(accuracy[0])
    return crossing(levels, fitted), area


THRESHOLD_COLUMNS = ["solver", "model_id", "noise_type", "level_50", "ci_low", "ci_high", "auc", "auc_ci_low",
                     "auc_ci_high", "levels", "captchas", "boot_defined"]


def thresholds(table: pd.DataFrame, n_boot: int = 200, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """One row per solver/model x noise type: level_50 and auc with percentile intervals from
    `n_boot` resamples of the CAPTCHAs (each CAPTCHA keeps all its levels together)."""
    rng = np.random.default_rng(seed)
    rows = []
    clean = table[table["noise_level"] == 0]
    for key, group in table[table["noise_type"] != "none"].groupby(GROUP, sort=False):
        solver, model_id, noise_type = key
        own_zero = (group["noise_level"] == 0).any()
        zero = clean[(clean["solver"] == solver) & (clean["model_id"] == model_id) & (clean["noise_type"] == "none")]
        if not own_zero and not zero.empty:
            group = pd.concat([group, zero])
        # CAPTCHA x level matrix of successes (a CAPTCHA is (seed, captcha_id)).
        ids = group["seed"].astype("int64").to_numpy() * (1 << 32) + group["captcha_id"].astype("int64").to_numpy()
        captcha_codes, captcha_index = np.unique(ids, return_inverse=True)
        levels, level_index = np.unique(group["noise_level"].to_numpy(), return_inverse=True)
        hits = np.zeros((len(captcha_codes), len(levels)))
        seen = np.zeros_like(hits)
        np.add.at(hits, (captcha_index, level_index), group["correct"].to_numpy(dtype=float))
        np.add.at(seen, (captcha_index, level_index), 1.0)
        level_50, auc = curve_stats(levels, hits.sum(0), seen.sum(0))
        weights = rng.multinomial(len(captcha_codes), np.full(len(captcha_codes), 1 / len(captcha_codes)), size=n_boot)
        boot = [curve_stats(levels, w @ hits, w @ seen) for w in weights.astype(float)]
        boot_50, boot_auc = np.array(boot).T
        q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
        low50, high50 = np.nanpercentile(boot_50, q) if np.isfinite(boot_50).mean() > 0.5 else (np.nan, np.nan)
        rows.append({"solver": solver, "model_id": model_id, "noise_type": noise_type,
                     "level_50": level_50, "ci_low": low50, "ci_high": high50,
                     "auc": auc, "auc_ci_low": np.percentile(boot_auc, q[0]), "auc_ci_high": np.percentile(boot_auc, q[1]),
                     "levels": len(levels), "captchas": len(captcha_codes), "boot_defined": float(np.isfinite(boot_50).mean())})
    return pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)
