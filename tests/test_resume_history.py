"""A training process killed with SIGKILL, then resumed from its last.ckpt in its own folder:
the CSV log keeps every row logged before the checkpoint, and each epoch appears once."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from clitools import TINY

pytestmark = pytest.mark.slow

EPOCHS = 6
ARGS = [*TINY[:-3], f"trainer.max_epochs={EPOCHS}", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
        "data.train_size=4096", "logger=[csv]", "+logger.csv.flush_logs_every_n_steps=1", "hydra.run.dir=run"]


def _train(cwd, *extra):
    return [sys.executable, "-m", "captcha_robustness.train", *ARGS, *extra]


def test_a_killed_run_resumed_from_last_ckpt_keeps_its_csv_history(tmp_path):
    last, log = tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "run" / "csv" / "metrics.csv"
    process = subprocess.Popen(_train(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # let the checkpoint's write finish; the next epoch takes several seconds
    assert process.poll() is None, "the run ended before it could be killed: " + process.stderr.read().decode()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = pd.read_csv(log)
    resumed_step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    kept_before = before[before["step"] < resumed_step]
    assert kept_before["val/acc_seq"].notna().sum() >= 1  # at least the first epoch's validation

    result = subprocess.run(_train(tmp_path, f"ckpt_path={last}"), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    after = pd.read_csv(log)
    # Every row logged before the checkpoint is still there, unchanged.
    pd.testing.assert_frame_equal(after[after["step"] < resumed_step].reset_index(drop=True)[kept_before.columns],
                                  kept_before.reset_index(drop=True), check_dtype=False)
    # Each epoch's validation once, and no step of training logged twice.
    validated = after.dropna(subset=["val/acc_seq"])
    assert sorted(validated["epoch"].astype(int)) == list(range(EPOCHS))
    train_rows = after.dropna(subset=["train/loss_step"])
    assert train_rows["step"].is_unique
    assert "will be deleted" not in result.stderr
