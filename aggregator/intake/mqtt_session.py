"""The aggregator's two broker connections, each owned by one async context manager.

- The subscriber (intake) has a fixed client id and a persistent session, so the broker queues
  readings for it while it is away. It is envnet's own MQTT 3.1.1 connection
  (aggregator.intake.intake_connection): intake needs only to subscribe and receive, and
  a general client's per-message objects cost more than the message (bench/mqtt_intake.py).
  When the storage pipeline falls behind it stops reading the socket, and after a while
  *pauses*: it disconnects and lets the broker hold the backlog, instead of buffering
  without bound in memory (QoS 1 is acknowledged on receipt, so MQTT flow control alone does
  not bound it). Messages already received are still processed, none is dropped.
- The publisher (acks to nodes, alert state and events) is a connection of the same kind in a
  separate clean session, so acks keep flowing while intake is paused, and at shutdown after
  intake has stopped. A flush of acks goes out in one send and shares one wait for its
  PUBACKs (IntakeConnection.publish).

Both reconnect with capped, jittered backoff."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Annotated, Final, TypeVar

import msgspec

from aggregator.intake.intake_connection import (
    MAX_PUBLISH_BATCH,
    IntakeConnection,
    IntakeConnectionError,
)
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
# How long a publish waits for its PUBACK (or a batch for all of theirs).
PUBLISH_TIMEOUT_S: Final = 10.0


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
    # Stored batches remembered per node, to tell a copy (an edge resend, a broker
    # redelivery) from a new batch: a copy is acked again without a second write. An older
    # copy is written again, which InfluxDB absorbs (the same points). 1024 covers over 3
    # minutes of an edge draining its backlog at its default pace (500 readings/s in batches
    # of 100; it resends what is unacked after 60 s) and 17 hours of a live node, at 108 B a
    # batch: 11 MiB per 100 nodes once each has sent 1024 batches (aggregator.intake.seqs).
    dedup_batches_per_node: Annotated[int, msgspec.Meta(ge=1)] = 1024
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


_T = TypeVar("_T")


def refused_filters(subscriptions: Sequence[tuple[str, int]], codes: Sequence[int]) -> list[str]:
    """The filters a SUBACK refused (return code 0x80, MQTT 3.1.1 section 3.9.3)."""
    return [topic for (topic, _), code in zip(subscriptions, codes, strict=False) if code >= 0x80]


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
    """A connection for outgoing messages (aggregator.intake.intake_connection, in a clean
    session); `publish` returns False while it is down."""

    def __init__(self, settings: SessionSettings) -> None:
        self._s = settings
        self._connection: IntakeConnection | None = None
        self._ready = asyncio.Event()
        # Wall time of the last connect or disconnect (or of creation), for /healthz.
        self.changed_at = time.time()
        self.brokers = BrokerChoice(settings, "publisher", random.Random())

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def run(self) -> None:
        choice = self.brokers
        while True:
            endpoint = choice.endpoint
            connection = IntakeConnection(
                endpoint,
                client_id=f"{self._s.client_id}-pub",
                clean=True,
                keepalive_s=self._s.keepalive_s,
                ca_file=self._s.ca_file,
            )
            try:
                async with connection:
                    self._connection = connection
                    self._ready.set()
                    self.changed_at = time.time()
                    choice.connected()
                    outcome = await self._serve(connection, choice)
            except IntakeConnectionError as exc:
                outcome = str(exc)
            finally:
                if self._connection is not None:
                    self.changed_at = time.time()
                self._connection = None
                self._ready.clear()
            if outcome == "home":
                choice.go_home()
                continue
            log.warning("publisher_disconnected", broker=endpoint.display, error=outcome)
            await asyncio.sleep(choice.lost())

    @staticmethod
    async def _serve(connection: IntakeConnection, choice: BrokerChoice) -> str:
        """Until the connection ends (why) or it is time to go home ('home')."""

        async def until_lost() -> None:
            messages = connection.messages
            while True:
                await connection.wait()  # raises once the connection is over
                while messages:  # none expected: this session subscribes to nothing
                    connection.taken(len(messages.popleft()[1]))

        outcome = "closed"
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(until_lost(), name="mqtt-pub-lost")
                group.create_task(choice.home_timer(), name="mqtt-pub-home")
        except* _ReturnHomeError:
            outcome = "home"
        except* IntakeConnectionError as lost:
            outcome = str(lost.exceptions[0])
        return outcome

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def publish_all(self, messages: Sequence[tuple[str, bytes]], qos: int = 1) -> int:
        """Publish many (the acks of a flush) in one send, sharing one wait for their
        PUBACKs; return how many the broker acknowledged."""
        acknowledged = 0
        for chunk in chunked(messages, MAX_PUBLISH_BATCH):
            connection = self._connection
            if connection is None:
                break
            acknowledged += await connection.publish(chunk, qos=qos, timeout_s=PUBLISH_TIMEOUT_S)
        return acknowledged

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> bool:
        connection = self._connection
        if connection is None:
            return False
        sent = [(topic, payload)]
        if await connection.publish(sent, qos=qos, retain=retain, timeout_s=PUBLISH_TIMEOUT_S):
            return True
        why = connection.ended or f"no PUBACK within {PUBLISH_TIMEOUT_S} s"
        log.warning("publish_failed", topic=topic, error=why)
        return False
