"""Partitioned aggregator replicas in tests: `envnet aggregator` processes with [cluster]
replica = "i/N", a seeded fleet with PM2.5 episodes published like nodes publish, and what
the stored `alerts` and `readings` say (tests/integration/cluster/)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.cluster.partition import Replica
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from schemas.quantities import SPECS
from simulators.local_stack import EnvnetAggregator, free_port, influx_query
from tests.support.harness import MqttProbe, wait_for

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
LOCAL_OFFSET_MS: Final = 8 * HOUR_MS  # alerts.utc_offset_h: Suzhou
HOURS: Final = 9  # hourly messages per node; the last one closes hour HOURS - 2
# (first episode hour, first clean hour again) per node; None: clean all along. AQI of a
# 1-h PM2.5 mean of 150 is 200 (> 100: aqi.hour fires); of 20, 29 (resolves).
EPISODES: Final[dict[str, tuple[int, int] | None]] = {
    "rep-sip-1": (1, 4),
    "rep-sip-2": (2, 6),
    "rep-gusu-1": (3, 5),
    "rep-gusu-2": (6, 99),  # still firing at the end
    "rep-wuzhong-1": (1, 7),
    "rep-wuzhong-2": (4, 6),
    "rep-xiangcheng-1": None,
    "rep-xiangcheng-2": (2, 7),
}
NODES: Final = tuple(EPISODES)
READINGS_PER_MESSAGE: Final = 12  # 5-min readings in one hourly message


def origin() -> int:
    """A local midnight at least two hours ahead: nothing these tests send is late."""
    local = int(time.time() * 1000) + 2 * HOUR_MS + LOCAL_OFFSET_MS
    return local - local % DAY_MS + DAY_MS - LOCAL_OFFSET_MS


def fleet_toml() -> str:
    return "".join(f'[nodes.{n}]\nsite = "Replica test {n}"\nair_zone = 2\n' for n in NODES)


def level(node: str, hour: int) -> float:
    episode = EPISODES[node]
    return 150.0 if episode is not None and episode[0] <= hour < episode[1] else 20.0


def message(node: str, seq: int, t0: int) -> ReadingsMessage:
    """Node `node`'s message `seq` (1-based): hour seq - 1's 5-min PM2.5 readings, ±1 around
    the hour's level (a steady value would be a stuck sensor, health.flatline)."""
    hour = seq - 1
    start = t0 + hour * HOUR_MS
    readings = [
        Reading(
            ts=ts,
            quantity="pm2_5",
            value=level(node, hour) + (1.0 if (ts // 300_000) % 2 else -1.0),
            unit=SPECS["pm2_5"].unit,
            period_s=300,
            stat="mean",
            sensor="pm",
        )
        for ts in range(start, start + HOUR_MS, 300_000)
    ]
    return ReadingsMessage(READINGS_SCHEMA, node, seq, readings)


AlertRow = tuple[str, str, str, int, float, bool, bool]


def expected_alerts(t0: int) -> list[AlertRow]:
    """(node, rule, event, event time, value, late, suspect) of every fired/resolved point:
    the AQI hour alert fires with the episode's first hour and resolves with the first clean
    hour after it (an hour is judged when the next hour's first reading arrives)."""
    out: list[AlertRow] = []
    for node, episode in EPISODES.items():
        if episode is None:
            continue
        first, clean = episode
        out.append((node, "aqi.hour", "fired", t0 + first * HOUR_MS, 200.0, False, False))
        if clean <= HOURS - 2:
            out.append((node, "aqi.hour", "resolved", t0 + clean * HOUR_MS, 29.0, False, False))
    return sorted(out)


def rows(url: str, database: str, query: str) -> list[dict[str, Any]]:
    answer: Any = influx_query(url, query, database)
    out: list[dict[str, Any]] = []
    for series in answer["results"][0].get("series", []):
        tags = series.get("tags", {})
        out.extend(
            {**tags, **dict(zip(series["columns"], v, strict=True))} for v in series["values"]
        )
    return out


def alert_rows(url: str, database: str) -> list[AlertRow]:
    """Every fired/resolved point of the `alerts` measurement, in a comparable form."""
    found = rows(
        url,
        database,
        'SELECT "event", "value", "late", "suspect" FROM alerts GROUP BY "node", "rule"',
    )
    return sorted(
        (r["node"], r["rule"], r["event"], r["time"], r["value"], r["late"], r["suspect"])
        for r in found
        if r["event"] in ("fired", "resolved")
    )


def other_alert_events(url: str, database: str) -> list[str]:
    found = rows(url, database, 'SELECT "event" FROM alerts')
    return [r["event"] for r in found if r["event"] not in ("fired", "resolved")]


def stored_per_node(url: str, database: str) -> dict[str, int]:
    found = rows(url, database, 'SELECT count("value") FROM readings GROUP BY "node"')
    return {r["node"]: int(r["count"]) for r in found}


def owners(count: int) -> dict[int, list[str]]:
    split: dict[int, list[str]] = {i: [] for i in range(count)}
    for node in NODES:
        split[next(i for i in range(count) if Replica(i, count).owns(node))].append(node)
    return split


# -- nodes ----------------------------------------------------------------------------------


@dataclass
class Feeds:
    """The fleet's messages, published at QoS 1 as nodes do, and the acks they got back."""

    port: int
    t0: int
    client: mqtt.Client = field(init=False)
    acks: MqttProbe = field(init=False)
    sent: dict[str, int] = field(default_factory=dict)
    # Messages sent again per node (settle), as an edge does after its ack timeout.
    resent: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self.acks = MqttProbe(self.port, ["envnet/v1/nodes/+/ack"]).start()

    def publish(self, node: str, seq: int) -> None:
        payload = codec.READINGS.encode(message(node, seq, self.t0))
        info = self.client.publish(topics.readings(node), payload, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"{node} seq {seq} not accepted by the broker"
        self.sent[node] = max(self.sent.get(node, 0), seq)

    def command(self, payload: bytes) -> None:
        info = self.client.publish(topics.ALERT_COMMANDS, payload, qos=1)
        info.wait_for_publish(timeout=10)

    def publish_hours(self, nodes: Sequence[str], seqs: range) -> None:
        for seq in seqs:
            for node in nodes:
                self.publish(node, seq)

    def acked(self, node: str) -> set[int]:
        payloads = self.acks.on(lambda t: t == topics.ack(node))
        return {s for p in payloads for s in codec.ACK.decode(p).seqs}

    def unacked(self, node: str) -> list[int]:
        return sorted(set(range(1, self.sent.get(node, 0) + 1)) - self.acked(node))

    def wait_acked(self, nodes: Sequence[str], timeout_s: float = 45.0) -> None:
        wait_for(lambda: not any(self.unacked(n) for n in nodes), timeout_s, f"acks of {nodes}")

    def settle(self, nodes: Sequence[str], ack_timeout_s: float, timeout_s: float) -> None:
        """Wait for every ack as an edge does: what is still unacked after `ack_timeout_s` is
        published again (counted in `resent`), until all is acked or `timeout_s` is over.
        The contract's delivery guarantee is the edge's journal and resend, not the broker:
        on a loaded machine, about one run in three, one QoS 1 message of 72 never reached a
        wildcard replica within 60 s through nats-server 2.9.10: the broker delivers it to one
        wildcard session and not another, likely a server bug fixed in 2.9.16
        (docs/cluster/replicas.md)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                wait_for(
                    lambda: not any(self.unacked(n) for n in nodes),
                    min(ack_timeout_s, max(0.1, deadline - time.monotonic())),
                    f"acks of {nodes}",
                )
                return
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
            for node in nodes:
                for seq in self.unacked(node):
                    self.publish(node, seq)
                    self.resent[node] = self.resent.get(node, 0) + 1

    def resend_until_acked(self, nodes: Sequence[str], timeout_s: float = 45.0) -> int:
        """What an edge does (edge/resend.py): publish again what is not acked after an ack
        timeout, until everything is. Returns how many messages were sent again."""
        resent, deadline = 0, time.monotonic() + timeout_s
        while any(self.unacked(n) for n in nodes):
            assert time.monotonic() < deadline, f"never acked: {[self.unacked(n) for n in nodes]}"
            for node in nodes:
                for seq in self.unacked(node):
                    self.publish(node, seq)
                    resent += 1
            ack_timeout = time.monotonic() + 3.0
            while any(self.unacked(n) for n in nodes) and time.monotonic() < ack_timeout:
                time.sleep(0.05)
        return resent

    def close(self) -> None:
        self.acks.stop()
        self.client.loop_stop()
        self.client.disconnect()


@contextmanager
def feeds(port: int, t0: int) -> Iterator[Feeds]:
    fleet = Feeds(port, t0)
    try:
        yield fleet
    finally:
        fleet.close()


# -- aggregators ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """What the replicas of one deployment share: broker, database, inventory, state dir."""

    directory: Path
    mqtt_url: str
    influx_url: str
    database: str
    client_id: str
    # [cluster] readings: "per-node" topics or the "wildcard" (docs/cluster/replicas.md).
    readings: str = "per-node"

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        fleet = self.directory / "fleet.toml"
        fleet.write_text(fleet_toml(), encoding="utf-8")
        config = self.directory / "agg.toml"
        config.write_text(
            f"""
[mqtt]
url = "{self.mqtt_url}"
client_id = "{self.client_id}"
[influx]
url = "{self.influx_url}"
database = "{self.database}"
retry_initial_s = 0.05
retry_cap_s = 0.5
[fleet]
path = "{fleet}"
[state]
dir = "{self.directory / "state"}"
checkpoint_s = 1
# Event time runs hours ahead of the wall clock here.
[alerts.windows]
max_future_s = 0
[cluster]
readings = "{self.readings}"
""",
            encoding="utf-8",
        )
        return config


def replica_env(replica: str, port: int, mqtt_urls: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    env.update(ENVNET_REPLICA=replica, ENVNET_METRICS_PORT=str(port))
    if mqtt_urls is not None:  # this replica's brokers, home first (a cluster's servers)
        env["ENVNET_MQTT_URL"] = mqtt_urls
    return env


def start_replica(
    site: Site, replica: str, name: str | None = None, mqtt_urls: str | None = None
) -> EnvnetAggregator:
    """`envnet aggregator` as replica "i/N" of `site`, once its subscriptions are in place
    (the broker queues for all of them from then on)."""
    config = site.write()
    port = free_port()
    label = name or "r" + replica.replace("/", "of")
    env = replica_env(replica, port, mqtt_urls)
    agg = EnvnetAggregator(site.directory / label, config, port, env)
    agg.start()
    index, count = (int(x) for x in replica.split("/"))
    per_node = count > 1 and site.readings == "per-node"
    wanted = 2 + len(owners(count)[index]) if per_node else 3
    try:
        wait_for(
            lambda: agg.metric("envnet_mqtt_subscriptions") == wanted,
            30,
            f"replica {replica}'s {wanted} subscriptions",
        )
    except BaseException:
        agg.stop()  # the caller never gets it to stop
        raise
    return agg


def metric(agg: EnvnetAggregator, name: str, **labels: str) -> float:
    """A running replica's metric; 0 for a labelled sample not yet counted."""
    assert agg.alive(), f"{agg.directory.name} is not running: it has no metrics"
    assert agg.metric("envnet_replica_nodes") is not None, f"{agg.metrics_url} unreadable"
    return agg.metric(name, **labels) or 0.0


def discard_session(port: int, client_id: str) -> None:
    """Connect as `client_id` with a clean session: the broker drops its stored session."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10), f"could not connect as {client_id}"
    client.disconnect()
    client.loop_stop()


def log_clean(agg: EnvnetAggregator) -> Callable[[], bool]:
    return lambda: "Traceback" not in agg.log_path.read_text(encoding="utf-8", errors="replace")
