"""Planning a scenario run: perturbations reach the sensor that measures them, node and
link actions land on the scenario clock, and the aggregator gets the scenario's clock and
delay limits wide enough for a busy machine, with the file's own settings on top."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aggregator.config import load_aggregator_config
from schemas.runtime.toml_text import dumps
from simulators.fleet import inventory_toml
from simulators.scenario.plan import (
    Action,
    PlanError,
    aggregator_settings,
    inventory_nodes,
    plan,
    timing_settings,
)
from simulators.scenario.spec import parse_scenario
from tests.unit.simulators.scenario.test_spec import ISSUE_EXAMPLE

ORIGIN = 1_780_243_200_000
SOURCE = Path("/s/x.toml")

TWO_NODES = """
[scenario]
name = "two"
accel = 600
duration_s = 7200

[[node]]
id = "road"
kind = "air-roadside"

[[node]]
id = "plant"
kind = "odour"
zone = "plant-boundary-II"

[[event]]
node = "road"
kind = "step"
quantity = "laeq"
at_s = 60
duration_s = 600
value = 75.0

[[event]]
node = "road"
kind = "dropout"
at_s = 120
duration_s = 60

[[event]]
node = "plant"
kind = "link_outage"
at_s = 600
duration_s = 1200

[[event]]
node = "road"
kind = "offline"
at_s = 3000
duration_s = 100
"""


def test_perturbations_reach_the_sensor_that_measures_them() -> None:
    the_plan = plan(parse_scenario(TWO_NODES, SOURCE), ORIGIN)
    road = next(n for n in the_plan.nodes if n.node == "road")
    by_driver = {s.driver: s.options.get("perturbations", []) for s in road.sensors}
    # The noise step goes to the sound meter; a dropout without a quantity to every sensor.
    assert [p["kind"] for p in by_driver["sim-noise"]] == ["step", "dropout"]
    assert by_driver["sim-noise"][0] == {"kind": "step", "start_s": 60, "duration_s": 600,
                                         "quantity": "laeq", "value": 75.0}  # fmt: skip
    assert [p["kind"] for p in by_driver["sim-air"]] == ["dropout"]
    assert all(s.options["origin_ms"] == ORIGIN for s in road.sensors)


def test_node_and_link_actions_are_on_the_scenario_clock_in_order() -> None:
    the_plan = plan(parse_scenario(TWO_NODES, SOURCE), ORIGIN)
    assert the_plan.actions == (
        Action(ORIGIN + 600_000, "plant", "cut"),
        Action(ORIGIN + 1_800_000, "plant", "restore"),
        Action(ORIGIN + 3_000_000, "road", "offline"),
        Action(ORIGIN + 3_100_000, "road", "online"),
    )
    assert the_plan.cut_nodes == frozenset({"plant"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "odour"', 'kind = "smell"'), "unknown node kind"),
        (('zone = "plant-boundary-II"', 'zone = "plant-boundary-IX"'), "plant"),
        (('quantity = "laeq"', 'quantity = "chl_a"'), "does not measure chl_a"),
        (("value = 75.0", "value = 1e400"), "finite"),
    ],
)
def test_what_cannot_be_played_is_a_plan_error(change: tuple[str, str], message: str) -> None:
    spec = parse_scenario(TWO_NODES.replace(*change), SOURCE)
    with pytest.raises(PlanError, match=message):
        plan(spec, ORIGIN)


def test_the_inventory_holds_every_node_replays_included() -> None:
    spec = parse_scenario(ISSUE_EXAMPLE, SOURCE)
    the_plan = plan(spec, ORIGIN)
    nodes = tomllib.loads(inventory_toml(inventory_nodes(spec, the_plan.nodes)))["nodes"]
    assert nodes["sz-wwtp-odour"]["odour_grade"] == "II-new"
    assert nodes["bj-x"] == {"site": "PRSA_Data_X replay", "air_zone": 2, "group": "replay",
                             "site_type": "replay"}  # fmt: skip


def test_delay_limits_tolerate_twenty_wall_seconds_and_never_go_below_the_defaults() -> None:
    slow = timing_settings(accel=1.0)
    assert slow["late_after_s"] == 900
    assert slow["liveness"] == {"node_silence_s": 300.0, "quantity_silence_s": 900.0}
    fast = timing_settings(accel=600.0)
    assert fast["late_after_s"] == 12_000
    assert fast["windows"]["close_after_s"] < fast["late_after_s"]


def test_the_aggregator_settings_load_and_the_file_s_own_win(tmp_path: Path) -> None:
    text = TWO_NODES + "\n[aggregator.alerts.liveness]\nquantity_silence_s = 600\n"
    spec = parse_scenario(text, SOURCE)
    settings = aggregator_settings(
        spec, fleet_path=str(tmp_path / "fleet.toml"), state_dir=str(tmp_path / "state"),
        metrics_port=9999, origin_ms=ORIGIN, anchor_wall_ms=ORIGIN + 5,
    )  # fmt: skip
    path = tmp_path / "agg.toml"
    path.write_text(dumps(settings), encoding="utf-8")
    config = load_aggregator_config(path, {})
    assert config.alerts.liveness.quantity_silence_s == 600
    assert config.alerts.liveness.node_silence_s == 12_000
    assert config.alerts.late_after_s == 12_000
    assert config.metrics.port == 9999
