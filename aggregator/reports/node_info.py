"""What the water, noise and bloom reports know of each node (aggregator.fleet.NodeInfo): its
site, group, noise zone class, water body and water target. One way for every kind.

The aggregator's fleet file (agg.toml [fleet] path, ENVNET_FLEET) holds all of it, and is read
when the report is run with a --config, or with ENVNET_FLEET set. Otherwise, and for a node the
file does not list, the stored inventory (the newest `nodes` points, request.InventoryNode)
gives the group, the zone classes and the water body: its tags. The water target is not
stored (schemas.storage.NODES), so a site known only from the stored inventory is held to
`[report.water] default_target` (Class III), and the report's validity text says which sites
were. `node_infos` is pure; `read_fleet` is the file shell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast, get_args

from aggregator.fleet import AirZone, Fleet, NodeInfo, NoiseZone, WaterBody, load_fleet
from aggregator.reports.request import InventoryNode, Selection


@dataclass(frozen=True, slots=True)
class FleetFile:
    """The fleet file a report reads: its path, and its nodes (None when it does not exist)."""

    path: str
    fleet: Fleet | None


@dataclass(frozen=True, slots=True)
class NodeInfos:
    """Each selected node's NodeInfo, which came only from the stored inventory, and the fleet
    file read (its path; found or not), for the notes a report's validity text carries."""

    info: Mapping[str, NodeInfo]
    from_inventory: tuple[str, ...]
    fleet: FleetFile | None = None

    def source_note(self, nodes: Sequence[str]) -> str:
        """Where the classes of `nodes`, the nodes a report covers, came from."""
        if self.fleet is None:
            return "Node classes are the stored inventory's (`nodes` tags)."
        if self.fleet.fleet is None:
            return (
                f"Fleet file {self.fleet.path} not found: node classes are the stored inventory's."
            )
        others = [n for n in nodes if n in self.from_inventory]
        tail = f"; {', '.join(others)} not in it: the stored inventory's." if others else "."
        return f"Node classes are the fleet file {self.fleet.path}'s{tail}"

    def target_note(self, nodes: Sequence[str], default_class: str) -> str:
        """Which of `nodes` have a water body but no known target: the target is not stored."""
        held = [
            n for n in nodes if n in self.from_inventory and self.info[n].water_body is not None
        ]
        if not held:
            return ""
        return (
            f"No fleet file gives the water target of {', '.join(held)} (the stored inventory "
            f"does not hold targets): held to Class {default_class} ([report.water] "
            "default_target)."
        )


def read_fleet(path: Path) -> FleetFile:
    """The fleet file at `path`; raises ConfigError when it exists and is not valid."""
    return FleetFile(str(path), load_fleet(path) if path.is_file() else None)


def from_inventory(node: InventoryNode) -> NodeInfo:
    """A NodeInfo from the `nodes` tags: the node id stands for the site name (not stored); a
    tag that is not a value the fleet file allows is left out."""
    air = cast(AirZone, node.air_zone) if node.air_zone in get_args(AirZone) else None
    zone = cast(NoiseZone, node.noise_zone) if node.noise_zone in get_args(NoiseZone) else None
    body = cast(WaterBody, node.water_body) if node.water_body in get_args(WaterBody) else None
    return NodeInfo(
        site=node.node,
        air_zone=air,
        noise_zone=zone,
        water_body=body,
        group=node.group,
        node=node.node,
    )


def node_infos(selection: Selection, fleet: FleetFile | None) -> NodeInfos:
    """The selected nodes' NodeInfo: the fleet file's entry when it has one, else the stored
    inventory's. A report's groups are the selection's (request.Selection.groups), not these."""
    known = fleet.fleet if fleet is not None else None
    info: dict[str, NodeInfo] = {}
    inventory_only: list[str] = []
    for node in selection.nodes:
        entry = known.get(node.node) if known is not None else None
        if entry is None:
            inventory_only.append(node.node)
            entry = from_inventory(node)
        info[node.node] = entry
    return NodeInfos(info, tuple(inventory_only), fleet)
