"""The aggregator's MQTT connection's failure modes that no real broker produces on demand: a
refused or missing CONNACK, a malformed packet, a broker gone silent, PUBACKs missing. A
scripted loopback server stands in for the broker here; against a real mosquitto:
tests/integration/aggregator/test_mqtt_session.py and test_publish.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from aggregator.intake.intake_connection import (
    IntakeConnection,
    IntakeConnectionError,
    _Countdown,
)
from aggregator.intake.mqtt_packets import remaining_length
from schemas.runtime.endpoints import MqttEndpoint

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CONNACK_OK = b"\x20\x02\x00\x00"


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    first = await reader.readexactly(1)
    length, shift, header = 0, 0, first
    while True:
        byte = await reader.readexactly(1)
        header += byte
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if byte[0] < 0x80:
            return header + await reader.readexactly(length)


def publish(topic: bytes, payload: bytes, packet_id: int) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + remaining_length(len(body)) + body


async def with_broker(script: Script, body: Callable[[int], Awaitable[None]]) -> None:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await asyncio.wait_for(body(port), 30)
    finally:
        server.close()


def connect_to(port: int, keepalive_s: int = 30, timeout_s: float = 10) -> IntakeConnection:
    return IntakeConnection(
        MqttEndpoint("127.0.0.1", port),
        client_id="fake-test",
        clean=False,
        keepalive_s=keepalive_s,
        connect_timeout_s=timeout_s,
    )


def test_a_refused_connack_names_the_reason() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(b"\x20\x02\x00\x05")  # 3.2.2.3: not authorized

    async def body(port: int) -> None:
        with pytest.raises(IntakeConnectionError, match="refused the connection: Not authorized"):
            async with connect_to(port):
                pass

    asyncio.run(with_broker(refuse, body))


def test_no_connack_in_time_is_a_connection_error() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def body(port: int) -> None:
        with pytest.raises(IntakeConnectionError, match="no CONNACK"):
            async with connect_to(port, timeout_s=0.5):
                pass

    asyncio.run(with_broker(mute, body))


def test_a_malformed_packet_ends_the_connection_after_the_good_messages_before_it() -> None:
    acked: list[bytes] = []

    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK + publish(b"t/1", b"good", 7) + b"\xf0\x00")
        acked.append(await read_packet(reader))
        await reader.read()

    async def body(port: int) -> None:
        async with connect_to(port) as conn:
            await conn.wait()
            assert conn.messages.popleft() == ("t/1", b"good")
            with pytest.raises(IntakeConnectionError, match=r"protocol error.*type 15"):
                await conn.wait()

    asyncio.run(with_broker(garble, body))
    assert acked == [b"\x40\x02\x00\x07"]  # the good message was acknowledged


def test_a_silent_broker_is_pinged_then_given_up() -> None:
    """3.1.2.10: quiet for half a keep-alive, we send PINGREQ; no answer for 1.5 keep-alives
    and the connection is dead."""
    seen: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        while True:
            seen.append(await read_packet(reader))

    async def body(port: int) -> None:
        async with connect_to(port, keepalive_s=1) as conn:
            with pytest.raises(IntakeConnectionError, match="no packet from the broker"):
                await conn.wait()

    asyncio.run(with_broker(silent, body))
    assert b"\xc0\x00" in seen  # PINGREQ


def test_a_subscribe_without_suback_times_out_as_a_connection_error() -> None:
    async def no_suback(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        await reader.read()

    async def body(port: int) -> None:
        async with connect_to(port) as conn:
            with pytest.raises(IntakeConnectionError, match="no answer to packet 1"):
                await conn.subscribe([("t/#", 1)], 0.3)

    asyncio.run(with_broker(no_suback, body))


def test_a_connect_cancelled_during_the_handshake_closes_its_socket() -> None:
    """Shutdown while the broker has not answered yet: the socket is not left open."""
    got_connect = asyncio.Event()
    closed = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        got_connect.set()
        await reader.read()  # returns once the client closes its end
        closed.set()

    async def connect(port: int) -> None:
        async with connect_to(port):
            pass

    async def body(port: int) -> None:
        connecting = asyncio.create_task(connect(port))
        await got_connect.wait()
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        await closed.wait()

    asyncio.run(with_broker(slow, body))


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def publish_id(packet: bytes) -> int:
    """The packet id of a QoS 1 PUBLISH with a one-byte remaining length."""
    topic_end = 4 + int.from_bytes(packet[2:4], "big")
    return int.from_bytes(packet[topic_end : topic_end + 2], "big")


def test_a_batch_is_counted_as_far_as_it_is_acknowledged_when_the_wait_ends() -> None:
    """Two of three PUBACKs, then silence: the count after the timeout is 2, and the missing
    one's packet id is free again."""
    got: list[bytes] = []

    async def acks_two(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        got.extend([await read_packet(reader) for _ in range(3)])
        writer.write(puback(publish_id(got[2])) + puback(publish_id(got[0])))
        await reader.read()

    async def body(port: int) -> None:
        async with connect_to(port) as conn:
            messages = [("t/a", b"1"), ("t/b", b"2"), ("t/c", b"3")]
            assert await conn.publish(messages, qos=1, timeout_s=0.5) == 2
            assert conn._unacked == {}

    asyncio.run(with_broker(acks_two, body))
    assert [packet[0] for packet in got] == [0x32, 0x32, 0x32]  # QoS 1, not retained, not DUP
    assert len({publish_id(packet) for packet in got}) == 3


def test_a_lost_connection_ends_the_wait_at_once_with_what_was_acknowledged() -> None:
    async def acks_one_then_hangs_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        first = await read_packet(reader)
        await read_packet(reader)
        writer.write(puback(publish_id(first)))
        await writer.drain()
        writer.close()

    async def body(port: int) -> None:
        async with connect_to(port) as conn:
            started = asyncio.get_running_loop().time()
            assert await conn.publish([("t/a", b"1"), ("t/b", b"2")], qos=1, timeout_s=20) == 1
            assert asyncio.get_running_loop().time() - started < 10
            assert await conn.publish([("t/c", b"3")], qos=1, timeout_s=20) == 0  # over

    asyncio.run(with_broker(acks_one_then_hangs_up, body))


def test_qos_0_is_counted_as_sent_and_packet_ids_in_use_are_skipped() -> None:
    got: list[bytes] = []

    async def acks_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)
        writer.write(CONNACK_OK)
        while True:
            packet = await read_packet(reader)
            got.append(packet)
            if packet[0] & 0x06:  # QoS 1
                writer.write(puback(publish_id(packet)))

    async def body(port: int) -> None:
        async with connect_to(port) as conn:
            assert await conn.publish([("t/a", b"1")], qos=0, retain=True, timeout_s=1) == 1
            conn._next_id = 0xFFFE
            held = _Countdown(2, asyncio.get_running_loop().create_future())
            conn._unacked[0xFFFF] = conn._unacked[1] = held  # another batch's, unacknowledged
            assert await conn.publish([("t/b", b"2")], qos=1, timeout_s=5) == 1
            with pytest.raises(ValueError, match="QoS 2"):
                await conn.publish([("t/c", b"3")], qos=2, timeout_s=1)

    asyncio.run(with_broker(acks_all, body))
    assert got[0] == b"\x31\x06\x00\x03t/a1"  # QoS 0, retained, no packet id
    assert publish_id(got[1]) == 2  # 0xFFFF and 1 were in use
