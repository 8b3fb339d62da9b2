"""A fleet's id namespaces what two fleets on one broker could otherwise share: the MQTT
client ids and the journals; the built-in city's ids take a prefix."""

from __future__ import annotations

from pathlib import Path

from simulators.fleet import FleetSettings, edge_config, fleet_nodes


def test_a_named_fleet_namespaces_its_client_ids_and_journals(tmp_path: Path) -> None:
    spec = fleet_nodes(1, seed=1, origin_ms=0, prefix="east-")[0]
    assert spec.node == "east-sz-sip-roadside"
    config = edge_config(spec, FleetSettings("mqtt://h", tmp_path, fleet_id="east"))
    assert config.mqtt.client_id == "envnet-sim-east-east-sz-sip-roadside"
    assert config.journal.path == str(tmp_path / "east" / "east-sz-sip-roadside.sqlite")


def test_the_unnamed_city_keeps_its_layout(tmp_path: Path) -> None:
    spec = fleet_nodes(11, seed=1, origin_ms=0)[10]
    assert spec.node == "sz-sip-roadside-2"
    config = edge_config(spec, FleetSettings("mqtt://h", tmp_path))
    assert config.mqtt.client_id is None  # the edge's default, envnet-edge-<node>
    assert config.journal.path == str(tmp_path / "sz-sip-roadside-2.sqlite")
