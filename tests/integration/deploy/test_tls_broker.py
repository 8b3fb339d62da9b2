"""mqtts:// with per-node credentials on a real mosquitto running the shipped TLS config and
ACL: the edge publishes with its own login and CA file and its readings are stored and acked;
a wrong password is refused; node X cannot publish as node Y, nor read Y's acks; a node that
logs in with the aggregator's client id neither disconnects the aggregator nor discards the
readings the broker holds for it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from aggregator.fleet import Fleet, NodeInfo
from schemas import codec
from schemas.messages import ACK_SCHEMA, READINGS_SCHEMA, AckMessage, Reading, ReadingsMessage
from simulators.local_stack import Influxd
from tests.support.edge_harness import drain_and_stop, node_config, running_agent
from tests.support.harness import aggregator_config, count, running_aggregator, wait_for
from tests.support.tls_broker import (
    ADD_NODE,
    TlsBroker,
    TlsProbe,
    add_node,
    connect_result,
    tls_broker,
    tls_probe,
)

USERS = {"node-x": "x-secret", "node-y": "y-secret", "envnet-aggregator": "agg-secret"}
FLEET = Fleet({"node-x": NodeInfo(site="X"), "node-y": NodeInfo(site="Y")})
START = 1_796_000_000_000


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsBroker]:
    with tls_broker(tmp_path / "tls", USERS) as broker:
        yield broker


def readings_from(node: str, seq: int) -> bytes:
    reading = Reading(
        ts=START, quantity="pm2_5", value=35.0, unit="ug/m3", period_s=60, stat="mean", sensor="pm"
    )
    message = ReadingsMessage(schema=READINGS_SCHEMA, node=node, seq=seq, readings=[reading])
    return codec.READINGS.encode(message)


def test_the_edge_publishes_over_mqtts_with_its_login_and_its_acks_come_back(
    tls: TlsBroker, influxd: Influxd, tmp_path: Path
) -> None:
    agg = aggregator_config(tls.broker, influxd.url, tmp_path)
    agg = msgspec.structs.replace(
        agg,
        mqtt=msgspec.structs.replace(
            agg.mqtt, url=tls.url("envnet-aggregator"), ca_file=str(tls.pki.ca_cert)
        ),
    )
    node = node_config("node-x", tls.url("node-x"), tmp_path, report_s=5)
    node = msgspec.structs.replace(
        node, mqtt=msgspec.structs.replace(node.mqtt, ca_file=str(tls.pki.ca_cert))
    )
    with running_aggregator(agg, FLEET), running_agent(node, START, accel=20.0) as run:
        # Stored in InfluxDB and acked back to the node through its ACL: the journal drains.
        wait_for(lambda: run.producer.count() >= 4, 30, "four readings sampled")
        drain_and_stop(run, 30, "readings acked over TLS")
        query = "SELECT count(value) FROM readings WHERE node='node-x'"
        wait_for(lambda: count(influxd, query) == run.producer.count(), 20, "all stored")


def test_a_wrong_password_or_no_login_is_refused(tls: TlsBroker) -> None:
    assert not connect_result(tls, "node-x", USERS["node-x"]).is_failure
    # mosquitto answers "Not authorized" (5) for a wrong password and for an unknown user,
    # not "Bad user name or password" (4).
    for user, password in [("node-x", "y-secret"), ("node-z", "x-secret"), (None, None)]:
        result = connect_result(tls, user, password)
        assert result.is_failure and result.getName() == "Not authorized", (user, result)


def test_node_x_cannot_publish_as_node_y_nor_read_its_acks(tls: TlsBroker) -> None:
    aggregator = tls_probe(tls, "envnet-aggregator", ["envnet/v1/nodes/+/readings"])
    x = tls_probe(tls, "node-x", [])
    try:
        # Published in this order on one connection: had the broker passed the forged one,
        # it would have arrived before the genuine one.
        x.client.publish("envnet/v1/nodes/node-y/readings", readings_from("node-y", 1), qos=1)
        x.client.publish("envnet/v1/nodes/node-x/readings", readings_from("node-x", 1), qos=1)
        wait_for(lambda: bool(aggregator.on(lambda t: "node-x" in t)), 10, "node-x readings")
        assert aggregator.on(lambda t: "node-y" in t) == []

        # mosquitto grants the subscription but never delivers what the ACL does not let
        # node-x read: acks go out to node-y first, then to node-x, on one connection.
        # (One connection per node: the broker makes the username the client id, so a
        # second node-x connection would take over the first.)
        x.stop()
        acks = tls_probe(
            tls, "node-x", ["envnet/v1/nodes/node-y/ack", "envnet/v1/nodes/node-x/ack"]
        )
        try:
            for node in ("node-y", "node-x"):
                ack = AckMessage(schema=ACK_SCHEMA, node=node, seqs=[1])
                aggregator.client.publish(
                    f"envnet/v1/nodes/{node}/ack", codec.ACK.encode(ack), qos=1
                )
            wait_for(lambda: bool(acks.on(lambda t: "node-x" in t)), 10, "node-x's ack")
            assert acks.on(lambda t: "node-y" in t) == []
        finally:
            acks.stop()
    finally:
        x.stop()
        aggregator.stop()


READINGS = "envnet/v1/nodes/+/readings"
AGGREGATOR_IDS = ("envnet-aggregator", "envnet-aggregator-pub")  # aggregator/intake/mqtt_session.py


def take_over(tls: TlsBroker, client_id: str) -> None:
    """node-x, with its own valid password, logs in with `client_id` and a clean session."""
    result = connect_result(tls, "node-x", USERS["node-x"], client_id=client_id)
    assert not result.is_failure, result  # accepted, as node-x


def test_a_node_with_the_aggregators_client_id_neither_disconnects_it_nor_empties_its_queue(
    tls: TlsBroker,
) -> None:
    def aggregator() -> TlsProbe:
        # What aggregator/intake/mqtt_session.py's subscriber does: a fixed client id, a persistent
        # session, QoS 1.
        return tls_probe(
            tls, "envnet-aggregator", [READINGS], client_id=AGGREGATOR_IDS[0], clean_session=False
        )

    agg = aggregator()
    try:
        for _ in range(8):
            for client_id in AGGREGATOR_IDS:
                take_over(tls, client_id)
        x = tls_probe(tls, "node-x", [])
        x.client.publish("envnet/v1/nodes/node-x/readings", readings_from("node-x", 1), qos=1)
        wait_for(lambda: len(agg.on(lambda t: True)) == 1, 10, "the reading, still connected")
        x.stop()
        assert agg.disconnects == [], "a node's login disconnected the aggregator"
    finally:
        agg.stop()

    # The aggregator away (paused, restarting): the broker queues for its session.
    x = tls_probe(tls, "node-x", [])
    for seq in range(2, 7):
        x.client.publish("envnet/v1/nodes/node-x/readings", readings_from("node-x", seq), qos=1)
    x.stop()
    take_over(tls, AGGREGATOR_IDS[0])
    # A node's login is not accepted on the services' listener at all.
    refused = connect_result(tls, "node-x", USERS["node-x"], tls.broker.services_port)
    assert refused.is_failure and refused.getName() == "Not authorized"

    back = aggregator()
    try:
        wait_for(lambda: len(back.on(lambda t: True)) == 5, 10, "the 5 queued readings")
        seqs = sorted(codec.READINGS.decode(p).seq for p in back.on(lambda t: True))
        assert seqs == [2, 3, 4, 5, 6]
    finally:
        back.stop()


def test_the_aggregator_stays_connected_and_stores_while_a_node_uses_its_client_ids(
    tls: TlsBroker, influxd: Influxd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agg = aggregator_config(tls.broker, influxd.url, tmp_path)
    agg = msgspec.structs.replace(
        agg,
        mqtt=msgspec.structs.replace(
            agg.mqtt, url=tls.url("envnet-aggregator"), ca_file=str(tls.pki.ca_cert)
        ),
    )
    with running_aggregator(agg, FLEET) as running:
        acks = tls_probe(tls, "node-x", ["envnet/v1/nodes/node-x/ack"])
        try:
            for seq in range(1, 9):
                for client_id in AGGREGATOR_IDS:
                    take_over(tls, client_id)
                acks.client.publish(
                    "envnet/v1/nodes/node-x/readings", readings_from("node-x", seq), qos=1
                )
            wait_for(
                lambda: (
                    running.metric("envnet_acks_sent_total") >= 1
                    and {s for p in acks.on(lambda t: True) for s in codec.ACK.decode(p).seqs}
                    == set(range(1, 9))
                ),
                30,
                "every batch acked",
            )
        finally:
            acks.stop()
        assert running.metric("envnet_mqtt_connected") == 1
    lost = [r.getMessage() for r in caplog.records if r.getMessage().endswith("_disconnected")]
    assert lost == [], lost


def test_add_node_keeps_node_ids_out_of_the_services_client_ids(tmp_path: Path) -> None:
    passwd = tmp_path / "envnet.passwd"
    for argv in (["envnet-aggregator"], ["envnet-aggregator-pub"], ["--service", "node-x"]):
        done = subprocess.run(
            ["bash", str(ADD_NODE), "--passwd", str(passwd), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert "envnet-" in done.stderr
    assert not passwd.exists()
    lines = add_node(passwd, "envnet-aggregator", "agg-secret")  # --service, as a service
    assert ":8884" in lines
