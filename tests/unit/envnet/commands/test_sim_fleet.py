"""`envnet sim fleet`'s choice of fleet: the city (optionally renamed), or a file; mixing
the two is a usage error."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from envnet.commands.sim_fleet import add_fleet_arguments, chosen_fleet
from schemas.runtime.configfile import ConfigError

EXAMPLE = Path(__file__).resolve().parents[4] / "simulators" / "fleets" / "wuxi.toml"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_fleet_arguments(parser)
    return parser.parse_args(argv)


def test_the_city_by_default_and_renamed_by_fleet_id() -> None:
    fleet_id, nodes = chosen_fleet(parse(), 0)
    assert fleet_id == "" and len(nodes) == 10 and nodes[0].node == "sz-sip-roadside"
    fleet_id, nodes = chosen_fleet(parse("--fleet-id", "b", "--nodes", "2"), 0)
    assert fleet_id == "b" and [n.node for n in nodes] == ["b-sz-sip-roadside", "b-sz-gusu-oldtown"]


def test_a_fleet_file_with_its_seed_or_the_given_one() -> None:
    fleet_id, nodes = chosen_fleet(parse("--fleet", str(EXAMPLE)), 0)
    assert fleet_id == "wuxi" and nodes[0].sensors[0].options["seed"] == 3000
    _, nodes = chosen_fleet(parse("--fleet", str(EXAMPLE), "--seed", "9"), 0)
    assert nodes[0].sensors[0].options["seed"] == 9000


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--fleet", str(EXAMPLE), "--fleet-id", "x"], "not with --fleet"),
        (["--fleet", str(EXAMPLE), "--nodes", "3"], "not with --fleet"),
        (["--fleet", "/nonexistent/fleet.toml"], "no such file"),
        (["--fleet-id", "a" * 60], "too long"),
    ],
)
def test_bad_choices_are_configuration_errors(argv: list[str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        chosen_fleet(parse(*argv), 0)
