"""Noise injected into CAPTCHA batches, defined as in the reference study (REFERENCE.md).

`level` is the fraction of pixels hit. Every pixel of every CAPTCHA carries fixed random
numbers drawn from (seed, split, captcha_id): a 16-bit uniform `u` that decides whether it
is hit (hit when u < level), and a second stream that decides how. So the pixels hit at one
level are also hit at every higher level, and all noise types at one level hit the same
pixels (common random numbers: comparisons across levels and types are paired).

A new noise type is one function registered with `@register_noise("name")` plus one config
file `conf/noise/name.yaml`; its keyword arguments are its config fields.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch

from captcha_robustness.data import rng
from captcha_robustness.errors import ConfigError

_U16_OFFSET = 32768  # random_uint16 lanes are int16 in [-32768, 32767]


@dataclass(frozen=True)
class NoiseDraw:
    """The per-pixel random streams of a batch; `hit` says which pixels a level selects."""

    keys: torch.Tensor  # (B,) int64, one per CAPTCHA
    num_pixels: int

    def uniform16(self, stream: int) -> torch.Tensor:
        """(B, num_pixels) uniform int16 lanes of stream `stream` (0 is the hit stream)."""
        keys = self.keys if stream == 0 else rng.mix64_(self.keys ^ rng.derive_key("stream", stream))
        return rng.random_uint16(keys, self.num_pixels)

    @cached_property
    def u(self) -> torch.Tensor:
        """The hit stream: pixel hit at `level` when u < level."""
        return self.uniform16(0)

    def hit(self, level: torch.Tensor) -> torch.Tensor:
        """(B, num_pixels) float 0/1: pixel hit, P = level (quantised to 1/65536)."""
        threshold = (level.reshape(-1, 1) * 65536).round() - _U16_OFFSET
        return threshold.sub(self.u.float()).clamp_(0, 1)


NoiseFn = Callable[..., torch.Tensor]
NOISES: dict[str, NoiseFn] = {}


def register_noise(name: str) -> Callable[[NoiseFn], NoiseFn]:
    """Register `fn(images, level, draw, **params) -> images` (images flattened to (B, pixels))."""

    def wrap(fn: NoiseFn) -> NoiseFn:
        NOISES[name] = fn
        return fn

    return wrap


@register_noise("none")
def no_noise(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    return images


@register_noise("salt_and_pepper")
def salt_and_pepper(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Each hit pixel becomes 1 or 0 with equal odds (the parity of its `u`)."""
    hit = draw.hit(level)
    salt = draw.u.bitwise_and(1).float().mul_(hit)
    return torch.add(images, salt, alpha=2.0).sub_(hit).clamp_(0, 1)


@register_noise("gaussian")
def gaussian(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw, sigma: float = 1.0) -> torch.Tensor:
    """Each hit pixel gets N(0, sigma) added, then the image is clipped to [0, 1]."""
    hit = draw.hit(level)
    # Inverse-CDF normal from a 16-bit uniform (tails reach 4.4 sigma).
    z = draw.uniform16(1).float().add_(0.5).mul_(1 / _U16_OFFSET).erfinv_().mul_(math.sqrt(2) * sigma)
    return torch.addcmul(images, z, hit).clamp_(0, 1)


@dataclass(frozen=True)
class LevelRange:
    low: float
    high: float


Level = float | tuple[float, ...] | LevelRange


@dataclass(frozen=True)
class NoiseConfig:
    """A validated noise setting: `level` is a number, a list (one drawn per CAPTCHA) or a range."""

    name: str = "none"
    level: Level = 0.0
    params: Mapping[str, float] = field(default_factory=dict)

    @staticmethod
    def from_dict(cfg: Mapping) -> NoiseConfig:
        cfg = dict(cfg)
        name = cfg.pop("name", "none")
        if name not in NOISES:
            raise ConfigError(f"noise.name: unknown noise type {name!r}; allowed: {', '.join(sorted(NOISES))}")
        level = _parse_level(cfg.pop("level", 0.0))
        if name == "none" and level != 0.0:
            raise ConfigError(f"noise.level: must be 0 for noise=none (got {level}); pick a noise type")
        allowed = [p for p in inspect.signature(NOISES[name]).parameters if p not in ("images", "level", "draw")]
        for key, value in cfg.items():
            if key not in allowed:
                raise ConfigError(f"noise.{key}: not a parameter of noise={name}; allowed: "
                                 f"{', '.join(['name', 'level', *allowed])}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"noise.{key}: must be a number (got {value!r})")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"noise.{key}: must be a finite number >= 0 (got {value!r})")
        return NoiseConfig(name, level, {k: float(v) for k, v in cfg.items()})

    @property
    def fixed_level(self) -> float:
        """The level as one number; a mixture here is a configuration error."""
        if not isinstance(self.level, float):
            raise ConfigError(f"noise.level: must be a single number here, not a mixture (got {self.level})")
        return self.level


def _parse_level(value) -> Level:
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


def sample_levels(cfg: NoiseConfig, keys: torch.Tensor) -> torch.Tensor:
    """(B,) float32 level per CAPTCHA: the fixed level, or one drawn from the mixture by its key."""
    if isinstance(cfg.level, float):
        return torch.full(keys.shape, cfg.level, device=keys.device)
    unit = rng.words_to_unit(rng.random_words(keys, 1)[:, 0]).float()
    if isinstance(cfg.level, LevelRange):
        return cfg.level.low + unit * (cfg.level.high - cfg.level.low)
    choices = torch.tensor(cfg.level, device=keys.device)
    return choices[(unit * len(choices)).long().clamp_(max=len(choices) - 1)]


def level_keys(noise_keys: torch.Tensor) -> torch.Tensor:
    """Keys that pick each CAPTCHA's level from a mixture, derived from its noise key."""
    return rng.mix64_(noise_keys ^ rng.derive_key("level"))


def apply_noise(images: torch.Tensor, cfg: NoiseConfig, keys: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Noise a (B, C, H, W) batch; `keys` (B,) fixes each CAPTCHA's draw. Returns a new tensor.

    Works in chunks of `chunk` CAPTCHAs so the per-pixel temporaries stay in cache.
    """
    if cfg.name == "none":
        return images.clone()
    fn = NOISES[cfg.name]
    levels = sample_levels(cfg, level_keys(keys))
    flat = images.reshape(images.shape[0], -1)
    out = torch.empty_like(flat)
    for s in range(0, flat.shape[0], chunk):
        draw = NoiseDraw(keys[s:s + chunk], flat.shape[1])
        out[s:s + chunk] = fn(flat[s:s + chunk], levels[s:s + chunk], draw, **cfg.params)
    return out.view_as(images)
