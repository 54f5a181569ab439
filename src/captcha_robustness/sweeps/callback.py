"""The Hydra callback of `captcha-train -m` and `captcha-eval -m` (hydra.callbacks in
conf/train.yaml and conf/eval.yaml): it records the planned jobs when a sweep starts and
writes the combined results at the sweep root when it ends."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from captcha_robustness.files import write_json
from captcha_robustness.sweeps.collect import combine
from captcha_robustness.sweeps.jobs import PLAN_FILE, planned_jobs, set_aside_stale_jobs
from captcha_robustness.sweeps.outputs import write_combined


def report_lines(combined, written: list[Path]) -> list[str]:
    done = sum(job.status == "done" for job in combined.jobs)
    lines = [f"sweep: {done} of {len(combined.jobs)} jobs finished; wrote " + ", ".join(p.name for p in written)]
    for job in combined.incomplete:
        lines.append(f"  {job.status}: job {job.name or '-'} ({' '.join(job.overrides)}): {job.error}")
    return lines


class CombineSweep(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = planned_jobs(config)
        if jobs is not None:
            sweep = Path(config.hydra.sweep.dir)
            sweep.mkdir(parents=True, exist_ok=True)
            stale = set_aside_stale_jobs(sweep, jobs)
            if stale:
                print(f"moved the job folders of an earlier sweep with other overrides to {stale}")
            write_json(sweep / PLAN_FILE, {"jobs": jobs})

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        combined = combine([sweep])
        written = write_combined(combined, sweep)
        print("\n".join(report_lines(combined, written)))
        if combined.incomplete:
            print(f"error: {len(combined.incomplete)} job(s) of the sweep in {sweep} did not finish; "
                  f"re-run the same command with hydra.sweep.dir={sweep} to redo only those", file=sys.stderr)
            sys.exit(1)
