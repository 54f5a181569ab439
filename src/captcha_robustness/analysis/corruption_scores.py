"""Robustness scores per model and noise type, as the field reports them, and our defence ranking.

- mean accuracy over the noise levels above 0 (RobustBench's corruption accuracy);
- corruption error CE: the model's errors summed over levels, over a baseline model's
  (Hendrycks and Dietterich, 2019, with AlexNet as baseline; here any model, e.g. seed_cnn);
  relative CE: the same for the errors added to each model's clean error; mCE and relative
  mCE are their means over noise types;
- defence: how much whole-CAPTCHA accuracy a noise type removes per unit of image similarity it
  removes, the least-squares slope through the origin of (1 - SSIM, clean accuracy - accuracy)
  over its levels, with a bootstrap interval over CAPTCHAs (the SSIM of each level is fixed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

CAPTCHA = ["seed", "captcha_id"]


def level_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Whole-CAPTCHA accuracy per model, noise type and level; level-0 rows of any noise type
    are the model's clean accuracy, repeated for each of its noise types."""
    noisy = table[table["noise_level"] > 0]
    acc = noisy.groupby(["model", "model_id", "noise_type", "noise_level"], as_index=False)["correct"].mean()
    clean = table[table["noise_level"] == 0].groupby("model_id")["correct"].mean()
    acc["clean"] = acc["model_id"].map(clean)
    return acc.rename(columns={"correct": "acc"})


def corruption_scores(table: pd.DataFrame, baseline: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per model and noise type: mean accuracy over levels, and with a `baseline` (the model_id,
    model label or architecture of one model in the table, e.g. SeedCNN) CE and relative CE;
    then per model, their means (mCE)."""
    acc = level_accuracy(table)
    acc["error"], acc["added_error"] = 1 - acc["acc"], acc["clean"] - acc["acc"]
    per_noise = acc.groupby(["model", "model_id", "noise_type"], as_index=False).agg(
        levels=("noise_level", "nunique"), mean_acc=("acc", "mean"), error=("error", "sum"),
        added_error=("added_error", "sum"))
    named = (table["model_id"] == baseline) | (table["model"] == baseline)
    if "architecture" in table:
        named |= table["architecture"] == baseline
    base_ids = set(table.loc[named, "model_id"])
    if baseline is not None and len(base_ids) == 1:
        base = per_noise[per_noise["model_id"] == base_ids.pop()].set_index("noise_type")
        per_noise["ce"] = per_noise["error"] / per_noise["noise_type"].map(base["error"])
        per_noise["relative_ce"] = per_noise["added_error"] / per_noise["noise_type"].map(base["added_error"])
    else:
        per_noise["ce"] = per_noise["relative_ce"] = np.nan
    per_model = per_noise.groupby(["model", "model_id"], as_index=False).agg(
        noise_types=("noise_type", "nunique"), mean_acc=("mean_acc", "mean"), mce=("ce", "mean"),
        relative_mce=("relative_ce", "mean"))
    return per_noise.drop(columns=["error", "added_error"]), per_model


def transfer_matrix(table: pd.DataFrame, families: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Per model: its clean accuracy, its whole-CAPTCHA accuracy averaged over each family's
    noise types and the levels above 0, and over every noise type (`all`), with the families
    whose every type its training noise held (`trained_on`): read along a row, the columns
    outside `trained_on` say how far training carried to corruptions the model never saw."""
    acc = level_accuracy(table)
    family_of = {name: family for family, names in families.items() for name in names}
    acc["family"] = acc["noise_type"].map(family_of)
    keys = ["model", "model_id"]
    out = acc.dropna(subset=["family"]).groupby([*keys, "family"])["acc"].mean().unstack("family")
    out = out.reindex(columns=[f for f in families if f in out.columns])
    out.insert(0, "clean", acc.groupby(keys)["clean"].first())
    out["all"] = acc.groupby(keys)["acc"].mean()
    trained = table.groupby("model_id")["train_noise"].first().fillna("")
    seen = {mid: set(str(noise).split(":")[0].split("+")) for mid, noise in trained.items()}
    out = out.reset_index()
    out.insert(2, "trained_on", [" ".join(f for f, names in families.items() if set(names) <= seen.get(mid, set()))
                                 for mid in out["model_id"]])
    return out


def defence_slope(clean: np.ndarray, noisy: np.ndarray, damage: np.ndarray) -> np.ndarray:
    """Accuracy removed per unit of damage (1 - SSIM): the slope through the origin, for each
    row of accuracies. `clean` (R,), `noisy` (R, L) at the L levels of `damage` (L,)."""
    drop = clean[:, None] - noisy
    return drop @ damage / float(damage @ damage)


def defence_ranking(table: pd.DataFrame, damage: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per model and noise type with a damage row: the defence slope, its 95% bootstrap
    interval (CAPTCHAs resampled, paired across levels), and its rank within the model (1: the
    most accuracy removed per unit of SSIM removed)."""
    rng = np.random.default_rng(seed)
    harm = damage.assign(damage=1 - damage["ssim"]).set_index(["noise_type", "noise_level"])["damage"]
    rows = []
    for (model, model_id), rows_model in table.groupby(["model", "model_id"]):
        clean = rows_model[rows_model["noise_level"] == 0].groupby(CAPTCHA)["correct"].mean()
        for noise, rows_noise in rows_model[rows_model["noise_level"] > 0].groupby("noise_type"):
            grid = rows_noise.pivot_table(index=CAPTCHA, columns="noise_level", values="correct", aggfunc="mean")
            levels = [level for level in grid.columns if (noise, level) in harm.index]
            grid = grid[levels].join(clean.rename("clean"), how="inner").dropna()
            if not levels or grid.empty:
                continue
            correct, base = grid[levels].to_numpy(float), grid["clean"].to_numpy(float)
            d = np.array([harm[(noise, level)] for level in levels])
            weights = rng.multinomial(len(grid), np.full(len(grid), 1 / len(grid)), size=n_boot) / len(grid)
            boot = defence_slope(weights @ base, weights @ correct, d)
            rows.append({"model": model, "model_id": model_id, "noise_type": noise, "levels": len(levels),
                         "captchas": len(grid), "slope": float(defence_slope(base.mean(keepdims=True),
                                                                             correct.mean(0, keepdims=True), d)[0]),
                         "ci_low": float(np.quantile(boot, 0.025)), "ci_high": float(np.quantile(boot, 0.975))})
    out = pd.DataFrame(rows, columns=["model", "model_id", "noise_type", "levels", "captchas", "slope", "ci_low",
                                      "ci_high"])
    out["rank"] = out.groupby("model_id")["slope"].rank(ascending=False, method="min").astype("Int64")
    return out.sort_values(["model_id", "rank"], ignore_index=True)
