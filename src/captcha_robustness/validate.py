"""The one place where config values are checked: each check returns the value or raises a
ConfigError whose one line names the field, what is allowed and what was given."""

from __future__ import annotations

import math
from typing import Any

from captcha_robustness.errors import ConfigError


def number(field: str, value: Any, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, integer: bool = False, unit: str = "",
           note: str = "", nullable: bool = False, example: str = "") -> Any:
    """`value` if it is a number (an int when `integer`; never a bool) within the bounds given,
    else a ConfigError such as "field: must be an integer in [2, 16] pixels (got 40)".
    `note` explains a special value ("0: off"); `nullable` also accepts None."""
    if value is None and nullable:
        return value
    kind = "an integer" if integer else "a number"
    types = (int,) if integer else (int, float)
    ok = not isinstance(value, bool) and isinstance(value, types) and math.isfinite(value)
    if low is not None and high is not None:
        bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        ok = ok and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    elif low is not None:
        bounds = f" {'>' if low_open else '>='} {low:g}"
        ok = ok and (low < value if low_open else low <= value)
    else:
        bounds = ""
    if ok:
        return value
    allowed = f"{'null or ' if nullable else ''}{kind}{bounds}{' ' + unit if unit else ''}"
    example = f", e.g. {example}" if example else ""
    got = f"({note}; got {value!r})" if note else f"(got {value!r})"
    raise ConfigError(f"{field}: must be {allowed}{example} {got}")


def one_of(field: str, value: Any, allowed: Any) -> Any:
    """`value` if it is in `allowed`, else "field: must be one of a, b (got c)"."""
    if value in allowed:
        return value
    raise ConfigError(f"{field}: must be one of {', '.join(map(str, allowed))} (got {value!r})")
