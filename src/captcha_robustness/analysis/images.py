"""Re-rendering the CAPTCHAs behind a predictions table: each row names its sweep and job, whose
saved config (`.hydra/config.yaml`) fixes the digits, the renderer and the noise, and the
row's (seed, captcha_id) fixes the image. Used for the gallery and the image-damage table."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.synth import CaptchaSynth
from captcha_robustness.files import atomic_path

CONDITION = ["noise_type", "noise_level"]


def _config(row: pd.Series) -> DictConfig | None:
    path = Path(str(row["sweep"])) / str(row["job"]) / ".hydra" / "config.yaml"
    return OmegaConf.load(path) if path.is_file() else None


class Renderer:
    """Test CAPTCHAs as the rows' jobs rendered them: `clean(seed, ids)` and
    `noisy(noise_type, level, seed, ids)`. Build with `Renderer.of(table)`; None when no job
    config of the table can be found (a table copied away from its sweep folders)."""

    def __init__(self, job_cfg: DictConfig, noises: dict[tuple[str, float], NoiseConfig]) -> None:
        self.job_cfg, self.noises = job_cfg, noises
        self._synths: dict[int, CaptchaSynth] = {}

    @staticmethod
    def of(table: pd.DataFrame) -> Renderer | None:
        if not {"sweep", "job"} <= set(table.columns):
            return None
        jobs = table.drop_duplicates([*CONDITION, "sweep", "job"])
        noises, job_cfg = {}, None
        for _, row in jobs.iterrows():
            key = (row["noise_type"], float(row["noise_level"]))
            if key in noises:
                continue
            cfg = _config(row)
            if cfg is None:
                continue
            job_cfg = job_cfg if job_cfg is not None else cfg
            noises[key] = NoiseConfig.from_dict(OmegaConf.to_container(cfg.noise, resolve=True))
        return Renderer(job_cfg, noises) if job_cfg is not None else None

    def synth(self, seed: int) -> CaptchaSynth:
        if seed not in self._synths:
            dm = hydra.utils.instantiate(self.job_cfg.data, seed=seed)
            dm.setup()
            self._synths[seed] = dm.synths["test"]
        return self._synths[seed]

    def clean(self, seed: int, ids: torch.Tensor) -> torch.Tensor:
        return self.synth(seed).with_noise(NoiseConfig())(ids)["image"]

    def noisy(self, noise_type: str, level: float, seed: int, ids: torch.Tensor) -> torch.Tensor | None:
        noise = self.noises.get((noise_type, float(level)))
        return None if noise is None else self.synth(seed).with_noise(noise)(ids)["image"]

    def test_digits(self, table: pd.DataFrame) -> np.ndarray | None:
        """Per row, the index of each of its CAPTCHA's digits in the test digit pool (for
        digits=mnist, MNIST's test-set index), (rows, num_digits); None when the pool's labels
        disagree with the rows' labels (rows rendered from other digits than this config's)."""
        out, ids = None, table["captcha_id"].to_numpy()
        for seed, rows in table.groupby("seed").indices.items():  # positions of each seed's rows
            synth = self.synth(int(seed))
            index = synth.params(torch.tensor(ids[rows])).digit_index.cpu()
            labels = ["".join(map(str, digits)) for digits in synth.pool.labels.cpu()[index].tolist()]
            if labels != table["label"].iloc[rows].astype(str).tolist():
                return None
            out = np.empty((len(table), index.shape[1]), dtype=np.int64) if out is None else out
            out[rows] = index.numpy()
        return out

    def test_pool_images(self) -> torch.Tensor:
        """The test digit pool's images, uint8 (N, 28, 28), indexed as `test_digits` counts (the
        pools do not depend on the seed, so any rendered one will do)."""
        synth = next(iter(self._synths.values())) if self._synths else self.synth(0)
        return synth.pool.images.cpu()


def save_source_digits(sources: pd.DataFrame, pool_images: torch.Tensor, path: Path, count: int = 32,
                       columns: int = 8) -> None:
    """A PNG of the `count` test-pool digits with the most errors, summed over the models of
    `sources` (source_digit_errors' table): each digit as drawn, titled with its pool index and
    value, labelled with its errors and the `read_as` of the model that misread it most."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["test_digit", "digit"]
    totals = sources.groupby(keys, as_index=False)["errors"].sum()
    read_as = sources.sort_values("errors", ascending=False, kind="stable").drop_duplicates(keys)[[*keys, "read_as"]]
    worst = totals.merge(read_as, on=keys).sort_values(["errors", "test_digit"], ascending=[False, True]).head(count)
    rows = max(1, -(-len(worst) // columns))
    fig, axes = plt.subplots(rows, columns, squeeze=False, figsize=(1.3 * columns, 1.5 * rows + 0.3))
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, row in zip(axes.flat, worst.itertuples(index=False)):
        ax.set_axis_on()
        ax.set_xticks([]), ax.set_yticks([])
        ax.imshow(pool_images[row.test_digit].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"#{row.test_digit}: {row.digit}", fontsize=8, family="monospace", pad=2)
        ax.set_xlabel(f"{row.errors} errors, as {row.read_as}", fontsize=7, labelpad=1)
    fig.tight_layout(h_pad=0.4, w_pad=0.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def mid_levels(table: pd.DataFrame, limits: pd.DataFrame) -> dict[str, float]:
    """Per noise type, the tested level (above 0) nearest the median 50%-threshold of the
    solvers/models; the median tested level where no threshold is known."""
    out = {}
    for noise, rows in table[table["noise_level"] > 0].groupby("noise_type"):
        levels = np.sort(rows["noise_level"].unique())
        known = limits.loc[limits["noise_type"] == noise, "level_50"].dropna()
        target = known.median() if len(known) else np.median(levels)
        out[noise] = float(levels[np.argmin(np.abs(levels - target))])
    return out


def _readings(table: pd.DataFrame, noise_type: str | None, level: float) -> pd.Series:
    """The predictions of every solver/model per CAPTCHA in one condition, joined by spaces."""
    rows = table[table["noise_level"] == level]
    if noise_type is not None:
        rows = rows[rows["noise_type"] == noise_type]
    rows = rows.drop_duplicates(["model_id", "seed", "captcha_id"]).sort_values("model_id")
    answers = rows["prediction"].fillna("").replace("", "-")
    return answers.groupby([rows["seed"], rows["captcha_id"]]).agg(" ".join)


def save_gallery(table: pd.DataFrame, hardest: pd.DataFrame, renderer: Renderer, mids: dict[str, float], path: Path,
                 count: int = 24, columns: int = 8) -> None:
    """A PNG of the `count` hardest and `count` easiest CAPTCHAs: each clean and under every
    noise type at its mid level (row labels on the left), titled with the truth and labelled
    with what each solver/model read (in model_id order) in that condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [("hardest", hardest.head(count)), ("easiest", hardest.tail(count).iloc[::-1])]
    views = [("clean", None, 0.0), *[(f"{n} {lv:g}", n, lv) for n, lv in mids.items()]]
    readings = {name: _readings(table, noise, level) for name, noise, level in views}
    block_rows = -(-count // columns)
    fig, axes = plt.subplots(2 * block_rows * len(views), columns, squeeze=False,
                             figsize=(1.6 * columns, 1.05 * 2 * block_rows * len(views) + 0.6))
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_axis_off()
    for p, (title, picked) in enumerate(picks):
        for i, row in enumerate(picked.itertuples(index=False)):
            ids = torch.tensor([row.captcha_id])
            top = (p * block_rows + i // columns) * len(views)
            for v, (name, noise, level) in enumerate(views):
                image = renderer.clean(row.seed, ids) if noise is None else renderer.noisy(noise, level, row.seed, ids)
                ax = axes[top + v][i % columns]
                ax.set_axis_on()
                if image is not None:
                    ax.imshow(image[0, 0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xlabel(readings[name].get((row.seed, row.captcha_id), "not read"), fontsize=6,
                              family="monospace", labelpad=1)
                if i % columns == 0:
                    ax.set_ylabel(name, fontsize=7)
                if v == 0:
                    ax.set_title(f"{title} #{row.rank}: {row.label}", fontsize=7, family="monospace", pad=2)
    fig.tight_layout(h_pad=0.3, w_pad=0.2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
