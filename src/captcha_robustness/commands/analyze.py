"""captcha-analyze: statistics of one or more predictions tables, into tables, figures and a
report.

    captcha-analyze predictions=multirun/eval/2026-11-25_10-00-00 out_dir=analysis
    captcha-analyze 'predictions=[sweep_a,sweep_b/predictions.parquet]'

Writes into out_dir the tables summary, thresholds, logit (+ logit.txt), logit_quality,
logit_lr_tests, marginal_effects, comparisons, degradation, digit_errors, position_errors,
confusions, pair_errors, hardest (.csv); where the jobs' configs are found, source_digits
(.csv, .png), gallery.png and the damage / security tables; accuracy_vs_level.png,
accuracy_vs_damage.png and report.md. Tables of clean CAPTCHAs alone (no noise level above 0) get everything that
does not need noise: summary, comparisons, the error tables, hardest, source_digits (.csv,
.png), gallery.png and report.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf

from captcha_robustness.analysis.adversarial import COUNTERPARTS, adversarial_tables, split_adversarial
from captcha_robustness.analysis.corruption_scores import corruption_scores, defence_ranking, transfer_matrix
from captcha_robustness.analysis.hardest import (
    digit_and_position_errors,
    digit_readings,
    hardest_captchas,
    pair_errors,
    source_digit_errors,
)
from captcha_robustness.analysis.images import (
    Renderer,
    mid_levels,
    save_gallery,
    save_source_digits,
)
from captcha_robustness.analysis.load import load_predictions
from captcha_robustness.analysis.report import LEGACY_LAYOUT
from captcha_robustness.analysis.logit import analyse
from captcha_robustness.analysis.paired import comparisons, degradation
from captcha_robustness.analysis.report import write_report
from captcha_robustness.analysis.security import (
    damage_at_thresholds,
    damage_table,
    security_table,
)
from captcha_robustness.analysis.thresholds import thresholds
from captcha_robustness.commands.cli import run_dir
from captcha_robustness.config_dir import noise_families
from captcha_robustness.files import atomic_path, write_text
from captcha_robustness.results import plots
from captcha_robustness.results.stats import summarize
from captcha_robustness.validate import check_field

CONDITION = ["solver", "model_id", "model", "noise_type", "noise_level"]


def short_noise(train_noise: str) -> str:
    """A training noise as a label: a mixture of more than three types reads '22 types mixed:<level>'
    (' + ' separates an ensemble's members, '+' the types of one mixture)."""
    parts = []
    for part in train_noise.split(" + "):
        name, colon, level = part.partition(":")
        count = name.count("+") + 1
        parts.append(f"{count} types mixed{colon}{level}" if count > 3 else part)
    return " + ".join(parts)


def model_labels(table: pd.DataFrame) -> pd.Series:
    """A readable name per row's model: "cnn trained on <noise>" where that tells the models
    apart, else "<architecture> trained on <noise>" (e.g. SeedCNN), else "<solver> <model_id>";
    OCR solvers are their model_id (e.g. "tesseract-5.3.0 psm7")."""
    if "architecture" not in table:
        table = table.assign(architecture=None)
    models = table.groupby("model_id", sort=False)[["solver", "train_noise", "architecture"]].first()

    def named(kind: pd.Series) -> pd.Series:
        names = []
        for model_id, solver, noise, name in zip(models.index, models["solver"], models["train_noise"], kind):
            noise = short_noise(noise) if pd.notna(noise) else noise
            if pd.notna(noise) and " + " in model_id:
                names.append(f"ensemble of {model_id.count(' + ') + 1} trained on {noise}")
            elif pd.notna(noise):
                names.append(f"{name} trained on {noise}")
            else:
                names.append(model_id if model_id.startswith(solver) else f"{solver} {model_id}")
        return pd.Series(names, index=models.index)

    names = named(models["solver"])
    if not names.is_unique:
        names = named(models["architecture"].fillna(models["solver"]))
    if not names.is_unique:
        names = models["solver"] + " " + models.index.to_series()
    return table["model_id"].map(names)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per condition, with the layout(s) its CAPTCHAs were drawn in."""
    layouts = table["layout"] if "layout" in table else pd.Series(None, index=table.index, dtype=object)
    layouts = layouts.fillna(LEGACY_LAYOUT)
    rows = [{**dict(zip(CONDITION, key)), **summarize(group), "layout": "+".join(sorted(set(layouts[group.index])))}
            for key, group in table.groupby(CONDITION, sort=True)]
    return pd.DataFrame(rows)


def _count(cfg: DictConfig, field: str) -> int:
    return check_field(field, OmegaConf.select(cfg, field))


def image_outputs(table: pd.DataFrame, tables: dict[str, pd.DataFrame], renderer: Renderer, gallery: int,
                  captchas: int, out: Path, bootstrap: int = 200) -> list[str]:
    """gallery.png, and damage.csv, security.csv, security_thresholds.csv and
    accuracy_vs_damage.png (added to `tables`; only with noisy conditions, whose
    thresholds.csv they need), which re-render CAPTCHAs from the jobs' configs."""
    noisy = "thresholds.csv" in tables
    captchas = captchas if noisy else 0
    figures = []
    if gallery:
        mids = mid_levels(table, tables["thresholds.csv"]) if noisy else {}
        save_gallery(table, tables["hardest.csv"], renderer, mids, out / "gallery.png", count=gallery)
        figures.append("gallery.png")
    if captchas:
        damage = damage_table(table, renderer, captchas)
        tables["damage.csv"] = damage
        tables["security.csv"] = security_table(tables["summary.csv"], damage)
        tables["security_thresholds.csv"] = damage_at_thresholds(tables["thresholds.csv"], damage)
        tables["defence_ranking.csv"] = defence_ranking(table, damage, n_boot=bootstrap)
        figures += [p.name for p in plots.accuracy_vs_damage(tables["security.csv"], out)]
    return figures


def source_digits(table: pd.DataFrame, renderer: Renderer) -> tuple[pd.DataFrame | None, list[str]]:
    """source_digits.csv from the clean readings (None without any), and a note when the
    rows' labels do not match the digits their first job config draws."""
    clean = table[table["noise_level"] == 0]
    if clean.empty:
        return None, []
    test_digits = renderer.test_digits(clean)
    if test_digits is None:
        return None, ["Source digits skipped: the rows' labels are not the digits their first job config draws "
                      "(tables rendered from different digit sources)."]
    return source_digit_errors(clean, test_digits), []


def noise_statistics(table: pd.DataFrame, cfg: DictConfig) -> tuple[dict[str, pd.DataFrame], dict | None]:
    """The tables that need noise levels above 0 (thresholds, the regression, degradation) and
    the regression's results; ({}, None) for clean CAPTCHAs alone."""
    if not (table["noise_level"] > 0).any():
        return {}, None
    limits = thresholds(table, n_boot=cfg.bootstrap, seed=cfg.seed)
    limits.insert(2, "model", limits["model_id"].map(table.groupby("model_id")["model"].first()))
    logit = analyse(table, max_degree=cfg.logit.max_degree, cv_folds=cfg.logit.cv_folds,
                    digit_terms=bool(cfg.logit.digit_terms))
    per_noise, per_model = corruption_scores(table, baseline=cfg.mce_baseline)
    families = {f: names for f, names in noise_families().items() if table["noise_type"].isin(names).any()}
    transfer = {"transfer.csv": transfer_matrix(table, families)} if len(families) > 1 else {}
    return {**transfer, "thresholds.csv": limits, "logit.csv": logit["coefficients"], "logit_quality.csv": logit["quality"],
            "logit_lr_tests.csv": logit["lr_tests"], "marginal_effects.csv": logit["marginal_effects"],
            "degradation.csv": degradation(table), "corruption_scores.csv": per_noise, "mce.csv": per_model}, logit


def analyze(cfg: DictConfig) -> None:
    paths = list(cfg.predictions) if isinstance(cfg.predictions, ListConfig) else [cfg.predictions]
    gallery, captchas = _count(cfg, "images.gallery"), _count(cfg, "images.damage_captchas")
    source_count = _count(cfg, "images.source_digits")
    out = Path(cfg.out_dir) if cfg.out_dir else run_dir()
    table = load_predictions(paths)
    table["model"] = model_labels(table)
    table, adversarial = split_adversarial(table)
    if table.empty:  # crafted noise alone: read as any other noise
        table, adversarial = adversarial, adversarial.iloc[:0]
    summary = summary_table(table)
    noise_tables, logit = noise_statistics(table, cfg)
    readings = digit_readings(table)
    digits, positions, confusions = digit_and_position_errors(table, readings)
    tables = {"summary.csv": summary, **noise_tables, "comparisons.csv": comparisons(table),
              "digit_errors.csv": digits, "position_errors.csv": positions, "confusions.csv": confusions,
              "pair_errors.csv": pair_errors(table, readings), "hardest.csv": hardest_captchas(table)}
    notes = [] if logit else ["Clean CAPTCHAs only: the thresholds, the regression, degradation and image damage "
                              "need noise levels above 0, so those sections are left out."]
    out.mkdir(parents=True, exist_ok=True)  # only now: input the statistics refuse leaves no folder behind
    figures = []
    if logit:
        figures += [p.name for p in plots.accuracy_vs_level(summary.rename(columns={"model": "series"}), out)]
    renderer = Renderer.of(table)
    if renderer is None:
        notes.append("Source digits, gallery and image damage skipped: no job config (.hydra/config.yaml) of these "
                     "rows was found.")
    else:
        sources, source_notes = source_digits(table, renderer)
        notes += source_notes
        if sources is not None:
            tables["source_digits.csv"] = sources
            if source_count and not sources.empty:
                save_source_digits(sources, renderer.test_pool_images(), out / "source_digits.png", count=source_count)
                figures.append("source_digits.png")
        figures += image_outputs(table, tables, renderer, gallery, captchas, out, bootstrap=cfg.bootstrap)
    if not adversarial.empty:
        tables.update(adversarial_tables(table, adversarial, tables.get("damage.csv"),
                                         tables.get("defence_ranking.csv"), n_boot=cfg.bootstrap, seed=cfg.seed))
        figures += [p.name for p in plots.adversarial_curves(tables["adversarial_summary.csv"], summary,
                                                             COUNTERPARTS, out)]
        notes.append(f"{len(adversarial):,} readings of noise crafted against a surrogate are analysed in their own "
                     f"section (adversarial noise) and the defence ranking, not in the other tables.")
    for name, frame in tables.items():
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    written = [*tables, *figures]
    if logit:
        write_text(out / "logit.txt", "\n\n".join(f.summary_text() for f in logit["fits"]) + "\n")
        written.append("logit.txt")
    write_report(out, figures, sources=paths, notes=notes)
    print(f"analysed {len(table):,} rows; wrote {', '.join([*written, 'report.md'])} into {out}")


if __name__ == "__main__":
    from captcha_robustness.commands.entry import analyze

    analyze()
