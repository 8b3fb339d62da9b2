"""The fleet file: a fleet of kinds from TOML, every problem a FleetFileError naming the file
and the line or field (never a traceback), and the example fleet loads and is inventoried."""

from __future__ import annotations

import contextlib
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fleet import load_fleet
from simulators.fleet import inventory_toml
from simulators.fleet_file import FleetFileError, load_fleet_file, parse_fleet
from simulators.node_kinds import KINDS

EXAMPLE = Path(__file__).parents[3] / "simulators" / "fleets" / "wuxi.toml"

GOOD = """
[fleet]
id = "t1"
seed = 5

[[node]]
id = "t1-odour"
kind = "odour"
zone = "plant-boundary-II"

[[node]]
id = "t1-lake"
kind = "water-lake"
zone = 2
site = "A lake"
lat = 31.0
lon = 120.0
group = "Lakes"
[node.options.sonde]
trophic = "eutrophic"
"""


def test_a_fleet_file_gives_seeded_nodes_of_its_kinds() -> None:
    fleet = parse_fleet(GOOD, "f.toml")
    assert (fleet.id, fleet.seed) == ("t1", 5)
    odour, lake = fleet.nodes(origin_ms=42)
    assert odour.node == "t1-odour" and odour.inventory["odour_grade"] == "II-new"
    assert odour.sensors[0].options["seed"] == 5000 and odour.sensors[0].options["origin_ms"] == 42
    assert lake.sensors[0].options["seed"] == 5010
    assert lake.inventory == {"water_body": "lake", "water_target": 2, "group": "Lakes",
                              "site_type": "lake"}  # fmt: skip
    assert lake.sensors[0].options["trophic"] == "eutrophic"
    assert (lake.site, lake.lat, lake.lon) == ("A lake", 31.0, 120.0)


def test_the_example_fleet_has_every_kind_and_its_inventory_loads(tmp_path: Path) -> None:
    fleet = load_fleet_file(EXAMPLE)
    nodes = fleet.nodes(origin_ms=0)
    assert {e.kind for e in fleet.entries} == set(KINDS)
    inventory = tmp_path / "fleet.toml"
    inventory.write_text(inventory_toml(nodes), encoding="utf-8")
    assert {n.node for n in load_fleet(inventory)} == {n.node for n in nodes}


NODE = "[fleet]\nid = 't'\n[[node]]\nid = 'a'\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[fleet]\nid = 't'\n[[node]\n", "f.toml: not valid TOML: .*line 3"),
        ("[[node]]\nid = 'a'\nkind = 'air'\n", r"f.toml: Object missing required field `fleet`"),
        ("[fleet]\nid = 't'\n", "missing required field `node`"),
        ("[fleet]\nid = 'T!'\n[[node]]\nid='a'\nkind='air'\n", r"\$.fleet.id"),
        ("[fleet]\nid = 't'\ncolour = 1\n[[node]]\nid='a'\nkind='air'\n", "unknown field `colour`"),
        (NODE + "kind='lava'\n", r"node\[0\] \(id 'a'\): unknown node kind 'lava'"),
        (NODE + "kind='air'\nzone='9'\n", r"node\[0\].*valid: '1', '2'"),
        (NODE + "kind='air'\n[[node]]\nid='a'\nkind='noise'\n",
         r"node\[1\] \(id 'a'\): the id is used by an earlier node"),
        (NODE + "kind='air'\nlat=1.0\n", "both lat and lon"),
        (NODE + "kind='air'\nlat=91.0\nlon=0.0\n", r"\$.node\[0\].lat"),
        (NODE + "kind='air'\nsite_type='Road Side'\n", "site_type"),
        (NODE + "kind='air'\n[node.options.pm]\nhaze='yes'\n",
         r"node\[0\].*sensor 'pm' \(sim-air\) options"),
    ],
)  # fmt: skip
def test_a_bad_fleet_file_is_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(FleetFileError, match=says):
        parse_fleet(text, "f.toml")


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="no such file"):
        load_fleet_file(tmp_path / "none.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe[fleet]")
    with pytest.raises(FleetFileError, match="cannot be read"):
        load_fleet_file(tmp_path / "bin.toml")


toml_scalar = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=True).map(lambda f: repr(f).replace("inf", "inf")),
    st.sampled_from(["true", "false", "'x'", '"plant-boundary-II"', "[]", "{}", "[1, 'a']"]),
    st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
)
keys = st.sampled_from(["id", "kind", "zone", "site", "lat", "lon", "group", "site_type",
                        "seed", "options", "extra"])  # fmt: skip


@st.composite
def fleet_texts(draw: st.DrawFn) -> str:
    lines = ["[fleet]"]
    lines += [f"{draw(keys)} = {draw(toml_scalar)}" for _ in range(draw(st.integers(0, 3)))]
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[node]]")
        kind = draw(st.sampled_from([*KINDS, "x"]))
        lines.append(f"kind = '{kind}'")
        lines += [f"{draw(keys)} = {draw(toml_scalar)}" for _ in range(draw(st.integers(0, 4)))]
    return "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.one_of(fleet_texts(), st.text(max_size=200)))
def test_malformed_fleet_files_give_a_fleet_or_a_fleet_file_error(text: str) -> None:
    try:
        fleet = parse_fleet(text, "f.toml")
    except FleetFileError as exc:
        message = str(exc)
    else:
        fleet.nodes(origin_ms=0)  # a parsed fleet always builds
        return
    assert message.startswith("f.toml: ")


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    zone=st.one_of(st.none(), st.text(max_size=30), st.integers(-5, 10)),
    options=st.dictionaries(
        st.sampled_from(["pm", "met", "snd", "gas", "sonde", "x"]),
        st.dictionaries(st.sampled_from(["traffic", "haze", "zone", "trophic", "body", "seed",
                                         "source_strength", "bad"]),
                        st.one_of(st.floats(allow_nan=False), st.booleans(), st.text(max_size=5))),
        max_size=2,
    ),
)  # fmt: skip
def test_any_zone_or_options_value_is_a_fleet_or_a_fleet_file_error(
    kind: str, zone: str | int | None, options: dict[str, dict[str, object]]
) -> None:
    text = _to_toml(kind, zone, options)
    with contextlib.suppress(FleetFileError):
        parse_fleet(text, "f.toml").nodes(origin_ms=0)


def _to_toml(kind: str, zone: str | int | None, options: dict[str, dict[str, object]]) -> str:
    """The node as TOML (JSON scalars are TOML scalars, but for a non-finite float)."""
    out = ["[fleet]", 'id = "t"', "[[node]]", 'id = "a"', f'kind = "{kind}"']
    if zone is not None:
        out.append(f"zone = {msgspec.json.encode(zone).decode()}")
    for sensor, table in options.items():
        out.append(f"[node.options.{sensor}]")
        out += [f"{k} = {msgspec.json.encode(v).decode()}" for k, v in table.items()]
    return "\n".join(out)
