import math
import subprocess
import sys

import pytest

from captcha_robustness.errors import ConfigError
from captcha_robustness.preflight import check_url, first_difference
from captcha_robustness.validate import FIELDS, check_field, number, one_of


@pytest.mark.parametrize("value", [0, 3, 8, 2.5])
def test_numbers_in_range_pass_through(value):
    assert number("f", value, low=0, high=8) == value


@pytest.mark.parametrize("value, message", [
    (9, "f: must be a number in [0, 8] pixels (got 9)"),
    (True, "f: must be a number in [0, 8] pixels (got True)"),
    ("3", "f: must be a number in [0, 8] pixels (got '3')"),
    (math.nan, "f: must be a number in [0, 8] pixels (got nan)"),
])
def test_one_line_names_the_field_the_range_and_the_value(value, message):
    with pytest.raises(ConfigError) as caught:
        number("f", value, low=0, high=8, unit="pixels")
    assert str(caught.value) == message


def test_integers_open_bounds_notes_and_null():
    assert number("n", None, low=0, high=1, nullable=True) is None
    with pytest.raises(ConfigError, match=r"^n: must be an integer >= 1 \(1: one network; got 1.5\)$"):
        number("n", 1.5, low=1, integer=True, note="1: one network")
    with pytest.raises(ConfigError, match=r"^d: must be null or a number in \(0, 1\), e.g. 0.999 \(got 1\)$"):
        number("d", 1, low=0, high=1, low_open=True, high_open=True, nullable=True, example="0.999")
    with pytest.raises(ConfigError, match=r"^s: must be a number in \[0, 1\) \(got 1\)$"):
        number("s", 1, low=0, high=1, high_open=True)
    assert one_of("k", "raw", ("digits", "raw")) == "raw"
    with pytest.raises(ConfigError, match=r"^k: must be one of digits, raw \(got 'x'\)$"):
        one_of("k", "x", ("digits", "raw"))


def test_a_command_checks_its_config_before_importing_torch(tmp_path):
    code = ("import sys; sys.argv = ['captcha-train', 'optimizer.lr=-1']\n"
            "from captcha_robustness.commands.entry import train\n"
            "try:\n    train()\nexcept SystemExit as exc:\n    print(exc.code, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert result.stderr.strip() == "error: optimizer.lr: must be a number >= 0, e.g. 0.003 (got -1)"
    assert list(tmp_path.iterdir()) == []


def test_every_field_rule_is_a_valid_number_check():
    for field, rule in FIELDS.items():
        with pytest.raises(ConfigError, match=f"^{field}: must be"):
            check_field(field, "not a number")


@pytest.mark.parametrize("url", ["https://api.ocr.space/parse/image", "http://127.0.0.1:8080/parse"])
def test_urls_with_a_host_and_port_pass(url):
    assert check_url("solver.url", url) == url


@pytest.mark.parametrize("url", ["notaurl", "ftp://host/x", "http://127.0.0.1:180000/x", "http:///x", "http://h:0/"])
def test_bad_urls_are_refused_naming_the_field(url):
    with pytest.raises(ConfigError, match="^solver.url: "):
        check_url("solver.url", url)


def test_first_difference_names_the_path_and_both_values():
    assert first_difference({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}, "model") == \
        "model.a.c: 2 in the checkpoint, 3 here"
    assert first_difference({"a": 1}, {"a": 1, "d": 4}, "model") == "model.d: absent in the checkpoint, 4 here"
    assert first_difference([1, 2], [1, 2], "model") is None
