"""The results layer: the predictions-table schema, and the committed study's report and tables."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from captcha_robustness.analysis.report import write_report
from captcha_robustness.errors import ConfigError
from captcha_robustness.results.schema import COLUMNS, REQUIRED, check_columns, in_column_order

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "multirun" / "reference-study"


def test_the_schema_page_lists_every_column_in_order():
    text = (ROOT / "docs" / "schema.md").read_text()
    rows = [line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")]
    assert rows == list(COLUMNS)
    assert set(REQUIRED) <= set(COLUMNS)


def test_a_table_without_required_columns_is_refused_in_one_line():
    table = pd.DataFrame({c: [] for c in COLUMNS}).drop(columns=["label", "error"])
    with pytest.raises(ConfigError) as caught:
        check_columns(table)
    assert str(caught.value).startswith("predictions: missing columns label, error;")
    assert "\n" not in str(caught.value)
    full = pd.DataFrame({c: [] for c in reversed(list(COLUMNS))}).assign(extra=[])
    assert list(in_column_order(full)) == list(COLUMNS)


def test_the_committed_report_is_its_tables_report_and_opens_with_its_findings(tmp_path):
    copy = tmp_path / "analysis"
    shutil.copytree(STUDY / "analysis", copy)
    (copy / "report.md").unlink()
    text = write_report(copy).read_text()
    assert text == (STUDY / "analysis" / "report.md").read_text()  # regenerated, then committed
    lines = text.splitlines()
    assert len(lines) < 250
    assert lines.index("## Findings") < 6
    findings = text.split("## Findings")[1].split("\n## ")[0]
    assert "90.7% (90.1%-91.2%)" in findings  # the clean model's accuracy, with its interval
    assert "none, salt_and_pepper 0.092 (0.091-0.093)" in findings  # its 50% threshold
    assert "![accuracy_vs_level.png]" in findings


def test_compare_studies_finds_the_committed_study_agrees_with_itself():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_studies.py"), str(STUDY), str(STUDY)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "verdict: the two studies agree within sampling error"
