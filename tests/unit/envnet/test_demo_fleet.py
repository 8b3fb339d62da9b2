"""`envnet demo --fleet FILE`: the demo runs a fleet file's nodes instead of the built-in
city, and a bad file stops it before anything starts (a configuration error, exit 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from envnet.cli import build_parser
from envnet.demo import fleet_arguments, fleet_size
from schemas.runtime.configfile import ConfigError

WUXI = Path(__file__).resolve().parents[3] / "simulators" / "fleets" / "wuxi.toml"


def demo_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["demo", *argv])


def test_the_city_by_default_and_a_fleet_file_when_given() -> None:
    city = fleet_arguments(demo_args(), Path("/j"), Path("/i.toml"))
    assert city[:4] == ["sim", "fleet", "--nodes", "10"]
    own = fleet_arguments(demo_args("--fleet", str(WUXI)), Path("/j"), Path("/i.toml"))
    assert own[:4] == ["sim", "fleet", "--fleet", str(WUXI)]
    assert "--nodes" not in own and own[-2:] == ["--inventory", "/i.toml"]
    assert fleet_size(demo_args("--fleet", str(WUXI))) == 8
    assert fleet_size(demo_args("--nodes", "3")) == 3


def test_a_bad_fleet_file_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.toml"
    bad.write_text('[fleet]\nid = "x"\n[[node]]\nid = "a"\nkind = "smell"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="smell"):
        fleet_size(demo_args("--fleet", str(bad)))
    with pytest.raises(ConfigError, match=r"no such file|cannot read"):
        fleet_size(demo_args("--fleet", str(tmp_path / "absent.toml")))


def test_nodes_and_fleet_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo_args("--nodes", "3", "--fleet", str(WUXI))
    assert exit_info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
