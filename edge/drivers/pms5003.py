"""Plantower PMS5003 particulate sensor on a UART (9600 8N1), in its default active mode.

Frame (Plantower PMS5003 data manual, Appendix I; as read by pimoroni/pms5003-python):
32 bytes = 0x42 0x4D, frame length 28 (big-endian u16, the bytes after it), 13 big-endian u16
data words, and a checksum = the 16-bit sum of bytes 0..29, big-endian.

Data words: 1-3 PM1.0/PM2.5/PM10 "CF=1" (standard particle), 4-6 PM1.0/PM2.5/PM10 "under
atmospheric environment", 7-12 particle counts per 0.1 L above 0.3/0.5/1.0/2.5/5.0/10 µm,
13 reserved.

CF=1 vs ATM: envnet reports the *atmospheric-environment* values. Plantower's manual says CF=1
is for the factory (calibration) environment and the atmospheric values for ambient air, and
GB 3095-2026 §4.3 states particulate matter at actual conditions (schemas/quantities.py).
The two agree below about 30 µg/m³ and CF=1 reads higher above it. Neither is a reference
method: a low-cost optical count needs a local humidity correction against a reference
station before its values are comparable to GB 3095 limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from edge.drivers.base import Sample
from edge.drivers.uart_pm import TimeoutS, UartPmDriver, UartPmOptions, uart_pm_from_options
from edge.drivers.uart_stream import FrameSpec, parse_frame

HEADER: Final = b"\x42\x4d"
FRAME_LENGTH: Final = 28  # the length field: 13 data words + the checksum
FRAME_SIZE: Final = 32


@dataclass(frozen=True, slots=True)
class PmsFrame:
    """One PMS5003 report; concentrations in µg/m³, counts per 0.1 L of air."""

    pm1_cf1: int
    pm2_5_cf1: int
    pm10_cf1: int
    pm1_atm: int
    pm2_5_atm: int
    pm10_atm: int
    counts: tuple[int, int, int, int, int, int]  # > 0.3, 0.5, 1.0, 2.5, 5.0, 10 µm
    reserved: int


def checksum(frame: bytes) -> int:
    """The 16-bit sum of every byte before the checksum field."""
    return sum(frame[: FRAME_SIZE - 2]) & 0xFFFF


def _size(prefix: bytes) -> int | None:
    length = int.from_bytes(prefix[2:4], "big")
    # Other lengths are command replies (e.g. the 8-byte passive-mode acknowledgement).
    return FRAME_SIZE if length == FRAME_LENGTH else None


def _checksum_ok(frame: bytes) -> bool:
    return checksum(frame) == int.from_bytes(frame[30:32], "big")


def _decode(frame: bytes) -> PmsFrame:
    w = [int.from_bytes(frame[i : i + 2], "big") for i in range(4, 30, 2)]
    counts = (w[6], w[7], w[8], w[9], w[10], w[11])
    return PmsFrame(w[0], w[1], w[2], w[3], w[4], w[5], counts, w[12])


def _always(frame: bytes) -> bool:
    return True


FRAME_SPEC: Final = FrameSpec(
    header=HEADER,
    prefix_len=4,
    size=_size,
    well_formed=_always,
    checksum_ok=_checksum_ok,
    decode=_decode,
)


def parse(data: bytes) -> PmsFrame:
    """Strictly parse one 32-byte frame; raises FrameFormatError or FrameChecksumError."""
    return parse_frame(data, FRAME_SPEC)


class Pms5003Options(UartPmOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """port: e.g. "/dev/ttyAMA0" (the Pi's PL011 UART) or "/dev/ttyUSB0"."""

    # Active mode reports every 200-800 ms when the level changes, up to 2.3 s when stable.
    timeout_s: TimeoutS = 2.5


class Pms5003Driver(UartPmDriver[PmsFrame]):
    """Driver "pms5003": pm2_5 and pm10 (atmospheric environment), µg/m³."""

    NAME = "pms5003"

    def _frame_spec(self) -> FrameSpec[PmsFrame]:
        return FRAME_SPEC

    def read(self, at_ms: int) -> list[Sample]:
        frame = self.read_frame()
        return [Sample("pm2_5", float(frame.pm2_5_atm)), Sample("pm10", float(frame.pm10_atm))]


def from_options(sensor_id: str, options: Mapping[str, Any]) -> Pms5003Driver:
    return uart_pm_from_options(Pms5003Driver, Pms5003Options, sensor_id, options)
