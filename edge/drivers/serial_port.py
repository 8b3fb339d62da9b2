"""The serial-port shell every UART and RS-485 driver reads through (pyserial underneath).

The port is opened lazily, at the first read, and reopened after a failure: a USB adapter
that is unplugged, or a UART that is not there yet at boot, is a sensor error the sampler
counts, never a crash of the agent. Reads wait at most until a deadline the caller gives, so
one silent sensor cannot stall the sampling of the others for longer than its timeout.
"""

from __future__ import annotations

import contextlib
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import serial

from edge.drivers.base import DriverError

Parity = Literal["N", "E", "O"]

# What a port raises when its device goes away. pyserial wraps most failures in
# SerialException (an OSError), but reset_input_buffer calls termios.tcflush directly, and a
# termios.error is not an OSError: an unplugged USB adapter or a closed pty gives
# termios.error(5, 'Input/output error') there, and opening a port can raise it too.
PORT_ERRORS: Final = (OSError, termios.error)

# The pyserial read timeout: how long one read() blocks waiting for the first byte. Frame and
# answer deadlines are the caller's; this only bounds how late a deadline is noticed.
POLL_S: Final = 0.02


class SerialPortError(DriverError):
    """The port could not be opened, or failed while in use (e.g. a USB adapter unplugged)."""


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings, from the sensor's options in node.toml."""

    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: Parity = "N"
    stopbits: int = 1
    # How long a read waits for a complete frame or answer before it fails.
    timeout_s: float = 1.0
    # Lock the port against other processes. An RS-485 line is shared by several Modbus
    # sensors of one node (one port, one slave address each), which the sampler reads one
    # after the other from one thread, so their drivers open it without the lock.
    exclusive: bool = True

    def __post_init__(self) -> None:
        if not self.port:
            raise ValueError("port must name a serial device, e.g. /dev/ttyAMA0")
        if self.baudrate <= 0 or self.bytesize not in (7, 8) or self.stopbits not in (1, 2):
            raise ValueError(
                f"bad line settings {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
            )
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"timeout_s must be in (0, 60], got {self.timeout_s}")


class ByteStream(Protocol):
    """What the drivers need of an open port; a pyserial Serial is one."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


Opener = Callable[[SerialSettings], ByteStream]


def open_serial(settings: SerialSettings) -> ByteStream:
    """Open a real port (or a pty standing in for one) with pyserial."""
    try:
        return serial.Serial(
            port=settings.port,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=POLL_S,
            exclusive=settings.exclusive,
        )
    except (*PORT_ERRORS, ValueError) as exc:  # serial.SerialException is an OSError
        raise SerialPortError(f"{settings.port}: cannot open: {exc}") from None


class Port:
    """A lazily opened port with deadline-bounded reads. `monotonic` is injectable for tests."""

    def __init__(
        self,
        settings: SerialSettings,
        opener: Opener = open_serial,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._opener = opener
        self._stream: ByteStream | None = None
        self.monotonic = monotonic

    def _open(self) -> ByteStream:
        if self._stream is None:
            try:
                self._stream = self._opener(self.settings)
            except PORT_ERRORS as exc:  # an opener other than open_serial, e.g. in a test
                raise SerialPortError(f"{self.settings.port}: cannot open: {exc}") from None
        return self._stream

    def open(self) -> None:
        """Open now rather than at the first read. Opening discards what the line buffered
        before (pyserial flushes the input), so a test opens first and then sends."""
        self._open()

    def deadline(self) -> float:
        return self.monotonic() + self.settings.timeout_s

    def in_waiting(self) -> int:
        try:
            return self._open().in_waiting
        except PORT_ERRORS as exc:
            raise self._failed(exc) from None

    def read_available(self) -> bytes:
        """Whatever is already buffered, without waiting."""
        waiting = self.in_waiting()
        return self._read(waiting) if waiting else b""

    def read_some(self, deadline: float) -> bytes:
        """At least one byte, unless `deadline` passes first; then everything buffered."""
        while self.monotonic() < deadline:
            first = self._read(1)
            if first:
                return first + self.read_available()
        return b""

    def read_exact(self, size: int, deadline: float) -> bytes:
        """`size` bytes, or fewer if `deadline` passes first."""
        data = b""
        while len(data) < size and self.monotonic() < deadline:
            data += self._read(size - len(data))
        return data

    def write(self, data: bytes) -> None:
        try:
            self._open().write(data)
        except PORT_ERRORS as exc:
            raise self._failed(exc) from None

    def discard_input(self) -> None:
        """Drop stale bytes (a late answer to an earlier request) before a new request."""
        try:
            self._open().reset_input_buffer()
        except PORT_ERRORS as exc:
            raise self._failed(exc) from None

    def _read(self, size: int) -> bytes:
        try:
            return self._open().read(size)
        except PORT_ERRORS as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError | termios.error) -> SerialPortError:
        self.close()
        return SerialPortError(f"{self.settings.port}: {exc}")

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            # Closing a port that already failed: nothing is left to release.
            with contextlib.suppress(*PORT_ERRORS):
                stream.close()
