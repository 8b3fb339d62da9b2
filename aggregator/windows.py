"""Clock-hour windows over readings, in event time. Pure.

A reading belongs to the hour that contains its start time. An hour closes when a reading of
the same series starts in a later hour; it is then evaluated once and forgotten. Readings are
keyed by their start time within the hour, so a reading delivered twice counts once.
Readings that arrive for an hour already closed are counted, not re-evaluated (issue #3
replaces this with full late-data re-evaluation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from schemas.messages import Reading

HOUR_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class HourResult:
    start_ms: int
    value: float
    coverage_s: int


@dataclass(slots=True)
class _Series:
    hours: dict[int, dict[int, tuple[float, int]]] = field(default_factory=dict)
    closed_before_ms: int = 0
    newest_ms: int = -1


def hour_start(ts_ms: int) -> int:
    # UTC+8 (and every whole-hour offset) shares clock-hour boundaries with UTC.
    return ts_ms - ts_ms % HOUR_MS


class HourlyWindows:
    """Hourly arithmetic means, or energy means for sound levels (`energy=True`)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], _Series] = {}
        self.late_readings = 0

    def add(self, key: tuple[str, str, str], reading: Reading, energy: bool) -> list[HourResult]:
        """Add a reading; return the results of hours this reading closed, oldest first."""
        if reading.period_s > HOUR_MS // 1000:
            return []
        series = self._series.setdefault(key, _Series())
        start = hour_start(reading.ts)
        if start < series.closed_before_ms:
            self.late_readings += 1
            return []
        series.hours.setdefault(start, {})[reading.ts] = (reading.value, reading.period_s)
        if start <= series.newest_ms:
            return []  # only a reading in a newer hour closes anything
        series.newest_ms = start
        closed = sorted(h for h in series.hours if h < start)
        results = [_result(h, series.hours.pop(h), energy) for h in closed]
        if closed:
            series.closed_before_ms = max(series.closed_before_ms, closed[-1] + HOUR_MS)
        return results


def _result(start: int, samples: dict[int, tuple[float, int]], energy: bool) -> HourResult:
    coverage = sum(period for _, period in samples.values())
    if energy:
        total = sum(period * 10.0 ** (0.1 * value) for value, period in samples.values())
        value = 10.0 * math.log10(total / coverage)
    else:
        value = sum(value * period for value, period in samples.values()) / coverage
    return HourResult(start_ms=start, value=value, coverage_s=min(coverage, HOUR_MS // 1000))
