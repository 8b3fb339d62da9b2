"""The alert lifecycle end to end (issue #3), on real mosquitto and influxd.

Readings are published the way a node publishes them: on envnet/v1/nodes/{node}/readings, at
QoS 1, as the contract's `envnet.readings/1` (schemas.messages), with a per-node increasing
seq. Their event times are chosen: they start at T0, a local (UTC+8) midnight in the future,
so hours and days are natural ones and no window is late (an observation more than
alerts.late_after_s = 900 s behind the aggregator's clock is late: recorded, never paged).
Only the backlog test reaches into the past, on purpose.

1. A 30-hour PM2.5 episode raises exactly one daily-mean and one AQI alert; both resolve.
2. A value oscillating around a limit, inside the hysteresis band, does not flap.
3. kill -9 of the aggregator (a subprocess) mid-episode neither duplicates nor loses an alert.
4. A backlog replayed after an outage gives late alerts: on the event stream and in
   InfluxDB, never retained, never at the webhook; a live exceedance is paged.
5. A stuck sensor raises a health alert; its exceedances are suspect and page nobody.
6. Operators list and acknowledge alerts with `envnet alerts`; bad commands are counted.
7. A stop right after alert transitions publishes every retained state and event, and pages.

Nothing here sleeps to wait for an event: every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import paho.mqtt.client as mqtt
import pytest
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.config import AggregatorConfig
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.mqtt_session import IntakeSettings
from aggregator.webhook import WebhookSettings
from schemas import codec, topics
from schemas.messages import (
    ALERT_COMMAND_SCHEMA,
    READINGS_SCHEMA,
    Alert,
    AlertCommand,
    AlertEvent,
    Reading,
    ReadingsMessage,
)
from schemas.quantities import SPECS, Quantity
from simulators.local_stack import Influxd, Mosquitto, influx_query
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    publisher,
    running_aggregator,
    wait_for,
)

MIN_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
LOCAL_OFFSET_MS: Final = 8 * HOUR_MS  # Suzhou: UTC+8, no DST (alerts.utc_offset_h)
DATABASE: Final = "envnet"
ENVNET: Final = Path(sys.executable).with_name("envnet")
WAIT_S: Final = 30.0

# The limits these scenarios cross (docs/standards.md; asserted against the alerts).
PM25_24H_LIMIT: Final = 60.0  # GB 3095-2026 Table 1, PM2.5 24-h, Grade II, transition limits
H2S_LIMIT: Final = 60.0  # GB 14554-93 Table 1, H2S plant boundary, Grade II new: 0.06 mg/m3
# HJ 633-2026 Table 3: a PM2.5 1-h mean is judged on the 24-h breakpoints; 150 -> IAQI 200,
# 20 -> 20/35 * 50 = 28.6 -> 29 (rounded up, §4.2.6). Alerts from category III (AQI > 100).
AQI_EPISODE: Final = 200
AQI_CLEAN: Final = 29
AQI_LIMIT: Final = 100.0

EVENTS: Final = topics.ALERT_EVENTS


def next_local_midnight(now_ms: int) -> int:
    """The first local midnight at least two hours from now: every window these tests close
    ends in the future, even if a test starts just before midnight."""
    local = now_ms + 2 * HOUR_MS + LOCAL_OFFSET_MS
    return local - local % DAY_MS + DAY_MS - LOCAL_OFFSET_MS


def origin() -> int:
    return next_local_midnight(int(time.time() * 1000))


# -- publishing like a node -----------------------------------------------------------------


Sample = tuple[int, float]  # (ts, value)


def wobble(ts: int, level: float, period_s: int) -> float:
    """`level` ± 1 on alternate readings: a steady level whose hourly mean is exactly
    `level`, without the repeated value that the flatline health check takes for a stuck
    sensor (aggregator/engine/sensor_health.py DEFAULT_FLATLINE)."""
    return level + (1.0 if (ts // (period_s * 1000)) % 2 else -1.0)


def samples(
    start_ms: int, end_ms: int, period_s: int, value: Callable[[int], float]
) -> list[Sample]:
    return [(ts, value(ts)) for ts in range(start_ms, end_ms, period_s * 1000)]


def reading(quantity: Quantity, sensor: str, period_s: int, ts: int, value: float) -> Reading:
    return Reading(
        ts=ts,
        quantity=quantity,
        value=value,
        unit=SPECS[quantity].unit,
        period_s=period_s,
        stat="mean",
        sensor=sensor,
    )


@dataclass
class NodeFeed:
    """One node's readings messages, with the node's own seq; `send` for its main series."""

    client: mqtt.Client
    node: str
    quantity: Quantity
    sensor: str
    period_s: int
    seq: int = 0

    def send(self, batch: Sequence[Sample], *, backlog: bool = False) -> int:
        series = (self.quantity, self.sensor, self.period_s)
        return self.publish([reading(*series, ts, value) for ts, value in batch], backlog=backlog)

    def publish(self, readings: list[Reading], *, backlog: bool = False) -> int:
        self.seq += 1
        message = ReadingsMessage(READINGS_SCHEMA, self.node, self.seq, readings, backlog=backlog)
        info = self.client.publish(
            topics.readings(self.node), codec.READINGS.encode(message), qos=1
        )
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"{self.node} seq {self.seq} not accepted by the broker"
        return self.seq


def episode_level(since_t0_ms: int) -> float:
    """The PM2.5 episode: 150 µg/m³ for 30 h from T0, then 20 µg/m³."""
    return 150.0 if since_t0_ms < 30 * HOUR_MS else 20.0


EPISODE_HOURS: Final = 50


def episode_batches(t0: int) -> list[list[Sample]]:
    """The episode's 5-min PM2.5 readings, in one message per hour."""
    return [
        samples(start, start + HOUR_MS, 300, lambda ts: wobble(ts, episode_level(ts - t0), 300))
        for start in range(t0, t0 + EPISODE_HOURS * HOUR_MS, HOUR_MS)
    ]


# -- watching MQTT --------------------------------------------------------------------------


@pytest.fixture
def probe(mosquitto: Mosquitto) -> Iterator[MqttProbe]:
    """Records alert events, retained alert states and acks from the start of a test."""
    watcher = MqttProbe(mosquitto.port, [EVENTS, topics.ALERTS_FILTER, "envnet/v1/nodes/+/ack"])
    yield watcher.start()
    watcher.stop()


@pytest.fixture
def client(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    """The nodes' (and operators') connection to the broker."""
    connection = publisher(mosquitto.port)
    yield connection
    connection.loop_stop()
    connection.disconnect()


def events(probe: MqttProbe, node: str) -> list[AlertEvent]:
    decoded = (codec.ALERT_EVENT.decode(p) for p in probe.on(lambda t: t == EVENTS))
    return [e for e in decoded if e.alert.node == node]


Story = list[tuple[str, str, int | None]]


def story(found: list[AlertEvent]) -> Story:
    """(event, rule, at_ms) in stream order; at_ms only where it is event time."""
    return [
        (e.event, e.alert.rule, e.at_ms if e.event in ("fired", "resolved") else None)
        for e in found
    ]


def acked(probe: MqttProbe, node: str) -> set[int]:
    return {s for p in probe.on(lambda t: t == topics.ack(node)) for s in codec.ACK.decode(p).seqs}


def wait_acked(probe: MqttProbe, feed: NodeFeed, timeout_s: float = WAIT_S) -> None:
    wanted = set(range(1, feed.seq + 1))
    wait_for(lambda: wanted <= acked(probe, feed.node), timeout_s, f"acks of {feed.node}")


def settle(get: Callable[[], object], expected: object, timeout_s: float = WAIT_S) -> None:
    """Poll `get` until it returns `expected` or the deadline passes; then compare."""
    deadline = time.monotonic() + timeout_s
    got = get()
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        got = get()
    assert got == expected


def retained(port: int, node: str) -> dict[str, Alert]:
    """The retained alert states of a node now, by rule, from a fresh subscription. The
    broker delivers retained messages before a marker published after the SUBACK."""
    marker = f"envnet/v1/test-marker/{uuid.uuid4().hex}"
    watcher = MqttProbe(port, [f"envnet/v1/alerts/{node}/#", marker]).start()
    try:
        assert watcher.client is not None
        watcher.client.publish(marker, b"m", qos=1)
        wait_for(lambda: bool(watcher.on(lambda t: t == marker)), 10, "retained alert states")
        with watcher.lock:
            seen = list(watcher.messages)
    finally:
        watcher.stop()
    return {
        codec.ALERT.decode(p).rule: codec.ALERT.decode(p)
        for t, p, is_retained in seen
        if is_retained and t != marker and p
    }


# -- reading InfluxDB -----------------------------------------------------------------------


def rows(influxd: Influxd, query: str) -> list[dict[str, Any]]:
    """Every row of every series, with the series' tags merged in."""
    answer: Any = influx_query(influxd.url, query, DATABASE)
    out: list[dict[str, Any]] = []
    for series in answer["results"][0].get("series", []):
        tags = series.get("tags", {})
        out.extend(
            {**tags, **dict(zip(series["columns"], v, strict=True))} for v in series["values"]
        )
    return out


AlertPoint = tuple[str, str, int | None, bool, bool]


def alert_points(influxd: Influxd, node: str) -> list[AlertPoint]:
    """(rule, event, time, late, suspect) of the node's `alerts` points, sorted; time only
    for fired/resolved (the others are stamped with the aggregator's clock)."""
    found = rows(
        influxd,
        f'SELECT "event", "late", "suspect" FROM alerts WHERE "node" = \'{node}\' GROUP BY "rule"',
    )
    return sorted(
        (
            r["rule"],
            r["event"],
            r["time"] if r["event"] in ("fired", "resolved") else None,
            r["late"],
            r["suspect"],
        )
        for r in found
    )


# -- running the aggregator -----------------------------------------------------------------


def config_for(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, webhook: str | None = None
) -> AggregatorConfig:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    if webhook is None:
        return config
    hook = WebhookSettings(url=webhook, retry_initial_s=0.1, retry_cap_s=0.5, max_attempts=5)
    return msgspec.structs.replace(
        config, alerts=msgspec.structs.replace(config.alerts, webhooks=[hook])
    )


@dataclass
class WebhookReceiver:
    """A real HTTP endpoint (aiohttp, in its own thread) that records what is POSTed."""

    received: list[AlertEvent] = field(default_factory=list)
    url: str = ""

    def story(self) -> list[tuple[str, str, str]]:
        return [(e.event, e.alert.node, e.alert.rule) for e in list(self.received)]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        receiver.received.append(codec.ALERT_EVENT.decode(await request.read()))
        return web.Response(status=204)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        receiver.url = f"http://{host}:{port}/hook"
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "webhook receiver did not start"
    try:
        yield receiver
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    return {**env, **extra}


# -- 1. an episode: one daily-mean alert, one AQI alert -------------------------------------


def episode_story(t0: int) -> Story:
    # The AQI hour alert fires when hour 0 closes; the daily one when day 1 closes (mean
    # 150); the AQI resolves with the first clean hour (T0+30 h, AQI 29); the daily alert
    # with day 2's mean, (6 x 150 + 18 x 20) / 24 = 52.5 <= the clear level 60 x 0.95 = 57.
    return [
        ("fired", "aqi.hour", t0),
        ("fired", "air.pm2_5.24h", t0),
        ("resolved", "aqi.hour", t0 + 30 * HOUR_MS),
        ("resolved", "air.pm2_5.24h", t0 + DAY_MS),
    ]


def episode_points(t0: int) -> list[AlertPoint]:
    return sorted((rule, event, at, False, False) for event, rule, at in episode_story(t0))


def check_episode(found: list[AlertEvent], t0: int) -> None:
    by_key = {(e.event, e.alert.rule): e.alert for e in found}
    daily = by_key[("fired", "air.pm2_5.24h")]
    assert (daily.kind, daily.value, daily.limit) == ("exceedance", 150.0, PM25_24H_LIMIT)
    assert daily.window_start_ms == t0 and daily.window_s == 86_400
    assert daily.standard.startswith("GB 3095")
    assert by_key[("resolved", "air.pm2_5.24h")].value == 52.5
    aqi = by_key[("fired", "aqi.hour")]
    assert (aqi.kind, aqi.value, aqi.limit) == ("aqi", AQI_EPISODE, AQI_LIMIT)
    clean = by_key[("resolved", "aqi.hour")]
    assert clean.value == AQI_CLEAN and clean.window_start_ms == t0 + 30 * HOUR_MS
    assert not any(e.alert.late or e.alert.suspect for e in found), "a live, healthy episode"


def check_episode_storage(influxd: Influxd, node: str, t0: int) -> None:
    settle(lambda: alert_points(influxd, node), episode_points(t0))
    daily = (
        f'SELECT "value", "valid", "hours" FROM windows WHERE "node" = \'{node}\' '
        "AND \"window\" = '24h'"
    )
    settle(
        lambda: [(r["time"], r["value"], r["valid"], r["hours"]) for r in rows(influxd, daily)],
        [(t0, 150.0, True, 24), (t0 + DAY_MS, 52.5, True, 24)],
    )
    # Hours T0 .. T0+48 h are closed (the last reading's hour, T0+49 h, is still open).
    hourly = {t0 + h * HOUR_MS: AQI_EPISODE if h < 30 else AQI_CLEAN for h in range(49)}
    aqi = f'SELECT "aqi" FROM aqi WHERE "node" = \'{node}\' AND "report" = \'hour\''
    settle(lambda: {r["time"]: r["aqi"] for r in rows(influxd, aqi)}, hourly)
    day1 = (
        f'SELECT "aqi" FROM aqi WHERE "node" = \'{node}\' AND "report" = \'day\' AND time = {t0}ms'
    )
    assert [r["aqi"] for r in rows(influxd, day1)] == [AQI_EPISODE]


def test_pm25_episode_raises_one_daily_and_one_aqi_alert_and_both_resolve(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    t0, node = origin(), "air-episode"
    fleet = Fleet({node: NodeInfo(site="Episode roadside", air_zone=2)})
    feed = NodeFeed(client, node, "pm2_5", "pm", 300)
    with running_aggregator(config_for(mosquitto, influxd, tmp_path), fleet):
        for batch in episode_batches(t0):
            feed.send(batch)
        wait_acked(probe, feed)
        settle(lambda: story(events(probe, node)), episode_story(t0))
        check_episode(events(probe, node), t0)
        states = retained(mosquitto.port, node)
        assert {rule: a.state for rule, a in states.items()} == {
            "air.pm2_5.24h": "resolved",
            "aqi.hour": "resolved",
        }
        check_episode_storage(influxd, node, t0)


# -- 2. hysteresis: a value hovering at the limit does not flap -----------------------------


def test_h2s_oscillating_at_the_limit_fires_once_and_resolves_once(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    t0, node = origin(), "wwtp-fence"
    fleet = Fleet({node: NodeInfo(site="Plant east boundary", odour_grade="II-new")})
    # Above the limit (60) and back into the band (57, 60]: below the limit, above the clear
    # level 60 x (1 - 0.05) = 57. Without hysteresis every low value would resolve.
    hovering = [63.0, 58.0, 62.0, 57.5, 61.0, 58.5, 64.0, 57.2, 62.5, 59.0, 60.5, 57.1] * 2
    values = [40.0, *hovering, 10.0, 12.0]
    at = [t0 + i * 5 * MIN_MS for i in range(len(values))]
    feed = NodeFeed(client, node, "h2s", "gas", 300)
    with running_aggregator(config_for(mosquitto, influxd, tmp_path), fleet):
        for ts, value in zip(at[:-2], values[:-2], strict=True):
            feed.send([(ts, value)])  # one message per 5-min reading, as a node sends them
        wait_acked(probe, feed)
        settle(lambda: story(events(probe, node)), [("fired", "odour.h2s", at[1])])
        assert retained(mosquitto.port, node)["odour.h2s"].state == "firing"
        for ts, value in zip(at[-2:], values[-2:], strict=True):
            feed.send([(ts, value)])
        wait_acked(probe, feed)
        expected = [("fired", "odour.h2s", at[1]), ("resolved", "odour.h2s", at[-2])]
        settle(lambda: story(events(probe, node)), expected)
        fired, resolved = (e.alert for e in events(probe, node))
        assert (fired.value, fired.limit, fired.standard) == (63.0, H2S_LIMIT, "GB 14554-93")
        assert resolved.value == 10.0 and resolved.since_ms == at[1]
        assert retained(mosquitto.port, node)["odour.h2s"].state == "resolved"
        settle(
            lambda: alert_points(influxd, node),
            [
                ("odour.h2s", "fired", at[1], False, False),
                ("odour.h2s", "resolved", at[-2], False, False),
            ],
        )


# -- 3. kill -9 mid-episode: no duplicate, no loss ------------------------------------------


def write_aggregator_files(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, node: str
) -> Path:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'[nodes.{node}]\nsite = "Crash roadside"\nair_zone = 2\n', encoding="utf-8")
    config = tmp_path / "agg.toml"
    config.write_text(
        f"""
[mqtt]
url = "{mosquitto.url}"
[influx]
url = "{influxd.url}"
database = "{DATABASE}"
retry_initial_s = 0.05
retry_cap_s = 0.5
[fleet]
path = "{fleet}"
[metrics]
port = 0
[state]
dir = "{tmp_path / "agg-state"}"
checkpoint_s = 1
# Event time here runs up to 50 h ahead of the wall clock (tests.support.harness does the same).
[alerts.windows]
max_future_s = 0
""",
        encoding="utf-8",
    )
    return config


def hold_session(mosquitto: Mosquitto, client_id: str) -> None:
    """Open the aggregator's persistent session before it first runs, as a deployed broker
    has it: readings published before its first SUBSCRIBE are then queued, not lost."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.subscribe(
        [(topics.READINGS_FILTER, 1), (topics.STATUS_FILTER, 1), (topics.ALERT_COMMANDS, 1)]
    )
    assert subscribed.wait(10), "session not opened"
    client.disconnect()
    client.loop_stop()


@contextmanager
def aggregator_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(ENVNET), "aggregator", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


HALF_HOUR_MS: Final = HOUR_MS // 2


def crash_node_messages(t0: int) -> list[list[Reading]]:
    """The crash node's messages, one per half hour: its 5-min PM2.5 (the episode), and in
    the message that ends each hour, that hour's reading from a 1-h O3 analyser (39-41
    µg/m³, IAQI 13). PM2.5's hour h closes with the first message of hour h + 1, O3's hour h
    half an hour later, with the analyser's next reading: the node's AQI for hour h is
    computed when the first closes and again when the second does. A restart in between
    must not lose the PM2.5 half of it (the AQI would drop to 13 and the alert flap)."""
    messages = []
    for start in range(t0, t0 + EPISODE_HOURS * HOUR_MS, HALF_HOUR_MS):
        level = episode_level(start - t0)
        end = start + HALF_HOUR_MS
        batch = [
            reading("pm2_5", "pm", 300, ts, wobble(ts, level, 300))
            for ts in range(start, end, 300_000)
        ]
        if (end - t0) % HOUR_MS == 0:
            hour = end - HOUR_MS
            batch.append(reading("o3", "o3", 3600, hour, wobble(hour, 40.0, 3600)))
        messages.append(batch)
    return messages


def test_kill_9_mid_episode_neither_duplicates_nor_loses_the_alerts(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    t0, node = origin(), "air-crash"
    config = write_aggregator_files(tmp_path, mosquitto, influxd, node)
    log = tmp_path / "aggregator.log"
    hold_session(mosquitto, IntakeSettings().client_id)
    feed = NodeFeed(client, node, "pm2_5", "pm", 300)
    messages = crash_node_messages(t0)
    kill_after = 11  # up to T0+5:30: PM2.5's hour 4 has closed, O3's has not
    with aggregator_process(config, log) as first:
        for batch in messages[:kill_after]:
            feed.publish(batch)
        wait_acked(probe, feed, 60)
        settle(lambda: story(events(probe, node)), [("fired", "aqi.hour", t0)], 60)
        first.kill()  # SIGKILL: no shutdown, no last checkpoint
        assert first.wait(timeout=10) == -9
    # The messages up to T0+30 h, published while the aggregator is down, wait in its
    # persistent session. Day 1 closes among them: its mean is valid (>= 20 hourly means,
    # GB 3095-2026 Table 4) only if the restarted aggregator rebuilt hours 0-5 from InfluxDB.
    for batch in messages[kill_after:60]:
        feed.publish(batch)
    with aggregator_process(config, log):
        for batch in messages[60:]:
            feed.publish(batch)
        wait_acked(probe, feed, 60)
        settle(lambda: story(events(probe, node)), episode_story(t0), 60)
        check_episode(events(probe, node), t0)
        states = retained(mosquitto.port, node)
        assert {rule: a.state for rule, a in states.items()} == {
            "air.pm2_5.24h": "resolved",
            "aqi.hour": "resolved",
        }
        settle(lambda: alert_points(influxd, node), episode_points(t0))
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")


# -- 4. a backlog after an outage: late alerts, not pages -----------------------------------


def test_backlog_after_an_outage_gives_late_alerts_and_no_pages(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    late_node, live_node = "air-backlog", "wwtp-live"
    fleet = Fleet(
        {
            late_node: NodeInfo(site="Backlog roadside", air_zone=2),
            live_node: NodeInfo(site="Live plant boundary", odour_grade="II-new"),
        }
    )
    now = int(time.time() * 1000)
    last_interval = now - now % 300_000 - 300_000  # the latest complete 5-min interval
    # A node back from a ~6-hour outage sends its live reading first, then drains its
    # journal: hours that began 8 and 7 hours ago, PM2.5 at 150 then 20, and the first
    # reading of the hour after.
    h = now - now % HOUR_MS - 8 * HOUR_MS
    drained = [
        *samples(h, h + HOUR_MS, 300, lambda ts: wobble(ts, 150.0, 300)),
        *samples(h + HOUR_MS, h + 2 * HOUR_MS + 300_000, 300, lambda ts: wobble(ts, 20.0, 300)),
    ]
    backlog = NodeFeed(client, late_node, "pm2_5", "pm", 300)
    live = NodeFeed(client, live_node, "h2s", "gas", 300)
    with webhook_receiver() as hook:
        config = config_for(mosquitto, influxd, tmp_path, webhook=hook.url)
        with running_aggregator(config, fleet):
            backlog.send([(last_interval, 20.0)])
            for start in range(0, len(drained), 10):  # the edge drains in packed batches
                backlog.send(drained[start : start + 10], backlog=True)
            wait_acked(probe, backlog)
            expected = [("fired", "aqi.hour", h), ("resolved", "aqi.hour", h + HOUR_MS)]
            settle(lambda: story(events(probe, late_node)), expected)
            assert all(e.alert.late for e in events(probe, late_node))
            assert events(probe, late_node)[0].alert.value == AQI_EPISODE
            # Live data goes on: an H2S release at the other node is paged at once.
            live.send([(last_interval, 150.0)])
            wait_for(lambda: bool(hook.received), WAIT_S, "the live page at the webhook")
            # One sink delivers in order: had the late alerts been sent, they would be first.
            assert hook.story() == [("fired", live_node, "odour.h2s")]
            assert not hook.received[0].alert.late
            assert retained(mosquitto.port, late_node) == {}
            assert retained(mosquitto.port, live_node)["odour.h2s"].state == "firing"
            settle(
                lambda: alert_points(influxd, late_node),
                [
                    ("aqi.hour", "fired", h, True, False),
                    ("aqi.hour", "resolved", h + HOUR_MS, True, False),
                ],
            )


# -- 5. a stuck sensor: a health alert, suspect exceedances ---------------------------------


def test_stuck_pm_sensor_raises_a_health_alert_and_its_exceedances_are_suspect(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    t0, node = origin(), "air-stuck"
    fleet = Fleet({node: NodeInfo(site="Stuck roadside", air_zone=2)})
    # 1-min readings, as the edge reports by default. DEFAULT_FLATLINE["pm2_5"] is 30
    # identical readings AND 30 min: the sensor is judged stuck at its 30th reading, before
    # its first hour closes, so every window it measures is suspect.
    stuck_until = t0 + 25 * HOUR_MS + 30 * MIN_MS
    stuck = samples(t0, stuck_until, 60, lambda ts: 150.0)
    moving = samples(stuck_until, t0 + 28 * HOUR_MS, 60, lambda ts: wobble(ts, 150.0, 60))
    feed = NodeFeed(client, node, "pm2_5", "pm", 60)
    with webhook_receiver() as hook:
        config = config_for(mosquitto, influxd, tmp_path, webhook=hook.url)
        with running_aggregator(config, fleet):
            readings = stuck + moving
            for start in range(0, len(readings), 30):  # half-hour messages
                feed.send(readings[start : start + 30])
            wait_acked(probe, feed)
            expected: Story = [
                ("fired", "health.flatline.pm", t0 + 29 * MIN_MS),
                ("fired", "aqi.hour", t0),
                ("fired", "air.pm2_5.24h", t0),
                # The sensor moves again at T0+25:30 (mid-hour; on the hour, see the next
                # test) ...
                ("resolved", "health.flatline.pm", stuck_until),
                # ... hour 25, half of it measured while stuck, is still suspect; hour 26,
                # all of it measured by a healthy sensor, confirms the AQI.
                ("renotified", "aqi.hour", None),
            ]
            settle(lambda: story(events(probe, node)), expected)
            found = {(e.event, e.alert.rule): e.alert for e in events(probe, node)}
            health = found[("fired", "health.flatline.pm")]
            assert health.kind == "health" and not health.suspect
            assert found[("fired", "aqi.hour")].suspect
            assert found[("fired", "air.pm2_5.24h")].suspect
            assert found[("fired", "air.pm2_5.24h")].value == 150.0
            assert not found[("renotified", "aqi.hour")].suspect
            # Confirmed by the first hour measured wholly by the healthy sensor.
            assert found[("renotified", "aqi.hour")].window_start_ms == t0 + 26 * HOUR_MS
            # Pages: the health alert and the confirmation, never the suspect exceedances.
            settle(
                hook.story,
                [
                    ("fired", node, "health.flatline.pm"),
                    ("resolved", node, "health.flatline.pm"),
                    ("renotified", node, "aqi.hour"),
                ],
            )
            states = retained(mosquitto.port, node)
            assert states["air.pm2_5.24h"].state == "firing" and states["air.pm2_5.24h"].suspect
            assert states["aqi.hour"].state == "firing" and not states["aqi.hour"].suspect
            settle(
                lambda: alert_points(influxd, node),
                sorted(
                    [
                        ("air.pm2_5.24h", "fired", t0, False, True),
                        ("aqi.hour", "fired", t0, False, True),
                        ("aqi.hour", "renotified", None, False, False),
                        ("health.flatline.pm", "fired", t0 + 29 * MIN_MS, False, False),
                        ("health.flatline.pm", "resolved", stuck_until, False, False),
                    ]
                ),
            )


def test_an_hour_measured_only_by_a_stuck_sensor_is_never_confirmed(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    t0, node = origin(), "air-repaired"
    fleet = Fleet({node: NodeInfo(site="Repaired roadside", air_zone=2)})
    # Stuck at 150 for three whole hours, then repaired on the hour: hours 0-2 are measured
    # by the stuck sensor only, hour 3 by a healthy one.
    readings = samples(t0, t0 + 3 * HOUR_MS, 60, lambda ts: 150.0) + samples(
        t0 + 3 * HOUR_MS, t0 + 4 * HOUR_MS + 5 * MIN_MS, 60, lambda ts: wobble(ts, 150.0, 60)
    )
    feed = NodeFeed(client, node, "pm2_5", "pm", 60)
    with running_aggregator(config_for(mosquitto, influxd, tmp_path), fleet):
        for start in range(0, len(readings), 5):  # 5-min messages
            feed.send(readings[start : start + 5])
        wait_acked(probe, feed)
        wait_for(
            lambda: any(e.event == "renotified" for e in events(probe, node)),
            WAIT_S,
            "the AQI alert confirmed by the repaired sensor",
        )
        confirmed = [e.alert for e in events(probe, node) if e.event == "renotified"]
        # Confirmed by hour 3, the first hour the repaired sensor measured; never by hour 2.
        assert [a.window_start_ms for a in confirmed] == [t0 + 3 * HOUR_MS]


# -- 6. operators: envnet alerts list | ack -------------------------------------------------


def envnet_alerts(mosquitto: Mosquitto, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENVNET), "alerts", *args, "--timeout", "15"],
        env=clean_env(ENVNET_MQTT_URL=mosquitto.url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_operators_list_and_acknowledge_alerts_and_bad_commands_are_counted(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    t0, node = origin(), "wwtp-ops"
    fleet = Fleet({node: NodeInfo(site="Ops plant boundary", odour_grade="II-new")})
    feed = NodeFeed(client, node, "h2s", "gas", 300)
    with running_aggregator(config_for(mosquitto, influxd, tmp_path), fleet) as agg:
        feed.send([(t0, 100.0)])
        settle(lambda: story(events(probe, node)), [("fired", "odour.h2s", t0)])

        listed = envnet_alerts(mosquitto, "list")
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if line.startswith(node))
        assert row.split()[:5] == [node, "odour.h2s", "warning", "100", "ug/m3"], row

        def commands(result: str) -> float:
            return agg.metric("envnet_alert_commands_total", result=result)

        bad = [
            b"{not json",
            b'{"schema": "envnet.alert-command/1", "action": "ack", "node": "wwtp-ops"}',
            codec.ALERT_COMMAND.encode(
                AlertCommand(ALERT_COMMAND_SCHEMA, "ack", node, "odour.h2s", "x")
            ).replace(b'"ack"', b'"delete"'),
        ]
        for payload in bad:
            client.publish(topics.ALERT_COMMANDS, payload, qos=1).wait_for_publish(10)
        wait_for(lambda: commands("invalid") == len(bad), WAIT_S, "invalid commands counted")

        acked_cli = envnet_alerts(
            mosquitto, "ack", node, "odour.h2s", "--by", "Li Wei", "--note", "team sent"
        )
        assert acked_cli.returncode == 0, acked_cli.stderr
        assert f"acknowledged {node} odour.h2s as Li Wei" in acked_cli.stdout
        state = retained(mosquitto.port, node)["odour.h2s"]
        assert (state.state, state.acked_by, state.ack_note) == ("firing", "Li Wei", "team sent")
        assert commands("accepted") == 1

        refused_cli = envnet_alerts(mosquitto, "ack", node, "odour.nh3", "--by", "Li Wei")
        assert refused_cli.returncode == 1
        assert f"no firing alert odour.nh3 on node {node}" in refused_cli.stderr
        # The same, sent straight to the aggregator: refused there too, and counted.
        direct = AlertCommand(ALERT_COMMAND_SCHEMA, "ack", node, "odour.nh3", "Li Wei")
        client.publish(topics.ALERT_COMMANDS, codec.ALERT_COMMAND.encode(direct), qos=1)
        wait_for(lambda: commands("refused") == 1, WAIT_S, "refused command counted")

        # Still working: the next reading resolves the alert, and the ack goes with it.
        feed.send([(t0 + 5 * MIN_MS, 20.0)])
        expected = [
            ("fired", "odour.h2s", t0),
            ("acknowledged", "odour.h2s", None),
            ("resolved", "odour.h2s", t0 + 5 * MIN_MS),
        ]
        settle(lambda: story(events(probe, node)), expected)
        state = retained(mosquitto.port, node)["odour.h2s"]
        assert state.state == "resolved" and state.acked_by is None
        ack_rows = rows(
            influxd,
            f'SELECT "acked_by" FROM alerts WHERE "node" = \'{node}\' '
            "AND \"event\" = 'acknowledged'",
        )
        assert [r["acked_by"] for r in ack_rows] == ["Li Wei"]
        assert commands("invalid") == len(bad) and commands("accepted") == 1


# -- 7. a stop right after alert transitions loses none of them -----------------------------


def test_a_stop_right_after_alert_transitions_publishes_and_pages_every_one(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe, client: mqtt.Client
) -> None:
    """The readings stay buffered (a long linger) until the stop forces them out, so the
    alerts fire inside the stop sequence: their retained states, events and pages must all
    go out before the aggregator ends (service._close_outbox, _drain_sinks)."""
    t0 = origin()
    nodes = [f"wwtp-stop-{i}" for i in range(4)]
    fleet = Fleet({n: NodeInfo(site=f"Stop plant {n}", odour_grade="II-new") for n in nodes})
    feeds = [NodeFeed(client, n, "h2s", "gas", 300) for n in nodes]
    with webhook_receiver() as hook:
        config = aggregator_config(
            mosquitto, influxd.url, tmp_path, linger_ms=10_000, batch_readings=100_000
        )
        hook_settings = WebhookSettings(url=hook.url, retry_initial_s=0.1, retry_cap_s=0.5)
        config = msgspec.structs.replace(
            config, alerts=msgspec.structs.replace(config.alerts, webhooks=[hook_settings])
        )
        with running_aggregator(config, fleet) as agg:
            for feed in feeds:
                feed.send([(t0, 100.0)])
            wait_for(
                lambda: agg.metric("envnet_readings_received_total") == len(nodes),
                WAIT_S,
                "intake of the readings",
            )
            assert agg.metric("envnet_readings_stored_total") == 0, "written before the stop"
            agg.stop()
        # The webhook's deliveries end before the aggregator does: no polling needed.
        assert sorted(hook.story()) == [("fired", n, "odour.h2s") for n in nodes]
    every = [("fired", "odour.h2s", t0)] * len(nodes)
    settle(lambda: [e for n in nodes for e in story(events(probe, n))], every)
    for feed in feeds:
        wait_acked(probe, feed)
        assert retained(mosquitto.port, feed.node)["odour.h2s"].state == "firing"
