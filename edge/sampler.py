"""The sampler: reads every driver on a fixed cadence and closes interval statistics.

The I/O (driver reads) is here; the arithmetic is in edge.stats. Time is always a parameter.
A failing sensor is counted and reported in its health, and never stops the other sensors:
a DriverError or OSError from a read is the sensor failing (`sensor_error`), any other
exception a bug in its driver (`driver_bug`, with the traceback). Both count in the sensor's
`errors`, and the sensor is read again at the next sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from edge.drivers.base import Driver, DriverError, Sample
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
                # Materialised and checked here, inside the boundary: a lazy read, or a sample
                # of an unknown quantity or a non-numeric value, is the driver's fault too.
                plausible, implausible = _partition(driver.read(at_ms))
            # OSError: a serial port or I2C bus that went away (pyserial's and smbus2's errors
            # are OSErrors), as edge.sensor_probe treats it: a sensor failure, not a bug.
            except (DriverError, OSError) as exc:
                self._record_error(driver, health, _describe(exc))
                continue
            # The isolation boundary between sensors: anything else a driver raises is a bug
            # in it (a ValueError, struct.error or IndexError on a malformed frame ...). It
            # must not stop the other sensors or the agent, so it is logged with its traceback,
            # counted as this sensor's error, and the sensor is read again next period.
            # Exception, not BaseException: CancelledError, KeyboardInterrupt and SystemExit
            # still propagate.
            except Exception as exc:  # noqa: BLE001 - the isolation boundary, see above
                self._record_error(driver, health, f"driver bug: {_describe(exc)}", bug=True)
                continue
            if implausible:
                bad = implausible[0]
                self._record_error(driver, health, f"implausible {bad.quantity}={bad.value}")
            for sample in plausible:
                self._interval.add(driver.sensor_id, sample.quantity, sample.value, driver.flags)
            if not implausible:
                health.consecutive = 0
                health.last_ok_ms = at_ms

    @staticmethod
    def _record_error(driver: Driver, health: _Health, message: str, bug: bool = False) -> None:
        """Count a failed read. It is logged on the first failure of a run and again when the
        sensor turns 'failed', not every period: a dead sensor would flood the log."""
        health.errors += 1
        health.consecutive += 1
        health.last_error = message[:200]
        if health.consecutive not in (1, FAILED_AFTER):
            return
        fields = {"sensor": driver.sensor_id, "driver": driver.name, "error": message}
        if bug:
            # Called from the except clause, so the traceback of the bug is logged with it.
            log.exception("driver_bug", **fields)
        else:
            log.warning("sensor_error", **fields)

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
        """Close every driver, even when one fails to: at shutdown a port or bus that went
        away must not keep the others open or end the agent's shutdown with an error."""
        for driver in self._drivers:
            try:
                driver.close()
            # As edge.sensor_probe: pyserial's and smbus2's errors are OSErrors.
            except (DriverError, OSError) as exc:
                log.warning("sensor_close_failed", sensor=driver.sensor_id, error=_describe(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _partition(samples: Iterable[Sample]) -> tuple[list[Sample], list[Sample]]:
    """The samples within their quantity's physical bounds, and the others."""
    plausible: list[Sample] = []
    implausible: list[Sample] = []
    for sample in samples:
        (plausible if _plausible(sample.quantity, sample.value) else implausible).append(sample)
    return plausible, implausible


def _plausible(quantity: Quantity, value: float) -> bool:
    spec = SPECS[quantity]
    return math.isfinite(value) and spec.lower <= value <= spec.upper
