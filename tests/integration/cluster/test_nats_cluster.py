"""envnet unchanged on a clustered MQTT broker: three nats-server processes forming one
JetStream cluster (simulators.local_stack.NatsCluster, docs/cluster/broker.md), with the real
`envnet edge` and `envnet aggregator` processes and a real influxd.

Every client connects to one server of its own, so every message crosses the cluster: the
edge publishes on server 0, the aggregator reads on server 1, operators read on server 2.
Nothing sleeps to wait for an event: every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt

from edge.journal import JournalError, read_status
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from simulators.local_stack import EnvnetAggregator, Influxd, NatsCluster, free_port
from tests.support.harness import MqttProbe, count, publisher, wait_for

ENVNET: Final = [sys.executable, "-m", "envnet.cli"]
EDGE: Final = "edge-1"
PLANT: Final = "wwtp-1"
WAIT_S: Final = 60.0
MIN_MS: Final = 60_000


def port_of(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None, url
    return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    return {**env, **extra}


def write_aggregator_config(tmp_path: Path, influxd: Influxd) -> Path:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        f'[nodes.{EDGE}]\nsite = "Cluster roadside"\nair_zone = 2\n'
        f'[nodes.{PLANT}]\nsite = "Cluster plant boundary"\nodour_grade = "II-new"\n',
        encoding="utf-8",
    )
    config = tmp_path / "agg.toml"
    config.write_text(
        f"""
[influx]
url = "{influxd.url}"
database = "envnet"
retry_initial_s = 0.05
retry_cap_s = 0.5
[fleet]
path = "{fleet}"
[state]
dir = "{tmp_path / "agg-state"}"
""",
        encoding="utf-8",
    )
    return config


def aggregator_on(
    cluster: NatsCluster, server: int, config: Path, tmp_path: Path
) -> EnvnetAggregator:
    """The `envnet aggregator` process, connected to one server (its session persists: the
    default client id envnet-aggregator, clean session off)."""
    port = free_port()
    text = config.read_text(encoding="utf-8")
    config.write_text(text.split("[metrics]")[0] + f"[metrics]\nport = {port}\n", encoding="utf-8")
    env = clean_env(ENVNET_MQTT_URL=cluster.url(server))
    return EnvnetAggregator(tmp_path / "aggregator", config, port, env)


def edge_toml(tmp_path: Path, url: str, ca_file: Path | None = None) -> Path:
    """The edge's node.toml; with `ca_file`, for a broker whose TLS certificate it signs."""
    path = tmp_path / "node.toml"
    tls = "" if ca_file is None else f'ca_file = "{ca_file}"\n'
    path.write_text(f"""
[node]
id = "{EDGE}"
[mqtt]
url = "{url}"
{tls}ack_timeout_s = 2
reconnect_initial_s = 0.1
reconnect_cap_s = 0.5
keepalive_s = 5
[sampling]
sample_interval_s = 0.2
report_interval_s = 1
[journal]
path = "{tmp_path / "edge.sqlite"}"
[[sensors]]
id = "pm"
driver = "sim-air"
""")
    return path


@contextmanager
def edge_agent(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*ENVNET, "edge", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def journal_depth(journal: Path) -> int:
    """The journal's depth, 0 until the agent has created it."""
    try:
        return read_status(journal, 0).depth
    except JournalError:
        return 0  # not there yet, or its tables not yet committed


def retained(port: int, topic_filter: str) -> dict[str, bytes]:
    """The retained messages under `topic_filter` now, from a fresh subscription on one
    server: the broker sends them before a marker published after the SUBACK."""
    marker = f"envnet/v1/test-marker/{uuid.uuid4().hex}"
    watcher = MqttProbe(port, [topic_filter, marker]).start()
    try:
        assert watcher.client is not None
        watcher.client.publish(marker, b"m", qos=1)
        wait_for(lambda: bool(watcher.on(lambda t: t == marker)), 30, "retained messages")
        with watcher.lock:
            seen = list(watcher.messages)
    finally:
        watcher.stop()
    return {t: p for t, p, is_retained in seen if is_retained and p}


def publish_readings(client: mqtt.Client, node: str, seq: int, readings: list[Reading]) -> None:
    """Publish at QoS 1 until the broker acknowledges, as a node does: while the cluster
    elects a new leader for the stream after a SIGKILL, a PUBACK may never come (MQTT 3.1.1
    resends only on reconnect), and a node resends the batch, same seq, after its ack
    timeout. The aggregator counts a batch it sees twice as a duplicate."""
    payload = codec.READINGS.encode(ReadingsMessage(READINGS_SCHEMA, node, seq, readings))
    for _ in range(6):
        # paho reconnects on its own; a server refuses CONNECT (rc 3) while it elects.
        wait_for(client.is_connected, WAIT_S, f"{node} connected to the broker")
        info = client.publish(topics.readings(node), payload, qos=1)
        try:
            info.wait_for_publish(timeout=10)
        except RuntimeError:  # the connection dropped: resend on the next one
            continue
        if info.is_published():
            return
    raise AssertionError(f"{node} seq {seq} not accepted by the broker in 60 s")


def test_edge_to_influx_across_three_servers_and_the_alert_read_on_the_third(
    nats_cluster: NatsCluster, influxd: Influxd, tmp_path: Path
) -> None:
    journal = tmp_path / "edge.sqlite"
    config = write_aggregator_config(tmp_path, influxd)
    with edge_agent(edge_toml(tmp_path, nats_cluster.url(0)), tmp_path / "edge.log"):
        # No aggregator yet: nothing acknowledges, the journal fills.
        wait_for(lambda: journal_depth(journal) >= 14, WAIT_S,
                 "readings journaled while no aggregator runs")  # fmt: skip
        before = read_status(journal, 0)
        snapshot_ms = time.time_ns() // 1_000_000
        assert before.last_ack_ms is None
        aggregator = aggregator_on(nats_cluster, 1, config, tmp_path)
        with aggregator:
            up_ms = time.time_ns() // 1_000_000

            def drained() -> bool:
                # What was journaled before the aggregator came up has been acknowledged.
                status = read_status(journal, 0)
                oldest = status.oldest_ts
                return status.last_ack_ms is not None and (oldest is None or oldest > up_ms)

            wait_for(drained, WAIT_S, "the edge's journal drained by acks over the cluster")
            # Stored: at least every reading journaled before it came up.
            stored = (
                f"SELECT COUNT(value) FROM readings WHERE node='{EDGE}' AND time <= {snapshot_ms}ms"
            )
            wait_for(lambda: count(influxd, stored) >= before.depth, WAIT_S, "readings stored")
            assert (aggregator.metric("envnet_readings_stored_total") or 0) >= before.depth

            # An exceedance from a second node, on server 0; `envnet alerts list` on server 2.
            now_ms = time.time_ns() // 1_000_000
            ts = now_ms - now_ms % (5 * MIN_MS)
            client = publisher(port_of(nats_cluster.url(0)))
            try:
                h2s = Reading(ts=ts, quantity="h2s", value=100.0, unit="ug/m3", period_s=300,
                              stat="mean", sensor="gas")  # fmt: skip
                publish_readings(client, PLANT, 1, [h2s])
            finally:
                client.loop_stop()
                client.disconnect()
            state_topic = topics.alert(PLANT, "odour.h2s")
            assert state_topic == f"envnet/v1/alerts/{PLANT}/odour/h2s"

            def listed() -> list[dict[str, object]]:
                done = subprocess.run(
                    [*ENVNET, "alerts", "list", "--json", "--timeout", "10"],
                    env=clean_env(ENVNET_MQTT_URL=nats_cluster.url(2)),
                    capture_output=True, text=True, timeout=60, check=False,
                )  # fmt: skip
                assert done.returncode == 0, done.stderr
                rows: list[dict[str, object]] = json.loads(done.stdout)
                return rows

            wait_for(lambda: any(r["node"] == PLANT for r in listed()), WAIT_S,
                     "the h2s alert listed on server 2")  # fmt: skip
            row = next(r for r in listed() if r["node"] == PLANT)
            assert (row["rule"], row["state"], row["value"]) == ("odour.h2s", "firing", 100.0)
            assert state_topic in retained(port_of(nats_cluster.url(2)), "envnet/v1/alerts/#")
            # No client was disconnected for a topic NATS refuses: the aggregator is still
            # connected, and has stored what the edge went on sending.
            assert aggregator.metric("envnet_mqtt_connected") == 1.0


def test_the_last_will_of_a_killed_edge_reaches_other_servers_and_the_aggregator(
    nats_cluster: NatsCluster, influxd: Influxd, tmp_path: Path
) -> None:
    status_topic = topics.status(EDGE)
    liveness_topic = topics.alert(EDGE, "liveness.node")
    operator = port_of(nats_cluster.url(2))
    config = write_aggregator_config(tmp_path, influxd)
    with aggregator_on(nats_cluster, 1, config, tmp_path) as aggregator:
        edge_config = edge_toml(tmp_path, nats_cluster.url(0))
        with edge_agent(edge_config, tmp_path / "edge.log") as edge:

            def status() -> str | None:
                payload = retained(operator, status_topic).get(status_topic)
                return None if payload is None else codec.STATUS.decode(payload).state

            wait_for(lambda: status() == "online", WAIT_S, "the edge's online status")
            wait_for(lambda: (aggregator.metric("envnet_readings_stored_total") or 0) > 0,
                     WAIT_S, "the edge's readings stored")  # fmt: skip
            edge.kill()  # SIGKILL: no clean DISCONNECT, the broker sends the will
            edge.wait(timeout=10)
        wait_for(lambda: status() == "offline", WAIT_S, "the will, retained, on server 2")
        will = codec.STATUS.decode(retained(operator, status_topic)[status_topic])
        assert will.reason == "lost"

        def liveness() -> str | None:
            payload = retained(operator, "envnet/v1/alerts/#").get(liveness_topic)
            return None if payload is None else codec.ALERT.decode(payload).state

        wait_for(lambda: liveness() == "firing", WAIT_S, "the aggregator's liveness alert")


def consumer_leaders(cluster: NatsCluster, topic_filter: str) -> set[str]:
    """The names of the servers leading a JetStream consumer that serves a QoS 1
    subscription to `topic_filter` (nats-server maps envnet/v1/nodes/+/readings to the
    subject $MQTT.msgs.envnet.v1.nodes.*.readings). Each server's /jsz lists what it holds a
    replica of, so all live ones are asked."""
    subject = "$MQTT.msgs." + topic_filter.replace("/", ".").replace("+", "*")
    query = "/jsz?accounts=true&streams=true&consumers=true&config=true"
    leaders: set[str] = set()
    for i in range(len(cluster.urls)):
        if not cluster.alive(i):
            continue
        with urllib.request.urlopen(cluster.monitor_url(i) + query, timeout=10) as response:
            jsz = json.loads(response.read())
        leaders |= {
            consumer["cluster"].get("leader", "")  # none while one is being elected
            for account in jsz.get("account_details", [])
            for stream in account.get("stream_detail", [])
            for consumer in stream.get("consumer_detail") or []
            if consumer["config"].get("filter_subject") == subject
        }
    leaders.discard("")
    return leaders


def consumer_leader(cluster: NatsCluster, topic_filter: str) -> int:
    """The index of the one server leading `topic_filter`'s consumer, once every server
    agrees on it."""
    leaders: set[str] = set()

    def agreed() -> bool:
        leaders.clear()
        leaders.update(consumer_leaders(cluster, topic_filter))
        return len(leaders) == 1

    wait_for(agreed, WAIT_S, f"one leader of the consumer of {topic_filter}")
    return int(leaders.pop().removeprefix("n"))  # NatsCluster names server i "n{i}"


def pm(ts: int, value: float) -> Reading:
    return Reading(ts=ts, quantity="pm2_5", value=value, unit="ug/m3", period_s=60,
                   stat="mean", sensor="pm")  # fmt: skip


def test_the_aggregators_session_outlives_it_and_a_killed_server(
    nats_cluster: NatsCluster, influxd: Influxd, tmp_path: Path
) -> None:
    """Readings published while the aggregator is stopped and the server that leads its
    session's readings consumer is SIGKILLed wait in its persistent session (a replicated
    consumer); restarted on another server, it stores every one of them exactly once."""
    per_message, messages = 10, 30
    now_ms = time.time_ns() // 1_000_000
    base = now_ms - now_ms % MIN_MS - 3 * 3_600_000
    batches = [
        [pm(base + (m * per_message + i) * MIN_MS, 20.0 + i) for i in range(per_message)]
        for m in range(messages)
    ]
    stored = f"SELECT COUNT(value) FROM readings WHERE node='{EDGE}'"
    config = write_aggregator_config(tmp_path, influxd)
    node = publisher(port_of(nats_cluster.url(0)))
    try:
        with aggregator_on(nats_cluster, 1, config, tmp_path):
            # Ready means connected; its first SUBSCRIBE makes a replicated consumer, and a
            # reading published before that exists has no session to wait in.
            wait_for(lambda: bool(consumer_leaders(nats_cluster, topics.READINGS_FILTER)),
                     WAIT_S, "the aggregator's readings consumer")  # fmt: skip
            publish_readings(node, EDGE, 1, batches[0])
            wait_for(lambda: count(influxd, stored) == per_message, WAIT_S, "the first batch")
        leader = consumer_leader(nats_cluster, topics.READINGS_FILTER)
        nats_cluster.kill(leader)
        if leader == 0:  # the node's own server: it reconnects to another, as nodes do
            node.loop_stop()
            node.disconnect()
            node = publisher(port_of(nats_cluster.url(1)))
        for seq, batch in enumerate(batches[1:], start=2):
            publish_readings(node, EDGE, seq, batch)
        # Another server than the one it left, and not the killed one.
        again = next(i for i in (2, 0) if i != leader)
        with aggregator_on(nats_cluster, again, config, tmp_path) as aggregator:
            total = per_message * messages
            wait_for(lambda: count(influxd, stored) >= total, WAIT_S, "the queued readings")
            # Stored by this process: exactly the queued readings. A batch delivered twice
            # would be counted as a duplicate (InfluxDB would hide a second write).
            queued = total - per_message
            wait_for(lambda: aggregator.metric("envnet_readings_stored_total") == queued,
                     WAIT_S, "the stored count")  # fmt: skip
            assert count(influxd, stored) == total
            nats_cluster.start_server(leader)
            publish_readings(node, EDGE, messages + 1, [pm(base - MIN_MS, 1.0)])
            wait_for(lambda: count(influxd, stored) == total + 1, WAIT_S, "after the rejoin")
    finally:
        node.loop_stop()
        node.disconnect()
    assert count(influxd, stored) == per_message * messages + 1
