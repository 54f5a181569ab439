"""Which digits and positions defeat solvers, and what they are read as: error rates by true
digit and by position (with Wilson intervals), and the most frequent confusions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from captcha_robustness.sweeps.stats import digit_arrays, wilson_interval


def _rates(keys: pd.DataFrame, errors: np.ndarray) -> pd.DataFrame:
    grouped = pd.DataFrame({**keys, "errors": errors}).groupby(list(keys), sort=True)["errors"].agg(["size", "sum"])
    grouped = grouped.rename(columns={"size": "n", "sum": "errors"}).reset_index()
    grouped["error_rate"] = grouped["errors"] / grouped["n"]
    intervals = [wilson_interval(int(e), int(n)) for e, n in zip(grouped["errors"], grouped["n"])]
    grouped["ci_low"], grouped["ci_high"] = zip(*intervals) if intervals else ([], [])
    return grouped


def digit_and_position_errors(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(digit_errors, position_errors, confusions), per model, pooled over every condition.
    digit_errors and position_errors are sorted hardest first within each model."""
    truth, read = digit_arrays(table["label"], table["prediction"])
    n, width = truth.shape
    model = np.repeat(table["model"].to_numpy(), width)
    true_digit = (truth.reshape(-1) - ord("0")).astype(np.int64)
    position = np.tile(np.arange(1, width + 1), n)
    wrong = (truth != read).reshape(-1)
    digits = _rates(pd.DataFrame({"model": model, "digit": true_digit}), wrong)
    positions = _rates(pd.DataFrame({"model": model, "position": position}), wrong)
    read_as = np.where(read.reshape(-1) == ord("_"), "none", read.reshape(-1).view("S1").astype(str))
    pairs = pd.DataFrame({"model": model[wrong], "true": true_digit[wrong], "predicted": read_as[wrong]})
    confusions = pairs.value_counts().rename("count").reset_index()
    totals = pd.Series(true_digit).groupby([model, true_digit]).size()
    confusions["share_of_true"] = confusions["count"] / totals.loc[list(zip(confusions["model"], confusions["true"]))].to_numpy()
    order = ["model", "error_rate"]
    return (digits.sort_values(order, ascending=[True, False], ignore_index=True),
            positions.sort_values(order, ascending=[True, False], ignore_index=True),
            confusions.sort_values(["model", "count"], ascending=[True, False], ignore_index=True))
