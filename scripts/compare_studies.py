"""Do two captcha-study folders agree within sampling error?

    uv run python scripts/compare_studies.py multirun/reference-study FRESH_STUDY_DIR

Matches rows by solver, model label, noise type and level (checkpoint names may differ between
runs), from each folder's analysis/summary.csv and analysis/thresholds.csv:
- accuracy (acc_seq and acc_mean): z = difference / sqrt(se_a^2 + se_b^2), binomial standard
  errors, as if the runs were independent samples (conservative: they share test CAPTCHAs);
- the 50% thresholds: z from the two bootstrap intervals (half-width / 1.96 as the SE).
Prints per-model tables and a verdict: the runs agree when no more rows exceed |z| > 1.96 than
chance allows (5%, plus two binomial standard deviations). Exits 1 when they do not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ["solver", "model", "noise_type", "noise_level"]


def accuracy_z(a: pd.DataFrame, b: pd.DataFrame, column: str, trials: int = 1) -> pd.DataFrame:
    """One row per condition in both tables: both accuracies, their difference and its z.

    trials: Bernoulli trials per row and CAPTCHA (1 for acc_seq; num_digits for acc_mean,
    which ignores the clustering of digits within a CAPTCHA and so overstates z a little).
    """
    both = a[KEYS + ["n", column]].merge(b[KEYS + ["n", column]], on=KEYS, suffixes=("_a", "_b"))
    var_a = both[f"{column}_a"] * (1 - both[f"{column}_a"]) / (both["n_a"] * trials)
    var_b = both[f"{column}_b"] * (1 - both[f"{column}_b"]) / (both["n_b"] * trials)
    both["diff"] = both[f"{column}_b"] - both[f"{column}_a"]
    both["z"] = (both["diff"] / np.sqrt(var_a + var_b)).fillna(0.0)  # 0/0: both exactly 0 or 1
    return both


def threshold_z(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    keys = ["solver", "model", "noise_type"]
    both = a[keys + ["level_50", "ci_low", "ci_high"]].merge(
        b[keys + ["level_50", "ci_low", "ci_high"]], on=keys, suffixes=("_a", "_b")).dropna()
    se_a = (both["ci_high_a"] - both["ci_low_a"]) / (2 * 1.96)
    se_b = (both["ci_high_b"] - both["ci_low_b"]) / (2 * 1.96)
    both["diff"] = both["level_50_b"] - both["level_50_a"]
    both["z"] = (both["diff"] / np.sqrt(se_a**2 + se_b**2)).fillna(0.0)
    return both


def too_many(z: pd.Series) -> tuple[int, float]:
    """(rows with |z| > 1.96, the most that chance allows: 5% plus two binomial SDs)."""
    n = len(z)
    return int((z.abs() > 1.96).sum()), 0.05 * n + 2 * np.sqrt(n * 0.05 * 0.95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_a", type=Path)
    parser.add_argument("study_b", type=Path)
    args = parser.parse_args()
    tables = {}
    for name in ("summary", "thresholds"):
        paths = [s / "analysis" / f"{name}.csv" for s in (args.study_a, args.study_b)]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            print(f"study_a, study_b: no {name}.csv at {', '.join(missing)} (run captcha-study first)", file=sys.stderr)
            return 2
        tables[name] = [pd.read_csv(p) for p in paths]
    summary_a, summary_b = tables["summary"]
    digits = sum(c.startswith("acc_digit_") for c in summary_a.columns)
    checks = {"acc_seq": accuracy_z(summary_a, summary_b, "acc_seq"),
              "acc_mean": accuracy_z(summary_a, summary_b, "acc_mean", trials=digits),
              "level_50": threshold_z(*tables["thresholds"])}
    pd.set_option("display.width", 160)
    agree = True
    for name, table in checks.items():
        print(f"\n## {name}: {args.study_b} minus {args.study_a}")
        per_model = table.groupby("model").agg(rows=("z", "size"), mean_abs_diff=("diff", lambda d: d.abs().mean()),
                                               max_abs_diff=("diff", lambda d: d.abs().max()),
                                               max_abs_z=("z", lambda z: z.abs().max()),
                                               beyond_1_96=("z", lambda z: int((z.abs() > 1.96).sum())))
        print(per_model.round(4).to_string())
        count, allowed = too_many(table["z"])
        verdict = "agree" if count <= allowed else "DIFFER"
        agree &= count <= allowed
        print(f"{name}: {count} of {len(table)} rows beyond |z| 1.96 (chance allows {allowed:.1f}): {verdict}")
    print("\nverdict:", "the two studies agree within sampling error" if agree else "the two studies differ")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
