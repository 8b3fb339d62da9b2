"""The aggregator's MQTT intake client without a broker (against a real mosquitto:
tests/integration/aggregator/test_mqtt_session.py).

BurstReadClient overrides a private hook of aiomqtt 2.5 (see its docstring); the first test
is a tripwire for an aiomqtt upgrade that changes what it relies on.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator

import aiomqtt
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from aggregator.intake.mqtt_session import (
    FlowQueue,
    SessionSettings,
    Subscriber,
    chunked,
    refused_filters,
)


def test_the_aiomqtt_hooks_it_overrides_still_exist() -> None:
    base = inspect.signature(aiomqtt.Client._on_socket_open)
    assert list(base.parameters) == ["self", "client", "userdata", "sock"]
    assert inspect.iscoroutinefunction(aiomqtt.Client._misc_loop)

    async def construct() -> None:
        client = aiomqtt.Client("127.0.0.1", 1)
        assert isinstance(client._disconnected, asyncio.Future)
        assert isinstance(client._queue, asyncio.Queue)  # received messages, counted per read
        assert client._loop is asyncio.get_running_loop()
        assert hasattr(client, "_misc_task")

    asyncio.run(construct())


def test_the_consumer_lets_the_event_loop_run_while_it_works_through_a_full_queue() -> None:
    """Handling rarely waits, so without slicing a full receive queue would be handled in one
    go while no InfluxDB response is read and no frame reaches the alerting worker."""
    count = 50
    handled: list[bytes] = []
    seen_by_other_task: list[int] = []
    all_handled = asyncio.Event()

    async def handler(topic: str, payload: bytes) -> None:
        # CPU work without awaiting, as decoding a 100-reading message is: 1 ms each.
        end = time.perf_counter() + 0.001
        while time.perf_counter() < end:
            pass
        handled.append(payload)
        if len(handled) == count:
            all_handled.set()

    class IdleClient:
        """What the consumer waits on once the queue is empty: nothing more arrives."""

        @property
        def messages(self) -> AsyncIterator[aiomqtt.Message]:
            async def never() -> AsyncIterator[aiomqtt.Message]:
                await asyncio.Event().wait()
                yield  # type: ignore[misc]

            return never()

    async def scenario() -> None:
        subscriber = Subscriber(
            SessionSettings("mqtt://127.0.0.1:1", "slice-test"),
            [],
            handler,
            read_buffer=count,
            pause_after_s=5,
            wait_resumable=asyncio.sleep,  # type: ignore[arg-type]
        )
        queue = FlowQueue()
        for i in range(count):
            queue.put_nowait(aiomqtt.Message("t", str(i).encode(), 1, False, i + 1, None))
        subscriber._queue = queue

        async def other() -> None:
            seen_by_other_task.append(len(handled))

        consumer = asyncio.create_task(subscriber._consume(IdleClient()))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the consumer starts first, with the whole queue before it
        await other()
        try:
            await asyncio.wait_for(all_handled.wait(), 30)
        finally:
            consumer.cancel()

    asyncio.run(scenario())
    assert len(handled) == count
    # The other task ran after one slice (CONSUME_SLICE_S = 2 ms: about 3 messages of 1 ms),
    # not after all 50.
    assert 1 <= seen_by_other_task[0] <= 10


@given(st.lists(st.integers(), max_size=200), st.integers(min_value=1, max_value=60))
def test_chunked_keeps_order_and_bounds_every_chunk(items: list[int], size: int) -> None:
    chunks = list(chunked(items, size))
    assert [item for chunk in chunks for item in chunk] == items
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert all(len(chunk) == size for chunk in chunks[:-1])


def test_refused_filters_are_those_a_suback_answered_0x80() -> None:
    subscriptions = [("a", 1), ("b", 1), ("c", 1)]
    granted = ReasonCode(PacketTypes.SUBACK, identifier=1)
    failed = ReasonCode(PacketTypes.SUBACK, identifier=0x80)
    assert refused_filters(subscriptions, [granted, failed, granted]) == ["b"]
    assert refused_filters(subscriptions, [1, 0x80, 0x80]) == ["b", "c"]
    assert refused_filters(subscriptions, [1, 1, 1]) == []


class _ReadSwitch:
    """Stands in for BurstReadClient's flow control: whether the socket is being read."""

    def __init__(self) -> None:
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def _message(size: int, mid: int = 1) -> aiomqtt.Message:
    return aiomqtt.Message("t", b"x" * size, 1, False, mid, None)


def test_the_receive_queue_stops_reading_at_its_byte_bound_before_its_message_bound() -> None:
    # Backlog messages of 100 readings are about 11 kB: 2000 of them held 22 MiB.
    switch = _ReadSwitch()
    queue = FlowQueue()
    queue.attach(switch, high=2000, high_bytes=110_000)  # type: ignore[arg-type]
    for i in range(9):
        queue.put_nowait(_message(11_000, i + 1))
    assert switch.reading and queue.bytes == 99_000
    queue.put_nowait(_message(11_000))
    assert not switch.reading  # 10 messages, 110 kB: far below 2000 messages
    # Reading resumes once the bytes are down to a quarter (27.5 kB): 2 messages left.
    for left in range(9, 2, -1):
        queue.get_nowait()
        assert not switch.reading, left
    queue.get_nowait()
    assert switch.reading and queue.bytes == 22_000


def test_the_receive_queue_still_stops_reading_at_its_message_bound() -> None:
    switch = _ReadSwitch()
    queue = FlowQueue()
    queue.attach(switch, high=8, high_bytes=1_000_000)  # type: ignore[arg-type]
    for i in range(8):
        queue.put_nowait(_message(700, i + 1))
    assert not switch.reading
    for _ in range(6):  # down to 2 messages, a quarter of 8
        queue.get_nowait()
    assert switch.reading


def test_a_message_larger_than_the_byte_bound_is_read_and_handled() -> None:
    # One oversized payload pauses reading; taking it resumes it (no deadlock).
    switch = _ReadSwitch()
    queue = FlowQueue()
    queue.attach(switch, high=2000, high_bytes=64 * 1024)  # type: ignore[arg-type]
    queue.put_nowait(_message(1024 * 1024))
    assert not switch.reading
    queue.get_nowait()
    assert switch.reading and queue.bytes == 0
