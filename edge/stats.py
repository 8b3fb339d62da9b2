"""Interval statistics: instantaneous samples in, one reading per quantity and interval out.

Pure and deterministic. Noise levels are combined by energy, never arithmetically:
L_eq = 10·lg[(1/N) Σ 10^(0.1·L_i)] (GB 3096-2008 §3 via the GB 12348-2008 definition of
等效连续A声级; docs/standards.md §3.3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from schemas.messages import Flag, Reading
from schemas.quantities import SPECS, Quantity, Statistic

# A reading built from fewer samples than this share of what the period expects is flagged
# 'incomplete'. 75 % mirrors GB 3095-2026 Table 4's 45-of-60-minutes rule for 1-h means.
COMPLETENESS: Final = 0.75
DECIMALS: Final = 3


def energy_mean_db(levels: Iterable[float]) -> float:
    """The energy (equivalent-level) average of sound levels in dB."""
    total = 0.0
    count = 0
    for level in levels:
        total += 10.0 ** (0.1 * level)
        count += 1
    if count == 0:
        raise ValueError("energy mean of no levels")
    return 10.0 * math.log10(total / count)


@dataclass(slots=True)
class _Accumulator:
    count: int = 0
    total: float = 0.0
    energy: float = 0.0
    maximum: float = -math.inf
    minimum: float = math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.energy += 10.0 ** (0.1 * value)
        self.maximum = max(self.maximum, value)
        self.minimum = min(self.minimum, value)

    def result(self, stat: Statistic) -> float:
        if stat == "mean":
            return self.total / self.count
        if stat == "leq":
            return 10.0 * math.log10(self.energy / self.count)
        if stat == "max":
            return self.maximum
        return self.minimum


@dataclass(slots=True)
class IntervalStats:
    """Accumulates samples of one interval [start_ms, start_ms + period_s)."""

    start_ms: int
    period_s: int
    expected_samples: int
    # Serial numbers of the sensors that have one configured, put on each of their readings.
    serials: Mapping[str, str] = field(default_factory=dict)
    _acc: dict[tuple[str, Quantity], _Accumulator] = field(default_factory=dict)
    _flags: dict[str, tuple[Flag, ...]] = field(default_factory=dict)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.period_s * 1000

    def add(self, sensor: str, quantity: Quantity, value: float, flags: tuple[Flag, ...]) -> None:
        key = (sensor, quantity)
        acc = self._acc.get(key)
        if acc is None:
            acc = self._acc[key] = _Accumulator()
            self._flags[sensor] = flags
        acc.add(value)

    def close(self) -> list[Reading]:
        """One reading per (sensor, quantity) that had at least one sample."""
        readings = []
        for (sensor, quantity), acc in self._acc.items():
            spec = SPECS[quantity]
            flags = self._flags[sensor]
            if acc.count < COMPLETENESS * self.expected_samples:
                flags = (*flags, "incomplete")
            # Bounds are integers and samples were checked against them, so rounding a
            # mean, level or extreme of in-bounds samples stays in bounds.
            value = round(acc.result(spec.default_stat), DECIMALS)
            readings.append(
                Reading(
                    ts=self.start_ms,
                    quantity=quantity,
                    value=value,
                    unit=spec.unit,
                    period_s=self.period_s,
                    stat=spec.default_stat,
                    sensor=sensor,
                    flags=flags,
                    serial=self.serials.get(sensor),
                )
            )
        return readings


def interval_start(at_ms: int, period_s: int) -> int:
    """The start of the period-aligned interval that contains `at_ms` (UTC epoch aligned)."""
    period_ms = period_s * 1000
    return at_ms - at_ms % period_ms
