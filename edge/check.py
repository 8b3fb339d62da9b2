"""`envnet edge check --config node.toml`: what a technician needs to know on site.

One row per check, as a table or JSON:
- each sensor: does it answer, and with what values (driver created from node.toml, read
  once with a timeout, closed);
- the broker: reachable with this node's credentials and CA file, or why not, in words;
  with several brokers ([mqtt] urls), one row for each;
- the clock: synchronised, and the offset where chrony can tell it;
- the journal: readings waiting, age of the oldest, size against its bound.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 for a bad
configuration (raised as ConfigError, like every other command).
The probes do the I/O (edge.sensor_probe, edge.broker_probe, edge.clock_sync and the
journal's read-only edge.journal.read_status); the judging and rendering here are pure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import msgspec

from edge.broker_probe import BrokerResult, probe_broker
from edge.clock_sync import ClockSync, read_clock_sync
from edge.config import EdgeConfig, SensorSection
from edge.journal import JournalError, JournalMissingError, JournalStatus, read_status
from edge.sensor_probe import SensorAnswer, plausible, probe_sensor
from schemas.quantities import SPECS
from schemas.runtime.endpoints import MqttEndpoint

Status = Literal["ok", "warn", "fail", "unknown"]

DEFAULT_TIMEOUT_S: Final = 10.0
# Readings are stamped by this clock; 2 s is well inside a 1-minute reporting interval.
DEFAULT_MAX_CLOCK_OFFSET_S: Final = 2.0
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
# A journal past this share of max_bytes is close to dropping readings.
JOURNAL_WARN_FRACTION: Final = 0.8
# A connected node's readings are acknowledged within seconds; readings waiting longer than
# this mean the broker or the aggregator has not been reachable for a while.
BACKLOG_WARN_S: Final = 900
_MIB: Final = 1024 * 1024
_TABLE_WIDTH: Final = 100


class Value(msgspec.Struct, frozen=True):
    quantity: str
    value: float
    unit: str


class CheckRow(msgspec.Struct, frozen=True):
    check: str
    status: Status
    detail: str
    values: list[Value] = []


class CheckReport(msgspec.Struct, frozen=True):
    node: str
    ok: bool
    checked_at: str
    rows: list[CheckRow]


@dataclass(frozen=True, slots=True)
class CheckSettings:
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_clock_offset_s: float = DEFAULT_MAX_CLOCK_OFFSET_S
    sensors: bool = True


@dataclass(frozen=True, slots=True)
class Probes:
    """The I/O, replaceable in tests of the judging."""

    sensor: Callable[[SensorSection, float, int], SensorAnswer] = probe_sensor
    # (endpoint, CA file, node id, timeout): one broker.
    broker: Callable[[MqttEndpoint, str | None, str, float], BrokerResult] = probe_broker
    clock: Callable[[], ClockSync] = read_clock_sync
    journal: Callable[[Path, int], JournalStatus] = read_status


# -- judging (pure) -------------------------------------------------------------------------


def sensor_row(sensor: SensorSection, answer: SensorAnswer, timeout_s: float) -> CheckRow:
    name = f"sensor {sensor.id}"
    if answer.timed_out:
        detail = (
            f"{sensor.driver}: no answer within {timeout_s:g} s (wiring, power, port, baud "
            "rate or address; is the agent running and holding the port?)"
        )
        return CheckRow(name, "fail", detail)
    if answer.error is not None:
        return CheckRow(name, "fail", f"{sensor.driver}: {answer.error}")
    values = [Value(s.quantity, s.value, SPECS[s.quantity].unit) for s in answer.samples]
    if not values:
        return CheckRow(name, "warn", f"{sensor.driver}: answered with no values")
    shown = ", ".join(f"{v.quantity}={v.value:.4g} {v.unit}" for v in values)
    bad = [s for s in answer.samples if not plausible(s)]
    if bad:
        odd = ", ".join(f"{s.quantity}={s.value:g}" for s in bad)
        return CheckRow(name, "warn", f"{sensor.driver}: implausible {odd}; {shown}", values)
    return CheckRow(name, "ok", f"{sensor.driver}: {shown}", values)


def broker_row(result: BrokerResult, name: str = "broker", others_ok: bool = False) -> CheckRow:
    """`others_ok`: another configured broker answered, so the node fails over to it and
    this one failing is a warning."""
    if not result.ok:
        if others_ok:
            return CheckRow(name, "warn", f"{result.detail}; the node uses the other brokers")
        return CheckRow(name, "fail", result.detail)
    if result.warning:
        return CheckRow(name, "warn", f"{result.detail}; {result.warning}")
    return CheckRow(name, "ok", result.detail)


def broker_rows(
    endpoints: Sequence[MqttEndpoint], results: Sequence[BrokerResult]
) -> list[CheckRow]:
    """One row per configured broker: `broker` for one, `broker N host:port` for several
    (N from 1, the first is home)."""
    if len(endpoints) == 1:
        return [broker_row(results[0])]
    any_ok = any(r.ok for r in results)
    return [
        broker_row(result, f"broker {i} {endpoint.display}", others_ok=any_ok)
        for i, (endpoint, result) in enumerate(zip(endpoints, results, strict=True), start=1)
    ]


def clock_row(sync: ClockSync, max_offset_s: float, now_ms: int) -> CheckRow:
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    offset = (
        f"offset {sync.offset_s:.3f} s ({sync.offset_source})"
        if sync.offset_s is not None
        else "offset not measured (chronyc not available)"
    )
    if sync.synchronised is False:
        detail = (
            f"NOT synchronised ({sync.sync_source}); node time {now}: readings get wrong "
            "times and TLS may fail; check network access to NTP (UDP 123)"
        )
        return CheckRow("clock", "fail", detail)
    if sync.offset_s is not None and sync.offset_s > max_offset_s:
        detail = f"synchronised ({sync.sync_source}) but {offset} > {max_offset_s:g} s"
        return CheckRow("clock", "warn", f"{detail}; node time {now}")
    if sync.synchronised is None:
        detail = f"cannot tell whether synchronised (no timedatectl, no adjtimex); {offset}"
        return CheckRow("clock", "unknown", f"{detail}; node time {now}")
    return CheckRow("clock", "ok", f"synchronised ({sync.sync_source}); {offset}; node time {now}")


def _age(ms: int) -> str:
    seconds = max(0, ms // 1000)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def journal_row(path: Path, stats: JournalStatus | None, max_bytes: int, now_ms: int) -> CheckRow:
    """`stats` None: there is no journal file."""
    if stats is None:
        where = "" if path.is_absolute() else " (a relative path: the service resolves it in "
        where += "" if path.is_absolute() else "its WorkingDirectory, /var/lib/envnet)"
        return CheckRow(
            "journal", "warn", f"no journal at {path} yet: the agent has not run{where}"
        )
    size = f"{stats.used_bytes / _MIB:.1f} of {max_bytes / _MIB:.0f} MiB"
    waiting = f"{stats.depth} readings waiting"
    if stats.oldest_age_s is not None:
        waiting += f", oldest {_age(stats.oldest_age_s * 1000)}"
    if stats.last_ack_ms is not None:
        waiting += f", last ack {_age(now_ms - stats.last_ack_ms)} ago"
    detail = f"{waiting}; {size}"
    if stats.used_bytes >= max_bytes:
        return CheckRow("journal", "fail", f"{detail}: full, the oldest readings are dropped")
    problems = []
    if stats.used_bytes >= JOURNAL_WARN_FRACTION * max_bytes:
        problems.append("nearly full")
    if stats.oldest_age_s is not None and stats.oldest_age_s > BACKLOG_WARN_S:
        problems.append("backlog: broker or aggregator not reachable for a while?")
    if stats.dropped_readings:
        problems.append(f"{stats.dropped_readings} readings dropped over its bounds so far")
    if problems:
        return CheckRow("journal", "warn", f"{detail}; " + "; ".join(problems))
    return CheckRow("journal", "ok", detail)


# -- running --------------------------------------------------------------------------------


def run_checks(
    config: EdgeConfig,
    settings: CheckSettings,
    now_ms: int,
    probes: Probes | None = None,
) -> CheckReport:
    """Run every check; raises ConfigError for a driver name or options that are wrong."""
    probes = probes or Probes()
    rows: list[CheckRow] = []
    if settings.sensors:
        for sensor in config.sensors:
            answer = probes.sensor(sensor, settings.timeout_s, now_ms)
            rows.append(sensor_row(sensor, answer, settings.timeout_s))
    endpoints = config.mqtt.endpoints()
    mqtt = config.mqtt
    results = [
        probes.broker(e, mqtt.ca_file, config.node.id, settings.timeout_s) for e in endpoints
    ]
    rows.extend(broker_rows(endpoints, results))
    rows.append(clock_row(probes.clock(), settings.max_clock_offset_s, now_ms))
    rows.append(_journal(config, probes, now_ms))
    return CheckReport(
        node=config.node.id,
        ok=all(row.status != "fail" for row in rows),
        checked_at=datetime.fromtimestamp(now_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        rows=rows,
    )


def _journal(config: EdgeConfig, probes: Probes, now_ms: int) -> CheckRow:
    path = Path(config.journal.path)
    try:
        stats = probes.journal(path, now_ms)
    except JournalMissingError:
        return journal_row(path, None, config.journal.max_bytes, now_ms)
    except JournalError as exc:
        return CheckRow("journal", "fail", f"cannot read: {exc}")
    return journal_row(path, stats, config.journal.max_bytes, now_ms)


def exit_status(report: CheckReport) -> int:
    return EXIT_OK if report.ok else EXIT_FAILED


# -- rendering ------------------------------------------------------------------------------

_LABELS: Final[dict[Status, str]] = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "unknown": "?"}


def render_table(report: CheckReport) -> str:
    width = max([len("CHECK"), *(len(row.check) for row in report.rows)])
    indent = width + 2 + 6 + 2
    lines = [
        f"envnet edge check: node {report.node} at {report.checked_at}",
        f"{'CHECK':<{width}}  {'STATUS':<6}  DETAIL",
    ]
    for row in report.rows:
        wrapped = textwrap.wrap(row.detail, max(40, _TABLE_WIDTH - indent)) or [""]
        lines.append(f"{row.check:<{width}}  {_LABELS[row.status]:<6}  {wrapped[0]}")
        lines.extend(" " * indent + more for more in wrapped[1:])
    lines.append("all checks passed" if report.ok else "some checks FAILED")
    return "\n".join(lines) + "\n"


def render_json(report: CheckReport) -> str:
    return msgspec.json.encode(report).decode() + "\n"


def render(report: CheckReport, as_json: bool) -> str:
    return render_json(report) if as_json else render_table(report)


def statuses(rows: Sequence[CheckRow]) -> dict[str, Status]:
    """check name -> status, for scripts and tests."""
    return {row.check: row.status for row in rows}
