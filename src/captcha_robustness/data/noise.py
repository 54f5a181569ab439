"""Noise injected into CAPTCHA batches, defined as in the reference study (docs/reference.md).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import torch

from captcha_robustness.data import rng
from captcha_robustness.data.settings import Level, LevelRange, parse_level, parse_noise  # noqa: F401 - re-exported
from captcha_robustness.errors import ConfigError

_U16_OFFSET = 32768  # 16-bit lanes are int16 in [-32768, 32767]
_MIN_TABLE_SIZE = 1 << 20


@dataclass(frozen=True)
class NoiseDraw:
    """The per-pixel random numbers of a batch; `hit` says which pixels a level selects.

    Hashing every pixel cost more than rendering the CAPTCHA, so the numbers are read from
    fixed random tables instead: a CAPTCHA's key picks one offset per table and stream, and
    its numbers combine the windows of two tables at those offsets (XOR for uniforms, a
    scaled sum for normals). Two CAPTCHAs share numbers only if both offsets differ by the
    same shift of under one image: below 1 in 10^7 per pair.
    """

    keys: torch.Tensor  # (B,) int64, one per CAPTCHA
    num_pixels: int

    def _windows(self, kind: str, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        tables = _random_tables(kind, _table_size(self.num_pixels), self.keys.device)
        keys = self.keys if stream == 0 else rng.mix64_(self.keys ^ rng.derive_key("stream", stream))
        words = rng.random_words(keys, 2)
        # (2, B), contiguous: index_select takes a much slower path with a strided index
        starts = (((words >> 1) & ((1 << 62) - 1)) % (tables.shape[1] - self.num_pixels + 1)).t().contiguous()
        return _windows(tables[0], starts[0], self.num_pixels), _windows(tables[1], starts[1], self.num_pixels)

    def uniform16(self, stream: int) -> torch.Tensor:
        """(B, num_pixels) int16: one uniform 16-bit value per pixel."""
        first, second = self._windows("uniform16", stream)
        return first.bitwise_xor_(second)

    def normal(self, stream: int) -> torch.Tensor:
        """(B, num_pixels) float32: one N(0, 1) draw per pixel."""
        first, second = self._windows("normal", stream)
        return first.add_(second).mul_(math.sqrt(0.5))

    @cached_property
    def hit_lanes(self) -> torch.Tensor:
        """Stream 0: pixel p is hit at `level` when its lane u_p < level (as a 16-bit fraction)."""
        return self.uniform16(0)

    def unit(self, stream: int, count: int) -> torch.Tensor:
        """(B, count) float32 uniforms in [0, 1): a CAPTCHA's own numbers (an angle, positions)."""
        keys = rng.mix64_(self.keys ^ rng.derive_key("scalars", stream))
        return rng.words_to_unit(rng.random_words(keys, count)).float()

    def hit(self, level: torch.Tensor) -> torch.Tensor:
        """(B, num_pixels) float 0/1: pixel hit, P = level (quantised to 1/65536)."""
        threshold = (level.reshape(-1, 1) * 65536).round() - _U16_OFFSET
        return torch.sub(threshold, self.hit_lanes).clamp_(0, 1)


def _table_size(num_pixels: int) -> int:
    return max(_MIN_TABLE_SIZE, 1 << (16 * num_pixels - 1).bit_length())


def _windows(table: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length): row b is table[starts[b] : starts[b] + length], gathered in one copy."""
    every_window = table.as_strided((table.numel() - length + 1, length), (1, 1))
    return every_window.index_select(0, starts)


_TABLES: dict[tuple[str, int, torch.device], torch.Tensor] = {}


def _random_tables(kind: str, size: int, device: torch.device) -> torch.Tensor:
    """(2, size): two fixed tables of random numbers, int16 uniforms or float32 N(0, 1) draws.
    Built on the CPU from the hash (so identical on every device), then kept per device."""
    if (kind, size, device) not in _TABLES:
        keys = torch.tensor([rng.derive_key("noise table", kind, i) for i in range(2)])
        if kind == "uniform16":
            tables = rng.random_words(keys, size // 4).view(torch.int16)
        else:
            unit = (rng.words_to_unit(rng.random_words(keys, size)) + 2.0**-54) * 2 - 1  # in (-1, 1)
            tables = (torch.erfinv(unit) * math.sqrt(2)).float()
        _TABLES[(kind, size, device)] = tables.to(device)
    return _TABLES[(kind, size, device)]


NoiseFn = Callable[..., torch.Tensor]
NOISES: dict[str, NoiseFn] = {}
SPATIAL: set[str] = set()  # types that get (B, C, H, W) images, not (B, pixels) rows


def register_noise(name: str, spatial: bool = False) -> Callable[[NoiseFn], NoiseFn]:
    """Register `fn(images, level, draw, **params) -> images`: noise `images`, flattened to
    (B, pixels), or (B, C, H, W) when `spatial`, and return them (in place, or a new tensor)."""

    def wrap(fn: NoiseFn) -> NoiseFn:
        NOISES[name] = fn
        if spatial:
            SPATIAL.add(name)
        return fn

    return wrap


@register_noise("none")
def no_noise(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    return images


@register_noise("salt_and_pepper")
def salt_and_pepper(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw) -> torch.Tensor:
    """Each hit pixel becomes 1 or 0 with equal odds (the parity of its hit lane)."""
    salt = draw.hit_lanes.bitwise_and(1).float()  # 1 salt, 0 pepper
    return images.lerp_(salt, draw.hit(level))


@register_noise("gaussian")
def gaussian(images: torch.Tensor, level: torch.Tensor, draw: NoiseDraw, sigma: float = 1.0) -> torch.Tensor:
    """Each hit pixel gets N(0, sigma) added, then the image is clipped to [0, 1]."""
    return images.addcmul_(draw.hit(level), draw.normal(1), value=sigma).clamp_(0, 1)


@dataclass(frozen=True)
class NoiseConfig:
    """A validated noise setting: `level` is a number, a list (one drawn per CAPTCHA) or a range;
    `name` one noise type or a tuple of them (one drawn per CAPTCHA)."""

    name: str | tuple[str, ...] = "none"
    level: Level = 0.0
    params: Mapping[str, float] = field(default_factory=dict)
    surrogate: tuple[str, ...] = ()  # the checkpoints an adversarial type is crafted against

    @property
    def adversarial(self) -> bool:
        return isinstance(self.name, str) and self.name in adversarial.ATTACKS

    @staticmethod
    def from_dict(cfg: Mapping) -> NoiseConfig:
        return NoiseConfig(*parse_noise(cfg, noise_parameters()))

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


def noise_parameters() -> dict[str, list[str]]:
    """Every registered noise type with its parameters (its function's keyword arguments); the
    adversarial types (data/adversarial.py) take a surrogate and a number of steps."""
    return {**{name: [p for p in inspect.signature(fn).parameters if p not in ("images", "level", "draw")]
               for name, fn in NOISES.items()},
            **{name: ["surrogate", "steps"] for name in adversarial.ATTACKS}}


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


def type_choice(cfg: NoiseConfig, keys: torch.Tensor) -> torch.Tensor:
    """(B,) int64: which of the mixture's types (an index into `cfg.name`) each CAPTCHA gets; all
    0 for a single type."""
    if isinstance(cfg.name, str):
        return torch.zeros_like(keys)
    choice = rng.words_to_unit(rng.random_words(rng.mix64_(keys ^ rng.derive_key("type")), 1)[:, 0])
    return (choice * len(cfg.name)).long().clamp_(max=len(cfg.name) - 1)


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
    if cfg.adversarial:
        raise ConfigError(f"noise.name: {cfg.name} needs the labels and a surrogate; CaptchaSynth crafts it")
    if levels is None:
        levels = sample_levels(cfg, level_keys(keys))
    flat = out.view(out.shape[0], math.prod(out.shape[1:]))
    if isinstance(cfg.name, str):
        _noise_chunks(flat, cfg.name, cfg.params, keys, levels, chunk, out.shape[1:])
        return out
    choice = type_choice(cfg, keys)
    for k, name in enumerate(cfg.name):
        rows = (choice == k).nonzero().view(-1)
        params = {p: v for p, v in cfg.params.items() if p in inspect.signature(NOISES[name]).parameters}
        part = flat.index_select(0, rows)
        _noise_chunks(part, name, params, keys[rows], levels[rows], chunk, out.shape[1:])
        flat.index_copy_(0, rows, part)
    return out


def _noise_chunks(flat: torch.Tensor, name: str, params: Mapping[str, float], keys: torch.Tensor,
                  levels: torch.Tensor, chunk: int, shape: torch.Size) -> None:
    fn, spatial = NOISES[name], name in SPATIAL
    for s in range(0, flat.shape[0], chunk):
        rows = flat[s:s + chunk]
        draw = NoiseDraw(keys[s:s + chunk], flat.shape[1])
        noised = fn(rows.view(-1, *shape) if spatial else rows, levels[s:s + chunk], draw, **params)
        if noised.data_ptr() != rows.data_ptr():
            rows.copy_(noised.reshape(rows.shape))


from captcha_robustness.data import adversarial, corruptions, layout  # noqa: E402, F401 - register the corruption types
