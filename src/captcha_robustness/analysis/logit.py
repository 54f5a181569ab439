"""Logistic regression of whole-CAPTCHA success, written as statsmodels formulas over the tidy
predictions table, with standard errors clustered by CAPTCHA.

Clean CAPTCHAs (level 0) are the same whatever the noise type, so the curves of all noise
types share one intercept: each type gets only its own polynomial in the level, and no noise
type main effect (the reference study's design had both, which made it collinear).

Every covariate is a property of a cell (noise type, level, model, and with digit terms the
digits a CAPTCHA contains), so the model is fitted to per-cell success counts (a binomial GLM,
the same estimates as the row-level logit) and only the cluster-robust covariance,
log-likelihoods and AUC touch the rows, with vectorised sums: millions of rows cost seconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import sparse, stats
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from captcha_robustness.errors import ConfigError

CONDITION = ["noise", "level", "model"]


@dataclass
class Data:
    """The rows reduced to what the fits need: per-condition counts, and each row's condition
    and cluster (one per CAPTCHA: seed and captcha_id)."""

    conditions: pd.DataFrame  # noise, level, model, successes, trials
    row_condition: np.ndarray
    row_cluster: np.ndarray
    row_y: np.ndarray

    @property
    def clusters(self) -> int:
        return int(self.row_cluster.max()) + 1


DIGIT_TERMS = [f"has_{d}" for d in range(10)]


def prepare(table: pd.DataFrame, digit_terms: bool = False) -> Data:
    """Clean rows join the first noise type (at level 0 every type is the same image). With
    `digit_terms`, each row also carries has_0..has_9 (whether that digit is in its CAPTCHA),
    and the cells are conditions x digit content."""
    noisy = sorted(t for t in table["noise_type"].unique() if t != "none")
    if not noisy:
        raise ConfigError("predictions: no noisy conditions; the regression needs noise levels above 0")
    rows = pd.DataFrame({
        "noise": table["noise_type"].where(table["noise_type"] != "none", noisy[0]).to_numpy(),
        "level": table["noise_level"].to_numpy(dtype=float),
        "model": (table["solver"].astype(str) + ":" + table["model_id"].astype(str)).to_numpy(),
    })
    cells = list(CONDITION)
    if digit_terms:
        for d, term in enumerate(DIGIT_TERMS):
            rows[term] = table["label"].str.contains(str(d), regex=False).to_numpy(dtype=np.int8)
        cells += DIGIT_TERMS
    y = table["correct"].to_numpy(dtype=float)
    codes = rows.groupby(cells, sort=True).ngroup().to_numpy()
    conditions = rows.groupby(cells, sort=True).size().rename("trials").reset_index()
    conditions["successes"] = np.bincount(codes, weights=y, minlength=len(conditions))
    cluster = pd.factorize(table["seed"].astype(str) + ":" + table["captcha_id"].astype(str))[0]
    return Data(conditions, codes, cluster, y)


def specifications(data: Data, max_degree: int = 3) -> tuple[dict[str, str], int]:
    """Nested formulas, simplest first, and the polynomial degree used (at most one less than
    the fewest distinct levels of any noise type, so the design stays of full rank)."""
    fewest = data.conditions.groupby("noise")["level"].nunique().min()
    degree = max(1, min(max_degree, fewest - 1))
    powers = " + ".join(["level"] + [f"I(level**{d})" for d in range(2, degree + 1)])
    specs = {"level": f"y ~ C(noise):({powers})"}
    if data.conditions["model"].nunique() > 1:
        specs["level + model"] = specs["level"] + " + C(model)"
        specs["level x model"] = specs["level + model"] + f" + C(model):C(noise):({powers})"
    if DIGIT_TERMS[0] in data.conditions:
        specs[f"{list(specs)[-1]} + digits"] = list(specs.values())[-1] + " + " + " + ".join(DIGIT_TERMS)
    return specs, degree


def _glm(formula: str, conditions: pd.DataFrame, successes: np.ndarray, trials: np.ndarray):
    """The binomial GLM of per-condition success shares weighted by trials (unfitted)."""
    frame = conditions.assign(y=np.divide(successes, trials, out=np.zeros(len(trials)), where=trials > 0))
    keep = trials > 0
    return smf.glm(formula, frame[keep], family=sm.families.Binomial(), var_weights=trials[keep])


def bernoulli_llf(p: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(np.sum(successes * np.log(p) + (trials - successes) * np.log1p(-p)))


@dataclass
class Fit:
    name: str
    formula: str
    terms: list[str]
    params: np.ndarray
    cov: np.ndarray
    llf: float
    llnull: float
    nobs: int
    converged: bool
    separation: bool  # perfect separation: some coefficients are not identified
    X: np.ndarray  # per-condition design
    p: np.ndarray  # per-condition fitted probability
    trials: np.ndarray  # rows per condition

    @property
    def aic(self) -> float:
        return 2 * len(self.params) - 2 * self.llf

    def coefficients(self) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.cov))
        z = self.params / se
        half = stats.norm.ppf(0.975) * se
        return pd.DataFrame({"spec": self.name, "term": self.terms, "coef": self.params, "std_err": se, "z": z,
                             "p_value": 2 * stats.norm.sf(np.abs(z)), "ci_low": self.params - half,
                             "ci_high": self.params + half, "odds_ratio": np.exp(self.params)})

    def summary_text(self) -> str:
        table = self.coefficients().drop(columns=["spec"]).to_string(index=False, float_format=lambda v: f"{v:.4g}")
        return (f"{self.name}: {self.formula}\nrows {self.nobs:,}; log-likelihood {self.llf:.2f} (null "
                f"{self.llnull:.2f}); McFadden R2 {1 - self.llf / self.llnull:.4f}; AIC {self.aic:.1f}; "
                f"converged {self.converged}; perfect separation {self.separation}; standard errors clustered by CAPTCHA\n{table}")


def _fit_glm(model) -> tuple[object, bool]:
    """The fitted GLM and whether statsmodels saw perfect separation (some condition at 0% or
    100%, so a coefficient runs off to infinity): recorded in the results, not printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(maxiter=100)
    return result, any(issubclass(w.category, PerfectSeparationWarning) for w in caught)


def fit(data: Data, name: str, formula: str) -> Fit:
    c = data.conditions
    successes, trials = c["successes"].to_numpy(), c["trials"].to_numpy(dtype=float)
    model = _glm(formula, c, successes, trials)
    X = model.exog
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ConfigError(f"logit: the design of {formula!r} is singular (rank {np.linalg.matrix_rank(X)} < "
                          f"{X.shape[1]} columns): some terms are collinear; drop a term or add conditions that "
                          f"separate them")
    result, separated = _fit_glm(model)
    p_all = np.zeros(len(c))
    p_all[trials > 0] = result.fittedvalues
    X_all = np.zeros((len(c), X.shape[1]))
    X_all[trials > 0] = X
    # Cluster-robust (sandwich) covariance from per-CAPTCHA score sums, as statsmodels'
    # cov_type="cluster" with its small-sample correction.
    residual = data.row_y - p_all[data.row_condition]
    n_cond, n_clusters, nobs = len(c), data.clusters, len(data.row_y)
    sums = sparse.csr_matrix((residual, (data.row_cluster, data.row_condition)), shape=(n_clusters, n_cond))
    scores = np.asarray(sums @ X_all)
    bread = np.linalg.inv((X_all * (trials * p_all * (1 - p_all))[:, None]).T @ X_all)
    k = X.shape[1]
    correction = n_clusters / (n_clusters - 1) * (nobs - 1) / (nobs - k) if n_clusters > 1 else 1.0
    cov = correction * bread @ (scores.T @ scores) @ bread
    mean = successes.sum() / trials.sum()
    return Fit(name, formula, list(model.exog_names), result.params.to_numpy(), cov,
               bernoulli_llf(p_all, successes, trials), bernoulli_llf(np.full(len(c), mean), successes, trials),
               nobs, bool(result.converged), separated, X_all, p_all, trials)


def likelihood_ratios(fits: list[Fit]) -> pd.DataFrame:
    """Each specification against the previous (nested) one."""
    rows = []
    for small, big in zip(fits, fits[1:]):
        lr = 2 * (big.llf - small.llf)
        df = len(big.params) - len(small.params)
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


def grouped_auc(score: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> float:
    """AUC when every row of a group shares its score: from per-group counts."""
    order = np.argsort(score, kind="stable")
    score, pos, neg = score[order], positives[order], negatives[order]
    _, start = np.unique(score, return_index=True)  # tied scores form one block
    block_pos, block_neg = np.add.reduceat(pos, start), np.add.reduceat(neg, start)
    below = np.concatenate([[0], np.cumsum(block_neg)[:-1]])
    total = pos.sum() * neg.sum()
    return float(np.sum(block_pos * (below + 0.5 * block_neg)) / total) if total else np.nan


def grouped_cv_auc(data: Data, formula: str, folds: int = 5, seed: int = 0) -> float:
    """Out-of-sample AUC: CAPTCHAs (all their rows together) split into `folds` folds."""
    fold_of = np.random.default_rng(seed).integers(0, folds, data.clusters)[data.row_cluster]
    n_cond = len(data.conditions)
    test_pos, test_neg, test_p = [], [], []
    for k in range(folds):
        test = fold_of == k
        if test.all() or not test.any():
            return np.nan
        train_s = np.bincount(data.row_condition[~test], weights=data.row_y[~test], minlength=n_cond)
        train_n = np.bincount(data.row_condition[~test], minlength=n_cond).astype(float)
        result, _ = _fit_glm(_glm(formula, data.conditions, train_s, train_n))
        p = np.asarray(result.predict(data.conditions))
        s = np.bincount(data.row_condition[test], weights=data.row_y[test], minlength=n_cond)
        n = np.bincount(data.row_condition[test], minlength=n_cond)
        test_pos.append(s), test_neg.append(n - s), test_p.append(p)
    return grouped_auc(np.concatenate(test_p), np.concatenate(test_pos), np.concatenate(test_neg))


def marginal_effects(f: Fit) -> pd.DataFrame:
    """Average marginal effect of each design column on P(success) (each column taken as its
    own variable, as statsmodels' get_margeff does), with delta-method standard errors."""
    share = f.trials / f.trials.sum()
    w = f.p * (1 - f.p)
    mean_w = float(share @ w)
    grad_mean = (share * w * (1 - 2 * f.p)) @ f.X  # d mean_w / d beta
    ame = f.params * mean_w
    jacobian = np.eye(len(f.params)) * mean_w + np.outer(f.params, grad_mean)
    se = np.sqrt(np.diag(jacobian @ f.cov @ jacobian.T))
    z = ame / se
    half = stats.norm.ppf(0.975) * se
    frame = pd.DataFrame({"term": f.terms, "ame": ame, "std_err": se, "z": z, "p_value": 2 * stats.norm.sf(np.abs(z)),
                          "ci_low": ame - half, "ci_high": ame + half})
    return frame[frame["term"] != "Intercept"].reset_index(drop=True)


def analyse(table: pd.DataFrame, max_degree: int = 3, cv_folds: int = 5, digit_terms: bool = False) -> dict:
    """Every specification fitted; coefficients, fit statistics, LR tests, marginal effects."""
    data = prepare(table, digit_terms)
    specs, degree = specifications(data, max_degree)
    fits = [fit(data, name, formula) for name, formula in specs.items()]
    quality = pd.DataFrame([{
        "spec": f.name, "formula": f.formula, "n": f.nobs, "clusters": data.clusters,
        "log_likelihood": f.llf, "mcfadden_r2": 1 - f.llf / f.llnull, "aic": f.aic, "converged": f.converged,
        "separation": f.separation, "cv_auc": grouped_cv_auc(data, f.formula, cv_folds)} for f in fits])
    sound = quality["converged"] & ~quality["separation"]
    usable = quality[sound] if sound.any() else quality[quality["converged"]] if quality["converged"].any() else quality
    best = fits[int(usable["aic"].idxmin())]
    return {"fits": fits, "degree": degree, "coefficients": pd.concat([f.coefficients() for f in fits]),
            "quality": quality, "best": best.name, "lr_tests": likelihood_ratios(fits),
            "marginal_effects": marginal_effects(best)}
