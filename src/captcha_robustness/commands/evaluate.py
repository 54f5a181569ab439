"""captcha-eval: a solver on the fixed test set under one noise condition: a checkpoint
(`solver=cnn`, the default; a list of checkpoints reads as an ensemble, and `test_shifts` adds
shifted copies of each image) or general-purpose OCR (`solver=tesseract`, `solver=ocrspace`).

Writes metrics.json and predictions.parquet (one row per test CAPTCHA, schema in docs/schema.md)
into its run directory; for the CNN also confusion_digit_K.csv and confusion.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.commands.cli import run_dir
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.errors import ConfigError
from captcha_robustness.files import atomic_path, write_json
from captcha_robustness.models.module import CaptchaModule, check_shifts
from captcha_robustness.results.confusion import save_confusion, summary_lines
from captcha_robustness.results.schema import FILE_NAME as PREDICTIONS_FILE
from captcha_robustness.runs import (
    checkpoint_paths,
    default_model_id,
    load_ensemble,
    metrics_to_floats,
    plain,
    predictions_table,
)
from captcha_robustness.solvers.base import Preprocess
from captcha_robustness.solvers.evaluation import ocr_metrics, ocr_predictions
from captcha_robustness.validate import number


def check_compatible(module: CaptchaModule, render: dict) -> None:
    expected = (module.hparams.num_digits, *module.hparams.image_size)
    got = (render["num_digits"], render["height"], render["width"])
    if tuple(expected) != got:
        raise ConfigError(f"data.render: the checkpoint expects num_digits, height, width = {tuple(expected)}, "
                          f"got {got}; override data.render.* to match")


# The jobs of a sweep that run in one process (all of them under the basic launcher, a share
# under joblib) evaluate the same test set under different noise: keep the last DataModule,
# with its digits loaded and clean test CAPTCHAs rendered, so each job only adds its noise.
_LAST_DATAMODULE: dict[str, CaptchaDataModule] = {}


def test_datamodule(cfg: DictConfig) -> CaptchaDataModule:
    data = OmegaConf.to_container(cfg.data, resolve=True)
    noise = data.pop("noise")
    key = json.dumps(data, sort_keys=True, default=str)
    if key not in _LAST_DATAMODULE:
        _LAST_DATAMODULE.clear()
        datamodule = hydra.utils.instantiate(cfg.data)
        if cfg.prerender_test:
            datamodule.prerender("test")
        _LAST_DATAMODULE[key] = datamodule
    datamodule = _LAST_DATAMODULE[key]
    datamodule.set_noise(noise)
    return datamodule


def keep_member(modules: list[CaptchaModule], member: Any) -> str:
    """Makes the one checkpoint of `modules`, trained with members=N, read only its network
    `member` (1..N); returns the suffix for its model_id. `member` None keeps them all."""
    if member is None:
        return ""
    count = modules[0].hparams.get("members", 1)
    if len(modules) > 1 or count < 2:
        raise ConfigError(f"member: needs one checkpoint trained with members=N > 1 "
                          f"(got {len(modules)} checkpoint(s), members={count})")
    number("member", member, low=1, high=count, integer=True, note="a network of the checkpoint")
    modules[0].model = modules[0].model.members[member - 1]
    return f"/member{member}"


def check_digit_source(modules: list) -> None:
    """The checkpoints' digit source, unless `digits=` was given: eval's default (the embedded
    digits) would otherwise read a full-MNIST model on other digits than its test split."""
    trained = sorted({str((m.hparams.data_info or {}).get("digits")) for m in modules} - {"None"})
    chosen = HydraConfig.get().runtime.choices.get("digits")
    given = any(o.split("=")[0].lstrip("+~") == "digits" for o in HydraConfig.get().overrides.task)
    if trained and chosen not in trained and not given:
        raise ConfigError(f"digits: the checkpoint trained on digits={trained[0]}, and this run would read "
                          f"digits={chosen}; pass digits={trained[0]} (or digits={chosen} to read those on purpose)")


def evaluate_cnn(cfg: DictConfig, out: Path) -> tuple[pd.DataFrame, dict[str, float]] | None:
    paths = checkpoint_paths(cfg.ckpt_path)
    modules = load_ensemble(paths)
    member_suffix = keep_member(modules, cfg.member)
    render = OmegaConf.to_container(cfg.data.render, resolve=True)
    module = modules[0]
    check_compatible(module, render)
    check_digit_source(modules)
    module.test_shifts = check_shifts(plain(cfg.test_shifts), render["height"], render["width"])
    datamodule = test_datamodule(cfg)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, default_root_dir=str(out))
    trainer.test(module, datamodule=datamodule, verbose=False)
    if not trainer.is_global_zero:  # another process of a DDP run: the first writes the results
        return None
    metrics = metrics_to_floats({k: v for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    table = predictions_table(module, model_id=cfg.model_id or " + ".join(map(default_model_id, paths)) + member_suffix,
                              noise_type=datamodule.noise.label, seed=cfg.seed, layout=datamodule.render_cfg.layout)
    train_noises = dict.fromkeys(str((member.hparams.data_info or {}).get("train_noise")) for member in modules)
    if len(train_noises) > 1:
        table["train_noise"] = " + ".join(train_noises)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    save_confusion(module, out, png=cfg.confusion_png if cfg.confusion_png is not None else not in_sweep)
    return table, metrics


def evaluate_ocr(cfg: DictConfig) -> tuple[pd.DataFrame, dict[str, float]]:
    params = OmegaConf.to_container(cfg.solver, resolve=True)
    params.pop("name")
    solver = hydra.utils.instantiate(params)
    ocr = OmegaConf.to_container(cfg.ocr, resolve=True)
    keep = ocr.pop("keep")
    datamodule = test_datamodule(cfg)
    table = ocr_predictions(solver, Preprocess(**ocr), keep, datamodule, noise_type=datamodule.noise.label,
                            seed=cfg.seed)
    if cfg.model_id:
        table["model_id"] = cfg.model_id
    return table, ocr_metrics(table)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    out = run_dir()
    solver_name = cfg.solver.name
    result = evaluate_cnn(cfg, out) if solver_name == "cnn" else evaluate_ocr(cfg)
    if result is None:
        return {}
    table, metrics = result
    surrogate = OmegaConf.select(cfg, "noise.surrogate")
    if surrogate is not None:  # adversarial noise: which model it was crafted against
        table["surrogate"] = pd.Series(" + ".join(map(default_model_id, checkpoint_paths(surrogate))),
                                       index=table.index, dtype="string")
    with atomic_path(out / PREDICTIONS_FILE) as tmp:
        table.to_parquet(tmp, index=False)
    write_json(out / "metrics.json", {
        **metrics, "solver": solver_name, "model_id": str(table["model_id"].iloc[0]),
        "ckpt_path": plain(cfg.ckpt_path), "noise": str(table["noise_type"].iloc[0]),
        **({"test_shifts": plain(cfg.test_shifts), "member": cfg.member} if solver_name == "cnn" else {}),
        "noise_level": OmegaConf.to_container(cfg.noise, resolve=True).get("level"), "test_size": len(table),
        **({"surrogate": plain(surrogate)} if surrogate is not None else {}),
    })
    print("\n".join(summary_lines(metrics, out, None)))
    unanswered = unanswered_line(table)
    if unanswered:
        print(unanswered)
        if table["error"].notna().all():
            raise ConfigError(f"solver={solver_name}: none of the {len(table):,} CAPTCHAs was answered, so its "
                              f"accuracy measures nothing; {unanswered}")
    return metrics


def unanswered_line(table: pd.DataFrame) -> str | None:
    """'no answer for N of M CAPTCHAs (most common reason: ...)', or None when all were answered."""
    errors = table["error"].dropna()
    if errors.empty:
        return None
    counts = errors.value_counts()
    reason, count = counts.index[0], int(counts.iloc[0])
    return (f"no answer for {len(errors):,} of {len(table):,} CAPTCHAs (most common reason, {count:,} times: "
            f"{reason})")


if __name__ == "__main__":
    from captcha_robustness.commands.entry import evaluate

    evaluate()
