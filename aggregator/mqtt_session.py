"""The aggregator's two broker connections, each owned by one aiomqtt context manager.

- The subscriber has a fixed client id and a persistent session, so the broker queues
  readings for it while it is away. When the storage pipeline falls behind it *pauses*: it
  disconnects and lets the broker hold the backlog, instead of buffering without bound in
  memory (aiomqtt acknowledges QoS 1 on receipt, so MQTT flow control alone does not bound
  it). Messages already received are still processed, none is dropped.
- The publisher (acks to nodes, alert state and events) is a separate clean session, so acks
  keep flowing while intake is paused, and at shutdown after intake has stopped.

Both reconnect with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import random
import select
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt.types import PahoSocket

from envnet.backoff import Backoff
from envnet.endpoints import MqttEndpoint
from envnet.logs import get_logger

log = get_logger("aggregator.mqtt")

Handler = Callable[[str, bytes], Awaitable[None]]

# How often the subscriber checks its receive queue against the high-water mark.
WATCH_INTERVAL_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class SessionSettings:
    endpoint: MqttEndpoint
    client_id: str
    keepalive_s: int = 30
    ca_file: str | None = None
    reconnect_initial_s: float = 0.5
    reconnect_cap_s: float = 30.0


class _IntakePausedError(Exception):
    """Raised inside the subscriber's task group to leave the connection for a while."""


class BurstReadClient(aiomqtt.Client):
    """aiomqtt.Client that reads every MQTT packet already buffered on the socket per event-
    loop wake-up, instead of one.

    aiomqtt registers a reader that calls paho's `loop_read()` once per wake-up, and for a QoS 1
    subscriber that reads a single PUBLISH. The event-loop round trip per message then costs
    more than the message: draining a mosquitto queue of 700-byte QoS 1 messages alone on one
    core, plain aiomqtt reached 19-20k messages/s and this class 42-44k, the same as paho's own
    network loop (bench/README.md, "MQTT intake"). The PUBACKs that paho queues during the
    burst are written once, through aiomqtt's own write registration.

    This overrides a private method of aiomqtt, so pyproject.toml pins aiomqtt to 2.5.x and
    tests/test_mqtt_session.py checks the hooks it relies on.
    """

    MAX_PACKETS_PER_WAKEUP: ClassVar[int] = 256

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: PahoSocket) -> None:
        loop = self._loop

        def on_readable() -> None:
            try:
                for _ in range(self.MAX_PACKETS_PER_WAKEUP):
                    client.loop_read()
                    if client.socket() is None or not _has_data(sock):
                        break
            except Exception as exc:  # noqa: BLE001 - as aiomqtt: any failure ends the connection
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def start_misc_loop() -> None:
            self._misc_task = loop.create_task(self._misc_loop())

        # paho calls this from the executor thread that ran connect() (as in aiomqtt).
        loop.call_soon_threadsafe(loop.add_reader, sock.fileno(), on_readable)
        loop.call_soon_threadsafe(start_misc_loop)


def _has_data(sock: PahoSocket) -> bool:
    # An SSL socket may hold decrypted bytes that select() cannot see.
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _client(
    settings: SessionSettings,
    client_id: str,
    clean: bool,
    queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
) -> aiomqtt.Client:
    endpoint = settings.endpoint
    tls = None
    if endpoint.tls:
        tls = aiomqtt.TLSParameters(ca_certs=settings.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    return BurstReadClient(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=client_id,
        clean_session=clean,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=settings.keepalive_s,
        tls_params=tls,
        max_inflight_messages=1000,
        queue_type=queue_type,
    )


def _tracking_queue(
    holder: list[asyncio.Queue[aiomqtt.Message]],
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class that hands its instance to us, so we can watch and drain the messages
    aiomqtt has received (the queue is created inside aiomqtt.Client)."""

    class TrackedQueue(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            holder.append(self)

    return TrackedQueue


class Subscriber:
    def __init__(
        self,
        settings: SessionSettings,
        subscriptions: list[tuple[str, int]],
        handler: Handler,
        *,
        high_water: int,
        wait_resumable: Callable[[], Awaitable[None]],
        on_state: Callable[[bool], None] = lambda connected: None,
        on_pause: Callable[[], None] = lambda: None,
    ) -> None:
        self._s = settings
        self._subscriptions = subscriptions
        self._handler = handler
        self._high_water = high_water
        self._wait_resumable = wait_resumable
        self._on_state = on_state
        self._on_pause = on_pause
        self._queue: asyncio.Queue[aiomqtt.Message] | None = None
        self._carry: list[aiomqtt.Message] = []
        # Set once the first subscription is in place (the broker queues for us from then on).
        self.subscribed = asyncio.Event()

    @property
    def backlog(self) -> int:
        """Messages received and not yet handled."""
        return (self._queue.qsize() if self._queue else 0) + len(self._carry)

    async def run(self) -> None:
        """Connect, consume, pause and reconnect until cancelled."""
        backoff = Backoff(self._s.reconnect_initial_s, self._s.reconnect_cap_s, rng=random.Random())
        while True:
            holder: list[asyncio.Queue[aiomqtt.Message]] = []
            client = _client(
                self._s, self._s.client_id, clean=False, queue_type=_tracking_queue(holder)
            )
            self._queue = holder[0]
            try:
                outcome = await self._session(client, backoff)
            except aiomqtt.MqttError as exc:
                outcome = str(exc)
            finally:
                self._on_state(False)
            await self.drain_received()
            if outcome == "paused":
                await self._wait_until_resumable()
                continue
            log.warning("subscriber_disconnected", broker=self._s.endpoint.display, error=outcome)
            await asyncio.sleep(backoff.next_delay())

    async def _session(self, client: aiomqtt.Client, backoff: Backoff) -> str:
        """One connection: 'paused' when intake paused, else why the connection ended."""
        async with client:
            self._on_state(True)
            backoff.reset()
            log.info("subscriber_connected", broker=self._s.endpoint.display)
            await client.subscribe(self._subscriptions)
            self.subscribed.set()
            outcome = "closed"
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._consume(client), name="mqtt-consume")
                    group.create_task(self._watch(), name="mqtt-watch")
            except* _IntakePausedError:
                outcome = "paused"
            except* aiomqtt.MqttError as lost:
                outcome = str(lost.exceptions[0])
        return outcome

    async def _consume(self, client: aiomqtt.Client) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            try:
                message = queue.get_nowait()
            except asyncio.QueueEmpty:
                # Idle: wait through aiomqtt, which also notices a lost connection.
                message = await anext(client.messages)
            await self._handle(message)

    async def _handle(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
        try:
            await self._handler(message.topic.value, bytes(data))
        except asyncio.CancelledError:
            # Cancelled mid-handling (a pause): keep the message, it was already received.
            self._carry.append(message)
            raise

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if self._queue is not None and self._queue.qsize() > self._high_water:
                self._on_pause()
                log.warning(
                    "intake_paused", backlog=self._queue.qsize(), high_water=self._high_water
                )
                raise _IntakePausedError

    async def drain_received(self) -> None:
        """Handle what was received before the connection closed; it is ours to store."""
        carry, self._carry = self._carry, []
        for message in carry:
            await self._handle(message)
        queue = self._queue
        while queue is not None and not queue.empty():
            await self._handle(queue.get_nowait())

    async def _wait_until_resumable(self) -> None:
        await self._wait_resumable()
        log.info("intake_resumed")


class Publisher:
    """A connection for outgoing messages; `publish` returns False while it is down."""

    def __init__(self, settings: SessionSettings) -> None:
        self._s = settings
        self._client: aiomqtt.Client | None = None
        self._ready = asyncio.Event()

    async def run(self) -> None:
        backoff = Backoff(self._s.reconnect_initial_s, self._s.reconnect_cap_s, rng=random.Random())
        while True:
            client = _client(self._s, f"{self._s.client_id}-pub", clean=True)
            try:
                async with client:
                    self._client = client
                    self._ready.set()
                    backoff.reset()
                    async for _ in client.messages:  # no subscriptions: returns on disconnect
                        pass
            except aiomqtt.MqttError as exc:
                log.warning("publisher_disconnected", error=str(exc))
            finally:
                self._client = None
                self._ready.clear()
            await asyncio.sleep(backoff.next_delay())

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=10)
        except aiomqtt.MqttError as exc:
            log.warning("publish_failed", topic=topic, error=str(exc))
            return False
        return True
