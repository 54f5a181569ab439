"""captcha-recipe: a recipe that needs several training processes, run whole: one network per
seed, each in its own process with its own CPU threads, trained in stages (each stage a
captcha-train run starting from the weights of the one before, `init_from`), then read
together as one ensemble by captcha-eval.

    uv run captcha-recipe recipe=hour_pair 'common=[digits.root=data]'

Writes under `out`: seed<S>/stage<K>/ (each a captcha-train run directory, its console output
in console.log), eval/ (the ensemble's metrics.json and predictions.parquet) and recipe.json
(each step's command and wall time). Run the same command again after an interruption:
finished stages (those with a metrics.json) are skipped.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from captcha_robustness.commands.cli import override_list
from captcha_robustness.errors import ConfigError
from captcha_robustness.files import read_json, write_json
from captcha_robustness.validate import check_field, number


def _run(args: list[str], log: Path | None, threads: int) -> tuple[str, float]:
    """Run one command of the project (as `python -m`), its output into `log` when given."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    shown = shlex.join(args)
    print(f"+ {shown}", flush=True)
    start = time.perf_counter()
    command = [sys.executable, "-m", f"captcha_robustness.commands.{args[0]}", *args[1:]]
    if log is None:
        done = subprocess.run(command, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as stream:
            done = subprocess.run(command, env=env, stdout=stream, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        where = f"; its output is in {log}" if log else ""
        raise RuntimeError(f"step failed (exit {done.returncode}): {shown}{where}")
    return shown, round(time.perf_counter() - start, 1)


def train_member(seed: int, stages: list[list[str]], common: list[str], out: Path, threads: int) -> list[dict]:
    """Every stage of one network; returns the steps run (a finished stage is skipped)."""
    steps, previous = [], None
    for k, stage in enumerate(stages, start=1):
        run = out / f"seed{seed}" / f"stage{k}"
        if read_json(run / "metrics.json") is None:
            start_from = [f"init_from={previous / 'checkpoints' / 'last.ckpt'}"] if previous else []
            command, seconds = _run(["train", *stage, *common, f"seed={seed}", *start_from,
                                     "trainer.enable_progress_bar=false", f"hydra.run.dir={run}"],
                                    run / "console.log", threads)
            steps.append({"step": f"seed {seed}, stage {k}", "command": command, "seconds": seconds})
        previous = run
    return steps


def recipe(cfg: DictConfig) -> None:
    r = cfg.recipe
    out = Path(cfg.out)
    if not OmegaConf.is_list(r.seeds) or not r.seeds:
        raise ConfigError(f"recipe.seeds: give a list of one or more seeds, e.g. [0,1] (got {r.seeds!r})")
    seeds = [number("recipe.seeds", s, integer=True, low=0) for s in r.seeds]
    threads = check_field("recipe.threads", r.threads)
    stages = [override_list(cfg, f"recipe.stages.{k}") for k in range(len(r.stages or []))]
    if not stages:
        raise ConfigError("recipe.stages: give at least one stage, a list of captcha-train overrides")
    common = override_list(cfg, "common")
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=len(seeds)) as pool:
            members = list(pool.map(lambda s: train_member(s, stages, common, out, threads), seeds))
        last = ",".join(str(out / f"seed{s}" / f"stage{len(stages)}" / "checkpoints" / "last.ckpt") for s in seeds)
        evaluation = _run(["evaluate", f"ckpt_path=[{last}]", *override_list(cfg, "recipe.eval"), *common,
                           f"hydra.run.dir={out / 'eval'}"], None, 0)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}; fix the cause and run the same captcha-recipe command again to continue")
    steps = [step for member in members for step in member]
    steps.append({"step": "ensemble evaluation", "command": evaluation[0], "seconds": evaluation[1]})
    total = round(time.perf_counter() - start, 1)
    write_json(out / "recipe.json", {"recipe": OmegaConf.to_container(r), "steps": steps, "total_seconds": total})
    print(f"\nrecipe done in {total / 60:.1f} min; the ensemble's results: {out / 'eval' / 'metrics.json'}")


if __name__ == "__main__":
    from captcha_robustness.commands.entry import recipe

    recipe()
