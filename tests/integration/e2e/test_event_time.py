"""Replays on real mosquitto, influxd, edge agent and aggregator, judged in event time: the
replay's last day is closed and stored, and historical data raises no live liveness alert.

The CSV is written here in the PRSA format of ../shared/data (same header and conventions),
so these tests run without the shared data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import pytest

from aggregator.config import AggregatorConfig
from aggregator.fleet import Fleet, NodeInfo
from schemas import codec, topics
from schemas.messages import STATUS_SCHEMA, AlertEvent, StatusMessage
from simulators.local_stack import Influxd, Mosquitto, influx_query
from simulators.replay_csv import COLUMNS, local_hour_to_utc_ms
from tests.support.harness import MqttProbe, aggregator_config, count, publisher, running_aggregator
from tests.support.harness import wait_for as wait_until

NODE = "bj-aoti"
BARRIER = "bj-probe"  # a second node whose own alert marks "the aggregator got this far"
FLEET = Fleet(
    {
        NODE: NodeInfo(site="Beijing Aotizhongxin", air_zone=2),
        BARRIER: NodeInfo(site="Barrier", air_zone=2),
    }
)
DAY_1 = date(2013, 3, 1)
EVENTS = topics.ALERT_EVENTS


def prsa_csv(path: Path, first: date, days: int, co_missing_hours: range = range(0)) -> Path:
    """A PRSA hourly file: `days` whole local days from `first`, CO 'NA' in the given hours
    (counted from the first row), a haze in the afternoons."""
    lines = [",".join(f'"{c}"' for c in COLUMNS)]  # quoted, as in the real files
    for n in range(days * 24):
        day, hour = first + timedelta(days=n // 24), n % 24
        pm25 = 40 + 8 * hour if hour < 18 else 90
        co = "NA" if n in co_missing_hours else str(800 + 20 * hour)
        row = [
            n + 1, day.year, day.month, day.day, hour, pm25, pm25 + 30, 12, 45, co, 60,
            4.5, 1021.0, -12.0, 0, '"NNW"', 2.1, '"Aotizhongxin"',
        ]  # fmt: skip
        lines.append(",".join(str(v) for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replay(
    csv: Path, mosquitto: Mosquitto, journal: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """`envnet sim replay-csv` (original timestamps unless `options` say otherwise), as a user
    runs it; returns when the replay has ended (every reading acknowledged, offline status
    sent)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "envnet.cli",
            "sim",
            "replay-csv",
            str(csv),
            "--node",
            NODE,
            "--speed",
            "720000",
            "--journal",
            str(journal),
            *options,
        ],
        env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def day_start_ms(day: date) -> int:
    return local_hour_to_utc_ms(day.year, day.month, day.day, 0)


def test_a_replay_closes_and_stores_both_days_including_the_last(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    csv = prsa_csv(tmp_path / "PRSA_Data_Test.csv", DAY_1, days=2)
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    with running_aggregator(config, FLEET):
        result = replay(csv, mosquitto, tmp_path / "replay.sqlite")
        assert result.returncode == 0, result.stderr[-2000:]
        daily = "SELECT count(value) FROM windows WHERE \"window\"='24h' AND quantity='pm2_5'"
        day_aqi = "SELECT count(aqi) FROM aqi WHERE report='day'"

        def both_days() -> bool:
            return count(influxd, daily) == 2 and count(influxd, day_aqi) == 2

        # The last day closes on the replay's offline status, not on a later reading.
        wait_until(both_days, 90, "both days' daily windows and daily AQI in InfluxDB")
    starts = {day_start_ms(DAY_1), day_start_ms(DAY_1 + timedelta(days=1))}
    rows = influx_rows(
        influxd, "SELECT value, valid, revision FROM windows WHERE \"window\"='24h' "
        "AND quantity='pm2_5'",
    )  # fmt: skip
    assert {row[0] for row in rows} == starts
    # Each day closed once, complete (24 valid hours), not revised.
    assert all(row[2] is True and row[3] is False for row in rows)
    assert {row[0] for row in influx_rows(influxd, "SELECT aqi FROM aqi WHERE report='day'")} == (
        starts
    )


def influx_rows(influxd: Influxd, query: str) -> list[list[object]]:
    result = influx_query(influxd.url, query, "envnet")
    series = result["results"][0].get("series", [])  # type: ignore[index]
    return [list(v) for s in series for v in s["values"]]


@pytest.fixture
def watcher(mosquitto: Mosquitto) -> Iterator[MqttProbe]:
    probe = MqttProbe(mosquitto.port, [EVENTS, topics.ALERTS_FILTER])
    yield probe.start()
    probe.stop()


def quick_liveness(config: AggregatorConfig) -> AggregatorConfig:
    alerts = config.alerts
    liveness = msgspec.structs.replace(alerts.liveness, check_interval_s=0.2)
    return msgspec.structs.replace(
        config, alerts=msgspec.structs.replace(alerts, liveness=liveness)
    )


def barrier(client: mqtt.Client) -> None:
    """The barrier node comes online, then loses its connection: its liveness.node fires at
    the first check after both statuses arrived, so once that alert is seen, everything
    sent before (the replay's last status) has been judged too."""
    for state in ("online", "offline"):
        status = StatusMessage(
            STATUS_SCHEMA, BARRIER, state, reason="lost" if state == "offline" else None
        )
        info = client.publish(topics.status(BARRIER), codec.STATUS.encode(status), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()


def test_a_replay_of_old_data_raises_no_live_liveness_alert(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, watcher: MqttProbe
) -> None:
    # March 2013 with its original timestamps, and a CO analyser out for 33 hours.
    csv = prsa_csv(tmp_path / "PRSA_Data_Test.csv", DAY_1, days=3, co_missing_hours=range(20, 53))
    config = quick_liveness(aggregator_config(mosquitto, influxd.url, tmp_path))
    client = publisher(mosquitto.port)
    try:
        with running_aggregator(config, FLEET):
            result = replay(csv, mosquitto, tmp_path / "replay.sqlite")
            assert result.returncode == 0, result.stderr[-2000:]
            barrier(client)

            def barrier_fired() -> bool:
                return any(
                    e.alert.node == BARRIER and e.alert.rule == "liveness.node"
                    for e in alert_events(watcher)
                )

            wait_until(barrier_fired, 60, "the barrier node's liveness alert")
    finally:
        client.loop_stop()
        client.disconnect()
    live = [
        (e.event, e.alert.rule, e.alert.message)
        for e in alert_events(watcher)
        if e.alert.node == NODE and e.alert.kind == "liveness" and not e.alert.late
    ]
    assert not [x for x in live if x[0] == "fired"], live
    states = {
        codec.ALERT.decode(p).rule: codec.ALERT.decode(p).state
        for p in watcher.on(lambda t: t.startswith(f"envnet/v1/alerts/{NODE}/liveness"))
        if p
    }
    assert states.get("liveness.node", "resolved") == "resolved", states


def alert_events(watcher: MqttProbe) -> list[AlertEvent]:
    return [codec.ALERT_EVENT.decode(p) for p in watcher.on(lambda t: t == EVENTS)]


def test_a_rebased_replay_is_judged_with_the_default_future_guard(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, watcher: MqttProbe
) -> None:
    """--rebase-now against an aggregator as shipped (max_future_s = 3600): the data becomes
    the recent past, so its days are windowed and nothing is dated in the future."""
    csv = prsa_csv(tmp_path / "PRSA_Data_Test.csv", DAY_1, days=2)
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    shipped = msgspec.structs.replace(config.alerts.windows, max_future_s=3600)
    config = msgspec.structs.replace(
        config, alerts=msgspec.structs.replace(config.alerts, windows=shipped)
    )
    with running_aggregator(config, FLEET):
        result = replay(csv, mosquitto, tmp_path / "replay.sqlite", "--rebase-now")
        assert result.returncode == 0, result.stderr[-2000:]
        daily = "SELECT count(value) FROM windows WHERE \"window\"='24h' AND quantity='pm2_5'"
        # 48 hours ending at this clock hour: at least two local days are over.
        wait_until(lambda: count(influxd, daily) >= 2, 90, "the rebased days' daily windows")
        assert count(influxd, "SELECT count(value) FROM readings WHERE quantity='pm2_5'") == 48
    now = time.time_ns() // 1_000_000
    states = [
        codec.ALERT.decode(p) for p in watcher.on(lambda t: t.startswith("envnet/v1/alerts/"))
    ]
    alerts = [*states, *(e.alert for e in alert_events(watcher))]
    future = [(a.rule, a.updated_ms) for a in alerts if a.updated_ms > now]
    assert future == []
