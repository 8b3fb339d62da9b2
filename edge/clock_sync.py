"""Is this node's clock synchronised, and by how much is it off? For `envnet edge check`.

A Raspberry Pi has no real-time clock: until NTP has synchronised it, it runs from the time
saved at the last shutdown, so readings would carry wrong times and TLS certificates may look
expired or not yet valid.

Sources, most direct first:
- synchronised: `timedatectl show -p NTPSynchronized` (systemd), else the kernel's own flag
  via adjtimex(2) (what timedatectl reports too), else unknown;
- offset: `chronyc -c tracking` when chrony is the NTP client. systemd-timesyncd, Raspberry
  Pi OS's default, reports no offset to other programs, so then the offset is unknown.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

# Returns a command's standard output, or None if it is missing, fails or hangs.
Runner = Callable[[Sequence[str]], str | None]

COMMAND_TIMEOUT_S: Final = 5.0
# adjtimex(2): the kernel marks the clock unsynchronised with STA_UNSYNC; systemd also treats
# a maximum-error estimate of 16 s or more as unsynchronised (NTP's "infinity").
STA_UNSYNC: Final = 0x0040
MAXERROR_UNSYNC_US: Final = 16_000_000
# chronyc -c tracking: field 4 is "System time", the current offset from NTP time in seconds.
CHRONY_OFFSET_FIELD: Final = 4


@dataclass(frozen=True, slots=True)
class ClockSync:
    synchronised: bool | None
    sync_source: str  # "timedatectl", "adjtimex" or "none"
    offset_s: float | None
    offset_source: str | None  # "chronyc" or None


def run_command(argv: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv of a system tool
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def parse_ntp_synchronized(output: str | None) -> bool | None:
    value = (output or "").strip()
    return {"yes": True, "no": False}.get(value)


def parse_chrony_offset(output: str | None) -> float | None:
    if not output:
        return None
    fields = output.strip().splitlines()[0].split(",")
    if len(fields) <= CHRONY_OFFSET_FIELD:
        return None
    try:
        return abs(float(fields[CHRONY_OFFSET_FIELD]))
    except ValueError:
        return None


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (the layout of the C library's `adjtimex` symbol)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        # The kernel's reserved tail, and room to spare should a C library's be larger.
        ("_reserved", ctypes.c_int * 44),
    )


def adjtimex_synchronised() -> bool | None:
    """The kernel's view, read with modes=0 (changes nothing, needs no privilege)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    timex = _Timex()
    if adjtimex(ctypes.byref(timex)) < 0:
        return None
    return not (timex.status & STA_UNSYNC) and timex.maxerror < MAXERROR_UNSYNC_US


def read_clock_sync(
    run: Runner = run_command, kernel: Callable[[], bool | None] = adjtimex_synchronised
) -> ClockSync:
    synchronised = parse_ntp_synchronized(
        run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    )
    source = "timedatectl"
    if synchronised is None:
        synchronised, source = kernel(), "adjtimex"
        if synchronised is None:
            source = "none"
    offset = parse_chrony_offset(run(["chronyc", "-c", "tracking"]))
    return ClockSync(
        synchronised=synchronised,
        sync_source=source,
        offset_s=offset,
        offset_source="chronyc" if offset is not None else None,
    )
