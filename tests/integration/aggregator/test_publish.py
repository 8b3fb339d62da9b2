"""IntakeConnection.publish (the aggregator's publisher) against a real mosquitto: every message
arrives, retained ones are kept, and the count returned is what the broker acknowledged."""

from __future__ import annotations

import asyncio
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.intake_connection import IntakeConnection
from schemas.runtime.endpoints import MqttEndpoint
from simulators.local_stack import Mosquitto

pytestmark = pytest.mark.integration


def connection(port: int) -> IntakeConnection:
    return IntakeConnection(
        MqttEndpoint("127.0.0.1", port), client_id="publish-test", clean=True, keepalive_s=30
    )


def subscriber(port: int, received: list[tuple[str, bytes, bool]]) -> mqtt.Client:
    subscribed: list[bool] = []
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    sub.on_subscribe = lambda *args: subscribed.append(True)
    sub.on_message = lambda c, u, m: received.append((m.topic, bytes(m.payload), m.retain))
    sub.connect("127.0.0.1", port)
    sub.subscribe("t/#", qos=1)
    sub.loop_start()
    deadline = time.monotonic() + 30
    while not subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    return sub


def test_a_batch_is_delivered_whole_and_counted_once_acknowledged(mosquitto: Mosquitto) -> None:
    # More than one socket read of PUBACKs, and more than paho's 1,000 in flight once were.
    count = 2500
    received: list[tuple[str, bytes, bool]] = []
    sub = subscriber(mosquitto.port, received)
    try:
        messages = [(f"t/{i % 100}", str(i).encode()) for i in range(count)]

        async def scenario() -> tuple[int, int]:
            async with connection(mosquitto.port) as publisher:
                acknowledged = await publisher.publish(messages, qos=1, timeout_s=30)
                return acknowledged, len(publisher._unacked)

        acknowledged, left_unacked = asyncio.run(asyncio.wait_for(scenario(), 60))
        assert acknowledged == count
        assert left_unacked == 0
        deadline = time.monotonic() + 30
        while len(received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(int(payload) for _, payload, _ in received) == list(range(count))
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_a_retained_message_is_kept_for_later_subscribers(mosquitto: Mosquitto) -> None:
    async def scenario() -> int:
        async with connection(mosquitto.port) as publisher:
            sent = await publisher.publish(
                [("t/alert", b"firing")], qos=1, retain=True, timeout_s=10
            )
            return sent + await publisher.publish([("t/event", b"once")], qos=0, timeout_s=10)

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == 2
    received: list[tuple[str, bytes, bool]] = []
    sub = subscriber(mosquitto.port, received)
    try:
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [("t/alert", b"firing", True)]
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_nothing_is_counted_once_the_connection_is_over(mosquitto: Mosquitto) -> None:
    async def scenario() -> int:
        publisher = connection(mosquitto.port)
        async with publisher:
            pass
        return await publisher.publish([("t/x", b"1"), ("t/y", b"2")], qos=1, timeout_s=1)

    assert asyncio.run(scenario()) == 0
