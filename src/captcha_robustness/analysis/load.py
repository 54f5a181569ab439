"""Predictions tables from files or sweep folders, checked against the schema (results/schema.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from captcha_robustness.errors import ConfigError
from captcha_robustness.results.schema import FILE_NAME as PREDICTIONS_FILE
from captcha_robustness.results.schema import check_columns
from captcha_robustness.sweeps.collect import combine


def load_predictions(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Rows of every path: a .parquet file, or a sweep folder (its combined predictions.parquet,
    or its jobs' tables combined when the sweep never wrote one)."""
    if not paths:
        raise ConfigError("predictions: give at least one predictions table or sweep folder")
    tables = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if (path / PREDICTIONS_FILE).is_file():
                path = path / PREDICTIONS_FILE
            else:
                combined = combine([path]).predictions
                if combined.empty:
                    raise ConfigError(f"predictions: {path} holds no predictions table and no finished sweep jobs")
                tables.append(combined)
                continue
        if not path.is_file():
            raise ConfigError(f"predictions: no such file or folder: {path}")
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ConfigError(f"predictions: {path} is not a Parquet predictions table ({type(exc).__name__})") from exc
        if "sweep" not in table.columns:  # one run's own table: its config is beside it
            table.insert(0, "job", "")
            table.insert(0, "sweep", str(path.parent))
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    check_columns(table)
    if table.empty:
        raise ConfigError(f"predictions: {', '.join(map(str, paths))}: no rows to analyse (an empty table)")
    table["model_id"] = table["model_id"].astype(str)
    return table
