"""Analysis scripts under scripts/, run as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the commands as a user does

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_split_accuracy_reproduces_the_test_metrics_and_reads_every_split(trained):
    cwd, _ = trained
    train_metrics = json.loads((cwd / "run1" / "metrics.json").read_text())
    result = subprocess.run([sys.executable, str(SCRIPTS / "split_accuracy.py"), train_metrics["best_checkpoint"],
                             "--count", "96", "data.batch_size=32"], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert list(rows) == ["train", "val", "test"]
    for count, seq, mean in rows.values():
        assert count == "96" and 0 <= float(seq) <= float(mean) <= 1
    # The test row renders the fixed test CAPTCHAs 0..95, which the training run tested on.
    assert float(rows["test"][1]) == pytest.approx(train_metrics["test/acc_seq"], abs=1e-4)
    assert float(rows["test"][2]) == pytest.approx(train_metrics["test/acc_mean"], abs=1e-4)


def test_split_accuracy_of_several_checkpoints_adds_their_ensemble(trained):
    cwd, _ = trained
    train_metrics = json.loads((cwd / "run1" / "metrics.json").read_text())
    best = train_metrics["best_checkpoint"]
    result = subprocess.run([sys.executable, str(SCRIPTS / "split_accuracy.py"), best, best, "--count", "96"],
                            cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = [block.splitlines() for block in result.stdout.strip().split("\n\n")]
    assert [block[0] for block in blocks] == [best, best, "ensemble of 2 (mean softmax)"]
    tables = [{line.split()[0]: [float(x) for x in line.split()[2:]] for line in block[2:]} for block in blocks]
    assert list(tables[0]) == ["train", "val", "test"]
    assert tables[0]["test"] == pytest.approx([train_metrics["test/acc_seq"], train_metrics["test/acc_mean"]], abs=1e-4)
    # A checkpoint pooled with itself reads exactly as it does alone.
    assert tables[0] == tables[1] == tables[2]


def test_split_accuracy_rejects_a_missing_checkpoint_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / "split_accuracy.py"), "missing.ckpt"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: ckpt_path: no such file: missing.ckpt"


def test_train_curve_without_logged_metrics_ends_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / "train_curve.py"), str(tmp_path / "out"),
                             "debug=fast_dev_run", "trainer.enable_progress_bar=false"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'out' / 'csv' / 'metrics.csv'}: missing")
    assert "Traceback" not in result.stderr


def test_split_accuracy_refuses_another_digit_source_than_the_checkpoints(trained):
    cwd, _ = trained
    train_metrics = json.loads((cwd / "run1" / "metrics.json").read_text())
    result = subprocess.run([sys.executable, str(SCRIPTS / "split_accuracy.py"), train_metrics["best_checkpoint"],
                             "digits=mnist"], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: digits: the checkpoint trained on digits=mnist5k; got digits=mnist"


def test_reference_gap_reads_both_oracle_layouts_through_captcha_predict(trained, tmp_path):
    cwd, _ = trained
    train_metrics = json.loads((cwd / "run1" / "metrics.json").read_text())
    result = subprocess.run([sys.executable, str(SCRIPTS / "reference_gap.py"), train_metrics["best_checkpoint"],
                             "--count", "96", "--out", str(tmp_path)], cwd=cwd, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    ours, reference, touching = (lines[k].split()[-3:] for k in (1, 2, 3))
    assert ours[0] == reference[0] == touching[0] == "96"
    assert all(len(list((tmp_path / side).glob("*.png"))) == 96 for side in ("ours", "reference", "touching"))
    # Our side is the run's own test CAPTCHAs 0..95, read back from 8-bit PNGs.
    assert float(ours[2]) == pytest.approx(train_metrics["test/acc_mean"], abs=0.02)
    for line, (layout, side) in zip(lines[4:], (("reference", reference), ("touching", touching))):
        gap = 100 * (float(ours[1]) - float(side[1]))
        assert line == f"gap, {layout} layout: {gap:+.2f} points of whole-CAPTCHA accuracy"
