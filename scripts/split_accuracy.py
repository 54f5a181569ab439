"""A checkpoint's accuracy on clean CAPTCHAs built from each digit split, to tell digits it
memorised from digits it learnt to read: `train` renders the digits it trained on (in
layouts it never saw), `val` the held-out digits of the same source split, `test` the test
split's digits (other writers, for MNIST).

    uv run python scripts/split_accuracy.py CKPT [CKPT ...] [--count 10000] [overrides, e.g. digits.root=data]

The digit source is the one the checkpoints trained on (`digits=` may repeat it, not change it).

Prints one row per split: CAPTCHAs, whole-CAPTCHA accuracy, mean per-digit accuracy. Given
several checkpoints (of one digit source and image size), it prints a table per checkpoint
and one for their ensemble, which averages the checkpoints' softmax probabilities per digit.
"""

from __future__ import annotations

import argparse
import sys

import hydra
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from captcha_robustness.commands.cli import CONFIG_DIR
from captcha_robustness.errors import ConfigError
from captcha_robustness.commands.evaluate import check_compatible
from captcha_robustness.models.module import CaptchaMetrics
from captcha_robustness.runs import load_module

# Training draws ids epoch * train_size + i; ids from here on were never drawn by a run of
# fewer than 50,000 epochs of 20,000 CAPTCHAs.
UNSEEN_TRAIN_IDS = 10**9


def with_trained_digits(overrides: list[str], trained_on: str | None) -> list[str]:
    """The overrides with the digit source the checkpoint trained on (its train and val rows
    are only its own digits then); another source is a ConfigError."""
    chosen = [o.partition("=")[2] for o in overrides if o.startswith("digits=")]
    if trained_on and chosen and chosen[-1] != trained_on:
        raise ConfigError(f"digits: the checkpoint trained on digits={trained_on}; got digits={chosen[-1]}")
    return overrides if chosen or not trained_on else [f"digits={trained_on}", *overrides]


def split_accuracy(ckpts: list[str], overrides: list[str], count: int,
                   batch: int = 500) -> list[tuple[str, dict[str, tuple[float, float]]]]:
    """[(checkpoint, or "ensemble" after several, {split: (acc_seq, acc_mean)})]."""
    solvers = [load_module(ckpt) for ckpt in ckpts]
    sources = {(solver.hparams.data_info or {}).get("digits") for solver in solvers}
    if len(sources) > 1:
        raise ConfigError(f"checkpoints: they trained on different digit sources ({', '.join(map(str, sources))})")
    overrides = with_trained_digits(overrides, sources.pop())
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    render = OmegaConf.to_container(cfg.data.render, resolve=True)
    for solver in solvers:
        check_compatible(solver, render)
    datamodule = hydra.utils.instantiate(cfg.data, noise={"name": "none"})
    datamodule.setup()
    models = [solver.model.eval() for solver in solvers]
    names = ckpts + (["ensemble"] if len(ckpts) > 1 else [])
    results: list[tuple[str, dict[str, tuple[float, float]]]] = [(name, {}) for name in names]
    for split in ("train", "val", "test"):
        first = UNSEEN_TRAIN_IDS if split == "train" else 0
        metrics = [CaptchaMetrics(solvers[0].hparams.num_digits) for _ in names]
        with torch.inference_mode():
            for start in range(first, first + count, batch):
                captchas = datamodule.synths[split](torch.arange(start, min(start + batch, first + count)))
                probs = [model(captchas["image"]).float().softmax(-1) for model in models]
                if len(models) > 1:
                    probs.append(torch.stack(probs).mean(0))
                for metric, p in zip(metrics, probs):
                    metric.update(p.argmax(-1), captchas["label"])
        for (_, rows), metric in zip(results, metrics):
            values = metric.compute()
            rows[split] = (values["acc_seq"].item(), values["acc_mean"].item())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="CKPT_OR_OVERRIDE",
                        help="checkpoints, then config overrides (digits=..., seed=...; anything with '=')")
    parser.add_argument("--count", type=int, default=10000, help="CAPTCHAs per split")
    args = parser.parse_intermixed_args()  # the docstring order: CKPT --count N overrides
    if args.count < 1:
        sys.exit("--count: must be a positive integer")
    ckpts = [item for item in args.inputs if "=" not in item]
    overrides = [item for item in args.inputs if "=" in item]
    if not ckpts:
        sys.exit("error: CKPT: give at least one checkpoint")
    try:
        results = split_accuracy(ckpts, overrides, args.count)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    for name, rows in results:
        if len(results) > 1:
            print(f"\n{name}" if name != "ensemble" else f"\nensemble of {len(ckpts)} (mean softmax)")
        print(f"{'digit split':<12}{'CAPTCHAs':>10}{'acc_seq':>10}{'acc_mean':>10}")
        for split, (seq, mean) in rows.items():
            print(f"{split:<12}{args.count:>10,}{seq:>10.4f}{mean:>10.4f}")


if __name__ == "__main__":
    main()
