"""What the water, noise and bloom reports know of a node: the fleet file's entry, else the
stored inventory's tags; and the [report.water] / [report.bloom] settings from agg.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load_aggregator_config
from aggregator.fleet import Fleet, NodeInfo
from aggregator.reports.node_info import FleetFile, from_inventory, node_infos, read_fleet
from aggregator.reports.request import InventoryNode, Selection
from schemas.runtime.configfile import ConfigError


def stored(node: str, **tags: str) -> InventoryNode:
    return InventoryNode(node, active=True, at_ms=1, group="Taihu", **tags)  # type: ignore[arg-type]


def test_the_stored_tags_make_a_node_info_and_unknown_values_are_left_out() -> None:
    info = from_inventory(stored("a", noise_zone="4a", water_body="lake"))
    assert (info.site, info.noise_zone, info.water_body, info.group) == ("a", "4a", "lake", "Taihu")
    odd = from_inventory(stored("b", noise_zone="9", water_body="sea"))
    assert (odd.noise_zone, odd.water_body, odd.water_target) == (None, None, None)


def test_the_fleet_file_wins_and_the_notes_name_only_the_nodes_reported() -> None:
    selection = Selection((stored("a", water_body="lake"), stored("b", water_body="river")))
    fleet = Fleet({"a": NodeInfo(site="A", water_body="lake", water_target=2)})
    infos = node_infos(selection, FleetFile("fleet.toml", fleet))
    assert (infos.info["a"].site, infos.info["a"].water_target) == ("A", 2)
    assert infos.from_inventory == ("b",)
    assert infos.target_note(["a"], "III") == ""
    assert "water target of b" in infos.target_note(["a", "b"], "III")
    assert "b not in it" in infos.source_note(["a", "b"]) and "fleet.toml" in infos.source_note([])
    without = node_infos(selection, None)
    assert "stored inventory" in without.source_note(["a"])
    assert "water target of a, b" in without.target_note(["a", "b"], "III")
    missing = node_infos(selection, FleetFile("gone.toml", None))
    assert "gone.toml not found" in missing.source_note(["a"])


def test_a_missing_fleet_file_is_none_and_a_bad_one_a_config_error(tmp_path: Path) -> None:
    assert read_fleet(tmp_path / "none.toml").fleet is None
    bad = tmp_path / "fleet.toml"
    bad.write_text('[nodes.a]\nsite = "A"\nwater_target = 2\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="water_target needs water_body"):
        read_fleet(bad)


def test_water_and_bloom_rules_come_from_agg_toml_and_have_no_clock_of_their_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agg.toml"
    path.write_text(
        '[report.water]\nmin_hours = 4\nrequired_items = ["do", "nh3_n"]\n'
        '[report.bloom]\ndaily_statistic = "mean"\n',
        encoding="utf-8",
    )
    report = load_aggregator_config(path, environ={}).report
    assert (report.water.min_hours, report.water.required_items) == (4, ("do", "nh3_n"))
    assert report.bloom.daily_statistic == "mean"
    path.write_text("[report.bloom]\nutc_offset_h = 9\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"local days follow \[alerts\] utc_offset_h"):
        load_aggregator_config(path, environ={})
