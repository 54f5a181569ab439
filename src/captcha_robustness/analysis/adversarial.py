"""Adversarial noise on the corruption suite's axes: rows with a `surrogate` (noise crafted
against a model) are read by their role for the model reading them, white-box (the surrogate is
the reader), member (the surrogate is one network of a reading ensemble) or transfer (the reader
never took part in crafting them), and set beside their random counterpart at the same levels.

Each role becomes a condition of its own, `<type> (<role>)`: its accuracy pools every surrogate
in that role (transfer: all the others), and its image damage is the mean SSIM the crafted
CAPTCHAs carry in their `ssim` column. The thresholds, the SSIM at them and the defence ranking
are then those of the corruption suite (thresholds.py, security.py, corruption_scores.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from captcha_robustness.analysis.corruption_scores import defence_ranking
from captcha_robustness.analysis.security import damage_at_thresholds
from captcha_robustness.analysis.thresholds import thresholds
from captcha_robustness.results.stats import wilson_interval

ROLES = ("white-box", "member", "transfer")
# Each attack's random counterpart: the noise type that hits the same budget at random.
COUNTERPARTS = {"adversarial_l0": "salt_and_pepper", "adversarial_linf": "uniform"}


def split_adversarial(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the other rows, the adversarial rows); the second is empty for tables without any."""
    if "surrogate" not in table:
        return table, table.iloc[:0]
    crafted = table["surrogate"].notna().to_numpy()
    return table[~crafted], table[crafted]


def roles(rows: pd.DataFrame) -> pd.Series:
    """Per adversarial row: white-box, member or transfer."""
    def role(model_id: str, surrogate: str) -> str:
        if model_id == surrogate:
            return "white-box"
        return "member" if set(surrogate.split(" + ")) <= set(model_id.split(" + ")) else "transfer"

    return pd.Series([role(m, s) for m, s in zip(rows["model_id"], rows["surrogate"])], index=rows.index)


def as_conditions(adversarial: pd.DataFrame) -> pd.DataFrame:
    """The adversarial rows with each role as its own noise type, `<type> (<role>)`."""
    return adversarial.assign(noise_type=adversarial["noise_type"] + " (" + roles(adversarial) + ")")


def crafted_damage(conditions: pd.DataFrame) -> pd.DataFrame:
    """damage.csv's rows for the crafted conditions: mean SSIM of the CAPTCHAs read there."""
    out = (conditions.groupby(["noise_type", "noise_level"], as_index=False)
           .agg(captchas=("ssim", "size"), ssim=("ssim", "mean")))
    out.insert(3, "psnr", np.nan)
    return out


def clean_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Each model's level-0 readings, once per CAPTCHA, as noise type none: every curve's start."""
    clean = table[table["noise_level"] == 0].drop_duplicates(["model_id", "seed", "captcha_id"])
    return clean.assign(noise_type="none")


def budget_summary(adversarial: pd.DataFrame, models: pd.Series) -> pd.DataFrame:
    """Per reader, attack, surrogate and level: CAPTCHAs, whole-CAPTCHA accuracy with its 95%
    Wilson interval, and the mean SSIM of the crafted CAPTCHAs."""
    rows = []
    frame = adversarial.assign(role=roles(adversarial))
    for (model_id, noise, surrogate, role, level), group in frame.groupby(
            ["model_id", "noise_type", "surrogate", "role", "noise_level"], sort=True):
        hits, n = int(group["correct"].sum()), len(group)
        low, high = wilson_interval(hits, n)
        rows.append({"model": models.get(model_id, model_id), "model_id": model_id, "noise_type": noise,
                     "surrogate": models.get(surrogate, surrogate), "role": role, "noise_level": level, "n": n,
                     "acc_seq": hits / n, "ci_low": low, "ci_high": high, "ssim": group["ssim"].mean()})
    return pd.DataFrame(rows)


def transfer_matrix(summary: pd.DataFrame) -> pd.DataFrame:
    """Per attack and surrogate (rows) and reader (columns): accuracy averaged over the budgets."""
    mean = summary.groupby(["noise_type", "surrogate", "model"], sort=False)["acc_seq"].mean()
    return mean.unstack("model").reset_index()


def adversarial_tables(table: pd.DataFrame, adversarial: pd.DataFrame, damage: pd.DataFrame | None,
                       defence: pd.DataFrame | None, n_boot: int = 200, seed: int = 0) -> dict[str, pd.DataFrame]:
    """adversarial_summary, adversarial_transfer and adversarial_thresholds (.csv): the crafted
    conditions and the random noise types of `table` at the same levels, with the SSIM at each
    50% level; and `defence` (the corruption suite's ranking) with the crafted rows added."""
    models = pd.concat([table, adversarial]).groupby("model_id")["model"].first()
    conditions = as_conditions(adversarial)
    harm = crafted_damage(conditions)
    levels = set(adversarial["noise_level"])
    random = table[(table["noise_level"] > 0) & table["noise_level"].isin(levels)
                   & table["model_id"].isin(adversarial["model_id"])]
    pooled = pd.concat([conditions, table[table["noise_type"].isin(random["noise_type"].unique())],
                        clean_rows(table)], ignore_index=True)
    limits = thresholds(pooled, n_boot=n_boot, seed=seed)
    limits.insert(2, "model", limits["model_id"].map(models))
    limits = limits.sort_values(["model", "noise_type"], kind="stable", ignore_index=True)
    all_damage = pd.concat([d for d in (damage, harm) if d is not None and not d.empty], ignore_index=True)
    at_50 = damage_at_thresholds(limits, all_damage)
    summary = budget_summary(adversarial, models)
    out = {"adversarial_summary.csv": summary, "adversarial_transfer.csv": transfer_matrix(summary),
           "adversarial_thresholds.csv": limits.merge(at_50[["model", "noise_type", "ssim_at_50"]],
                                                      on=["model", "noise_type"], how="left")}
    crafted = defence_ranking(pd.concat([conditions, clean_rows(table)], ignore_index=True), harm, n_boot, seed)
    crafted = crafted[crafted["noise_type"] != "none"]
    if defence is not None or not crafted.empty:
        ranked = pd.concat([d for d in (defence, crafted) if d is not None and not d.empty], ignore_index=True)
        ranked["rank"] = ranked.groupby("model_id")["slope"].rank(ascending=False, method="min").astype("Int64")
        out["defence_ranking.csv"] = ranked.sort_values(["model_id", "rank"], ignore_index=True)
    return out


def threshold_readings(limits: pd.DataFrame, counterparts: dict[str, str] = COUNTERPARTS) -> list[str]:
    """Per model and attack: the 50% budget white-box and transferred against its random
    counterpart's, e.g. '- M, adversarial_l0: white-box 0.002 (0.001-0.003), transfer 0.01 ...'."""
    lines = []
    by = limits.set_index(["model", "noise_type"])
    for model in limits["model"].unique():
        for attack, random in counterparts.items():
            parts = []
            for name, label in [*((f"{attack} ({role})", role) for role in ROLES), (random, f"random {random}")]:
                if (model, name) in by.index:
                    row = by.loc[(model, name)]
                    parts.append(f"{label} {_level(row.level_50, row.ci_low, row.ci_high, row.auc)}")
            if len(parts) > 1:
                lines.append(f"- {model}, {attack}: " + ", ".join(parts))
    return lines


def _level(level: float, low: float, high: float, auc: float) -> str:
    if pd.isna(level):  # never crossed 50%: above it at every level tested (mean accuracy over 50%), or below it clean
        return "beyond the levels tested" if auc >= 0.5 else "none (under 50% clean)"
    interval = f" ({low:.3g}-{high:.3g})" if pd.notna(low) else ""
    return f"{level:.3g}{interval}"
