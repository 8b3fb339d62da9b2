"""The aggregator's own MQTT 3.1.1 connection, one socket owned by one async context manager:
intake's subscriber, and the publisher's connection (acks, alert states and events).

It does what those need and no more (aggregator.intake.mqtt_packets): connect with a
persistent session (intake) or a clean one (the publisher), subscribe, receive QoS 0/1
PUBLISHes and acknowledge them, publish at QoS 0/1, keep the connection alive. What arrives in
one socket read is parsed in one call and its PUBACKs are written in one send, and messages
wait as (topic, payload) tuples in a deque. Measured against the aiomqtt client it replaces
(with a burst-reading override of aiomqtt's private reader): bench/mqtt_intake.py. A batch
of PUBLISHes (an ack flush: one per node with stored batches) goes out in one send and shares
one wait for its PUBACKs, which paho and aiomqtt handled one by one, with a few objects each:
bench/README.md, "The service's own work per live message".

Flow control is explicit: at `high_water` waiting messages it stops reading the socket (TCP
then holds the broker back) and reads again at a quarter of that.

Like the client it replaces, it acknowledges a QoS 1 message on receipt: what was received
is the aggregator's to store (the subscriber hands whatever is still waiting to the pipeline
when the connection ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self

from aggregator.intake.mqtt_packets import (
    CONNACK_REASONS,
    DISCONNECT,
    PINGREQ,
    ConnAck,
    Control,
    PacketReader,
    PingResp,
    ProtocolError,
    PubAck,
    Publish,
    SubAck,
    UnsubAck,
    connect_packet,
    puback_packet,
    publish_packet,
    subscribe_packet,
    unsubscribe_packet,
)
from schemas.runtime.endpoints import MqttEndpoint

CONNECT_TIMEOUT_S: Final = 10.0
# 3.1.2.10: the broker drops a client silent for 1.5 keep-alives; we ping after half of one.
PING_AFTER_FRACTION: Final = 0.5
# Nothing heard for this many keep-alives (while reading) means the connection is dead.
DEAD_AFTER_KEEPALIVES: Final = 1.5


# Packet ids are 16 bits (2.3.1): one `publish` takes at most this many, so that ids stay
# free for the requests and publishes around it.
MAX_PUBLISH_BATCH: Final = 0x7FFF


class _Countdown:
    """One wait for the PUBACKs of a batch of PUBLISHes: `done` resolves when the last of them
    is acknowledged, or when the connection ends."""

    __slots__ = ("done", "left")

    def __init__(self, left: int, done: asyncio.Future[None]) -> None:
        self.left = left
        self.done = done

    def acknowledged(self) -> None:
        self.left -= 1
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)

    def give_up(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class IntakeConnectionError(Exception):
    """The connection could not be made, was refused, or was lost; the text says why."""


class _Protocol(asyncio.Protocol):
    """The socket's callbacks: parse, queue, acknowledge; no decisions of its own."""

    def __init__(self, owner: IntakeConnection) -> None:
        self._owner = owner
        self._reader = PacketReader()
        self._publishes: list[Publish] = []
        self._controls: list[Control] = []

    def data_received(self, data: bytes) -> None:
        owner = self._owner
        owner.heard_at = time.monotonic()
        publishes, controls = self._publishes, self._controls
        try:
            self._reader.feed(data, publishes, controls)
        except ProtocolError as exc:
            # The packets before the bad one are good: keep and acknowledge them.
            self._hand_over(owner)
            owner.fail(f"protocol error from the broker: {exc}")
            return
        self._hand_over(owner)

    def _hand_over(self, owner: IntakeConnection) -> None:
        if self._publishes:
            owner.received(self._publishes)
            self._publishes.clear()
        if self._controls:
            for control in self._controls:
                owner.control(control)
            self._controls.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        owner = self._owner
        owner.fail(f"connection lost: {exc}" if exc else "connection closed by the broker")


class IntakeConnection:
    """`async with IntakeConnection(...) as connection:` connects (CONNACK accepted) and
    disconnects on exit. Messages wait in `messages`; `wait()` blocks until one does."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str,
        clean: bool,
        keepalive_s: int,
        ca_file: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._endpoint = endpoint
        self._client_id = client_id
        self._clean = clean
        self._keepalive_s = keepalive_s
        self._ca_file = ca_file
        self._connect_timeout_s = connect_timeout_s
        # No flow control until limit(): reading paused before the first SUBACK arrived
        # (the broker sends a queued backlog first) would wait for it for ever.
        self._high = self._low = 0
        self._high_bytes = self._low_bytes = 0
        self.messages: deque[tuple[str, bytes]] = deque()
        self.bytes = 0  # payload bytes waiting in `messages`
        self.heard_at = time.monotonic()
        self._transport: asyncio.Transport | None = None
        self._written_at = time.monotonic()
        # Why the connection is over; None while it is open (not yet: "not connected").
        self._ended: str | None = "not connected"
        self._waiter: asyncio.Future[None] | None = None
        self._connack: asyncio.Future[ConnAck] | None = None
        self._pending: dict[int, asyncio.Future[Control]] = {}
        # Our QoS 1 PUBLISHes not yet acknowledged, by packet id.
        self._unacked: dict[int, _Countdown] = {}
        self._next_id = 0
        self._read_paused_at: float | None = None
        self._keepalive: asyncio.Task[None] | None = None

    # -- the connection

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._ended = None
        self._connack = loop.create_future()
        endpoint = self._endpoint
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: _Protocol(self),
                    endpoint.host,
                    endpoint.port,
                    ssl=self._tls_context(),
                )
                self._transport = transport
                self._write(
                    connect_packet(
                        self._client_id,
                        clean=self._clean,
                        keepalive_s=self._keepalive_s,
                        username=endpoint.username,
                        password=endpoint.password,
                    )
                )
                connack = await self._connack  # fail() ends this wait on a loss
        except TimeoutError:
            self._close()
            raise IntakeConnectionError(
                f"no CONNACK from {endpoint.display} within {self._connect_timeout_s} s"
            ) from None
        except OSError as exc:  # refused, unreachable, TLS failure (ssl.SSLError)
            self._close()
            raise IntakeConnectionError(f"cannot connect to {endpoint.display}: {exc}") from None
        except BaseException:  # lost during the handshake, or cancelled (shutdown)
            self._close()
            raise
        if connack.code:
            self._close()
            reason = CONNACK_REASONS.get(connack.code, f"code {connack.code}")
            raise IntakeConnectionError(f"{endpoint.display} refused the connection: {reason}")
        self._keepalive = loop.create_task(self._keep_alive(), name="mqtt-intake-keepalive")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(DISCONNECT)  # 3.14: the broker discards no session state for it
        self._close()

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self._endpoint.tls:
            return None
        # Verifies the broker's certificate and host name, against ca_file or the system's CAs.
        return ssl.create_default_context(cafile=self._ca_file)

    def _close(self) -> None:
        self.fail("connection closed")

    def fail(self, why: str) -> None:
        """The connection is over: every waiter gets IntakeConnectionError(why); the first
        reason given is the one kept."""
        if self._ended is None:
            self._ended = why
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        error = IntakeConnectionError(self._ended)
        for future in (self._waiter, self._connack, *self._pending.values()):
            if future is not None and not future.done():
                future.set_exception(error)
        self._pending.clear()
        for countdown in self._unacked.values():  # what is unacknowledged now stays so
            countdown.give_up()
        self._unacked.clear()

    @property
    def closed(self) -> bool:
        return self._ended is not None

    @property
    def ended(self) -> str | None:
        """Why the connection is over; None while it is open."""
        return self._ended

    def _write(self, packet: bytes) -> None:
        # On a closing connection nothing is sent: unacknowledged messages come again on the
        # next connection (the pipeline drops batches it has seen), requests fail via fail().
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(packet)
            self._written_at = time.monotonic()

    async def _keep_alive(self) -> None:
        """3.1.2.10: send PINGREQ when we have been quiet for half a keep-alive; give up
        when the broker has been silent too long while we were reading."""
        keepalive = float(self._keepalive_s)
        if keepalive <= 0:
            return
        while not self.closed:
            await asyncio.sleep(keepalive * PING_AFTER_FRACTION / 2)
            now = time.monotonic()
            if now - self._written_at >= keepalive * PING_AFTER_FRACTION:
                self._write(PINGREQ)
            silent = now - self.heard_at
            if self._read_paused_at is None and silent > keepalive * DEAD_AFTER_KEEPALIVES:
                self.fail(f"no packet from the broker for {silent:.0f} s")

    # -- packets in

    def received(self, publishes: list[Publish]) -> None:
        messages = self.messages
        acks = []
        for topic, payload, packet_id in publishes:
            messages.append((topic, payload))
            self.bytes += len(payload)
            if packet_id:  # QoS 1 (3.3.4); QoS 0 is not acknowledged
                acks.append(puback_packet(packet_id))
        if acks:
            self._write(b"".join(acks))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._high and (len(messages) >= self._high or self.bytes >= self._high_bytes):
            self.pause_reading()

    def control(self, packet: Control) -> None:
        if isinstance(packet, ConnAck):
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(packet)
            return
        if isinstance(packet, PubAck):
            countdown = self._unacked.pop(packet.packet_id, None)
            if countdown is not None:
                countdown.acknowledged()
            return
        if isinstance(packet, PingResp):
            return
        future = self._pending.pop(packet.packet_id, None)
        if future is not None and not future.done():
            future.set_result(packet)

    # -- what the subscriber calls

    async def wait(self) -> None:
        """Until a message waits in `messages`; IntakeConnectionError once the connection is
        over and nothing waits."""
        while not self.messages:
            if self._ended is not None:
                raise IntakeConnectionError(self._ended)
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            except IntakeConnectionError:
                continue  # messages that came before the loss are handed out first
            finally:
                self._waiter = None

    def limit(self, high_messages: int, high_bytes: int) -> None:
        """Flow control from now on: stop reading at `high_messages` waiting messages or
        `high_bytes` of their payloads, whichever comes first; read again once both are down
        to a quarter. The bytes bound matters for large messages: 2,000 backlog messages of
        100 readings hold 22 MiB, 2,000 of the 1 MiB payload limit 2 GiB."""
        if high_messages < 4 or high_bytes < 4:
            raise ValueError("flow control needs marks of at least 4")
        self._high, self._low = high_messages, high_messages // 4
        self._high_bytes, self._low_bytes = high_bytes, high_bytes // 4
        if len(self.messages) >= self._high or self.bytes >= self._high_bytes:
            self.pause_reading()

    def taken(self, payload_bytes: int) -> None:
        """The consumer took a message of `payload_bytes` off `messages`: read again once
        below both low marks. A single message above the bytes mark is still read and taken,
        so it cannot stall intake."""
        self.bytes -= payload_bytes
        if (
            self._read_paused_at is not None
            and len(self.messages) <= self._low
            and self.bytes <= self._low_bytes
        ):
            self.resume_reading()

    async def subscribe(self, filters: Sequence[tuple[str, int]], timeout_s: float) -> list[int]:
        """SUBSCRIBE and wait for the SUBACK: one return code per filter (0x80 refused)."""
        packet_id = self._packet_id()
        answer = await self._request(packet_id, subscribe_packet(packet_id, filters), timeout_s)
        if not isinstance(answer, SubAck) or len(answer.codes) != len(filters):
            raise IntakeConnectionError(f"SUBACK does not answer {len(filters)} filters")
        return list(answer.codes)

    async def unsubscribe(self, filters: Sequence[str], timeout_s: float) -> None:
        packet_id = self._packet_id()
        answer = await self._request(packet_id, unsubscribe_packet(packet_id, filters), timeout_s)
        if not isinstance(answer, UnsubAck):
            raise IntakeConnectionError("UNSUBSCRIBE answered by a SUBACK")

    async def publish(
        self,
        messages: Sequence[tuple[str, bytes]],
        *,
        qos: int,
        retain: bool = False,
        timeout_s: float,
    ) -> int:
        """PUBLISH each (topic, payload) at `qos` (0 or 1), all in one send, and wait up to
        `timeout_s` for the broker's PUBACKs of all of them at once. Returns how many the
        broker acknowledged (at QoS 0: how many were sent); 0 once the connection is over."""
        if qos not in (0, 1):
            raise ValueError(f"QoS {qos}: the aggregator publishes at QoS 0 or 1")
        if len(messages) > MAX_PUBLISH_BATCH:
            raise ValueError(f"{len(messages)} messages > {MAX_PUBLISH_BATCH} in one batch")
        if self._ended is not None or not messages:
            return 0
        if qos == 0:
            self._write(b"".join(publish_packet(t, p, retain=retain) for t, p in messages))
            return len(messages)
        ids = [self._packet_id() for _ in messages]
        packets = [
            publish_packet(topic, payload, packet_id, retain=retain)
            for (topic, payload), packet_id in zip(messages, ids, strict=True)
        ]
        countdown = _Countdown(len(ids), asyncio.get_running_loop().create_future())
        unacked = self._unacked
        for packet_id in ids:
            unacked[packet_id] = countdown
        self._write(b"".join(packets))
        try:
            async with asyncio.timeout(timeout_s):
                await countdown.done
        except TimeoutError:
            pass
        finally:
            if countdown.left > 0:  # forget the unacknowledged: their ids are free again
                for packet_id in ids:
                    if unacked.get(packet_id) is countdown:
                        del unacked[packet_id]
        return len(ids) - max(countdown.left, 0)

    def _packet_id(self) -> int:
        """The next packet id not in use by a request or an unacknowledged PUBLISH."""
        if len(self._pending) + len(self._unacked) >= 0xFFFF:
            raise IntakeConnectionError("every packet id is in use")
        while True:
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._pending and self._next_id not in self._unacked:
                return self._next_id

    async def _request(self, packet_id: int, packet: bytes, timeout_s: float) -> Control:
        if self._ended is not None:
            raise IntakeConnectionError(self._ended)
        future: asyncio.Future[Control] = asyncio.get_running_loop().create_future()
        self._pending[packet_id] = future
        self._write(packet)
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            why = f"no answer to packet {packet_id} in {timeout_s} s"
            raise IntakeConnectionError(why) from None
        finally:
            self._pending.pop(packet_id, None)

    # -- flow control

    def pause_reading(self) -> None:
        if self._read_paused_at is None:
            self._read_paused_at = time.monotonic()
            if self._transport is not None and not self._transport.is_closing():
                self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused_at is not None:
            self._read_paused_at = None
            self.heard_at = time.monotonic()  # silence while paused was ours, not the broker's
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()

    def read_paused_for(self, now: float) -> float:
        """Seconds reading has been paused, 0 when it is not."""
        return 0.0 if self._read_paused_at is None else now - self._read_paused_at
