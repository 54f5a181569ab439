"""The security reading: how much accuracy a noise costs solvers per unit of visible damage.
Damage is measured against the clean CAPTCHA by PSNR and SSIM (torchmetrics), on a sample of
the same test CAPTCHAs re-rendered from their jobs' configs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from captcha_robustness.analysis.images import Renderer


def image_damage(clean: torch.Tensor, noisy: torch.Tensor) -> dict[str, float]:
    """PSNR (dB, of the mean squared error over the sample; inf for identical images) and mean
    SSIM of noisy against clean images in [0, 1]."""
    mse = float(((noisy - clean) ** 2).mean())
    ssim = float(structural_similarity_index_measure(noisy, clean, data_range=1.0))
    return {"psnr": 10 * np.log10(1 / mse) if mse > 0 else np.inf, "ssim": ssim}


def damage_table(table: pd.DataFrame, renderer: Renderer, captchas: int = 256) -> pd.DataFrame:
    """Per noise type and level in the table: PSNR and SSIM of the noisy CAPTCHAs (ids
    0..captchas-1 of the table's first seed) against their clean versions."""
    seed = int(table["seed"].iloc[0])
    ids = torch.arange(captchas)
    clean = renderer.clean(seed, ids)
    rows = []
    for noise, level in table[["noise_type", "noise_level"]].drop_duplicates().itertuples(index=False):
        noisy = renderer.noisy(noise, level, seed, ids)
        if noisy is not None:
            rows.append({"noise_type": noise, "noise_level": level, "captchas": captchas, **image_damage(clean, noisy)})
    return pd.DataFrame(rows, columns=["noise_type", "noise_level", "captchas", "psnr", "ssim"])


def security_table(summary: pd.DataFrame, damage: pd.DataFrame) -> pd.DataFrame:
    """Per solver/model, noise type and level: accuracy, its drop from the clean accuracy,
    damage = 1 - SSIM, PSNR, and drop_per_damage (accuracy lost per unit of 1 - SSIM)."""
    merged = summary[["model", "model_id", "noise_type", "noise_level", "acc_seq"]].merge(
        damage, on=["noise_type", "noise_level"], how="inner")
    clean = summary[summary["noise_level"] == 0].groupby("model_id")["acc_seq"].first()
    merged["drop"] = merged["model_id"].map(clean) - merged["acc_seq"]
    merged["damage"] = 1 - merged["ssim"]
    merged["drop_per_damage"] = merged["drop"] / merged["damage"].where(merged["damage"] > 0)
    return merged.drop(columns="captchas").sort_values(["model_id", "noise_type", "noise_level"], ignore_index=True)


def damage_at_thresholds(limits: pd.DataFrame, damage: pd.DataFrame) -> pd.DataFrame:
    """The SSIM and PSNR of each noise type at each solver/model's 50% level (interpolated in
    level): the visible harm a CAPTCHA must take to halve that solver's success. Higher SSIM
    at the threshold = the noise defeats the solver with less harm to the image."""
    out = limits[["model", "noise_type", "level_50", "ci_low", "ci_high"]].copy()
    for column in ("ssim", "psnr"):
        values = []
        for noise, level in zip(out["noise_type"], out["level_50"]):
            curve = damage[damage["noise_type"] == noise].sort_values("noise_level")
            finite = curve[np.isfinite(curve[column])]
            values.append(np.interp(level, finite["noise_level"], finite[column])
                          if pd.notna(level) and len(finite) else np.nan)
        out[f"{column}_at_50"] = values
    return out

