"""The sampler: reads every driver on a fixed cadence and closes interval statistics.

The I/O (driver reads) is here; the arithmetic is in edge.stats. Time is always a parameter.
A failing sensor is counted and reported in its health, and never stops the other sensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edge.drivers.base import Driver, DriverError
from edge.stats import IntervalStats, interval_start
from schemas.messages import Reading, SensorHealth, SensorState
from schemas.quantities import SPECS, Quantity
from schemas.runtime.logs import get_logger

log = get_logger("edge.sampler")

# After this many failed reads in a row a sensor is reported 'failed', not 'degraded'.
FAILED_AFTER = 10


@dataclass(slots=True)
class _Health:
    driver: str
    errors: int = 0
    consecutive: int = 0
    last_ok_ms: int | None = None
    last_error: str | None = None

    def state(self) -> SensorState:
        if self.consecutive >= FAILED_AFTER:
            return "failed"
        return "degraded" if self.consecutive > 0 else "ok"


class Sampler:
    def __init__(
        self,
        drivers: Sequence[Driver],
        sample_interval_s: float,
        report_interval_s: int,
        start_ms: int,
        serials: Mapping[str, str] | None = None,
    ) -> None:
        self._drivers = list(drivers)
        self._serials = dict(serials or {})
        self._sample_ms = max(1, round(sample_interval_s * 1000))
        self._period_s = report_interval_s
        self._expected = max(1, math.floor(report_interval_s * 1000 / self._sample_ms))
        self._health = {d.sensor_id: _Health(driver=d.name) for d in self._drivers}
        self._interval = self._new_interval(start_ms)
        self.next_sample_ms = self._first_sample_at(start_ms)

    def _new_interval(self, at_ms: int) -> IntervalStats:
        return IntervalStats(
            interval_start(at_ms, self._period_s),
            self._period_s,
            self._expected,
            serials=self._serials,
        )

    def _first_sample_at(self, at_ms: int) -> int:
        return at_ms + (-at_ms) % self._sample_ms

    def step(self, now_ms: int) -> list[Reading]:
        """Take every sample that is due by `now_ms`; return readings of closed intervals.

        If the agent fell behind (a slow sensor, a suspended Pi) the missed samples are skipped,
        not invented: the interval closes with fewer samples and is flagged if incomplete.
        """
        closed: list[Reading] = []
        if now_ms - self.next_sample_ms > self._period_s * 1000:
            self.next_sample_ms = self._first_sample_at(now_ms)
        while self.next_sample_ms <= now_ms:
            at = self.next_sample_ms
            if at >= self._interval.end_ms:
                closed.extend(self._interval.close())
                self._interval = self._new_interval(at)
            self._sample_all(at)
            self.next_sample_ms = at + self._sample_ms
        if now_ms >= self._interval.end_ms:
            closed.extend(self._interval.close())
            self._interval = self._new_interval(now_ms)
        return closed

    def _sample_all(self, at_ms: int) -> None:
        for driver in self._drivers:
            health = self._health[driver.sensor_id]
            try:
                samples = driver.read(at_ms)
            except DriverError as exc:
                self._record_error(driver, health, f"{type(exc).__name__}: {exc}")
                continue
            implausible = [s for s in samples if not _plausible(s.quantity, s.value)]
            if implausible:
                bad = implausible[0]
                self._record_error(driver, health, f"implausible {bad.quantity}={bad.value}")
            for sample in samples:
                if _plausible(sample.quantity, sample.value):
                    self._interval.add(
                        driver.sensor_id, sample.quantity, sample.value, driver.flags
                    )
            if not implausible:
                health.consecutive = 0
                health.last_ok_ms = at_ms

    @staticmethod
    def _record_error(driver: Driver, health: _Health, message: str) -> None:
        health.errors += 1
        health.consecutive += 1
        health.last_error = message[:200]
        if health.consecutive in (1, FAILED_AFTER):
            log.warning("sensor_error", sensor=driver.sensor_id, driver=driver.name, error=message)

    def health(self) -> list[SensorHealth]:
        return [
            SensorHealth(
                sensor=sensor,
                driver=h.driver,
                state=h.state(),
                errors=h.errors,
                last_ok_ms=h.last_ok_ms,
                last_error=h.last_error,
            )
            for sensor, h in self._health.items()
        ]

    def next_due_ms(self) -> int:
        return min(self.next_sample_ms, self._interval.end_ms)

    def flush(self, now_ms: int) -> list[Reading]:
        """Close the interval in progress early (at shutdown); it is flagged if incomplete."""
        readings = self._interval.close()
        self._interval = self._new_interval(now_ms)
        return readings

    def close(self) -> None:
        for driver in self._drivers:
            driver.close()


def _plausible(quantity: Quantity, value: float) -> bool:
    spec = SPECS[quantity]
    return math.isfinite(value) and spec.lower <= value <= spec.upper
