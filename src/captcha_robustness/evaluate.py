"""captcha-eval: a checkpoint on the fixed test set under one noise condition.

Writes metrics.json, predictions.parquet (one row per test CAPTCHA, schema in DESIGN.md),
confusion_digit_K.csv and confusion.png into its run directory.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.cli import atomic_path, hydra_entry, run_dir
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.solver import CaptchaSolver, digit_strings
from captcha_robustness.reports import save_confusion, summary_lines
from captcha_robustness.runs import load_solver, metrics_to_floats, write_json


def default_model_id(ckpt_path: str) -> str:
    """'<run directory name>/<checkpoint stem>', e.g. '2026-11-24_10-00-00/last'."""
    path = Path(ckpt_path).resolve()
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return f"{run.name}/{path.stem}"


def predictions_table(solver: CaptchaSolver, *, model_id: str, noise_type: str, seed: int) -> pd.DataFrame:
    """The test pass's per-CAPTCHA records as the predictions table."""
    records = {key: torch.cat([r[key] for r in solver.test_records]) for key in solver.test_records[0]}
    label, prediction = records["label"], records["prediction"]
    return pd.DataFrame({
        "solver": "cnn",
        "model_id": model_id,
        "train_noise": (solver.hparams.data_info or {}).get("train_noise"),
        "noise_type": noise_type,
        "noise_level": records["noise_level"].double().round(decimals=6).numpy(),
        "seed": seed,
        "captcha_id": records["captcha_id"].numpy(),
        "label": digit_strings(label),
        "prediction": digit_strings(prediction),
        "correct": (label == prediction).all(1).numpy(),
        "n_correct": (label == prediction).sum(1).numpy().astype("int64"),
        "confidence": records["confidence"].double().numpy(),
        "error": pd.Series([None] * len(label), dtype="string"),
    })


def check_compatible(solver: CaptchaSolver, render: dict) -> None:
    expected = (solver.hparams.num_digits, *solver.hparams.image_size)
    got = (render["num_digits"], render["height"], render["width"])
    if tuple(expected) != got:
        raise ConfigError(f"data.render: the checkpoint expects num_digits, height, width = {tuple(expected)}, "
                          f"got {got}; override data.render.* to match")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    out = run_dir()
    solver = load_solver(None if OmegaConf.is_missing(cfg, "ckpt_path") else cfg.ckpt_path)
    check_compatible(solver, OmegaConf.to_container(cfg.data.render, resolve=True))
    datamodule = hydra.utils.instantiate(cfg.data)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, default_root_dir=str(out))
    trainer.test(solver, datamodule=datamodule, verbose=False)
    metrics = metrics_to_floats({k: v for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    table = predictions_table(solver, model_id=cfg.model_id or default_model_id(cfg.ckpt_path),
                              noise_type=cfg.noise.name, seed=cfg.seed)
    with atomic_path(out / "predictions.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    save_confusion(solver, out)
    write_json(out / "metrics.json", {**metrics, "ckpt_path": str(cfg.ckpt_path), "noise": cfg.noise.name,
                                      "noise_level": OmegaConf.to_container(cfg.noise, resolve=True).get("level"),
                                      "test_size": len(table)})
    print("\n".join(summary_lines(metrics, out, None)))
    return metrics


main = hydra_entry("eval", evaluate)

if __name__ == "__main__":
    main()
