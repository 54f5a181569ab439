"""report.md: every table of an analysis with a one-line reading, and its figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from captcha_robustness.files import write_text


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    cells = frame.round(digits).astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * frame.shape[1]]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def threshold_readings(limits: pd.DataFrame) -> list[str]:
    lines = []
    for row in limits.itertuples(index=False):
        if pd.isna(row.level_50):
            lines.append(f"- {row.model}, {row.noise_type}: whole-CAPTCHA accuracy never crosses 50% in the levels tested.")
        else:
            lines.append(f"- {row.model}, {row.noise_type}: accuracy falls to 50% at level {row.level_50:.3f} "
                         f"(95% CI {row.ci_low:.3f}-{row.ci_high:.3f}; area under the curve {row.auc:.3f}).")
    return lines


def error_readings(digits: pd.DataFrame, positions: pd.DataFrame) -> list[str]:
    lines = []
    for model, rows in digits.groupby("model", sort=False):
        hard, easy = rows.iloc[0], rows.iloc[-1]
        place = positions[positions["model"] == model].iloc[0]
        lines.append(f"- {model}: hardest digit {hard.digit} (error rate {hard.error_rate:.3f}, {hard.ci_low:.3f}-"
                     f"{hard.ci_high:.3f}), easiest {easy.digit} ({easy.error_rate:.3f}); hardest position "
                     f"{place.position} ({place.error_rate:.3f}).")
    return lines


def write_report(path: Path, summary: pd.DataFrame, limits: pd.DataFrame, logit: dict, figures: list[str], *,
                 sources: list[str], rows: int, errors: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    quality, lr = logit["quality"], logit["lr_tests"]
    best = quality.set_index("spec").loc[logit["best"]]
    clean = summary[summary["noise_level"] == 0].drop_duplicates("model_id")
    parts = [
        "# Analysis of CAPTCHA predictions",
        f"Sources: {', '.join(map(str, sources))}; {rows:,} rows, "
        f"{summary['model_id'].nunique()} solver/model(s), {summary['noise_type'].nunique()} noise type(s).",
        "## Accuracy by condition (summary.csv)",
        "Clean whole-CAPTCHA accuracy: " + "; ".join(f"{r.model} {r.acc_seq:.3f}" for r in clean.itertuples()) + ".",
        markdown(summary[["model", "noise_type", "noise_level", "n", "acc_seq", "acc_seq_ci_low", "acc_seq_ci_high",
                          "acc_mean", "digits_right"]]),
        *[f"![{name}]({name})" for name in figures],
        "## Robustness thresholds (thresholds.csv)",
        "The noise level at which whole-CAPTCHA accuracy falls to 50% (non-increasing fit of accuracy against "
        "level), with 95% intervals from a bootstrap over CAPTCHAs; `auc` is the mean accuracy over the level range.",
        "\n".join(threshold_readings(limits)),
        markdown(limits[["model", "noise_type", "level_50", "ci_low", "ci_high", "auc", "auc_ci_low", "auc_ci_high"]]),
        "## Logistic regression of success (logit.csv, logit.txt)",
        f"Each noise type gets its own degree-{logit['degree']} polynomial in the level from a shared clean "
        "intercept; standard errors are clustered by CAPTCHA. Lowest AIC among converged fits: "
        f"`{logit['best']}` (McFadden R2 {best['mcfadden_r2']:.3f}, out-of-sample AUC {best['cv_auc']:.3f} "
        "by 5-fold cross-validation over CAPTCHAs).",
        markdown(quality.drop(columns=["formula"])),
    ]
    if not lr.empty:
        parts += ["Likelihood-ratio tests, each specification against the previous one (logit_lr_tests.csv):",
                  markdown(lr)]
    parts += [f"Average marginal effects in the `{logit['best']}` specification (marginal_effects.csv):",
              markdown(logit["marginal_effects"])]
    digits, positions, confusions = errors
    parts += ["## Hardest digits and positions (digit_errors.csv, position_errors.csv, confusions.csv)",
              "Per-digit error rates pooled over every condition a model was tested in, with 95% Wilson intervals. "
              "Pooled rates mix levels: where a model collapses under heavy noise it tends to answer one digit, "
              "which then looks easy.",
              "\n".join(error_readings(digits, positions)),
              markdown(digits), markdown(positions),
              "The most frequent confusions (true -> read as; `none`: no character there):",
              markdown(confusions.groupby("model", sort=False).head(10))]
    write_text(path, "\n\n".join(parts) + "\n")
