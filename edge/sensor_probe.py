"""Does a configured sensor answer, and with what? For `envnet edge check`.

The sensor's driver is created from node.toml through the driver registry, read once and
closed, in a worker thread so that a read that never returns (a dead line, no timeout in the
driver) is reported after `timeout_s` instead of hanging the check.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from edge.config import SensorSection
from edge.drivers.base import Driver, DriverError, Sample
from edge.drivers.registry import create_driver
from schemas.quantities import SPECS
from schemas.runtime.configfile import ConfigError
from schemas.runtime.logs import get_logger

log = get_logger("edge.sensor_probe")


@dataclass(frozen=True, slots=True)
class SensorAnswer:
    samples: tuple[Sample, ...] = ()
    # "ErrorClass: message" when the driver could not be created or read.
    error: str | None = None
    timed_out: bool = False


def plausible(sample: Sample) -> bool:
    """Within the quantity's physical bounds (schemas/quantities.py), as the sampler demands."""
    spec = SPECS[sample.quantity]
    return math.isfinite(sample.value) and spec.lower <= sample.value <= spec.upper


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Attempt:
    """One create-read-close, run on a worker thread; the outcome is read after join()."""

    def __init__(self, sensor: SensorSection, at_ms: int) -> None:
        self._sensor = sensor
        self._at_ms = at_ms
        self.answer: SensorAnswer | None = None
        self.config_error: ConfigError | None = None

    def run(self) -> None:
        try:
            driver = create_driver(self._sensor.driver, self._sensor.id, self._sensor.options)
        except ConfigError as exc:
            self.config_error = exc
            return
        # OSError: a serial port or I2C bus that is missing or not ours (pyserial's and
        # smbus2's errors are OSErrors).
        except (DriverError, OSError) as exc:
            self.answer = SensorAnswer(error=_describe(exc))
            return
        try:
            self.answer = SensorAnswer(samples=tuple(driver.read(self._at_ms)))
        except (DriverError, OSError) as exc:
            self.answer = SensorAnswer(error=_describe(exc))
        finally:
            _close(driver, self._sensor.id)


def _close(driver: Driver, sensor_id: str) -> None:
    try:
        driver.close()
    except (DriverError, OSError) as exc:
        log.warning("sensor_close_failed", sensor=sensor_id, error=_describe(exc))


def probe_sensor(sensor: SensorSection, timeout_s: float, at_ms: int) -> SensorAnswer:
    """Raises ConfigError for a driver name or options node.toml must not have."""
    attempt = _Attempt(sensor, at_ms)
    # A daemon thread: a read that never returns must not keep the check from exiting.
    worker = threading.Thread(target=attempt.run, name=f"check-{sensor.id}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return SensorAnswer(timed_out=True)
    if attempt.config_error is not None:
        raise attempt.config_error
    if attempt.answer is None:
        # Only an exception outside the driver contract gets here; threading reported it.
        return SensorAnswer(error="the driver raised an error outside its contract (see above)")
    return attempt.answer
