"""The alerting side closes windows no newer reading closes: on its wall-clock tick after the
allowed lateness, on a node's offline status, on a status saying its journal is empty; and
it closes late episodes in event time. Alerting itself, in this process, with its sinks."""

from __future__ import annotations

import logging
import time

import msgspec
import pytest

from aggregator.config import AlertsSection
from aggregator.engine.lifecycle import Transition
from aggregator.engine.windows import WindowSettings
from aggregator.fleet import Fleet, NodeInfo
from aggregator.metrics import Metrics
from aggregator.worker.alerting import Alerting
from schemas.messages import STATUS_SCHEMA, JournalHealth, Reading, StatusMessage

HOUR = 3_600_000
DAY = 24 * HOUR
SUZHOU_OFFSET = 8 * HOUR  # the fleet's alerts.utc_offset_h: local days end at 16:00 UTC


def local_noon_before(now_ms: int) -> int:
    """The latest local noon at or before `now_ms`: data ending then never straddles the
    local midnight that closes a daily window, whatever hour the suite runs at."""
    local = now_ms + SUZHOU_OFFSET
    return local - (local - DAY // 2) % DAY - SUZHOU_OFFSET


FLEET = Fleet({"n": NodeInfo(site="x", air_zone=2)})


class Sinks:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.transitions: list[Transition] = []

    def windows(self, kind: str) -> list[str]:
        return [x for x in self.lines if x.startswith("windows,") and f",window={kind} " in x]


def alerting(**windows: int) -> tuple[Alerting, Sinks]:
    sinks = Sinks()
    settings = AlertsSection(windows=msgspec.structs.replace(WindowSettings(), **windows))
    a = Alerting(settings, FLEET, Metrics(), sinks.lines.extend, sinks.transitions.append)
    return a, sinks


def pm(ts: int, value: float = 30.0) -> Reading:
    return Reading(
        ts=ts, quantity="pm2_5", value=value, unit="ug/m3", period_s=3600, stat="mean",
        sensor="ref",
    )  # fmt: skip


def last_hours(a: Alerting, hours: int) -> int:
    """A live hourly analyser: its readings up to the last clock hour; returns that hour."""
    wall = time.time_ns() // 1_000_000
    end = wall - wall % HOUR
    info = FLEET.get("n")
    assert info is not None
    a.stored(info, [pm(end - (hours - i) * HOUR) for i in range(hours)], backlog=False)
    return end


def status(state: str, depth: int | None = None) -> StatusMessage:
    journal = None if depth is None else JournalHealth(depth=depth)
    # The node's ts is years off: the aggregator's arrival time is what counts.
    return StatusMessage(
        STATUS_SCHEMA,
        "n",
        "offline" if state == "offline" else "online",
        ts=946_684_800_000,
        reason="lost" if state == "offline" else None,
        journal=journal,
    )


def test_the_tick_closes_a_quiet_node_s_last_hour_after_the_lateness() -> None:
    a, sinks = alerting(close_after_s=300)
    end = last_hours(a, 3)
    assert [x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")] == []
    stored_at = time.time_ns() // 1_000_000
    a.tick(stored_at + 300_000 - 1_000, intake_live=True)  # not over yet in its clock
    assert [x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")] == []
    a.tick(stored_at + 301_000, intake_live=True)
    assert len([x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")]) == 1
    a.tick(stored_at + 302_000, intake_live=True)
    assert len([x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")]) == 1


def test_our_own_outage_holds_the_closing_back() -> None:
    a, sinks = alerting(close_after_s=300)
    end = last_hours(a, 3)
    later = time.time_ns() // 1_000_000 + 3_600_000
    a.tick(later, intake_live=False)  # readings may be waiting at the broker
    a.tick(later + 1_000, intake_live=True)
    assert [x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")] == []


def test_an_offline_status_closes_at_once() -> None:
    a, sinks = alerting()
    end = last_hours(a, 3)
    a.status(status("offline"), time.time_ns() // 1_000_000)
    assert len([x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")]) == 1


def test_a_status_with_an_empty_journal_closes_at_once_and_a_busy_one_does_not() -> None:
    a, sinks = alerting()
    end = last_hours(a, 3)
    a.status(status("online", depth=12), time.time_ns() // 1_000_000)
    a.status(status("online"), time.time_ns() // 1_000_000)
    assert [x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")] == []
    a.status(status("online", depth=0), time.time_ns() // 1_000_000)
    assert len([x for x in sinks.windows("1h") if x.endswith(f" {end - HOUR}")]) == 1


def test_a_drained_backlog_closes_its_open_late_episodes_where_their_data_ended() -> None:
    a, sinks = alerting()
    info = FLEET.get("n")
    assert info is not None
    wall = local_noon_before(time.time_ns() // 1_000_000)
    end = wall - wall % HOUR
    # After an outage: 26 hours of haze from the journal, still going when the backlog ends.
    a.stored(info, [pm(end - 30 * HOUR + i * HOUR, 500.0) for i in range(26)], backlog=True)
    fired = {t.alert.rule for t in sinks.transitions if t.event == "fired"}
    assert fired and all(t.alert.late for t in sinks.transitions)
    a.tick(wall + 10 * 86_400_000, intake_live=True)  # the wall clock closes nothing late
    assert not [t for t in sinks.transitions if t.event == "resolved"]
    a.status(status("online", depth=0), wall)
    closed = [t for t in sinks.transitions if t.event == "resolved"]
    assert {t.alert.rule for t in closed} == fired
    assert all(t.alert.late and "backlog ended while exceeding" in t.alert.message for t in closed)
    assert all(t.at_ms <= end - 4 * HOUR for t in closed)  # where the backlog's data ended


def test_readings_from_the_future_are_counted_and_warned_about_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sinks = Sinks()
    metrics = Metrics()
    a = Alerting(AlertsSection(), FLEET, metrics, sinks.lines.extend, sinks.transitions.append)
    info = FLEET.get("n")
    assert info is not None
    wall = time.time_ns() // 1_000_000
    ahead = wall - wall % HOUR + 3 * HOUR  # past max_future_s (1 h): a node clock fault
    with caplog.at_level(logging.WARNING, logger="aggregator.worker.alerting"):
        a.stored(info, [pm(ahead), pm(ahead + HOUR)], backlog=False)
        a.stored(info, [pm(ahead + 2 * HOUR)], backlog=False)
    warnings = [r for r in caplog.records if r.getMessage().startswith("future_readings")]
    assert len(warnings) == 1
    a.update_gauges()
    counted = metrics.registry.get_sample_value("envnet_window_readings_total", {"kind": "future"})
    assert counted == 3
    assert sinks.lines == [] and sinks.transitions == []


def test_a_status_counts_when_it_arrived_not_by_the_node_s_own_clock() -> None:
    """A 60x simulator stamps its heartbeat hours ahead: taken at its word, the node would
    be heard from in the future and never found silent."""
    a, sinks = alerting()
    info = FLEET.get("n")
    assert info is not None
    wall = time.time_ns() // 1_000_000
    a.heard(info, [pm(wall - HOUR)], wall)
    ahead = StatusMessage(STATUS_SCHEMA, "n", "online", ts=wall + 10 * HOUR)
    a.status(ahead, wall + 1_000)
    a.tick(wall + 1_000 + 300_000, intake_live=True)
    assert [t.alert.rule for t in sinks.transitions if t.event == "fired"] == []
    a.tick(wall + 1_000 + 3 * HOUR + 1_000, intake_live=True)  # 3 periods of its 1-h data
    fired = [t.alert.rule for t in sinks.transitions if t.event == "fired"]
    assert fired == ["liveness.node"]
