"""`envnet fleet enrol|list|retire` in temporary directories, the fleet watcher, and the
retirement of a node's alerts in the lifecycle.

The login `enrol` creates is tried on a real mosquitto running the shipped TLS settings
(tests/tls_broker.py): accepted after enrolment, refused after retirement.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path
from typing import Final

import pytest

from aggregator.engine.lifecycle import AlertBook, LifecyclePolicy, PolicyTable
from aggregator.engine.observations import Observation, Rule
from aggregator.fleet import Fleet, NodeInfo, load_fleet
from aggregator.intake.fleet_watch import FleetChange, FleetWatcher, fleet_change
from edge.config import load_edge_config
from envnet.cli import main as envnet
from schemas import topics
from schemas.messages import Location
from tests.support import tls_broker as tls_broker_module
from tests.support.harness import wait_for
from tests.support.tls_broker import connect_result, tls_broker, tls_probe

REPO: Final = Path(__file__).resolve().parents[3]
SHIPPED_FLEET: Final = REPO / "deploy" / "config" / "fleet.toml"
SHIPPED_ACL: Final = REPO / "deploy" / "mosquitto" / "envnet.acl"


def paths(tmp_path: Path) -> list[str]:
    return [
        "--fleet", str(tmp_path / "fleet.toml"),
        "--passwd", str(tmp_path / "envnet.passwd"),
        "--acl", str(tmp_path / "envnet.acl"),
    ]  # fmt: skip


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "fleet.toml").write_text(SHIPPED_FLEET.read_text())
    (tmp_path / "envnet.acl").write_text(SHIPPED_ACL.read_text())
    return tmp_path


ENROL: Final = ["--kind", "air", "--zone", "2", "--kind", "noise", "--zone", "4a",
                "--lat", "31.31", "--lon", "120.62", "--group", "Gusu",
                "--site-type", "roadside", "--site", "Renmin Road"]  # fmt: skip


def enrol(site: Path, node: str, *extra: str) -> int:
    out = ["--out", str(site / f"{node}.node.toml"), "--broker", "broker.test"]
    return envnet(["fleet", "enrol", node, *extra, *paths(site), *out])


def test_enrol_writes_the_inventory_login_acl_and_node_toml(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = SHIPPED_FLEET.read_text()
    assert enrol(site, "sz-gusu-renmin", *ENROL) == 0
    printed = capsys.readouterr()
    # The inventory: the other nodes and comments as they were, the new node appended.
    text = (site / "fleet.toml").read_text()
    assert text.startswith(before)
    info = load_fleet(site / "fleet.toml").get("sz-gusu-renmin")
    assert info == NodeInfo(
        site="Renmin Road",
        location=Location(31.31, 120.62),
        air_zone=2,
        noise_zone="4a",
        group="Gusu",
        site_type="roadside",
        node="sz-gusu-renmin",
    )
    assert len(load_fleet(site / "fleet.toml")) == 4
    # The login: hashed, the password printed once on stdout, never on stderr.
    (entry,) = (site / "envnet.passwd").read_text().splitlines()
    assert entry.startswith("sz-gusu-renmin:$7$")
    (password,) = re.findall(r"mqtts://sz-gusu-renmin:([0-9a-f]{48})@broker.test:8883", printed.out)
    assert password not in printed.err and password not in entry
    # The ACL block.
    acl = (site / "envnet.acl").read_text()
    assert acl.startswith(SHIPPED_ACL.read_text())
    assert "user sz-gusu-renmin\ntopic write envnet/v1/nodes/sz-gusu-renmin/readings\n" in acl
    # The node.toml: loads as an edge configuration, private to its owner.
    node_toml = site / "sz-gusu-renmin.node.toml"
    assert stat.S_IMODE(node_toml.stat().st_mode) == 0o600
    config = load_edge_config(node_toml)
    assert config.node.id == "sz-gusu-renmin"
    assert config.mqtt.url == f"mqtts://sz-gusu-renmin:{password}@broker.test:8883"


def test_list_shows_every_node(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert enrol(site, "sz-gusu-renmin", *ENROL) == 0
    capsys.readouterr()
    assert envnet(["fleet", "list", "--fleet", str(site / "fleet.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "sz-gusu-renmin", "sz-sip-roadside", "sz-taihu-gonghu", "sz-wwtp-odour",
    ]  # fmt: skip
    assert lines[0].split()[1:4] == ["air+noise", "Gusu", "31.31,120.62"]
    assert envnet(["fleet", "list", "--json", "--fleet", str(site / "fleet.toml")]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["node"] == "sz-gusu-renmin" and first["site_type"] == "roadside"
    assert first["location"] == {"lat": 31.31, "lon": 120.62}


def test_retire_undoes_enrol_exactly(site: Path) -> None:
    before = {name: (site / name).read_text() for name in ("fleet.toml", "envnet.acl")}
    assert enrol(site, "sz-gusu-renmin", *ENROL) == 0
    assert enrol(site, "sz-water-1", "--kind", "water", "--zone", "3", "--water-body",
                 "lake", "--lat", "31", "--lon", "120") == 0  # fmt: skip
    assert envnet(["fleet", "retire", "sz-gusu-renmin", *paths(site)]) == 0
    assert envnet(["fleet", "retire", "sz-water-1", *paths(site)]) == 0
    assert {name: (site / name).read_text() for name in before} == before
    assert (site / "envnet.passwd").read_text() == ""
    # A shipped node too (its comment lines go with it); the others stay.
    assert envnet(["fleet", "retire", "sz-wwtp-odour", *paths(site)]) == 0
    fleet = load_fleet(site / "fleet.toml")
    assert sorted(i.node for i in fleet) == ["sz-sip-roadside", "sz-taihu-gonghu"]


@pytest.mark.parametrize(
    ("node", "args", "message"),
    [
        ("Bad Id", ENROL, "is not a node id"),
        ("envnet-aggregator", ENROL, "reserved for envnet's services"),
        ("n1", ["--kind", "air", "--zone", "3", "--lat", "1", "--lon", "1"], "not one of 1, 2"),
        ("n1", ["--kind", "noise", "--zone", "5", "--lat", "1", "--lon", "1"], "not one of"),
        ("n1", ["--kind", "odour", "--zone", "II", "--lat", "1", "--lon", "1"], "not one of"),
        ("n1", ["--kind", "water", "--zone", "3", "--lat", "1", "--lon", "1"], "--water-body"),
        ("n1", ["--kind", "air", "--kind", "noise", "--zone", "2", "--lat", "1", "--lon", "1"],
         "one zone per kind"),
        ("n1", ["--kind", "air", "--zone", "2", "--lat", "91", "--lon", "1"], "not a position"),
        ("n1", [*ENROL[:-1], "bad\\site"], "does not load"),
        ("sz-wwtp-odour", ENROL, "already in"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_changes_nothing(
    site: Path, capsys: pytest.CaptureFixture[str], node: str, args: list[str], message: str
) -> None:
    before = {p.name: p.read_text() for p in site.iterdir()}
    assert enrol(site, node, *args) == 2
    assert message in capsys.readouterr().err
    assert {p.name: p.read_text() for p in site.iterdir()} == before


def test_retiring_an_unknown_node_exits_2(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envnet(["fleet", "retire", "nobody", *paths(site)]) == 2
    assert "nobody is not in" in capsys.readouterr().err


def test_the_enrolled_login_and_acl_work_on_the_shipped_tls_broker_until_retired(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker runs the ACL that enrol edits (a copy of the shipped one) and re-reads it
    and the password file on SIGHUP, as `systemctl reload mosquitto` does."""
    monkeypatch.setattr(tls_broker_module, "ACL", site / "envnet.acl")
    with tls_broker(tmp_path / "tls", {"envnet-aggregator": "agg-secret"}) as tb:
        passwd = tb.broker.passwd_files[0]
        args = [*ENROL, "--out", str(site / "n.toml")]
        common = ["--fleet", str(site / "fleet.toml"), "--passwd", str(passwd)]
        acl = ["--acl", str(site / "envnet.acl")]
        assert envnet(["fleet", "enrol", "sz-new", *args, *common, *acl]) == 0
        url = load_edge_config(site / "n.toml").mqtt.url
        assert url is not None
        password = url.split(":")[2].split("@")[0]
        assert tb.broker.pid is not None
        os.kill(tb.broker.pid, signal.SIGHUP)  # systemctl reload mosquitto
        wait_for(lambda: connect_result(tb, "sz-new", password).value == 0, 20, "the login")
        # Its readings reach the aggregator through the edited ACL.
        tb.passwords["sz-new"] = password
        aggregator = tls_probe(tb, "envnet-aggregator", [topics.readings("sz-new")])
        node = tls_probe(tb, "sz-new", [])
        try:
            node.client.publish(topics.readings("sz-new"), b"{}", qos=1).wait_for_publish(10)
            wait_for(lambda: bool(aggregator.on(lambda t: True)), 20, "the node's message")
        finally:
            node.stop()
            aggregator.stop()
        assert envnet(["fleet", "retire", "sz-new", *common, *acl]) == 0
        os.kill(tb.broker.pid, signal.SIGHUP)
        wait_for(lambda: connect_result(tb, "sz-new", password).value != 0, 20, "the refusal")


# -- the watcher and the lifecycle ----------------------------------------------------------


def test_the_watcher_reloads_changes_refuses_broken_files_and_reloads_on_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(SHIPPED_FLEET.read_text())
    in_force = [load_fleet(path)]
    outcomes: list[str] = []

    def apply(fleet: Fleet) -> FleetChange:
        change = fleet_change(in_force[-1], fleet)
        in_force.append(fleet)
        return change

    watcher = FleetWatcher(path, 1.0, apply, outcomes.append)
    assert watcher.check(forced=False) == "unchanged"
    path.write_text(path.read_text() + '\n[nodes.extra]\nsite = "Extra"\nair_zone = 1\n')
    assert watcher.check(forced=False) == "reloaded"
    assert "extra" in in_force[-1]
    path.write_text(path.read_text() + "\n[nodes.broken]\nair_zone = 7\n")
    assert watcher.check(forced=False) == "refused"
    assert watcher.check(forced=False) == "unchanged"  # reported once, not every poll
    assert len(in_force) == 2 and "extra" in in_force[-1]
    path.write_bytes(b"\xff\xfe[nodes")  # not UTF-8
    assert watcher.check(forced=False) == "refused"
    path.unlink()
    assert watcher.check(forced=True) == "refused"
    path.write_text(SHIPPED_FLEET.read_text())
    assert watcher.check(forced=True) == "reloaded"
    assert "extra" not in in_force[-1]
    change = fleet_change(in_force[1], in_force[2])
    assert change.retired == ("extra",) and change.added == ()


def test_a_retired_node_resolves_its_firing_alerts_and_forgets_its_tracks() -> None:
    rule = Rule("odour.h2s", "exceedance", "warning", "h2s", "GB 14554-93", "Table 1", 60)
    info = NodeInfo(site="Plant", node="n1")

    def obs(node: str, value: float, at_ms: int, late: bool = False) -> Observation:
        return Observation(rule, node, exceeded=value > 60, value=value, limit=60.0,
                           at_ms=at_ms, late=late, message="m", cleared=value <= 54)  # fmt: skip

    book = AlertBook(PolicyTable(LifecyclePolicy(0, 0, 0), {}))
    assert book.apply(obs("n1", 80, 10_000), info, 1) is not None
    assert book.apply(obs("n1", 90, 2_000, late=True), info, 1) is not None  # a late episode
    assert book.apply(obs("n2", 80, 10_000), NodeInfo(site="Other", node="n2"), 1) is not None
    book.take_dirty()
    retired = book.retire("n1", "node n1 retired from the inventory", 50_000)
    assert [(t.event, t.alert.late, t.at_ms) for t in retired] == [
        ("resolved", False, 50_000),
        ("resolved", True, 50_000),
    ]
    assert all(t.alert.message == "node n1 retired from the inventory; m" for t in retired)
    assert [a.node for a in book.firing()] == ["n2"]
    # Deleted from the state store: no track left in either lane.
    assert book.take_dirty() == {("n1", "odour.h2s"): (None, None)}
    assert book.retire("n1", "again", 60_000) == []
