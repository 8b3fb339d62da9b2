"""The aggregator's two broker connections, each owned by one async context manager.

- The subscriber (intake) has a fixed client id and a persistent session, so the broker queues
  readings for it while it is away. It is envnet's own MQTT 3.1.1 connection
  (aggregator.intake.intake_connection): intake needs only to subscribe and receive, and
  a general client's per-message objects cost more than the message (bench/mqtt_intake.py).
  When the storage pipeline falls behind it stops reading the socket, and after a while
  *pauses*: it disconnects and lets the broker hold the backlog, instead of buffering
  without bound in memory (QoS 1 is acknowledged on receipt, so MQTT flow control alone does
  not bound it). Messages already received are still processed, none is dropped.
- The publisher (acks to nodes, alert state and events) is an aiomqtt client in a separate
  clean session, so acks keep flowing while intake is paused, and at shutdown after intake
  has stopped.

Both reconnect with capped, jittered backoff."""

from __future__ import annotations

import asyncio
import random
import select
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Annotated, Any, ClassVar, Final, TypeVar

import aiomqtt
import msgspec
import paho.mqtt.client as mqtt
from aiomqtt.types import PahoSocket
from paho.mqtt.reasoncodes import ReasonCode

from aggregator.intake.intake_connection import IntakeConnection, IntakeConnectionError
from aggregator.intake.publish_batch import publish_batch
from schemas.runtime.backoff import Backoff
from schemas.runtime.endpoints import EndpointError, MqttEndpoint, broker_urls, parse_mqtt_urls
from schemas.runtime.failover import DEFAULT_RETURN_HOME_S, BrokerRotation
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.mqtt")

Handler = Callable[[str, bytes], Awaitable[None]]

# Filters per SUBSCRIBE (and UNSUBSCRIBE), and how long each may take. nats-server answers a
# SUBSCRIBE only once it has created a replicated JetStream consumer for every filter in it:
# a partitioned replica's 1,057 filters in one packet had no SUBACK within aiomqtt's default
# 10 s (bench/scale.py, docs/cluster/broker.md), so the replica reconnected for ever.
SUBSCRIBE_CHUNK: Final = 50
SUBSCRIBE_TIMEOUT_S: Final = 60.0
# How often the subscriber checks its receive queue against the high-water mark.
WATCH_INTERVAL_S: Final = 0.05
# The longest the consumer handles queued messages before letting the event loop run. The
# handler rarely has to wait, so without this a full receive queue (thousands of messages)
# is decoded in one go, and meanwhile no InfluxDB response is read, no write is started and
# no frame reaches the alerting worker: the stages then take turns instead of overlapping.
CONSUME_SLICE_S: Final = 0.002
# Default of [mqtt] read_buffer_bytes (IntakeSettings).
READ_BUFFER_BYTES: Final = 2 * 1024 * 1024
DEFAULT_MQTT_URL: Final = "mqtt://localhost:1883"


class SessionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One MQTT connection of the aggregator: agg.toml [mqtt]'s connection keys."""

    # One broker (`url`) or several servers of one cluster in order (`urls`, below).
    url: str | None = None
    # Fixed, so the broker keeps this subscriber's persistent session (and queues readings
    # for it) across aggregator restarts and intake pauses.
    client_id: str = "envnet-aggregator"
    ca_file: str | None = None
    keepalive_s: Annotated[int, msgspec.Meta(gt=0)] = 30
    reconnect_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    reconnect_cap_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # Several servers of one cluster in order, the first is home; not with `url`. Each
    # connection moves to the next when one fails, and back to the first after
    # return_home_s elsewhere (0: never on its own).
    urls: tuple[str, ...] = ()
    return_home_s: Annotated[float, msgspec.Meta(ge=0)] = DEFAULT_RETURN_HOME_S

    def __post_init__(self) -> None:
        try:
            self.endpoints()
        except EndpointError as exc:
            raise ValueError(f"{'mqtt.urls' if self.urls else 'mqtt.url'}: {exc}") from None

    def endpoints(self) -> tuple[MqttEndpoint, ...]:
        """The brokers in order, home first."""
        return parse_mqtt_urls(broker_urls(self.url, self.urls, DEFAULT_MQTT_URL))

    def endpoint(self) -> MqttEndpoint:
        """The home broker."""
        return self.endpoints()[0]


class IntakeSettings(SessionSettings, frozen=True, forbid_unknown_fields=True):
    """agg.toml [mqtt]: the connection, and how intake reads from it."""

    # Larger messages are refused unread (aggregator.intake.checks).
    max_payload_bytes: Annotated[int, msgspec.Meta(gt=0)] = 1024 * 1024
    # Flow control: with this many received messages waiting for the pipeline, intake stops
    # reading the socket (TCP then holds the broker back), and reads again below a quarter.
    read_buffer_messages: Annotated[int, msgspec.Meta(ge=4)] = 2000
    # ... or with this many payload bytes waiting, whichever comes first. The pipeline has a
    # buffer of its own ([influx] max_buffered_readings): this one only has to keep intake fed
    # between two reads of the socket. By messages alone, 2000 backlog messages of 100
    # readings (11 kB each) held 22 MiB, and 2000 of max_payload_bytes up to 2 GiB.
    read_buffer_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024)] = READ_BUFFER_BYTES
    # Reading stopped this long means storage is stalled: intake disconnects and the broker
    # holds the backlog for our persistent session. Must stay below keepalive_s, after which
    # an unread socket counts as dead.
    pause_after_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pause_after_s >= self.keepalive_s:
            raise ValueError("mqtt.pause_after_s must be below mqtt.keepalive_s")


class _IntakePausedError(Exception):
    """Raised inside the subscriber's task group to leave the connection for a while."""


class _ReturnHomeError(Exception):
    """Raised inside a connection's task group: time to leave a non-home broker for home."""


class BrokerChoice:
    """One connection's place in the broker list (schemas.runtime.failover), with the logging:
    which broker to connect to, how long to wait after a loss, when to go home."""

    def __init__(self, settings: SessionSettings, name: str, rng: random.Random) -> None:
        self._endpoints = settings.endpoints()
        self._name = name
        backoff = Backoff(settings.reconnect_initial_s, settings.reconnect_cap_s, rng=rng)
        self._rotation = BrokerRotation(len(self._endpoints), backoff, settings.return_home_s)
        self._last: int | None = None  # the broker of the last successful connection
        self.switches = 0

    @property
    def endpoint(self) -> MqttEndpoint:
        return self._endpoints[self._rotation.current]

    def connected(self) -> None:
        rotation = self._rotation
        rotation.connected_at(time.monotonic())
        if self._last is not None and self._last != rotation.current:
            self.switches += 1
            log.warning(
                "broker_switched",
                connection=self._name,
                from_broker=self._endpoints[self._last].display,
                to_broker=self.endpoint.display,
                switches=self.switches,
            )
        self._last = rotation.current

    def lost(self) -> float:
        """The connection ended or was never made: seconds to wait before the next try."""
        attempt = self._rotation.failed(time.monotonic())
        return max(0.0, attempt.at_s - time.monotonic())

    def go_home(self) -> None:
        log.info("broker_going_home", connection=self._name, to_broker=self._endpoints[0].display)
        self._rotation.go_home(time.monotonic())

    async def home_timer(self) -> None:
        """Raise _ReturnHomeError when home is due; never returns while home is not due."""
        at = self._rotation.home_at()
        if at is None:
            await asyncio.Event().wait()
            return
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        raise _ReturnHomeError


class BurstReadClient(aiomqtt.Client):
    """aiomqtt.Client that reads every MQTT packet already buffered on the socket per event-
    loop wake-up, instead of one: the publisher's client, which reads a flush's PUBACKs in
    bursts (intake, which once used it too, has its own connection now).

    aiomqtt registers a reader that calls paho's `loop_read()` once per wake-up, and for a QoS 1
    subscriber that reads a single PUBLISH. The event-loop round trip per message then costs
    more than the message: draining a mosquitto queue of 700-byte QoS 1 messages alone on one
    core, plain aiomqtt reached 19-20k messages/s and this class 42-44k, the same as paho's own
    network loop (bench/README.md, "MQTT intake"). The PUBACKs that paho queues during the
    burst are written once, through aiomqtt's own write registration.

    This overrides a private method of aiomqtt and reads the size of its private receive
    queue (`_queue`), so pyproject.toml pins aiomqtt to 2.5.x and
    tests/test_mqtt_session.py checks the hooks it relies on.
    """

    MAX_PACKETS_PER_WAKEUP: ClassVar[int] = 256

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: PahoSocket) -> None:
        loop = self._loop
        queue = self._queue

        def on_readable() -> None:
            try:
                for _ in range(self.MAX_PACKETS_PER_WAKEUP):
                    received = queue.qsize()
                    client.loop_read()
                    if client.socket() is None:
                        break
                    # A packet that was a message: read on. Otherwise the socket may be empty
                    # (paho read nothing), and only then is it asked, once per wake-up
                    # instead of once per message (a select() per message was 8 % of the
                    # aggregator's time with live 6-reading messages).
                    if queue.qsize() == received and not _has_data(sock):
                        break
            except Exception as exc:  # noqa: BLE001 - as aiomqtt: any failure ends the connection
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def start() -> None:
            loop.add_reader(sock.fileno(), on_readable)
            self._misc_task = loop.create_task(self._misc_loop())

        # paho calls this from the executor thread that ran connect() (as in aiomqtt).
        loop.call_soon_threadsafe(start)


def _has_data(sock: PahoSocket) -> bool:
    # An SSL socket may hold decrypted bytes that select() cannot see.
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _client(
    settings: SessionSettings,
    endpoint: MqttEndpoint,
    client_id: str,
    clean: bool,
) -> BurstReadClient:
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
    )


_T = TypeVar("_T")


def refused_filters(
    subscriptions: Sequence[tuple[str, int]], codes: Sequence[int | ReasonCode]
) -> list[str]:
    """The filters a SUBACK refused (return code 0x80, MQTT 3.1.1 section 3.9.3)."""
    return [
        topic
        for (topic, _), code in zip(subscriptions, codes, strict=False)
        if (code.is_failure if isinstance(code, ReasonCode) else code >= 0x80)
    ]


def chunked(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """`items` in consecutive lists of at most `size` (itertools.batched is Python 3.12)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Subscriber:
    """Intake: one persistent-session connection (aggregator.intake.intake_connection) that
    subscribes, hands each message to `handler`, pauses and reconnects."""

    def __init__(
        self,
        settings: SessionSettings,
        subscriptions: list[tuple[str, int]],
        handler: Handler,
        *,
        read_buffer: int,
        read_buffer_bytes: int = READ_BUFFER_BYTES,
        pause_after_s: float,
        wait_resumable: Callable[[], Awaitable[None]],
        on_state: Callable[[bool], None] = lambda connected: None,
        on_pause: Callable[[], None] = lambda: None,
        unsubscribe_first: Sequence[str] = (),
        on_subscribed: Callable[[int], None] = lambda filters: None,
    ) -> None:
        self._s = settings
        self._subscriptions = list(subscriptions)
        # Filters an older layout may have left in our persistent session (a partitioned
        # replica's, aggregator.cluster.subscriptions): dropped on each connect, before
        # subscribing, so the broker stops queueing for them.
        self._unsubscribe_first = list(unsubscribe_first)
        # Subscriptions added while connected, for the connection's subscribing task.
        self._added: asyncio.Queue[list[tuple[str, int]]] = asyncio.Queue()
        # Told how many filters are in place, after each SUBACK (a gauge, and a readiness
        # signal: the broker queues for every one of them from then on).
        self._on_subscribed = on_subscribed
        self._handler = handler
        self._read_buffer = read_buffer
        self._read_buffer_bytes = read_buffer_bytes
        self._pause_after_s = pause_after_s
        self._wait_resumable = wait_resumable
        self._on_state = on_state
        self._on_pause = on_pause
        # Received and not yet handled: the current (or last) connection's messages.
        self._messages: deque[tuple[str, bytes]] = deque()
        self._carry: list[tuple[str, bytes]] = []
        # Filters the broker granted on this connection (a SUBACK may refuse some).
        self._granted = 0
        # Set once the first subscription is in place (the broker queues for us from then on).
        self.subscribed = asyncio.Event()
        self.brokers = BrokerChoice(settings, "subscriber", random.Random())

    @property
    def backlog(self) -> int:
        """Messages received and not yet handled."""
        return len(self._messages) + len(self._carry)

    async def run(self) -> None:
        """Connect, consume, pause and reconnect until cancelled."""
        choice = self.brokers
        while True:
            endpoint = choice.endpoint
            connection = IntakeConnection(
                endpoint,
                client_id=self._s.client_id,
                clean=False,
                keepalive_s=self._s.keepalive_s,
                ca_file=self._s.ca_file,
            )
            self._messages = connection.messages
            try:
                outcome = await self._session(connection, choice)
            except IntakeConnectionError as exc:
                outcome = str(exc)
            finally:
                self._on_state(False)
            await self.drain_received()
            if outcome == "paused":
                await self._wait_until_resumable()
                continue
            if outcome == "home":
                choice.go_home()
                continue
            log.warning("subscriber_disconnected", broker=endpoint.display, error=outcome)
            await asyncio.sleep(choice.lost())

    async def _session(self, connection: IntakeConnection, choice: BrokerChoice) -> str:
        """One connection: 'paused' when intake paused, 'home' when it leaves a non-home
        broker for home, else why the connection ended."""
        async with connection:
            self._on_state(True)
            choice.connected()
            log.info("subscriber_connected", broker=choice.endpoint.display)
            # Whatever add() queued before is in self._subscriptions already.
            while not self._added.empty():
                self._added.get_nowait()
            outcome = "closed"
            try:
                async with asyncio.TaskGroup() as group:
                    # Consuming starts with the first SUBACK, not the last: a replica's
                    # thousands of filters take minutes on a broker where each one is a
                    # replicated consumer (NATS), and its backlog must not pile up meanwhile.
                    group.create_task(self._consume(connection), name="mqtt-consume")
                    group.create_task(self._subscribe(connection), name="mqtt-subscribe")
                    group.create_task(self._watch(connection), name="mqtt-watch")
                    group.create_task(choice.home_timer(), name="mqtt-home")
            except* _IntakePausedError:
                outcome = "paused"
            except* _ReturnHomeError:
                outcome = "home"
            except* IntakeConnectionError as lost:
                outcome = str(lost.exceptions[0])
        return outcome

    def add(self, subscriptions: list[tuple[str, int]]) -> None:
        """Subscribe to more topics, now if connected and on every later connection. Does
        not wait: called from a message handler, whose connection may be paused for flow
        control, and then the SUBACK would not be read until the handler returned."""
        if subscriptions:
            self._subscriptions.extend(subscriptions)
            self._added.put_nowait(subscriptions)

    async def _subscribe(self, connection: IntakeConnection) -> None:
        """The session's filters in chunks, then those add() brings, until cancelled."""
        for unsubscribing in chunked(self._unsubscribe_first, SUBSCRIBE_CHUNK):
            await connection.unsubscribe(unsubscribing, SUBSCRIBE_TIMEOUT_S)
        self._granted = 0
        await self._subscribe_chunks(connection, list(self._subscriptions))
        # Flow control starts only now: reading paused before a SUBACK arrived (the broker
        # sends a queued backlog first) would wait for it forever.
        connection.limit(self._read_buffer, self._read_buffer_bytes)
        self.subscribed.set()
        while True:
            subscriptions = await self._added.get()
            # Statuses of many new nodes arrive together (retained, at connect): one round
            # of SUBSCRIBEs for all of them rather than one per status.
            while not self._added.empty():
                subscriptions.extend(self._added.get_nowait())
            await self._subscribe_chunks(connection, subscriptions)
            log.info("subscribed", topics=len(subscriptions), first=subscriptions[0][0])

    async def _subscribe_chunks(
        self, connection: IntakeConnection, subscriptions: list[tuple[str, int]]
    ) -> None:
        for chunk in chunked(subscriptions, SUBSCRIBE_CHUNK):
            codes = await connection.subscribe(chunk, SUBSCRIBE_TIMEOUT_S)
            refused = refused_filters(chunk, codes)
            if refused:
                # The broker will queue nothing for these: say so loudly. nats-server grants
                # a session at most 65,535 / mqtt.max_ack_pending QoS 1 filters (65 with its
                # 1,000) and answers 0x80 for the rest (docs/cluster/broker.md).
                log.error(
                    "subscription_refused",
                    refused=len(refused),
                    of=len(chunk),
                    first=refused[0],
                    granted_so_far=self._granted + len(chunk) - len(refused),
                )
            self._granted += len(chunk) - len(refused)
            self._on_subscribed(self._granted)

    async def _consume(self, connection: IntakeConnection) -> None:
        messages = connection.messages
        handler = self._handler
        slice_end = time.monotonic() + CONSUME_SLICE_S
        while True:
            if not messages:
                # Idle: wait, which also notices a lost connection.
                await connection.wait()
            message = messages.popleft()
            topic, payload = message
            connection.taken(len(payload))
            # `_handle`, inlined: one coroutine fewer per message.
            try:
                await handler(topic, payload)
            except asyncio.CancelledError:
                self._carry.append(message)
                raise
            if (now := time.monotonic()) > slice_end:
                await asyncio.sleep(0)
                slice_end = now + CONSUME_SLICE_S

    async def _handle(self, message: tuple[str, bytes]) -> None:
        try:
            await self._handler(*message)
        except asyncio.CancelledError:
            # Cancelled mid-handling (a pause): keep the message, it was already received.
            self._carry.append(message)
            raise

    async def _watch(self, connection: IntakeConnection) -> None:
        """Reading paused for long means storage is stalled (e.g. InfluxDB down): leave, and
        let the broker hold the backlog for our persistent session, before the broker's
        keep-alive check gives up on a connection that is not reading."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if connection.read_paused_for(time.monotonic()) > self._pause_after_s:
                self._on_pause()
                log.warning("intake_paused", backlog=self.backlog, paused_s=self._pause_after_s)
                raise _IntakePausedError

    async def drain_received(self) -> None:
        """Handle what was received before the connection closed; it is ours to store."""
        carry, self._carry = self._carry, []
        for message in carry:
            await self._handle(message)
        messages = self._messages
        while messages:
            await self._handle(messages.popleft())

    async def _wait_until_resumable(self) -> None:
        await self._wait_resumable()
        log.info("intake_resumed")


class Publisher:
    """A connection for outgoing messages; `publish` returns False while it is down."""

    def __init__(self, settings: SessionSettings) -> None:
        self._s = settings
        self._client: aiomqtt.Client | None = None
        self._ready = asyncio.Event()
        # Wall time of the last connect or disconnect (or of creation), for /healthz.
        self.changed_at = time.time()
        self.brokers = BrokerChoice(settings, "publisher", random.Random())

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def run(self) -> None:
        choice = self.brokers
        while True:
            endpoint = choice.endpoint
            client = _client(self._s, endpoint, f"{self._s.client_id}-pub", clean=True)
            try:
                async with client:
                    self._client = client
                    self._ready.set()
                    self.changed_at = time.time()
                    choice.connected()
                    outcome = await self._serve(client, choice)
            except aiomqtt.MqttError as exc:
                outcome = str(exc)
            finally:
                if self._client is not None:
                    self.changed_at = time.time()
                self._client = None
                self._ready.clear()
            if outcome == "home":
                choice.go_home()
                continue
            log.warning("publisher_disconnected", broker=endpoint.display, error=outcome)
            await asyncio.sleep(choice.lost())

    @staticmethod
    async def _serve(client: aiomqtt.Client, choice: BrokerChoice) -> str:
        """Until the connection ends (why) or it is time to go home ('home')."""

        async def until_lost() -> None:
            async for _ in client.messages:  # no subscriptions: raises on disconnect
                pass

        outcome = "closed"
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(until_lost(), name="mqtt-pub-lost")
                group.create_task(choice.home_timer(), name="mqtt-pub-home")
        except* _ReturnHomeError:
            outcome = "home"
        except* aiomqtt.MqttError as lost:
            outcome = str(lost.exceptions[0])
        return outcome

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def publish_all(self, messages: Sequence[tuple[str, bytes]], qos: int = 1) -> int:
        """Publish many (acks of a flush) sharing one wait for their PUBACKs; return how
        many the broker acknowledged (aggregator.intake.publish_batch)."""
        client = self._client
        if client is None or not messages:
            return 0
        return await publish_batch(client, messages, qos, timeout_s=10)

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
