"""Shared plumbing for the Hydra entry points."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def run_dir() -> Path:
    """The current Hydra job's output directory."""
    return Path(HydraConfig.get().runtime.output_dir)
