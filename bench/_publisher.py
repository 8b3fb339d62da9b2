"""One publisher process: paho-mqtt, QoS 1, round-robin over its nodes, as fast as it can.

Single-threaded on purpose (no paho network thread): `publish` writes straight to the socket
and `loop` reads PUBACKs and acks, so no per-message hand-off between threads. At most
`window` messages are unacknowledged by the broker at a time, matching paho's and the
broker's in-flight limit, so paho never queues messages in memory.

A message counts as sent once the broker has PUBACKed it. Acks from the aggregator are
counted as distinct (node, seq) pairs.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._shapes import SHAPES, PayloadTemplates, check_payload
from schemas import codec, topics
from schemas.codec import ContractError

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
class _State:
    published: int = 0
    pubacked: int = 0
    subscribed: bool = False
    connected: bool = False
    acked: dict[str, set[int]] = field(default_factory=dict)
    ack_errors: int = 0

    @property
    def acked_total(self) -> int:
        return sum(len(seqs) for seqs in self.acked.values())


def _callbacks(client: mqtt.Client, state: _State) -> None:
    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        state.connected = not reason.is_failure

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
        state.subscribed = True

    def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
        state.pubacked += 1

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            ack = codec.ACK.decode(message.payload)
        except ContractError:
            state.ack_errors += 1
            return
        state.acked.setdefault(ack.node, set()).update(ack.seqs)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message


def _connect(spec: PublisherSpec, state: _State) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{spec.index}",
        clean_session=True,
    )
    client.max_inflight_messages_set(spec.window)
    client.max_queued_messages_set(0)
    _callbacks(client, state)
    client.connect("127.0.0.1", spec.port, keepalive=60)
    _loop_until(client, lambda: state.connected, CONNECT_TIMEOUT_S)
    client.subscribe([(topics.ack(node), 1) for node in spec.nodes])
    _loop_until(client, lambda: state.subscribed, CONNECT_TIMEOUT_S)
    return client


def _loop_until(client: mqtt.Client, done: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        rc = client.loop(timeout=0.05)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"paho loop failed: {mqtt.error_string(rc)}")
    return True


def _publish_for(client: mqtt.Client, spec: PublisherSpec, state: _State) -> tuple[float, float]:
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
    while last < deadline and not (total and state.published >= total):
        room = spec.window - (state.published - state.pubacked)
        if spec.rate > 0:
            room = min(room, int((last - first) * spec.rate) + 1 - state.published)
        if total:
            room = min(room, total - state.published)
        for _ in range(room):
            n = state.published
            node = templates[n % nodes]
            info = client.publish(node.topic, node.payload(n // nodes), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
            state.published += 1
        rc = client.loop(timeout=LOOP_TIMEOUT_S)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"paho loop failed: {mqtt.error_string(rc)}")
        last = time.perf_counter()
    return first, last


def _send(client: mqtt.Client, spec: PublisherSpec, state: _State) -> SentReport:
    """Publish for `seconds`, wait for the broker's PUBACKs, and say what was sent."""
    error = ""
    first = last = time.perf_counter()
    try:
        first, last = _publish_for(client, spec, state)
        if not _loop_until(client, lambda: state.pubacked >= state.published, PUBACK_TIMEOUT_S):
            error = f"{state.published - state.pubacked} messages never PUBACKed"
    except ConnectionError as exc:
        error = str(exc)
    sent = state.pubacked if error else state.published
    return SentReport(spec.index, sent, sent * SHAPES[spec.mode].readings, first, last, error)


def _count_acks(client: mqtt.Client, state: _State, sent: int, finish: Event) -> None:
    """Keep receiving acks until every sent batch is acked or the parent says finish."""
    while not finish.is_set() and state.acked_total < sent:
        if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
            time.sleep(0.05)  # disconnected: no more acks will come, wait for `finish`


def run_publisher(spec: PublisherSpec, go: Event, finish: Event, results: Queue[object]) -> None:
    """Process entry point: connect, report ready, publish on `go`, report sent, then count
    acks until every sent batch is acked or `finish` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    state = _State()
    client = _connect(spec, state)
    results.put(("ready", spec.index))
    go.wait()
    report = _send(client, spec, state)
    results.put(report)
    _count_acks(client, state, report.messages, finish)
    results.put(AckReport(spec.index, state.acked_total))
    client.disconnect()
