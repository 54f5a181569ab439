"""Recipes, loggers and the multi-process recipe command, run as a user runs them."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from clitools import TINY, assert_one_line_error, run

pytestmark = pytest.mark.slow

RECIPES = ["quickstart", "recipe_15min", "recipe_60min", "recipe_60min_finetune", "reference_regime",
           "seed_cnn_replication"]


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_composes_on_the_command_line(name, tmp_path):
    result = run(tmp_path, "train", f"experiment={name}", "--cfg", "job")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "_target_: captcha_robustness.models." in result.stdout


def test_the_quick_start_recipe_runs(tmp_path):
    result = run(tmp_path, "train", "experiment=quickstart", "debug=fast_dev_run", "trainer.enable_progress_bar=false",
                 "hydra.run.dir=quick")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pd.read_parquet(tmp_path / "quick" / "predictions.parquet")) == 64


def test_an_unknown_recipe_is_one_line(tmp_path):
    result = run(tmp_path, "train", "experiment=nope")
    assert result.returncode == 2 and result.stderr.strip().startswith("error: experiment=nope: unknown; allowed: ")


def test_the_mlflow_logger_writes_a_run_that_mlflow_reads_back(tmp_path, monkeypatch):
    result = run(tmp_path, "train", *TINY, "logger=[csv,mlflow]", "hydra.run.dir=logged")
    assert result.returncode == 0, result.stderr[-3000:]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file://{tmp_path / 'mlruns'}")
    experiment = client.get_experiment_by_name("captcha-robustness")
    (logged,) = client.search_runs([experiment.experiment_id])
    metrics = json.loads((tmp_path / "logged" / "metrics.json").read_text())
    assert logged.data.metrics["test/acc_mean"] == pytest.approx(metrics["test/acc_mean"], abs=1e-6)
    assert {"val/acc_seq", "train/loss_epoch"} <= set(logged.data.metrics)
    assert logged.data.params["members"] == "1" and logged.data.params["num_digits"] == "4"
    assert (tmp_path / "logged" / "csv" / "metrics.csv").is_file()  # both loggers of the set


def test_the_pair_recipe_trains_in_stages_and_reads_one_ensemble(tmp_path):
    result = subprocess.run([sys.executable, "-m", "captcha_robustness.commands.recipe", "recipe=smoke", "out=pair"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "pair"
    steps = json.loads((out / "recipe.json").read_text())["steps"]
    assert [s["step"] for s in steps] == ["seed 0, stage 1", "seed 0, stage 2", "seed 1, stage 1", "seed 1, stage 2",
                                          "ensemble evaluation"]
    assert "init_from=" in steps[1]["command"] and "init_from=" not in steps[0]["command"]
    evaluation = json.loads((out / "eval" / "metrics.json").read_text())
    assert evaluation["ckpt_path"] == [f"pair/seed{s}/stage2/checkpoints/last.ckpt" for s in (0, 1)]
    assert evaluation["test_shifts"] == [[0, -2], [0, 2]] and evaluation["test_size"] == 32
    table = pd.read_parquet(out / "eval" / "predictions.parquet")
    assert table["model_id"].iloc[0].count(" + ") == 1
    again = subprocess.run([sys.executable, "-m", "captcha_robustness.commands.recipe", "recipe=smoke", "out=pair"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0  # finished stages are skipped: only the evaluation runs again
    assert [s["step"] for s in json.loads((out / "recipe.json").read_text())["steps"]] == ["ensemble evaluation"]


def test_the_matrix_study_composes(tmp_path):
    result = run(tmp_path, "study", "study=matrix", "--cfg", "job")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "replication: null" in result.stdout and "regimes:" in result.stdout


@pytest.mark.parametrize("override, field", [("recipe.seeds=3", "recipe.seeds"), ("recipe.threads=-1", "recipe.threads"),
                                             ("recipe.stages=[]", "recipe.stages")])
def test_bad_recipe_settings_are_one_line(tmp_path, override, field):
    result = subprocess.run([sys.executable, "-m", "captcha_robustness.commands.recipe", "recipe=smoke", override,
                             "out=bad"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, field)
    assert not (tmp_path / "bad" / "seed0").exists() and not (tmp_path / "bad" / "recipe.json").exists()
