"""A simulated fleet described in a TOML file instead of the built-in Suzhou city.

    [fleet]
    id = "lakeside"          # namespaces the fleet's journals and MQTT client ids
    seed = 7                 # optional, default 1: the sensors' seeds derive from it

    [[node]]
    id = "ls-wwtp-odour"     # the node id its readings are stored under
    kind = "odour"           # a simulators.node_kinds kind
    zone = "plant-boundary-II"   # optional: the kind's zone vocabulary, default per kind
    site = "Lakeside plant"  # optional, default the id
    lat = 31.35              # optional, with lon: the inventory's location
    lon = 120.60
    group = "Lakeside"       # optional
    site_type = "industrial-boundary"  # optional, default per kind
    [node.options.gas]       # optional: per-sensor driver options over the kind's
    source_bearing_deg = 270.0

Parsing is pure (`parse_fleet` takes the text); `load_fleet_file` reads the file. Every
problem is a FleetFileError naming the file and the line (TOML syntax) or the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from schemas.messages import ID_PATTERN
from simulators.node_kinds import NodeSpec, node_spec

NodeId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
# As aggregator.fleet.SITE_PATTERN and SITE_TYPE_PATTERN: sites, groups and site types become
# InfluxDB tag values.
_LABEL = r"^[^\\\x00-\x1f\x7f]{1,100}$"
Label = Annotated[str, msgspec.Meta(pattern=_LABEL)]
SiteType = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


class FleetFileError(ValueError):
    """A fleet file that cannot be used; the message names the file and the line or field."""


class FleetHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: NodeId
    seed: int = 1


class NodeEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: NodeId
    kind: str
    # A string, or for the numbered zones a bare number (air 1, water 3).
    zone: str | int | None = None
    site: Label | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None
    group: Label | None = None
    site_type: SiteType | None = None
    options: dict[str, dict[str, Any]] = {}


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fleet: FleetHeader
    node: Annotated[list[NodeEntry], msgspec.Meta(min_length=1)]


@dataclass(frozen=True, slots=True)
class FleetFile:
    id: str
    seed: int
    entries: tuple[NodeEntry, ...]

    def nodes(self, origin_ms: int) -> list[NodeSpec]:
        """The fleet's nodes, seeded, with episodes timed from `origin_ms`. The entries were
        checked when parsed, so this does not fail."""
        return [_spec(e, self.seed, index, origin_ms) for index, e in enumerate(self.entries)]


def _spec(entry: NodeEntry, seed: int, index: int, origin_ms: int) -> NodeSpec:
    return node_spec(
        entry.id, entry.kind, None if entry.zone is None else str(entry.zone),
        seed=seed, index=index, origin_ms=origin_ms, site=entry.site, lat=entry.lat,
        lon=entry.lon, group=entry.group, site_type=entry.site_type, options=entry.options,
    )  # fmt: skip


def parse_fleet(text: str, source: str) -> FleetFile:
    """The fleet described by `text` (TOML), or FleetFileError naming `source`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message names the line and column
        raise FleetFileError(f"{source}: not valid TOML: {exc}") from None
    try:
        parsed = msgspec.convert(raw, _File, strict=True)
    except msgspec.ValidationError as exc:
        raise FleetFileError(f"{source}: {exc}") from None
    seen: set[str] = set()
    for index, entry in enumerate(parsed.node):
        where = f"{source}: node[{index}] (id {entry.id!r})"
        if entry.id in seen:
            raise FleetFileError(f"{where}: the id is used by an earlier node")
        seen.add(entry.id)
        if (entry.lat is None) != (entry.lon is None):
            raise FleetFileError(f"{where}: give both lat and lon, or neither")
        try:
            _spec(entry, parsed.fleet.seed, index, 0)
        except ValueError as exc:
            raise FleetFileError(f"{where}: {exc}") from None
    return FleetFile(parsed.fleet.id, parsed.fleet.seed, tuple(parsed.node))


def load_fleet_file(path: Path) -> FleetFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetFileError(f"{path}: cannot be read: {exc}") from None
    return parse_fleet(text, str(path))
