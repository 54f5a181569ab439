"""captcha-study study=smoke end to end in a temp dir, then again: everything finished is skipped."""

import json
import os
import shutil

import pandas as pd
import pytest

from clitools import assert_one_line_error, run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("study")
    # Without Tesseract (a developer machine), the study runs without its OCR step; CI has it.
    no_ocr = [] if shutil.which("tesseract") or os.environ.get("REQUIRE_TESSERACT") else ["study.tesseract=null"]
    args = ["study=smoke", "out=smoke", *no_ocr]
    first = run(cwd, "study", *args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return cwd, args, first, not no_ocr


@pytest.mark.slow
def test_the_smoke_study_runs_every_step_into_one_report(smoke):
    cwd, _, first, with_ocr = smoke
    out = cwd / "smoke"
    log = json.loads((out / "study.json").read_text())["attempt"]
    steps = [s["step"] for s in log["steps"]]
    assert steps[:4] == ["train one model per regime", "evaluate them over the test-noise grid",
                         "train seed_cnn under sp_mixed (replication)", "evaluate seed_cnn over the test-noise grid"]
    assert steps[-1] == "analyse everything" and ("tesseract on a subsample" in steps) == with_ocr
    assert all(s["exit"] == 0 and s["seconds"] > 0 for s in log["steps"]) and log["finished"]
    assert log["command"] == "captcha-study " + " ".join(smoke[1])
    summary = pd.read_csv(out / "analysis" / "summary.csv")
    sizes = summary.groupby("model")["n"].first().to_dict()
    assert sizes["MultiHeadCNN trained on none"] == 40 and sizes["SeedCNN trained on salt_and_pepper:[0.2, 0.3, 0.4]"] == 20
    assert len(summary) == 4 * (3 + with_ocr)  # 2 noise types x 2 levels per model
    assert "## Security" in (out / "analysis" / "report.md").read_text()
    assert "+ captcha-train -m noise=none,sp_mixed" in first.stdout and "study done in" in first.stdout


@pytest.mark.slow
def test_a_rerun_skips_what_is_finished(smoke):
    cwd, args, _, with_ocr = smoke
    again = run(cwd, "study", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    # 2 + 1 trained models, 8 + 4 evaluation jobs (2 noise types x 2 levels per model) and 4
    # Tesseract jobs: all finished already.
    assert again.stdout.count("already finished") == 3 + 12 + 4 * with_ocr
    record = json.loads((cwd / "smoke" / "study.json").read_text())
    assert len(record["earlier_attempts"]) == 1 and record["attempt"]["finished"]


@pytest.mark.slow
def test_bad_study_settings_are_one_line(tmp_path):
    assert_one_line_error(run(tmp_path, "study", "study=smoke", "study.regimes=[]"), "study.regimes")
    assert_one_line_error(run(tmp_path, "study", "study=smoke", "study.train=5"), "study.train")
    assert not any(tmp_path.rglob("study.json"))


def test_the_recorded_commit_ignores_the_study_s_own_committed_outputs(tmp_path, monkeypatch):
    import subprocess

    from captcha_robustness.commands.study import _commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.md").write_text("old")
    (tmp_path / "code.py").write_text("x = 1")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "report.md").write_text("new")  # a re-run rewrites the committed report
    assert _commit(tmp_path / "out")["uncommitted_changes"] is False
    (tmp_path / "code.py").write_text("x = 2")
    assert _commit(tmp_path / "out")["uncommitted_changes"] is True
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    assert _commit(outside)["uncommitted_changes"] is True  # a study folder outside the repository


@pytest.mark.slow
def test_the_corruption_study_smoke_scores_every_model_against_the_baseline(tmp_path):
    no_ocr = [] if shutil.which("tesseract") or os.environ.get("REQUIRE_TESSERACT") else ["study.tesseract=null"]
    result = run(tmp_path, "study", "study=corruptions_smoke", "out=corr", *no_ocr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    analysis = tmp_path / "corr" / "analysis"
    mce = pd.read_csv(analysis / "mce.csv").set_index("model")
    cnn = mce.loc[mce.index.str.startswith("MultiHeadCNN")]
    assert len(cnn) == 2 and cnn["noise_types"].eq(2).all()  # the clean and the blur-trained model
    assert mce.loc[mce.index.str.startswith("SeedCNN"), "mce"].iloc[0] == pytest.approx(1.0)  # the baseline
    assert cnn["mce"].notna().all() and cnn["mean_acc"].between(0, 1).all()
    ranking = pd.read_csv(analysis / "defence_ranking.csv")
    assert set(ranking["noise_type"]) == {"gaussian_blur", "lines"}
    assert (ranking["ci_low"] <= ranking["slope"]).all() and (ranking["slope"] <= ranking["ci_high"]).all()
    transfer = pd.read_csv(analysis / "transfer.csv", keep_default_na=False).set_index("model")
    assert len(transfer) == len(mce)  # every model and OCR solver
    assert sorted(transfer.loc[transfer.index.str.startswith("MultiHeadCNN"), "trained_on"]) == ["", "blur"]
    assert list(transfer.columns[-3:]) == ["blur", "occlusion", "all"] and transfer["clean"].between(0, 1).all()
    report = (analysis / "report.md").read_text()
    assert "## Defence ranking" in report and "## Corruption accuracy and error" in report
    assert "## Transfer across corruption families" in report


@pytest.mark.slow
def test_the_adversarial_study_smoke_splits_white_box_from_transfer(tmp_path):
    no_ocr = [] if shutil.which("tesseract") or os.environ.get("REQUIRE_TESSERACT") else ["study.tesseract=null"]
    result = run(tmp_path, "study", "study=adversarial_smoke", "out=adv", *no_ocr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "adv"
    crafted = pd.read_parquet(out / "eval_adversarial_linf" / "predictions.parquet")
    # 3 surrogates x 2 levels x 4 readers (3 models and their ensemble) x 40 CAPTCHAs
    assert len(crafted) == 3 * 2 * 4 * 40 and crafted["surrogate"].nunique() == 3
    assert crafted["ssim"].between(0, 1).all() and (crafted["noise_level"] > 0).all()
    analysis = out / "analysis"
    limits = pd.read_csv(analysis / "adversarial_thresholds.csv")
    expected = {"adversarial_l0 (white-box)", "adversarial_l0 (transfer)", "adversarial_linf (white-box)",
                "adversarial_linf (transfer)", "salt_and_pepper", "uniform"}
    assert expected <= set(limits["noise_type"])
    assert "adversarial_linf (member)" in set(limits.loc[limits["model"].str.startswith("ensemble"), "noise_type"])
    ranking = pd.read_csv(analysis / "defence_ranking.csv")
    assert {"uniform", "adversarial_linf (white-box)", "adversarial_linf (transfer)"} <= set(ranking["noise_type"])
    summary = pd.read_csv(analysis / "summary.csv")
    assert not summary["noise_type"].str.startswith("adversarial").any()  # crafted rows: their own section
    report = (analysis / "report.md").read_text()
    assert "## Adversarial noise" in report and "adversarial_curves.png" in report
    if not no_ocr:
        assert (out / "tesseract_adversarial_l0" / "predictions.parquet").is_file()
