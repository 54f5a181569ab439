"""captcha-render: a PNG grid of the same test CAPTCHAs, clean and under each noise and level
(`grid.by=captcha`: a row per noise and level; `grid.by=level`: a row per noise, a column per level)."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.commands.cli import run_dir
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.noise import NOISES, NoiseConfig
from captcha_robustness.files import atomic_path


def grid_rows(dm: CaptchaDataModule, split: str, noises: list[str], levels: list[float],
              count: int) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """Rows of (title, images (count, 1, H, W)) for CAPTCHAs 0..count-1, clean and at each
    noise x level, and the CAPTCHAs' labels as strings."""
    synth = dm.synths[split]
    ids = torch.arange(count)
    clean = synth.with_noise(NoiseConfig())(ids)
    rows = [("clean", clean["image"])]
    for name in noises:
        for level in levels:
            noisy = synth.with_noise(NoiseConfig.from_dict({"name": name, "level": level}))(ids)
            rows.append((f"{name} {level:g}", noisy["image"]))
    return rows, ["".join(map(str, label.tolist())) for label in clean["label"]]


def level_rows(dm: CaptchaDataModule, split: str, noises: list[str], levels: list[float],
               captcha_id: int) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """One row per noise type, one column per level (0: clean first), of one CAPTCHA."""
    synth = dm.synths[split]
    ids = torch.tensor([captcha_id])
    columns = [0.0, *levels]
    rows = [(name, torch.cat([synth.with_noise(NoiseConfig.from_dict({"name": name, "level": level}))(ids)["image"]
                              for level in columns])) for name in noises]
    return rows, ["clean" if level == 0 else f"level {level:g}" for level in columns]


def save_grid(rows: list[tuple[str, torch.Tensor]], labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(labels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols + 1.2, 1.25 * n_rows), squeeze=False)
    for r, (title, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.imshow(images[c, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[c], fontsize=10, family="monospace")
            if c == 0:
                ax.set_ylabel(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def render_grid(cfg: DictConfig) -> None:
    grid = cfg.grid  # checked before any work (preflight.check_render)
    levels = OmegaConf.to_container(grid.levels) if OmegaConf.is_list(grid.levels) else [grid.levels]
    noises = OmegaConf.to_container(grid.noises) if OmegaConf.is_list(grid.noises) else [grid.noises]
    if noises == ["all"]:
        noises = sorted(set(NOISES) - {"none"})
    dm: CaptchaDataModule = hydra.utils.instantiate(cfg.data)
    dm.setup()
    if grid.by == "level":
        rows, labels = level_rows(dm, grid.split, noises, levels, grid.captcha_id)
    else:
        rows, labels = grid_rows(dm, grid.split, noises, levels, grid.count)
    out = run_dir() / grid.out
    out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(rows, labels, out)
    print(f"wrote {out} ({len(rows)} rows x {len(labels)} columns, split={grid.split}, "
          f"digits={type(dm.digits).__name__}, seed={cfg.seed})")


if __name__ == "__main__":
    from captcha_robustness.commands.entry import render

    render()
