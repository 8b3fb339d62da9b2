"""Hot reload of the fleet inventory: on SIGHUP, or when the file's content changes.

The file is polled every `[fleet] reload_s` seconds (its size, mtime and SHA-256; no inotify
dependency). A new file is loaded and validated whole (aggregator.fleet.load_fleet) before
anything changes; a file that does not load is refused with a log line naming the error and
counted (envnet_fleet_reloads_total{outcome="refused"}), and the inventory in force stays.
The swap itself is one assignment per holder on the event loop (AggregatorService.reload_fleet),
so a message is judged either by the old inventory or by the new one, never half of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aggregator.fleet import Fleet, load_fleet
from schemas.runtime.configfile import ConfigError
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.intake.fleet_watch")

Outcome = Literal["unchanged", "reloaded", "refused"]


@dataclass(frozen=True, slots=True)
class FileStamp:
    size: int
    mtime_ns: int
    sha256: str


def file_stamp(path: Path) -> FileStamp | None:
    """What identifies the file's version; None when it cannot be read."""
    try:
        data = path.read_bytes()
        stat = path.stat()
    except OSError:
        return None
    return FileStamp(len(data), stat.st_mtime_ns, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, slots=True)
class FleetChange:
    added: tuple[str, ...]
    retired: tuple[str, ...]
    changed: tuple[str, ...]


def fleet_change(old: Fleet, new: Fleet) -> FleetChange:
    old_nodes = {info.node: info for info in old}
    new_nodes = {info.node: info for info in new}
    return FleetChange(
        added=tuple(sorted(new_nodes.keys() - old_nodes.keys())),
        retired=tuple(sorted(old_nodes.keys() - new_nodes.keys())),
        changed=tuple(
            sorted(n for n in new_nodes.keys() & old_nodes.keys() if new_nodes[n] != old_nodes[n])
        ),
    )


class FleetWatcher:
    """Reloads `path` into `apply` when asked (`request`, e.g. SIGHUP) or when it changed."""

    def __init__(
        self,
        path: Path,
        reload_s: float,
        apply: Callable[[Fleet], FleetChange],
        count: Callable[[Outcome], None],
    ) -> None:
        self._path = path
        self._reload_s = reload_s
        self._apply = apply
        self._count = count
        # The version loaded at start (the service was given the fleet read from it).
        self._stamp = file_stamp(path)
        self._requested = asyncio.Event()

    def request(self) -> None:
        """Reload now, even if the file looks unchanged (SIGHUP)."""
        self._requested.set()

    def check(self, forced: bool) -> Outcome:
        stamp = file_stamp(self._path)
        if stamp == self._stamp and not forced:
            return "unchanged"
        # Remembered even when refused: a broken file is reported once, not every poll.
        self._stamp = stamp
        try:
            fleet = load_fleet(self._path)
        # ValueError: bytes that are not UTF-8 (UnicodeDecodeError) must not stop the service.
        except (ConfigError, OSError, ValueError) as exc:
            log.error(
                "fleet_reload_refused",
                path=str(self._path),
                error=str(exc)[:500],
                note="the inventory in force stays; fix the file (or restore it)",
            )
            return "refused"
        change = self._apply(fleet)
        log.warning(
            "fleet_reloaded",
            path=str(self._path),
            nodes=len(fleet),
            added=",".join(change.added),
            retired=",".join(change.retired),
            changed=",".join(change.changed),
        )
        return "reloaded"

    async def run(self) -> None:
        while True:
            timeout = self._reload_s if self._reload_s > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._requested.wait(), timeout)
            forced = self._requested.is_set()
            self._requested.clear()
            outcome = self.check(forced)
            if outcome != "unchanged":
                self._count(outcome)
