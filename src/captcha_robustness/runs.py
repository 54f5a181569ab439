"""What the train / eval commands share: loading checkpoints, writing results atomically,
naming what a model was trained on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from captcha_robustness.cli import atomic_path
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.solver import CaptchaSolver


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_solver(ckpt_path: str | None, map_location: str = "cpu") -> CaptchaSolver:
    """A CaptchaSolver rebuilt from the checkpoint file alone, or one clear error."""
    if not ckpt_path:
        raise ConfigError("ckpt_path: required; pass ckpt_path=PATH to a .ckpt written by captcha-train")
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path: no such file: {path}")
    try:
        return CaptchaSolver.load_from_checkpoint(path, map_location=map_location)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the same user error
        raise ConfigError(f"ckpt_path: {path} is not a checkpoint written by captcha-train "
                          f"({type(exc).__name__})") from exc


def noise_name(noise: Mapping[str, Any]) -> str:
    """'none', 'gaussian:0.3', 'salt_and_pepper:[0.2, 0.3, 0.4]' ..."""
    name = noise.get("name", "none")
    return name if name == "none" else f"{name}:{noise.get('level')}"


def metrics_to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: round(float(v.item() if isinstance(v, torch.Tensor) else v), 6) for k, v in metrics.items()}
