"""Shared plumbing for the Hydra entry points."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig

# The checkout's conf/ (editable installs, the usual case); a wheel carries a copy inside the package.
_CHECKOUT_CONF = Path(__file__).resolve().parents[2] / "conf"
CONFIG_DIR = str(_CHECKOUT_CONF if _CHECKOUT_CONF.is_dir() else Path(__file__).resolve().parent / "conf")


def run_dir() -> Path:
    """The current Hydra job's output directory."""
    return Path(HydraConfig.get().runtime.output_dir)
