"""Sweeps from the command line, in a temp dir: the combined table, skipping finished jobs,
reporting killed or failed ones, plots, and the joblib / submitit launchers."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from captcha_robustness.analysis.images import Renderer
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.results.stats import over_seeds, position_hits, summarize, wilson_interval
from clitools import run

GRID = ["noise=gaussian,salt_and_pepper", "noise.level=0.2,0.6", "data.test_size=50", "trainer.enable_progress_bar=false"]


def eval_sweep(cwd, ckpt, sweep_dir, *extra):
    return run(cwd, "evaluate", "-m", f"ckpt_path={ckpt}", *GRID, f"hydra.sweep.dir={sweep_dir}", *extra)


@pytest.fixture(scope="module")
def sweep(trained):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    result = eval_sweep(cwd, ckpt, "sweep1")
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, ckpt, cwd / "sweep1", result


@pytest.mark.slow
def test_the_combined_table_has_every_captcha_under_every_condition(sweep):
    _, _, root, result = sweep
    table = pd.read_parquet(root / "predictions.parquet")
    assert len(table) == 2 * 2 * 50
    conditions = table.groupby(["noise_type", "noise_level"])
    assert conditions.ngroups == 4
    first = table[(table["noise_type"] == "gaussian") & (table["noise_level"] == 0.2)]
    for _, rows in conditions:
        assert rows["captcha_id"].tolist() == list(range(50))
        assert rows["label"].tolist() == first["label"].tolist()
    assert "sweep: 4 of 4 jobs finished" in result.stdout
    for plot in ("accuracy_vs_level.png", "accuracy_by_position.png"):
        assert (root / plot).stat().st_size > 10_000


@pytest.mark.slow
def test_the_summary_matches_a_recomputation_from_the_rows(sweep):
    _, _, root, _ = sweep
    table = pd.read_parquet(root / "predictions.parquet")
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == 4 and (summary["status"] == "done").all()
    assert {"noise", "noise.level"} <= set(summary.columns)  # the overrides that vary
    for _, row in summary.iterrows():
        rows = table[(table["noise_type"] == row["noise_type"]) & (table["noise_level"] == row["noise_level"])]
        assert row["n"] == 50 and row["noise"] == row["noise_type"] and row["noise.level"] == row["noise_level"]
        assert row["acc_seq"] == pytest.approx(rows["correct"].mean())
        assert row["acc_mean"] == pytest.approx(rows["n_correct"].mean() / 4)
        low, high = proportion_confint(rows["correct"].sum(), 50, method="wilson")
        assert (row["acc_seq_ci_low"], row["acc_seq_ci_high"]) == pytest.approx((low, high))
        hits = np.array([[a == b for a, b in zip(lab, pred)] for lab, pred in zip(rows["label"], rows["prediction"])])
        assert [row[f"acc_digit_{k}"] for k in range(1, 5)] == pytest.approx(hits.mean(0).tolist())
        metrics = json.loads((root / str(row["job"]) / "metrics.json").read_text())
        assert metrics["test/acc_seq"] == pytest.approx(row["acc_seq"], abs=1e-6)


@pytest.mark.slow
def test_a_rerun_skips_finished_jobs_and_redoes_the_rest(sweep):
    cwd, ckpt, root, _ = sweep
    (root / "2" / "done.json").unlink()
    before = (root / "0" / "predictions.parquet").stat().st_mtime_ns
    result = eval_sweep(cwd, ckpt, "sweep1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("skipped") == 3 and "job 2 (" not in result.stdout.split("skipped")[-1]
    assert (root / "0" / "predictions.parquet").stat().st_mtime_ns == before
    assert (root / "2" / "done.json").is_file()
    assert len(pd.read_parquet(root / "predictions.parquet")) == 200


@pytest.mark.slow
def test_a_killed_sweep_reports_its_missing_jobs_and_resumes(trained):
    cwd, _ = trained
    ckpt = cwd / "run1" / "checkpoints" / "last.ckpt"
    args = [sys.executable, "-m", "captcha_robustness.evaluate", "-m", f"ckpt_path={ckpt}", "noise=gaussian",
            "noise.level=0.1,0.2,0.3", "data.test_size=1500", "trainer.enable_progress_bar=false",
            "hydra.sweep.dir=killed"]
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 300
    while not (cwd / "killed" / "0" / "done.json").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (cwd / "killed" / "0" / "done.json").exists() and not (cwd / "killed" / "summary.csv").exists()

    result = run(cwd, "collect", "killed")
    assert result.returncode == 1 and result.stderr.startswith("error: 2 job(s) did not finish;"), result.stderr
    summary = pd.read_csv(cwd / "killed" / "summary.csv")
    assert summary["status"].tolist() == ["done", "missing", "missing"]
    assert summary["noise.level"].tolist() == [0.1, 0.2, 0.3]
    assert len(pd.read_parquet(cwd / "killed" / "predictions.parquet")) == 1500
    assert "sweep: 1 of 3 jobs finished" in result.stdout and "missing: job" in result.stdout

    resumed = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("skipped") == 1
    assert (pd.read_csv(cwd / "killed" / "summary.csv")["status"] == "done").all()


@pytest.mark.slow
def test_a_failed_job_is_reported_and_the_sweep_exits_nonzero(sweep):
    cwd, ckpt, _, _ = sweep
    # Values are checked for every job before the first starts; a file that only claims to be a
    # checkpoint is found out when job 1 loads it.
    broken = cwd / "broken.ckpt"
    broken.write_text("not a checkpoint")
    result = run(cwd, "evaluate", "-m", f"ckpt_path={ckpt},{broken}", "noise=gaussian", "noise.level=0.1",
                 "data.test_size=20", "trainer.enable_progress_bar=false", "hydra.sweep.dir=failing")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "1 job(s) of the sweep" in result.stderr
    summary = pd.read_csv(cwd / "failing" / "summary.csv")
    assert summary["status"].tolist() == ["done", "failed"]
    assert summary["error"].iloc[1].startswith(f"error: ckpt_path: {broken} is not a checkpoint written by")


@pytest.mark.slow
def test_a_sweep_folder_rerun_with_other_jobs_sets_the_old_job_folders_aside(sweep):
    cwd, ckpt, _, _ = sweep
    common = [f"ckpt_path={ckpt}", "noise=gaussian", "data.test_size=20", "trainer.enable_progress_bar=false",
              "hydra.sweep.dir=rerun"]
    assert run(cwd, "evaluate", "-m", *common, "noise.level=0.2,0.6").returncode == 0
    result = run(cwd, "evaluate", "-m", *common, "noise.level=0.6")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "moved the job folders of an earlier sweep" in result.stdout
    root = cwd / "rerun"
    stale = [p.relative_to(root).parts[-1] for p in (root / "stale").glob("*/*")]
    assert sorted(stale) == ["0", "1"]  # job 0 had level 0.2, job 1 is beyond the new plan
    assert sorted(p.name for p in root.iterdir() if p.name.isdigit()) == ["0"]
    table = pd.read_parquet(root / "predictions.parquet")
    assert table["noise_level"].unique().tolist() == [0.6] and len(table) == 20


@pytest.mark.slow
def test_seed_repeats_get_a_spread(sweep):
    cwd, ckpt, _, _ = sweep
    result = run(cwd, "evaluate", "-m", f"ckpt_path={ckpt}", "noise=gaussian", "noise.level=0.1,0.3", "seed=range(3)",
                 "data.test_size=20", "trainer.enable_progress_bar=false", "hydra.sweep.dir=seeds")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(cwd / "seeds" / "summary.csv")
    spread = pd.read_csv(cwd / "seeds" / "summary_over_seeds.csv")
    assert len(summary) == 6 and sorted(summary["seed"].unique()) == [0, 1, 2]
    assert spread["seeds"].tolist() == [3, 3] and spread["noise_level"].tolist() == [0.1, 0.3]
    for level, row in spread.set_index("noise_level").iterrows():
        runs = summary[summary["noise_level"] == level]["acc_seq"]
        assert row["acc_seq"] == pytest.approx(runs.mean()) and row["acc_seq_std"] == pytest.approx(runs.std())
    labels = pd.read_parquet(cwd / "seeds" / "predictions.parquet").groupby("seed")["label"].apply(list)
    assert labels[0] != labels[1]  # each seed is its own test set


@pytest.mark.slow
def test_the_joblib_launcher_gives_the_same_results(sweep):
    cwd, ckpt, root, _ = sweep
    result = eval_sweep(cwd, ckpt, "sweep_joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    basic = pd.read_parquet(root / "predictions.parquet").drop(columns=["sweep"])
    joblib = pd.read_parquet(cwd / "sweep_joblib" / "predictions.parquet").drop(columns=["sweep"])
    pd.testing.assert_frame_equal(basic.drop(columns=["confidence"]), joblib.drop(columns=["confidence"]))
    np.testing.assert_allclose(basic["confidence"], joblib["confidence"], atol=1e-5)


@pytest.mark.slow
def test_the_submitit_local_launcher_runs_a_sweep(sweep):
    cwd, ckpt, _, _ = sweep
    result = run(cwd, "evaluate", "-m", f"ckpt_path={ckpt}", "noise=salt_and_pepper", "noise.level=0.1,0.3",
                 "data.test_size=20", "trainer.enable_progress_bar=false", "hydra.sweep.dir=submitit",
                 "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(cwd / "submitit" / "summary.csv")
    assert (summary["status"] == "done").all() and summary["n"].tolist() == [20, 20]


@pytest.mark.slow
def test_a_train_sweep_gets_a_summary_of_its_test_passes(trained):
    cwd, _ = trained
    from clitools import TINY
    result = run(cwd, "train", "-m", *TINY, "noise=none,sp_mixed", "hydra.sweep.dir=train_sweep")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(cwd / "train_sweep" / "summary.csv")
    assert summary["noise"].tolist() == ["none", "sp_mixed"]
    assert summary["noise_type"].tolist() == ["none", "salt_and_pepper"]
    assert summary["train_noise"].tolist() == ["none", "salt_and_pepper:[0.2, 0.3, 0.4]"]
    assert (summary["n"] == 96).all()

    # A training job killed after its last checkpoint continues from it on a re-run (no new
    # optimiser steps: it had finished its epochs); the finished job is skipped.
    job = cwd / "train_sweep" / "1"
    steps = json.loads((job / "metrics.json").read_text())["global_step"]
    (job / "done.json").unlink()
    again = run(cwd, "train", "-m", *TINY, "noise=none,sp_mixed", "hydra.sweep.dir=train_sweep")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished" in again.stdout and f"resuming the interrupted training in {job}" in again.stdout
    assert json.loads((job / "metrics.json").read_text())["global_step"] == steps


def test_wilson_interval_matches_statsmodels():
    for successes, n in [(0, 10), (3, 10), (10, 10), (512, 1000)]:
        assert wilson_interval(successes, n) == pytest.approx(proportion_confint(successes, n, method="wilson"))


def test_position_hits_compare_ocr_answers_of_any_length():
    labels = pd.Series(["0427", "1111", "9999"])
    predictions = pd.Series(["0427", "11", None])
    hits = position_hits(labels, predictions)
    assert hits.tolist() == [[True] * 4, [True, True, False, False], [False] * 4]


def test_summary_and_seed_spread():
    rows = pd.DataFrame({"label": ["12", "34", "56", "78"], "prediction": ["12", "30", "06", "99"],
                         "correct": [True, False, False, False]})
    stats = summarize(rows)
    assert stats["n"] == 4 and stats["acc_seq"] == 0.25 and stats["acc_mean"] == pytest.approx(0.5)
    assert stats["acc_digit_1"] == 0.5 and stats["acc_digit_2"] == 0.5 and stats["digits_right"] == 1.0
    summary = pd.DataFrame({"status": "done", "noise_type": "gaussian", "seed": [0, 1, 2],
                            "acc_seq": [0.5, 0.6, 0.7], "acc_mean": [0.8, 0.9, 1.0]})
    spread = over_seeds(summary, ["noise_type"]).iloc[0]
    assert spread["seeds"] == 3 and spread["acc_seq"] == pytest.approx(0.6)
    assert spread["acc_seq_std"] == pytest.approx(0.1) and spread["acc_seq_max"] == 0.7


def test_the_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir

    from captcha_robustness.commands.cli import CONFIG_DIR

    overrides = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1",
                 "hydra.launcher.timeout_min=120"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 120)


@pytest.mark.slow
def test_the_analysis_builds_on_a_tiny_sweep(sweep):
    cwd, _, root, _ = sweep
    result = run(cwd, "analyze", f"predictions={root}", "out_dir=analysis", "bootstrap=20")
    assert result.returncode == 0, result.stderr[-3000:]
    out = cwd / "analysis"
    for name in ("summary.csv", "thresholds.csv", "logit.csv", "logit.txt", "logit_quality.csv", "report.md",
                 "marginal_effects.csv", "accuracy_vs_level.png", "degradation.csv", "digit_errors.csv",
                 "position_errors.csv", "confusions.csv", "pair_errors.csv", "gallery.png", "accuracy_vs_damage.png"):
        assert (out / name).is_file(), name
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and (summary["n"] == 50).all()
    assert list(pd.read_csv(out / "thresholds.csv")["noise_type"]) == ["gaussian", "salt_and_pepper"]
    assert set(pd.read_csv(out / "logit.csv").columns) >= {"term", "coef", "std_err", "z", "p_value", "ci_low",
                                                            "ci_high", "odds_ratio"}
    comparisons = pd.read_csv(out / "comparisons.csv")  # the two noise types at each level, same 50 CAPTCHAs
    assert comparisons["noise_level"].tolist() == [0.2, 0.6] and (comparisons["n"] == 50).all()
    hardest = pd.read_csv(out / "hardest.csv")
    assert len(hardest) == 50 and (hardest["observations"] == 4).all() and hardest["difficulty"].is_monotonic_decreasing
    damage = pd.read_csv(out / "damage.csv").set_index(["noise_type", "noise_level"])["ssim"]
    assert len(damage) == 4 and damage.between(0, 1).all()
    assert damage["gaussian", 0.2] > damage["gaussian", 0.6] and damage["salt_and_pepper", 0.2] > damage["salt_and_pepper", 0.6]
    assert len(pd.read_csv(out / "security.csv")) == 4
    report = (out / "report.md").read_text()
    for section in ("## Robustness thresholds", "![accuracy_vs_level.png]", "## Paired comparisons", "![gallery.png]",
                    "## Security"):
        assert section in report, section
    bad = run(cwd, "analyze", f"predictions={root}", "out_dir=analysis3", "images.gallery=-1")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: images.gallery: must be an integer in [0, 100] (got -1)"
    assert not (cwd / "analysis3").exists()
    missing = run(cwd, "analyze", "predictions=nowhere.parquet", "out_dir=analysis2")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: predictions: no such file or folder: nowhere.parquet"

    # Clean CAPTCHAs alone: two "models" on the same 50 CAPTCHAs, a misreading 12 and b 4 of
    # them (3 shared), get everything but the noise-dependent parts, and McNemar's counts.
    clean = (pd.read_parquet(root / "predictions.parquet").query("noise_type == 'gaussian' and noise_level == 0.2")
             .assign(noise_type="none", noise_level=0.0))
    ids = sorted(clean["captcha_id"])

    def misreading(model_id: str, wrong: list[int]) -> pd.DataFrame:
        hit = clean["captcha_id"].isin(wrong)
        first = ((clean["label"].str[0].astype(int) + 1) % 10).astype(str)
        return clean.assign(model_id=model_id, prediction=clean["label"].where(~hit, first + clean["label"].str[1:]),
                            correct=~hit, n_correct=np.where(hit, 3, 4))

    pd.concat([misreading("a", ids[:12]), misreading("b", ids[9:13])]).to_parquet(cwd / "clean.parquet")
    clean_only = run(cwd, "analyze", "predictions=clean.parquet", "out_dir=analysis4")
    assert clean_only.returncode == 0, clean_only.stderr[-3000:]
    written = {p.name for p in (cwd / "analysis4").iterdir()}
    assert written == {"summary.csv", "comparisons.csv", "digit_errors.csv", "position_errors.csv", "confusions.csv",
                       "pair_errors.csv", "hardest.csv", "source_digits.csv", "source_digits.png", "gallery.png",
                       "report.md"}
    (pair,) = pd.read_csv(cwd / "analysis4" / "comparisons.csv").itertuples()
    assert (pair.n, pair.acc_a, pair.acc_b, pair.a_only, pair.b_only) == (50, 0.76, 0.92, 1, 9)
    assert pair.p_value == pytest.approx(binomtest(1, 10).pvalue)
    # The test digits behind those misread first digits: their values, and the pool's labels.
    sources = pd.read_csv(cwd / "analysis4" / "source_digits.csv")
    for model, wrong in (("cnn a", ids[:12]), ("cnn b", ids[9:13])):
        rows = sources[sources["model"] == model]
        first_digits = clean.loc[clean["captcha_id"].isin(wrong), "label"].str[0].astype(int).value_counts()
        assert rows.groupby("digit")["errors"].sum().to_dict() == first_digits.to_dict()
        assert (rows["readings"] >= rows["errors"]).all()
        assert (rows["read_as"] == (rows["digit"] + 1) % 10).all()  # as planted
    assert (Mnist5kDigits().load().test.labels.numpy()[sources["test_digit"]] == sources["digit"]).all()
    renderer = Renderer.of(clean.assign(sweep=str(root)))  # the job configs, found from this process's folder
    assert renderer.test_digits(clean).shape == (50, 4)
    assert torch.equal(renderer.test_pool_images(), Mnist5kDigits().load().test.images)  # what source_digits.png draws
    assert renderer.test_digits(clean.assign(label=clean["label"].str[::-1])) is None  # not these digits
    report = (cwd / "analysis4" / "report.md").read_text()
    assert "Clean CAPTCHAs only: the thresholds, the regression" in report and "## Paired comparisons" in report
    assert "## The test digits behind the errors" in report and "![source_digits.png]" in report
    assert "## Robustness thresholds" not in report and "## Logistic regression" not in report


def test_stale_job_folders_are_those_whose_overrides_the_plan_does_not_give_them(tmp_path):
    from captcha_robustness.sweeps.jobs import set_aside_stale_jobs

    for num, overrides in enumerate([["seed=0"], ["seed=1"], ["seed=2"]]):
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        (tmp_path / str(num) / ".hydra" / "overrides.yaml").write_text("\n".join(f"- {o}" for o in overrides))
    assert set_aside_stale_jobs(tmp_path, [["seed=0"], ["seed=1"], ["seed=2"]]) is None
    stale = set_aside_stale_jobs(tmp_path, [["seed=0"], ["seed=5"]])
    assert sorted(p.name for p in stale.iterdir()) == ["1", "2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "stale"]
