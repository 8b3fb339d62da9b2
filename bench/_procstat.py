"""CPU time of processes over a measurement window, from /proc/<pid>/stat (Linux)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size so far (VmHWM), in MiB, or None when it is gone.
    The kernel keeps the high-water mark, so no sampling can miss a short peak."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return None


def children(pid: int) -> list[int]:
    """The child processes of `pid` (e.g. the aggregator's alerting worker)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


class CpuSampler:
    """Per-role CPU use between `start` and `stop`, as a % of one core."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self._roles = roles
        self._before: dict[int, float] = {}
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        for pids in self._roles.values():
            for pid in pids:
                self._before[pid] = cpu_seconds(pid) or 0.0

    def stop(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        usage = {}
        for role, pids in self._roles.items():
            used = 0.0
            for pid in pids:
                now = cpu_seconds(pid)
                if now is not None:
                    used += now - self._before.get(pid, 0.0)
            usage[role] = 100.0 * used / elapsed
        return usage


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS), 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
