"""The cost of adversarial noise: a whole adversarial test set crafted against a model, next to
that model reading the same clean CAPTCHAs, in one run.

    uv run python benchmarks/bench_attacks.py [--ckpt PATH] [--count 10000] [--steps 10]

Without --ckpt the surrogate is the default model (conf/model/multihead_cnn.yaml) as
initialised; its weights change what the attack finds, not what it costs. Each attack crafts
`count` test CAPTCHAs at the study's settings (10 steps; L-infinity level 0.1, L0 level 0.01,
L2 level 0.05) through CaptchaSynth, in its fixed blocks, as captcha-eval does. The ratio to
clean inference is the attack's cost in forward passes (a forward-backward pass costs about
three forward passes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

from captcha_robustness.commands.cli import CONFIG_DIR
from captcha_robustness.data import adversarial
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.render import RenderConfig, patch_size
from captcha_robustness.data.synth import CaptchaSynth
from captcha_robustness.models.module import CaptchaModule
from captcha_robustness.runs import load_module
from machine import describe

LEVELS = {"adversarial_linf": 0.1, "adversarial_l0": 0.01, "adversarial_l2": 0.05}


def default_checkpoint(folder: Path) -> str:
    """The default model, untrained, written as a checkpoint the attacks can load."""
    model = yaml.safe_load((Path(CONFIG_DIR) / "model" / "multihead_cnn.yaml").read_text())
    model = {key: value for key, value in model.items() if not str(value).startswith("${")}
    module = CaptchaModule(model, {"_target_": "torch.optim.AdamW", "_partial_": True})
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.strategy.connect(module)
    path = folder / "default.ckpt"
    trainer.save_checkpoint(path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="the surrogate (default: the default model, untrained)")
    parser.add_argument("--count", type=int, default=10_000, help="adversarial CAPTCHAs per attack")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory() as folder:
        ckpt = args.ckpt or default_checkpoint(Path(folder))
        model = load_module(ckpt).model.eval()
        cfg = RenderConfig()
        splits = Mnist5kDigits().load()
        synth = CaptchaSynth(splits.test, patch_size(splits.test.images, cfg), "test", 0, cfg,
                             NoiseConfig()).prerendered(args.count)
        ids = torch.arange(args.count)
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in ids.split(64):
                model(synth(batch)["image"])
        clean = args.count / (time.perf_counter() - start)
        print(f"clean inference: {clean:,.0f} CAPTCHAs/s ({args.count:,} CAPTCHAs, batch 64)")
        print(f"| attack | level | steps | CAPTCHAs/s | {args.count:,} CAPTCHAs | cost in clean readings |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, level in LEVELS.items():
            noisy = synth.with_noise(NoiseConfig(name, level, {"steps": float(args.steps)}, (ckpt,)))
            adversarial.load_surrogate((ckpt,), "cpu", (cfg.num_digits, cfg.height, cfg.width))  # not timed
            start = time.perf_counter()
            for batch in ids.split(64):
                noisy(batch)
            seconds = time.perf_counter() - start
            print(f"| {name} | {level} | {args.steps} | {args.count / seconds:,.0f} | {seconds:.0f} s "
                  f"| {clean * seconds / args.count:.1f}x |")


if __name__ == "__main__":
    main()
