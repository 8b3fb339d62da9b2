"""The sampler reads drivers on a cadence, closes intervals and tracks sensor health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.drivers.base import Driver, Sample, SensorTimeoutError
from edge.sampler import FAILED_AFTER, Sampler
from schemas.messages import Flag


@dataclass
class ScriptedDriver:
    """A test driver: returns scripted values, raises on scripted instants."""

    sensor_id: str = "pm"
    name: str = "scripted"
    failing: set[int] = field(default_factory=set)
    reads: list[int] = field(default_factory=list)
    value: float = 12.0

    @property
    def flags(self) -> tuple[Flag, ...]:
        return ()

    def read(self, at_ms: int) -> Sequence[Sample]:
        self.reads.append(at_ms)
        if at_ms in self.failing:
            raise SensorTimeoutError("no answer")
        return [Sample("pm2_5", self.value), Sample("pm10", self.value * 2)]

    def close(self) -> None:
        pass


def _driver(d: ScriptedDriver) -> Driver:
    return d


def test_samples_on_the_cadence_and_closes_aligned_intervals() -> None:
    driver = ScriptedDriver()
    sampler = Sampler([_driver(driver)], 1.0, 60, start_ms=30_500)
    assert sampler.next_sample_ms == 31_000
    assert sampler.step(59_999) == []
    readings = sampler.step(60_000)
    assert {r.quantity for r in readings} == {"pm2_5", "pm10"}
    assert all(r.ts == 0 and r.period_s == 60 for r in readings)
    # 29 samples (31..59 s) of 60 expected: the first interval is incomplete.
    assert all(r.flags == ("incomplete",) for r in readings)
    assert driver.reads[0] == 31_000
    readings = sampler.step(120_000)
    assert all(r.ts == 60_000 and r.flags == () for r in readings)


def test_sensor_errors_are_counted_and_do_not_stop_sampling() -> None:
    bad = ScriptedDriver(sensor_id="bad", failing=set(range(0, 61_000, 1000)))
    good = ScriptedDriver(sensor_id="good")
    sampler = Sampler([_driver(bad), _driver(good)], 1.0, 60, start_ms=0)
    readings = sampler.step(60_000)
    assert {r.sensor for r in readings} == {"good"}
    health = {h.sensor: h for h in sampler.health()}
    assert health["bad"].state == "failed"
    assert health["bad"].errors == 61  # 0 s to 60 s inclusive
    assert health["bad"].last_error == "SensorTimeoutError: no answer"
    assert health["good"].state == "ok"
    assert health["good"].last_ok_ms == 60_000


def test_a_single_failure_degrades_and_recovery_clears() -> None:
    driver = ScriptedDriver(failing={5000})
    sampler = Sampler([_driver(driver)], 1.0, 60, start_ms=0)
    sampler.step(5000)
    assert sampler.health()[0].state == "degraded"
    sampler.step(6000)
    assert sampler.health()[0].state == "ok"
    assert FAILED_AFTER > 1


def test_implausible_values_are_errors_not_data() -> None:
    driver = ScriptedDriver(value=-500.0)  # below PM2.5's physical bound
    sampler = Sampler([_driver(driver)], 1.0, 10, start_ms=0)
    assert sampler.step(10_000) == []
    assert sampler.health()[0].errors == 11  # 0 s to 10 s inclusive
    assert "implausible pm2_5" in (sampler.health()[0].last_error or "")


def test_a_long_stall_skips_missed_samples_instead_of_inventing_them() -> None:
    driver = ScriptedDriver()
    sampler = Sampler([_driver(driver)], 1.0, 60, start_ms=0)
    sampler.step(10_000)
    reads_before = len(driver.reads)
    sampler.step(3_600_000)  # the Pi was suspended for an hour
    assert len(driver.reads) - reads_before <= 2


def test_flush_closes_the_interval_in_progress() -> None:
    sampler = Sampler([_driver(ScriptedDriver())], 1.0, 60, start_ms=0)
    sampler.step(30_000)
    readings = sampler.flush(30_500)
    assert {r.quantity for r in readings} == {"pm2_5", "pm10"}
    assert all("incomplete" in r.flags for r in readings)
