"""How well a checkpoint reads CAPTCHAs drawn by another implementation of the recipe: the
per-CAPTCHA Pillow oracle (benchmarks/reference_pil.py) in the reference layout and in the
touching layout, saved as 8-bit PNGs and read back through `captcha-predict`, set against the
project's own test CAPTCHAs (data.render as configured: the reference layout by default)
saved and read back the same way (so the PNG round trip costs every side alike).

    uv run python scripts/reference_gap.py CKPT [--count 2000] [--out DIR] [overrides, e.g. digits.root=data]

Every side draws its digits from the test split of the digit source the checkpoint trained
on. Prints, per side, the CAPTCHAs read, whole-CAPTCHA and per-digit accuracy, then each
oracle layout's gap in points of whole-CAPTCHA accuracy (ours minus the oracle's). The PNGs
stay in --out (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, beside scripts/
from benchmarks import reference_pil  # noqa: E402
from captcha_robustness.commands.cli import CONFIG_DIR  # noqa: E402
from captcha_robustness.data.render import RenderConfig  # noqa: E402
from captcha_robustness.errors import ConfigError  # noqa: E402
from captcha_robustness.runs import load_module  # noqa: E402


def save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(path)


SIDES = {"ours": "ours (batched, this project)", "reference": "oracle, reference layout",
         "touching": "oracle, touching layout"}


def write_captchas(ckpt: str, overrides: list[str], count: int, out: Path) -> None:
    """`count` test CAPTCHAs from our renderer into out/ours and from the Pillow oracle into
    out/reference and out/touching, each named `<index>_<label>.png`."""
    trained_on = (load_module(ckpt).hparams.data_info or {}).get("digits")
    chosen = [o for o in overrides if o.startswith("digits=")]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides if chosen or not trained_on else [f"digits={trained_on}", *overrides])
    datamodule = hydra.utils.instantiate(cfg.data, noise={"name": "none"})
    datamodule.setup()
    synth = datamodule.synths["test"]
    for side in SIDES:
        (out / side).mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 500):
        captchas = synth(torch.arange(start, min(start + 500, count)))
        for i, (image, label) in enumerate(zip(captchas["image"], captchas["label"]), start):
            save_png(image[0].numpy(), out / "ours" / f"{i:05d}_{''.join(map(str, label.tolist()))}.png")
    render = RenderConfig(**OmegaConf.to_container(cfg.data.render, resolve=True))
    pool, labels = synth.pool.images.numpy(), synth.pool.labels.numpy()
    for layout in ("reference", "touching"):
        gen = np.random.default_rng(cfg.seed)
        for i in range(count):
            image, label = reference_pil.render_noisy(pool, labels, gen, None, 0.0, render, layout=layout)
            save_png(image, out / layout / f"{i:05d}_{''.join(map(str, label.tolist()))}.png")


def read_back(ckpt: str, folder: Path) -> tuple[int, float, float]:
    """CAPTCHAs read, whole-CAPTCHA and per-digit accuracy of `captcha-predict` on a folder."""
    csv = folder.with_suffix(".csv")
    command = [sys.executable, "-m", "captcha_robustness.predict", f"ckpt_path={ckpt}", f"images={folder}",
               f"out={csv}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"captcha-predict failed on {folder}: {done.stderr.strip().splitlines()[-1]}")
    rows = pd.read_csv(csv, dtype={"prediction": str})
    truth = rows["path"].map(lambda p: Path(p).stem.split("_")[1])
    digits = np.array([[a == b for a, b in zip(t, p)] for t, p in zip(truth, rows["prediction"])])
    return len(rows), float(digits.all(1).mean()), float(digits.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="CKPT_OR_OVERRIDE",
                        help="one checkpoint, then config overrides (digits.root=..., seed=...; anything with '=')")
    parser.add_argument("--count", type=int, default=2000, help="CAPTCHAs per side")
    parser.add_argument("--out", default=None, help="folder for the PNGs (default: a temporary one)")
    args = parser.parse_intermixed_args()
    ckpts = [item for item in args.inputs if "=" not in item]
    if len(ckpts) != 1:
        sys.exit("error: CKPT: give exactly one checkpoint")
    if args.count < 1:
        sys.exit("error: --count: must be a positive integer")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        try:
            write_captchas(ckpts[0], [item for item in args.inputs if "=" in item], args.count, out)
            results = {side: read_back(ckpts[0], out / side) for side in SIDES}
        except ConfigError as exc:
            sys.exit(f"error: {exc}")
    print(f"{'renderer':<30}{'CAPTCHAs':>10}{'acc_seq':>10}{'acc_mean':>10}")
    for side, name in SIDES.items():
        n, seq, mean = results[side]
        print(f"{name:<30}{n:>10,}{seq:>10.4f}{mean:>10.4f}")
    for layout in ("reference", "touching"):
        gap = 100 * (results["ours"][1] - results[layout][1])
        print(f"gap, {layout} layout: {gap:+.2f} points of whole-CAPTCHA accuracy")


if __name__ == "__main__":
    main()
