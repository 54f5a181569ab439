"""The GPU against the CPU, in one run: rendering + noise, a training step, and Lightning
training end to end (on the GPU with `data.render_on_device=true`, so batches carry only ids
and the CAPTCHAs are drawn on the GPU). On a machine without CUDA it prints the CPU figures
and says that the GPU column is empty.

    uv run python benchmarks/bench_gpu.py [--rounds 3] [--batch 256] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench_models import build, train_rate
from captcha_robustness.commands.cli import CONFIG_DIR
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.render import RenderConfig, patch_size
from captcha_robustness.data.synth import CaptchaSynth
from captcha_robustness.models.module import CaptchaModule
from machine import describe

NOISE = {"name": "gaussian", "level": 0.3}


def render_rate(synth: CaptchaSynth, batch: int, batches: int, device: str) -> float:
    start = time.perf_counter()
    for k in range(batches):
        synth(torch.arange(k * batch, (k + 1) * batch, device=device))
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * batches / (time.perf_counter() - start)


def model_config(name: str) -> dict:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=[f"model={name}"]).model, resolve=True)


def fit_rate(device: str, batch: int, steps: int, precision: str) -> float:
    """CAPTCHAs/s of `trainer.fit` for `steps` batches of `multihead_cnn`, rendering included."""
    datamodule = CaptchaDataModule(Mnist5kDigits(), noise=NOISE, train_size=batch * steps, batch_size=batch,
                                   render_on_device=device == "cuda")
    model = CaptchaModule(model=model_config("multihead_cnn"),
                          optimizer={"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3})
    trainer = pl.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=precision,
                         max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    datamodule.setup()
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="training batches of the end-to-end fit")
    args = parser.parse_args()
    print(describe())
    cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    print(f"GPU: {torch.cuda.get_device_name(0) if cuda else 'none (CUDA not available): the GPU column is empty'}")
    splits = Mnist5kDigits().load()
    cfg = RenderConfig()
    patch = patch_size(splits.train.images, cfg)
    synths = {d: CaptchaSynth(splits.train, patch, "train", 0, cfg, NoiseConfig.from_dict(NOISE)).to(d)
              for d in devices}
    rows: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.rounds):
        for device in devices:
            x = torch.rand(64, 1, 100, 110, device=device)
            y = torch.randint(0, 10, (64, 4), device=device)
            model = build("multihead_cnn", device)
            measured = {
                "render + gaussian noise, CAPTCHAs/s": render_rate(synths[device], args.batch, 8, device),
                "training step (batch 64, float32), images/s": train_rate(model, x, y, seconds=3),
                f"trainer.fit, rendering included (batch {args.batch}), CAPTCHAs/s":
                    fit_rate(device, args.batch, args.steps, "32-true"),
            }
            if device == "cuda":
                measured["training step (batch 64, bf16 autocast), images/s"] = train_rate(model, x, y, 3, bf16=True)
            for name, value in measured.items():
                rows.setdefault(name, {}).setdefault(device, []).append(value)
    print(f"\nmedians of {args.rounds} rounds\n| measure | CPU | GPU | GPU / CPU |\n| --- | --- | --- | --- |")
    for name, by_device in rows.items():
        cpu = statistics.median(by_device["cpu"]) if "cpu" in by_device else None
        gpu = statistics.median(by_device["cuda"]) if "cuda" in by_device else None
        ratio = f"{gpu / cpu:.1f}x" if cpu and gpu else ""
        print(f"| {name} | {f'{cpu:,.0f}' if cpu else ''} | {f'{gpu:,.0f}' if gpu else ''} | {ratio} |")


if __name__ == "__main__":
    main()
