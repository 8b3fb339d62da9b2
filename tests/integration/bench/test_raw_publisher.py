"""The bench's lean publishing client against a real mosquitto: every QoS 1 PUBLISH is
PUBACKed, the messages it subscribed to arrive in order, and a lost broker is an error."""

from __future__ import annotations

import time

import pytest

from bench._raw_mqtt import RawPublisher, Received
from simulators.local_stack import Mosquitto

DEADLINE_S = 60.0
COUNT = 2000


def _loop_until(client: RawPublisher, done: object, into: Received) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {into}"
        got = client.loop(0.05)
        into.pubacks += got.pubacks
        into.subacks += got.subacks
        into.connected = into.connected or got.connected
        into.messages += got.messages


def test_publishes_are_acked_and_subscriptions_delivered(mosquitto: Mosquitto) -> None:
    client = RawPublisher(mosquitto.port, "raw-test")
    seen = Received()
    try:
        _loop_until(client, lambda: seen.connected, seen)
        client.subscribe([("raw/#", 1)])
        _loop_until(client, lambda: seen.subacks == 1, seen)
        for i in range(COUNT):
            client.publish("raw/n1", str(i).encode())
        _loop_until(client, lambda: seen.pubacks == COUNT and len(seen.messages) == COUNT, seen)
    finally:
        client.close()
    assert [payload for _, payload, _ in seen.messages] == [str(i).encode() for i in range(COUNT)]
    assert all(packet_id for _, _, packet_id in seen.messages)  # QoS 1: each one PUBACKed by us


def test_a_lost_broker_is_an_error(mosquitto: Mosquitto) -> None:
    client = RawPublisher(mosquitto.port, "raw-test-lost")
    seen = Received()
    try:
        _loop_until(client, lambda: seen.connected, seen)
        mosquitto.stop()
        with pytest.raises(OSError, match=r"closed|reset|pipe"):
            _publish_until_it_fails(client)
    finally:
        client.close()


def _publish_until_it_fails(client: RawPublisher) -> None:
    """RawMqttError when the broker closed the connection, or the socket's own error."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        client.publish("raw/n1", b"x")
        client.loop(0.05)
