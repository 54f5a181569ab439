"""captcha-analyze: statistics of one or more predictions tables, into tables, figures and a
report.

    captcha-analyze predictions=multirun/eval/2026-11-25_10-00-00 out_dir=analysis
    captcha-analyze 'predictions=[sweep_a,sweep_b/predictions.parquet]'

Writes into out_dir: summary.csv, thresholds.csv, logit.csv, logit.txt, logit_quality.csv,
logit_lr_tests.csv, marginal_effects.csv, digit_errors.csv, position_errors.csv,
confusions.csv, accuracy_vs_level.png and report.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, ListConfig

from captcha_robustness.analysis.hardest import digit_and_position_errors
from captcha_robustness.analysis.load import load_predictions
from captcha_robustness.analysis.logit import analyse
from captcha_robustness.analysis.report import write_report
from captcha_robustness.analysis.thresholds import thresholds
from captcha_robustness.cli import hydra_entry, run_dir
from captcha_robustness.files import atomic_path, write_text
from captcha_robustness.sweeps import plots
from captcha_robustness.sweeps.stats import summarize

CONDITION = ["solver", "model_id", "model", "noise_type", "noise_level"]


def model_labels(table: pd.DataFrame) -> pd.Series:
    """A readable name per row's model: "cnn trained on <noise>" where that tells the models
    apart, else "<solver> <model_id>"."""
    models = table.groupby("model_id", sort=False)[["solver", "train_noise"]].first()
    named = [f"{s} trained on {n}" if pd.notna(n) else f"{s} {m}"
             for m, s, n in zip(models.index, models["solver"], models["train_noise"])]
    names = pd.Series(named, index=models.index)
    if not names.is_unique:
        names = models["solver"] + " " + models.index.to_series()
    return table["model_id"].map(names)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    rows = [{**dict(zip(CONDITION, key)), **summarize(group)}
            for key, group in table.groupby(CONDITION, sort=True)]
    return pd.DataFrame(rows)


def analyze(cfg: DictConfig) -> None:
    paths = list(cfg.predictions) if isinstance(cfg.predictions, ListConfig) else [cfg.predictions]
    out = Path(cfg.out_dir) if cfg.out_dir else run_dir()
    out.mkdir(parents=True, exist_ok=True)
    table = load_predictions(paths)
    table["model"] = model_labels(table)
    summary = summary_table(table)
    limits = thresholds(table, n_boot=cfg.bootstrap, seed=cfg.seed)
    limits.insert(2, "model", limits["model_id"].map(table.groupby("model_id")["model"].first()))
    logit = analyse(table, max_degree=cfg.logit.max_degree, cv_folds=cfg.logit.cv_folds)
    digits, positions, confusions = digit_and_position_errors(table)
    tables = {"summary.csv": summary, "thresholds.csv": limits, "logit.csv": logit["coefficients"],
              "logit_quality.csv": logit["quality"], "logit_lr_tests.csv": logit["lr_tests"],
              "marginal_effects.csv": logit["marginal_effects"], "digit_errors.csv": digits,
              "position_errors.csv": positions, "confusions.csv": confusions}
    for name, frame in tables.items():
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    write_text(out / "logit.txt", "\n\n".join(f.summary_text() for f in logit["fits"]) + "\n")
    curves = summary.rename(columns={"model": "series"})
    figures = plots.accuracy_vs_level(curves, out)
    write_report(out / "report.md", summary, limits, logit, [p.name for p in figures], sources=paths, rows=len(table),
                 errors=(digits, positions, confusions))
    print(f"analysed {len(table):,} rows; wrote {', '.join([*tables, 'logit.txt', *[p.name for p in figures], 'report.md'])} "
          f"into {out}")


main = hydra_entry("analyze", analyze)

if __name__ == "__main__":
    main()
