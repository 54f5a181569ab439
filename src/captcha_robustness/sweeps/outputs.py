"""Write a sweep's combined results: tables (atomically) and figures.

Files in the output folder:
- predictions.parquet: all finished jobs' per-CAPTCHA rows (columns `sweep`, `job` added)
- summary.csv: one row per job (status done / failed / missing, the overrides that vary,
  model, noise type and level, n, acc_seq with its Wilson interval, acc_mean, acc_digit_k)
- summary_over_seeds.csv: when `seed` varies, mean / std / min / max over seeds
- accuracy_vs_level.png, accuracy_by_position.png: curves against the noise level
- robustness_matrix.csv / .png: acc_seq per model (rows) and test condition (columns), when
  the jobs evaluate several models
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from captcha_robustness.files import atomic_path
from captcha_robustness.results import plots
from captcha_robustness.results.schema import FILE_NAME as PREDICTIONS_FILE
from captcha_robustness.results.stats import over_seeds
from captcha_robustness.sweeps.collect import Combined

# Overrides that set the x axis or the line of a curve rather than naming a series.
_NOT_SERIES = {"noise", "noise.level", "noise.name", "seed", "ckpt_path", "model_id"}


def series_labels(combined: Combined) -> pd.Series:
    """What one curve stands for: the model, when the jobs evaluate several models (labelled by
    its training noise, e.g. "trained on none", or by its model_id), and the other overrides
    that vary."""
    summary = combined.summary
    done = summary[summary["status"] == "done"]
    parts = pd.DataFrame(index=summary.index)
    if "model_id" in done and done["model_id"].nunique() > 1 and done.groupby("model_id").size().min() > 1:
        parts["model"] = _model_names(done).reindex(summary["model_id"]).to_numpy()
    for key in combined.varying:
        if key not in _NOT_SERIES:
            parts[key] = key + "=" + summary[key].astype(str)
    if parts.shape[1] == 0:
        return pd.Series("all", index=summary.index)
    return parts.astype(str).agg(", ".join, axis=1)


def _model_names(done: pd.DataFrame) -> pd.Series:
    """model_id -> "trained on <noise>" where that names each model apart, else the model_id."""
    models = done.groupby("model_id")[["train_noise"]].first()
    names = pd.Series(["trained on " + str(n) if pd.notna(n) else m for m, n in zip(models.index, models["train_noise"])],
                      index=models.index)
    return names if names.is_unique else pd.Series(models.index, index=models.index)


def write_combined(combined: Combined, out: Path) -> list[Path]:
    """Write every table and figure into `out`; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    summary = combined.summary.copy()
    summary.insert(3, "series", series_labels(combined))
    if not combined.predictions.empty:
        written.append(_write(out / PREDICTIONS_FILE, combined.predictions.to_parquet, index=False))
    written.append(_write(out / "summary.csv", summary.to_csv, index=False))
    curves = summary[summary["status"] == "done"]
    if "seed" in combined.varying and not curves.empty:
        by = ["series", "noise_type", "noise_level"]
        seeds = over_seeds(summary, by)
        written.append(_write(out / "summary_over_seeds.csv", seeds.to_csv, index=False))
    if curves.empty:
        return written
    written += plots.accuracy_vs_level(curves, out, spread_over_seeds="seed" in combined.varying)
    written += plots.accuracy_by_position(curves, out)
    if curves["series"].nunique() > 1 and curves["noise_level"].notna().any():
        matrix = robustness_matrix(curves)
        written.append(_write(out / "robustness_matrix.csv", matrix.to_csv))
        written += plots.robustness_heatmap(matrix, out)
    return written


def robustness_matrix(curves: pd.DataFrame) -> pd.DataFrame:
    """acc_seq (mean over seeds) with rows: series (model), columns: test condition."""
    frame = curves[curves["noise_level"].notna()].copy()
    frame["condition"] = [("clean" if t == "none" else f"{t} {lvl:.2f}")
                          for t, lvl in zip(frame["noise_type"], frame["noise_level"])]
    frame = frame.sort_values(["noise_type", "noise_level"], key=lambda c: c.replace("none", "")
                              if c.name == "noise_type" else c)
    columns = list(dict.fromkeys(frame["condition"]))
    rows = list(dict.fromkeys(curves["series"]))  # job order: the order the models were given in
    matrix = frame.pivot_table(index="series", columns="condition", values="acc_seq", aggfunc="mean")
    return matrix.loc[[r for r in rows if r in matrix.index], columns]


def _write(path: Path, writer, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp, **kwargs)
    return path
