"""systemd's notify protocol and watchdog for the edge agent (Type=notify, WatchdogSec=).

A tiny sd_notify client with no dependency: one AF_UNIX datagram per message to
$NOTIFY_SOCKET, a file system path or, with a leading '@', a name in the abstract namespace
(sd_notify(3)).

The agent tells the hook when it has started (READY=1), when its loop has completed a turn,
and when it begins to stop (STOPPING=1). WATCHDOG=1 is sent from the loop's own thread, at
half of $WATCHDOG_USEC, and only after a complete turn: sampling, the journal commit,
publishing and network I/O all happened in it. A turn stuck anywhere (a driver read that never
returns, a commit hung on a dying SD card) therefore stops the pings, and systemd restarts the
agent. A loop that still turns but no longer samples stops them too: the sampler must be on
schedule. That catches, e.g., a Pi without a real-time clock whose clock steps back when NTP
first synchronises: the sampler would wait for the old time to come round again, sampling
nothing, and a restart starts it afresh at the current time.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from schemas.runtime.logs import get_logger

log = get_logger("edge.watchdog")

# sd_notify(3): the watchdog should be pinged at half of WATCHDOG_USEC.
PING_FRACTION: Final = 0.5


class Notifier(Protocol):
    def send(self, state: str) -> bool:
        """Send one notification, e.g. "READY=1"; False if it could not be delivered."""
        ...


def notify_address(value: str | None) -> str | None:
    """The socket address named by $NOTIFY_SOCKET, or None if it names none we can use.

    '@name' is an abstract-namespace socket: its address starts with a NUL byte. Other forms
    (vsock:…, systemd ≥ 254) are not used on a Raspberry Pi and are not supported.
    """
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


class SdNotifier:
    """Sends notifications to one AF_UNIX datagram socket, a fresh socket per message as
    libsystemd does, so a restarted systemd (daemon-reexec) is found again."""

    def __init__(self, address: str) -> None:
        self._address = address

    def send(self, state: str) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(state.encode("utf-8"), self._address)
        except OSError as exc:
            # Never let the notification channel stop the agent; systemd will act on the
            # missing pings if this persists.
            log.warning("sd_notify_failed", state=state.split("=", 1)[0], error=str(exc))
            return False
        return True


class NoNotifier:
    """Not started by systemd (no $NOTIFY_SOCKET): notifications go nowhere."""

    def send(self, state: str) -> bool:
        return False


def watchdog_timeout_s(environ: Mapping[str, str], pid: int) -> float | None:
    """systemd's watchdog timeout for this process, from $WATCHDOG_USEC; None if the
    watchdog is off, malformed, or meant for another process ($WATCHDOG_PID)."""
    raw = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if not raw or (owner and owner != str(pid)):
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """How far the sampler's next due time may be from now while the agent counts as
    healthy. Behind: the loop no longer steps the sampler. Ahead: the sampler waits for a
    time that will not come soon (the clock stepped back)."""

    max_behind_s: float
    max_ahead_s: float

    def on_schedule(self, seconds_until_due: float) -> bool:
        return -self.max_behind_s <= seconds_until_due <= self.max_ahead_s


@dataclass(eq=False, repr=False, slots=True)
class SystemdWatchdog:
    """The agent's loop hook under systemd: READY=1, WATCHDOG=1 while healthy, STOPPING=1."""

    notifier: Notifier
    timeout_s: float | None
    seconds_until_due: Callable[[], float]
    schedule: Schedule
    monotonic: Callable[[], float] = time.monotonic
    pings: int = field(default=0, init=False)
    _next_ping: float = field(default=0.0, init=False)
    _withheld: bool = field(default=False, init=False)

    def started(self) -> None:
        self.notifier.send("READY=1\nSTATUS=sampling")
        self._next_ping = self.monotonic()

    def turn_done(self) -> None:
        if self.timeout_s is None:
            return
        now = self.monotonic()
        if now < self._next_ping:
            return
        until_due = self.seconds_until_due()
        if not self.schedule.on_schedule(until_due):
            # Checked again after every turn: a blip costs at most one turn's delay, and the
            # ping interval is half the timeout.
            self._withhold(until_due)
            return
        if self._withheld:
            self._withheld = False
            log.info("watchdog_resumed")
            self.notifier.send("STATUS=sampling")
        self.notifier.send("WATCHDOG=1")
        self.pings += 1
        self._next_ping = now + self.timeout_s * PING_FRACTION

    def _withhold(self, until_due: float) -> None:
        if self._withheld:
            return
        self._withheld = True
        state = "behind" if until_due < 0 else "ahead"
        log.error("watchdog_withheld", sampler=state, seconds=round(abs(until_due), 1))
        self.notifier.send(f"STATUS=sampler {state} of schedule by {abs(until_due):.0f} s")

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1")


def systemd_watchdog(
    environ: Mapping[str, str],
    seconds_until_due: Callable[[], float],
    sample_interval_s: float,
) -> SystemdWatchdog:
    """The hook for a process started by systemd (or a no-op one if it was not).

    The schedule tolerance is the watchdog timeout itself: a loop that is that far behind
    would have been restarted had it been blocked, and the sampler normally looks at most one
    sample interval ahead.
    """
    address = notify_address(environ.get("NOTIFY_SOCKET"))
    notifier: Notifier = SdNotifier(address) if address else NoNotifier()
    timeout_s = watchdog_timeout_s(environ, os.getpid()) if address else None
    tolerance_s = timeout_s or 0.0
    schedule = Schedule(max_behind_s=tolerance_s, max_ahead_s=sample_interval_s + tolerance_s)
    return SystemdWatchdog(notifier, timeout_s, seconds_until_due, schedule)
