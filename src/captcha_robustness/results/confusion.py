"""Human-facing outputs of a run: confusion-matrix files and the final summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from captcha_robustness.files import atomic_path
from captcha_robustness.models.module import CaptchaModule


def save_confusion(module: CaptchaModule, out: Path, png: bool = True) -> None:
    """confusion_digit_K.csv (rows: true digit, columns: predicted) and, with `png`, confusion.png."""
    matrices = [counts.numpy() for counts in module.confusion_counts]
    for k, matrix in enumerate(matrices, start=1):
        frame = pd.DataFrame(matrix, index=pd.Index(range(10), name="true"), columns=[f"pred_{d}" for d in range(10)])
        with atomic_path(out / f"confusion_digit_{k}.csv") as tmp:
            frame.to_csv(tmp)
    if png:
        plot_confusion(matrices, out / "confusion.png")


def plot_confusion(matrices: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(3.2 * len(matrices), 3.2), squeeze=False)
    for k, (ax, matrix) in enumerate(zip(axes[0], matrices), start=1):
        rates = matrix / matrix.sum(1, keepdims=True).clip(min=1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"position {k}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(10)), ax.set_yticks(range(10))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def summary_lines(metrics: Mapping[str, float], out: Path, checkpoint: str | None,
                  seconds: float | None = None) -> list[str]:
    per_digit = " ".join(f"{metrics[k]:.3f}" for k in sorted(metrics) if k.startswith("test/acc_digit_"))
    lines = [
        "",
        f"whole-CAPTCHA accuracy (test/acc_seq): {metrics.get('test/acc_seq', float('nan')):.4f}",
        f"mean per-digit accuracy (test/acc_mean): {metrics.get('test/acc_mean', float('nan')):.4f}"
        f"   per position: {per_digit}",
    ]
    if seconds is not None:
        lines.append(f"training time: {seconds / 60:.1f} min")
    if checkpoint:
        lines.append(f"checkpoint: {checkpoint}")
    lines.append(f"results: {out}")
    return lines
