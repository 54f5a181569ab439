"""Shared plumbing for the Hydra entry points."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from captcha_robustness.errors import exit_on_config_error
from captcha_robustness.memory import reuse_freed_memory
from captcha_robustness.sweeps.jobs import run_sweep_job

# The checkout's conf/ (editable installs, the usual case); a wheel carries a copy inside the package.
_CHECKOUT_CONF = Path(__file__).resolve().parents[2] / "conf"
CONFIG_DIR = str(_CHECKOUT_CONF if _CHECKOUT_CONF.is_dir() else Path(__file__).resolve().parent / "conf")


def run_dir() -> Path:
    """The current Hydra job's output directory."""
    return Path(HydraConfig.get().runtime.output_dir)


def check_group_choices(argv: list[str]) -> None:
    """Exit with one line for an unknown config-group option (e.g. `model=foo`), before Hydra
    would print its multi-line report. Sweeps (`model=a,b`) are checked option by option."""
    conf = Path(CONFIG_DIR)
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or "." in key or "(" in value or not (conf / key).is_dir():
            continue
        allowed = sorted(p.stem for p in (conf / key).glob("*.yaml"))
        for option in value.split(","):
            if option and option != "null" and option not in allowed:
                print(f"error: {key}={option}: unknown; allowed: {', '.join(allowed)}", file=sys.stderr)
                sys.exit(2)


def hydra_entry(config_name: str, task: Callable[[DictConfig], object]) -> Callable[[], None]:
    """A console-script entry point: check group options, then run `task` as a Hydra app of
    `conf/<config_name>.yaml` whose ConfigErrors end in one line (Hydra names the job, and so
    the run directory, after `task`'s module). In a multirun, each job runs through
    `run_sweep_job`: finished jobs are skipped, failed ones recorded and the sweep goes on."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    @exit_on_config_error
    @functools.wraps(task)
    def run(cfg: DictConfig) -> None:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            run_sweep_job(task, cfg)
        else:
            task(cfg)

    def main() -> None:
        check_group_choices(sys.argv[1:])
        reuse_freed_memory()
        run()

    return main
