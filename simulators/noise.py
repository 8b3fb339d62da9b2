"""Deterministic, counter-based randomness for the simulators.

Every random number is a pure function of (seed, channel, step): there is no generator state,
so a signal's value at an instant never depends on which instants were sampled before, on
the sampling rate, or on the order in which sensors are read. Two processes given the same
seed produce the same numbers on any platform.

- `hash64` mixes the three integers with the splitmix64 finaliser (Steele, Lea & Flood,
  "Fast splittable pseudorandom number generators", OOPSLA 2014), which passes BigCrush
  when fed a counter.
- `uniform` and `normal` turn one hash into a number; `normal` is Box–Muller using the two
  32-bit halves of a single hash (cheap, and ample resolution for a simulator).
- `smooth` is one-dimensional value noise: independent standard normals at integer knots of
  t/scale, blended with a smoothstep weight and renormalised so that its marginal
  distribution is exactly N(0, 1) at every t. Its correlation time is about `scale`.
- `channel_id` derives a stable channel number from a name (FNV-1a 64). Python's built-in
  `hash()` of a str is salted per process and must not be used for this.
"""

from __future__ import annotations

import math
from typing import Final

MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MIX1: Final = 0xBF58476D1CE4E5B9
_MIX2: Final = 0x94D049BB133111EB
_FNV_OFFSET: Final = 0xCBF29CE484222325
_FNV_PRIME: Final = 0x100000001B3
_TWO_PI: Final = 2.0 * math.pi
_INV_2_32: Final = 1.0 / 4294967296.0
_INV_2_53: Final = 1.0 / 9007199254740992.0


def mix64(x: int) -> int:
    """The splitmix64 output function: a bijection on 64-bit integers with full avalanche."""
    z = (x + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & MASK64
    return z ^ (z >> 31)


def channel_id(name: str) -> int:
    """A stable 64-bit channel number for a name (FNV-1a over its UTF-8 bytes)."""
    h = _FNV_OFFSET
    for byte in name.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & MASK64
    return h


def stream_key(seed: int, channel: int) -> int:
    """The key of one (seed, channel) stream; `hash64` = `keyed_hash(stream_key(...), step)`."""
    return mix64((seed & MASK64) ^ mix64(channel))


def keyed_hash(key: int, step: int) -> int:
    """Hash of `step` within a stream; negative steps are valid (times before the epoch)."""
    return mix64(key ^ ((step * _GOLDEN) & MASK64))


def hash64(seed: int, channel: int, step: int) -> int:
    """A 64-bit hash of (seed, channel, step)."""
    return keyed_hash(stream_key(seed, channel), step)


def unit_from_hash(h: int) -> float:
    """Uniform in [0, 1) from the top 53 bits of a hash."""
    return (h >> 11) * _INV_2_53


def normal_from_hash(h: int) -> float:
    """Standard normal by Box–Muller from the two 32-bit halves of one hash.

    u1 is taken in (0, 1] so the logarithm is finite; |z| is at most about 6.7.
    """
    u1 = ((h >> 32) + 1) * _INV_2_32
    u2 = (h & 0xFFFFFFFF) * _INV_2_32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


def uniform(seed: int, channel: int, step: int) -> float:
    """Uniform in [0, 1)."""
    return unit_from_hash(hash64(seed, channel, step))


def normal(seed: int, channel: int, step: int) -> float:
    """Standard normal."""
    return normal_from_hash(hash64(seed, channel, step))


def keyed_smooth(key: int, t: float, scale: float) -> float:
    """`smooth` for a precomputed `stream_key`."""
    x = t / scale
    k = math.floor(x)
    f = x - k
    w = f * f * (3.0 - 2.0 * f)
    a = normal_from_hash(keyed_hash(key, k))
    b = normal_from_hash(keyed_hash(key, k + 1))
    # Blending two independent N(0,1) with weights (1-w, w) gives variance (1-w)^2 + w^2;
    # dividing by its square root keeps the marginal N(0, 1) between knots as well.
    return (a + (b - a) * w) / math.sqrt(1.0 - 2.0 * w * (1.0 - w))


def smooth(seed: int, channel: int, t: float, scale: float) -> float:
    """Time-continuous noise, marginally N(0, 1), with correlation time about `scale`.

    `t` and `scale` share a unit (the simulators use seconds). Continuous and once
    differentiable in t; values more than 2·scale apart are independent.
    """
    if scale <= 0:
        raise ValueError(f"smooth noise scale must be positive, got {scale}")
    return keyed_smooth(stream_key(seed, channel), t, scale)
