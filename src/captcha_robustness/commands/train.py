"""captcha-train: train a CAPTCHA reader on CAPTCHAs rendered on the fly, then test it.

Writes into its run directory: checkpoints/ (last.ckpt and the best by val/acc_seq),
csv/metrics.csv (and tensorboard/ when installed), metrics.json (final test metrics),
predictions.parquet (the test pass, one row per CAPTCHA), confusion_digit_K.csv and
confusion.png (per-position confusion matrices).
"""

from __future__ import annotations

import time
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.commands.cli import run_dir
from captcha_robustness.errors import ConfigError
from captcha_robustness.files import atomic_path, write_json
from captcha_robustness.models.module import CaptchaModule
from captcha_robustness.results.confusion import save_confusion, summary_lines
from captcha_robustness.results.schema import FILE_NAME as PREDICTIONS_FILE
from captcha_robustness.runs import (
    default_model_id,
    load_module,
    metrics_to_floats,
    noise_name,
    predictions_table,
)
from captcha_robustness.training.callbacks import AveragedWeights
from captcha_robustness.training.components import build_callbacks, instantiate_each


def build_module(cfg: DictConfig) -> CaptchaModule:
    container = OmegaConf.to_container(cfg, resolve=True)
    render, training = container["data"]["render"], container["training"]
    return CaptchaModule(
        model=container["model"], optimizer=container["optimizer"], scheduler=container.get("scheduler"),
        num_digits=render["num_digits"], image_size=(render["height"], render["width"]),
        data_info={"digits": HydraConfig.get().runtime.choices.get("digits"),
                   "train_noise": training_noise_name(container["noise"], training.get("adversarial")),
                   "seed": container["seed"]},
        label_smoothing=training["label_smoothing"], members=training["members"],
        mutual_weight=training["mutual_weight"], adversarial=training.get("adversarial"),
    )


def training_noise_name(noise: dict, adversarial: dict | None) -> str:
    """noise_name, with PGD adversarial training named after it: 'adversarial_linf:0.1 (PGD training)'."""
    if not adversarial:
        return noise_name(noise)
    attack = f"{adversarial.get('noise')}:{adversarial.get('level')} (PGD training)"
    return attack if noise.get("name", "none") == "none" else f"{noise_name(noise)} + {attack}"


def start_from_weights(module: CaptchaModule, path: str) -> None:
    """Copy the network weights of the checkpoint at `path` into `module`, whose optimiser,
    schedule and epoch count stay new: fine-tuning, where ckpt_path= would resume."""
    source = load_module(path, field="init_from").model.state_dict()
    try:
        module.model.load_state_dict(source)
    except RuntimeError as exc:
        raise ConfigError(f"init_from: {path} holds another network than this run's model config; "
                          f"pass the model overrides it was trained with") from exc


def train(cfg: DictConfig) -> dict[str, float]:
    out = run_dir()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    loggers = list(instantiate_each(cfg.get("logger")).values())
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(cfg)
    if cfg.init_from:
        start_from_weights(module, cfg.init_from)
    callbacks = build_callbacks(cfg.get("callbacks"), loggers)
    if cfg.training.ema_decay is not None:
        callbacks["ema"] = AveragedWeights(cfg.training.ema_decay)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=list(callbacks.values()), logger=loggers or False,
                                      default_root_dir=str(out))
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    fit_s = time.perf_counter() - start
    best = _checkpoint(callbacks, "model_checkpoint")
    last = _checkpoint(callbacks, "last_checkpoint")
    trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)  # reloads the best, or the last
    metrics = metrics_to_floats({k: v for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    if trainer.is_global_zero:
        save_confusion(module, out)
        table = predictions_table(module, model_id=default_model_id(best or last or ""),
                                  noise_type=datamodule.noise.label, seed=cfg.seed,
                                  layout=datamodule.render_cfg.layout)
        with atomic_path(out / PREDICTIONS_FILE) as tmp:
            table.to_parquet(tmp, index=False)
        wait = callbacks.get("data_wait")
        write_json(out / "metrics.json", {
            **metrics, "noise": datamodule.noise.label,
            "noise_level": OmegaConf.to_container(cfg.noise, resolve=True).get("level"), "best_checkpoint": best,
            "last_checkpoint": last,
            "epochs": trainer.current_epoch, "global_step": trainer.global_step, "fit_seconds": round(fit_s, 1),
            "data_wait_fraction": round(wait.fraction, 4) if wait else None, "test_size": datamodule.sizes["test"],
        })
        print("\n".join(summary_lines(metrics, out, best, fit_s)))
    return metrics


def _checkpoint(callbacks: dict[str, Any], name: str) -> str | None:
    """The path the checkpoint callback `name` saved (its best, or its only one), if any."""
    callback = callbacks.get(name)
    return getattr(callback, "best_model_path", None) or None


if __name__ == "__main__":
    from captcha_robustness.commands.entry import train

    train()
