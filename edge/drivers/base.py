"""The driver interface every sensor implements, and its failure modes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from schemas.messages import Flag
from schemas.quantities import Quantity


@dataclass(frozen=True, slots=True)
class Sample:
    """One instantaneous value, already in the quantity's canonical unit."""

    quantity: Quantity
    value: float


class DriverError(Exception):
    """Base of every failure a driver reports. The sampler counts these per sensor and marks
    the sensor degraded or failed; it never lets one stop the agent. An OSError from the port
    or bus is treated the same way; any other exception from `read` is logged as a driver bug
    (edge.sampler), counted the same, and must not be raised on purpose."""


class SensorTimeoutError(DriverError):
    """The sensor did not answer in time."""


class FrameError(DriverError):
    """The sensor answered with bytes that are not a valid frame."""


class ChecksumError(FrameError):
    """A complete frame whose checksum does not match."""


class Driver(Protocol):
    """A sensor. `read(at_ms)` takes the sampling time as a parameter: real hardware samples
    now and ignores it; simulators compute their signal at that instant."""

    @property
    def sensor_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def flags(self) -> tuple[Flag, ...]:
        """Quality flags every reading of this sensor carries (e.g. 'simulated')."""
        ...

    def read(self, at_ms: int) -> Sequence[Sample]: ...

    def close(self) -> None: ...


class SensorIdentity:
    """The identity half of the Driver protocol, the same for every driver: its sensor id,
    its registry name (`NAME`, the `driver` of node.toml) and the quality flags fixed when it
    is made. A driver adds `read` and `close`."""

    NAME: ClassVar[str]

    def __init__(self, sensor_id: str, flags: tuple[Flag, ...] = ()) -> None:
        self._sensor_id = sensor_id
        self._flags = flags

    @property
    def sensor_id(self) -> str:
        return self._sensor_id

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def flags(self) -> tuple[Flag, ...]:
        return self._flags
