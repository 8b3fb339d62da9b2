"""The aggregator's MQTT intake connection against a real mosquitto: a queued backlog arrives
whole and in order, acknowledged, under flow control; failures are connection errors."""

from __future__ import annotations

import asyncio
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.intake_connection import IntakeConnection, IntakeConnectionError
from aggregator.intake.mqtt_session import SUBSCRIBE_CHUNK, SessionSettings, Subscriber
from schemas.runtime.endpoints import MqttEndpoint
from simulators.local_stack import Mosquitto, free_port


def publish_all(port: int, topic: str, payloads: list[bytes]) -> None:
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    publisher.max_inflight_messages_set(1000)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    infos = [publisher.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(timeout=30)
    publisher.loop_stop()
    publisher.disconnect()


def connection(port: int, client_id: str) -> IntakeConnection:
    return IntakeConnection(
        MqttEndpoint("127.0.0.1", port), client_id=client_id, clean=False, keepalive_s=30
    )


async def take(conn: IntakeConnection, count: int) -> list[tuple[str, bytes]]:
    taken: list[tuple[str, bytes]] = []
    while len(taken) < count:
        if not conn.messages:
            await conn.wait()
        taken.append(conn.messages.popleft())
        conn.taken(len(taken[-1][1]))
    return taken


def test_a_queued_backlog_is_received_completely_and_in_order(mosquitto: Mosquitto) -> None:
    count = 3000
    payloads = [str(i).encode() * 50 for i in range(count)]

    async def scenario() -> list[tuple[str, bytes]]:
        async with connection(mosquitto.port, "intake-test") as conn:
            assert await conn.subscribe([("t/#", 1)], 10) == [1]
        publish_all(mosquitto.port, "t/x", payloads)
        async with connection(mosquitto.port, "intake-test") as conn:
            return await take(conn, count)  # the persistent session delivers the backlog

    received = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert received == [("t/x", payload) for payload in payloads]


def test_acknowledged_messages_are_not_delivered_again(mosquitto: Mosquitto) -> None:
    """Every QoS 1 message got its PUBACK: a reconnect brings none of them back."""

    async def scenario() -> tuple[str, bytes]:
        async with connection(mosquitto.port, "ack-test") as conn:
            await conn.subscribe([("t/#", 1)], 10)
        publish_all(mosquitto.port, "t/x", [b"%d" % i for i in range(500)])
        async with connection(mosquitto.port, "ack-test") as conn:
            await take(conn, 500)
        publish_all(mosquitto.port, "t/x", [b"marker"])
        async with connection(mosquitto.port, "ack-test") as conn:
            return (await take(conn, 1))[0]

    # Without the PUBACKs, "0" would come first (3.4.4: the broker resends unacknowledged).
    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == ("t/x", b"marker")


def test_reading_stops_at_the_high_mark_and_resumes_below_a_quarter(
    mosquitto: Mosquitto,
) -> None:
    count, high = 4000, 200

    async def scenario() -> tuple[int, list[tuple[str, bytes]]]:
        async with connection(mosquitto.port, "flow-test") as conn:
            await conn.subscribe([("t/#", 1)], 10)
        publish_all(mosquitto.port, "t/x", [b"m" * 300] * count)
        async with connection(mosquitto.port, "flow-test") as conn:
            conn.limit(high, 1 << 30)
            deadline = time.monotonic() + 30
            paused = conn.read_paused_for
            while paused(time.monotonic()) == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 - polled: the pause has no event
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # paused: nothing more may arrive meanwhile
            held = len(conn.messages)
            return held, await take(conn, count)

    held, received = asyncio.run(asyncio.wait_for(scenario(), 60))
    # One socket read may complete more than the mark: at most 256 KiB of 300-byte messages.
    assert high <= held < high + 1000
    assert len(received) == count


def test_a_refused_login_and_a_closed_port_are_connection_errors(mosquitto: Mosquitto) -> None:
    async def refused_port() -> None:
        async with connection(free_port(), "nobody"):
            pass

    with pytest.raises(IntakeConnectionError, match="cannot connect"):
        asyncio.run(refused_port())

    async def lost_broker() -> str:
        async with connection(mosquitto.port, "lost-test") as conn:
            await conn.subscribe([("t/#", 1)], 10)
            mosquitto.kill()
            try:
                await asyncio.wait_for(conn.wait(), 30)
            except IntakeConnectionError as exc:
                return str(exc)
        return "no error"

    assert "closed by the broker" in asyncio.run(lost_broker())


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
