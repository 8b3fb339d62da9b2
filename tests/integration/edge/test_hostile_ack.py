"""A hostile payload on a node's ack topic (100,000 levels of nesting, non-UTF-8, another
node's ack) neither kills the edge agent's link nor stops a real ack from deleting journal
rows (issue 9, item 1). Real mosquitto; the test plays the aggregator's ack."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt

from edge.journal import Journal, read_status
from schemas import codec, topics
from schemas.messages import ACK_SCHEMA, REFUSAL_SCHEMA, AckMessage, RefusalMessage
from simulators.local_stack import Mosquitto
from tests.support.edge_harness import node_config, running_agent
from tests.support.harness import MqttProbe, publisher, wait_for
from tests.unit.aggregator.intake.test_hostile_payloads import nested, nested_objects

NODE: Final = "edge-hostile"
START: Final = 1_796_000_000_000


def send(client: mqtt.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=30)
    assert info.is_published()


def test_hostile_acks_do_not_kill_the_link_and_a_real_ack_still_deletes(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = node_config(NODE, mosquitto.url, tmp_path, ack_timeout_s=600.0)
    probe = MqttProbe(mosquitto.port, [topics.readings(NODE)]).start()
    client = publisher(mosquitto.port)
    hostile = [
        nested_objects(100_000),
        b'{"schema": "envnet.ack/1", "node": "'
        + NODE.encode()
        + b'", "x": '
        + nested(100_000)
        + b"}",
        b"\xff\xfe\x80",
        codec.ACK.encode(AckMessage(ACK_SCHEMA, "other-node", [1])),
    ]
    with running_agent(config, START) as run:
        wait_for(lambda: len(probe.on(lambda t: True)) >= 2, 30, "two published batches")
        for payload in hostile:
            send(client, topics.ack(NODE), payload)
        wait_for(lambda: run.agent.bad_acks == len(hostile), 30, "the hostile acks refused")
        assert run.thread.is_alive()
        # The refusal topic: hostile payloads are dropped, a real refusal is kept.
        for payload in hostile[:3]:
            send(client, topics.refusal(NODE), payload)
        refusal = RefusalMessage(
            REFUSAL_SCHEMA, NODE, "invalid", "a test refusal", START, "readings", seq=1
        )
        send(client, topics.refusal(NODE), codec.REFUSAL.encode(refusal))
        wait_for(lambda: run.agent.refusals_received == 1, 30, "the real refusal")
        assert run.agent.last_refusal == refusal and run.thread.is_alive()
        sent = [codec.READINGS.decode(p) for p in probe.on(lambda t: True)]
        acked = sum(len(m.readings) for m in sent)
        send(
            client,
            topics.ack(NODE),
            codec.ACK.encode(AckMessage(ACK_SCHEMA, NODE, [m.seq for m in sent])),
        )
        wait_for(
            lambda: run.agent.journal_depth + acked <= run.producer.count(),
            30,
            "the real ack applied",
        )
        run.halt()
    probe.stop()
    client.loop_stop()
    depth = Journal(tmp_path / f"{NODE}.sqlite", 10**9, 10**9).depth()
    assert depth == run.producer.count() - acked
    last = read_status(tmp_path / f"{NODE}.sqlite", START).last_refusal
    assert last is not None and (last.reason, last.seq) == ("invalid", 1)
