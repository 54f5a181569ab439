"""The data settings as plain values, checked on creation: what `data.render`, `data.augment`
and `noise.level` may hold. No torch here, so that a command checks its whole config before
it imports what only the work needs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from captcha_robustness.errors import ConfigError
from captcha_robustness.validate import check_field


LAYOUT_NAMES = ("reference", "touching")


@dataclass(frozen=True)
class RenderConfig:
    """How clean CAPTCHAs are drawn (`data.render`). `layout` names how the digits are laid out:
    - reference: as the reference study drew them (docs/data.md): `gap_min`-`gap_max` blank
      columns between neighbouring digits' ink, each digit's rotated image (not its ink)
      centred vertically, digits resized and rotated in two 8-bit passes;
    - touching: neighbouring digits' ink overlapping by `overlap_min`-`overlap_max` pixels,
      each digit's ink centred vertically, one float pass per digit."""

    num_digits: int = 4
    height: int = 100
    width: int = 110
    scale_min: float = 0.9
    scale_max: float = 1.3
    rotation_min: float = -20.0  # degrees, counter-clockwise positive
    rotation_max: float = 20.0
    overlap_min: int = 2  # pixels, inclusive (the touching layout)
    overlap_max: int = 6
    padding: int = 2
    layout: str = "reference"
    gap_min: int = 2  # pixels, inclusive (the reference layout)
    gap_max: int = 6

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, allowed: str) -> None:
            if not ok:
                raise ConfigError(f"data.render.{field}: must be {allowed}")

        check(isinstance(self.num_digits, int) and 1 <= self.num_digits <= 16, "num_digits", "an integer in [1, 16]")
        check(isinstance(self.height, int) and self.height >= 8, "height", "an integer >= 8")
        check(isinstance(self.width, int) and self.width >= 8, "width", "an integer >= 8")
        check(0 < self.scale_min <= self.scale_max <= 4, "scale_min/scale_max", "0 < scale_min <= scale_max <= 4")
        check(-90 <= self.rotation_min <= self.rotation_max <= 90, "rotation_min/rotation_max",
              "-90 <= rotation_min <= rotation_max <= 90 degrees")
        check(isinstance(self.overlap_min, int) and isinstance(self.overlap_max, int)
              and 0 <= self.overlap_min <= self.overlap_max <= 20, "overlap_min/overlap_max",
              "integers with 0 <= overlap_min <= overlap_max <= 20")
        check(isinstance(self.padding, int) and 0 <= self.padding <= 20, "padding", "an integer in [0, 20]")
        check(self.layout in LAYOUT_NAMES, "layout", f"one of {', '.join(LAYOUT_NAMES)} (got {self.layout!r})")
        check(isinstance(self.gap_min, int) and isinstance(self.gap_max, int)
              and 0 <= self.gap_min <= self.gap_max <= 20, "gap_min/gap_max",
              f"integers with 0 <= gap_min <= gap_max <= 20 (got {self.gap_min!r}, {self.gap_max!r})")


@dataclass(frozen=True)
class Augment:
    """Training-only digit variety (`data.augment`), each part off at 0:
    - elastic: each digit is warped by a smooth random displacement field, an elastic
      distortion (Simard et al., 2003): offsets drawn uniformly in [-elastic_alpha,
      elastic_alpha] source pixels, per axis, at an `elastic_cells` x `elastic_cells` grid of
      control points over the digit's patch, blended by a cubic B-spline;
    - stroke: each digit's strokes are thickened or thinned, as by another pen: the digit is
      blended with its 3x3 dilation (weight w > 0) or erosion (w < 0), w drawn uniformly in
      [-stroke, stroke];
    - padding_jitter: each side of the crop gets its own padding, drawn uniformly from the
      integers in [padding - padding_jitter, padding + padding_jitter] (below 0 counts as
      0), so the stretched content moves and changes size a little, as a badly centred
      CAPTCHA would;
    - overlap: the training CAPTCHAs' own [min, max] overlap between neighbouring digits'
      ink (integers, inclusive), in place of data.render's; None keeps data.render's;
    - slant and aspect: each digit is restyled as another writer's hand before its scale and
      rotation: sheared (x += k y, k uniform in [-slant, slant]; y points down) and made
      wider or narrower (width times a factor uniform in [1 - aspect, 1 + aspect]);
    - layouts: the layouts (data.render.layout's names) that training CAPTCHAs are drawn in,
      each CAPTCHA's chosen uniformly from the list by its key (a name twice: twice the odds);
      None keeps data.render's. A CAPTCHA keeps
      its digits, scales, angles and augments whatever layout it is drawn in, and its spacing
      draw becomes a gap (data.render.gap_*) or an overlap (overlap_* or `overlap` above);
    - erase: a square of `erase` x `erase` source pixels is blacked out in each digit before
      any other change, its centre uniform over the 28 x 28 image, so it often misses the ink
      or clips it (Cutout, DeVries and Taylor, 2017): the network must read digits with a
      stroke missing, as a neighbour's overlap hides part of one (it cost an hour-long pair
      0.76 points of test CAPTCHAs: docs/accuracy.md)."""

    elastic_alpha: float = 0.0
    elastic_cells: int = 6
    stroke: float = 0.0
    padding_jitter: int = 0
    overlap: tuple[int, int] | None = None
    slant: float = 0.0
    aspect: float = 0.0
    erase: int = 0
    layouts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        alpha, cells, stroke, jitter = self.elastic_alpha, self.elastic_cells, self.stroke, self.padding_jitter
        check_field("data.augment.elastic_alpha", alpha)
        check_field("data.augment.elastic_cells", cells)
        check_field("data.augment.stroke", stroke)
        check_field("data.augment.padding_jitter", jitter)
        check_field("data.augment.slant", self.slant)
        check_field("data.augment.aspect", self.aspect)
        check_field("data.augment.erase", self.erase)
        if self.overlap is not None:
            low_high = tuple(self.overlap) if isinstance(self.overlap, (list, tuple)) else ()
            if not (len(low_high) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in low_high)
                    and 0 <= low_high[0] <= low_high[1] <= 20):
                raise ConfigError(f"data.augment.overlap: must be null or [min, max], integers with "
                                  f"0 <= min <= max <= 20 pixels (got {self.overlap!r})")
            object.__setattr__(self, "overlap", low_high)
        if self.layouts is not None:
            names = tuple(self.layouts) if isinstance(self.layouts, (list, tuple)) else ()
            if not names or any(name not in LAYOUT_NAMES for name in names):
                raise ConfigError(f"data.augment.layouts: must be null or a non-empty list of layouts among "
                                  f"{', '.join(LAYOUT_NAMES)}, a name repeated to weight it (got {self.layouts!r})")
            object.__setattr__(self, "layouts", names)

    @property
    def active(self) -> bool:
        return (self.elastic_alpha > 0 or self.stroke > 0 or self.padding_jitter > 0 or self.overlap is not None
                or self.restyles or self.erase > 0 or self.layouts is not None)

    @property
    def restyles(self) -> bool:
        """Whether digits are slanted or resized (`slant`, `aspect`)."""
        return self.slant > 0 or self.aspect > 0

    def render_config(self, cfg: RenderConfig) -> RenderConfig:
        """`cfg` with the training overlap range, where one is set."""
        if self.overlap is None:
            return cfg
        return replace(cfg, overlap_min=self.overlap[0], overlap_max=self.overlap[1])


@dataclass(frozen=True)
class LevelRange:
    low: float
    high: float


Level = float | tuple[float, ...] | LevelRange


def parse_level(value) -> Level:
    def number(x, what: str = "noise.level") -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
            raise ConfigError(f"{what}: must be a number in [0, 1], a list of such numbers, "
                             f"or {{low: L, high: H}} (got {x!r})")
        return float(x)

    if isinstance(value, Mapping):
        if set(value) != {"low", "high"}:
            raise ConfigError(f"noise.level: a range needs exactly the keys low and high (got {sorted(value)})")
        low, high = number(value["low"]), number(value["high"])
        if low > high:
            raise ConfigError(f"noise.level: range low must be <= high (got {low} > {high})")
        return LevelRange(low, high)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 0:
            raise ConfigError("noise.level: an empty list; give at least one level in [0, 1]")
        levels = tuple(number(x) for x in value)
        return levels[0] if len(levels) == 1 else levels
    return number(value)


def parse_noise(cfg: Mapping, types: Mapping[str, Sequence[str]]
                ) -> tuple[str | tuple[str, ...], Level, dict, tuple[str, ...]]:
    """`noise.*` checked against `types` (each noise type's parameters): the name (one type, or
    a tuple drawn from per CAPTCHA), the level, the parameters as floats, and the surrogate
    checkpoints of an adversarial type (a type with a `surrogate` parameter; else empty)."""
    cfg = dict(cfg)
    raw = cfg.pop("name", "none")
    names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, Sequence) else [raw]
    for name in names:
        if name not in types or (name == "none" and len(names) > 1):
            raise ConfigError(f"noise.name: unknown noise type {name!r}; allowed: {', '.join(sorted(types))}, "
                              f"or a list of types other than none")
    name = names[0] if len(names) == 1 else tuple(names)
    level = parse_level(cfg.pop("level", 0.0))
    if name == "none" and level != 0.0:
        raise ConfigError(f"noise.level: must be 0 for noise=none (got {level}); pick a noise type")
    adversarial = [n for n in names if "surrogate" in types[n]]
    surrogate = parse_surrogate(cfg.pop("surrogate", None), adversarial[0]) if adversarial else ()
    if adversarial and (len(names) > 1 or not isinstance(level, float)):
        raise ConfigError(f"noise.name: {adversarial[0]} is crafted at one budget: give it alone (not in a list "
                          f"of types) with one number as noise.level (got name {raw}, level {level})")
    allowed = [p for n in names for p in types[n]]
    for key, value in cfg.items():
        if key not in allowed:
            raise ConfigError(f"noise.{key}: not a parameter of noise {name}; allowed: "
                              f"{', '.join(['name', 'level', *allowed])}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"noise.{key}: must be a number (got {value!r})")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"noise.{key}: must be a finite number >= 0 (got {value!r})")
    steps = cfg.get("steps", 1)
    if adversarial and (steps < 1 or steps != int(steps)):
        raise ConfigError(f"noise.steps: must be a whole number of attack steps >= 1 (got {steps:g})")
    return name, level, {k: float(v) for k, v in cfg.items()}, surrogate


def parse_surrogate(value: Any, name: str) -> tuple[str, ...]:
    """`noise.surrogate`: one checkpoint path, or a non-empty list of them (read as an ensemble)."""
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, Sequence) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(f"noise.surrogate: noise={name} is crafted against a solver; give the .ckpt written by "
                          f"captcha-train to attack, or a list of them for an ensemble (got {value!r})")
    return tuple(paths)


def dataclass_from(field: str, cls: type, values: Mapping | None) -> Any:
    """`cls(**values)`, or one line naming the first key of `values` that `cls` lacks."""
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(values or {}) - allowed)
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")
    return cls(**dict(values or {}))
