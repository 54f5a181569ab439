"""One clear line for bad input, instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class ConfigError(ValueError):
    """A user-facing configuration or input error; its message names the field and what is allowed."""


def find_config_error(exc: BaseException | None) -> ConfigError | None:
    while exc is not None:
        if isinstance(exc, ConfigError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def exit_on_config_error(fn: F) -> F:
    """Wrap a Hydra task: a ConfigError anywhere (also inside instantiate) prints one line and exits 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is a ConfigError
            err = find_config_error(exc)
            if err is None:
                raise
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
