"""Logistic regression of whole-CAPTCHA success, written as statsmodels formulas over the tidy
predictions table, with standard errors clustered by CAPTCHA.

Clean CAPTCHAs (level 0) are the same whatever the noise type, so the curves of all noise
types share one intercept: each type gets only its own polynomial in the level, and no noise
type main effect (the reference study's design had both, which made it collinear).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from captcha_robustness.errors import ConfigError


def prepare(table: pd.DataFrame) -> pd.DataFrame:
    """The columns the formulas use: y (0/1), level, noise (clean rows join the first noise
    type: at level 0 every type is the same image), model, cluster (one id per CAPTCHA)."""
    noisy = sorted(t for t in table["noise_type"].unique() if t != "none")
    if not noisy:
        raise ConfigError("predictions: no noisy conditions; the regression needs noise levels above 0")
    noise = table["noise_type"].where(table["noise_type"] != "none", noisy[0])
    model = table["solver"].astype(str) + ":" + table["model_id"].astype(str)
    cluster = pd.factorize(table["seed"].astype(str) + ":" + table["captcha_id"].astype(str))[0]
    return pd.DataFrame({"y": table["correct"].astype(float).to_numpy(), "level": table["noise_level"].to_numpy(),
                         "noise": noise.to_numpy(), "model": model.to_numpy(), "cluster": cluster})


def specifications(data: pd.DataFrame, max_degree: int = 3) -> tuple[dict[str, str], int]:
    """Nested formulas, simplest first, and the polynomial degree used (at most one less than
    the fewest distinct levels of any noise type, so the design stays of full rank)."""
    fewest = data.groupby("noise")["level"].nunique().min()
    degree = max(1, min(max_degree, fewest - 1))
    powers = " + ".join(["level"] + [f"I(level**{d})" for d in range(2, degree + 1)])
    specs = {"level": f"y ~ C(noise):({powers})"}
    if data["model"].nunique() > 1:
        specs["level + model"] = specs["level"] + " + C(model)"
        specs["level x model"] = specs["level + model"] + f" + C(model):C(noise):({powers})"
    return specs, degree


@dataclass
class Fit:
    name: str
    formula: str
    result: object  # statsmodels LogitResults, clustered covariance

    def coefficients(self) -> pd.DataFrame:
        r = self.result
        ci = r.conf_int()
        return pd.DataFrame({"spec": self.name, "term": r.params.index, "coef": r.params.values,
                             "std_err": r.bse.values, "z": r.tvalues.values, "p_value": r.pvalues.values,
                             "ci_low": ci[0].values, "ci_high": ci[1].values, "odds_ratio": np.exp(r.params.values)})


def fit(data: pd.DataFrame, name: str, formula: str) -> Fit:
    model = smf.logit(formula, data)
    rank = np.linalg.matrix_rank(model.exog)
    if rank < model.exog.shape[1]:
        raise ConfigError(f"logit: the design of {formula!r} is singular (rank {rank} < {model.exog.shape[1]} "
                          f"columns): some terms are collinear; drop a term or add conditions that separate them")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the quality table instead
        result = model.fit(disp=0, maxiter=100, cov_type="cluster", cov_kwds={"groups": data["cluster"].to_numpy()})
    return Fit(name, formula, result)


def likelihood_ratios(fits: list[Fit]) -> pd.DataFrame:
    """Each specification against the previous (nested) one."""
    rows = []
    for small, big in zip(fits, fits[1:]):
        lr = 2 * (big.result.llf - small.result.llf)
        df = big.result.df_model - small.result.df_model
        rows.append({"smaller": small.name, "larger": big.name, "lr_stat": lr, "df": df,
                     "p_value": stats.chi2.sf(lr, df)})
    return pd.DataFrame(rows)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    ranks = stats.rankdata(score)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return np.nan
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def grouped_cv_auc(data: pd.DataFrame, formula: str, folds: int = 5, seed: int = 0) -> float:
    """Out-of-sample AUC: CAPTCHAs (all their rows together) split into `folds` folds."""
    fold_of = np.random.default_rng(seed).integers(0, folds, data["cluster"].max() + 1)[data["cluster"].to_numpy()]
    scores = np.empty(len(data))
    for k in range(folds):
        test = fold_of == k
        if test.all() or not test.any():
            return np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = smf.logit(formula, data[~test]).fit(disp=0, maxiter=100)
        scores[test] = result.predict(data[test])
    return auc(data["y"].to_numpy(), scores)


def analyse(table: pd.DataFrame, max_degree: int = 3, cv_folds: int = 5) -> dict:
    """Every specification fitted; coefficients, fit statistics, LR tests, marginal effects."""
    data = prepare(table)
    specs, degree = specifications(data, max_degree)
    fits = [fit(data, name, formula) for name, formula in specs.items()]
    quality = pd.DataFrame([{
        "spec": f.name, "formula": f.formula, "n": int(f.result.nobs), "clusters": int(data["cluster"].nunique()),
        "log_likelihood": f.result.llf, "mcfadden_r2": f.result.prsquared, "aic": f.result.aic,
        "converged": bool(f.result.mle_retvals["converged"]),
        "cv_auc": grouped_cv_auc(data, f.formula, cv_folds)} for f in fits])
    usable = quality[quality["converged"]] if quality["converged"].any() else quality
    best = fits[int(usable["aic"].idxmin())]
    margins = best.result.get_margeff(at="overall").summary_frame().reset_index(names="term")
    margins.columns = ["term", "ame", "std_err", "z", "p_value", "ci_low", "ci_high"]
    return {"fits": fits, "degree": degree, "coefficients": pd.concat([f.coefficients() for f in fits]),
            "quality": quality, "best": best.name, "lr_tests": likelihood_ratios(fits), "marginal_effects": margins}
