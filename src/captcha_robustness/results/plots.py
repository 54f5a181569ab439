"""Figures of a sweep summary (matplotlib, Agg): accuracy against noise level, per position,
and the robustness heatmap. Each function takes summary rows of finished jobs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from captcha_robustness.files import atomic_path  # noqa: E402


def curve_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a numeric level; a clean (noise none) job becomes level 0 of every noise type
    that lacks its own level-0 job."""
    rows = rows[rows["noise_level"].notna()]
    clean, noisy = rows[rows["noise_type"] == "none"], rows[rows["noise_type"] != "none"]
    extra = []
    for noise_type, group in noisy.groupby("noise_type"):
        for series in group["series"].unique():
            has_zero = ((group["series"] == series) & (group["noise_level"] == 0)).any()
            zero = clean[clean["series"] == series]
            if not has_zero and not zero.empty:
                extra.append(zero.assign(noise_type=noise_type))
    points = pd.concat([noisy, *extra]) if not noisy.empty else clean
    return points.sort_values(["series", "noise_type", "noise_level"])


def _mean_over_seeds(points: pd.DataFrame) -> pd.DataFrame:
    """One point per (series, noise type, level): the mean, with a band of +-1 sd over seeds."""
    grouped = points.groupby(["series", "noise_type", "noise_level"])
    mean = grouped[["acc_seq", "acc_mean"] + [c for c in points if c.startswith("acc_digit_")]].mean()
    sd = grouped[["acc_seq", "acc_mean"]].std().fillna(0)
    for metric in ("acc_seq", "acc_mean"):
        mean[f"{metric}_ci_low"] = mean[metric] - sd[metric]
        mean[f"{metric}_ci_high"] = mean[metric] + sd[metric]
    return mean.reset_index()


def accuracy_vs_level(rows: pd.DataFrame, out: Path, spread_over_seeds: bool = False) -> list[Path]:
    """Whole-CAPTCHA and mean per-digit accuracy against level, one line per series and noise
    type; bands: 95% intervals (Wilson for acc_seq), or +-1 sd over seeds."""
    points = curve_points(rows)
    if points.empty:
        return []
    if spread_over_seeds:
        points = _mean_over_seeds(points)
    band = "+-1 sd over seeds" if spread_over_seeds else "95% interval"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharex=True, sharey=True)
    # Colour: the series (model); line style: the noise type.
    colours = {series: f"C{i % 10}" for i, series in enumerate(points["series"].unique())}
    styles = {noise: ("-", "--", ":", "-.")[i % 4] for i, noise in enumerate(sorted(points["noise_type"].unique()))}
    for ax, metric, title in zip(axes, ("acc_seq", "acc_mean"), ("whole CAPTCHA (acc_seq)", "mean per digit (acc_mean)")):
        for (series, noise_type), line in points.groupby(["series", "noise_type"], sort=False):
            label = noise_type if len(colours) == 1 else f"{series}: {noise_type}"
            ax.plot(line["noise_level"], line[metric], marker=".", color=colours[series], linestyle=styles[noise_type],
                    label=label)
            ax.fill_between(line["noise_level"], line[f"{metric}_ci_low"], line[f"{metric}_ci_high"],
                            color=colours[series], alpha=0.2, linewidth=0)
        ax.set_title(f"{title}; band: {band}", fontsize=10)
        ax.set_xlabel("noise level (fraction of pixels hit)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    if len(colours) == 1:
        axes[1].legend(fontsize=8, loc="best")
    else:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.045 * -(-len(labels) // 2), 1, 1))
    return [_save(fig, out / "accuracy_vs_level.png", tight=len(colours) == 1)]


def accuracy_by_position(rows: pd.DataFrame, out: Path) -> list[Path]:
    """Per-position accuracy against level: one panel per (series, noise type), one line per position."""
    points = curve_points(rows)
    if points.empty:
        return []
    points = points.groupby(["series", "noise_type", "noise_level"], sort=False).mean(numeric_only=True).reset_index()
    panels = list(points.groupby(["series", "noise_type"], sort=False))
    columns = min(len(panels), 4)
    rows_n = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(4 * columns, 3.4 * rows_n), squeeze=False, sharey=True)
    positions = sorted(c for c in points if c.startswith("acc_digit_"))
    for ax, ((series, noise_type), panel) in zip(axes.flat, panels):
        for column in positions:
            ax.plot(panel["noise_level"], panel[column], marker=".", label=f"position {column.rsplit('_', 1)[1]}")
        ax.set_title(noise_type if points["series"].nunique() == 1 else f"{noise_type}\n{series}", fontsize=9)
        ax.set_xlabel("noise level")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    axes[0][0].set_ylabel("per-digit accuracy")
    axes[0][0].legend(fontsize=8)
    return [_save(fig, out / "accuracy_by_position.png")]


def robustness_heatmap(matrix: pd.DataFrame, out: Path) -> list[Path]:
    """acc_seq with rows: model (training regime), columns: test condition."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * matrix.shape[1] + 3), 0.5 * matrix.shape[0] + 2.2))
    image = ax.imshow(matrix.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=8)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=90, fontsize=7)
    ax.set_xlabel("test condition")
    ax.set_title("whole-CAPTCHA accuracy (acc_seq): model x test noise", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    return [_save(fig, out / "robustness_matrix.png")]


def accuracy_vs_damage(security: pd.DataFrame, out: Path) -> list[Path]:
    """Whole-CAPTCHA accuracy against image damage (1 - SSIM), one line per model (colour) and
    noise type (line style), from captcha-analyze's security table."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {model: f"C{i % 10}" for i, model in enumerate(security["model"].unique())}
    styles = {noise: ("-", "--", ":", "-.")[i % 4] for i, noise in enumerate(sorted(security["noise_type"].unique()))}
    for (model, noise), curve in security.groupby(["model", "noise_type"], sort=False):
        curve = curve.sort_values("damage")
        ax.plot(curve["damage"], curve["acc_seq"], marker=".", color=colours[model], linestyle=styles[noise],
                label=f"{model}, {noise}")
    ax.set_xlabel("image damage, 1 - SSIM against the clean CAPTCHA")
    ax.set_ylabel("whole-CAPTCHA accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return [_save(fig, out / "accuracy_vs_damage.png")]


def adversarial_curves(crafted: pd.DataFrame, random: pd.DataFrame, counterparts: dict[str, str],
                       out: Path) -> list[Path]:
    """Accuracy against budget, one panel per attack (rows) and reading model (columns): the
    attack's random counterpart at the same levels, and the crafted noise per role (white-box,
    member, transfer; every surrogate in that role pooled). `crafted`: adversarial_summary rows;
    `random`: summary rows. The level axis is logarithmic (level 0 is left out)."""
    attacks = [a for a in counterparts if a in set(crafted["noise_type"])]
    models = list(crafted["model"].unique())
    if not attacks or not models:
        return []
    fig, axes = plt.subplots(len(attacks), len(models), figsize=(2.6 * len(models), 2.5 * len(attacks) + 0.6),
                             sharey=True, squeeze=False)
    styles = {"random": ("k", "-"), "white-box": ("C3", "-"), "member": ("C1", "--"), "transfer": ("C0", "-")}
    for r, attack in enumerate(attacks):
        for c, model in enumerate(models):
            ax = axes[r][c]
            noise = random[(random["model"] == model) & (random["noise_type"] == counterparts[attack])
                           & (random["noise_level"] > 0)].sort_values("noise_level")
            lines = [("random", noise)] + [
                (role, rows.groupby("noise_level", as_index=False).apply(
                    lambda g: pd.Series({"acc_seq": (g["acc_seq"] * g["n"]).sum() / g["n"].sum()}),
                    include_groups=False))
                for role, rows in crafted[(crafted["model"] == model) & (crafted["noise_type"] == attack)].groupby(
                    "role", sort=False)]
            for role, line in lines:
                colour, style = styles[role]
                label = f"random ({counterparts[attack]})" if role == "random" else role
                ax.plot(line["noise_level"], line["acc_seq"], marker=".", color=colour, linestyle=style, label=label)
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title("\n".join(textwrap.wrap(model, 30)) if r == 0 else "", fontsize=7)
            ax.set_xlabel(f"{attack} budget (level)" if r == len(attacks) - 1 else "", fontsize=7)
            ax.tick_params(labelsize=6)
        axes[r][0].set_ylabel(f"{attack}\nwhole-CAPTCHA accuracy", fontsize=7)
    handles = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=7,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return [_save(fig, out / "adversarial_curves.png", tight=False)]


def _save(fig, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return path
