"""report.md of an analysis folder, written from the folder's tables alone (so it can be
rewritten from committed tables): the findings first, each with its number and interval, and
the figures; then compact tables that support them. Tables of hundreds of rows stay in the
CSVs the report links."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from captcha_robustness.analysis.adversarial import threshold_readings
from captcha_robustness.files import write_text

TABLES = ("summary", "thresholds", "logit_quality", "logit_lr_tests", "marginal_effects", "comparisons",
          "degradation", "digit_errors", "position_errors", "pair_errors", "confusions", "hardest",
          "source_digits", "damage", "security", "security_thresholds", "mce", "defence_ranking", "transfer",
          "adversarial_thresholds", "adversarial_transfer")
# Tables written before the predictions table recorded data.render.layout were all drawn in this one.
LEGACY_LAYOUT = "touching"
FIGURES = ("accuracy_vs_level.png", "accuracy_vs_damage.png", "gallery.png", "source_digits.png",
           "adversarial_curves.png")


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    cells = frame.round(digits).astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * frame.shape[1]]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


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


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The analysis tables found in `folder`, by name without .csv (a table written without
    rows or columns reads as an empty frame)."""
    tables = {}
    for name in TABLES:
        path = folder / f"{name}.csv"
        if path.is_file():
            try:
                tables[name] = pd.read_csv(path, dtype={"pair": str, "label": str})  # keeps "02" as is
            except pd.errors.EmptyDataError:
                tables[name] = pd.DataFrame()
    return tables


def best_specification(quality: pd.DataFrame) -> pd.Series:
    """The regression captcha-analyze reports: lowest AIC among converged fits without separation."""
    usable = quality[quality["converged"].astype(bool) & ~quality["separation"].astype(bool)]
    return (usable if not usable.empty else quality).sort_values("aic").iloc[0]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def clean_accuracy(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["noise_level"] == 0].drop_duplicates("model_id")


def findings(t: dict[str, pd.DataFrame], figures: list[str]) -> list[str]:
    """The answer in a few sentences, each with its number and interval."""
    lines = []
    clean = clean_accuracy(t["summary"])
    if not clean.empty:
        lines.append("- **Clean accuracy** (whole CAPTCHA, 95% Wilson interval): " + "; ".join(
            f"{r.model} {_pct(r.acc_seq)} ({_pct(r.acc_seq_ci_low)}-{_pct(r.acc_seq_ci_high)})"
            for r in clean.itertuples()) + ".")
    if "thresholds" in t:
        crossed = t["thresholds"].dropna(subset=["level_50"])
        if not crossed.empty:
            lines.append("- **Where each solver falls to 50%** (noise level, the fraction of pixels hit; bootstrap "
                         "interval): " + "; ".join(
                             f"{r.model}, {r.noise_type} {r.level_50:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f})"
                             for r in crossed.itertuples()) + ".")
    comparisons = t.get("comparisons", pd.DataFrame())
    if not comparisons.empty and "compared" in comparisons:
        for kind, rows in comparisons.groupby("compared", sort=False):
            significant = rows[rows["p_holm"] < 0.05]
            lead = (significant["diff"] > 0).sum()
            lines.append(f"- **Paired comparisons of {kind}**: {len(significant)} of {len(rows)} differ at Holm "
                         f"p < 0.05; in {lead} of them the first side ({rows['a'].iloc[0]}) reads more.")
    if "security_thresholds" in t:
        at_50 = t["security_thresholds"].dropna(subset=["ssim_at_50"])
        if not at_50.empty:
            lines.append("- **Harm to the image at the 50% point** (SSIM to the clean CAPTCHA, 1 = identical; PSNR): "
                         + "; ".join(f"{r.model}, {r.noise_type} SSIM {r.ssim_at_50:.2f} ({r.psnr_at_50:.1f} dB)"
                                     for r in at_50.itertuples()) + ".")
    digits = t["digit_errors"]
    if not digits.empty:
        hardest = digits.groupby("model", sort=False).head(1)
        lines.append("- **Hardest digit** (error rate over every condition, interval clustered by CAPTCHA): " + "; ".join(
            f"{r.model} {r.digit} ({_pct(r.error_rate)}, {_pct(r.ci_low)}-{_pct(r.ci_high)})"
            for r in hardest.itertuples()) + ".")
    if "logit_quality" in t:
        best = best_specification(t["logit_quality"])
        lines.append(f"- **Logistic regression of success**: the best specification, `{best['spec']}`, has McFadden "
                     f"R2 {best['mcfadden_r2']:.3f} and an out-of-sample AUC of {best['cv_auc']:.3f}.")
    lines += [f"![{name}]({name})" for name in FIGURES[:2] if name in figures]
    return lines


def accuracy_at_levels(summary: pd.DataFrame, levels: tuple[float, ...] = (0.1, 0.3, 0.5)) -> pd.DataFrame:
    """Whole-CAPTCHA accuracy per model: clean, and each noise type at a few levels."""
    frame = summary.assign(condition=[("clean" if lvl == 0 else f"{t} {lvl:g}")
                                      for t, lvl in zip(summary["noise_type"], summary["noise_level"])])
    frame = frame[(frame["noise_level"] == 0) | frame["noise_level"].round(6).isin(levels)]
    table = frame.pivot_table(index="model", columns="condition", values="acc_seq", aggfunc="first", sort=False)
    columns = ["clean"] + sorted(c for c in table.columns if c != "clean")
    return table.reindex(columns=[c for c in columns if c in table.columns]).reset_index()


def noise_sections(t: dict[str, pd.DataFrame]) -> list[str]:
    """The thresholds and regression sections (tables with noise levels above 0)."""
    limits, quality = t["thresholds"], t["logit_quality"]
    best = best_specification(quality)
    degree = best["formula"].count("level**") + 1
    parts = [
        "## Robustness thresholds (thresholds.csv)",
        "The noise level at which whole-CAPTCHA accuracy falls to 50% (non-increasing fit of accuracy against "
        "level), with 95% intervals from a bootstrap over CAPTCHAs; `auc` is the mean accuracy over the level range.",
        markdown(limits[["model", "noise_type", "level_50", "ci_low", "ci_high", "auc", "auc_ci_low", "auc_ci_high"]]),
        "## Logistic regression of success (logit.csv, logit.txt, marginal_effects.csv)",
        f"Each noise type gets its own degree-{degree} polynomial in the level from a shared clean "
        "intercept; standard errors are clustered by CAPTCHA. Lowest AIC among converged fits without perfect "
        f"separation: `{best['spec']}` (McFadden R2 {best['mcfadden_r2']:.3f}, out-of-sample AUC "
        f"{best['cv_auc']:.3f} by cross-validation over CAPTCHAs). Its coefficients are in logit.csv, its average "
        "marginal effects in marginal_effects.csv.",
        markdown(quality.drop(columns=["formula"])),
    ]
    if not t["logit_lr_tests"].empty:
        parts += ["Likelihood-ratio tests, each specification against the previous one (logit_lr_tests.csv):",
                  markdown(t["logit_lr_tests"])]
    return parts


def error_sections(t: dict[str, pd.DataFrame]) -> list[str]:
    digits, positions = t["digit_errors"], t["position_errors"]
    by_digit = digits.pivot_table(index="model", columns="digit", values="error_rate", sort=False).reset_index()
    by_position = positions.pivot_table(index="model", columns="position", values="error_rate",
                                        sort=False).reset_index()
    confusions = [f"- {model}: " + ", ".join(f"{r.true} -> {r.predicted} ({r.share_of_true:.1%})"
                                            for r in rows.head(3).itertuples())
                  for model, rows in t["confusions"].groupby("model", sort=False)]
    return ["## Hardest digits, positions and pairs (digit_errors.csv, position_errors.csv, pair_errors.csv, "
            "confusions.csv)",
            "Error rates pooled over every condition a model was tested in; 95% intervals, clustered by CAPTCHA, "
            "are in the CSVs. Pooled rates mix levels: where a model collapses under heavy noise it tends to answer "
            "one digit, which then looks easy.",
            "\n".join(error_readings(digits, positions)),
            "Error rate by digit:", markdown(by_digit), "Error rate by position:", markdown(by_position),
            "Adjacent digit pairs with the highest `lift` (the pair's error rate over what the two digits' own rates "
            "predict if independent):", markdown(t["pair_errors"].groupby("model", sort=False).head(2)[
                ["model", "pair", "n", "error_rate", "expected_rate", "lift"]]),
            "The most frequent confusions (true -> read as; share of that true digit):", "\n".join(confusions)]


def damage_by_level(damage: pd.DataFrame) -> pd.DataFrame:
    """SSIM and PSNR per level (rows) and noise type (columns)."""
    wide = damage.pivot_table(index="noise_level", columns="noise_type", values=["ssim", "psnr"])
    wide.columns = [f"{noise} {metric}" for metric, noise in wide.columns]
    return wide[sorted(wide.columns)].reset_index()


def adversarial_section(t: dict[str, pd.DataFrame], figures: list[str]) -> list[str]:
    limits = t["adversarial_thresholds"]
    return ["## Adversarial noise (adversarial_summary.csv, adversarial_thresholds.csv, adversarial_transfer.csv)",
            "Noise crafted against a surrogate model within a budget: `adversarial_l0` sets at most a fraction `level` "
            "of pixels to 0 or 1 (random counterpart: salt_and_pepper), `adversarial_linf` moves every pixel by at "
            "most `level` (random counterpart: uniform). Per reading model, each attack is `white-box` (crafted "
            "against that model), `member` (against one network of a reading ensemble) or `transfer` (crafted "
            "against the other models, pooled). The budget at which whole-CAPTCHA accuracy falls to 50%, with 95% "
            "bootstrap intervals over CAPTCHAs, against the random counterpart's level:",
            "\n".join(threshold_readings(limits)),
            markdown(limits[["model", "noise_type", "level_50", "ci_low", "ci_high", "auc", "ssim_at_50"]]),
            *(["![adversarial_curves.png](adversarial_curves.png)"] if "adversarial_curves.png" in figures else []),
            "Accuracy averaged over the budgets, per attack and surrogate (rows) and reading model (columns):",
            markdown(t["adversarial_transfer"])]


def layout_line(summary: pd.DataFrame) -> str:
    """Which layout (docs/data.md) the CAPTCHAs read here were drawn in."""
    if "layout" not in summary:
        return f"CAPTCHAs drawn in the {LEGACY_LAYOUT} layout (a table from before the layout was recorded)."
    layouts = sorted({name for names in summary["layout"].dropna() for name in str(names).split("+")})
    return f"CAPTCHAs drawn in the {' and '.join(layouts)} layout{'s' if len(layouts) > 1 else ''}."


def write_report(folder: Path, figures: list[str] | None = None, *, sources: list[str] | None = None,
                 notes: list[str] | None = None) -> Path:
    """report.md in `folder`, from the analysis tables there. `figures`: the PNGs to show
    (default: those of FIGURES found in the folder)."""
    t = read_tables(folder)
    figures = [f for f in FIGURES if (folder / f).is_file()] if figures is None else figures
    figure = lambda name: [f"![{name}]({name})"] if name in figures else []  # noqa: E731
    summary = t["summary"]
    found = findings(t, figures)
    header = (f"{int(summary.drop_duplicates(['model_id', 'noise_type', 'noise_level'])['n'].sum()):,} readings of "
              f"{summary['model_id'].nunique()} solver/model(s) under {summary['noise_type'].nunique()} noise "
              f"type(s), {len(summary)} conditions in all (summary.csv)")
    parts = ["# Analysis of CAPTCHA predictions",
             (f"Sources: {', '.join(map(str, sources))}. " if sources else "") + header + ". " + layout_line(summary),
             *(notes or []), "## Findings", "\n".join(line for line in found if line.startswith("-")),
             *[line for line in found if line.startswith("!")],
             "## Accuracy at a glance (summary.csv)",
             "Whole-CAPTCHA accuracy, clean and at three levels of each noise type; every level, with intervals and "
             "per-position accuracy, is in summary.csv.",
             markdown(accuracy_at_levels(summary))]
    if "thresholds" in t and "logit_quality" in t:
        parts += noise_sections(t)
    comparisons = t.get("comparisons", pd.DataFrame(columns=["diff"]))
    comparisons = comparisons.reindex(comparisons["diff"].abs().sort_values(ascending=False, kind="stable").index)
    readings = comparison_readings(comparisons) if "comparisons" in t else [
        "- comparisons.csv is not in this folder (a committed study may leave the large table out)."]
    parts += ["## Paired comparisons (comparisons.csv)",
              "Two solvers/models in the same condition, or two noise types at the same level for one model, on the "
              "CAPTCHAs both sides read: `diff` = acc_a - acc_b with a 95% interval for paired proportions; "
              "`a_only` / `b_only`: CAPTCHAs only one side solved; p-values by McNemar's exact test, Holm-adjusted "
              "over the whole table (`p_holm`). The largest differences:",
              "\n".join(readings)]
    if "degradation" in t:
        parts += ["## Degradation from each CAPTCHA's clean reading (degradation.csv)",
                  "Each noisy reading against the same model's reading of the same CAPTCHA without noise: `broken` "
                  "is the share of clean-solved CAPTCHAs that fail.",
                  "\n".join(degradation_readings(t["degradation"])) or "No clean (level 0) readings to compare with."]
    parts += error_sections(t)
    parts += ["## The hardest CAPTCHAs (hardest.csv)",
              "`difficulty`: a CAPTCHA's failures minus those expected from the accuracy of each condition it was "
              "read in, per reading, pooled over every solver/model and condition; `observations` backs each score.",
              *([markdown(t["hardest"].head(10))] if "hardest" in t else []), *figure("gallery.png")]
    if "source_digits" in t:
        parts += ["## The test digits behind the errors (source_digits.csv)",
                  "Clean readings only. Every test CAPTCHA draws its digits from the digit source's test pool, so "
                  "one hard handwritten digit recurs in several CAPTCHAs; `test_digit` is its index in that pool "
                  "(for digits=mnist, MNIST's test-set index).",
                  "\n".join(source_readings(t["source_digits"])), *figure("source_digits.png")]
    if "security_thresholds" in t:
        parts += ["## Security: accuracy lost per unit of image damage (damage.csv, security.csv, "
                  "security_thresholds.csv)",
                  "Damage is measured on re-rendered CAPTCHAs against their clean versions (PSNR; SSIM, where 1 is "
                  "identical). A noise that brings a solver to 50% at a higher SSIM hurts the machine more for less "
                  "visible harm to a person.",
                  "\n".join(security_readings(t["security_thresholds"])), markdown(t["security_thresholds"]),
                  "Image damage by level (SSIM, PSNR in dB):", markdown(damage_by_level(t["damage"])),
                  *figure("accuracy_vs_damage.png")]
    if not t.get("mce", pd.DataFrame()).empty:
        parts += ["## Corruption accuracy and error (mce.csv, corruption_scores.csv)",
                  "Per model: the accuracy averaged over every noise type and level above 0 (RobustBench's corruption "
                  "accuracy) and, with `mce_baseline=MODEL`, the corruption error mCE and relative mCE: each noise "
                  "type's errors (or errors added to the clean error) summed over levels, over the baseline's, "
                  "averaged over noise types (Hendrycks and Dietterich, 2019).",
                  markdown(t["mce"].dropna(axis=1, how="all"))]
    if not t.get("transfer", pd.DataFrame()).empty:
        parts += ["## Transfer across corruption families (transfer.csv)",
                  "Per model: whole-CAPTCHA accuracy on clean CAPTCHAs, then averaged over each family's noise types "
                  "and the levels above 0, and over every noise type (`all`). `trained_on` names the families its "
                  "training noise held: the other columns measure protection against corruptions it never saw.",
                  markdown(t["transfer"])]
    if "adversarial_thresholds" in t:
        parts += adversarial_section(t, figures)
    if not t.get("defence_ranking", pd.DataFrame()).empty:
        parts += ["## Defence ranking (defence_ranking.csv)",
                  "Per model and noise type: whole-CAPTCHA accuracy removed per unit of image similarity removed "
                  "(the slope of clean accuracy minus accuracy against 1 - SSIM over the levels, through the origin), "
                  "with a 95% bootstrap interval over CAPTCHAs. Rank 1 removes the most accuracy for the least harm "
                  "to a person's view of the CAPTCHA.",
                  markdown(t["defence_ranking"])]
    path = folder / "report.md"
    write_text(path, "\n\n".join(parts) + "\n")
    return path
