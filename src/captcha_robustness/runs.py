"""What the train / eval / predict commands share: loading checkpoints (one, or an ensemble),
naming models and noise, the predictions table of a test pass."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from captcha_robustness.errors import ConfigError
from captcha_robustness.models.module import CaptchaModule, digit_strings
from captcha_robustness.results.schema import in_column_order
from captcha_robustness.sweeps.jobs import PLAN_FILE


def load_module(ckpt_path: str | None, map_location: str = "cpu", field: str = "ckpt_path") -> CaptchaModule:
    """A CaptchaModule rebuilt from the checkpoint file alone, or one clear error naming `field`."""
    if not ckpt_path:
        raise ConfigError(f"{field}: required; pass {field}=PATH to a .ckpt written by captcha-train")
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"{field}: no such file: {path}")
    try:
        return CaptchaModule.load_from_checkpoint(path, map_location=map_location)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the same user error
        raise ConfigError(f"{field}: {path} is not a checkpoint written by captcha-train "
                          f"({type(exc).__name__})") from exc


def plain(value: Any) -> Any:
    """A config value as plain Python (lists and dicts out of OmegaConf)."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def checkpoint_paths(value: Any) -> list[Any]:
    """`ckpt_path`: one path, or a non-empty list of paths (an ensemble), as a list."""
    paths = plain(value)
    if not isinstance(paths, list):
        return [paths]
    if not paths or not all(isinstance(path, str) for path in paths):
        raise ConfigError(f"ckpt_path: must be a path to a .ckpt written by captcha-train, or a list of them for an "
                          f"ensemble, e.g. 'ckpt_path=[a.ckpt,b.ckpt]' (got {paths!r})")
    return paths


def load_ensemble(ckpt_path: Any) -> list[CaptchaModule]:
    """The modules of `ckpt_path` (one path or a list); the first reads with the others'
    networks as its `test_members`, so it stands for the whole ensemble."""
    modules = [load_module(path) for path in checkpoint_paths(ckpt_path)]
    shapes = sorted({(s.hparams.num_digits, *s.hparams.image_size) for s in modules})
    if len(shapes) > 1:
        raise ConfigError(f"ckpt_path: the checkpoints read different CAPTCHAs (num_digits, height, width: "
                          f"{', '.join(map(str, shapes))}); an ensemble needs one shape")
    modules[0].test_members.extend(member.model for member in modules[1:])
    return modules


def noise_name(noise: Mapping[str, Any]) -> str:
    """'none', 'gaussian:0.3', 'salt_and_pepper:[0.2, 0.3, 0.4]', 'gaussian+salt_and_pepper:[0.2, 0.3, 0.4]' ..."""
    name = noise.get("name", "none")
    name = name if isinstance(name, str) else "+".join(name)
    return name if name == "none" else f"{name}:{noise.get('level')}"


def metrics_to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: round(float(v.item() if isinstance(v, torch.Tensor) else v), 6) for k, v in metrics.items()}


def default_model_id(ckpt_path: str) -> str:
    """'<run directory name>/<checkpoint stem>', e.g. '2026-11-24_10-00-00/last'; for a sweep
    job, whose folder is only its number, '<sweep name>/<job>/<stem>', e.g. 'train/0/last'."""
    path = Path(ckpt_path).resolve()
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    name = f"{run.name}/{path.stem}"
    return f"{run.parent.name}/{name}" if (run.parent / PLAN_FILE).is_file() else name


def predictions_table(module: CaptchaModule, *, model_id: str, noise_type: str, seed: int,
                      layout: str) -> pd.DataFrame:
    """The test pass's per-CAPTCHA records as the predictions table."""
    records = {key: torch.cat([r[key] for r in module.test_records]) for key in module.test_records[0]}
    order = records["captcha_id"].argsort(stable=True)  # under DDP the ranks' records come one rank after another
    records = {key: value[order] for key, value in records.items()}
    label, prediction = records["label"], records["prediction"]
    return in_column_order(pd.DataFrame({
        "solver": "cnn",
        "model_id": model_id,
        "train_noise": (module.hparams.data_info or {}).get("train_noise"),
        "architecture": type(module.model).__name__,
        "noise_type": noise_type,
        "noise_level": records["noise_level"].double().round(decimals=6).numpy(),
        "seed": seed,
        "layout": layout,
        "captcha_id": records["captcha_id"].numpy(),
        "label": digit_strings(label),
        "prediction": digit_strings(prediction),
        "correct": (label == prediction).all(1).numpy(),
        "n_correct": (label == prediction).sum(1).numpy().astype("int64"),
        "confidence": records["confidence"].double().numpy(),
        "error": pd.Series([None] * len(label), dtype="string"),
        "raw_text": pd.Series([None] * len(label), dtype="string"),  # filled by OCR solvers
        "surrogate": pd.Series([None] * len(label), dtype="string"),  # filled by captcha-eval
        "ssim": records["ssim"].double().numpy() if "ssim" in records else np.nan,
    }))
