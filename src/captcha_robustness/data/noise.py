"""Noise injected into CAPTCHA batches, defined as in the reference study (REFERENCE.md).

`level` is the fraction of pixels hit. Every pixel of every CAPTCHA carries fixed random
numbers drawn from (seed, split, captcha_id): a 16-bit uniform `u` that decides whether it
is hit (hit when u < level), and a second stream that decides how. So the pixels hit at one
level are also hit at every higher level, and all noise types at one level hit the same
pixels (common random numbers: comparisons across levels and types are paired).

`name` may also list several types (e.g. [gaussian, salt_and_pepper]): each CAPTCHA then
gets one of them, drawn from its key with equal odds (a "mixed" training regime).

A new noise type is one function registered with `@register_noise("name")` plus one config
file `conf/noise/name.yaml`; its keyword arguments are its config fields. It noises the
(B, pixels) images it is given in place (they are always a private copy or buffer).
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

_U16_OFFSET = 32768  # 16-bit lanes are int16 in [-32768, 32767]
_PARITY_BITS = 0x0001000100010001  # the lowest bit of each 16-bit lane of a 64-bit word


@dataclass(frozen=True)
class NoiseDraw:
    """The per-pixel random streams of a batch; `hit` says which pixels a level selects."""

    keys: torch.Tensor  # (B,) int64, one per CAPTCHA
    num_pixels: int

    def words(self, stream: int) -> torch.Tensor:
        """(B, ceil(num_pixels / 4)) int64 random words of stream `stream`, 4 pixels per word."""
        keys = self.keys if stream == 0 else rng.mix64_(self.keys ^ rng.derive_key("stream", stream))
        return rng.random_words(keys, (self.num_pixels + 3) // 4)

    def lanes(self, words: torch.Tensor) -> torch.Tensor:
        """(B, num_pixels) int16 view of `words`: one uniform 16-bit value per pixel."""
        return words.view(torch.int16)[:, : self.num_pixels]

    @cached_property
    def hit_words(self) -> torch.Tensor:
        """Stream 0: pixel p is hit at `level` when its lane u_p < level (as a 16-bit fraction)."""
        return self.words(0)

    def hit(self, level: torch.Tensor) -> torch.Tensor:
        """(B, num_pixels) float 0/1: pixel hit, P = level (quantised to 1/65536)."""
        threshold = (level.reshape(-1, 1) * 65536).round() - _U16_OFFSET
        return threshold.sub(self.lanes(self.hit_words).float()).clamp_(0, 1)


NoiseFn = Callable[..., torch.Tensor]
NOISES: dict[str, NoiseFn] = {}


def register_noise(name: str) -> Callable[[NoiseFn], NoiseFn]:
    """Register `fn(images, level, draw, **params) -> images`: noise `images` (flattened to
    (B, pixels)) in place and return them."""

    def wrap(fn: NoiseFn) -> NoiseFn:
        NOISES[name] = fn
        return fn

    return wrap


@register_noise("none")
def no_noise(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    return images


@register_noise("salt_and_pepper")
def salt_and_pepper(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Each hit pixel becomes 1 or 0 with equal odds (the parity of its hit lane)."""
    salt = draw.lanes(draw.hit_words & _PARITY_BITS).float()  # 1 salt, 0 pepper
    return images.lerp_(salt, draw.hit(level))


@register_noise("gaussian")
def gaussian(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw, sigma: float = 1.0) -> torch.Tensor:
    """Each hit pixel gets N(0, sigma) added, then the image is clipped to [0, 1]."""
    lanes = draw.lanes(draw.words(1)).long().add_(_U16_OFFSET)
    z = _standard_normal_table(images.device).index_select(0, lanes.view(-1)).view_as(lanes)
    return images.add_(draw.hit(level).mul_(z).mul_(sigma)).clamp_(0, 1)


_NORMAL_TABLES: dict[torch.device, torch.Tensor] = {}


def _standard_normal_table(device: torch.device) -> torch.Tensor:
    """N(0, 1) quantiles at the 65536 midpoints (u + 0.5) / 65536: a 16-bit uniform lane maps to
    a normal draw by lookup (tails reach 4.4 sigma). A lookup is several times cheaper than erfinv."""
    if device not in _NORMAL_TABLES:
        unit = (torch.arange(65536, dtype=torch.float64) + 0.5) / 65536
        _NORMAL_TABLES[device] = (torch.erfinv(2 * unit - 1) * math.sqrt(2)).float().to(device)
    return _NORMAL_TABLES[device]


@dataclass(frozen=True)
class LevelRange:
    low: float
    high: float


Level = float | tuple[float, ...] | LevelRange


@dataclass(frozen=True)
class NoiseConfig:
    """A validated noise setting: `level` is a number, a list (one drawn per CAPTCHA) or a range;
    `name` one noise type or a tuple of them (one drawn per CAPTCHA)."""

    name: str | tuple[str, ...] = "none"
    level: Level = 0.0
    params: Mapping[str, float] = field(default_factory=dict)

    @staticmethod
    def from_dict(cfg: Mapping) -> NoiseConfig:
        cfg = dict(cfg)
        name = _parse_name(cfg.pop("name", "none"))
        level = _parse_level(cfg.pop("level", 0.0))
        if name == "none" and level != 0.0:
            raise ConfigError(f"noise.level: must be 0 for noise=none (got {level}); pick a noise type")
        names = name if isinstance(name, tuple) else (name,)
        allowed = [p for n in names for p in inspect.signature(NOISES[n]).parameters
                   if p not in ("images", "level", "draw")]
        for key, value in cfg.items():
            if key not in allowed:
                raise ConfigError(f"noise.{key}: not a parameter of noise {name}; allowed: "
                                 f"{', '.join(['name', 'level', *allowed])}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"noise.{key}: must be a number (got {value!r})")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"noise.{key}: must be a finite number >= 0 (got {value!r})")
        return NoiseConfig(name, level, {k: float(v) for k, v in cfg.items()})

    @property
    def label(self) -> str:
        """The noise type as one string: 'gaussian', or 'gaussian+salt_and_pepper' for a mixture."""
        return "+".join(self.name) if isinstance(self.name, tuple) else self.name

    @property
    def fixed_level(self) -> float:
        """The level as one number; a mixture here is a configuration error."""
        if not isinstance(self.level, float):
            raise ConfigError(f"noise.level: must be a single number here, not a mixture (got {self.level})")
        return self.level


def _parse_name(value) -> str | tuple[str, ...]:
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    for name in names:
        if name not in NOISES or (name == "none" and len(names) > 1):
            raise ConfigError(f"noise.name: unknown noise type {name!r}; allowed: {', '.join(sorted(NOISES))}, "
                              f"or a list of types other than none")
    return names[0] if len(names) == 1 else tuple(names)


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


def apply_noise(images: torch.Tensor, cfg: NoiseConfig, keys: torch.Tensor, levels: torch.Tensor | None = None,
                chunk: int = 64, inplace: bool = False) -> torch.Tensor:
    """Noise a (B, C, H, W) batch; `keys` (B,) fixes each CAPTCHA's draw, `levels` (B,) its
    level (drawn from `cfg` by `sample_levels` when not given). Returns a new tensor, or
    `images` itself noised when `inplace`.

    Works `chunk` CAPTCHAs at a time so the per-pixel temporaries stay in cache.
    """
    out = images if inplace else images.clone()
    if cfg.name == "none":
        return out
    if levels is None:
        levels = sample_levels(cfg, level_keys(keys))
    flat = out.view(out.shape[0], -1)
    if isinstance(cfg.name, str):
        _noise_chunks(flat, cfg.name, cfg.params, keys, levels, chunk)
        return out
    choice = rng.words_to_unit(rng.random_words(rng.mix64_(keys ^ rng.derive_key("type")), 1)[:, 0])
    choice = (choice * len(cfg.name)).long().clamp_(max=len(cfg.name) - 1)
    for k, name in enumerate(cfg.name):
        rows = (choice == k).nonzero().view(-1)
        params = {p: v for p, v in cfg.params.items() if p in inspect.signature(NOISES[name]).parameters}
        part = flat.index_select(0, rows)
        _noise_chunks(part, name, params, keys[rows], levels[rows], chunk)
        flat.index_copy_(0, rows, part)
    return out


def _noise_chunks(flat: torch.Tensor, name: str, params: Mapping[str, float], keys: torch.Tensor,
                  levels: torch.Tensor, chunk: int) -> None:
    fn = NOISES[name]
    for s in range(0, flat.shape[0], chunk):
        fn(flat[s:s + chunk], levels[s:s + chunk], NoiseDraw(keys[s:s + chunk], flat.shape[1]), **params)
