"""The aggregator's MQTT intake client against a real mosquitto: a queued backlog arrives whole."""

from __future__ import annotations

import asyncio

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.mqtt_session import (
    SUBSCRIBE_CHUNK,
    BurstReadClient,
    SessionSettings,
    Subscriber,
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


def test_a_replicas_many_filters_are_subscribed_in_chunks_and_all_deliver(
    mosquitto: Mosquitto,
) -> None:
    """A partitioned replica subscribes one topic per owned node: thousands of filters, sent
    SUBSCRIBE_CHUNK at a time (nats-server answered a 1,057-filter SUBSCRIBE too late)."""
    nodes = 2 * SUBSCRIBE_CHUNK + 30
    topics = [f"envnet/v1/nodes/n{i:04d}/readings" for i in range(nodes)]
    subacked: list[int] = []
    received: set[str] = set()
    everything = asyncio.Event()

    async def handler(topic: str, payload: bytes) -> None:
        received.add(topic)
        if len(received) == nodes:
            everything.set()

    async def scenario() -> None:
        subscriber = Subscriber(
            SessionSettings(f"mqtt://127.0.0.1:{mosquitto.port}", "chunk-test"),
            [(topic, 1) for topic in topics],
            handler,
            read_buffer=1000,
            pause_after_s=30,
            wait_resumable=asyncio.sleep,  # type: ignore[arg-type]
            on_subscribed=subacked.append,
        )
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), 60)
            publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
            publisher.connect("127.0.0.1", mosquitto.port)
            publisher.loop_start()
            infos = [publisher.publish(topic, b"x", qos=1) for topic in topics]
            for info in infos:
                info.wait_for_publish(timeout=10)
            publisher.loop_stop()
            await asyncio.wait_for(everything.wait(), 60)
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert received == set(topics)
    assert subacked == [SUBSCRIBE_CHUNK, 2 * SUBSCRIBE_CHUNK, nodes]
