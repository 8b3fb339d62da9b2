"""A serial port that holds scripted bytes on a fake clock, for property tests that feed the
drivers' read loops arbitrary bytes (tests/unit/edge/drivers/test_uart.py,
test_modbus.py).
"""

from __future__ import annotations

import termios

from edge.drivers.serial_port import Port, SerialSettings


class ScriptedStream:
    """A stream holding fixed bytes; reading past them costs 50 ms of fake time. Writes are
    recorded. The scripted bytes stand for what arrives after a request (a Modbus answer), so
    discarding stale input before the request keeps them."""

    def __init__(self, data: bytes) -> None:
        self._data = bytearray(data)
        self.now = 0.0
        self.written = b""

    @property
    def in_waiting(self) -> int:
        return len(self._data)

    def read(self, size: int = 1) -> bytes:
        if not self._data:
            self.now += 0.05
        chunk = bytes(self._data[:size])
        del self._data[:size]
        return chunk

    def write(self, data: bytes, /) -> int:
        self.written += data
        return len(data)

    def reset_input_buffer(self) -> None:
        """Nothing is stale: see the class docstring."""

    def close(self) -> None:
        pass

    def port(self, timeout_s: float = 0.2) -> Port:
        """A Port reading this stream on its fake clock."""
        return Port(
            SerialSettings("scripted", timeout_s=timeout_s), lambda s: self, lambda: self.now
        )


class UnpluggedStream(ScriptedStream):
    """A port whose device has gone (a USB RS-485 adapter pulled out): flushing its input
    fails as pyserial's termios.tcflush does then, with a termios.error that is no OSError."""

    def __init__(self) -> None:
        super().__init__(b"")

    def reset_input_buffer(self) -> None:
        raise termios.error(5, "Input/output error")
