"""`envnet edge check`: every row, passing and failing, against real drivers from the registry,
a real mosquitto (plain and with TLS and passwords), real journals and real commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge.broker_probe import BrokerResult, probe_broker
from edge.check import (
    BACKLOG_WARN_S,
    CheckReport,
    CheckSettings,
    Probes,
    broker_row,
    clock_row,
    render_table,
    run_checks,
    statuses,
)
from edge.clock_sync import ClockSync, adjtimex_synchronised, read_clock_sync
from edge.config import EdgeConfig, JournalSection, MqttSection, NodeSection, SensorSection
from edge.drivers.base import Sample
from edge.drivers.registry import DRIVERS
from edge.journal import Journal
from edge.sensor_probe import probe_sensor
from schemas.messages import Flag, Reading
from schemas.runtime.configfile import ConfigError
from schemas.runtime.endpoints import parse_mqtt_url
from simulators.local_stack import Mosquitto, free_port
from tests.tls_broker import TlsBroker, make_ca, tls_broker

NOW = 1_796_000_000_000
ENVNET = [sys.executable, "-m", "envnet.cli"]

# -- sensors ------------------------------------------------------------------------------


class ImplausibleDriver:
    """Answers with a PM2.5 no instrument can measure."""

    def __init__(self, sensor_id: str, options: Mapping[str, Any]) -> None:
        self.sensor_id = sensor_id
        self.name = "implausible"
        self.flags: tuple[Flag, ...] = ()

    def read(self, at_ms: int) -> Sequence[Sample]:
        return [Sample("pm2_5", 1e9), Sample("pm10", 20.0)]

    def close(self) -> None:
        """Nothing to release."""


class MissingPortDriver:
    """Opens its port in the constructor, as a serial driver does; the port is not there."""

    def __init__(self, sensor_id: str, options: Mapping[str, Any]) -> None:
        self._port = Path(str(options["port"])).open("rb")  # noqa: SIM115 - raises here

    def close(self) -> None:
        self._port.close()


@pytest.fixture
def test_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DRIVERS, "implausible", f"{__name__}:ImplausibleDriver")
    monkeypatch.setitem(DRIVERS, "missing-port", f"{__name__}:MissingPortDriver")
    monkeypatch.setitem(DRIVERS, "wedge", "tests.wedge_edge:WedgeDriver")


def sensor(driver: str, **options: Any) -> SensorSection:
    return SensorSection(id="s1", driver=driver, options=options)


def sensor_status(section: SensorSection, timeout_s: float = 5.0) -> tuple[str, str]:
    from edge.check import sensor_row

    row = sensor_row(section, probe_sensor(section, timeout_s, NOW), timeout_s)
    return row.status, row.detail


def test_a_sensor_that_answers_shows_its_values() -> None:
    status, detail = sensor_status(sensor("sim-met", seed=1))
    assert status == "ok"
    assert detail.startswith("sim-met: air_temp=") and "rh=" in detail and "hPa" in detail


@pytest.mark.usefixtures("test_drivers")
def test_sensor_failures_show_the_error_class_and_message(tmp_path: Path) -> None:
    status, detail = sensor_status(sensor("sim-air", fault_rate=1.0))
    assert status == "fail"
    assert detail.startswith("sim-air: SensorTimeoutError: s1: simulated timeout")

    status, detail = sensor_status(sensor("missing-port", port="/dev/ttyNOPE0"))
    assert (status, detail) == (
        "fail",
        "missing-port: FileNotFoundError: [Errno 2] No such file or directory: '/dev/ttyNOPE0'",
    )

    # The shipped hardware drivers, on a port and a bus that are not there.
    status, detail = sensor_status(sensor("pms5003", port="/dev/ttyNOPE0"))
    assert status == "fail" and detail.startswith("pms5003: SerialPortError: /dev/ttyNOPE0")
    status, detail = sensor_status(sensor("bme280", bus=97))
    assert status == "fail" and detail.startswith("bme280: I2CBusError: /dev/i2c-97")

    status, detail = sensor_status(sensor("implausible"))
    assert status == "warn" and "implausible pm2_5=1e+09" in detail and "pm10=20" in detail

    wedge = tmp_path / "wedge"
    wedge.touch()  # the read blocks until the file goes
    try:
        status, detail = sensor_status(sensor("wedge", wedge_file=str(wedge)), timeout_s=0.5)
    finally:
        wedge.unlink()
    assert status == "fail" and "no answer within 0.5 s" in detail


def test_an_unknown_driver_or_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="unknown driver 'pms9999'"):
        probe_sensor(sensor("pms9999"), 5.0, NOW)
    with pytest.raises(ConfigError, match="bad options for sim-air"):
        probe_sensor(sensor("sim-air", colour="red"), 5.0, NOW)


# -- broker -------------------------------------------------------------------------------


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


def fake_tools(directory: Path, timedatectl: str | None, chronyc: str | None) -> str:
    """A PATH holding only stand-ins for timedatectl and chronyc that print fixed output."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, output in (("timedatectl", timedatectl), ("chronyc", chronyc)):
        if output is not None:
            tool = directory / name
            tool.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\n")
            tool.chmod(0o755)
    return str(directory)


CHRONY = "A29FC87B,ntp.example,3,1795999990.123,{offset},-0.000012,0.000020,-3.1,0.001,0.02,0.01,0.001,64.2,Normal"  # noqa: E501


@pytest.mark.parametrize(
    ("ntp", "offset", "max_offset", "expected"),
    [
        ("yes", "-0.001234567", 2.0, "ok"),
        ("no", "-0.001234567", 2.0, "fail"),
        ("yes", "+3.500000000", 2.0, "warn"),
        ("yes", "+3.500000000", 5.0, "ok"),
        ("yes", None, 2.0, "ok"),
    ],
)
def test_clock_from_timedatectl_and_chronyc(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ntp: str,
    offset: str | None,
    max_offset: float,
    expected: str,
) -> None:
    chrony = None if offset is None else CHRONY.format(offset=offset)
    monkeypatch.setenv("PATH", fake_tools(tmp_path / "bin", ntp, chrony))
    sync = read_clock_sync(kernel=lambda: pytest.fail("adjtimex asked though timedatectl knew"))
    row = clock_row(sync, max_offset, NOW)
    assert row.status == expected, row.detail
    if offset is None:
        assert sync.offset_s is None and "offset not measured" in row.detail
    else:
        assert sync.offset_s == abs(float(offset))


def test_clock_falls_back_to_the_kernel_then_to_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", fake_tools(tmp_path / "bin", None, None))
    sync = read_clock_sync()
    # The real adjtimex(2) answers on Linux, synchronised or not (this machine may be either).
    assert sync.sync_source == "adjtimex" and sync.synchronised == adjtimex_synchronised()
    assert sync.synchronised is not None
    sync = read_clock_sync(kernel=lambda: None)
    assert sync == ClockSync(None, "none", None, None)
    assert clock_row(sync, 2.0, NOW).status == "unknown"


# -- journal ------------------------------------------------------------------------------


def reading(ts: int) -> Reading:
    return Reading(
        ts=ts, quantity="pm2_5", value=12.0, unit="ug/m3", period_s=60, stat="mean", sensor="pm"
    )


# The journal row alone: no sensors, and a broker and clock that are not asked.
CONFIG = EdgeConfig(
    node=NodeSection(id="node-x"), sensors=[SensorSection(id="pm", driver="sim-air")]
)
JOURNAL_ONLY = CheckSettings(sensors=False)
OFFLINE = Probes(
    broker=lambda config, timeout_s: BrokerResult(False, "not asked"),
    clock=lambda: ClockSync(None, "none", None, None),
)


def journal_with(path: Path, readings: int, journaled_ms: int) -> None:
    journal = Journal(path, 10**9, 10**9)
    journal.append([reading(NOW + i) for i in range(readings)], journaled_ms, live=False)
    journal.close()


def journal_status(path: Path, max_bytes: int = 256 * 1024 * 1024) -> tuple[str, str]:
    config = msgspec.structs.replace(
        CONFIG, journal=JournalSection(path=str(path), max_bytes=max_bytes)
    )
    row = next(
        r for r in run_checks(config, JOURNAL_ONLY, NOW, OFFLINE).rows if r.check == "journal"
    )
    return row.status, row.detail


def test_journal_rows(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    status, detail = journal_status(path)
    assert status == "warn" and "no journal" in detail
    assert not path.exists()  # the check does not create one

    journal_with(path, 5, NOW - 30_000)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, detail = journal_status(path)
    assert status == "ok" and detail.startswith("5 readings waiting, oldest 30 s"), detail
    # Opened read-only: no -wal or -shm left behind for the agent's user to trip over.
    assert sorted(p.name for p in tmp_path.iterdir()) == before

    status, detail = journal_status(path, max_bytes=4096)
    assert status == "fail" and "full" in detail

    old = tmp_path / "old.sqlite"
    journal_with(old, 3, NOW - (BACKLOG_WARN_S + 60) * 1000)
    status, detail = journal_status(old)
    assert status == "warn" and "backlog" in detail

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    status, detail = journal_status(garbage)
    assert status == "fail" and detail.startswith("cannot read:")


def test_journal_read_while_the_agent_has_it_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, 10**9, 10**9)
    try:
        journal.append([reading(NOW + i) for i in range(7)], NOW, live=False)
        status, detail = journal_status(path)
        assert status == "ok" and detail.startswith("7 readings waiting"), detail
    finally:
        journal.close()


# -- the whole check ----------------------------------------------------------------------


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
