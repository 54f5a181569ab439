"""Time the user's evaluation sweep end to end, as typed on the command line:

    captcha-eval -m ckpt_path=CKPT noise=gaussian,salt_and_pepper 'noise.level=range(0,1.05,0.05)'

(2 noise types x 21 levels, data.test_size CAPTCHAs each; target: under 5 minutes for 10,000
on a 2-core CPU). Without --ckpt, a default-architecture model is trained for a few steps
first (its accuracy does not change the timing). With --compare-uncached, the first
--compare-jobs levels are also run with prerender_test=false (every job renders its
clean CAPTCHAs again), side by side, to show what the shared clean test set saves.

    uv run python benchmarks/bench_sweep.py [--ckpt PATH] [--test-size 10000] [--compare-uncached]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

QUIET = ["trainer.enable_progress_bar=false"]


def command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"captcha_robustness.{module}", *args]


def run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def tiny_checkpoint(cwd: Path) -> str:
    run(command("train", "data.train_size=256", "data.val_size=64", "data.test_size=64", "trainer.max_epochs=1",
                "hydra.run.dir=tiny", *QUIET), cwd)
    return json.loads((cwd / "tiny" / "metrics.json").read_text())["last_checkpoint"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="a captcha-train checkpoint; default: train a tiny default model")
    parser.add_argument("--test-size", type=int, default=10000)
    parser.add_argument("--levels", default="range(0,1.05,0.05)")
    parser.add_argument("--compare-uncached", action="store_true")
    parser.add_argument("--compare-jobs", type=int, default=3, help="levels per noise type in the comparison")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        ckpt = str(Path(args.ckpt).resolve()) if args.ckpt else tiny_checkpoint(cwd)
        sweep = ["-m", f"ckpt_path={ckpt}", "noise=gaussian,salt_and_pepper", f"data.test_size={args.test_size}", *QUIET]
        seconds = run(command("evaluate", *sweep, f"noise.level={args.levels}", "hydra.sweep.dir=sweep"), cwd)
        summary = pd.read_csv(cwd / "sweep" / "summary.csv")
        rows = len(pd.read_parquet(cwd / "sweep" / "predictions.parquet", columns=["captcha_id"]))
        jobs = len(summary)
        print(f"sweep: {jobs} jobs x {args.test_size:,} CAPTCHAs = {rows:,} rows in {seconds:.0f} s "
              f"({seconds / 60:.2f} min, {seconds / jobs:.1f} s per job, {rows / seconds:,.0f} CAPTCHAs/s), "
              f"all jobs done: {(summary['status'] == 'done').all()}")
        if args.compare_uncached:
            levels = ",".join(f"{0.1 * (i + 1):.1f}" for i in range(args.compare_jobs))
            timings = {}
            for prerender in ("true", "false"):
                timings[prerender] = run(command("evaluate", *sweep, f"noise.level={levels}",
                                                 f"prerender_test={prerender}",
                                                 f"hydra.sweep.dir=compare-{prerender}"), cwd)
            n = 2 * args.compare_jobs
            print(f"{n} jobs: shared clean test set {timings['true']:.0f} s, rendered per job {timings['false']:.0f} s "
                  f"({timings['false'] / timings['true']:.2f}x)")


if __name__ == "__main__":
    main()
