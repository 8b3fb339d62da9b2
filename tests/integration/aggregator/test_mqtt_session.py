"""The aggregator's MQTT intake client against a real mosquitto: a queued backlog arrives whole."""

from __future__ import annotations

import asyncio

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.mqtt_session import (
    BurstReadClient,
)
from simulators.local_stack import Mosquitto


def test_a_queued_backlog_is_received_completely_and_in_order(mosquitto: Mosquitto) -> None:
    count = 3000

    async def scenario() -> list[bytes]:
        received: list[bytes] = []
        sub = BurstReadClient(
            "127.0.0.1",
            mosquitto.port,
            identifier="burst-test",
            clean_session=False,
            protocol=aiomqtt.ProtocolVersion.V311,
            max_inflight_messages=1000,
        )
        async with sub:
            await sub.subscribe("t/#", qos=1)
        publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        infos = [publisher.publish("t/x", str(i).encode(), qos=1) for i in range(count)]
        for info in infos:
            info.wait_for_publish(timeout=10)
        publisher.loop_stop()
        async with sub:  # the persistent session delivers the queued backlog in bursts
            async for message in sub.messages:
                assert isinstance(message.payload, bytes)
                received.append(message.payload)
                if len(received) == count:
                    break
        return received

    received = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert received == [str(i).encode() for i in range(count)]
