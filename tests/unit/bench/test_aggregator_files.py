"""The files bench/_aggregator.py writes for the aggregator it starts: the aggregator reads
its fleet.toml back to the nodes the bench publishes for."""

from __future__ import annotations

from pathlib import Path

from aggregator.fleet import load_fleet
from bench._aggregator import fleet_document
from bench._shapes import node_info
from schemas.runtime.toml_text import dumps


def test_the_fleet_file_gives_each_bench_node_its_site_and_zone(tmp_path: Path) -> None:
    nodes = ("bench-00000", "bench-00001", "scale-09999")
    path = tmp_path / "fleet.toml"
    path.write_text(dumps(fleet_document(nodes)), encoding="utf-8")
    fleet = load_fleet(path)
    for node in nodes:
        got = fleet.get(node)
        assert got is not None
        assert (got.site, got.air_zone) == (node_info(node).site, node_info(node).air_zone)
