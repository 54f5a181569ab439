"""Time captcha-analyze on a generated predictions table of about 5 million rows (target:
under 10 minutes and 8 GB on a 2-core CPU): 4 models x 2 noise types x 21 levels x
--captchas CAPTCHAs, success drawn from a logistic curve per model and noise type.

    uv run python benchmarks/bench_analyze.py [--captchas 30000] [--bootstrap 200]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def generate(captchas: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = pd.Series(rng.integers(0, 10_000, captchas)).map("{:04d}".format).to_numpy()
    parts = []
    for model in range(4):
        for noise, slope in (("gaussian", -6.0), ("salt_and_pepper", -10.0)):
            for level in np.round(np.arange(0, 1.01, 0.05), 2):
                p = 1 / (1 + np.exp(-(2.0 + (slope + model) * level)))
                correct = rng.random(captchas) < p
                parts.append(pd.DataFrame({
                    "solver": "cnn", "model_id": f"model{model}", "train_noise": f"regime{model}",
                    "noise_type": noise, "noise_level": level, "seed": 0, "captcha_id": np.arange(captchas),
                    "label": labels, "prediction": np.where(correct, labels, "0000"), "correct": correct,
                    "n_correct": np.where(correct, 4, 1), "confidence": p, "error": None}))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captchas", type=int, default=30000)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = generate(args.captchas)
        path = Path(tmp) / "predictions.parquet"
        table.to_parquet(path, index=False)
        rows = len(table)
        del table
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "captcha_robustness.commands.analyze", f"predictions={path}",
                                 f"out_dir={Path(tmp) / 'out'}", f"bootstrap={args.bootstrap}"],
                                capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(result.stderr[-3000:])
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(f"captcha-analyze on {rows:,} rows: {seconds:.0f} s ({seconds / 60:.1f} min), peak memory {peak_gb:.1f} GB")


if __name__ == "__main__":
    main()
