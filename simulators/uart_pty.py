"""UART particulate sensors on a pseudo-terminal: PMS5003 and SDS011 in active mode.

Frames are encoded here independently of the edge drivers' parsers (so a test of one against
the other can fail), from the air model of simulators.signals via simulators.physical. Faults
can be injected one at a time (`inject`, for tests) or drawn per frame at configured rates
(deterministically from the seed and the frame number, for `envnet sim devices`):

- bad_checksum: a complete frame whose checksum is off by one;
- truncated: the first half of a frame, then nothing;
- garbage: random bytes instead of the frame (line noise, a wrong baud rate);
- silence: nothing for one period.

`emit()` writes one frame now; `start()` runs a thread that emits one per period until
`stop()`. Tests use `emit()` and no thread, so what the driver sees is fully determined.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final, Literal, get_args

from schemas.quantities import Quantity
from simulators.fault_rates import FaultRates
from simulators.noise import channel_id, keyed_hash, stream_key
from simulators.physical import Site, wall_ms
from simulators.ptys import RawPty

UartKind = Literal["pms5003", "sds011"]
UartFault = Literal["bad_checksum", "truncated", "garbage", "silence"]
UART_FAULTS: Final[tuple[UartFault, ...]] = get_args(UartFault)
_PM: Final[tuple[Quantity, Quantity]] = ("pm2_5", "pm10")

_HEADER_STARTS: Final = frozenset((0x42, 0xAA))
_FAULT_CHANNEL: Final = channel_id("uart.fault")
_GARBAGE_CHANNEL: Final = channel_id("uart.garbage")


def _u16(value: float) -> int:
    return min(max(round(value), 0), 0xFFFF)


def pms5003_frame(words: tuple[int, ...], *, checksum_delta: int = 0) -> bytes:
    """A 32-byte PMS5003 frame around 13 data words (checksum = 16-bit sum of bytes 0..29)."""
    if len(words) != 13:
        raise ValueError(f"a PMS5003 frame has 13 data words, got {len(words)}")
    body = b"\x42\x4d" + (28).to_bytes(2, "big") + b"".join(w.to_bytes(2, "big") for w in words)
    return body + ((sum(body) + checksum_delta) & 0xFFFF).to_bytes(2, "big")


def pms5003_words(pm2_5: float, pm10: float) -> tuple[int, ...]:
    """Data words for atmospheric PM2.5 and PM10 (µg/m³).

    CF=1 equals the atmospheric value below 30 µg/m³ and reads up to ~1.5x above it, PM1.0 is
    0.7x PM2.5, and the counts scale with the mass: plausible shapes of a real unit's report,
    not a particle-size model.
    """
    atm = (0.7 * pm2_5, pm2_5, pm10)
    cf1 = tuple(v if v <= 30.0 else 30.0 + 1.5 * (v - 30.0) for v in atm)
    counts = (60.0 * pm10, 18.0 * pm10, 4.0 * pm2_5, 0.5 * pm2_5, 0.2 * pm10, 0.05 * pm10)
    return (*(_u16(v) for v in (*cf1, *atm, *counts)), 0)


def sds011_frame(
    pm2_5_tenths: int, pm10_tenths: int, device_id: int, *, checksum_delta: int = 0
) -> bytes:
    """A 10-byte SDS011 frame: 0xAA 0xC0, PM2.5 and PM10 (LSB first), id, checksum, 0xAB."""
    data = (
        pm2_5_tenths.to_bytes(2, "little")
        + pm10_tenths.to_bytes(2, "little")
        + device_id.to_bytes(2, "big")
    )
    return b"\xaa\xc0" + data + bytes(((sum(data) + checksum_delta) & 0xFF, 0xAB))


class UartEmulator:
    """One PMS5003 or SDS011 on its own pty; `path` is what the driver's `port` option names."""

    def __init__(
        self,
        kind: UartKind,
        site: Site,
        *,
        period_s: float = 1.0,
        fault_rates: Mapping[UartFault, float] | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        if kind not in get_args(UartKind):
            raise ValueError(f"unknown UART device {kind!r}")
        self._faults = FaultRates(fault_rates, site.options.seed, _FAULT_CHANNEL)
        if not 0.05 <= period_s <= 60.0:
            raise ValueError(f"period_s must be in [0.05, 60], got {period_s}")
        self.kind = kind
        self._site = site
        self._period_s = period_s
        self._clock = clock
        self._seed = site.options.seed
        self._garbage_key = stream_key(self._seed, _GARBAGE_CHANNEL)
        self._queued: deque[UartFault] = deque()
        self._lock = threading.Lock()
        self._frames = 0
        self._pty = RawPty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return self._pty.path

    def frame_at(self, t_ms: int, checksum_delta: int = 0) -> bytes:
        """The valid (or, with checksum_delta, corrupted) frame the sensor sends at `t_ms`."""
        values = self._site.values(t_ms, _PM)
        pm2_5, pm10 = values["pm2_5"], values["pm10"]
        if self.kind == "pms5003":
            return pms5003_frame(pms5003_words(pm2_5, pm10), checksum_delta=checksum_delta)
        tenths = (min(_u16(10.0 * pm2_5), 9999), min(_u16(10.0 * pm10), 9999))
        return sds011_frame(*tenths, device_id=self._seed & 0xFFFF, checksum_delta=checksum_delta)

    def inject(self, fault: UartFault, count: int = 1) -> None:
        """Apply `fault` to the next `count` frames."""
        if fault not in UART_FAULTS:
            raise ValueError(f"unknown UART fault {fault!r} (known: {', '.join(UART_FAULTS)})")
        with self._lock:
            self._queued.extend([fault] * count)

    def _next_fault(self, frame_no: int) -> UartFault | None:
        with self._lock:
            if self._queued:
                return self._queued.popleft()
        return self._faults.draw(frame_no)

    def bytes_for(self, t_ms: int, fault: UartFault | None, frame_no: int) -> bytes:
        """What goes on the line for one frame period with `fault` applied."""
        if fault is None:
            return self.frame_at(t_ms)
        if fault == "bad_checksum":
            return self.frame_at(t_ms, checksum_delta=1)
        if fault == "truncated":
            frame = self.frame_at(t_ms)
            return frame[: len(frame) // 2]
        if fault == "garbage":
            h = keyed_hash(self._garbage_key, frame_no)
            noise = h.to_bytes(8, "little") + (h >> 7).to_bytes(8, "big")
            # No header bytes, so that this fault is always "no frame", never a cut frame.
            return bytes(b ^ 0x01 if b in _HEADER_STARTS else b for b in noise)
        return b""

    def emit(self, t_ms: int | None = None) -> bytes:
        """Send one frame period's bytes now (with the next fault, if any); returns them."""
        with self._lock:
            frame_no = self._frames
            self._frames += 1
        fault = self._next_fault(frame_no)
        data = self.bytes_for(self._clock() if t_ms is None else t_ms, fault, frame_no)
        if data:
            self._pty.write(data)
        return data

    def pending(self) -> int:
        """Bytes sent that the driver has not read yet (see RawPty.pending)."""
        return self._pty.pending()

    def emit_raw(self, data: bytes) -> None:
        """Put arbitrary bytes on the line (for tests of resynchronisation)."""
        self._pty.write(data)

    def start(self) -> None:
        """Emit one frame per period in a thread until `stop()`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"uart-{self.kind}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.emit()
            next_at += self._period_s
            # Catch up without a burst if the thread was starved (a suspended laptop).
            next_at = max(next_at, time.monotonic() - self._period_s)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._pty.close()

    def __enter__(self) -> UartEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
