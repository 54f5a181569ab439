"""Rendering + noise throughput: our batched renderer against the reference's per-CAPTCHA
PIL loop, side by side in one process, in alternating rounds (these machines are noisy;
the medians are reported).

    uv run python benchmarks/bench_synthesis.py [--layout reference|touching] [--rounds 5] [--batch 256]
        [--digits-root data] [--default-malloc]

Both run in one process: the baseline is single-threaded Python by nature; ours uses
torch's intra-op threads (all cores of this process), as the DataModule does with
data.num_workers=0. More workers come on top and are measured separately. Like the
project's commands, it first fixes glibc's malloc thresholds (captcha_robustness.memory);
--default-malloc leaves glibc's adaptive defaults instead.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import reference_pil
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import MnistDigits, Mnist5kDigits
from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.render import RenderConfig, patch_size
from captcha_robustness.data.synth import CaptchaSynth
from machine import describe
from captcha_robustness.memory import reuse_freed_memory

NOISES = [("none", 0.0), ("gaussian", 0.3), ("salt_and_pepper", 0.3)]
# The faithful loop keeps RGB with equal channels like the reference; the lean one is grayscale.
BASELINES = {"PIL loop (RGB)": 3, "PIL loop (gray)": 1}


def rate(fn, count: int) -> float:
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--ours", type=int, default=8192, help="CAPTCHAs per round, ours")
    parser.add_argument("--baseline", type=int, default=500, help="CAPTCHAs per round, PIL loop")
    parser.add_argument("--digits-root", default=None, help="full MNIST root (default: embedded mnist5k)")
    parser.add_argument("--layout", default="reference", choices=["reference", "touching"],
                        help="data.render.layout, on both sides")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's adaptive malloc thresholds")
    args = parser.parse_args()
    malloc = "glibc defaults" if args.default_malloc else "fixed thresholds" if reuse_freed_memory() else "defaults"

    source = MnistDigits(root=args.digits_root) if args.digits_root else Mnist5kDigits()
    splits = source.load()
    cfg = RenderConfig(layout=args.layout)
    patch = patch_size(splits.train.images, cfg)
    pool_np, labels_np = splits.train.images.numpy(), splits.train.labels.numpy()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(describe())
    print(f"layout={args.layout}, digits={source.name} (train pool {len(splits.train)}), "
          f"batch={args.batch}, rounds={args.rounds}, devices={devices}, malloc {malloc}")

    results: dict[tuple[str, str], list[float]] = {}
    gen = np.random.default_rng(0)
    next_id = 0
    for _ in range(args.rounds):
        for name, level in NOISES:
            noise_arg = None if name == "none" else name
            for baseline, channels in BASELINES.items():
                results.setdefault((name, baseline), []).append(rate(
                    lambda: [reference_pil.render_noisy(pool_np, labels_np, gen, noise_arg, level, cfg, channels)
                             for _ in range(args.baseline)], args.baseline))
            noise = NoiseConfig.from_dict({"name": name, "level": level})
            for device in devices:
                synth = CaptchaSynth(splits.train, patch, "train", 0, cfg, noise).to(device)

                def ours() -> None:
                    nonlocal next_id
                    for start in range(next_id, next_id + args.ours, args.batch):
                        synth(torch.arange(start, start + args.batch, device=device))
                    if device == "cuda":
                        torch.cuda.synchronize()
                    next_id += args.ours

                results.setdefault((name, device), []).append(rate(ours, args.ours))

    print(f"\nCAPTCHAs/s, medians of {args.rounds} rounds; ratios are ours / baseline")
    header = f"{'noise':<20}" + "".join(f"{b:>17}" for b in BASELINES)
    header += "".join(f"{'ours ' + d:>12}" + "".join(f"{'vs ' + b.split()[-1]:>10}" for b in BASELINES) for d in devices)
    print(header)
    for name, level in NOISES:
        bases = [statistics.median(results[(name, b)]) for b in BASELINES]
        row = f"{name + (f' {level:g}' if level else ''):<20}" + "".join(f"{b:>17,.0f}" for b in bases)
        for device in devices:
            ours = statistics.median(results[(name, device)])
            row += f"{ours:>12,.0f}" + "".join(f"{ours / b:>9.1f}x" for b in bases)
        print(row)

    print("\nThrough the DataModule (salt_and_pepper 0.3, batch 64, train split), CAPTCHAs/s:")
    for workers, augment in ((0, None), (2, None), (0, {"elastic_alpha": 3.0})):
        dm = CaptchaDataModule(source, {"name": "salt_and_pepper", "level": 0.3}, cfg, train_size=64 * 120,
                               batch_size=64, num_workers=workers, augment=augment)
        batches = iter(dm.train_dataloader())
        next(batches)  # start the workers (and build their noise tables) before timing
        label = f"num_workers={workers}" + (", data.augment.elastic_alpha=3" if augment else "")
        print(f"  {label}: {rate(lambda: [b for b in batches], 64 * 119):,.0f}")


if __name__ == "__main__":
    main()
