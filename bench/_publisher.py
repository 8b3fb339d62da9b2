"""One publisher process: QoS 1, round-robin over its nodes, as fast as it can.

Two clients speak for it (`PublisherSpec.client`):
- "raw" (the default): bench/_raw_mqtt.py, a lean client that costs a few µs per message, so
  that the publishers leave the 2 cores to the system under test;
- "paho": paho-mqtt, single-threaded on purpose (no network thread): `publish` writes
  straight to the socket and `loop` reads PUBACKs and acks. It costs about 140 µs of CPU a
  message here; the figures before the raw client were measured with it.

At most `window` messages are unacknowledged by the broker at a time (paho's and the
broker's in-flight limit), so no client queues messages in memory.

A message counts as sent once the broker has PUBACKed it. Acks from the aggregator are
counted as distinct (node, seq) pairs.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any, Final, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._raw_mqtt import RawPublisher
from bench._shapes import SHAPES, PayloadTemplates, check_payload
from schemas import codec, topics
from schemas.codec import ContractError

PublisherClient = Literal["raw", "paho"]
CLIENTS: Final[tuple[PublisherClient, ...]] = ("raw", "paho")
CONNECT_TIMEOUT_S: Final = 30.0
PUBACK_TIMEOUT_S: Final = 60.0
LOOP_TIMEOUT_S: Final = 0.002


@dataclass(frozen=True, slots=True)
class PublisherSpec:
    index: int
    port: int
    nodes: tuple[str, ...]
    mode: str
    t0_ms: int
    sent_ms: int
    seconds: float
    window: int
    rate: float = 0.0  # messages/s of this publisher; 0: as fast as it can
    # Stop after this many messages per node (a journal drain of known size); 0: `seconds`.
    messages_per_node: int = 0
    client: PublisherClient = "raw"


@dataclass(frozen=True, slots=True)
class SentReport:
    index: int
    messages: int
    readings: int
    first_publish: float
    last_publish: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class AckReport:
    index: int
    acked: int


@dataclass(slots=True)
class PublisherState:
    published: int = 0
    pubacked: int = 0
    subscribed: bool = False
    connected: bool = False
    acked: dict[str, set[int]] = field(default_factory=dict)
    ack_errors: int = 0

    @property
    def acked_total(self) -> int:
        return sum(len(seqs) for seqs in self.acked.values())


def _note_ack(state: PublisherState, payload: bytes | bytearray) -> None:
    try:
        ack = codec.ACK.decode(payload)
    except ContractError:
        state.ack_errors += 1
        return
    state.acked.setdefault(ack.node, set()).update(ack.seqs)


class _Link(Protocol):
    """A connected client that keeps `PublisherState` up to date. `publish` and `loop` raise
    ConnectionError (an OSError) when the connection fails."""

    def subscribe(self, filters: list[tuple[str, int]]) -> None: ...

    def publish(self, node: PayloadTemplates, m: int) -> None: ...

    def loop(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class _PahoLink:
    def __init__(self, spec: PublisherSpec, state: PublisherState) -> None:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bench-pub-{spec.index}",
            clean_session=True,
        )
        client.max_inflight_messages_set(spec.window)
        client.max_queued_messages_set(0)

        def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            state.connected = not reason.is_failure

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
            state.subscribed = True

        def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
            state.pubacked += 1

        def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
            _note_ack(state, message.payload)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_publish = on_publish
        client.on_message = on_message
        client.connect("127.0.0.1", spec.port, keepalive=60)
        self._client = client

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        self._client.subscribe(filters)

    def publish(self, node: PayloadTemplates, m: int) -> None:
        info = self._client.publish(node.topic, node.payload(m), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")

    def loop(self, timeout: float) -> None:
        rc = self._client.loop(timeout=timeout)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"paho loop failed: {mqtt.error_string(rc)}")

    def close(self) -> None:
        self._client.disconnect()


class _RawLink:
    def __init__(self, spec: PublisherSpec, state: PublisherState) -> None:
        self._client = RawPublisher(spec.port, f"bench-pub-{spec.index}")
        self._state = state

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        self._client.subscribe(filters)

    def publish(self, node: PayloadTemplates, m: int) -> None:
        self._client.publish(node.topic, node.payload(m))

    def loop(self, timeout: float) -> None:
        got = self._client.loop(timeout)
        state = self._state
        state.pubacked += got.pubacks
        state.connected = state.connected or got.connected
        state.subscribed = state.subscribed or got.subacks > 0
        for _, payload, _ in got.messages:
            _note_ack(state, payload)

    def close(self) -> None:
        self._client.close()


def connect(spec: PublisherSpec, state: PublisherState) -> _Link:
    link: _Link = _RawLink(spec, state) if spec.client == "raw" else _PahoLink(spec, state)
    if not _loop_until(link, lambda: state.connected, CONNECT_TIMEOUT_S):
        raise ConnectionError(f"publisher {spec.index}: no CONNACK in {CONNECT_TIMEOUT_S:g} s")
    link.subscribe([(topics.ack(node), 1) for node in spec.nodes])
    _loop_until(link, lambda: state.subscribed, CONNECT_TIMEOUT_S)
    return link


def _loop_until(link: _Link, done: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        link.loop(0.05)
    return True


def _publish_for(link: _Link, spec: PublisherSpec, state: PublisherState) -> tuple[float, float]:
    """Publish round-robin over the nodes until `seconds` have passed; return the times of
    the first and the last publish."""
    shape = SHAPES[spec.mode]
    templates = [PayloadTemplates(n, shape, spec.t0_ms, spec.sent_ms) for n in spec.nodes]
    check_payload(templates[0], shape, spec.t0_ms, 0)
    nodes = len(templates)
    total = spec.messages_per_node * nodes
    first = time.perf_counter()
    deadline = first + spec.seconds
    last = first
    publish = link.publish
    while last < deadline and not (total and state.published >= total):
        room = spec.window - (state.published - state.pubacked)
        if spec.rate > 0:
            room = min(room, int((last - first) * spec.rate) + 1 - state.published)
        if total:
            room = min(room, total - state.published)
        for _ in range(room):
            n = state.published
            publish(templates[n % nodes], n // nodes)
            state.published += 1
        link.loop(LOOP_TIMEOUT_S)
        last = time.perf_counter()
    return first, last


def send(link: _Link, spec: PublisherSpec, state: PublisherState) -> SentReport:
    """Publish for `seconds`, wait for the broker's PUBACKs, and say what was sent."""
    error = ""
    first = last = time.perf_counter()
    try:
        first, last = _publish_for(link, spec, state)
        if not _loop_until(link, lambda: state.pubacked >= state.published, PUBACK_TIMEOUT_S):
            error = f"{state.published - state.pubacked} messages never PUBACKed"
    except OSError as exc:  # ConnectionError, or the socket's own
        error = str(exc)
    sent = state.pubacked if error else state.published
    return SentReport(spec.index, sent, sent * SHAPES[spec.mode].readings, first, last, error)


def _count_acks(link: _Link, state: PublisherState, sent: int, finish: Event) -> None:
    """Keep receiving acks until every sent batch is acked or the parent says finish."""
    while not finish.is_set() and state.acked_total < sent:
        try:
            link.loop(0.05)
        except OSError:
            time.sleep(0.05)  # disconnected: no more acks will come, wait for `finish`


def run_publisher(spec: PublisherSpec, go: Event, finish: Event, results: Queue[object]) -> None:
    """Process entry point: connect, report ready, publish on `go`, report sent, then count
    acks until every sent batch is acked or `finish` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    state = PublisherState()
    link = connect(spec, state)
    results.put(("ready", spec.index))
    go.wait()
    report = send(link, spec, state)
    results.put(report)
    _count_acks(link, state, report.messages, finish)
    results.put(AckReport(spec.index, state.acked_total))
    link.close()
