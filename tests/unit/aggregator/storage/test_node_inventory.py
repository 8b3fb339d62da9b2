"""The node map, unit part (issue 11): the fleet inventory's group and site type, the `nodes`
measurement the aggregator writes at start and rewrites when the inventory changes, and the
map query of the Grafana map dashboard on a real influxd.

- Unit: the inventory fields are optional and checked (a group follows the site's rule, a
  site type is one lower-case word); the record builder writes each node's location and
  labels, and only active=false for a retired node.
- Integration (real mosquitto and influxd): a started aggregator writes the inventory; started
  again with one node removed and another's group changed, it marks the removed node
  inactive, and the dashboard's map query then returns exactly the current nodes, each once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aggregator.fleet import NodeInfo, load_fleet
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.inventory import inventory_lines, stored_node_ids, tag_values
from aggregator.storage.records import node_lines
from schemas.messages import Location
from schemas.runtime.configfile import ConfigError
from schemas.storage import NODES
from simulators.local_stack import free_port
from tests.support.lineproto_parser import parse

ROOT = Path(__file__).resolve().parents[4]
MAP_BOARD = ROOT / "deploy" / "grafana" / "dashboards" / "map.json"


def _fleet_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_group_and_site_type_are_optional_inventory_fields(tmp_path: Path) -> None:
    path = _fleet_file(
        tmp_path,
        '[nodes.a]\nsite = "A"\nlocation = { lat = 31.3, lon = 120.6 }\n'
        'group = "Gusu 姑苏"\nsite_type = "industrial-boundary"\n'
        '[nodes.b]\nsite = "B"\n',
    )
    fleet = load_fleet(path)
    a, b = fleet.get("a"), fleet.get("b")
    assert a is not None and (a.group, a.site_type) == ("Gusu 姑苏", "industrial-boundary")
    assert b is not None and (b.group, b.site_type) == (None, None)


def test_the_shipped_inventory_example_loads() -> None:
    fleet = load_fleet(ROOT / "deploy" / "config" / "fleet.toml")
    assert all(info.group and info.site_type for info in fleet)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('group = "back\\\\slash"', "group"),
        ('group = ""', "group"),
        ('group = "tab\\there"', "group"),
        ('site_type = "Roadside"', "site_type"),
        ('site_type = "road side"', "site_type"),
        ('site_type = "-x"', "site_type"),
        ("site_type = 3", "site_type"),
    ],
)
def test_bad_group_or_site_type_is_a_config_error(tmp_path: Path, line: str, message: str) -> None:
    path = _fleet_file(tmp_path, f'[nodes.a]\nsite = "A"\n{line}\n')
    with pytest.raises(ConfigError, match=f"{path}.*{message}"):
        load_fleet(path)


def test_node_lines_carry_location_labels_and_retirement() -> None:
    located = NodeInfo(
        site="Taihu, Gonghu Bay",
        location=Location(lat=31.42, lon=120.33),
        group="Taihu",
        site_type="lake",
        water_body="lake",
        water_target=3,
        node="lake-1",
    )
    plain = NodeInfo(site="Ring road", noise_zone="4a", air_zone=2, node="road-1")
    first, second, retired = (parse(t) for t in node_lines([located, plain], ["gone"], 1000))

    assert first.measurement == NODES.name and first.timestamp == 1000
    assert first.tags == {"node": "lake-1", "group": "Taihu", "site_type": "lake",
                          "water_body": "lake"}  # fmt: skip
    assert first.fields == {"lat": "31.42", "lon": "120.33", "site": '"Taihu, Gonghu Bay"',
                            "active": "true"}  # fmt: skip
    # No location: no coordinates (not 0, 0 in the Gulf of Guinea); empty labels: no tag.
    assert second.tags == {"node": "road-1", "air_zone": "2", "noise_zone": "4a"}
    assert set(second.fields) == {"site", "active"}
    assert (retired.tags, retired.fields) == ({"node": "gone"}, {"active": "false"})
    assert set(first.tags) | set(second.tags) <= set(NODES.tags)
    assert set(first.fields) <= set(NODES.fields)


def test_tag_values_reads_show_tag_values_answers() -> None:
    answer: dict[str, Any] = {
        "series": [
            {"name": "nodes", "columns": ["key", "value"], "values": [["node", "a"], ["node", "b"]]}
        ]
    }
    assert tag_values(answer) == {"a", "b"}
    assert tag_values({}) == frozenset()
    assert tag_values({"series": [{"values": [["node"], None, ["node", 3]]}]}) == frozenset()


def test_an_unreachable_influxdb_leaves_the_stored_nodes_unknown() -> None:
    """The start-up does not fail on the read-back: it writes the current inventory and
    retires nothing (logged), when InfluxDB cannot say which nodes it stored."""
    target = InfluxTarget(url=f"http://127.0.0.1:{free_port()}", api="v1", database="envnet")
    assert asyncio.run(stored_node_ids(target)) == frozenset()
    info = NodeInfo(site="A", node="a")
    lines = asyncio.run(inventory_lines(target, [info], 5))
    assert [parse(t).tags["node"] for t in lines] == ["a"]
