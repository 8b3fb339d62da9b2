"""TLS, logins and per-node permissions on the clustered broker: three nats-server 2.9
processes whose MQTT listeners speak only TLS (a throw-away CA, tests/support/tls_broker.py)
and accept only the users of a NatsSecurity (simulators.local_stack, docs/cluster/broker.md).

The node logins carry the permissions of deploy/mosquitto/envnet.acl, written as NATS
subjects: a node publishes only its own readings and status and subscribes only to its own
ack and refusal topics. The real `envnet edge` and `envnet aggregator` run through them;
a wrong password is refused and both say so; a node cannot publish as another node nor
subscribe to its acks. Every client is on a server of its own, so every message crosses the
cluster. Nothing sleeps to wait for an event: every wait polls with a deadline.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.journal import read_status
from schemas import codec, topics
from schemas.messages import ACK_SCHEMA, READINGS_SCHEMA, AckMessage, Reading, ReadingsMessage
from simulators.local_stack import (
    NATS_MQTT_DELIVERY,
    EnvnetAggregator,
    Influxd,
    NatsCluster,
    NatsSecurity,
    NatsUser,
    ServiceError,
    find_binary,
    free_port,
    mqtt_connack,
)
from tests.integration.cluster.test_nats_cluster import (
    EDGE,
    ENVNET,
    PLANT,
    WAIT_S,
    clean_env,
    edge_agent,
    edge_toml,
    journal_depth,
    write_aggregator_config,
)
from tests.support.harness import count, wait_for
from tests.support.tls_broker import make_pki

AGGREGATOR: Final = "envnet-aggregator"
PASSWORDS: Final = {EDGE: "edge-secret", PLANT: "plant-secret", AGGREGATOR: "agg-secret"}
# CONNACK return codes, MQTT 3.1.1 section 3.2.2.3.
ACCEPTED: Final = 0
NOT_AUTHORIZED: Final = 5
START_MS: Final = 1_796_000_000_000


def node_user(node: str) -> NatsUser:
    """deploy/mosquitto/envnet.acl's node lines as NATS permissions (topic a/b/c is subject
    a.b.c), plus the subjects nats-server delivers QoS 1 subscriptions on."""
    prefix = f"envnet.v1.nodes.{node}"
    return NatsUser(
        node,
        PASSWORDS[node],
        publish=(f"{prefix}.readings", f"{prefix}.status"),
        subscribe=(f"{prefix}.ack", f"{prefix}.refusal", NATS_MQTT_DELIVERY),
    )


@dataclass(frozen=True, slots=True)
class Secured:
    cluster: NatsCluster
    security: NatsSecurity

    def port(self, i: int) -> int:
        return self.cluster.servers[i].mqtt_port


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    try:
        find_binary("nats-server")
    except ServiceError:
        pytest.skip("nats-server is not installed (make os-packages installs Debian's nats-server)")
    pki = make_pki(tmp_path / "pki")
    security = NatsSecurity(
        ca_file=pki.ca_cert,
        cert_file=pki.server_cert,
        key_file=pki.server_key,
        # The aggregator's login has no permissions: it reads and writes all of envnet/v1.
        users=(NatsUser(AGGREGATOR, PASSWORDS[AGGREGATOR]), node_user(EDGE), node_user(PLANT)),
        probe_user=AGGREGATOR,
    )
    with NatsCluster(tmp_path / "nats", security=security) as cluster:
        yield Secured(cluster, security)


def aggregator_env(config: Path, ca_file: Path, url: str) -> tuple[int, dict[str, str]]:
    """Its metrics port and environment; [mqtt] ca_file in agg.toml, the URL (with the
    login) in ENVNET_MQTT_URL."""
    port = free_port()
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + f'[mqtt]\nca_file = "{ca_file}"\n[metrics]\nport = {port}\n', encoding="utf-8"
    )
    return port, clean_env(ENVNET_MQTT_URL=url)


def log_lines(path: Path, event: str) -> list[str]:
    """The lines of a logfmt log (the default of envnet's processes) with this event."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return [line for line in text.splitlines() if f" event={event} " in f"{line} "]


def logged_twice(path: Path, event: str) -> Callable[[], bool]:
    return lambda: len(log_lines(path, event)) >= 2


@dataclass
class Client:
    """A paho client on server `server` of the secured cluster, logged in as `user`,
    subscribed at QoS 1 to `subscribe`; records CONNACK, SUBACK and messages."""

    secured: Secured
    user: str | None
    password: str | None
    server: int
    subscribe: list[str] = field(default_factory=list)
    client_id: str = ""
    clean_session: bool = True
    connack: list[ReasonCode] = field(default_factory=list)
    disconnects: list[ReasonCode] = field(default_factory=list)
    suback: list[ReasonCode] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=self.clean_session,
        )
        client.tls_set(
            ca_certs=str(self.secured.security.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        if self.user is not None:
            client.username_pw_set(self.user, self.password)
        subscribed = threading.Event()

        def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
            self.connack.append(rc)
            if rc.is_failure or not self.subscribe:
                subscribed.set()
                return
            c.subscribe([(topic, 1) for topic in self.subscribe])

        def on_subscribe(
            c: mqtt.Client, u: object, mid: int, codes: list[ReasonCode], p: object
        ) -> None:
            self.suback.extend(codes)
            subscribed.set()

        def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((m.topic, bytes(m.payload)))

        def on_disconnect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
            self.disconnects.append(rc)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", self.secured.port(self.server))
        client.loop_start()
        self.client = client
        assert subscribed.wait(30), f"{self.user}: no CONNACK or SUBACK in 30 s"

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload in self.messages if t == topic]

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1, returning once the broker has acknowledged (routed or dropped) it."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=30)
        assert info.is_published(), topic

    def stop(self) -> None:
        self.client.on_disconnect = None
        self.client.disconnect()
        self.client.loop_stop()


def test_the_edge_and_the_aggregator_over_tls_with_logins_across_the_cluster(
    secured: Secured, influxd: Influxd, tmp_path: Path
) -> None:
    """The real `envnet edge` on server 0 as its node login (node permissions), the real
    `envnet aggregator` on server 1 as its own: readings stored in InfluxDB, acks back to
    the edge, whose journal drains; its retained online status read on server 2."""
    cluster, ca = secured.cluster, secured.security.ca_file
    journal = tmp_path / "edge.sqlite"
    config = write_aggregator_config(tmp_path, influxd)
    port, env = aggregator_env(config, ca, cluster.login_url(1, AGGREGATOR))
    edge_log = tmp_path / "edge.log"
    edge_config = edge_toml(tmp_path, cluster.login_url(0, EDGE), ca)
    with edge_agent(edge_config, edge_log):
        wait_for(lambda: journal_depth(journal) >= 5, WAIT_S, "readings journaled, no aggregator")
        before = read_status(journal, 0)
        assert before.last_ack_ms is None
        snapshot_ms = time.time_ns() // 1_000_000
        with EnvnetAggregator(tmp_path / "aggregator", config, port, env) as aggregator:
            up_ms = time.time_ns() // 1_000_000

            def drained() -> bool:
                status = read_status(journal, 0)
                oldest = status.oldest_ts
                return status.last_ack_ms is not None and (oldest is None or oldest > up_ms)

            wait_for(drained, WAIT_S, "the edge's journal drained by acks over TLS")
            stored = (
                f"SELECT COUNT(value) FROM readings WHERE node='{EDGE}' AND time <= {snapshot_ms}ms"
            )
            wait_for(lambda: count(influxd, stored) >= before.depth, WAIT_S, "readings stored")
            assert aggregator.metric("envnet_mqtt_connected") == 1.0
            # The edge's status (retained, its own topic) is readable on the third server.
            watcher = Client(secured, AGGREGATOR, PASSWORDS[AGGREGATOR], 2,
                             subscribe=[topics.status(EDGE)])  # fmt: skip
            try:
                wait_for(lambda: bool(watcher.payloads(topics.status(EDGE))), WAIT_S,
                         "the edge's retained status on server 2")  # fmt: skip
                status = codec.STATUS.decode(watcher.payloads(topics.status(EDGE))[-1])
                assert status.state == "online"
            finally:
                watcher.stop()
    # Nothing was refused on the way, and no password reached a log.
    assert log_lines(edge_log, "broker_refused") == []
    for path in (edge_log, aggregator.log_path):
        text = path.read_text(errors="replace")
        assert not any(p in text for p in PASSWORDS.values()), path


def test_a_wrong_password_is_refused_and_the_edge_and_the_aggregator_say_so(
    secured: Secured, influxd: Influxd, tmp_path: Path
) -> None:
    ca = secured.security.ca_file
    port = secured.port(0)
    assert mqtt_connack(port, (EDGE, PASSWORDS[EDGE]), ca) == ACCEPTED
    # nats-server answers "Not authorized" (5) for a wrong password, an unknown user and
    # no login at all, as mosquitto does, not "Bad user name or password" (4).
    for login in [(EDGE, PASSWORDS[PLANT]), ("node-z", PASSWORDS[EDGE]), None]:
        assert mqtt_connack(port, login, ca) == NOT_AUTHORIZED, login
    # Without TLS the listener gives no CONNACK at all.
    assert mqtt_connack(port, (EDGE, PASSWORDS[EDGE])) is None

    # The real edge: logs broker_refused with the reason and journals, unacked.
    edge_log = tmp_path / "edge.log"
    url = secured.cluster.login_url(0, EDGE).replace(PASSWORDS[EDGE], "not-the-password")
    journal = tmp_path / "edge.sqlite"
    with edge_agent(edge_toml(tmp_path, url, ca), edge_log):
        wait_for(logged_twice(edge_log, "broker_refused"), WAIT_S,
                 "the edge's broker_refused, twice (it keeps retrying)")  # fmt: skip
        wait_for(lambda: journal_depth(journal) >= 2, WAIT_S, "readings journaled meanwhile")
        assert read_status(journal, 0).last_ack_ms is None
    refused = log_lines(edge_log, "broker_refused")
    assert all("Not authorized" in line for line in refused), refused
    assert log_lines(edge_log, "connected") == []

    # The real aggregator: logs subscriber_disconnected (and publisher_disconnected) with
    # the reason, reports envnet_mqtt_connected 0, and keeps retrying.
    config = write_aggregator_config(tmp_path, influxd)
    wrong = secured.cluster.login_url(1, AGGREGATOR).replace(PASSWORDS[AGGREGATOR], "nope")
    metrics_port, env = aggregator_env(config, ca, wrong)
    aggregator = EnvnetAggregator(tmp_path / "aggregator", config, metrics_port, env)
    log_path = aggregator.log_path
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [*ENVNET, "aggregator", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        for event in ("subscriber_disconnected", "publisher_disconnected"):
            wait_for(logged_twice(log_path, event), WAIT_S, f"the aggregator's {event}, twice")
        wait_for(lambda: aggregator.metric("envnet_mqtt_connected") == 0.0, WAIT_S,
                 "envnet_mqtt_connected 0 on /metrics")  # fmt: skip
        assert process.poll() is None, "the aggregator exited on a refused login"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # paho (the publisher) reports CONNACK 5 as error="[code:135] Not authorized", the intake
    # connection as error="mqtts://… refused the connection: Not authorized".
    lost = log_lines(log_path, "subscriber_disconnected") + log_lines(
        log_path, "publisher_disconnected"
    )
    assert all("Not authorized" in line for line in lost), lost
    for path in (edge_log, log_path):
        text = path.read_text(errors="replace")
        assert "not-the-password" not in text and "nope" not in text, path


def readings_from(node: str, seq: int) -> bytes:
    reading = Reading(ts=START_MS, quantity="pm2_5", value=35.0, unit="ug/m3", period_s=60,
                      stat="mean", sensor="pm")  # fmt: skip
    return codec.READINGS.encode(ReadingsMessage(READINGS_SCHEMA, node, seq, [reading]))


def test_a_node_cannot_publish_as_another_node_nor_subscribe_to_its_acks(
    secured: Secured,
) -> None:
    aggregator = Client(secured, AGGREGATOR, PASSWORDS[AGGREGATOR], 1,
                        subscribe=[topics.READINGS_FILTER])  # fmt: skip
    edge = Client(secured, EDGE, PASSWORDS[EDGE], 0)
    try:
        # The forged batch first, on one connection: had it passed, it would arrive first.
        # nats-server acknowledges it (PUBACK) and drops it ("Publish Violation" in its log),
        # as mosquitto does with its ACL.
        edge.publish(topics.readings(PLANT), readings_from(PLANT, 1))
        edge.publish(topics.readings(EDGE), readings_from(EDGE, 1))
        wait_for(lambda: bool(aggregator.payloads(topics.readings(EDGE))), WAIT_S,
                 "the genuine batch, on server 1")  # fmt: skip
        assert aggregator.payloads(topics.readings(PLANT)) == []
        nats_log = secured.cluster.servers[0].log_path.read_text(errors="replace")
        assert f'Publish Violation - User "{EDGE}", Subject "envnet.v1.nodes.{PLANT}.readings"' in (
            nats_log
        )
    finally:
        edge.stop()

    # Another node's ack topic: nats-server refuses the subscription (SUBACK 0x80), where
    # mosquitto grants it and delivers nothing. The node's own is granted, and delivered.
    acks = Client(secured, EDGE, PASSWORDS[EDGE], 2,
                  subscribe=[topics.ack(PLANT), topics.ack(EDGE)])  # fmt: skip
    try:
        assert [code.is_failure for code in acks.suback] == [True, False], acks.suback
        for node in (PLANT, EDGE):
            ack = AckMessage(schema=ACK_SCHEMA, node=node, seqs=[1])
            aggregator.publish(topics.ack(node), codec.ACK.encode(ack))
        wait_for(lambda: bool(acks.payloads(topics.ack(EDGE))), WAIT_S, "the edge's own ack")
        assert acks.payloads(topics.ack(PLANT)) == []
    finally:
        acks.stop()
        aggregator.stop()

    # Nor may a node read the readings of others (the aggregator's wildcard), nor the
    # subjects nats-server delivers every QoS 1 subscription on, which its permissions allow
    # ($MQTT.sub.>): as an MQTT topic that is $MQTT/sub/#, refused.
    snoop = Client(secured, PLANT, PASSWORDS[PLANT], 0,
                   subscribe=[topics.READINGS_FILTER, "$MQTT/sub/#"])  # fmt: skip
    try:
        assert [code.is_failure for code in snoop.suback] == [True, True]
    finally:
        snoop.stop()


TAKEOVER_WATCH_S: Final = 15.0


@pytest.mark.xfail(
    strict=True,
    reason="nats-server 2.9 cannot tie a client id to the login (mosquitto's nodes' listener "
    "does, use_username_as_clientid): docs/cluster/broker.md, open",
)
def test_a_node_login_with_the_aggregators_client_id_does_not_disconnect_it(
    secured: Secured,
) -> None:
    """What tests/integration/deploy/test_tls_broker.py asserts of the shipped mosquitto.
    Expected to fail on nats-server 2.9.10 (the aggregator is disconnected within a second
    here); if it passes, the broker has learnt to protect the id: update the docs."""
    aggregator = Client(secured, AGGREGATOR, PASSWORDS[AGGREGATOR], 1,
                        subscribe=[topics.READINGS_FILTER], client_id=AGGREGATOR,
                        clean_session=False)  # fmt: skip
    node = Client(secured, EDGE, PASSWORDS[EDGE], 2, client_id=AGGREGATOR)
    try:
        assert [rc.is_failure for rc in node.connack] == [False]  # accepted, as edge-1
        # A bounded watch for the disconnect the takeover causes (no event marks its absence).
        deadline = time.monotonic() + TAKEOVER_WATCH_S
        while not aggregator.disconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        assert aggregator.disconnects == [], "a node's login disconnected the aggregator"
    finally:
        node.stop()
        aggregator.stop()
