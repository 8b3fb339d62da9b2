"""The aggregator's MQTT sessions without a broker (against a real mosquitto:
tests/integration/aggregator/test_mqtt_session.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from hypothesis import given
from hypothesis import strategies as st

from aggregator.intake.intake_connection import IntakeConnection, IntakeConnectionError
from aggregator.intake.mqtt_session import (
    SessionSettings,
    Subscriber,
    chunked,
    refused_filters,
)


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

    async def scenario() -> None:
        subscriber = Subscriber(
            SessionSettings("mqtt://127.0.0.1:1", "slice-test"),
            [],
            handler,
            read_buffer=count,
            pause_after_s=5,
            wait_resumable=asyncio.sleep,  # type: ignore[arg-type]
        )
        # Never connected: once its messages are handled, the consumer ends with
        # IntakeConnectionError, as on a lost connection.
        connection = IntakeConnection(
            subscriber.brokers.endpoint, client_id="slice-test", clean=False, keepalive_s=30
        )
        connection.messages.extend(("t", str(i).encode()) for i in range(count))

        async def other() -> None:
            seen_by_other_task.append(len(handled))

        consumer = asyncio.create_task(subscriber._consume(connection))
        await asyncio.sleep(0)  # the consumer starts first, with the whole queue before it
        await other()
        try:
            await asyncio.wait_for(all_handled.wait(), 30)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, IntakeConnectionError):
                await consumer

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
    assert refused_filters(subscriptions, [1, 0x80, 0x80]) == ["b", "c"]
    assert refused_filters(subscriptions, [1, 1, 1]) == []


def unconnected() -> IntakeConnection:
    """Flow control is bookkeeping: a connection never connected keeps it too."""
    endpoint = SessionSettings("mqtt://127.0.0.1:1").endpoint()
    return IntakeConnection(endpoint, client_id="flow-test", clean=False, keepalive_s=30)


def reading(connection: IntakeConnection) -> bool:
    return connection.read_paused_for(time.monotonic()) == 0


def take_one(connection: IntakeConnection) -> None:
    connection.taken(len(connection.messages.popleft()[1]))


def test_intake_stops_reading_at_its_byte_bound_before_its_message_bound() -> None:
    # Backlog messages of 100 readings are about 11 kB: 2000 of them held 22 MiB.
    connection = unconnected()
    connection.limit(2000, 110_000)
    connection.received([("t", b"x" * 11_000, i + 1) for i in range(9)])
    assert reading(connection) and connection.bytes == 99_000
    connection.received([("t", b"x" * 11_000, 10)])
    assert not reading(connection)  # 10 messages, 110 kB: far below 2000 messages
    # Reading resumes once the bytes are down to a quarter (27.5 kB): 2 messages left.
    for left in range(9, 2, -1):
        take_one(connection)
        assert not reading(connection), left
    take_one(connection)
    assert reading(connection) and connection.bytes == 22_000


def test_intake_still_stops_reading_at_its_message_bound() -> None:
    connection = unconnected()
    connection.limit(8, 1_000_000)
    connection.received([("t", b"x" * 700, i + 1) for i in range(8)])
    assert not reading(connection)
    for _ in range(6):  # down to 2 messages, a quarter of 8
        take_one(connection)
    assert reading(connection)


def test_a_message_larger_than_the_byte_bound_is_read_and_handled() -> None:
    # One oversized payload pauses reading; taking it resumes it (no deadlock).
    connection = unconnected()
    connection.limit(2000, 64 * 1024)
    connection.received([("t", b"x" * 1024 * 1024, 1)])
    assert not reading(connection)
    take_one(connection)
    assert reading(connection) and connection.bytes == 0
