"""One live-load publisher process of bench/scale.py: many node ids over one paho connection.

It speaks the contract as an edge does, without being one: each node's retained status first
(replicas discover nodes from it), then each node's sample on its own readings topic when it
is due in event time, QoS 1; a batch not acked by the aggregator within `ack_timeout_s` is
sent again (as an edge journal resends), so a broker or replica killed mid-run loses nothing
and the aggregator's dedup must drop the copies. Acks arrive on one wildcard subscription at
QoS 0 (a lost ack only means a resend). A dropped connection moves to the next broker URL.
"""

from __future__ import annotations

import signal
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._scale_load import LivePlan, due_wall_ms, payload
from schemas import codec, topics
from schemas.codec import ContractError
from schemas.messages import STATUS_SCHEMA, JournalHealth, StatusMessage

CONNECT_TIMEOUT_S: Final = 30.0
LOOP_TIMEOUT_S: Final = 0.005
ACK_FILTER: Final = "envnet/v1/nodes/+/ack"
# publish() return codes of a connection that is gone: reconnect (to the next broker).
_GONE: Final = (mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_CONN_LOST)


@dataclass(frozen=True, slots=True)
class LiveSpec:
    index: int
    urls: tuple[str, ...]
    plan: LivePlan
    nodes: tuple[int, ...]  # global node indices, ascending
    rate: float  # event seconds per wall second
    window: int = 500  # unPUBACKed messages at a time
    ack_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class LiveReport:
    index: int
    batches: int  # distinct batches sent
    copies: int  # publishes, resends included
    acked: int  # distinct batches acked by the aggregator
    reconnects: int
    first_wall_ms: int
    last_wall_ms: int
    error: str = ""


@dataclass(slots=True)
class _State:
    connected: bool = False
    subscribed: bool = False
    published: int = 0
    pubacked: int = 0
    acked: dict[str, set[int]] = field(default_factory=dict)
    acked_total: int = 0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _callbacks(client: mqtt.Client, state: _State, mine: frozenset[str]) -> None:
    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        state.connected = not reason.is_failure

    def on_disconnect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        state.connected = False

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
        state.subscribed = True

    def on_publish(c: mqtt.Client, u: Any, mid: int, reason: Any, props: Any) -> None:
        state.pubacked += 1

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            ack = codec.ACK.decode(message.payload)
        except ContractError:
            return
        if ack.node not in mine:
            return
        seen = state.acked.setdefault(ack.node, set())
        before = len(seen)
        seen.update(ack.seqs)
        state.acked_total += len(seen) - before

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message


class _Link:
    """One paho client that moves to the next broker URL when its connection drops."""

    def __init__(self, spec: LiveSpec, state: _State) -> None:
        self._spec = spec
        self._state = state
        self._next = spec.index % len(spec.urls)
        self.reconnects = -1
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"scale-pub-{spec.index}",
            clean_session=True,
        )
        self.client.max_inflight_messages_set(spec.window)
        self.client.max_queued_messages_set(0)
        mine = frozenset(spec.plan.node_id(g) for g in spec.nodes)
        _callbacks(self.client, state, mine)

    def connect(self) -> None:
        """Connect to the next URL that answers, subscribe to acks; raises after a round of
        CONNECT_TIMEOUT_S with none."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            url = urllib.parse.urlsplit(self._spec.urls[self._next])
            self._next = (self._next + 1) % len(self._spec.urls)
            self._state.connected = self._state.subscribed = False
            try:
                self.client.connect(url.hostname or "127.0.0.1", url.port or 1883, keepalive=30)
                if not self._until(lambda: self._state.connected, 5.0):
                    continue
                self.client.subscribe(ACK_FILTER, qos=0)
                if self._until(lambda: self._state.subscribed, 5.0):
                    self.reconnects += 1
                    # Messages in flight on the old connection are gone: count them as done,
                    # the ack timeout resends whatever the aggregator did not get.
                    self._state.pubacked = self._state.published
                    return
            except OSError:
                time.sleep(0.2)  # a server still restarting: try the next one shortly
        raise ConnectionError("no broker accepted a connection")

    def _until(self, done: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                return False
        return True

    def loop(self) -> None:
        if self.client.loop(timeout=LOOP_TIMEOUT_S) != mqtt.MQTT_ERR_SUCCESS:
            self.connect()

    def publish(self, topic: str, body: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, body, qos=1, retain=retain)
        if info.rc in _GONE:
            self.connect()
            info = self.client.publish(topic, body, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, *_GONE):
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        # Lost with a connection that dropped again at once: the ack timeout resends it.
        self._state.published += 1


def _status(node: str, drained: bool) -> bytes:
    journal = JournalHealth(depth=0) if drained else None
    message = StatusMessage(
        STATUS_SCHEMA, node, "online", ts=_wall_ms(), version="bench-scale", journal=journal
    )
    return codec.STATUS.encode(message)


def _publish_statuses(link: _Link, spec: LiveSpec, state: _State, drained: bool) -> None:
    for g in spec.nodes:
        while state.published - state.pubacked >= spec.window:
            link.loop()
        node = spec.plan.node_id(g)
        link.publish(topics.status(node), _status(node, drained), retain=True)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while state.pubacked < state.published and time.monotonic() < deadline:
        link.loop()


def _schedule(spec: LiveSpec, anchor_ms: int) -> Iterator[tuple[int, int, int]]:
    """(due wall ms, node index, minute) in due order."""
    for minute in range(spec.plan.minutes):
        for g in spec.nodes:
            yield due_wall_ms(spec.plan, g, minute, anchor_ms, spec.rate), g, minute


@dataclass(slots=True)
class _Run:
    spec: LiveSpec
    link: _Link
    state: _State
    hot: frozenset[int]
    pending: deque[tuple[int, int, int]] = field(default_factory=deque)
    batches: int = 0
    copies: int = 0

    def send(self, g: int, minute: int, now: int) -> None:
        plan = self.spec.plan
        body = payload(plan, g, minute, g in self.hot, sent_ms=plan.ts(minute + 1))
        self.link.publish(topics.readings(plan.node_id(g)), body)
        self.pending.append((now, g, minute))
        self.copies += 1

    def acked(self, g: int, minute: int) -> bool:
        return minute + 1 in self.state.acked.get(self.spec.plan.node_id(g), ())

    def room(self) -> bool:
        return self.state.published - self.state.pubacked < self.spec.window

    def resend_overdue(self, now: int) -> None:
        timeout_ms = int(self.spec.ack_timeout_s * 1000)
        while self.pending and self.room():
            sent, g, minute = self.pending[0]
            if self.acked(g, minute):
                self.pending.popleft()
            elif now - sent > timeout_ms:
                self.pending.popleft()
                self.send(g, minute, now)
            else:
                return


def _drive(run: _Run, anchor_ms: int, finish: Event) -> tuple[int, int]:
    schedule = _schedule(run.spec, anchor_ms)
    upcoming = next(schedule, None)
    first = last = 0
    while not finish.is_set():
        now = _wall_ms()
        while upcoming is not None and upcoming[0] <= now and run.room():
            _, g, minute = upcoming
            run.send(g, minute, now)
            run.batches += 1
            first = first or now
            last = now
            upcoming = next(schedule, None)
        run.resend_overdue(now)
        if upcoming is None and not run.pending:
            break
        run.link.loop()
    return first, last


def run_live_publisher(
    spec: LiveSpec,
    anchor: Synchronized[int],
    go: Event,
    finish: Event,
    results: Queue[object],
) -> None:
    """Process entry point: connect, publish every node's retained status, report ready; on
    `go` publish the samples as they fall due (from `anchor`, wall ms) until all are acked
    or `finish`; publish the nodes' drained statuses and report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    state = _State()
    link = _Link(spec, state)
    link.connect()
    _publish_statuses(link, spec, state, drained=False)
    results.put(("ready", spec.index))
    go.wait()
    run = _Run(spec, link, state, spec.plan.exceeders())
    error = ""
    first = last = 0
    try:
        first, last = _drive(run, anchor.value, finish)
        # The journal is empty: the aggregator may close the nodes' windows at once.
        _publish_statuses(link, spec, state, drained=True)
    except ConnectionError as exc:
        error = str(exc)
    report = LiveReport(
        spec.index, run.batches, run.copies, state.acked_total, link.reconnects, first, last, error
    )
    results.put(report)
    finish.wait()
    link.client.disconnect()
