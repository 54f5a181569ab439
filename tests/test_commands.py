"""captcha-train, captcha-eval and captcha-predict end to end, as a user runs them, in a temp dir."""

import json

import hydra
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from captcha_robustness import runs
from captcha_robustness.commands.cli import CONFIG_DIR
from captcha_robustness.errors import ConfigError
from captcha_robustness.commands.evaluate import check_compatible
from captcha_robustness.models.mutual import log_mean_softmax
from captcha_robustness.models.module import digit_strings
from captcha_robustness.commands.predict import find_images, load_image, predict
from captcha_robustness.runs import load_module
from clitools import TINY, assert_one_line_error, run

pytestmark = pytest.mark.slow  # runs the commands as a user does


def test_train_writes_checkpoints_metrics_and_a_summary(trained):
    cwd, result = trained
    run1 = cwd / "run1"
    assert (run1 / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run1 / "metrics.json").read_text())
    assert {f"test/acc_digit_{k}" for k in range(1, 5)} | {"test/acc_mean", "test/acc_seq"} <= set(metrics)
    assert 0 <= metrics["test/acc_seq"] <= metrics["test/acc_mean"] <= 1
    assert metrics["global_step"] == 256 // 32
    assert (run1 / "csv" / "metrics.csv").is_file() and (run1 / "confusion.png").is_file()
    confusion = pd.read_csv(run1 / "confusion_digit_1.csv", index_col=0)
    assert confusion.shape == (10, 10) and confusion.to_numpy().sum() == 96
    assert "whole-CAPTCHA accuracy (test/acc_seq)" in result.stdout


def test_eval_from_the_checkpoint_alone_reproduces_the_test_metrics(trained):
    cwd, _ = trained
    train_metrics = json.loads((cwd / "run1" / "metrics.json").read_text())
    ckpt = train_metrics["best_checkpoint"]
    result = run(cwd, "evaluate", f"ckpt_path={ckpt}", "data.test_size=96", "hydra.run.dir=eval1")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((cwd / "eval1" / "metrics.json").read_text())
    for key in ("test/acc_seq", "test/acc_mean", "test/acc_digit_3"):
        assert metrics[key] == pytest.approx(train_metrics[key], abs=1e-6)
    table = pd.read_parquet(cwd / "eval1" / "predictions.parquet")
    assert len(table) == 96 and table["captcha_id"].tolist() == list(range(96))
    assert {"solver", "model_id", "train_noise", "noise_type", "noise_level", "seed", "captcha_id", "label",
            "prediction", "correct", "n_correct", "confidence", "error"} <= set(table.columns)
    assert table["label"].str.fullmatch(r"\d{4}").all() and table["prediction"].str.fullmatch(r"\d{4}").all()
    assert table["correct"].mean() == pytest.approx(metrics["test/acc_seq"], abs=1e-6)
    assert (table["n_correct"].mean() / 4) == pytest.approx(metrics["test/acc_mean"], abs=1e-6)
    assert table["confidence"].between(0, 1).all() and table["error"].isna().all()


def test_an_ensemble_of_a_checkpoint_with_itself_reads_as_the_checkpoint(trained, tmp_path):
    cwd, _ = trained
    ckpt = json.loads((cwd / "run1" / "metrics.json").read_text())["best_checkpoint"]
    for name, paths in (("alone", ckpt), ("ensemble", f"[{ckpt},{ckpt}]")):
        result = run(cwd, "evaluate", f"ckpt_path={paths}", "data.test_size=96", f"hydra.run.dir={name}")
        assert result.returncode == 0, result.stderr[-3000:]
    metrics, single = (json.loads((cwd / name / "metrics.json").read_text()) for name in ("ensemble", "alone"))
    assert metrics["ckpt_path"] == [ckpt, ckpt]
    for key in ("test/acc_seq", "test/acc_mean", "test/acc_digit_3"):
        assert metrics[key] == pytest.approx(single[key], abs=1e-6)
    table, alone = (pd.read_parquet(cwd / name / "predictions.parquet") for name in ("ensemble", "alone"))
    assert table["prediction"].tolist() == alone["prediction"].tolist()
    assert (table["model_id"] == f"{single['model_id']} + {single['model_id']}").all()
    assert_one_line_error(run(tmp_path, "evaluate", "ckpt_path=[]"), "ckpt_path")


def test_eval_under_noise_changes_only_the_noise(trained):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    result = run(cwd, "evaluate", f"ckpt_path={ckpt}", "data.test_size=32", "noise=salt_and_pepper",
                 "noise.level=0.5", "model_id=tiny", "hydra.run.dir=eval2")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(cwd / "eval2" / "predictions.parquet")
    clean = pd.read_parquet(cwd / "eval1" / "predictions.parquet").head(32)
    assert (table["noise_type"] == "salt_and_pepper").all() and (table["noise_level"] == 0.5).all()
    assert (table["model_id"] == "tiny").all() and (table["train_noise"] == "none").all()
    assert table["label"].tolist() == clean["label"].tolist()  # the same CAPTCHAs


def test_resume_continues_the_step_count(trained):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    result = run(cwd, "train", *TINY[:-3], "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                 f"ckpt_path={ckpt}", "hydra.run.dir=run2")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((cwd / "run2" / "metrics.json").read_text())
    assert metrics["global_step"] == 2 * (256 // 32) and metrics["epochs"] == 2
    state = torch.load(cwd / "run2" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 16 and state["epoch"] == 1


def test_init_from_starts_a_new_run_from_the_weights(trained):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    result = run(cwd, "train", *TINY, "optimizer.lr=0", "optimizer.weight_decay=0", f"init_from={ckpt}",
                 "hydra.run.dir=finetune")
    assert result.returncode == 0, result.stderr[-3000:]
    before = torch.load(ckpt, map_location="cpu", weights_only=False)
    after = torch.load(cwd / "finetune" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert after["global_step"] == 256 // 32 and after["epoch"] == 0  # a new count, not a resumed one
    weights = [k for k in before["state_dict"] if k.endswith(".weight")]
    assert len(weights) > 10
    for key in weights:  # learning rate 0: the first run's weights, unchanged
        assert torch.equal(after["state_dict"][key], before["state_dict"][key]), key


def test_bad_init_from_is_one_clear_line(trained, tmp_path):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    assert_one_line_error(run(tmp_path, "train", *TINY, "init_from=nope.ckpt"), "init_from")
    assert_one_line_error(run(tmp_path, "train", *TINY, f"init_from={ckpt}", f"ckpt_path={ckpt}"), "init_from")
    assert_one_line_error(run(tmp_path, "train", *TINY, "model=seed_cnn", f"init_from={ckpt}"), "init_from")


def test_ema_weights_are_validated_checkpointed_tested_and_resumed(tmp_path):
    # "Best" is the lowest step, i.e. the first epoch: last.ckpt must still follow the run.
    result = run(tmp_path, "train", *TINY[:-3], "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                 "ema_decay=0.5", "checkpoint.monitor=step", "checkpoint.mode=min", "hydra.run.dir=ema")
    assert result.returncode == 0, result.stderr[-3000:]
    train_metrics = json.loads((tmp_path / "ema" / "metrics.json").read_text())
    assert train_metrics["best_checkpoint"].endswith("best-epoch00-step8.ckpt")
    state = torch.load(train_metrics["last_checkpoint"], map_location="cpu", weights_only=False)
    assert train_metrics["last_checkpoint"].endswith("last.ckpt") and state["global_step"] == 16
    averaged, raw = state["state_dict"], state["current_model_state"]
    assert not torch.equal(averaged["model.heads.0.weight"], raw["model.heads.0.weight"])
    # The final test read the averaged weights: evaluating the checkpoint alone agrees.
    result = run(tmp_path, "evaluate", f"ckpt_path={train_metrics['best_checkpoint']}", "data.test_size=96",
                 "test_shifts=[[0,0]]", "hydra.run.dir=eval")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["test_shifts"] == [[0, 0]]  # a copy identical to the image: the same answers
    for key in ("test/acc_seq", "test/acc_mean"):
        assert metrics[key] == pytest.approx(train_metrics[key], abs=1e-6)
    result = run(tmp_path, "train", *TINY[:-3], "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
                 "ema_decay=0.5", "checkpoint.monitor=step", "checkpoint.mode=min",
                 f"ckpt_path={train_metrics['last_checkpoint']}", "hydra.run.dir=ema2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "ema2" / "metrics.json").read_text())["global_step"] == 3 * (256 // 32)


def test_predict_reads_pngs_of_any_mode(trained, synth, tmp_path):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    rgb = Image.new("RGB", (220, 200), (0, 0, 0))
    rgb.save(tmp_path / "a.png")
    rgb.convert("L").save(tmp_path / "b.jpg")
    Image.new("RGBA", (110, 100), (255, 255, 255, 0)).save(tmp_path / "c.png")
    out = tmp_path / "preds.csv"
    result = run(cwd, "predict", f"ckpt_path={ckpt}", f"images={tmp_path}", f"out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "path,prediction,confidence" and len(lines) == 4
    table = pd.read_csv(out, dtype={"prediction": str})
    assert table["path"].str.endswith(("a.png", "b.jpg", "c.png")).all()
    assert table["prediction"].str.fullmatch(r"\d{4}").all() and table["confidence"].between(0, 1).all()
    assert not list(cwd.glob("outputs"))  # predict leaves nothing behind but its CSV
    # An ensemble of the checkpoint with itself, with a copy shifted by nothing, reads test
    # CAPTCHAs exactly as the checkpoint alone does.
    captchas = tmp_path / "captchas"
    captchas.mkdir()
    for i, image in enumerate(synth(torch.arange(3))["image"]):
        Image.fromarray((image[0] * 255).round().to(torch.uint8).numpy()).save(captchas / f"{i}.png")
    alone = run(cwd, "predict", f"ckpt_path={ckpt}", f"images={captchas}")
    ensemble = run(cwd, "predict", f"ckpt_path=[{ckpt},{ckpt}]", f"images={captchas}", "test_shifts=[[0,0]]")
    assert alone.returncode == 0 and ensemble.returncode == 0, ensemble.stderr[-3000:]
    assert ensemble.stdout == alone.stdout and len(alone.stdout.splitlines()) == 4
    # (the tiny model is nearly uniform, so a shifted copy moves its confidences only past the CSV's 4 decimals)
    settings = {"ckpt_path": str(ckpt), "images": str(captchas), "invert": False, "batch_size": 64}
    confidences = [conf for _, _, conf in predict(OmegaConf.create({**settings, "test_shifts": []}))]
    shifted = [conf for _, _, conf in predict(OmegaConf.create({**settings, "test_shifts": [[0, 9]]}))]
    assert shifted != pytest.approx(confidences, rel=1e-4, abs=0)


def test_bad_input_is_one_clear_line(trained, tmp_path):
    assert_one_line_error(run(tmp_path, "evaluate", "ckpt_path=nope.ckpt"), "ckpt_path")
    assert_one_line_error(run(tmp_path, "train", "model=resnet9000"), "model=resnet9000")
    ckpt = trained[0] / "run1" / "checkpoints" / "last.ckpt"
    assert_one_line_error(run(tmp_path, "evaluate", f"ckpt_path={ckpt}", "test_shifts=[[0,1.5]]"), "test_shifts")


def test_bad_checkpoints_images_and_sizes_name_the_field(trained, tmp_path):
    cwd, _ = trained
    solver = load_module(str(cwd / "run1" / "checkpoints" / "last.ckpt"))
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(ConfigError, match="^ckpt_path: .* is not a checkpoint written by captcha-train"):
        load_module(str(tmp_path / "broken.png"))
    with pytest.raises(ConfigError, match="^ckpt_path: required"):
        load_module(None)
    with pytest.raises(ConfigError, match="^images: cannot read .*broken.png"):
        load_image(tmp_path / "broken.png", 100, 110, invert=False)
    with pytest.raises(ConfigError, match="^images: no file matches"):
        find_images(str(tmp_path / "missing" / "*.png"))
    with pytest.raises(ConfigError, match=r"^data.render: the checkpoint expects .* \(4, 100, 110\)"):
        check_compatible(solver, {"num_digits": 5, "height": 100, "width": 110})


def test_an_ensemble_needs_one_image_shape(trained, monkeypatch):
    ckpt = str(trained[0] / "run1" / "checkpoints" / "last.ckpt")
    wider = load_module(ckpt)
    wider.hparams.image_size = [100, 120]
    solvers = iter([load_module(ckpt), wider])
    monkeypatch.setattr(runs, "load_module", lambda path: next(solvers))
    with pytest.raises(ConfigError, match=r"^ckpt_path: the checkpoints read different CAPTCHAs "
                                          r"\(num_digits, height, width: \(4, 100, 110\), \(4, 100, 120\)\)"):
        runs.load_ensemble([ckpt, ckpt])


def test_eval_reads_one_member_of_a_members_checkpoint(tmp_path):
    """`member=K` reads network K of a members=N checkpoint alone; without it, their ensemble."""
    trained = run(tmp_path, "train", *TINY, "members=2", "hydra.run.dir=pair")
    assert trained.returncode == 0, trained.stderr[-3000:]
    ckpt = tmp_path / "pair" / "checkpoints" / "last.ckpt"
    for name, member in (("both", "null"), ("first", "1"), ("second", "2")):
        result = run(tmp_path, "evaluate", f"ckpt_path={ckpt}", f"member={member}", "data.test_size=96",
                     f"hydra.run.dir={name}")
        assert result.returncode == 0, result.stderr[-3000:]
    tables = {name: pd.read_parquet(tmp_path / name / "predictions.parquet") for name in ("both", "first", "second")}
    assert json.loads((tmp_path / "second" / "metrics.json").read_text())["member"] == 2
    assert tables["second"]["model_id"].iloc[0] == tables["both"]["model_id"].iloc[0] + "/member2"

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=["data.test_size=96"])
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup()
    images = datamodule.synths["test"](torch.arange(96))["image"]
    networks = load_module(str(ckpt)).eval().model.members
    with torch.no_grad():
        logits = torch.stack([network(images) for network in networks])
    assert tables["first"]["prediction"].tolist() == digit_strings(logits[0].argmax(-1))
    assert tables["second"]["prediction"].tolist() == digit_strings(logits[1].argmax(-1))
    assert tables["both"]["prediction"].tolist() == digit_strings(log_mean_softmax(logits).argmax(-1))
    assert tables["first"]["prediction"].tolist() != tables["second"]["prediction"].tolist()

    assert_one_line_error(run(tmp_path, "evaluate", f"ckpt_path={ckpt}", "member=3"), "member")
    assert_one_line_error(run(tmp_path, "evaluate", f"ckpt_path=[{ckpt},{ckpt}]", "member=1"), "member")


def test_predict_reads_the_good_images_and_reports_each_bad_one(trained, tmp_path):
    ckpt = trained[0] / "run1" / "checkpoints" / "last.ckpt"
    Image.new("L", (110, 100), 0).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not an image")
    Image.new("L", (110, 100), 255).save(tmp_path / "c.png")
    (tmp_path / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "preds.csv"
    result = run(trained[0], "predict", f"ckpt_path={ckpt}", f"images={tmp_path}", f"out={out}")
    assert result.returncode == 2
    assert [line.split(",")[0].rsplit("/", 1)[-1] for line in result.stdout.strip().splitlines()[1:]] == ["a.png", "c.png"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("error: images: cannot read ") for line in errors)
    assert "b.png" in errors[0] and "d.png" in errors[1]
    assert len(pd.read_csv(out)) == 2  # the CSV holds the images that were read
