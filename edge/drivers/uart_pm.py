"""What the UART particulate drivers (PMS5003, SDS011) share: a sensor in active mode that
reports frames on its own, read through a lazily opened port, newest frame first.

Each sensor module supplies its frame spec, its options' defaults and how a frame becomes
samples; the port, the frame reader and the options-to-driver step are here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from edge.drivers.base import SensorIdentity
from edge.drivers.options import HardwareOptions, parse_options
from edge.drivers.serial_port import Opener, Port, SerialSettings, open_serial
from edge.drivers.uart_stream import FrameReader, FrameSpec
from schemas.messages import Flag

F = TypeVar("F")

# How long a read waits for a frame; each sensor sets its default from its report interval.
TimeoutS = Annotated[float, msgspec.Meta(gt=0, le=60)]


class UartPmOptions(HardwareOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The line options of an active-mode UART sensor (both ship at 9600 8N1)."""

    port: str
    baudrate: int = 9600
    timeout_s: TimeoutS = 1.0


class UartPmDriver(SensorIdentity, Generic[F]):
    """A sensor that reports frames of one spec on its own port; `read_frame` returns the
    newest valid one (see FrameReader.read_latest)."""

    def __init__(
        self,
        sensor_id: str,
        settings: SerialSettings,
        *,
        flags: tuple[Flag, ...] = (),
        opener: Opener = open_serial,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sensor_id, flags)
        self._port = Port(settings, opener, monotonic)
        self._reader = FrameReader(self._port, self._frame_spec())

    def _frame_spec(self) -> FrameSpec[F]:
        """How this sensor frames its reports (each sensor's class returns its module's)."""
        raise NotImplementedError

    def open(self) -> None:
        """Open the port now (it is otherwise opened at the first read)."""
        self._port.open()

    def read_frame(self) -> F:
        return self._reader.read_latest()

    def close(self) -> None:
        self._port.close()


D = TypeVar("D", bound=UartPmDriver[Any])


def uart_pm_from_options(
    driver: type[D], kind: type[UartPmOptions], sensor_id: str, options: Mapping[str, Any]
) -> D:
    """A `driver` from its node.toml options table (validated as `kind`)."""
    opts = parse_options(options, kind, driver.NAME)
    settings = SerialSettings(opts.port, opts.baudrate, timeout_s=opts.timeout_s)
    return driver(sensor_id, settings, flags=tuple(opts.flags))
