"""The `envnet` command as a user runs it, as a subprocess: SIGTERM and the last will, bad
arguments, a closed pipe. Help and config errors in this process: tests/unit/envnet/test_cli.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import codec
from simulators.local_stack import Mosquitto
from tests.support.harness import MqttProbe, wait_for
from tests.unit.simulators.test_replay_csv import HEADER, row

ENVNET = [sys.executable, "-m", "envnet.cli"]
ROOT = Path(__file__).resolve().parents[3]


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
    wait_for(lambda: statuses(probe)[-1] == ("offline", "shutdown"), 30, "shutdown status")
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
    wait_for(lambda: statuses(probe)[-1] == ("offline", "lost"), 60, "last will")
    late = MqttProbe(mosquitto.port, ["envnet/v1/nodes/cli-node/status"]).start()
    wait_for(lambda: bool(late.on(lambda t: True)), 30, "retained status")
    assert codec.STATUS.decode(late.on(lambda t: True)[-1]).state == "offline"
    late.stop()
    probe.stop()


# -- bad arguments: a message and exit status 2, never a traceback -------------------------------


def _replay(csv: Path, *extra: str) -> list[str]:
    return ["sim", "replay-csv", str(csv), "--mqtt-url", "mqtt://127.0.0.1:1", "--linger", "0",
            *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node", "BAD_ID"], "argument --node: 'BAD_ID' is not an id"),
        (["--node", "n1", "--sensor", "a b"], "argument --sensor: 'a b' is not an id"),
        (["--node", "n1", "--from", "yesterday"], "argument --from: 'yesterday' is not a date"),
        (
            ["--node", "n1", "--from", "2013-03-05", "--to", "2013-03-02"],
            "--from 2013-03-05 is after --to 2013-03-02",
        ),
        (["--node", "n1", "--speed", "0"], "argument --speed: must be > 0"),
        (["--node", "n1", "--linger", "-1"], "argument --linger: must be >= 0"),
    ],
)
def test_replay_csv_refuses_bad_arguments(tmp_path: Path, argv: list[str], message: str) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text(f"{HEADER}\n{row(1, 0)}\n{row(2, 1)}\n", encoding="utf-8")
    journal = ["--journal", str(tmp_path / "journal.sqlite")]
    result = _run_cli([*_replay(csv, *journal), *argv], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "journal.sqlite").exists(), "it ran"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sim", "fleet", "--start", "yesterday"], "argument --start: 'yesterday' is not an ISO"),
        (["sim", "fleet", "--report-interval", "0"], "argument --report-interval: must be > 0"),
        (["sim", "fleet", "--report-interval", "-5"], "argument --report-interval: must be > 0"),
        (["sim", "fleet", "--nodes", "0"], "argument --nodes: must be > 0"),
        (["sim", "fleet", "--accel", "nan"], "argument --accel: must be a finite number"),
        (["sim", "fleet", "--duration", "-1"], "argument --duration: must be >= 0"),
        (["demo", "--nodes", "0"], "argument --nodes: must be > 0"),
        (["alerts", "list", "--timeout", "-1"], "argument --timeout: must be > 0"),
        (["sim", "devices", "--config", "d.toml", "--duration", "-1"], "must be >= 0"),
    ],
)
def test_commands_refuse_bad_numbers_and_times(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    result = _run_cli(
        [
            *argv,
            *(["--state-dir", str(tmp_path / "fleet")] if argv[:2] == ["sim", "fleet"] else []),
        ],
        cwd=tmp_path,
        env={"ENVNET_MQTT_URL": "mqtt://127.0.0.1:1"},
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "fleet").exists(), "it ran"


def _run_cli(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENVNET, *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- output to a closed pipe (`envnet alerts list --json | head`) ----------------------------------


def _with_closed_stdout(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a command whose stdout's reader has already gone, as `| head` leaves it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.run(
            [*ENVNET, *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    return process.returncode, process.stderr.decode()


def test_alerts_list_into_a_closed_pipe_exits_quietly(mosquitto: Mosquitto) -> None:
    code, err = _with_closed_stdout(
        ["alerts", "list", "--json"], {"ENVNET_MQTT_URL": mosquitto.url}
    )
    assert (code, err) == (1, "")


def test_any_command_into_a_closed_pipe_exits_quietly() -> None:
    code, err = _with_closed_stdout(["standards", "aqi", "--pm2_5", "80", "--json"], {})
    assert (code, err) == (1, "")
