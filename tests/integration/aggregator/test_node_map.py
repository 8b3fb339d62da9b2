"""The node map (issue 11): the fleet inventory's group and site type, the `nodes`
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

import json
from pathlib import Path
from typing import Any

import pytest

from aggregator.fleet import Fleet, NodeInfo
from schemas.messages import Location
from simulators.local_stack import Influxd, Mosquitto
from tests.support.harness import aggregator_config, running_aggregator, wait_for

ROOT = Path(__file__).resolve().parents[3]
MAP_BOARD = ROOT / "deploy" / "grafana" / "dashboards" / "map.json"


def _map_query() -> str:
    board = json.loads(MAP_BOARD.read_text(encoding="utf-8"))
    (geomap,) = [p for p in board["panels"] if p["type"] == "geomap"]
    query = geomap["targets"][0]["query"]
    assert isinstance(query, str) and 'FROM "nodes"' in query
    return query.replace("$node", ".*")


def _map_rows(influxd: Influxd) -> dict[str, list[Any]]:
    result = influxd.query(_map_query(), "envnet")["results"]
    assert isinstance(result, list)
    series = result[0].get("series", [])
    return {s["tags"]["node"]: s["values"] for s in series}


def _active(influxd: Influxd, node: str) -> object:
    q = f'SELECT last("active") FROM "nodes" WHERE "node" = \'{node}\''
    result = influxd.query(q, "envnet")["results"]
    assert isinstance(result, list)
    series = result[0].get("series")
    return series[0]["values"][0][1] if series else None


@pytest.mark.integration
def test_the_aggregator_records_its_inventory_and_retires_removed_nodes(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    where = Location(lat=31.3, lon=120.6)
    first = Fleet({
        "keep": NodeInfo(site="Kept", location=where, group="SIP", site_type="roadside"),
        "gone": NodeInfo(site="Removed", location=Location(lat=31.0, lon=120.0)),
    })  # fmt: skip
    with running_aggregator(config, first):
        wait_for(lambda: _active(influxd, "gone") is True, 30, "the inventory in nodes")
    assert set(_map_rows(influxd)) == {"keep", "gone"}

    # Edited while the aggregator was stopped: one node removed, the other moved to a group.
    second = Fleet({
        "keep": NodeInfo(site="Kept", location=where, group="Gusu", site_type="roadside"),
    })  # fmt: skip
    with running_aggregator(config, second):
        wait_for(lambda: _active(influxd, "gone") is False, 30, "the removed node retired")
    rows = _map_rows(influxd)
    assert list(rows) == ["keep"]
    (row,) = rows["keep"]  # one row, though the node has a series under each group
    assert row[1:] == [31.3, 120.6, "Kept"]
