"""The combined results of one or more sweep folders: every job's status, all per-CAPTCHA rows,
and one summary row per job.

A sweep folder holds `sweep.json` (the planned jobs' overrides, written when the sweep
starts) and one folder per job with `.hydra/overrides.yaml`. A planned job is `done` when its
folder is complete (`done.json`), `failed` when it left `error.txt`, and `missing` otherwise
(killed, still running, or never started): its summary row says so and carries no numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from captcha_robustness.files import read_json
from captcha_robustness.results.schema import FILE_NAME as PREDICTIONS_FILE
from captcha_robustness.results.stats import summarize
from captcha_robustness.sweeps.jobs import ERROR_FILE, PLAN_FILE, finished


@dataclass(frozen=True)
class Job:
    sweep: Path
    name: str  # the job folder's name ("" when it never started)
    overrides: tuple[str, ...]
    status: str  # done | failed | missing
    error: str | None = None

    @property
    def dir(self) -> Path:
        return self.sweep / self.name


def _job_folders(sweep: Path) -> dict[tuple[str, ...], Path]:
    folders = {}
    for folder in sorted((p for p in sweep.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()),
                         key=lambda p: (len(p.name), p.name)):
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
        folders[tuple(overrides)] = folder
    return folders


def find_jobs(sweep: Path) -> list[Job]:
    """The jobs of one sweep folder: the planned ones when `sweep.json` is there, else every
    job folder found."""
    folders = _job_folders(sweep)
    plan = read_json(sweep / PLAN_FILE)
    planned = [tuple(o) for o in plan["jobs"]] if plan else list(folders)
    jobs = []
    for overrides in planned:
        folder = folders.get(overrides)
        if folder is None:
            jobs.append(Job(sweep, "", overrides, "missing", "never started"))
        elif finished(folder):
            jobs.append(Job(sweep, folder.name, overrides, "done"))
        elif (folder / ERROR_FILE).is_file():
            error = (folder / ERROR_FILE).read_text().strip().splitlines()
            jobs.append(Job(sweep, folder.name, overrides, "failed", error[-1] if error else "failed"))
        else:
            jobs.append(Job(sweep, folder.name, overrides, "missing", "no complete result (killed or running)"))
    return jobs


def varying_overrides(jobs: list[Job]) -> list[str]:
    """The override keys whose value differs between jobs, in first-seen order."""
    settings = [_settings(job) for job in jobs]
    keys = list(dict.fromkeys(key for s in settings for key in s))
    return [key for key in keys if len({s.get(key) for s in settings}) > 1]


def _settings(job: Job) -> dict[str, str]:
    return dict(override.partition("=")[::2] for override in job.overrides)


@dataclass
class Combined:
    jobs: list[Job]
    predictions: pd.DataFrame  # all done jobs' rows, with `sweep` and `job` columns
    summary: pd.DataFrame  # one row per job, missing ones included
    varying: list[str]

    @property
    def incomplete(self) -> list[Job]:
        return [job for job in self.jobs if job.status != "done"]


def combine(sweeps: list[Path]) -> Combined:
    jobs = [job for sweep in sweeps for job in find_jobs(sweep)]
    varying = varying_overrides(jobs)
    tables, rows = [], []
    for job in jobs:
        row = {"sweep": str(job.sweep), "job": job.name, "status": job.status, "error": job.error}
        settings = _settings(job)
        row.update({key: settings.get(key) for key in varying})
        if job.status == "done" and (job.dir / PREDICTIONS_FILE).is_file():
            table = pd.read_parquet(job.dir / PREDICTIONS_FILE)
            metrics = read_json(job.dir / "metrics.json") or {}
            table.insert(0, "job", job.name)
            table.insert(0, "sweep", str(job.sweep))
            tables.append(table)
            row.update(_job_identity(table, metrics))
            row.update(summarize(table))
        rows.append(row)
    predictions = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return Combined(jobs, predictions, pd.DataFrame(rows), varying)


def _job_identity(table: pd.DataFrame, metrics: dict) -> dict:
    """What a job evaluated: model, training noise, test noise type and level."""
    levels = table["noise_level"].unique()
    configured = metrics.get("noise_level")
    level = float(levels[0]) if len(levels) == 1 else configured if isinstance(configured, (int, float)) else None
    return {
        "solver": table["solver"].iloc[0],
        "model_id": table["model_id"].iloc[0],
        "train_noise": table["train_noise"].iloc[0],
        "noise_type": table["noise_type"].iloc[0],
        "noise_level": level,
        "seed": int(table["seed"].iloc[0]),
    }
