import math

import pytest

from captcha_robustness.errors import ConfigError
from captcha_robustness.validate import number, one_of


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
