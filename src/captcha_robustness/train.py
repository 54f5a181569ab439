"""captcha-train: train a CAPTCHA solver on CAPTCHAs rendered on the fly, then test it.

Writes into its run directory: checkpoints/ (last.ckpt and the best by val/acc_seq),
csv/metrics.csv (and tensorboard/ when installed), metrics.json (final test metrics),
predictions.parquet (the test pass, one row per CAPTCHA), confusion_digit_K.csv and
confusion.png (per-position confusion matrices).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from captcha_robustness.callbacks import AveragedWeights, DataWaitMonitor, ElapsedTime
from captcha_robustness.cli import hydra_entry, run_dir
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.solver import CaptchaSolver
from captcha_robustness.reports import save_confusion, summary_lines
from captcha_robustness.files import atomic_path, write_json
from captcha_robustness.sweeps.jobs import CHECKPOINTS, DONE_FILE, STARTED_FILE
from captcha_robustness.runs import default_model_id, load_solver, metrics_to_floats, noise_name, predictions_table


def build_loggers(names: list[str], out: Any) -> list:
    loggers = []
    for name in names:
        if name == "csv":
            loggers.append(CSVLogger(out, name="csv", version=""))
        elif name == "tensorboard":
            if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
                loggers.append(TensorBoardLogger(out, name="tensorboard", version=""))
        else:
            raise ConfigError(f"loggers: unknown logger {name!r}; allowed: csv, tensorboard")
    return loggers


def build_solver(cfg: DictConfig) -> CaptchaSolver:
    container = OmegaConf.to_container(cfg, resolve=True)
    render = container["data"]["render"]
    return CaptchaSolver(
        model=container["model"], optimizer=container["optimizer"], scheduler=container["scheduler"],
        num_digits=render["num_digits"], image_size=(render["height"], render["width"]),
        data_info={"digits": HydraConfig.get().runtime.choices.get("digits"),
                   "train_noise": noise_name(container["noise"]), "seed": container["seed"]},
        label_smoothing=container["label_smoothing"], members=container["members"],
        mutual_weight=container["mutual_weight"],
    )


def start_from_weights(solver: CaptchaSolver, path: str) -> None:
    """Copy the network weights of the checkpoint at `path` into `solver`, whose optimiser,
    schedule and epoch count stay new: fine-tuning, where ckpt_path= would resume."""
    source = load_solver(path, field="init_from").model.state_dict()
    try:
        solver.model.load_state_dict(source)
    except RuntimeError as exc:
        raise ConfigError(f"init_from: {path} holds another network than this run's model config; "
                          f"pass the model overrides it was trained with") from exc


def interrupted_checkpoint(out: Path) -> str | None:
    """The last checkpoint of an unfinished sweep job in this directory, of the same config
    (sweeps/jobs.py): a killed training sweep run again continues instead of starting over."""
    last = out / CHECKPOINTS / "last.ckpt"
    in_sweep_job = (out / STARTED_FILE).is_file() and not (out / DONE_FILE).is_file()
    return str(last) if in_sweep_job and last.is_file() else None


def train(cfg: DictConfig) -> dict[str, float]:
    out = run_dir()
    loggers = build_loggers(list(cfg.loggers), out)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    solver = build_solver(cfg)
    if cfg.init_from:
        if cfg.ckpt_path:
            raise ConfigError("init_from: cannot be combined with ckpt_path (which resumes a run); pass one")
        start_from_weights(solver, cfg.init_from)
    # No "=" in file names: it would have to be quoted in a ckpt_path=... override.
    checkpoint = ModelCheckpoint(dirpath=out / CHECKPOINTS, filename="best-epoch{epoch:02d}-step{step}",
                                 auto_insert_metric_name=False, monitor=cfg.checkpoint.monitor,
                                 mode=cfg.checkpoint.mode)
    # Not save_last=True: since Lightning 2.6 that writes last.ckpt only when a new best is
    # saved. Without a monitor, this one overwrites last.ckpt after every epoch.
    last = ModelCheckpoint(dirpath=out / CHECKPOINTS, filename="last", enable_version_counter=False)
    wait = DataWaitMonitor()
    callbacks = [checkpoint, last, wait, ElapsedTime()] + ([LearningRateMonitor("step")] if loggers else [])
    if cfg.ema_decay is not None:
        callbacks.append(AveragedWeights(cfg.ema_decay))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                      default_root_dir=str(out))
    resume = cfg.ckpt_path or interrupted_checkpoint(out)
    if resume and not cfg.ckpt_path:
        print(f"resuming the interrupted training in {out} from {resume}")
    start = time.perf_counter()
    trainer.fit(solver, datamodule=datamodule, ckpt_path=resume)
    fit_s = time.perf_counter() - start
    best, last_path = checkpoint.best_model_path or None, last.best_model_path  # test() reloads both
    trainer.test(solver, datamodule=datamodule, ckpt_path=best, verbose=False)
    metrics = metrics_to_floats({k: v for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    if trainer.is_global_zero:
        save_confusion(solver, out)
        table = predictions_table(solver, model_id=default_model_id(best or last_path),
                                  noise_type=datamodule.noise.label, seed=cfg.seed)
        with atomic_path(out / "predictions.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        write_json(out / "metrics.json", {
            **metrics, "noise": datamodule.noise.label,
            "noise_level": OmegaConf.to_container(cfg.noise, resolve=True).get("level"), "best_checkpoint": best,
            "last_checkpoint": last_path or None,
            "epochs": trainer.current_epoch, "global_step": trainer.global_step, "fit_seconds": round(fit_s, 1),
            "data_wait_fraction": round(wait.fraction, 4), "test_size": datamodule.sizes["test"],
        })
        print("\n".join(summary_lines(metrics, out, best, fit_s)))
    return metrics


main = hydra_entry("train", train)

if __name__ == "__main__":
    main()
