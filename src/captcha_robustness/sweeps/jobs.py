"""One job of a sweep: skipped when an identical job already finished in its directory,
and a crash recorded in error.txt instead of ending the whole sweep.

A job directory is complete when it holds `done.json`, written last (atomically) after the
job's own results, with the hash of the job's resolved config and the files it wrote.
`started.json` holds the hash of the config a job last started with: a training job that was
interrupted resumes from its `checkpoints/last.ckpt` only when that hash is unchanged.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from captcha_robustness.errors import find_config_error
from captcha_robustness.files import read_json, write_json, write_text

DONE_FILE = "done.json"
ERROR_FILE = "error.txt"
PLAN_FILE = "sweep.json"
STARTED_FILE = "started.json"
CHECKPOINTS = "checkpoints"


def config_hash(cfg: DictConfig) -> str:
    return hashlib.sha256(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest()[:16]


def finished(job_dir: Path, digest: str | None = None) -> bool:
    """Whether `job_dir` holds a complete job (of config hash `digest`, when given)."""
    done = read_json(job_dir / DONE_FILE)
    if done is None or (digest is not None and done.get("config_hash") != digest):
        return False
    return all((job_dir / name).is_file() for name in done.get("files", []))


def planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """Every job's overrides, expanded as Hydra's basic sweeper does (None for other sweepers)."""
    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def set_aside_stale_jobs(sweep: Path, jobs: list[list[str]]) -> Path | None:
    """Move the job folders of `sweep` that an earlier sweep left with other overrides than
    `jobs` plans for them (or beyond the plan) into stale/<time>/, so that nobody reads them
    as this sweep's results. Returns that folder, or None when nothing was stale."""
    stale = sweep / "stale" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    moved = False
    for folder in sorted(p for p in sweep.iterdir() if p.name.isdigit() and (p / ".hydra" / "overrides.yaml").is_file()):
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
        num = int(folder.name)
        if num >= len(jobs) or overrides != jobs[num]:
            stale.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(stale / folder.name))
            moved = True
    return stale if moved else None


def run_sweep_job(task: Callable[[DictConfig], object], cfg: DictConfig, last_checkpoint: str | None = None) -> None:
    """Run `task` as one job of a sweep. `last_checkpoint`: where in its directory the task
    leaves a checkpoint to resume from (captcha-train's checkpoints/last.ckpt); a job of the
    same config that was interrupted continues from it through `ckpt_path`."""
    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    name = f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)})"
    digest = config_hash(cfg)
    if finished(out, digest):
        print(f"{name}: already finished in {out}, skipped")
        return
    (out / DONE_FILE).unlink(missing_ok=True)
    (out / ERROR_FILE).unlink(missing_ok=True)
    started = read_json(out / STARTED_FILE)
    if started is not None and started.get("config_hash") != digest:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # another config's partial training
    elif started is not None and last_checkpoint and (out / last_checkpoint).is_file() and not cfg.get("ckpt_path"):
        print(f"resuming the interrupted training in {out} from {out / last_checkpoint}")
        with open_dict(cfg):
            cfg.ckpt_path = str(out / last_checkpoint)
    write_json(out / STARTED_FILE, {"config_hash": digest})
    start = time.perf_counter()
    try:
        task(cfg)
    except Exception as exc:  # noqa: BLE001 - the sweep goes on; the combined table reports the job
        config_error = find_config_error(exc)
        write_text(out / ERROR_FILE, f"error: {config_error}\n" if config_error else traceback.format_exc())
        print(f"{name}: failed: {config_error or repr(exc)}", file=sys.stderr)
        return
    files = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.endswith(".log"))
    write_json(out / DONE_FILE, {
        "config_hash": digest, "overrides": list(hydra_cfg.overrides.task), "files": files,
        "seconds": round(time.perf_counter() - start, 2),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
