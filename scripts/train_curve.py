"""Accuracy versus training wall time: runs captcha-train with the given overrides and plots
val/acc_seq and val/acc_mean against elapsed minutes (from the run's csv/metrics.csv).

    uv run python scripts/train_curve.py OUT_DIR [captcha-train overrides ...]
    uv run python scripts/train_curve.py runs/curve-15min digits=mnist digits.root=data \\
        trainer.max_epochs=40

Writes OUT_DIR (the run directory) with everything captcha-train writes, plus curve.csv
and curve.png, and prints the training process's peak memory (RSS). With an existing
OUT_DIR/csv/metrics.csv and no overrides, only re-plots.
"""

from __future__ import annotations

import resource
import subprocess
import textwrap
import sys
from pathlib import Path

import pandas as pd
import yaml


def curve(metrics_csv: Path) -> pd.DataFrame:
    frame = pd.read_csv(metrics_csv)
    cols = ["epoch", "step", "time/elapsed_min", "val/acc_seq", "val/acc_mean"]
    return frame.dropna(subset=["val/acc_seq", "time/elapsed_min"])[cols].reset_index(drop=True)


def plot(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(table["time/elapsed_min"], table["val/acc_seq"], marker="o", label="whole CAPTCHA (val/acc_seq)")
    ax.plot(table["time/elapsed_min"], table["val/acc_mean"], marker=".", label="per digit (val/acc_mean)")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out, overrides = Path(sys.argv[1]), sys.argv[2:]
    if overrides or not (out / "csv" / "metrics.csv").exists():
        cmd = [sys.executable, "-m", "captcha_robustness.commands.train", *overrides, f"hydra.run.dir={out}"]
        print("running:", " ".join(cmd), flush=True)
        returncode = subprocess.run(cmd).returncode
        if returncode != 0:
            sys.exit(f"error: captcha-train failed (exit status {returncode}); its message is above")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        print(f"peak memory (RSS) of the training process: {peak_kib / 2**20:.2f} GiB")
    metrics_csv = out / "csv" / "metrics.csv"
    if not metrics_csv.exists():
        sys.exit(f"error: {metrics_csv}: missing, so there is no curve to plot; the run logged no "
                 f"metrics (debug=fast_dev_run turns the loggers off)")
    table = curve(metrics_csv)
    table.to_csv(out / "curve.csv", index=False)
    recorded = out / ".hydra" / "overrides.yaml"
    if not overrides and recorded.exists():
        overrides = [o for o in yaml.safe_load(recorded.read_text()) if not o.startswith("hydra.")]
    shown = [o for o in overrides if "progress_bar" not in o]
    plot(table, out / "curve.png", textwrap.fill("captcha-train " + " ".join(shown), 90))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
