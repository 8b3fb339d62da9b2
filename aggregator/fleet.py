"""The fleet inventory: which nodes exist, where they are, and how the standards classify them.

Readings from a node that is not in the inventory are refused: a typo in a node id must not
create a phantom station, and an unregistered device must not write into the city's data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from schemas.messages import ID_PATTERN, Location
from schemas.runtime.configfile import ConfigError, convert, read_toml

# GB 3095-2026 §4.1: Class 1 zones take Grade I limits, Class 2 zones Grade II.
AirZone = Literal[1, 2]
# GB 3096-2008 §4: functional zone classes.
NoiseZone = Literal["0", "1", "2", "3", "4a", "4b"]
# GB 3838-2002: lakes and reservoirs have their own TP limits and evaluate TN.
WaterBody = Literal["river", "lake"]
WaterClass = Annotated[int, msgspec.Meta(ge=1, le=5)]
# GB 14554-93 Table 1 columns: Grade I; Grade II and III, each new/expanded/rebuilt (since
# 1994-06-01) or existing.
OdourGrade = Literal["I", "II-new", "II-existing", "III-new", "III-existing"]


# Site names become InfluxDB tag values: no control characters and no backslash, which line
# protocol cannot escape unambiguously (see aggregator.storage.lineprotocol).
SITE_PATTERN: Final = r"^[^\\\x00-\x1f\x7f]{1,100}$"


class NodeInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    site: Annotated[str, msgspec.Meta(pattern=SITE_PATTERN)]
    location: Location | None = None
    air_zone: AirZone | None = None
    noise_zone: NoiseZone | None = None
    water_body: WaterBody | None = None
    water_target: WaterClass | None = None
    odour_grade: OdourGrade | None = None
    # District or group of sites (an Alertmanager label and a map grouping).
    group: str | None = None
    # Filled from the table key at load time.
    node: str = ""


class _FleetFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    nodes: dict[Annotated[str, msgspec.Meta(pattern=ID_PATTERN)], NodeInfo]


class Fleet:
    """An immutable lookup of known nodes."""

    def __init__(self, nodes: Mapping[str, NodeInfo]) -> None:
        self._nodes = {
            node_id: msgspec.structs.replace(info, node=node_id) for node_id, info in nodes.items()
        }

    def get(self, node: str) -> NodeInfo | None:
        return self._nodes.get(node)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)


def load_fleet(path: Path) -> Fleet:
    raw = read_toml(path)
    parsed = convert(raw, _FleetFile, str(path))
    for node_id, info in parsed.nodes.items():
        if info.water_target is not None and info.water_body is None:
            raise ConfigError(f"{path}: node {node_id}: water_target needs water_body")
    return Fleet(parsed.nodes)
