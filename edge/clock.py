"""Clocks for the agent loop: the wall clock, or a scaled one for accelerated simulation.

Logic never reads time itself; the agent asks its clock and passes the result down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Event time, epoch milliseconds UTC."""
        ...

    def wall_seconds_until(self, at_ms: int) -> float:
        """Real seconds from now until event time `at_ms` (negative if past)."""
        ...


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def wall_seconds_until(self, at_ms: int) -> float:
        return (at_ms - self.now_ms()) / 1000.0


class ScaledClock:
    """Event time that starts at `origin_ms` and runs `rate` times faster than real time."""

    def __init__(
        self,
        origin_ms: int,
        rate: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"clock rate must be positive, got {rate}")
        self._origin_ms = origin_ms
        self._rate = rate
        self._monotonic = monotonic
        self._start = monotonic()

    def now_ms(self) -> int:
        return self._origin_ms + int((self._monotonic() - self._start) * 1000.0 * self._rate)

    def wall_seconds_until(self, at_ms: int) -> float:
        return (at_ms - self.now_ms()) / 1000.0 / self._rate
