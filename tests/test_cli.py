"""The `envnet` command as a user runs it: help, config errors, SIGTERM and the last will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from envnet.cli import main
from envnet.services import Mosquitto
from schemas import codec
from tests.harness import MqttProbe, wait_for

ENVNET = [sys.executable, "-m", "envnet.cli"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["edge"],
        ["aggregator"],
        ["sim"],
        ["sim", "fleet"],
        ["sim", "replay-csv"],
        ["sim", "devices"],
        ["demo"],
        ["grafana", "push"],
        ["standards"],
        ["standards", "aqi"],
        ["standards", "water"],
        ["standards", "noise"],
        ["standards", "odour"],
        ["alerts"],
        ["alerts", "list"],
        ["alerts", "ack"],
        ["edge", "check"],
        ["edge", "status"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert "usage: envnet" in capsys.readouterr().out


def test_config_error_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nid = "n1"\n[[sensors]]\nid = "pm"\ndriver = "pms9999"\n')
    assert main(["edge", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "unknown driver 'pms9999'" in err
    assert main(["edge", "--config", str(tmp_path / "missing.toml")]) == 2


def node_toml(tmp_path: Path, mqtt_url: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f"""
[node]
id = "cli-node"
[mqtt]
url = "{mqtt_url}"
keepalive_s = 2
status_interval_s = 1
[sampling]
sample_interval_s = 0.2
report_interval_s = 1
[journal]
path = "{tmp_path / "journal.sqlite"}"
[[sensors]]
id = "pm"
driver = "sim-air"
options = {{ seed = 3 }}
""")
    return path


def statuses(probe: MqttProbe) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for payload in probe.on(lambda t: t == "envnet/v1/nodes/cli-node/status"):
        status = codec.STATUS.decode(payload)
        out.append((status.state, status.reason))
    return out


def start_edge(tmp_path: Path, mosquitto: Mosquitto) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ENVNET_MQTT_URL": mosquitto.url}
    return subprocess.Popen(
        [*ENVNET, "edge", "--config", str(node_toml(tmp_path, "mqtt://x"))],
        env=env,
        stderr=subprocess.PIPE,
    )


def test_sigterm_stops_the_edge_cleanly_with_an_offline_status(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/cli-node/#"]).start()
    edge = start_edge(tmp_path, mosquitto)  # ENVNET_MQTT_URL overrides the file's bogus URL
    try:
        wait_for(lambda: ("online", None) in statuses(probe), 20, "online status")
        wait_for(lambda: bool(probe.on(lambda t: t.endswith("/readings"))), 20, "readings")
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(timeout=20) == 0
    finally:
        edge.kill()
    wait_for(lambda: statuses(probe)[-1] == ("offline", "shutdown"), 10, "shutdown status")
    probe.stop()


def test_a_killed_edge_is_announced_offline_by_its_last_will(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/cli-node/status"]).start()
    edge = start_edge(tmp_path, mosquitto)
    try:
        wait_for(lambda: ("online", None) in statuses(probe), 20, "online status")
        edge.kill()  # SIGKILL: no chance to say goodbye
        edge.wait(timeout=10)
    finally:
        edge.kill()
    # The broker sends the will after 1.5 x keepalive (2 s) without traffic.
    wait_for(lambda: statuses(probe)[-1] == ("offline", "lost"), 15, "last will")
    late = MqttProbe(mosquitto.port, ["envnet/v1/nodes/cli-node/status"]).start()
    wait_for(lambda: bool(late.on(lambda t: True)), 10, "retained status")
    assert codec.STATUS.decode(late.on(lambda t: True)[-1]).state == "offline"
    late.stop()
    probe.stop()
