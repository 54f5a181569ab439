"""Our batched corruptions against the `imagecorruptions` package (ImageNet-C's code, one image
at a time in numpy), on the same pre-rendered CAPTCHAs, side by side in one process.

    uv run --group bench python benchmarks/bench_corruptions.py [--rounds 3] [--captchas 512]

Prints CAPTCHAs per second for each corruption both have, and the ratio. `imagecorruptions`
runs at severity 3 on the 100 x 110 grayscale CAPTCHA as uint8 (it makes it RGB); ours at
level 0.5 on the float batch. Its glass_blur, gaussian_blur and fog fail on current
scikit-image and NumPy, so they are left out; it has no counterpart of our strokes, dots and
zigzag, and we have none of its zoom blur, snow, frost, spatter, brightness and saturate.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch

from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.data.noise import NoiseConfig, apply_noise
from captcha_robustness.data.render import RenderConfig, patch_size
from captcha_robustness.data.synth import CaptchaSynth
from bench_synthesis import rate
from machine import describe

warnings.filterwarnings("ignore", category=UserWarning)  # pkg_resources, inside imagecorruptions
from imagecorruptions import corrupt  # noqa: E402

# ours -> imagecorruptions' name
PAIRS = {
    "gaussian": "gaussian_noise", "shot": "shot_noise", "salt_and_pepper": "impulse_noise",
    "speckle": "speckle_noise", "defocus": "defocus_blur", "motion_blur": "motion_blur",
    "contrast": "contrast", "elastic": "elastic_transform", "pixelate": "pixelate", "jpeg": "jpeg_compression",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--captchas", type=int, default=512, help="ours, per round")
    parser.add_argument("--baseline", type=int, default=64, help="imagecorruptions, per round")
    args = parser.parse_args()
    print(describe())
    splits = Mnist5kDigits().load()
    cfg = RenderConfig()
    synth = CaptchaSynth(splits.test, patch_size(splits.test.images, cfg), "test", 0, cfg, NoiseConfig())
    images = synth(torch.arange(args.captchas))["image"]
    keys = torch.arange(args.captchas)
    uint8 = [(img[0].numpy() * 255).round().astype(np.uint8) for img in images[: args.baseline]]
    for name, theirs in PAIRS.items():  # warm-up: first calls build tables and kernels
        apply_noise(images[:64], NoiseConfig.from_dict({"name": name, "level": 0.5}), keys[:64])
        corrupt(uint8[0], corruption_name=theirs, severity=3)
    results: dict[str, dict[str, list[float]]] = {name: {"ours": [], "theirs": []} for name in PAIRS}
    for _ in range(args.rounds):
        for name, theirs in PAIRS.items():
            noise = NoiseConfig.from_dict({"name": name, "level": 0.5})
            results[name]["ours"].append(rate(lambda: apply_noise(images, noise, keys), args.captchas))
            results[name]["theirs"].append(rate(
                lambda: [corrupt(img, corruption_name=theirs, severity=3) for img in uint8], args.baseline))
    print(f"\nCAPTCHAs/s, medians of {args.rounds} rounds (ours: {args.captchas} per round, batched; "
          f"imagecorruptions: {args.baseline}, one at a time)")
    print(f"{'ours':<16}{'imagecorruptions':<20}{'ours/s':>10}{'theirs/s':>10}{'ratio':>9}")
    for name, theirs in PAIRS.items():
        ours, base = statistics.median(results[name]["ours"]), statistics.median(results[name]["theirs"])
        print(f"{name:<16}{theirs:<20}{ours:>10,.0f}{base:>10,.0f}{ours / base:>8.1f}x")


if __name__ == "__main__":
    main()
