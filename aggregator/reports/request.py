"""What a report is asked for: the period, the nodes, and how local days are counted. Pure.

The period is a range of local dates, both ends included; a local day is the natural day at
`[alerts] utc_offset_h` (UTC+8 by default), the day the aggregator's daily windows and daily
AQI start on (docs/standards.md §1.4, §2.4). Nodes are chosen by id, by group (the fleet
inventory's `group`, read from the newest `nodes` points, schemas.storage.NODES), or, with
neither, every active node of the inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final, Literal

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
_EPOCH: Final = date(1970, 1, 1)

Kind = Literal["air", "water", "noise", "bloom"]
# What `envnet report` takes: one kind, or "all" of them on one page.
ReportKind = Literal["air", "water", "noise", "bloom", "all"]


class ReportUsageError(ValueError):
    """The request cannot be answered as asked: a bad period, an unknown node or group."""


@dataclass(frozen=True, slots=True)
class Period:
    """Local dates `first` to `last`, both included, at a whole-hour UTC offset."""

    first: date
    last: date
    utc_offset_h: int = 8

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ReportUsageError(
                f"--from {self.first} is after --to {self.last}: the range selects no day"
            )

    @property
    def start_ms(self) -> int:
        """The first local day's start, epoch ms."""
        return self.day_start_ms(self.first)

    @property
    def end_ms(self) -> int:
        """The end (exclusive) of the last local day, epoch ms."""
        return self.day_start_ms(self.last) + DAY_MS

    @property
    def days(self) -> tuple[date, ...]:
        count = (self.last - self.first).days + 1
        return tuple(self.first + timedelta(days=n) for n in range(count))

    def day_start_ms(self, day: date) -> int:
        return (day - _EPOCH).days * DAY_MS - self.utc_offset_h * HOUR_MS

    def chunks(self, days: int) -> tuple[Period, ...]:
        """The period cut into consecutive periods of at most `days` local days, so that no
        single answer holds a year of raw readings."""
        starts = self.days[::days]
        return tuple(
            Period(s, min(s + timedelta(days=days - 1), self.last), self.utc_offset_h)
            for s in starts
        )

    def local_day(self, ts_ms: int) -> date:
        """The local date an instant falls on."""
        return _EPOCH + timedelta(days=(ts_ms + self.utc_offset_h * HOUR_MS) // DAY_MS)


@dataclass(frozen=True, slots=True)
class InventoryNode:
    """A node as the newest `nodes` point of its series says: its group, its air and noise zone
    classes and its water body (the tags of schemas.storage.NODES)."""

    node: str
    active: bool
    at_ms: int
    group: str | None = None
    air_zone: int | None = None
    noise_zone: str | None = None
    water_body: str | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """The nodes a report covers, each with its inventory entry, and the group asked for."""

    nodes: tuple[InventoryNode, ...]
    group: str | None = None
    # The ids named by --node: kept even when the kind does not apply to them.
    asked: tuple[str, ...] = ()

    def groups(self) -> dict[str, str | None]:
        """Each node's group for the report: the group asked for, for its members; a group's
        figures are given only when --group asks for it, for every kind."""
        return {
            i.node: self.group if self.group is not None and i.group == self.group else None
            for i in self.nodes
        }


def current_inventory(points: Iterable[InventoryNode]) -> dict[str, InventoryNode]:
    """Each node's newest point across its series: a node whose tags changed, or that was
    retired, has a newer point under its new tags (or active=false) than under its old ones
    (aggregator.storage.inventory)."""
    newest: dict[str, InventoryNode] = {}
    zones: dict[str, tuple[int, int]] = {}  # node -> (at_ms, air_zone) of its newest zoned point
    for point in points:
        seen = newest.get(point.node)
        if seen is None or point.at_ms > seen.at_ms or (point.at_ms == seen.at_ms and point.active):
            newest[point.node] = point
        if point.air_zone is not None and point.at_ms >= zones.get(point.node, (-1, 0))[0]:
            zones[point.node] = (point.at_ms, point.air_zone)
    # A retired node's point carries no tags: it keeps the zone class it had, for a report on
    # its stored history (its group is gone: it is no longer a member).
    return {
        node: replace(info, air_zone=zones[node][1])
        if info.air_zone is None and not info.active and node in zones
        else info
        for node, info in newest.items()
    }


def select_nodes(
    inventory: Mapping[str, InventoryNode], nodes: Iterable[str], group: str | None
) -> Selection:
    """The nodes named (known to the inventory, active or retired), the active members of
    `group`, or every active node when neither is given. Raises ReportUsageError for a node
    the inventory never had, or a group without an active node."""
    asked = list(dict.fromkeys(nodes))
    unknown = [n for n in asked if n not in inventory]
    if unknown:
        raise ReportUsageError(f"unknown node(s) {', '.join(unknown)}: not in the inventory")
    chosen = [inventory[n] for n in asked]
    if group is not None:
        members = [i for i in inventory.values() if i.active and i.group == group]
        if not members:
            known = sorted({i.group for i in inventory.values() if i.active and i.group})
            raise ReportUsageError(
                f"unknown group {group!r}: no active node has it "
                f"(groups: {', '.join(known) or 'none'})"
            )
        chosen += [m for m in sorted(members, key=lambda i: i.node) if m.node not in asked]
    elif not asked:
        chosen = sorted((i for i in inventory.values() if i.active), key=lambda i: i.node)
    if not chosen:
        raise ReportUsageError("no node to report on: the inventory has no active node")
    return Selection(tuple(chosen), group, tuple(asked))
