"""A bare subscriber process that only counts readings messages: the MQTT intake ceiling.

Three implementations, with the aggregator's client options (MQTT 3.1.1, persistent session,
max_inflight_messages=1000):
- "intake": the aggregator's own intake connection (aggregator.intake.intake_connection),
  taking messages straight off its deque: the ceiling the aggregator is measured against;
- "aiomqtt": plain aiomqtt 2.5 with `async for message in client.messages`, as documented;
- "paho": paho-mqtt's own network loop with a counting callback.

The count and the time of the last message live in shared memory for the parent to poll.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any, Literal, Protocol, TypeVar

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.intake_connection import IntakeConnection
from schemas import topics
from schemas.runtime.endpoints import MqttEndpoint

C = TypeVar("C", bound=aiomqtt.Client)

SubscriberKind = Literal["intake", "aiomqtt", "paho"]


@dataclass(frozen=True, slots=True)
class SubscriberSpec:
    port: int
    kind: SubscriberKind
    client_id: str = "bench-bare-subscriber"


class IntCell(Protocol):
    value: int


class FloatCell(Protocol):
    value: float


@dataclass(frozen=True, slots=True)
class Counters:
    """Shared with the parent (lock-free multiprocessing.RawValue cells, one writer):
    messages received, and the perf_counter of the last one."""

    messages: IntCell
    last_at: FloatCell


def _connect(client: type[C], spec: SubscriberSpec, **extra: Any) -> C:
    """A persistent session on the bench broker, with the aggregator's window of 1000."""
    return client(
        "127.0.0.1",
        spec.port,
        identifier=spec.client_id,
        clean_session=False,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=30,
        max_inflight_messages=1000,
        **extra,
    )


async def _count_aiomqtt(spec: SubscriberSpec, ready: Event, counters: Counters) -> None:
    if spec.kind == "intake":
        await _count_intake(spec, ready, counters)
        return
    client = _connect(aiomqtt.Client, spec)
    messages = counters.messages
    last_at = counters.last_at
    async with client:
        await client.subscribe(topics.READINGS_FILTER, qos=1)
        ready.set()
        n = 0
        async for _ in client.messages:
            n += 1
            messages.value = n
            last_at.value = time.perf_counter()


async def _count_intake(spec: SubscriberSpec, ready: Event, counters: Counters) -> None:
    """The aggregator's own intake connection (aggregator.intake.intake_connection), messages
    taken straight off its deque with no processing: what the aggregator could receive if
    handling cost nothing."""
    connection = IntakeConnection(
        MqttEndpoint("127.0.0.1", spec.port),
        client_id=spec.client_id,
        clean=False,
        keepalive_s=30,
    )
    count = counters.messages
    last_at = counters.last_at
    async with connection:
        await connection.subscribe([(topics.READINGS_FILTER, 1)], 60)
        ready.set()
        messages = connection.messages
        n = 0
        while True:
            if not messages:
                await connection.wait()
            n += len(messages)
            messages.clear()
            count.value = n
            last_at.value = time.perf_counter()


def _count_paho(spec: SubscriberSpec, ready: Event, counters: Counters) -> None:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=spec.client_id,
        clean_session=False,
    )
    client.max_inflight_messages_set(1000)
    messages = counters.messages
    last_at = counters.last_at

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        c.subscribe(topics.READINGS_FILTER, qos=1)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
        ready.set()

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        messages.value += 1
        last_at.value = time.perf_counter()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", spec.port, keepalive=30)
    client.loop_forever()


def run_subscriber(spec: SubscriberSpec, ready: Event, counters: Counters) -> None:
    """Process entry point; runs until the parent terminates it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.kind in ("intake", "aiomqtt"):
        asyncio.run(_count_aiomqtt(spec, ready, counters))
    else:
        _count_paho(spec, ready, counters)
