import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from captcha_robustness.training.callbacks import AveragedWeights, DataWaitMonitor
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.seed_cnn import SeedCNN


def test_seed_cnn_matches_the_reference():
    model = SeedCNN()
    assert sum(p.numel() for p in model.parameters()) == 1_074_536
    assert model(torch.zeros(3, 1, 100, 110)).shape == (3, 4, 10)


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((4, 4)), torch.nn.Flatten(), torch.nn.Linear(16, 40))

    def training_step(self, batch, batch_idx):
        logits = self.net(batch["image"]).view(-1, 4, 10)
        return F.cross_entropy(logits.flatten(0, 1), batch["label"].flatten())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_data_wait_monitor_measures_a_fraction():
    monitor = DataWaitMonitor(skip=1)
    dm = CaptchaDataModule(Mnist5kDigits(), {"name": "gaussian", "level": 0.2}, train_size=48, batch_size=8)
    trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor],
                         use_distributed_sampler=False, accelerator="cpu")
    trainer.fit(Tiny(), datamodule=dm)
    assert monitor.step_s > monitor.wait_s > 0
    # rendering 8 CAPTCHAs costs far more than this tiny model's step
    assert 0 < monitor.fraction < 1
    assert "perf/data_wait_frac" in trainer.logged_metrics


@pytest.mark.parametrize("decay", [0, 1, 1.5, "0.9", True])
def test_a_bad_ema_decay_names_the_field(decay):
    with pytest.raises(ConfigError, match=r"^training.ema_decay: must be null or a number in \(0, 1\)"):
        AveragedWeights(decay)


def test_the_csv_log_keeps_earlier_rows_and_replaces_those_from_where_a_resumed_run_starts(tmp_path):
    from captcha_robustness.training.csv_log import CSVLogger

    first = CSVLogger(tmp_path, name="csv", version="", flush_logs_every_n_steps=1)
    for step in range(10):
        first.log_metrics({"train/loss": 10.0 - step}, step=step)
    first.save()
    resumed = CSVLogger(tmp_path, name="csv", version="", flush_logs_every_n_steps=1)  # a new process, same folder
    for step in range(6, 8):
        resumed.log_metrics({"train/loss": 100.0 + step, "val/acc_seq": 0.5}, step=step)
    resumed.save()
    rows = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    assert rows["step"].tolist() == list(range(8))
    assert rows["train/loss"].tolist() == [10.0 - s for s in range(6)] + [106.0, 107.0]
    assert rows["val/acc_seq"].isna().sum() == 6  # the new column, empty in the earlier rows
