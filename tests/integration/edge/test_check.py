"""`envnet edge check` against a real mosquitto (plain, and with TLS and passwords), and the
command itself as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from edge.broker_probe import probe_broker
from edge.check import (
    CheckReport,
    CheckSettings,
    Probes,
    broker_row,
    render_table,
    run_checks,
    statuses,
)
from edge.clock_sync import ClockSync
from edge.config import EdgeConfig, JournalSection, MqttSection, NodeSection, SensorSection
from schemas.runtime.endpoints import parse_mqtt_url
from simulators.local_stack import Mosquitto, free_port
from tests.support.tls_broker import TlsBroker, make_ca, tls_broker

NOW = 1_796_000_000_000
ENVNET = [sys.executable, "-m", "envnet.cli"]

# -- sensors ------------------------------------------------------------------------------


def broker_status(url: str, ca_file: str | None = None, node: str = "node-x") -> tuple[str, str]:
    row = broker_row(probe_broker(parse_mqtt_url(url), ca_file, node, 5.0))
    return row.status, row.detail


def test_broker_reachable_anonymously_and_down(mosquitto: Mosquitto) -> None:
    status, detail = broker_status(mosquitto.url)
    assert status == "ok" and "anonymously, no TLS" in detail, detail
    status, detail = broker_status(f"mqtt://127.0.0.1:{free_port()}")
    assert status == "fail" and "connection refused" in detail and "broker down" in detail
    status, detail = broker_status(f"mqtts://127.0.0.1:{mosquitto.port}")
    assert status == "fail" and "this port does not speak TLS" in detail


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsBroker]:
    users = {"node-x": "x-secret", "node-y": "y-secret"}
    with tls_broker(tmp_path / "tls", users) as broker:
        yield broker


def test_broker_over_tls_with_the_nodes_credentials(tls: TlsBroker, tmp_path: Path) -> None:
    ca = str(tls.pki.ca_cert)
    status, detail = broker_status(tls.url("node-x"), ca)
    assert status == "ok" and "as 'node-x'" in detail and "TLS verified" in detail

    port = tls.broker.port
    status, detail = broker_status(f"mqtts://node-x:wrong@127.0.0.1:{port}", ca)
    assert status == "fail" and "broker refused the login: not authorised" in detail

    other_ca, _ = make_ca(tmp_path / "other-ca", "some other CA")
    status, detail = broker_status(tls.url("node-x"), str(other_ca))
    assert status == "fail"
    assert "certificate verify failed" in detail and "not signed by the CA in ca_file" in detail

    status, detail = broker_status(tls.url("node-x"), None)  # the system CAs
    assert status == "fail" and "(no ca_file: the system's CAs)" in detail

    status, detail = broker_status(f"mqtts://node-x:x-secret@localhost.invalid:{port}", ca)
    assert status == "fail" and "cannot resolve host 'localhost.invalid'" in detail

    status, detail = broker_status(f"mqtt://node-x:x-secret@127.0.0.1:{port}")
    assert status == "fail" and "if it expects TLS, use mqtts://" in detail

    # Logged in, but as another node: the ACL would drop every reading.
    status, detail = broker_status(tls.url("node-y"), ca, node="node-x")
    assert status == "warn" and "username 'node-y' is not the node id 'node-x'" in detail


# -- clock --------------------------------------------------------------------------------


def config(url: str, tmp_path: Path, ca_file: str | None = None) -> EdgeConfig:
    return EdgeConfig(
        node=NodeSection(id="node-x"),
        sensors=[SensorSection(id="pm", driver="sim-air", options={"seed": 1})],
        mqtt=MqttSection(url=url, ca_file=ca_file),
        journal=JournalSection(path=str(tmp_path / "journal.sqlite")),
    )


def synced() -> ClockSync:
    return ClockSync(True, "timedatectl", 0.01, "chronyc")


def test_report_passes_only_when_no_row_fails(mosquitto: Mosquitto, tmp_path: Path) -> None:
    probes = Probes(clock=synced)
    report = run_checks(config(mosquitto.url, tmp_path), CheckSettings(), NOW, probes)
    assert statuses(report.rows) == {
        "sensor pm": "ok",
        "broker": "ok",
        "clock": "ok",
        "journal": "warn",  # no journal yet: a warning, not a failure
    }
    assert report.ok
    table = render_table(report)
    assert table.splitlines()[1].split() == ["CHECK", "STATUS", "DETAIL"]
    assert table.rstrip().endswith("all checks passed")
    sensor_values = report.rows[0].values
    assert {v.quantity for v in sensor_values} >= {"pm2_5", "pm10"}

    down = config(f"mqtt://127.0.0.1:{free_port()}", tmp_path)
    report = run_checks(down, CheckSettings(sensors=False), NOW, probes)
    assert not report.ok and "sensor pm" not in statuses(report.rows)
    assert render_table(report).rstrip().endswith("some checks FAILED")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENVNET, *args], check=False, capture_output=True, text=True, timeout=60)


def write_toml(path: Path, url: str, journal: Path, ca_file: Path | None, driver: str) -> Path:
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    path.write_text(
        f'[node]\nid = "node-x"\n[mqtt]\nurl = "{url}"\n{ca}'
        f'[journal]\npath = "{journal}"\n'
        f'[[sensors]]\nid = "pm"\ndriver = "{driver}"\noptions = {{ seed = 1 }}\n'
    )
    return path


def test_the_command_exit_status_and_json(tls: TlsBroker, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    ca = tls.pki.ca_cert
    port = tls.broker.port
    good = write_toml(tmp_path / "good.toml", tls.url("node-x"), journal, ca, "sim-air")
    done = run_cli("edge", "check", "--config", str(good), "--json", "--timeout", "5")
    report = msgspec.json.decode(done.stdout, type=CheckReport)
    rows = statuses(report.rows)
    assert rows["sensor pm"] == "ok" and rows["broker"] == "ok"
    # This machine's clock may or may not be synchronised; the exit status follows the rows.
    assert done.returncode == (0 if report.ok else 1), done.stderr

    bad_url = f"mqtts://node-x:Zq9-not-it@127.0.0.1:{port}"
    bad = write_toml(tmp_path / "bad.toml", bad_url, journal, ca, "sim-air")
    done = run_cli("edge", "check", "--config", str(bad), "--json", "--no-sensors")
    assert done.returncode == 1
    broker = next(r for r in json.loads(done.stdout)["rows"] if r["check"] == "broker")
    assert broker["status"] == "fail" and "not authorised" in broker["detail"]
    assert "Zq9-not-it" not in done.stdout + done.stderr  # the password is never shown

    done = run_cli("edge", "check", "--config", str(bad))  # the table
    assert done.returncode == 1 and "broker   " in done.stdout and "FAIL" in done.stdout

    unknown = write_toml(tmp_path / "unknown.toml", tls.url("node-x"), journal, ca, "pms9999")
    done = run_cli("edge", "check", "--config", str(unknown))
    assert done.returncode == 2 and "unknown driver 'pms9999'" in done.stderr
    done = run_cli("edge", "check", "--config", str(tmp_path / "missing.toml"))
    assert done.returncode == 2 and "no such file" in done.stderr
    assert run_cli("edge").returncode == 2  # `envnet edge` still needs --config
