"""Corruption accuracy, CE / relative CE against a baseline, and the defence slope, on a table
whose accuracies are known exactly."""

import numpy as np
import pandas as pd
import pytest

from captcha_robustness.analysis.corruption_scores import (
    corruption_scores, defence_ranking, defence_slope, transfer_matrix,
)

N = 100
# model -> clean accuracy, and (noise, level) -> accuracy
ACCURACY = {
    "A": (1.0, {("x", 0.5): 0.8, ("x", 1.0): 0.4, ("y", 0.5): 0.9, ("y", 1.0): 0.7}),
    "B": (0.9, {("x", 0.5): 0.5, ("x", 1.0): 0.2, ("y", 0.5): 0.6, ("y", 1.0): 0.4}),
}
DAMAGE = pd.DataFrame({"noise_type": ["x", "x", "y", "y"], "noise_level": [0.5, 1.0, 0.5, 1.0],
                       "ssim": [0.8, 0.5, 0.9, 0.8]})


def _rows(model, noise, level, accuracy):
    return pd.DataFrame({"model": model, "model_id": model.lower(), "noise_type": noise, "noise_level": level,
                         "seed": 0, "captcha_id": np.arange(N), "correct": np.arange(N) < round(accuracy * N)})


@pytest.fixture
def table():
    parts = []
    for model, (clean, noisy) in ACCURACY.items():
        parts.append(_rows(model, "none", 0.0, clean))
        parts += [_rows(model, noise, level, acc) for (noise, level), acc in noisy.items()]
    return pd.concat(parts, ignore_index=True)


def test_mean_accuracy_ce_and_relative_ce_against_the_baseline(table):
    per_noise, per_model = corruption_scores(table, baseline="B")
    a_x = per_noise.set_index(["model", "noise_type"]).loc[("A", "x")]
    assert a_x["mean_acc"] == pytest.approx(0.6)
    assert a_x["ce"] == pytest.approx((0.2 + 0.6) / (0.5 + 0.8))
    assert a_x["relative_ce"] == pytest.approx((0.2 + 0.6) / (0.4 + 0.7))
    b = per_model.set_index("model").loc["B"]
    assert b["mce"] == pytest.approx(1.0) and b["relative_mce"] == pytest.approx(1.0)
    assert per_model.set_index("model").loc["A", "mean_acc"] == pytest.approx((0.6 + 0.8) / 2)


def test_without_a_baseline_there_is_no_ce(table):
    per_noise, per_model = corruption_scores(table, baseline=None)
    assert per_noise["ce"].isna().all() and per_model["mce"].isna().all()


def test_the_defence_slope_is_accuracy_removed_per_ssim_removed(table):
    ranking = defence_ranking(table, DAMAGE, n_boot=300).set_index(["model", "noise_type"])
    x, y = ranking.loc[("A", "x")], ranking.loc[("A", "y")]
    assert x["slope"] == pytest.approx((0.2 * 0.2 + 0.6 * 0.5) / (0.2**2 + 0.5**2))
    assert y["slope"] == pytest.approx((0.1 * 0.1 + 0.3 * 0.2) / (0.1**2 + 0.2**2))
    assert (y["rank"], x["rank"]) == (1, 2)  # y removes more accuracy per unit of damage
    for row in (x, y):
        assert row["ci_low"] < row["slope"] < row["ci_high"]


def test_a_noise_that_costs_no_accuracy_has_slope_zero():
    slope = defence_slope(np.array([0.9]), np.array([[0.9, 0.9]]), np.array([0.1, 0.3]))
    assert slope.tolist() == [0.0]


def test_the_transfer_matrix_averages_each_family_and_names_what_each_model_saw(table):
    table["train_noise"] = table["model"].map({"A": "x:{'low': 0.1, 'high': 0.6}", "B": "none"})
    out = transfer_matrix(table, {"fx": ["x"], "fy": ["y"], "absent": ["z"]}).set_index("model")
    assert list(out.columns) == ["model_id", "trained_on", "clean", "fx", "fy", "all"]
    assert out.loc["A", "trained_on"] == "fx" and out.loc["B", "trained_on"] == ""
    assert out.loc["A", "clean"] == pytest.approx(1.0) and out.loc["B", "clean"] == pytest.approx(0.9)
    assert out.loc["A", "fx"] == pytest.approx(0.6) and out.loc["A", "fy"] == pytest.approx(0.8)
    assert out.loc["B", "all"] == pytest.approx((0.5 + 0.2 + 0.6 + 0.4) / 4)
