"""The LightningModule: a multi-head CNN with its loss, optimiser and CAPTCHA metrics.

Everything needed to rebuild it is saved in the checkpoint's hyperparameters (the model,
optimiser and scheduler configs as plain dicts), so `CaptchaModule.load_from_checkpoint(path)`
needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchmetrics
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from captcha_robustness.data import adversarial, rng
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.mutual import (
    MutualEnsemble,
    log_mean_softmax,
    mutual_loss,
)
from captcha_robustness.validate import check_field, one_of

STAGES = ("train", "val", "test")


def digit_strings(digits: torch.Tensor) -> list[str]:
    """(B, n) int digits -> ["0427", ...]."""
    return ["".join(map(str, row)) for row in digits.tolist()]


def confidence(logits: torch.Tensor) -> torch.Tensor:
    """A CAPTCHA's confidence: the product over heads of each head's top softmax probability,
    i.e. the model's probability of its whole answer (heads treated as independent)."""
    return logits.softmax(-1).amax(-1).prod(-1)


def shifted(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`images` (..., H, W) moved `dy` rows down and `dx` columns right; the edge uncovered is
    background (0)."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top:top + height, left:left + width]


def check_shifts(shifts: Any, height: int, width: int) -> list[tuple[int, int]]:
    """`test_shifts` as (dy, dx) pairs of ints, or one clear error."""
    problem = f"test_shifts: must be a list of [dy, dx] pairs of whole pixels within the {height} x {width} image"
    if not isinstance(shifts, (list, tuple)):
        raise ConfigError(f"{problem} (got {shifts!r})")
    pairs = []
    for pair in shifts:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
                and abs(pair[0]) < height and abs(pair[1]) < width):
            raise ConfigError(f"{problem} (got {pair!r})")
        pairs.append((pair[0], pair[1]))
    return pairs


class CaptchaMetrics(torch.nn.Module):
    """acc_digit_1..n (accuracy per position), acc_mean (their mean), acc_seq (all digits right)."""

    def __init__(self, num_digits: int) -> None:
        super().__init__()
        self.per_digit = torch.nn.ModuleList(
            MulticlassAccuracy(num_classes=10, average="micro") for _ in range(num_digits))
        self.seq = torchmetrics.MeanMetric()

    def update(self, preds: torch.Tensor, labels: torch.Tensor) -> None:
        for k, metric in enumerate(self.per_digit):
            metric.update(preds[:, k], labels[:, k])
        self.seq.update((preds == labels).all(1).float())

    def compute(self) -> dict[str, torch.Tensor]:
        digits = {f"acc_digit_{k + 1}": m.compute() for k, m in enumerate(self.per_digit)}
        return {**digits, "acc_mean": torch.stack(list(digits.values())).mean(), "acc_seq": self.seq.compute()}

    def reset(self) -> None:
        for metric in self.per_digit:
            metric.reset()
        self.seq.reset()


def check_adversarial_training(settings: Mapping[str, Any], members: int) -> None:
    unknown = sorted(set(settings) - {"noise", "level", "steps", "share"})
    if unknown:
        raise ConfigError(f"training.adversarial.{unknown[0]}: unknown field; allowed: level, noise, share, steps")
    one_of("training.adversarial.noise", settings.get("noise"), sorted(adversarial.ATTACKS))
    for name in ("level", "steps", "share"):
        check_field(f"training.adversarial.{name}", settings.get(name))
    if members > 1:
        raise ConfigError("training.adversarial: not available with training.members > 1; train one network")


class CaptchaModule(pl.LightningModule):
    def __init__(self, model: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, num_digits: int = 4,
                 image_size: tuple[int, int] = (100, 110), data_info: Mapping[str, Any] | None = None,
                 label_smoothing: float = 0.0, members: int = 1, mutual_weight: float = 1.0,
                 adversarial: Mapping[str, Any] | None = None) -> None:
        """`model`, `optimizer` and `scheduler` are Hydra configs (`_target_` dicts); the optimiser
        and scheduler are partials completed with the parameters / optimiser. `data_info` records
        what the model was trained on (digit source, noise) for later tables. `label_smoothing`
        softens the training targets only; validation and test losses are plain cross-entropy.
        `members` > 1 trains that many networks of the `model` config on the same batches, each
        also pulled towards the others' prediction with `mutual_weight` (models/mutual.py), and
        reads them as one ensemble. `adversarial` ({noise, level, steps, share}) replaces a share
        of each training batch by adversarial versions crafted against the network itself (PGD
        adversarial training)."""
        check_field("training.label_smoothing", label_smoothing)
        check_field("training.members", members)
        check_field("training.mutual_weight", mutual_weight)
        if adversarial is not None:
            check_adversarial_training(adversarial, members)
        super().__init__()
        self.save_hyperparameters()
        networks = [hydra.utils.instantiate(dict(model)) for _ in range(members)]
        self.model = networks[0] if members == 1 else MutualEnsemble(networks)
        self.num_digits = num_digits
        # keys carry a suffix: ModuleDict keys may not shadow nn.Module attributes such as `train`.
        self.metrics = torch.nn.ModuleDict({f"{stage}_set": CaptchaMetrics(num_digits) for stage in STAGES})
        self.confusion = torch.nn.ModuleList(MulticlassConfusionMatrix(num_classes=10) for _ in range(num_digits))
        # After a test pass, on every process: each CAPTCHA's record and the confusion counts of
        # the whole test set (gathered from every rank under DDP).
        self.test_records: list[dict[str, torch.Tensor]] = []
        self.confusion_counts: list[torch.Tensor] = []
        # Test-time averaging (captcha-eval): `test_shifts`, (dy, dx) pixel shifts whose copies
        # of each test image are read along with the image itself, and `test_members`, more
        # networks (an ensemble) that read the image and every copy too.
        self.test_shifts: list[tuple[int, int]] = []
        self.test_members = torch.nn.ModuleList()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def averaged_reading(self, images: torch.Tensor) -> torch.Tensor:
        """Log of the softmax averaged over the image and its `test_shifts` copies, as read by
        this network and its `test_members`, used as logits: argmax, softmax and cross-entropy
        read it as the averaged prediction."""
        copies = [images] + [shifted(images, dy, dx) for dy, dx in self.test_shifts]
        networks = [self.model, *self.test_members]
        return log_mean_softmax(torch.stack([net(copy) for net in networks for copy in copies]))

    def reading(self, images: torch.Tensor) -> torch.Tensor:
        """Logits as captcha-eval and captcha-predict read them: averaged over the test shifts
        and members when there are any."""
        return self.averaged_reading(images) if self.test_shifts or len(self.test_members) else self(images)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images = batch["image"]
        smoothing = self.hparams.label_smoothing if stage == "train" else 0.0
        if stage == "train" and isinstance(self.model, MutualEnsemble):
            member_logits = self.model.member_logits(images)
            loss = mutual_loss(member_logits, batch["label"], self.hparams.mutual_weight, smoothing)
            logits = log_mean_softmax(member_logits.detach())
        else:
            logits = self.reading(images) if stage == "test" else self(images)
            # Cross-entropy averaged over heads (and the batch).
            loss = F.cross_entropy(logits.reshape(-1, 10), batch["label"].reshape(-1), label_smoothing=smoothing)
        preds = logits.argmax(-1)
        self.metrics[f"{stage}_set"].update(preds, batch["label"])
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=stage != "test",
                 batch_size=len(preds), sync_dist=True)
        return loss, logits, preds

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.hparams.adversarial:
            batch = self.attacked(batch)
        return self._step(batch, "train")[0]

    def attacked(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`batch` with its first `share` of CAPTCHAs replaced by adversarial versions crafted
        against the network as it is now (random starts seeded by the CAPTCHAs' ids)."""
        settings = self.hparams.adversarial
        count = max(1, round(settings["share"] * len(batch["image"])))
        ids = batch["captcha_id"][:count]
        images = batch["image"].clone()
        images[:count] = adversarial.craft(
            settings["noise"], adversarial.Surrogate([self.model]), images[:count], batch["label"][:count],
            settings["level"], rng.item_keys(rng.derive_key("adversarial training"), ids), settings["steps"],
            rng.derive_key("adversarial training", int(ids[0])))
        return {**batch, "image": images}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        _, logits, preds = self._step(batch, "test")
        for k, matrix in enumerate(self.confusion):
            matrix.update(preds[:, k], batch["label"][:, k])
        self.test_records.append({
            "captcha_id": batch["captcha_id"].cpu(), "label": batch["label"].cpu(), "prediction": preds.cpu(),
            "confidence": confidence(logits).float().cpu(), "noise_level": batch["noise_level"].cpu(),
            **({"ssim": batch["ssim"].cpu()} if "ssim" in batch else {}),
        })

    def predict_step(self, batch: dict[str, torch.Tensor] | torch.Tensor, batch_idx: int) -> dict[str, Any]:
        """Per CAPTCHA: the predicted digit string and its confidence (see `confidence`)."""
        images = batch["image"] if isinstance(batch, Mapping) else batch
        logits = self.reading(images)
        return {"prediction": digit_strings(logits.argmax(-1)), "confidence": confidence(logits).tolist()}

    def _log_epoch(self, stage: str) -> None:
        # torchmetrics' compute() already sums the counts of every rank: the values are global,
        # and sync_dist only tells Lightning so (averaging equal values changes nothing).
        values = {f"{stage}/{name}": value for name, value in self.metrics[f"{stage}_set"].compute().items()}
        self.log(f"{stage}/acc_seq", values.pop(f"{stage}/acc_seq"), prog_bar=stage != "test", sync_dist=True)
        self.log_dict(values, sync_dist=True)
        self.metrics[f"{stage}_set"].reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self.test_records = []
        for matrix in self.confusion:
            matrix.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self.confusion_counts = [matrix.compute().cpu() for matrix in self.confusion]  # every rank: a collective
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, self.test_records)
            self.test_records = [record for part in gathered for record in part]

    def configure_optimizers(self) -> Any:
        optimizer = hydra.utils.instantiate(dict(self.hparams.optimizer))(params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler_cfg = dict(self.hparams.scheduler)
        if scheduler_cfg.get("total_steps") == "auto":  # e.g. OneCycleLR over the whole run
            scheduler_cfg["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = hydra.utils.instantiate(scheduler_cfg)(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
