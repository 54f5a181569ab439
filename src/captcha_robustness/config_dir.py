"""Where the Hydra configs lie, and what conf/noise/ says about the noise types (without torch)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

# The checkout's conf/ (editable installs, the usual case); a wheel carries a copy inside the package.
_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT_CONF = _PACKAGE.parents[1] / "conf"
CONFIG_DIR = str(_CHECKOUT_CONF if _CHECKOUT_CONF.is_dir() else _PACKAGE / "conf")


@functools.cache
def configured_noise_types() -> dict[str, list[str]]:
    """Each noise type of conf/noise/ (one file per type, whose `name` is that one type) with
    its parameters: the file's keys other than name and level. A test keeps this equal to the
    registered noise functions and their keyword arguments."""
    types = {}
    for path in sorted(Path(CONFIG_DIR, "noise").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        if isinstance(cfg.get("name"), str) and cfg["name"] == path.stem:
            types[path.stem] = [key for key in cfg if key not in ("name", "level")]
    return types


@functools.cache
def noise_families() -> dict[str, list[str]]:
    """The corruption families of conf/noise/family_<name>.yaml: each family's noise types."""
    families = {}
    for path in sorted(Path(CONFIG_DIR, "noise").glob("family_*.yaml")):
        names = (yaml.safe_load(path.read_text()) or {}).get("name")
        if isinstance(names, list):
            families[path.stem.removeprefix("family_")] = [str(name) for name in names]
    return families
