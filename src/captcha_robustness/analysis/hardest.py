"""Which digits, positions, digit pairs and CAPTCHAs defeat solvers, and what digits are read as.

Every CAPTCHA is read under many conditions, so its readings are not independent: intervals
here are clustered by CAPTCHA (a ratio-estimator sandwich variance, turned into an effective
sample size for a Wilson interval), not binomial intervals over all readings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from captcha_robustness.results.stats import digit_arrays, wilson_interval

CAPTCHA = ["seed", "captcha_id"]
CONDITION = ["model_id", "noise_type", "noise_level"]


def clustered_rates(keys: pd.DataFrame, errors: np.ndarray, cluster: np.ndarray) -> pd.DataFrame:
    """Per group of `keys`: n, errors, clusters, error_rate, its std_err, and a 95% interval,
    treating the readings of one cluster (CAPTCHA) as correlated. The variance is the cluster
    sandwich sum_c (e_c - p m_c)^2 / n^2 * C / (C - 1); the interval is Wilson's at the
    effective size p (1 - p) / variance (never above n)."""
    by = list(keys)
    frame = pd.DataFrame({**keys, "cluster": cluster, "errors": errors.astype(np.int64)})
    per_cluster = frame.groupby([*by, "cluster"], sort=False)["errors"].agg(["sum", "size"])
    groups = per_cluster.groupby(level=by, sort=True)
    out = pd.DataFrame({"n": groups["size"].sum(), "errors": groups["sum"].sum(), "clusters": groups.size()})
    out["error_rate"] = out["errors"] / out["n"]
    rate = out["error_rate"].reindex(per_cluster.index.droplevel("cluster")).to_numpy()
    squares = ((per_cluster["sum"] - rate * per_cluster["size"]) ** 2).groupby(level=by, sort=True).sum()
    clusters = out["clusters"].to_numpy()
    variance = squares.to_numpy() / out["n"].to_numpy() ** 2 * clusters / np.maximum(clusters - 1, 1)
    out["std_err"] = np.sqrt(variance)
    p, n = out["error_rate"].to_numpy(), out["n"].to_numpy(dtype=float)
    effective = np.minimum(np.divide(p * (1 - p), variance, out=n.copy(), where=variance > 0), n)
    intervals = [wilson_interval(r * m, m) for r, m in zip(p, effective)]
    out["ci_low"], out["ci_high"] = zip(*intervals) if intervals else ([], [])
    return out.reset_index()


def digit_readings(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per row: the true digits (n, width) as ints, which were misread, what they were read as
    ("none": no character there), the model's code and the CAPTCHA's cluster code. Computed
    once and passed to digit_and_position_errors and pair_errors (string work on every row)."""
    truth, read = digit_arrays(table["label"], table["prediction"])
    read_as = np.where(read == ord("_"), "none", read.view("S1").astype(str))
    model, models = pd.factorize(table["model"])
    return {"truth": (truth - ord("0")).astype(np.int64), "wrong": truth != read, "read_as": read_as,
            "cluster": table.groupby(CAPTCHA, sort=False).ngroup().to_numpy(), "model": model, "models": models}


def digit_and_position_errors(table: pd.DataFrame, d: dict[str, np.ndarray] | None = None
                              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(digit_errors, position_errors, confusions), per model, pooled over every condition.
    digit_errors and position_errors are sorted hardest first within each model."""
    d = d if d is not None else digit_readings(table)
    n, width = d["truth"].shape
    model = np.repeat(d["model"], width)
    true_digit, wrong = d["truth"].reshape(-1), d["wrong"].reshape(-1)
    cluster = np.repeat(d["cluster"], width)
    position = np.tile(np.arange(1, width + 1), n)
    digits = clustered_rates(pd.DataFrame({"model": model, "digit": true_digit}), wrong, cluster)
    positions = clustered_rates(pd.DataFrame({"model": model, "position": position}), wrong, cluster)
    pairs = pd.DataFrame({"model": model[wrong], "true": true_digit[wrong], "predicted": d["read_as"].reshape(-1)[wrong]})
    confusions = pairs.value_counts().rename("count").reset_index()
    totals = pd.Series(true_digit).groupby([model, true_digit]).size()
    confusions["share_of_true"] = confusions["count"] / totals.loc[list(zip(confusions["model"], confusions["true"]))].to_numpy()
    for frame in (digits, positions, confusions):
        frame["model"] = d["models"][frame["model"]]
    order = ["model", "error_rate"]
    return (digits.sort_values(order, ascending=[True, False], ignore_index=True),
            positions.sort_values(order, ascending=[True, False], ignore_index=True),
            confusions.sort_values(["model", "count"], ascending=[True, False], ignore_index=True))


def pair_errors(table: pd.DataFrame, d: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Adjacent digit pairs ("ab": a left of b), per model: how often either digit of the pair
    is misread, against what the two digits' own error rates in the same condition predict if
    their errors were independent. `lift` > 1: the pair is harder together than apart (digits
    that touch or look alike side by side). Sorted by lift, highest first, per model."""
    d = d if d is not None else digit_readings(table)
    truth, wrong = d["truth"], d["wrong"]
    width = truth.shape[1]
    condition = table.groupby(CONDITION, sort=False).ngroup().to_numpy()
    # Error rate of each digit value in each condition (over all positions).
    key = (condition[:, None] * 10 + truth).reshape(-1)
    rate = np.bincount(key, wrong.reshape(-1)) / np.maximum(np.bincount(key), 1)
    digit_rate = rate[condition[:, None] * 10 + truth]
    pair_wrong = wrong[:, :-1] | wrong[:, 1:]
    expected = 1 - (1 - digit_rate[:, :-1]) * (1 - digit_rate[:, 1:])
    pair = (truth[:, :-1] * 10 + truth[:, 1:]).reshape(-1)
    model = np.repeat(d["model"], width - 1)
    out = clustered_rates(pd.DataFrame({"model": model, "pair": pair}), pair_wrong.reshape(-1),
                          np.repeat(d["cluster"], width - 1))
    expected_sum = pd.Series(expected.reshape(-1)).groupby([model, pair]).sum()
    out["expected_rate"] = expected_sum.loc[list(zip(out["model"], out["pair"]))].to_numpy() / out["n"]
    out["lift"] = out["error_rate"] / out["expected_rate"]
    out["pair"] = out["pair"].map("{:02d}".format)
    out["model"] = d["models"][out["model"]]
    return out.sort_values(["model", "lift"], ascending=[True, False], ignore_index=True)


def source_digit_errors(table: pd.DataFrame, test_digits: np.ndarray) -> pd.DataFrame:
    """The test-pool digits behind the misread digits, per model: `test_digit` (the pool index,
    from `test_digits`, one row of indices per table row), its value `digit`, how often the
    model read it (`readings`: CAPTCHAs reuse test digits) and misread it, and `read_as`, its
    most frequent misreading ("_": nothing read there). Only digits misread at least once;
    most errors first within each model."""
    truth, read = digit_arrays(table["label"], table["prediction"])
    width = truth.shape[1]
    frame = pd.DataFrame({"model": np.repeat(table["model"].to_numpy(), width), "test_digit": test_digits.reshape(-1),
                          "digit": (truth - ord("0")).reshape(-1), "wrong": (truth != read).reshape(-1),
                          "read": read.reshape(-1).view("S1").astype(str)})
    keys = ["model", "test_digit", "digit"]
    out = frame.groupby(keys).agg(readings=("wrong", "size"), errors=("wrong", "sum"))
    out = out[out["errors"] > 0].reset_index()
    out["error_rate"] = out["errors"] / out["readings"]
    misread = frame[frame["wrong"]].groupby([*keys, "read"]).size().rename("n").reset_index()
    most = misread.sort_values(["n", "read"], ascending=[False, True]).drop_duplicates(keys)
    out = out.merge(most[[*keys, "read"]].rename(columns={"read": "read_as"}), on=keys)
    return out.sort_values(["model", "errors", "error_rate", "test_digit"], ascending=[True, False, False, True],
                           ignore_index=True)


def hardest_captchas(table: pd.DataFrame) -> pd.DataFrame:
    """CAPTCHAs ranked by difficulty, pooled over every solver/model and condition they were
    read in: `difficulty` = (failures - expected_failures) / observations, where a reading's
    expected failure is 1 - the accuracy of its condition; positive: failed more often than an
    average CAPTCHA under the same conditions. `z` scales the excess by its binomial standard
    deviation (large |z|: backed by many readings). Hardest first; ties (such as CAPTCHAs every
    solver fails everywhere) go to the fewer mean digits right."""
    condition = table.groupby(CONDITION, sort=False).ngroup().to_numpy()
    correct = table["correct"].to_numpy(dtype=float)
    accuracy = np.bincount(condition, correct) / np.bincount(condition)
    accuracy = accuracy[condition]
    frame = pd.DataFrame({"seed": table["seed"], "captcha_id": table["captcha_id"], "failures": 1 - correct,
                          "expected_failures": 1 - accuracy, "variance": accuracy * (1 - accuracy),
                          "digits_right": table["n_correct"]})
    out = frame.groupby(CAPTCHA, sort=True).agg(observations=("seed", "size"), failures=("failures", "sum"),
                                                expected_failures=("expected_failures", "sum"),
                                                variance=("variance", "sum"), digits_right=("digits_right", "mean"))
    out.insert(0, "label", table.groupby(CAPTCHA, sort=True)["label"].first())
    excess = out["failures"] - out["expected_failures"]
    out["difficulty"] = excess / out["observations"]
    out["z"] = excess / np.sqrt(out["variance"].where(out["variance"] > 0))
    out = out.drop(columns="variance").reset_index()
    out = out.sort_values(["difficulty", "digits_right", "seed", "captcha_id"], ascending=[False, True, True, True],
                          ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["failures"] = out["failures"].astype(np.int64)
    return out
