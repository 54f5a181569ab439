"""Comparisons that respect the pairing: the same CAPTCHAs read by two solvers/models, or under
two noise types at the same level, and each CAPTCHA's drop from its own clean result."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests

from captcha_robustness.analysis.hardest import CAPTCHA
from captcha_robustness.results.stats import Z95


def mcnemar(a_only: int, b_only: int) -> float:
    """Exact McNemar p-value (two-sided binomial test of the discordant pairs)."""
    discordant = a_only + b_only
    return 1.0 if discordant == 0 else float(binomtest(a_only, discordant, 0.5).pvalue)


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two bool arrays of success on the same CAPTCHAs: accuracies, their difference with a 95%
    Wald interval for paired proportions, the discordant counts and McNemar's exact p-value."""
    n = len(a)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    diff = (a_only - b_only) / n
    half = Z95 * np.sqrt(max((a_only + b_only) / n - diff * diff, 0.0) / n)
    return {"n": n, "acc_a": a.mean(), "acc_b": b.mean(), "diff": diff, "diff_ci_low": diff - half,
            "diff_ci_high": diff + half, "a_only": a_only, "b_only": b_only, "p_value": mcnemar(a_only, b_only)}


def _pairs(table: pd.DataFrame, fixed: list[str], compared: str, names: pd.Series) -> list[dict]:
    wide = table.pivot_table(index=[*fixed, *CAPTCHA], columns=compared, values="correct", aggfunc="first")
    rows = []
    for key, block in wide.groupby(level=fixed, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for a, b in combinations(block.columns, 2):
            both = block[[a, b]].dropna()
            if both.empty:
                continue
            stats = paired_difference(both[a].to_numpy(bool), both[b].to_numpy(bool))
            rows.append({**dict(zip(fixed, key)), "a": names.get(a, a), "b": names.get(b, b), **stats})
    return rows


def comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """Every pair of solvers/models in each condition (clean once, as noise type "none"), and
    every pair of noise types at each level above 0 for each model, on the CAPTCHAs both sides
    read. `diff` = acc_a - acc_b; `p_holm`: McNemar p-values adjusted for all the comparisons
    in the table (Holm)."""
    names = table.groupby("model_id")["model"].first()
    noisy = table[table["noise_level"] > 0]
    # Clean images are the same under every noise type: compare models on them once.
    clean = table[table["noise_level"] == 0].drop_duplicates(["model_id", *CAPTCHA]).assign(noise_type="none")
    by_model = pd.DataFrame(_pairs(pd.concat([clean, noisy]), ["noise_type", "noise_level"], "model_id", names))
    by_noise = pd.DataFrame(_pairs(noisy, ["model_id", "noise_level"], "noise_type", pd.Series(dtype=str)))
    if not by_model.empty:
        by_model.insert(0, "compared", "models")
    if not by_noise.empty:
        by_noise.insert(0, "compared", "noise types")
        by_noise["noise_type"] = by_noise["a"] + " vs " + by_noise["b"]
        by_noise["model_id"] = by_noise["model_id"].map(names)
        by_noise = by_noise.rename(columns={"model_id": "model"})
    out = pd.concat([by_model, by_noise], ignore_index=True)
    columns = ["compared", "model", "noise_type", "noise_level", "a", "b", "n", "acc_a", "acc_b", "diff",
               "diff_ci_low", "diff_ci_high", "a_only", "b_only", "p_value", "p_holm"]
    if out.empty:
        return pd.DataFrame(columns=columns)
    out["p_holm"] = multipletests(out["p_value"], method="holm")[1]
    return out.reindex(columns=columns)


def degradation(table: pd.DataFrame) -> pd.DataFrame:
    """Per solver/model, noise type and level: each CAPTCHA against its own clean (level 0)
    reading by the same model. `drop` = clean accuracy - accuracy on the same CAPTCHAs;
    `broken`: share of the clean-solved that now fail; `fixed`: share of the clean-failed that
    now succeed; `digits_lost`: mean digits right when clean minus now, with a 95% interval."""
    clean = (table[table["noise_level"] == 0].drop_duplicates(["model_id", *CAPTCHA])
             [["model_id", *CAPTCHA, "correct", "n_correct"]])
    paired = table[table["noise_level"] > 0].merge(clean, on=["model_id", *CAPTCHA], suffixes=("", "_clean"))
    columns = ["model", "noise_type", "noise_level", "n", "clean_acc", "acc", "drop", "broken", "fixed",
               "digits_lost", "digits_lost_ci_low", "digits_lost_ci_high"]
    if paired.empty:
        return pd.DataFrame(columns=columns)
    paired["lost"] = paired["n_correct_clean"] - paired["n_correct"]
    paired["broken"] = paired["correct_clean"] & ~paired["correct"]
    paired["fixed"] = ~paired["correct_clean"] & paired["correct"]
    grouped = paired.groupby(["model_id", "noise_type", "noise_level"], sort=True)
    out = grouped.agg(model=("model", "first"), n=("correct", "size"), clean_acc=("correct_clean", "mean"),
                      acc=("correct", "mean"), broken_count=("broken", "sum"), fixed_count=("fixed", "sum"),
                      clean_right=("correct_clean", "sum"), digits_lost=("lost", "mean"), lost_sd=("lost", "std"))
    out["drop"] = out["clean_acc"] - out["acc"]
    out["broken"] = out["broken_count"] / out["clean_right"].where(out["clean_right"] > 0)
    out["fixed"] = out["fixed_count"] / (out["n"] - out["clean_right"]).where(out["n"] > out["clean_right"])
    half = Z95 * out["lost_sd"] / np.sqrt(out["n"])
    out["digits_lost_ci_low"], out["digits_lost_ci_high"] = out["digits_lost"] - half, out["digits_lost"] + half
    return out.reset_index().reindex(columns=columns)
