"""Counter-based random numbers: every draw is a pure function of (key, counter).

A CAPTCHA's digits, geometry and noise (its offsets into the noise tables) come from
hashing its own key, so the same (seed, split, captcha_id) gives the same bits whatever
the batch, worker, rank or device (the integer ops are exact on CPU and GPU alike). The hash is the SplitMix64
finalizer; torch has only signed int64, so right shifts are masked to be logical.
"""

from __future__ import annotations

import zlib

import torch

_MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment


def _signed(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >= 1 << 63 else x


_GOLDEN_S = _signed(GOLDEN)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)


def mix64_int(z: int) -> int:
    """SplitMix64 finalizer on a Python int (for deriving scalar keys)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def mix64_(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finalizer on an int64 tensor, in place; bit-identical to mix64_int."""
    z ^= (z >> 30) & ((1 << 34) - 1)
    z *= _M1
    z ^= (z >> 27) & ((1 << 37) - 1)
    z *= _M2
    z ^= (z >> 31) & ((1 << 33) - 1)
    return z


def derive_key(*parts: int | str) -> int:
    """A 64-bit key (as signed int64) from ints and names, e.g. (seed, "test", "noise")."""
    z = 0
    for part in parts:
        value = zlib.crc32(part.encode()) if isinstance(part, str) else int(part)
        z = mix64_int(z + GOLDEN + (value & _MASK64))
    return _signed(z)


def item_keys(key: int, ids: torch.Tensor) -> torch.Tensor:
    """One int64 key per item id: mix64(key + id * GOLDEN)."""
    z = ids.to(torch.int64) * _GOLDEN_S
    z += key
    return mix64_(z)


def random_words(keys: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) int64 random words: word j of item b is mix64(keys[b] + (j + 1) * GOLDEN)."""
    counters = torch.arange(1, n + 1, device=keys.device, dtype=torch.int64) * _GOLDEN_S
    return mix64_(keys.reshape(-1, 1) + counters)


def words_to_unit(words: torch.Tensor) -> torch.Tensor:
    """Map int64 words to float64 uniforms in [0, 1) using their top 53 bits."""
    return ((words >> 11) & ((1 << 53) - 1)).to(torch.float64) * 2.0**-53
