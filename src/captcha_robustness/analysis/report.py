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


def comparison_readings(comparisons: pd.DataFrame, shown: int = 3) -> list[str]:
    """`comparisons` sorted largest |diff| first."""
    if comparisons.empty:
        return ["- No pairs to compare (one solver/model and one noise type)."]
    significant = comparisons[comparisons["p_holm"] < 0.05]
    lines = [f"- {len(significant)} of {len(comparisons)} paired comparisons differ at Holm-adjusted p < 0.05."]
    for row in comparisons.head(shown).itertuples():
        where = ("clean" if row.noise_level == 0 else f"{row.noise_type} {row.noise_level:g}") + (
            f", {row.model}" if pd.notna(row.model) else "")
        lines.append(f"- {row.a} vs {row.b} ({where}): accuracy {row.acc_a:.4f} vs {row.acc_b:.4f}, difference "
                     f"{row.diff:+.4f} (95% CI {row.diff_ci_low:+.4f} to {row.diff_ci_high:+.4f}) on {row.n:,} "
                     f"CAPTCHAs; {row.a_only:,} vs {row.b_only:,} solved by one side only, p_holm {row.p_holm:.3g}.")
    return lines


def degradation_readings(degradation: pd.DataFrame) -> list[str]:
    lines = []
    for (model, noise), rows in degradation.groupby(["model", "noise_type"], sort=False):
        half = rows[rows["broken"] >= 0.5]
        if half.empty:
            lines.append(f"- {model}, {noise}: fewer than half of the clean-solved CAPTCHAs break at every level tested "
                         f"(at most {rows['broken'].max():.3f}).")
        else:
            first = half.iloc[0]
            lines.append(f"- {model}, {noise}: half of the clean-solved CAPTCHAs break from level {first.noise_level:g} "
                         f"on ({first.broken:.3f} broken, {first.digits_lost:.2f} digits lost per CAPTCHA).")
    return lines


def source_readings(sources: pd.DataFrame, shown: int = 3) -> list[str]:
    lines = []
    for model, rows in sources.groupby("model", sort=False):
        repeated = rows[rows["errors"] >= 2]
        worst = ", ".join(f"#{r.test_digit} (a {r.digit} read as {r.read_as}, {r.errors} of {r.readings})"
                          for r in rows.head(shown).itertuples())
        lines.append(f"- {model}: {rows['errors'].sum():,} digit errors from {len(rows):,} test digits; the "
                     f"{len(repeated):,} misread two or more times account for {repeated['errors'].sum():,} of them "
                     f"({repeated['errors'].sum() / rows['errors'].sum():.0%}). Most misread: {worst}.")
    return lines


def security_readings(at_50: pd.DataFrame) -> list[str]:
    lines = []
    for model, rows in at_50.dropna(subset=["ssim_at_50"]).groupby("model", sort=False):
        parts = [f"{r.noise_type} at level {r.level_50:.3f} (SSIM {r.ssim_at_50:.3f}, PSNR {r.psnr_at_50:.1f} dB)"
                 for r in rows.itertuples()]
        verdict = "."
        if len(rows) > 1:
            by_ssim, by_psnr = rows.loc[rows["ssim_at_50"].idxmax()], rows.loc[rows["psnr_at_50"].idxmax()]
            verdict = f": {by_ssim.noise_type} gets there with the least visible harm by SSIM" + (
                "." if by_ssim.noise_type == by_psnr.noise_type else f", {by_psnr.noise_type} by PSNR.")
        lines.append(f"- To halve {model}'s success: " + "; ".join(parts) + verdict)
    return lines or ["- No solver/model crosses 50% in the levels tested."]


def _head(frame: pd.DataFrame, rows: int, name: str) -> list[str]:
    if len(frame) <= rows:
        return [markdown(frame)]
    return [markdown(frame.head(rows)), f"(First {rows} of {len(frame):,} rows; all in {name}.)"]


def noise_sections(tables: dict[str, pd.DataFrame], logit: dict) -> list[str]:
    """The thresholds and regression sections (tables with noise levels above 0)."""
    limits, quality, lr = tables["thresholds.csv"], logit["quality"], logit["lr_tests"]
    best = quality.set_index("spec").loc[logit["best"]]
    parts = [
        "## Robustness thresholds (thresholds.csv)",
        "The noise level at which whole-CAPTCHA accuracy falls to 50% (non-increasing fit of accuracy against "
        "level), with 95% intervals from a bootstrap over CAPTCHAs; `auc` is the mean accuracy over the level range.",
        "\n".join(threshold_readings(limits)),
        markdown(limits[["model", "noise_type", "level_50", "ci_low", "ci_high", "auc", "auc_ci_low", "auc_ci_high"]]),
        "## Logistic regression of success (logit.csv, logit.txt)",
        f"Each noise type gets its own degree-{logit['degree']} polynomial in the level from a shared clean "
        "intercept; standard errors are clustered by CAPTCHA. Lowest AIC among converged fits without perfect "
        "separation: "
        f"`{logit['best']}` (McFadden R2 {best['mcfadden_r2']:.3f}, out-of-sample AUC {best['cv_auc']:.3f} "
        "by 5-fold cross-validation over CAPTCHAs).",
        markdown(quality.drop(columns=["formula"])),
    ]
    if not lr.empty:
        parts += ["Likelihood-ratio tests, each specification against the previous one (logit_lr_tests.csv):",
                  markdown(lr)]
    parts += [f"Average marginal effects in the `{logit['best']}` specification (marginal_effects.csv):",
              markdown(logit["marginal_effects"])]
    return parts


def degradation_section(degradation: pd.DataFrame) -> list[str]:
    return ["## Degradation from each CAPTCHA's clean reading (degradation.csv)",
            "Each noisy reading against the same model's reading of the same CAPTCHA without noise: `broken` is "
            "the share of clean-solved CAPTCHAs that fail, `fixed` the share of clean-failed ones that succeed, "
            "`digits_lost` the mean drop in digits right.",
            "\n".join(degradation_readings(degradation)) or "No clean (level 0) readings to compare with.",
            *_head(degradation, 40, "degradation.csv")]


def write_report(path: Path, tables: dict[str, pd.DataFrame], logit: dict | None, figures: list[str], *,
                 sources: list[str], rows: int, notes: list[str]) -> None:
    """`logit` None (clean CAPTCHAs alone): no thresholds, regression or degradation sections."""
    summary = tables["summary.csv"]
    clean = summary[summary["noise_level"] == 0].drop_duplicates("model_id")
    figure = lambda name: [f"![{name}]({name})"] if name in figures else []  # noqa: E731
    parts = [
        "# Analysis of CAPTCHA predictions",
        f"Sources: {', '.join(map(str, sources))}; {rows:,} rows, "
        f"{summary['model_id'].nunique()} solver/model(s), {summary['noise_type'].nunique()} noise type(s).",
        *notes,
        "## Accuracy by condition (summary.csv)",
        "Clean whole-CAPTCHA accuracy: " + ("; ".join(f"{r.model} {r.acc_seq:.3f}" for r in clean.itertuples())
                                           or "no clean condition tested") + ".",
        markdown(summary[["model", "noise_type", "noise_level", "n", "acc_seq", "acc_seq_ci_low", "acc_seq_ci_high",
                          "acc_mean", "digits_right"]]),
        *[f"![{name}]({name})" for name in figures if name.startswith("accuracy_vs_level")],
    ]
    if logit is not None:
        parts += noise_sections(tables, logit)
    comparisons = tables["comparisons.csv"]
    comparisons = comparisons.reindex(comparisons["diff"].abs().sort_values(ascending=False).index)
    parts += ["## Paired comparisons (comparisons.csv)",
              "Two solvers/models in the same condition, or two noise types at the same level for one model, on the "
              "CAPTCHAs both sides read: `diff` = acc_a - acc_b with a 95% interval for paired proportions; "
              "`a_only` / `b_only`: CAPTCHAs only one side solved; p-values by McNemar's exact test, Holm-adjusted "
              "over the whole table (`p_holm`).",
              "\n".join(comparison_readings(comparisons)),
              *_head(comparisons, 20, "comparisons.csv")]
    if "degradation.csv" in tables:
        parts += degradation_section(tables["degradation.csv"])
    parts += ["## Hardest digits, positions and pairs (digit_errors.csv, position_errors.csv, pair_errors.csv, "
              "confusions.csv)",
              "Error rates pooled over every condition a model was tested in; 95% intervals clustered by CAPTCHA. "
              "Pooled rates mix levels: where a model collapses under heavy noise it tends to answer one digit, "
              "which then looks easy.",
              "\n".join(error_readings(tables["digit_errors.csv"], tables["position_errors.csv"])),
              markdown(tables["digit_errors.csv"]), markdown(tables["position_errors.csv"]),
              "Adjacent digit pairs with the highest `lift` (error rate of the pair over what the two digits' own "
              "error rates in the same conditions predict if independent):",
              markdown(tables["pair_errors.csv"].groupby("model", sort=False).head(5)),
              "The most frequent confusions (true -> read as; `none`: no character there):",
              markdown(tables["confusions.csv"].groupby("model", sort=False).head(10))]
    hardest = tables["hardest.csv"]
    parts += ["## The hardest CAPTCHAs (hardest.csv)",
              "`difficulty`: a CAPTCHA's failures minus those expected from the accuracy of each condition it was "
              "read in, per reading, pooled over every solver/model and condition; `observations` backs each score.",
              markdown(hardest.head(10)), *figure("gallery.png")]
    if "source_digits.csv" in tables:
        sources = tables["source_digits.csv"]
        parts += ["## The test digits behind the errors (source_digits.csv)",
                  "Clean readings only. Every test CAPTCHA draws its digits from the digit source's test pool, so "
                  "one hard handwritten digit recurs in several CAPTCHAs; `test_digit` is its index in that pool "
                  "(for digits=mnist, MNIST's test-set index), `readings` how often a model read it.",
                  "\n".join(source_readings(sources)),
                  markdown(sources.groupby("model", sort=False).head(10)), *figure("source_digits.png")]
    if "security.csv" in tables:
        at_50 = tables["security_thresholds.csv"]
        parts += ["## Security: accuracy lost per unit of image damage (damage.csv, security.csv, "
                  "security_thresholds.csv)",
                  "Damage is measured on re-rendered CAPTCHAs against their clean versions (PSNR; SSIM, where 1 is "
                  "identical). A noise that brings a solver to 50% at a higher SSIM hurts the machine more for less "
                  "visible harm to a person.",
                  "\n".join(security_readings(at_50)), markdown(at_50), markdown(tables["damage.csv"]),
                  *figure("accuracy_vs_damage.png")]
    write_text(path, "\n\n".join(parts) + "\n")
