"""Nova Fitness SDS011 particulate sensor on a UART (9600 8N1), in its default active mode.

Frame (Nova SDS011 specification and its laser dust sensor control protocol): 10 bytes =
0xAA, command 0xC0, PM2.5 low, PM2.5 high, PM10 low, PM10 high, ID byte 1, ID byte 2,
checksum = the low byte of the sum of data bytes 2..7, tail 0xAB. PM values are in units of
0.1 µg/m³. Replies to commands (0xAA 0xC5 ...) are not data and are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from edge.drivers.base import Sample
from edge.drivers.uart_pm import TimeoutS, UartPmDriver, UartPmOptions, uart_pm_from_options
from edge.drivers.uart_stream import FrameSpec, parse_frame

HEADER: Final = b"\xaa\xc0"
TAIL: Final = 0xAB
FRAME_SIZE: Final = 10


@dataclass(frozen=True, slots=True)
class SdsFrame:
    pm2_5_tenths: int  # 0.1 µg/m³
    pm10_tenths: int
    device_id: int

    @property
    def pm2_5(self) -> float:
        return self.pm2_5_tenths / 10.0

    @property
    def pm10(self) -> float:
        return self.pm10_tenths / 10.0


def checksum(frame: bytes) -> int:
    return sum(frame[2:8]) & 0xFF


def _size(prefix: bytes) -> int:
    return FRAME_SIZE


def _well_formed(frame: bytes) -> bool:
    return frame[9] == TAIL


def _checksum_ok(frame: bytes) -> bool:
    return checksum(frame) == frame[8]


def _decode(frame: bytes) -> SdsFrame:
    return SdsFrame(
        pm2_5_tenths=int.from_bytes(frame[2:4], "little"),
        pm10_tenths=int.from_bytes(frame[4:6], "little"),
        device_id=int.from_bytes(frame[6:8], "big"),
    )


FRAME_SPEC: Final = FrameSpec(
    header=HEADER,
    prefix_len=2,
    size=_size,
    well_formed=_well_formed,
    checksum_ok=_checksum_ok,
    decode=_decode,
)


def parse(data: bytes) -> SdsFrame:
    """Strictly parse one 10-byte frame; raises FrameFormatError or FrameChecksumError."""
    return parse_frame(data, FRAME_SPEC)


class Sds011Options(UartPmOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """port: e.g. "/dev/ttyUSB0" (the SDS011 ships with a CH340 USB adapter)."""

    # Active mode reports once a second.
    timeout_s: TimeoutS = 1.5


class Sds011Driver(UartPmDriver[SdsFrame]):
    """Driver "sds011": pm2_5 and pm10, µg/m³ (0.1 µg/m³ resolution)."""

    NAME = "sds011"

    def _frame_spec(self) -> FrameSpec[SdsFrame]:
        return FRAME_SPEC

    def read(self, at_ms: int) -> list[Sample]:
        frame = self.read_frame()
        return [Sample("pm2_5", frame.pm2_5), Sample("pm10", frame.pm10)]


def from_options(sensor_id: str, options: Mapping[str, Any]) -> Sds011Driver:
    return uart_pm_from_options(Sds011Driver, Sds011Options, sensor_id, options)
