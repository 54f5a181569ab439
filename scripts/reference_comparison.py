"""The reference study's figures (../shared/REFERENCE.md) next to ours, from a captcha-study
folder: the replication table of the README, printed as Markdown.

    uv run python scripts/reference_comparison.py [--study multirun/reference-study]

"seed_cnn" is the reference's model under its regime (salt & pepper 0.2/0.3/0.4) as this
project trains it; "multihead_cnn" is the default model under the same regime. Reads the
study's analysis tables and, for the per-model logit, its eval predictions tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from captcha_robustness.analysis.logit import analyse

SP = "salt_and_pepper"
REGIME = "salt_and_pepper:[0.2, 0.3, 0.4]"
SWEEP_LEVELS = {0.0: 0.943, 0.1: 0.947, 0.2: 0.945, 0.3: 0.940, 0.4: 0.926, 0.5: 0.892, 0.55: 0.852, 0.6: 0.781,
                0.65: 0.667, 0.7: 0.515, 0.75: 0.361, 0.8: 0.247, 0.9: 0.133, 1.0: 0.099}
TENTHS = np.round(np.arange(0.1, 1.01, 0.1), 2)


def at(summary: pd.DataFrame, model: str, noise: str, level: float, column: str) -> float:
    rows = summary[(summary["model"] == model) & (summary["noise_type"] == noise) & np.isclose(summary["noise_level"], level)]
    return float(rows[column].iloc[0]) if len(rows) else np.nan


def figures(study: Path, model: str, arch_predictions: Path) -> dict[str, str]:
    a = study / "analysis"
    summary = pd.read_csv(a / "summary.csv")
    digits = pd.read_csv(a / "digit_errors.csv")
    confusions = pd.read_csv(a / "confusions.csv")
    out = {}
    train = pd.read_csv((study / ("train_seed_cnn" if model.startswith("SeedCNN") else "train")) / "summary.csv")
    row = train[train["train_noise"] == REGIME].iloc[0]
    out["per-digit accuracy, test set at the training noise"] = " / ".join(f"{row[f'acc_digit_{k}']:.3f}" for k in range(1, 5))
    out.update({f"salt & pepper {lv:g}: mean per-digit accuracy": f"{at(summary, model, SP, lv, 'acc_mean'):.3f}"
                for lv in SWEEP_LEVELS})
    clean = at(summary, model, "gaussian", 0.0, "acc_seq")
    gauss = np.mean([at(summary, model, "gaussian", lv, "acc_seq") for lv in TENTHS])
    sp = np.mean([at(summary, model, SP, lv, "acc_seq") for lv in TENTHS])
    right = np.mean([at(summary, model, "gaussian", 0.0, "digits_right")]
                    + [at(summary, model, n, lv, "digits_right") for n in ("gaussian", SP) for lv in TENTHS])
    out["whole-CAPTCHA accuracy, clean"] = f"{clean:.1%}"
    out["whole-CAPTCHA accuracy, gaussian 0.1-1.0"] = f"{gauss:.1%}"
    out["whole-CAPTCHA accuracy, salt & pepper 0.1-1.0"] = f"{sp:.1%}"
    out["whole-CAPTCHA accuracy, overall (clean + 20 noisy conditions)"] = f"{(clean + 10 * gauss + 10 * sp) / 21:.1%}"
    out["digits right on average, same conditions"] = f"{right:.2f}"
    out["whole-CAPTCHA accuracy, salt & pepper 0.8"] = f"{at(summary, model, SP, 0.8, 'acc_seq'):.1%}"
    mine = digits[digits["model"] == model]
    out["hardest digits (error rate over all conditions)"] = ", ".join(
        f"{r.digit} ({r.error_rate:.1%})" for r in mine.head(2).itertuples())
    out["easiest digit"] = f"{mine.iloc[-1].digit} ({mine.iloc[-1].error_rate:.1%})"
    top = confusions[confusions["model"] == model].head(3)
    out["most frequent confusions"] = ", ".join(f"{r.true} -> {r.predicted}" for r in top.itertuples())
    table = pd.read_parquet(arch_predictions)
    table = table[table["train_noise"] == REGIME]
    table = table.assign(model_id=table["model_id"].astype(str))
    quality = analyse(table, max_degree=3, cv_folds=10)["quality"].iloc[0]
    out["logit of success on noise type x level: McFadden R2, 10-fold CV AUC"] = (
        f"{quality['mcfadden_r2']:.3f}, {quality['cv_auc']:.3f}")
    return out


REFERENCE = {
    "per-digit accuracy, test set at the training noise": "0.947 / 0.931 / 0.934 / 0.943",
    **{f"salt & pepper {lv:g}: mean per-digit accuracy": f"{v:.3f}" for lv, v in SWEEP_LEVELS.items()},
    "whole-CAPTCHA accuracy, clean": "80.1%",
    "whole-CAPTCHA accuracy, gaussian 0.1-1.0": "56.3%",
    "whole-CAPTCHA accuracy, salt & pepper 0.1-1.0": "42.7%",
    "whole-CAPTCHA accuracy, overall (clean + 20 noisy conditions)": "51.0%",
    "digits right on average, same conditions": "2.96",
    "whole-CAPTCHA accuracy, salt & pepper 0.8": "0%",
    "hardest digits (error rate over all conditions)": "6 (30.9%), 0 (30.5%)",
    "easiest digit": "5 (18.8%)",
    "most frequent confusions": "0, 6 and 9 -> 8",
    "logit of success on noise type x level: McFadden R2, 10-fold CV AUC": "0.358, 0.848 (collinear design)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("multirun/reference-study"))
    args = parser.parse_args()
    seed = figures(args.study, f"SeedCNN trained on {REGIME}", args.study / "eval_seed_cnn" / "predictions.parquet")
    ours = figures(args.study, f"MultiHeadCNN trained on {REGIME}", args.study / "eval" / "predictions.parquet")
    print("| figure | reference study | seed_cnn here | multihead_cnn here |")
    print("| --- | --- | --- | --- |")
    for name, value in REFERENCE.items():
        print(f"| {name} | {value} | {seed[name]} | {ours[name]} |")


if __name__ == "__main__":
    main()
