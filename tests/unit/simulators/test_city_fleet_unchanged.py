"""The built-in Suzhou city, rebuilt on the node kinds (simulators.node_kinds), is the city
it was: the same nodes, drivers, options and inventory as before the rebuild, recorded in
data/city_fleet_golden.json from the hand-written table it replaced."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict
from pathlib import Path

from simulators.fleet import city_nodes, fleet_nodes, inventory_toml

GOLDEN = json.loads((Path(__file__).parent / "data" / "city_fleet_golden.json").read_text())


def _plain(value: object) -> object:
    """As the golden file holds it: JSON (tuples are lists)."""
    return json.loads(json.dumps(value))


def test_city_nodes_are_unchanged() -> None:
    assert _plain([asdict(n) for n in city_nodes()]) == GOLDEN["city"]


def test_a_fleet_of_23_with_its_seeds_and_inventory_is_unchanged() -> None:
    nodes = fleet_nodes(23, seed=7, origin_ms=1_795_900_000_000)
    assert _plain([asdict(n) for n in nodes]) == GOLDEN["nodes"]
    # The same inventory, read as the aggregator reads it (the text's layout may change).
    assert tomllib.loads(inventory_toml(nodes)) == tomllib.loads(GOLDEN["inventory"])
