"""Two processes under DDP on CPU (gloo), as `trainer=ddp` runs on a cluster: each test CAPTCHA
read exactly once, metrics equal to one process reading the same checkpoint, no CAPTCHA drawn by
two ranks, and a DDP checkpoint that one process reads the same."""

import json

import pandas as pd
import pytest

from captcha_robustness.data.datamodule import CaptchaIdSampler
from clitools import run

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
TEST_SIZE = 301  # odd: the ranks read 151 and 150 CAPTCHAs
SMALL = ["scheduler=null", "data.train_size=512", "data.val_size=128", f"data.test_size={TEST_SIZE}",
         "data.batch_size=32", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=[csv]"]
ACCURACIES = ["test/acc_seq", "test/acc_mean", *(f"test/acc_digit_{k}" for k in range(1, 5))]


@pytest.mark.parametrize("size, world", [(512, 2), (513, 2), (301, 3)])
def test_ranks_draw_disjoint_training_ids_covering_each_epoch(size, world):
    for epoch in range(3):
        shares = []
        for rank in range(world):
            sampler = CaptchaIdSampler(size, rank, world, fresh_each_epoch=True)
            sampler.set_epoch(epoch)
            shares.append(list(sampler))
        ids = [i for share in shares for i in share]
        assert len(ids) == len(set(ids)) == (size // world) * world  # disjoint, one equal share each
        assert {len(share) for share in shares} == {size // world}
        assert set(ids) <= set(range(epoch * size, (epoch + 1) * size))  # fresh CAPTCHAs every epoch


@pytest.mark.parametrize("size, world", [(301, 2), (10, 3)])
def test_ranks_read_every_test_id_once(size, world):
    ids = [i for rank in range(world) for i in CaptchaIdSampler(size, rank, world)]
    assert sorted(ids) == list(range(size))


def _results(folder):
    return json.loads((folder / "metrics.json").read_text()), pd.read_parquet(folder / "predictions.parquet")


@pytest.mark.slow
def test_ddp_training_and_evaluation_on_two_cpu_processes(tmp_path):
    trained = run(tmp_path, "train", *DDP, *SMALL, "hydra.run.dir=ddp_train")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "sync_dist" not in trained.stderr  # every epoch-level metric is synchronised
    train_metrics, train_table = _results(tmp_path / "ddp_train")
    assert len(train_table) == TEST_SIZE and sorted(train_table["captcha_id"]) == list(range(TEST_SIZE))
    ckpt = train_metrics["best_checkpoint"]

    single = run(tmp_path, "evaluate", f"ckpt_path={ckpt}", f"data.test_size={TEST_SIZE}", "trainer.accelerator=cpu",
                 "trainer.enable_progress_bar=false", "hydra.run.dir=single_eval")
    assert single.returncode == 0, single.stderr[-3000:]
    single_metrics, single_table = _results(tmp_path / "single_eval")
    ddp = run(tmp_path, "evaluate", *DDP, f"ckpt_path={ckpt}", f"data.test_size={TEST_SIZE}",
              "trainer.enable_progress_bar=false", "hydra.run.dir=ddp_eval")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    ddp_metrics, ddp_table = _results(tmp_path / "ddp_eval")

    # The DDP checkpoint reads the same in one process as it did in two, CAPTCHA by CAPTCHA.
    columns = ["captcha_id", "label", "prediction", "correct"]
    for table in (single_table, ddp_table):
        pd.testing.assert_frame_equal(table[columns], train_table[columns])
        assert table["confidence"].to_numpy() == pytest.approx(train_table["confidence"].to_numpy(), abs=1e-5)
    # The metrics are those of the whole test set, not of one rank's half.
    for key in ACCURACIES:
        assert ddp_metrics[key] == pytest.approx(single_metrics[key], abs=1e-7) == train_metrics[key]
    assert single_metrics["test/acc_seq"] == pytest.approx(single_table["correct"].mean())
    # The loss is each rank's mean, averaged over the two: 151 and 150 CAPTCHAs weigh almost alike.
    assert ddp_metrics["test/loss"] == pytest.approx(single_metrics["test/loss"], rel=1e-2)
    confusion = pd.read_csv(tmp_path / "ddp_eval" / "confusion_digit_1.csv", index_col=0)
    assert confusion.to_numpy().sum() == TEST_SIZE


@pytest.mark.slow
def test_the_gpu_config_with_on_device_rendering_runs_on_a_cpu_and_trains_the_same_model(tmp_path):
    """trainer=gpu and data.render_on_device=true, with the accelerator the machine has: batches
    carry only ids and are rendered after the transfer, and the run equals one rendered in the loader."""
    common = ["trainer=gpu", "trainer.accelerator=cpu", "scheduler=null", "data.train_size=256", "data.val_size=64",
              "data.test_size=96", "data.batch_size=32", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
              "logger=null"]
    for folder, on_device in (("on_device", "true"), ("in_loader", "false")):
        result = run(tmp_path, "train", *common, f"data.render_on_device={on_device}", f"hydra.run.dir={folder}")
        assert result.returncode == 0, result.stderr[-3000:]
    on_device, in_loader = (_results(tmp_path / name) for name in ("on_device", "in_loader"))
    pd.testing.assert_frame_equal(on_device[1].drop(columns="model_id"), in_loader[1].drop(columns="model_id"))
    assert on_device[0]["test/acc_mean"] == in_loader[0]["test/acc_mean"]
