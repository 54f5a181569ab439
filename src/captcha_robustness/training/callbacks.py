"""Lightning callbacks shared by the training commands."""

from __future__ import annotations

import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import WeightAveraging
from pytorch_lightning.trainer.states import TrainerFn
from torch.optim.swa_utils import get_ema_multi_avg_fn

from captcha_robustness.validate import check_field


class DataWaitMonitor(pl.Callback):
    """Measures how much of each training step is spent waiting for the next batch.

    The wait is the time from the end of one training batch to the start of the next (the
    dataloader's fetch and transfer, plus loop overhead); the step is that plus the batch's
    own forward/backward/optimizer time. Logs `perf/data_wait_frac` once per epoch and keeps
    the totals in `wait_s` and `step_s` (the first `skip` steps, the warm-up, are excluded).
    """

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self.wait_s = self.step_s = 0.0
        self._seen = 0
        self._end: float | None = None
        self._start: float | None = None

    @property
    def fraction(self) -> float:
        return self.wait_s / self.step_s if self.step_s else 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()
        if self._end is not None and self._seen >= self.skip:
            self.wait_s += self._start - self._end
            self.step_s += self._start - self._end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._end = time.perf_counter()
        if self._seen >= self.skip and self._start is not None:
            self.step_s += self._end - self._start
        self._seen += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.step_s:
            pl_module.log("perf/data_wait_frac", self.fraction, sync_dist=True)  # the mean over ranks


class ElapsedTime(pl.Callback):
    """Logs `time/elapsed_min`, wall minutes since training started, with each validation, so
    that accuracy-versus-time curves come straight from the logged metrics."""

    def __init__(self) -> None:
        self._start: float | None = None
        self.offset_min = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._start is not None and not trainer.sanity_checking:
            pl_module.log("time/elapsed_min", self.offset_min + (time.perf_counter() - self._start) / 60,
                          sync_dist=True)

    def state_dict(self) -> dict[str, float]:
        elapsed = (time.perf_counter() - self._start) / 60 if self._start is not None else 0.0
        return {"elapsed_min": self.offset_min + elapsed}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.offset_min = state_dict.get("elapsed_min", 0.0)  # a resumed run keeps counting


class AveragedWeights(WeightAveraging):
    """An exponential moving average of the weights (decay per optimiser step), which is what
    validation, the checkpoints' `state_dict` and the final test see; training steps still
    update the raw weights (kept in the checkpoint as `current_model_state`, for resuming).

    The update is one foreach lerp over all tensors (`multi_avg_fn`): Lightning's
    EMAWeightAveraging updates tensor by tensor, 7x slower (15 ms against 2 ms per step for
    multihead_cnn_hires, whose training step takes about 80 ms on this 2-core CPU).
    Lightning's callback also restores the raw weights when a checkpoint is loaded outside
    fit, so `trainer.test(ckpt_path=...)` would test them; here only fit restores them."""

    def __init__(self, decay: float) -> None:
        check_field("training.ema_decay", decay)
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(float(decay)))

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
