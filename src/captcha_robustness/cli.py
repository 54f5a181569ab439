"""Shared plumbing for the Hydra entry points."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

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


def hydra_entry(task: Callable[[], None]) -> Callable[[], None]:
    """A console-script entry point: check group options, then run the Hydra `task`."""

    def main() -> None:
        check_group_choices(sys.argv[1:])
        task()

    return main
