"""publish_batch against a real mosquitto: every message arrives, and the count returned is
what the broker acknowledged."""

from __future__ import annotations

import asyncio
import time

import aiomqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.publish_batch import publish_batch
from simulators.local_stack import Mosquitto

pytestmark = pytest.mark.integration


def test_a_batch_is_delivered_whole_and_counted_once_acknowledged(mosquitto: Mosquitto) -> None:
    # More than the client's 1000 in flight, so paho queues some and sends them on PUBACKs.
    count = 2500
    received: list[bytes] = []
    subscribed: list[bool] = []
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    sub.on_subscribe = lambda *args: subscribed.append(True)
    sub.on_message = lambda c, u, m: received.append(bytes(m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("t/#", qos=1)
    sub.loop_start()
    try:
        deadline = time.monotonic() + 30
        while not subscribed and time.monotonic() < deadline:
            time.sleep(0.01)
        messages = [(f"t/{i % 100}", str(i).encode()) for i in range(count)]

        async def scenario() -> tuple[int, int]:
            async with aiomqtt.Client(
                "127.0.0.1", mosquitto.port, max_inflight_messages=1000
            ) as client:
                acknowledged = await publish_batch(client, messages, 1, timeout_s=30)
                return acknowledged, len(client._pending_publishes)

        acknowledged, left_pending = asyncio.run(asyncio.wait_for(scenario(), 60))
        assert acknowledged == count
        assert left_pending == 0
        deadline = time.monotonic() + 30
        while len(received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(int(p) for p in received) == list(range(count))
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_nothing_is_counted_when_the_client_cannot_publish(mosquitto: Mosquitto) -> None:
    async def scenario() -> int:
        client = aiomqtt.Client("127.0.0.1", mosquitto.port)  # never connected
        return await publish_batch(client, [("t/x", b"1"), ("t/y", b"2")], 1, timeout_s=1)

    assert asyncio.run(scenario()) == 0
