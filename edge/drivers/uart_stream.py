"""Finding frames in the byte stream of a sensor that reports on its own (a UART in active mode).

The scan is pure: bytes in, complete frames and the unconsumed tail out. It resynchronises
after garbage, and after a candidate frame that fails its checksum it restarts one byte after
that candidate's header, because the "header" may have been garbage and a real frame may
start inside it. `FrameReader` is the thin I/O loop around it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from edge.drivers.base import ChecksumError, DriverError, FrameError, SensorTimeoutError
from edge.drivers.serial_port import Port

F = TypeVar("F")


class NoDataError(SensorTimeoutError):
    """Not a single byte arrived before the deadline: the sensor is silent or unplugged."""


class NoFrameError(FrameError):
    """Bytes arrived, but none of them started a frame (garbage, a wrong baud rate)."""


class TruncatedFrameError(FrameError):
    """A frame started but did not complete before the deadline."""


class FrameChecksumError(ChecksumError):
    """Complete frames arrived, but none with a valid checksum."""


class FrameFormatError(FrameError):
    """A buffer handed to a strict frame parser is not a frame: size, header, length or tail."""


@dataclass(frozen=True, slots=True)
class FrameSpec(Generic[F]):
    """How one sensor frames its reports.

    `size(prefix)` gets the first `prefix_len` bytes of a candidate (header included) and
    returns the frame size, or None when the candidate is not a data frame (e.g. a command
    reply), in which case the scan resynchronises. `well_formed` checks fixed bytes such as a
    tail; `checksum_ok` the checksum; `decode` turns a verified frame into a value.
    """

    header: bytes
    prefix_len: int
    size: Callable[[bytes], int | None]
    well_formed: Callable[[bytes], bool]
    checksum_ok: Callable[[bytes], bool]
    decode: Callable[[bytes], F]


@dataclass(frozen=True, slots=True)
class Scan(Generic[F]):
    frames: tuple[F, ...]
    rest: bytes  # unconsumed tail: a frame still arriving, or a possible first header byte
    partial: bool  # `rest` holds a recognised header, i.e. a frame cut short if nothing follows
    bad_checksums: int
    skipped: int  # bytes discarded as garbage


def scan(buffer: bytes, spec: FrameSpec[F]) -> Scan[F]:
    """Every complete, valid frame in `buffer`, in order. Never raises."""
    frames: list[F] = []
    bad = skipped = 0
    i = 0
    while True:
        j = buffer.find(spec.header, i)
        if j < 0:
            # Keep a trailing first header byte: the rest of the header may be in flight.
            keep = 1 if buffer[-1:] == spec.header[:1] and len(buffer) > i else 0
            skipped += len(buffer) - i - keep
            return Scan(tuple(frames), buffer[len(buffer) - keep :], False, bad, skipped)
        skipped += j - i
        if len(buffer) - j < spec.prefix_len:
            return Scan(tuple(frames), buffer[j:], True, bad, skipped)
        size = spec.size(buffer[j : j + spec.prefix_len])
        if size is None:
            skipped += 1
            i = j + 1
            continue
        if len(buffer) - j < size:
            return Scan(tuple(frames), buffer[j:], True, bad, skipped)
        frame = buffer[j : j + size]
        if not spec.well_formed(frame):
            skipped += 1
            i = j + 1
        elif not spec.checksum_ok(frame):
            bad += 1
            i = j + 1
        else:
            frames.append(spec.decode(frame))
            i = j + size


def parse_frame(data: bytes, spec: FrameSpec[F]) -> F:
    """Strictly parse one frame that must fill `data` exactly, or raise a FrameError."""
    if len(data) < spec.prefix_len or not data.startswith(spec.header):
        raise FrameFormatError(f"not a frame: {data[:8].hex(' ')}")
    size = spec.size(data[: spec.prefix_len])
    if size is None or size != len(data):
        raise FrameFormatError(f"{len(data)} bytes, frame length {size}")
    if not spec.well_formed(data):
        raise FrameFormatError(f"malformed frame {data.hex(' ')}")
    if not spec.checksum_ok(data):
        raise FrameChecksumError(f"bad checksum in {data.hex(' ')}")
    return spec.decode(data)


class FrameReader(Generic[F]):
    """Reads frames of one spec from one port, keeping a frame cut by the end of a read for
    the next read (so a frame that straddles two reads is not lost)."""

    def __init__(self, port: Port, spec: FrameSpec[F]) -> None:
        self._port = port
        self._spec = spec
        self._pending = b""

    def read_latest(self) -> F:
        """The newest valid frame: drains what is buffered, else waits until the port's
        timeout. The newest (not the oldest buffered) keeps a value fresh even if the sensor
        sends faster than the sampler reads."""
        port = self._port
        deadline = port.deadline()
        received = bad = 0
        latest: F | None = None
        try:
            chunk = port.read_available()
            while True:
                received += len(chunk)
                result = scan(self._pending + chunk, self._spec)
                self._pending = result.rest
                bad += result.bad_checksums
                if result.frames:
                    latest = result.frames[-1]
                expired = port.monotonic() >= deadline
                if latest is not None and (expired or port.in_waiting() == 0):
                    return latest
                if expired:
                    break
                chunk = port.read_some(deadline)
        except DriverError:
            self._pending = b""
            raise
        name = port.settings.port
        if bad:
            raise FrameChecksumError(f"{name}: {bad} frame(s) with a bad checksum, none valid")
        if result.partial:
            raise TruncatedFrameError(f"{name}: frame cut short after {len(self._pending)} bytes")
        if received:
            raise NoFrameError(f"{name}: {received} bytes without a frame")
        raise NoDataError(f"{name}: no data in {port.settings.timeout_s} s")
