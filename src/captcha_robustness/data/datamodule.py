"""The LightningDataModule: CAPTCHAs rendered on the fly, a batch at a time.

Datasets are indexed by captcha_id and render whole batches in `__getitems__`; samplers
decide which ids each rank sees. Training ids move on every epoch (epoch * train_size + i),
so each epoch is a fresh draw; val and test are fixed sets in captcha_id order. Under DDP
each rank takes every world_size-th id, so ranks (and the workers serving them, which get
whole batches) never draw the same CAPTCHA. Set the trainer's use_distributed_sampler=False.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from captcha_robustness.data.digits import SPLITS, DigitSplits
from captcha_robustness.data.noise import NoiseConfig
from captcha_robustness.data.render import patch_size
from captcha_robustness.data.settings import Augment, RenderConfig, dataclass_from
from captcha_robustness.data.synth import CaptchaSynth
from captcha_robustness.errors import ConfigError
from captcha_robustness.validate import check_field


class CaptchaDataset(Dataset):
    """CAPTCHAs of one split by captcha_id; `__getitems__` renders a whole batch at once.

    With `ids_only`, batches carry only `captcha_id` and `split`, and the DataModule renders
    them on the device the batch was moved to (`data.render_on_device=true`).
    """

    def __init__(self, synth: CaptchaSynth, size: int, ids_only: bool = False) -> None:
        self.synth, self.size, self.ids_only = synth, size, ids_only

    def __len__(self) -> int:
        return self.size

    def __getitems__(self, ids: list[int]) -> dict[str, torch.Tensor]:
        ids_t = torch.as_tensor(ids, dtype=torch.int64)
        return {"captcha_id": ids_t, "split": self.synth.split} if self.ids_only else self.synth(ids_t)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class CaptchaIdSampler(Sampler[int]):
    """Ids `offset + rank, offset + rank + world_size, ...` below `offset + size`, where the
    offset is `epoch * size` when `fresh_each_epoch` (training) and 0 otherwise. Lightning
    calls `set_epoch` at the start of every epoch."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1, fresh_each_epoch: bool = False) -> None:
        self.size, self.rank, self.world_size, self.fresh = size, rank, world_size, fresh_each_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * self.size if self.fresh else 0
        stop = offset + (self.size // self.world_size) * self.world_size if self.fresh else offset + self.size
        return iter(range(offset + self.rank, stop, self.world_size))

    def __len__(self) -> int:
        if self.fresh:  # equal share per rank so DDP ranks step together
            return self.size // self.world_size
        return math.ceil(max(self.size - self.rank, 0) / self.world_size)


def _whole_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


class CaptchaDataModule(pl.LightningDataModule):
    def __init__(
        self,
        digits: Any,
        noise: Mapping | NoiseConfig | None = None,
        render: Mapping | RenderConfig | None = None,
        seed: int = 0,
        train_size: int = 20000,
        val_size: int = 2000,
        test_size: int = 10000,
        batch_size: int = 64,
        num_workers: int = 0,
        render_on_device: bool = False,
        augment: Mapping | Augment | None = None,
    ) -> None:
        super().__init__()
        if not hasattr(digits, "load"):
            raise ConfigError(f"digits: must be a digit source (digits=mnist or digits=mnist5k), got {digits!r}")
        self.digits = digits
        self.noise = noise if isinstance(noise, NoiseConfig) else NoiseConfig.from_dict(noise or {})
        if isinstance(render, RenderConfig):
            self.render_cfg = render
        else:
            self.render_cfg = dataclass_from("data.render", RenderConfig, render)
        self.augment = augment if isinstance(augment, Augment) else dataclass_from("data.augment", Augment, augment)
        self.seed = check_field("seed", seed)
        self.sizes = {
            "train": check_field("data.train_size", train_size),
            "val": check_field("data.val_size", val_size),
            "test": check_field("data.test_size", test_size),
        }
        self.batch_size = check_field("data.batch_size", batch_size)
        self.num_workers = check_field("data.num_workers", num_workers)
        self.render_on_device = bool(render_on_device)
        self.splits: DigitSplits | None = None
        self.synths: dict[str, CaptchaSynth] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        self.splits = self.digits.load()
        patch = max(patch_size(self.splits.pool(s).images, self.render_cfg) for s in SPLITS)
        self.synths = {
            s: CaptchaSynth(self.splits.pool(s), patch, s, self.seed, self.render_cfg, self.noise) for s in SPLITS
        }
        if self.augment.active:  # training CAPTCHAs only: val and test keep the recipe
            train_cfg = self.augment.render_config(self.render_cfg)
            train_patch = patch_size(self.splits.train.images, train_cfg, self.augment)
            self.synths["train"] = CaptchaSynth(self.splits.train, train_patch, "train", self.seed, train_cfg,
                                                self.noise, augment=self.augment)

    def set_noise(self, noise: Mapping | NoiseConfig) -> None:
        """Change the noise of every split, keeping digits and prerendered clean CAPTCHAs."""
        self.noise = noise if isinstance(noise, NoiseConfig) else NoiseConfig.from_dict(noise)
        self.synths = {s: synth.with_noise(self.noise) for s, synth in self.synths.items()}

    def prerender(self, split: str, max_bytes: int = 2**31) -> bool:
        """Render `split`'s clean CAPTCHAs once and keep them (evaluation sweeps reuse them
        under every noise). Skipped, returning False, when they would take over `max_bytes`."""
        self.setup()
        cfg = self.render_cfg
        if self.sizes[split] * cfg.height * cfg.width * 4 > max_bytes:
            return False
        self.synths[split] = self.synths[split].prerendered(self.sizes[split])
        return True

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def dataloader(self, split: str) -> DataLoader:
        self.setup()
        rank, world = self._rank_world()
        sampler = CaptchaIdSampler(self.sizes[split], rank, world, fresh_each_epoch=split == "train")
        return DataLoader(
            CaptchaDataset(self.synths[split], self.sizes[split], ids_only=self.render_on_device),
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=_whole_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=split == "train",
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train")

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        if "image" in batch:
            return batch
        split = batch["split"]
        device = batch["captcha_id"].device
        if self.synths[split].pool.images.device != device:
            self.synths[split] = self.synths[split].to(device)
        return self.synths[split](batch["captcha_id"])
