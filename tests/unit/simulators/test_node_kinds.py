"""The node kinds: each kind's sensors build as real simulated drivers, each zone spelling
classifies the node as the inventory expects, and a bad kind, zone or option is a clear
ValueError naming the valid values."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from aggregator.fleet import NodeInfo
from edge.drivers.registry import create_driver
from simulators.node_kinds import KINDS, kind_node, node_spec, sensor_seed


def node_info(kind: str, zone: str | None = None) -> NodeInfo:
    spec = kind_node("n1", kind, zone)
    return msgspec.convert({"site": spec.site, **spec.inventory}, NodeInfo, strict=True)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_builds_its_drivers_and_a_valid_inventory_entry(kind: str) -> None:
    spec = node_spec("n1", kind, None, seed=3, index=2, origin_ms=1000)
    for sensor in spec.sensors:
        driver = create_driver(sensor.driver, sensor.id, sensor.options)
        assert driver.read(60_000), f"{kind}/{sensor.id} reads nothing"
    info = node_info(kind)
    assert info.site_type is not None


def test_the_required_kinds_exist() -> None:
    required = {"air", "air-roadside", "air-background", "noise", "odour", "water-lake",
                "water-river", "bloom"}  # fmt: skip
    assert required <= set(KINDS)


@pytest.mark.parametrize(
    ("zone", "grade"),
    [
        ("plant-boundary-I", "I"),
        ("plant-boundary-II", "II-new"),
        ("plant-boundary-II-existing", "II-existing"),
        ("plant-boundary-III", "III-new"),
        ("plant-boundary-III-existing", "III-existing"),
        ("II-new", "II-new"),
        ("III-existing", "III-existing"),
        (None, "II-new"),
    ],
)
def test_odour_zones_are_gb14554_grades(zone: str | None, grade: str) -> None:
    assert node_info("odour", zone).odour_grade == grade


@pytest.mark.parametrize(
    ("kind", "zone", "field", "value"),
    [
        ("air", "1", "air_zone", 1),
        ("air", None, "air_zone", 2),
        ("air-background", None, "air_zone", 1),
        ("air-roadside", "1", "noise_zone", "4a"),
        ("noise", "4b", "noise_zone", "4b"),
        ("water-lake", "II", "water_target", 2),
        ("water-river", "5", "water_target", 5),
        ("bloom", None, "water_target", 3),
        ("bloom", None, "water_body", "lake"),
        ("water-river", None, "water_body", "river"),
    ],
)
def test_zones_classify_the_node(kind: str, zone: str | None, field: str, value: object) -> None:
    assert getattr(node_info(kind, zone), field) == value


def test_a_noise_zone_is_also_the_simulated_zone() -> None:
    spec = kind_node("n1", "noise", "3")
    assert spec.sensors[0].options["zone"] == "3"
    assert spec.inventory["site_type"] == "industrial"


@pytest.mark.parametrize(
    ("kind", "zone", "says"),
    [
        ("volcano", None, "valid: air, air-roadside"),
        ("air", "3", "valid: '1', '2'"),
        ("noise", "4", "'4a', '4b'"),
        ("odour", "plant-boundary-IV", "'plant-boundary-II'"),
        ("water-lake", "VI", "'V'"),
    ],
)
def test_a_bad_kind_or_zone_names_the_valid_values(kind: str, zone: str, says: str) -> None:
    with pytest.raises(ValueError, match="valid") as caught:
        kind_node("n1", kind, zone)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"pm": {"trafic": 0.2}}, "valid options: "),
        ({"pm": {"traffic": 2.0}}, "traffic"),
        ({"snd": {"zone": "1"}}, "its sensors: pm, met"),
    ],
)
def test_bad_sensor_options_are_refused(options: dict[str, dict[str, Any]], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        kind_node("n1", "air", options=options)


def test_options_override_the_kinds_and_seeds_follow_the_fleet_rule() -> None:
    spec = node_spec("n1", "air", seed=4, index=3, origin_ms=5, options={"pm": {"traffic": 0.1}})
    assert spec.sensors[0].options == {"traffic": 0.1, "haze": True, "seed": 4030,
                                       "origin_ms": 5}  # fmt: skip
    assert [s.options["seed"] for s in spec.sensors] == [sensor_seed(4, 3, j) for j in (0, 1)]


def test_site_and_position_default_to_the_id_and_none() -> None:
    spec = kind_node("n1", "bloom", group="Taihu", site_type="buoy")
    assert (spec.site, spec.lat, spec.lon) == ("n1", None, None)
    assert spec.inventory["group"] == "Taihu" and spec.inventory["site_type"] == "buoy"
