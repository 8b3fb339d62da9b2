"""The sampler reads drivers on a cadence, closes intervals and tracks sensor health."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

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
    # What a failing read raises: a DriverError by default, anything else to test the boundary.
    error: BaseException = field(default_factory=lambda: SensorTimeoutError("no answer"))

    @property
    def flags(self) -> tuple[Flag, ...]:
        return ()

    def read(self, at_ms: int) -> Sequence[Sample]:
        self.reads.append(at_ms)
        if at_ms in self.failing:
            raise self.error
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


def _fields(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, object]]:
    return [r.__dict__["envnet_fields"] for r in caplog.records if r.getMessage() == event]


def _pair(bad: ScriptedDriver) -> tuple[Sampler, ScriptedDriver]:
    good = ScriptedDriver(sensor_id="good")
    return Sampler([_driver(bad), _driver(good)], 1.0, 60, start_ms=0), good


def test_an_oserror_is_a_sensor_error_and_the_other_sensors_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The serial port went away mid-run: pyserial raises a plain OSError, not a DriverError.
    bad = ScriptedDriver(
        sensor_id="bad", failing={5000, 6000}, error=OSError(5, "Input/output error")
    )
    sampler, good = _pair(bad)
    with caplog.at_level(logging.WARNING, logger="edge.sampler"):
        readings = sampler.step(60_000)
    assert {r.sensor for r in readings} == {"bad", "good"}
    assert len(good.reads) == 61
    health = {h.sensor: h for h in sampler.health()}
    assert health["bad"].errors == 2
    assert health["bad"].last_error == "OSError: [Errno 5] Input/output error"
    assert health["bad"].state == "ok"  # read again next period, and recovered
    assert health["good"].errors == 0
    # One run of failures, one log line: the existing first-and-FAILED_AFTER pattern.
    assert _fields(caplog, "sensor_error") == [
        {"sensor": "bad", "driver": "scripted", "error": "OSError: [Errno 5] Input/output error"}
    ]
    assert _fields(caplog, "driver_bug") == []


@pytest.mark.parametrize(
    "error",
    [ValueError("malformed frame"), struct.error("unpack requires 32 bytes"), IndexError("x")],
)
def test_any_other_exception_is_a_driver_bug_counted_and_isolated(
    caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    bad = ScriptedDriver(sensor_id="bad", failing=set(range(0, 61_000, 1000)), error=error)
    sampler, good = _pair(bad)
    with caplog.at_level(logging.WARNING, logger="edge.sampler"):
        readings = sampler.step(60_000)
    assert {r.sensor for r in readings} == {"good"}
    assert {r.quantity for r in readings} == {"pm2_5", "pm10"}
    assert len(bad.reads) == 61  # retried every period
    health = {h.sensor: h for h in sampler.health()}
    assert health["bad"].errors == 61
    assert health["bad"].state == "failed"
    assert health["bad"].last_error == f"driver bug: {type(error).__name__}: {error}"
    assert health["good"].errors == 0 and health["good"].state == "ok"
    assert len(good.reads) == 61
    # Logged on the first failure and when the sensor turns failed, not 61 times.
    bugs = [r for r in caplog.records if r.getMessage() == "driver_bug"]
    assert len(bugs) == 2
    assert all(r.levelno == logging.ERROR and r.exc_info for r in bugs)
    assert bugs[0].exc_info is not None and bugs[0].exc_info[1] is error
    assert _fields(caplog, "driver_bug")[0]["sensor"] == "bad"
    assert _fields(caplog, "sensor_error") == []


def test_a_driver_bug_then_recovery_clears_the_state() -> None:
    bad = ScriptedDriver(sensor_id="bad", failing={3000}, error=ValueError("bad frame"))
    sampler, _ = _pair(bad)
    sampler.step(3000)
    assert {h.sensor: h.state for h in sampler.health()} == {"bad": "degraded", "good": "ok"}
    sampler.step(4000)
    health = {h.sensor: h for h in sampler.health()}
    assert health["bad"].state == "ok" and health["bad"].last_ok_ms == 4000
    assert health["bad"].errors == 1


@pytest.mark.parametrize("error", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(1)])
def test_cancellation_and_exit_propagate(error: BaseException) -> None:
    bad = ScriptedDriver(sensor_id="bad", failing={2000}, error=error)
    sampler, good = _pair(bad)
    sampler.step(1000)
    with pytest.raises(type(error)):
        sampler.step(2000)
    # Not counted as a sensor error: it is not one, and it stops the step.
    assert {h.sensor: h.errors for h in sampler.health()} == {"bad": 0, "good": 0}
    assert good.reads == [0, 1000]  # the healthy sensor's samples so far were taken
    assert {r.sensor for r in sampler.flush(2500)} == {"bad", "good"}


@dataclass
class LazyDriver(ScriptedDriver):
    """A driver whose `read` yields one sample, then fails while it is consumed."""

    quantity: str = "pm2_5"

    def read(self, at_ms: int) -> Iterator[Sample]:  # type: ignore[override]
        self.reads.append(at_ms)
        yield Sample(self.quantity, 1.0)  # type: ignore[arg-type]
        if at_ms in self.failing:
            raise struct.error("short frame")


@pytest.mark.parametrize(
    ("driver", "message"),
    [
        (LazyDriver(sensor_id="bad", failing={0, 1000}), "driver bug: error: short frame"),
        (LazyDriver(sensor_id="bad", quantity="pm3"), "driver bug: KeyError: 'pm3'"),
    ],
)
def test_a_driver_bug_while_its_samples_are_consumed_is_isolated(
    driver: LazyDriver, message: str
) -> None:
    sampler, _ = _pair(driver)
    sampler.step(1000)
    health = {h.sensor: h for h in sampler.health()}
    assert health["bad"].errors == 2
    assert health["bad"].last_error == message
    assert health["good"].errors == 0 and health["good"].last_ok_ms == 1000
    # The sample yielded before the failure is not kept: the read as a whole failed.
    assert {r.sensor for r in sampler.flush(1500)} == {"good"}


@dataclass
class CloseFailsDriver(ScriptedDriver):
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        raise OSError(19, "No such device")


def test_close_closes_every_driver_when_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    first, second = CloseFailsDriver(sensor_id="a"), CloseFailsDriver(sensor_id="b")
    sampler = Sampler([_driver(first), _driver(second)], 1.0, 60, start_ms=0)
    with caplog.at_level(logging.WARNING, logger="edge.sampler"):
        sampler.close()
    assert first.closed and second.closed
    assert [f["sensor"] for f in _fields(caplog, "sensor_close_failed")] == ["a", "b"]
