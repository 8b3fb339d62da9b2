"""Pseudo-terminals that stand in for serial lines.

A driver opens the slave side's path (/dev/pts/N) with pyserial exactly as it opens a UART;
a simulator writes device bytes to the master side. The slave side is kept open by the
simulator too, so the path stays valid and bytes written before the driver opens it wait in
the line discipline like bytes in a UART's receive buffer.

A pymodbus server needs a path of its own to open, so a Modbus line is two ptys joined by a
`PtyBridge` that copies bytes both ways (what `socat pty pty` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import sys
import termios
import threading
import tty
from typing import Final

_CHUNK: Final = 4096


class RawPty:
    """One pty pair in raw mode (no echo, no line editing, 8-bit clean)."""

    def __init__(self) -> None:
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self.slave_fd)

    def write(self, data: bytes) -> int:
        """Write to the device side; bytes that do not fit the buffer are dropped (an
        overrun, as on a real UART nobody reads). Returns the bytes written."""
        try:
            return os.write(self.master_fd, data)
        except BlockingIOError:
            return 0

    def pending(self) -> int:
        """Bytes written to the device side that the driver side has not read yet. A write
        reaches the driver side a moment later (the kernel pushes it), so tests poll this."""
        buffer = fcntl.ioctl(self.slave_fd, termios.TIOCINQ, b"\0\0\0\0")
        return int.from_bytes(buffer, sys.byteorder)

    def read(self) -> bytes:
        """What the driver side wrote, without waiting (b"" if nothing)."""
        try:
            return os.read(self.master_fd, _CHUNK)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        for fd in (self.master_fd, self.slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class PtyBridge:
    """Copies bytes between the master sides of two ptys in a thread, until `stop()`."""

    def __init__(self, a: RawPty, b: RawPty) -> None:
        self._a = a
        self._b = b
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-bridge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        peers = {self._a.master_fd: self._b, self._b.master_fd: self._a}
        sources = {self._a.master_fd: self._a, self._b.master_fd: self._b}
        while not self._stopping.is_set():
            ready, _, _ = select.select([*peers, self._wake_r], [], [], 1.0)
            for fd in ready:
                if fd == self._wake_r:
                    continue
                data = sources[fd].read()
                if data:
                    peers[fd].write(data)

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
