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
        bounds = f" in {'(' if low_open else '['}{_show(low)}, {_show(high)}{')' if high_open else ']'}"
        ok = ok and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    elif low is not None:
        bounds = f" {'>' if low_open else '>='} {_show(low)}"
        ok = ok and (low < value if low_open else low <= value)
    else:
        bounds = ""
    if ok:
        return value
    allowed = f"{'null or ' if nullable else ''}{kind}{bounds}{' ' + unit if unit else ''}"
    example = f", e.g. {example}" if example else ""
    got = f"({note}; got {value!r})" if note else f"(got {value!r})"
    raise ConfigError(f"{field}: must be {allowed}{example} {got}")


def _show(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def one_of(field: str, value: Any, allowed: Any) -> Any:
    """`value` if it is in `allowed`, else "field: must be one of a, b (got c)"."""
    if value in allowed:
        return value
    raise ConfigError(f"{field}: must be one of {', '.join(map(str, allowed))} (got {value!r})")


# Every number a config may hold, by its path: what `check_field` allows there. Commands check
# these before any work (captcha_robustness.preflight); the classes they configure check again.
FIELDS: dict[str, dict[str, Any]] = {
    "seed": dict(low=0, high=2**32 - 1, integer=True),
    "trainer.max_epochs": dict(low=1, integer=True),
    "trainer.log_every_n_steps": dict(low=1, integer=True),
    "optimizer.lr": dict(low=0, example="0.003"),
    "optimizer.weight_decay": dict(low=0),
    "optimizer.momentum": dict(low=0, high=1, high_open=True),
    "training.ema_decay": dict(low=0, high=1, low_open=True, high_open=True, nullable=True, example="0.999"),
    "training.label_smoothing": dict(low=0, high=1, high_open=True),
    "training.members": dict(low=1, integer=True, note="1: one network"),
    "training.mutual_weight": dict(low=0, note="0: members train independently"),
    "training.adversarial.level": dict(low=0, high=1, low_open=True, example="0.1"),
    "training.adversarial.steps": dict(low=1, integer=True),
    "training.adversarial.share": dict(low=0, high=1, low_open=True, note="the share of each batch attacked"),
    "model.glimpses": dict(low=0, integer=True, note="0: a dense layer and one head per digit"),
    "data.train_size": dict(low=1, integer=True),
    "data.val_size": dict(low=1, integer=True),
    "data.test_size": dict(low=1, integer=True),
    "data.batch_size": dict(low=1, integer=True),
    "data.num_workers": dict(low=0, integer=True),
    "data.augment.elastic_alpha": dict(low=0, high=8, unit="pixels"),
    "data.augment.elastic_cells": dict(low=2, high=16, integer=True),
    "data.augment.stroke": dict(low=0, high=1),
    "data.augment.padding_jitter": dict(low=0, high=20, integer=True, unit="pixels"),
    "data.augment.slant": dict(low=0, high=1),
    "data.augment.aspect": dict(low=0, high=0.5),
    "data.augment.erase": dict(low=0, high=14, integer=True, unit="pixels"),
    "digits.val_fraction": dict(low=0, high=0.5, low_open=True, high_open=True),
    "digits.test_fraction": dict(low=0, high=0.5, low_open=True, high_open=True),
    "digits.val_size": dict(low=1, high=59999, integer=True),
    "ocr.height": dict(low=16, high=1000, integer=True),
    "ocr.widen": dict(low=0.25, high=8),
    "ocr.binarize": dict(low=0, high=1, low_open=True, high_open=True, nullable=True),
    "ocr.border": dict(low=0, integer=True),
    "solver.max_retries": dict(low=0, integer=True),
    "solver.workers": dict(low=0, integer=True, note="0: one per CPU core"),
    "solver.timeout_s": dict(low=0, low_open=True, unit="seconds"),
    "solver.max_requests_per_minute": dict(low=0, low_open=True),
    "solver.daily_budget": dict(low=0, integer=True),
    "solver.backoff_s": dict(low=0, unit="seconds"),
    "solver.max_backoff_s": dict(low=0, unit="seconds"),
    "solver.psm": dict(low=0, high=13, integer=True),
    "member": dict(low=1, integer=True, nullable=True, note="a network of the checkpoint"),
    "batch_size": dict(low=1, integer=True),
    "grid.count": dict(low=1, high=64, integer=True),
    "grid.captcha_id": dict(low=0, integer=True),
    "bootstrap": dict(low=0, high=100_000, integer=True),
    "logit.max_degree": dict(low=0, high=10, integer=True),
    "logit.cv_folds": dict(low=0, high=100, integer=True),
    "images.gallery": dict(low=0, high=100, integer=True),
    "images.source_digits": dict(low=0, high=200, integer=True),
    "images.damage_captchas": dict(low=0, high=10_000, integer=True),
    "recipe.threads": dict(low=0, integer=True, note="0: torch's default"),
}


def check_field(field: str, value: Any) -> Any:
    """`value` if FIELDS allows it at `field`, else the one-line ConfigError of `number`."""
    return number(field, value, **FIELDS[field])
