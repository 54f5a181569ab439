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
    labels = pd.Series(np.random.default_rng(5).integers(0, 10_000, 300)).map("{:04d}".format)
    table["label"] = table["captcha_id"].map(labels)
    data = prepare(table, digit_terms=True)
    rows = pd.DataFrame({"y": table["correct"].astype(float), "level": table["noise_level"], "noise": table["noise_type"],
                         "model": "cnn:" + table["model_id"],
                         **{f"has_{d}": table["label"].str.contains(str(d)).astype(int) for d in range(10)}})
    specs = specifications(data)[0]
    assert list(specs)[-1] == "level x model + digits"
    for name, formula in specs.items():
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
    table = pd.DataFrame({"model": "m", "seed": 0, "captcha_id": np.arange(len(labels)), "label": as_text(labels),
                          "prediction": as_text(read)})
    digits, positions, confusions = digit_and_position_errors(table)
    assert digits["digit"].tolist()[:2] == [7, 3]
    top = digits.iloc[0]
    assert top["ci_low"] <= 0.4 <= top["ci_high"] and top["n"] == (labels == 7).sum()
    assert confusions.iloc[0][["true", "predicted"]].tolist() == [7, "8"]
    assert len(positions) == 4 and positions["error_rate"].between(0.04, 0.09).all()


def as_text(digits):
    return ["".join(map(str, row)) for row in digits]


def test_clustered_error_rates_match_statsmodels_cluster_robust_errors():
    import statsmodels.api as sm

    from captcha_robustness.analysis.hardest import clustered_rates

    rng = np.random.default_rng(3)
    cluster = np.repeat(np.arange(300), 12)  # 300 CAPTCHAs read 12 times, each with its own difficulty
    errors = rng.random(len(cluster)) < rng.beta(1, 3, 300)[cluster]
    out = clustered_rates(pd.DataFrame({"group": np.zeros(len(cluster), int)}), errors, cluster).iloc[0]
    ols = sm.OLS(errors.astype(float), np.ones(len(errors))).fit(cov_type="cluster", cov_kwds={"groups": cluster})
    assert out["error_rate"] == pytest.approx(errors.mean())
    assert out["std_err"] == pytest.approx(ols.bse[0], rel=1e-9)
    # Correlated readings: the interval is wider than a binomial one over all 3,600 readings.
    assert out["ci_high"] - out["ci_low"] > 2 * 1.96 * np.sqrt(errors.mean() * (1 - errors.mean()) / len(errors))
    assert out["ci_low"] < errors.mean() < out["ci_high"]


def test_a_planted_hard_pair_has_the_highest_lift():
    from captcha_robustness.analysis.hardest import pair_errors

    rng = np.random.default_rng(11)
    labels = rng.integers(0, 10, (20000, 4))
    miss = rng.random(labels.shape) < 0.05
    after_4 = np.zeros_like(miss)
    after_4[:, 1:] = (labels[:, :-1] == 4) & (labels[:, 1:] == 1)  # a 1 right after a 4 is often misread
    miss |= after_4 & (rng.random(labels.shape) < 0.5)
    table = pd.DataFrame({"model": "m", "model_id": "m", "noise_type": "gaussian", "noise_level": 0.1, "seed": 0,
                          "captcha_id": np.arange(len(labels)), "label": as_text(labels),
                          "prediction": as_text(np.where(miss, (labels + 1) % 10, labels))})
    pairs = pair_errors(table)
    assert pairs.iloc[0]["pair"] == "41" and pairs.iloc[0]["lift"] > 2
    others = pairs[~pairs["pair"].str.contains("41")]
    assert len(pairs) == 100 and others["lift"].median() == pytest.approx(1, abs=0.1) and others["lift"].max() < 1.6


def test_hardest_captchas_rank_planted_ones_first_and_last():
    from captcha_robustness.analysis.hardest import hardest_captchas

    rng = np.random.default_rng(5)
    parts = []
    for level, p in ((0.0, 0.9), (0.3, 0.6), (0.6, 0.3)):
        correct = rng.random(400) < p
        correct[:10], correct[-10:] = False, True  # CAPTCHAs 0-9 always fail, 390-399 always succeed
        parts.append(pd.DataFrame({"model_id": "m", "noise_type": "gaussian", "noise_level": level, "seed": 0,
                                   "captcha_id": np.arange(400), "label": "1234", "correct": correct,
                                   "n_correct": np.where(correct, 4, 2)}))
    hardest = hardest_captchas(pd.concat(parts, ignore_index=True))
    assert set(hardest["captcha_id"].head(10)) == set(range(10))
    assert set(hardest["captcha_id"].tail(10)) == set(range(390, 400))
    assert (hardest["observations"] == 3).all() and hardest["rank"].tolist() == list(range(1, 401))
    assert hardest.iloc[0]["failures"] == 3 and hardest.iloc[0]["difficulty"] > 0 > hardest.iloc[-1]["difficulty"]


def paired_table(n=4000, seed=2):
    """Model a: success 0.8 at level 0 and 0.5 at level 0.3; model b: a's results with 10% of
    a's successes turned into failures."""
    rng = np.random.default_rng(seed)
    parts = []
    for level, p in ((0.0, 0.8), (0.3, 0.5)):
        a = rng.random(n) < p
        b = a & (rng.random(n) >= 0.1)
        for model, correct in (("a", a), ("b", b)):
            parts.append(pd.DataFrame({"model_id": model, "model": f"model {model}", "noise_type": "gaussian",
                                       "noise_level": level, "seed": 0, "captcha_id": np.arange(n),
                                       "correct": correct, "n_correct": np.where(correct, 4, 2)}))
    return pd.concat(parts, ignore_index=True)


def test_paired_comparisons_recover_a_known_difference():
    from statsmodels.stats.contingency_tables import mcnemar

    from captcha_robustness.analysis.paired import comparisons

    table = paired_table()
    out = comparisons(table)
    assert len(out) == 2 and (out["compared"] == "models").all() and (out["n"] == 4000).all()
    for row in out.itertuples():
        truth = 0.1 * (0.8 if row.noise_level == 0 else 0.5)
        assert row.diff_ci_low <= truth <= row.diff_ci_high and row.b_only == 0
        assert row.p_value == pytest.approx(mcnemar([[0, row.a_only], [row.b_only, 0]], exact=True).pvalue)
    assert (out["p_holm"] < 1e-10).all()
    # The same model under two noise types with identical results: no difference.
    other = table[table["noise_level"] > 0].assign(noise_type="salt_and_pepper")
    same = comparisons(pd.concat([table, other], ignore_index=True))
    by_noise = same[same["compared"] == "noise types"]
    assert len(by_noise) == 2 and (by_noise["diff"] == 0).all() and (by_noise["p_value"] == 1).all()


def test_degradation_counts_each_captcha_against_its_clean_reading():
    from captcha_robustness.analysis.paired import degradation

    table = paired_table()
    out = degradation(table).set_index("model")
    for model in ("a", "b"):
        rows = table[table["model_id"] == model].pivot(index="captcha_id", columns="noise_level", values="correct")
        row = out.loc[f"model {model}"]
        assert row["n"] == 4000 and row["noise_level"] == 0.3
        assert row["clean_acc"] == pytest.approx(rows[0.0].mean()) and row["acc"] == pytest.approx(rows[0.3].mean())
        assert row["broken"] == pytest.approx((rows[0.0] & ~rows[0.3]).sum() / rows[0.0].sum())
        assert row["fixed"] == pytest.approx((~rows[0.0] & rows[0.3]).sum() / (~rows[0.0]).sum())
        assert row["digits_lost_ci_low"] < row["digits_lost"] < row["digits_lost_ci_high"]
    assert degradation(table[table["noise_level"] > 0]).empty


def test_image_damage_measures_psnr_and_ssim():
    import torch

    from captcha_robustness.analysis.security import image_damage
    from captcha_robustness.data.noise import NoiseConfig, apply_noise
    from captcha_robustness.data import rng as captcha_rng

    clean = torch.rand(8, 1, 100, 110)
    assert image_damage(clean, clean) == {"psnr": np.inf, "ssim": pytest.approx(1.0)}
    shifted = image_damage(clean * 0.8, clean * 0.8 + 0.1)
    assert shifted["psnr"] == pytest.approx(20.0, abs=1e-4)
    keys = captcha_rng.item_keys(captcha_rng.derive_key(0, "test", "noise"), torch.arange(8))
    damage = []
    for level in (0.1, 0.3, 0.6):
        noise = NoiseConfig.from_dict({"name": "salt_and_pepper", "level": level})
        damage.append(image_damage(clean, apply_noise(clean, noise, keys, torch.full((8,), level))))
    assert damage[0]["psnr"] > damage[1]["psnr"] > damage[2]["psnr"]
    assert 1 > damage[0]["ssim"] > damage[1]["ssim"] > damage[2]["ssim"]


def test_long_training_mixtures_read_as_a_count_in_model_labels():
    from captcha_robustness.commands.analyze import short_noise

    assert short_noise("a+b+c+d+e:{'low': 0.1, 'high': 0.6}") == "5 types mixed:{'low': 0.1, 'high': 0.6}"
    assert short_noise("none + a+b+c+d:0.2 + adversarial_linf:0.1 (PGD training)") == (
        "none + 4 types mixed:0.2 + adversarial_linf:0.1 (PGD training)")
    assert short_noise("gaussian+salt_and_pepper:[0.2, 0.3]") == "gaussian+salt_and_pepper:[0.2, 0.3]"
