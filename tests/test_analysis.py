"""Statistics recover a known truth from generated predictions tables."""

import numpy as np
import pandas as pd
import pytest

from captcha_robustness.analysis.logit import analyse, auc, fit, prepare
from captcha_robustness.analysis.thresholds import crossing, decreasing_fit, thresholds
from captcha_robustness.errors import ConfigError

# P(correct) = sigmoid(B0 + b1 * level + b2 * level^2), per noise type.
B0 = 2.0
TRUTH = {"gaussian": (-3.0, -6.0), "salt_and_pepper": (-8.0, -4.0)}
LEVELS = np.round(np.arange(0, 1.01, 0.1), 2)


def true_level_50(b1, b2):
    return (-b1 - np.sqrt(b1 * b1 - 4 * b2 * B0)) / (2 * b2)


def generated(n_captchas=1500, seed=1):
    rng = np.random.default_rng(seed)
    parts = []
    for noise, (b1, b2) in TRUTH.items():
        for level in LEVELS:
            p = 1 / (1 + np.exp(-(B0 + b1 * level + b2 * level ** 2)))
            correct = rng.random(n_captchas) < p
            parts.append(pd.DataFrame({"solver": "cnn", "model_id": "m", "train_noise": "none", "noise_type": noise,
                                       "noise_level": level, "seed": 0, "captcha_id": np.arange(n_captchas),
                                       "label": "1234", "prediction": np.where(correct, "1234", "1230"),
                                       "correct": correct, "n_correct": np.where(correct, 4, 3)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def table():
    return generated()


def test_the_logit_recovers_the_true_coefficients(table):
    result = analyse(table, max_degree=2, cv_folds=3)
    coefs = result["coefficients"].set_index("term")
    truth = {"Intercept": B0}
    for noise, (b1, b2) in TRUTH.items():
        truth[f"C(noise)[{noise}]:level"] = b1
        truth[f"C(noise)[{noise}]:I(level ** 2)"] = b2
    for term, value in truth.items():
        row = coefs.loc[term]
        assert row["ci_low"] <= value <= row["ci_high"], (term, value, row)
    assert np.exp(coefs.loc["Intercept", "coef"]) == pytest.approx(coefs.loc["Intercept", "odds_ratio"])
    quality = result["quality"].iloc[0]
    assert quality["converged"] and quality["clusters"] == 1500 and 0.75 < quality["cv_auc"] < 0.95
    assert 0 < quality["mcfadden_r2"] < 1 and result["degree"] == 2


def test_threshold_intervals_cover_the_true_level_50():
    # Coverage over independent replicates: a 95% interval should miss about 1 in 20.
    covered, errors = [], []
    for replicate in range(20):
        limits = thresholds(generated(n_captchas=800, seed=100 + replicate), n_boot=100).set_index("noise_type")
        for noise, (b1, b2) in TRUTH.items():
            row, truth = limits.loc[noise], true_level_50(b1, b2)
            covered.append(row["ci_low"] <= truth <= row["ci_high"])
            errors.append(row["level_50"] - truth)
    assert np.mean(covered) >= 0.8
    assert abs(np.mean(errors)) < 0.005 and np.std(errors) < 0.02
    assert limits.loc["gaussian", "auc"] > limits.loc["salt_and_pepper", "auc"]


def test_a_singular_design_is_refused(table):
    with pytest.raises(ConfigError, match=r"^logit: the design of .* is singular \(rank 2 < 3 columns\)"):
        fit(prepare(table), "bad", "y ~ level + I(2 * level)")


def test_curve_helpers():
    fitted = decreasing_fit(np.array([0.9, 0.95, 0.6, 0.7, 0.1]), np.ones(5))
    assert fitted.tolist() == pytest.approx([0.925, 0.925, 0.65, 0.65, 0.1])
    levels = np.array([0.0, 0.1, 0.2])
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert crossing(levels, np.array([0.9, 0.7, 0.3])) == pytest.approx(0.1 + 0.1 * logit(0.7) / (logit(0.7) - logit(0.3)))
    assert crossing(levels, np.array([0.9, 0.5, 0.3])) == pytest.approx(0.1)
    assert np.isnan(crossing(levels, np.array([0.9, 0.8, 0.6])))
    assert np.isnan(crossing(levels, np.array([0.4, 0.3, 0.2])))
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)


def test_the_count_based_fit_equals_statsmodels_row_level_clustered_logit():
    import statsmodels.formula.api as smf

    from captcha_robustness.analysis.logit import marginal_effects, specifications

    table = generated(n_captchas=300, seed=3)
    other = table.assign(model_id="m2", correct=np.random.default_rng(4).random(len(table)) < 0.6)
    table = pd.concat([table, other], ignore_index=True)
    data = prepare(table)
    rows = pd.DataFrame({"y": table["correct"].astype(float), "level": table["noise_level"], "noise": table["noise_type"],
                         "model": "cnn:" + table["model_id"]})
    for name, formula in specifications(data)[0].items():
        ours = fit(data, name, formula)
        ref = smf.logit(formula, rows).fit(disp=0, cov_type="cluster", cov_kwds={"groups": data.row_cluster})
        np.testing.assert_allclose(ours.params, ref.params.to_numpy(), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(np.sqrt(np.diag(ours.cov)), ref.bse.to_numpy(), rtol=1e-6)
        assert ours.llf == pytest.approx(ref.llf) and 1 - ours.llf / ours.llnull == pytest.approx(ref.prsquared)
        margins = ref.get_margeff(at="overall").summary_frame()
        np.testing.assert_allclose(marginal_effects(ours)["ame"], margins["dy/dx"], rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(marginal_effects(ours)["std_err"], margins["Std. Err."], rtol=1e-6)


def test_planted_hard_digits_come_out_on_top():
    from captcha_robustness.analysis.hardest import digit_and_position_errors

    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, (4000, 4))
    miss = rng.random(labels.shape) < np.where(labels == 7, 0.4, np.where(labels == 3, 0.2, 0.02))
    read = np.where(miss, (labels + 1) % 10, labels)
    as_text = lambda a: ["".join(map(str, row)) for row in a]  # noqa: E731
    table = pd.DataFrame({"model": "m", "label": as_text(labels), "prediction": as_text(read)})
    digits, positions, confusions = digit_and_position_errors(table)
    assert digits["digit"].tolist()[:2] == [7, 3]
    top = digits.iloc[0]
    assert top["ci_low"] <= 0.4 <= top["ci_high"] and top["n"] == (labels == 7).sum()
    assert confusions.iloc[0][["true", "predicted"]].tolist() == [7, "8"]
    assert len(positions) == 4 and positions["error_rate"].between(0.04, 0.09).all()
