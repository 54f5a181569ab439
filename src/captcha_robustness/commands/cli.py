"""Shared plumbing for the Hydra entry points."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.errors import ConfigError, exit_on_config_error
from captcha_robustness.memory import reuse_freed_memory
from captcha_robustness.sweeps.jobs import run_sweep_job
from captcha_robustness.training.components import fast_precision

# The checkout's conf/ (editable installs, the usual case); a wheel carries a copy inside the package.
_PACKAGE = Path(__file__).resolve().parents[1]
_CHECKOUT_CONF = _PACKAGE.parents[1] / "conf"
CONFIG_DIR = str(_CHECKOUT_CONF if _CHECKOUT_CONF.is_dir() else _PACKAGE / "conf")

OmegaConf.register_new_resolver("fast_precision", fast_precision, replace=True)

# Override paths that moved, by their old spelling, still accepted: old -> new.
RENAMED = {
    "ema_decay": "training.ema_decay",
    "label_smoothing": "training.label_smoothing",
    "members": "training.members",
    "mutual_weight": "training.mutual_weight",
    "checkpoint.monitor": "callbacks.model_checkpoint.monitor",
    "checkpoint.mode": "callbacks.model_checkpoint.mode",
    "loggers": "logger",
}


# Config groups that may be switched off with GROUP=null (Hydra's own spelling is ~GROUP).
NULLABLE_GROUPS = ("scheduler", "logger")


def renamed_overrides(argv: list[str]) -> list[str]:
    """`argv` with the old spellings of moved training options (RENAMED) in their new form,
    and `scheduler=null` / `logger=null` as the deletions Hydra understands."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if key in NULLABLE_GROUPS and value == "null":
            arg = "logger=[]" if key == "logger" else f"~{key}"
        prefix = key[:len(key) - len(key.lstrip("+~"))]
        new = RENAMED.get(key.lstrip("+~"))
        if new:
            arg = f"{prefix.lstrip('+')}{new}{sep}{value}"
        out.append(arg)
    return out


def override_list(cfg: DictConfig, field: str) -> list[str]:
    """The list of overrides at `field` (none when null), as strings, or one clear error."""
    value = OmegaConf.select(cfg, field)
    if value is None:
        return []
    if not OmegaConf.is_list(value):
        raise ConfigError(f"{field}: must be a list of overrides, e.g. '[seed=0,1]' (got {value!r})")
    return [str(v) for v in value]


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
        for option in value.strip("[]").split(","):
            if option and option != "null" and option not in allowed:
                print(f"error: {key}={option}: unknown; allowed: {', '.join(allowed)}", file=sys.stderr)
                sys.exit(2)


def hydra_entry(config_name: str, task: Callable[[DictConfig], object],
                last_checkpoint: str | None = None) -> Callable[[], None]:
    """A console-script entry point: check group options, then run `task` as a Hydra app of
    `conf/<config_name>.yaml` whose ConfigErrors end in one line (Hydra names the job, and so
    the run directory, after `task`'s module). In a multirun, each job runs through
    `run_sweep_job`: finished jobs are skipped, failed ones recorded and the sweep goes on;
    an interrupted job continues from its `last_checkpoint` (a path in its directory), if any."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    @exit_on_config_error
    @functools.wraps(task)
    def run(cfg: DictConfig) -> None:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            run_sweep_job(task, cfg, last_checkpoint)
        else:
            task(cfg)

    def main() -> None:
        if config_name == "train":
            sys.argv[1:] = renamed_overrides(sys.argv[1:])
        check_group_choices(sys.argv[1:])
        reuse_freed_memory()
        run()

    return main
