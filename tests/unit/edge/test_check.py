"""`envnet edge check`: every row, passing and failing, against real drivers from the registry,
real journals and stand-in clock tools. The broker rows and the command as a subprocess, on a
real mosquitto: tests/integration/edge/test_check.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge.broker_probe import BrokerResult
from edge.check import (
    BACKLOG_WARN_S,
    CheckSettings,
    Probes,
    clock_row,
    run_checks,
)
from edge.clock_sync import ClockSync, adjtimex_synchronised, read_clock_sync
from edge.config import EdgeConfig, JournalSection, MqttSection, NodeSection, SensorSection
from edge.drivers.base import Sample
from edge.drivers.registry import DRIVERS
from edge.journal import Journal
from edge.sensor_probe import probe_sensor
from schemas.messages import Flag, Reading
from schemas.runtime.configfile import ConfigError

NOW = 1_796_000_000_000


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
    monkeypatch.setitem(DRIVERS, "wedge", "tests.support.wedge_edge:WedgeDriver")


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
    broker=lambda endpoint, ca_file, node, timeout_s: BrokerResult(False, "not asked"),
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


# -- several brokers ---------------------------------------------------------------------


def broker_statuses(urls: Sequence[str], up: set[str]) -> tuple[dict[str, str], list[str]]:
    """Rows for node.toml [mqtt] urls, with the brokers in `up` answering; and who was asked."""
    asked: list[str] = []

    def probe(endpoint: Any, ca_file: str | None, node: str, timeout_s: float) -> BrokerResult:
        asked.append(endpoint.display)
        ok = endpoint.display in up
        return BrokerResult(ok, f"{'connected to' if ok else 'refused by'} {endpoint.display}")

    config = msgspec.structs.replace(CONFIG, mqtt=MqttSection(urls=tuple(urls)))
    probes = Probes(broker=probe, clock=lambda: ClockSync(None, "none", None, None))
    rows = run_checks(config, JOURNAL_ONLY, NOW, probes).rows
    return {r.check: r.status for r in rows if r.check.startswith("broker")}, asked


def test_every_configured_broker_is_probed_and_reported() -> None:
    urls = ["mqtt://a:1883", "mqtt://b:1884", "mqtt://c:1885"]
    statuses, asked = broker_statuses(urls, up={"mqtt://a:1883", "mqtt://b:1884", "mqtt://c:1885"})
    assert asked == urls
    assert statuses == {
        "broker 1 mqtt://a:1883": "ok",
        "broker 2 mqtt://b:1884": "ok",
        "broker 3 mqtt://c:1885": "ok",
    }
    # One down while others answer: a warning (the node fails over); all down: failures.
    statuses, _ = broker_statuses(urls, up={"mqtt://c:1885"})
    assert list(statuses.values()) == ["warn", "warn", "ok"]
    statuses, _ = broker_statuses(urls, up=set())
    assert list(statuses.values()) == ["fail", "fail", "fail"]
    # One broker keeps its row name "broker"
    assert broker_statuses(["mqtt://a:1883"], up=set())[0] == {"broker": "fail"}
