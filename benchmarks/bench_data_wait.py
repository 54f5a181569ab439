"""Fraction of a training step spent waiting for the next batch, with the default data
settings (batch 64, noise rendered on the fly), for data.num_workers = 0, 1, 2.

    uv run python benchmarks/bench_data_wait.py [--steps 40] [--model multihead_cnn]

The training step is a real one: the model of conf/model/<name>.yaml (default: the default
model), cross-entropy over its heads, Adam. Timed by captcha_robustness.training.callbacks.DataWaitMonitor.
"""

from __future__ import annotations

import argparse

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from captcha_robustness.training.callbacks import DataWaitMonitor
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import Mnist5kDigits
from machine import describe
from captcha_robustness.memory import reuse_freed_memory
from bench_models import MODELS, build


class Trainee(pl.LightningModule):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = build(model, "cpu")

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self.model(batch["image"])
        return F.cross_entropy(logits.flatten(0, 1), batch["label"].flatten())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--model", choices=MODELS, default="multihead_cnn")
    args = parser.parse_args()
    reuse_freed_memory()  # as the project's commands do
    print(describe())
    print(f"model={args.model}, batch=64, salt_and_pepper levels 0.2/0.3/0.4, "
          f"{args.steps} steps after 5 warm-up steps")
    for workers in (0, 1, 2):
        monitor = DataWaitMonitor(skip=5)
        dm = CaptchaDataModule(Mnist5kDigits(), {"name": "salt_and_pepper", "level": [0.2, 0.3, 0.4]},
                               train_size=64 * (args.steps + 5), batch_size=64, num_workers=workers)
        trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor],
                             use_distributed_sampler=False, accelerator="cpu")
        trainer.fit(Trainee(args.model), datamodule=dm)
        steps = args.steps
        print(f"num_workers={workers}: data wait {100 * monitor.fraction:.1f}% of the step "
              f"({1000 * monitor.wait_s / steps:.1f} ms of {1000 * monitor.step_s / steps:.1f} ms; "
              f"{64 * steps / monitor.step_s:.0f} training images/s)")


if __name__ == "__main__":
    main()
