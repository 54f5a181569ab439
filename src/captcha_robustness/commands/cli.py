"""Shared plumbing for the Hydra entry points: each checks its config (every job's, in a
multirun) before it imports the module that does the work, so that --help, --cfg and bad
input answer in about a second, and a run that cannot start leaves no folder behind."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.config_dir import CONFIG_DIR
from captcha_robustness.errors import ConfigError, exit_on_config_error, find_config_error
from captcha_robustness.memory import reuse_freed_memory
from captcha_robustness.preflight import check_config
from captcha_robustness.sweeps.jobs import planned_jobs, run_sweep_job



def _fast_precision() -> str:
    from captcha_robustness.training.components import fast_precision  # imports torch: resolved at work only

    return fast_precision()


OmegaConf.register_new_resolver("fast_precision", _fast_precision, replace=True)

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


# Where `+key=value` may add a key: arguments of a class the config instantiates, which checks them.
ADDABLE = ("trainer.", "callbacks.", "logger.", "hydra.")
# Hydra's own flags that only show things (no job runs, nothing to check); and flags that change
# which config is read, with which the check is left to the job.
SHOW_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc",
              "--version", "--resolve"}
OTHER_CONFIG_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                      "--experimental-rerun"}


def check_before_work(config_name: str, argv: list[str]) -> None:
    """Compose the config of every job `argv` asks for and check each (preflight), raising the
    first problem as a ConfigError: unknown keys, keys added where nothing reads them, bad values."""
    flags = {arg.split("=")[0] for arg in argv if arg.startswith("-")}
    if flags & (SHOW_FLAGS | OTHER_CONFIG_FLAGS):
        return
    overrides = [arg for arg in argv if not arg.startswith("-")]
    check_additions(overrides)
    multirun = bool(flags & {"-m", "--multirun"})
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        compose = GlobalHydra.instance().hydra.compose_config
        try:
            if not multirun:
                jobs = [overrides]
            else:
                jobs = planned_jobs(compose(config_name, overrides, run_mode=RunMode.MULTIRUN)) or []
            for num, job in enumerate(jobs):
                try:
                    check_config(config_name, compose(config_name, job, run_mode=RunMode.RUN))
                except ConfigError as exc:
                    raise ConfigError(f"job {num} ({' '.join(job)}): {exc}" if multirun else str(exc)) from exc
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - Hydra's composition errors, as one line
            raise ConfigError(composition_error(exc)) from exc


def check_additions(overrides: list[str]) -> None:
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        added = override.type in (OverrideType.ADD, OverrideType.FORCE_ADD)
        if added and not key.startswith(ADDABLE) and not (Path(CONFIG_DIR) / key).is_dir():
            raise ConfigError(f"{key}: no such setting (see them all with --cfg job); '+' adds keys only to "
                              f"a class's arguments: {', '.join(p + 'X' for p in ADDABLE[:3])}")


def composition_error(exc: BaseException) -> str:
    message = str(exc)
    unknown = re.search(r"Could not override '([^']+)'", message) or re.search(r"Key '([^']+)' is not in struct",
                                                                              message)
    if unknown:
        return f"{unknown.group(1)}: no such setting (see them all with --cfg job)"
    return " ".join(message.split())


def remove_unused_run_dir(out: Path) -> None:
    """Remove a run directory that holds nothing but Hydra's config copy and the start of a log,
    and the folders above it that this leaves empty (outputs/train/), up to the working directory."""
    out, cwd = out.resolve(), Path.cwd().resolve()
    if out == cwd or not out.is_dir() or not all(p.name == ".hydra" or p.suffix == ".log" for p in out.iterdir()):
        return
    shutil.rmtree(out, ignore_errors=True)
    for parent in out.parents:
        if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def hydra_entry(config_name: str, task: str, last_checkpoint: str | None = None) -> Callable[[], None]:
    """A console-script entry point: check the config, then run `task` ("module:function",
    imported only then) as a Hydra app of `conf/<config_name>.yaml` whose ConfigErrors end in
    one line (Hydra names the job, and so the run directory, after `task`'s module). In a
    multirun, each job runs through `run_sweep_job`: finished jobs are skipped, failed ones
    recorded and the sweep goes on; an interrupted job continues from its `last_checkpoint`
    (a path in its directory), if any."""
    module_name, function_name = task.split(":")

    def run(cfg: DictConfig) -> None:
        work = getattr(importlib.import_module(module_name), function_name)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            run_sweep_job(work, cfg, last_checkpoint)
            return
        try:
            work(cfg)
        except Exception as exc:
            if find_config_error(exc) is not None:
                remove_unused_run_dir(run_dir())
            raise

    run.__module__, run.__qualname__ = module_name, function_name  # Hydra's job name
    app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(exit_on_config_error(run))

    @exit_on_config_error
    def main() -> None:
        if config_name == "train":
            sys.argv[1:] = renamed_overrides(sys.argv[1:])
        check_group_choices(sys.argv[1:])
        check_before_work(config_name, sys.argv[1:])
        reuse_freed_memory()
        app()

    return main
