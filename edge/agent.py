"""The edge agent loop: produce readings, journal them, publish them, delete them on ack.

One thread, one loop, in this order each turn:
1. readings that completed by now are committed to the journal (as a live batch if online);
2. live batches go out at once; resends and backlog follow, under the drain rate limit and
   the broker in-flight window, so a drain never delays live data;
3. the link does network I/O until the next deadline and reports events (connect, ack).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge.clock import Clock, WallClock
from edge.journal import Batch, Journal
from edge.link import AckReceived, BadAck, Connected, Disconnected, LinkEvent, MqttLink
from edge.ratelimit import TokenBucket
from envnet.logs import get_logger
from schemas import codec, topics
from schemas.messages import (
    MAX_READINGS_PER_MESSAGE,
    READINGS_SCHEMA,
    STATUS_SCHEMA,
    Reading,
    ReadingsMessage,
    SensorHealth,
    StatusMessage,
)

log = get_logger("edge.agent")

# The longest the loop blocks in network I/O; bounds the reaction time to a stop request.
MAX_POLL_S = 0.5
# Journal bounds are enforced at most this often (wall seconds): it costs a full scan.
BOUNDS_EVERY_S = 60.0
# At shutdown, how long to wait for acks of batches in flight.
SHUTDOWN_ACK_WAIT_S = 3.0
# How often due resends and backlog are looked for when nothing else prompts it.
SEND_CHECK_EVERY_S = 1.0


class Producer(Protocol):
    """Where readings come from: the sampler on a real node, a replay in tests."""

    def step(self, now_ms: int) -> list[Reading]: ...

    def next_due_ms(self) -> int: ...

    def flush(self, now_ms: int) -> list[Reading]:
        """Readings of the interval in progress, at shutdown."""
        ...

    def health(self) -> list[SensorHealth]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AgentSettings:
    node: str
    version: str
    ack_timeout_s: float
    ack_timeout_cap_s: float
    drain_rate_per_s: float
    drain_batch: int
    status_interval_s: float


class EdgeAgent:
    def __init__(
        self,
        settings: AgentSettings,
        producer: Producer,
        journal: Journal,
        link: MqttLink,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        transport_clock: Clock | None = None,
    ) -> None:
        self._s = settings
        self._producer = producer
        self._journal = journal
        self._link = link
        self._clock = clock
        # Readings live in event time (`clock`, accelerated in simulations); acknowledgement
        # timeouts and the drain rate are about the network, so they run on real time.
        self._wall = transport_clock or WallClock()
        self._monotonic = monotonic
        self._bucket = TokenBucket(settings.drain_rate_per_s, burst=max(settings.drain_batch, 1))
        self._readings_topic = topics.readings(settings.node)
        self._status_topic = topics.status(settings.node)
        self._next_status = 0.0
        self._next_bounds = 0.0
        self._next_send_check = 0.0
        self.published_batches = 0
        # Readings in the journal, refreshed when readings are added or acknowledged; safe to
        # read from another thread (e.g. a replay waiting for its last acks).
        self.journal_depth = journal.depth()

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("agent_started", node=self._s.node, version=self._s.version)
        try:
            while not stop.is_set():
                self._turn()
            self._shutdown()
        finally:
            self._producer.close()
            self._journal.close()
        log.info("agent_stopped", node=self._s.node)

    def _turn(self) -> None:
        now_ms = self._clock.now_ms()
        readings = self._producer.step(now_ms)
        if readings:
            self._record(readings, now_ms)
        wall = self._monotonic()
        if wall >= self._next_bounds:
            self._enforce_bounds(self._wall.now_ms())
            self._next_bounds = wall + BOUNDS_EVERY_S
        if self._link.connected:
            if wall >= self._next_send_check:
                self._send_due(now_ms, self._wall.now_ms())
                self._next_send_check = wall + SEND_CHECK_EVERY_S
            if wall >= self._next_status:
                self._publish_status()
        timeout = min(
            MAX_POLL_S, max(0.0, self._clock.wall_seconds_until(self._producer.next_due_ms()))
        )
        for event in self._link.poll(timeout):
            self._handle(event)

    def _handle(self, event: LinkEvent) -> None:
        now_ms = self._clock.now_ms()
        if isinstance(event, Connected):
            self._journal.mark_all_unsent()
            self._publish_status()
            self._next_send_check = 0.0
        elif isinstance(event, AckReceived):
            deleted = self._journal.ack(event.seqs, now_ms)
            self.journal_depth = self._journal.depth()
            log.debug("acked", seqs=len(event.seqs), readings=deleted)
            self._next_send_check = 0.0
        elif isinstance(event, BadAck):
            log.warning("bad_ack", error=event.error)
        elif isinstance(event, Disconnected):
            log.info("offline_buffering", node=self._s.node)

    # -- journal then publish -------------------------------------------------------------

    def _record(self, readings: Sequence[Reading], now_ms: int) -> None:
        for start in range(0, len(readings), MAX_READINGS_PER_MESSAGE):
            chunk = readings[start : start + MAX_READINGS_PER_MESSAGE]
            online = self._link.connected and self._link.capacity > 0
            wall_ms = self._wall.now_ms()
            seq = self._journal.append(chunk, wall_ms, as_batch=online)
            if seq is not None:
                batch = self._journal.batch(seq)
                if batch is not None:
                    self._send(batch, now_ms, wall_ms)
        self.journal_depth = self._journal.depth()

    def _send(self, batch: Batch, now_ms: int, wall_ms: int) -> bool:
        message = ReadingsMessage(
            schema=READINGS_SCHEMA,
            node=self._s.node,
            seq=batch.seq,
            readings=batch.readings,
            sent_ms=now_ms,
            backlog=not (batch.live and batch.attempts == 0),
        )
        if not self._link.publish(self._readings_topic, codec.READINGS.encode(message)):
            return False
        self._journal.mark_sent(batch.seq, wall_ms)
        self.published_batches += 1
        return True

    def _send_due(self, now_ms: int, wall_ms: int) -> None:
        """Resend unacknowledged batches, then pack and send backlog, within the drain rate."""
        timeout_ms = int(self._s.ack_timeout_s * 1000)
        cap_ms = int(self._s.ack_timeout_cap_s * 1000)
        while self._link.capacity > 0:
            due = self._journal.due_batches(wall_ms, timeout_ms, cap_ms, self._link.capacity)
            if not due:
                break
            for seq in due:
                batch = self._journal.batch(seq)
                if batch is None:
                    continue
                if not self._bucket.try_take(len(batch.readings), wall_ms):
                    return
                if not self._send(batch, now_ms, wall_ms):
                    return
        bucket = self._bucket
        while self._link.capacity > 0 and bucket.ms_until(self._s.drain_batch, wall_ms) == 0:
            packed = self._journal.pack_backlog(self._s.drain_batch, wall_ms)
            if packed is None:
                return
            batch = self._journal.batch(packed)
            if batch is None or not bucket.try_take(len(batch.readings), wall_ms):
                return
            if not self._send(batch, now_ms, wall_ms):
                return

    def _enforce_bounds(self, wall_ms: int) -> None:
        dropped = self._journal.enforce_bounds(wall_ms)
        if dropped:
            log.warning("journal_dropped", readings=dropped, reason="over age or byte bound")

    # -- status and shutdown --------------------------------------------------------------

    def status(self, state: str = "online") -> StatusMessage:
        return StatusMessage(
            schema=STATUS_SCHEMA,
            node=self._s.node,
            state="online" if state == "online" else "offline",
            ts=self._clock.now_ms(),
            version=self._s.version,
            reason=None if state == "online" else "shutdown",
            journal=self._journal.health(),
            sensors=self._producer.health(),
        )

    def _publish_status(self) -> None:
        payload = codec.STATUS.encode(self.status())
        self._link.publish(self._status_topic, payload, retain=True)
        self._next_status = self._monotonic() + self._s.status_interval_s

    def _shutdown(self) -> None:
        """Journal the interval in progress, give live data a moment to go out, then leave
        with a retained offline status (the will is not sent on a clean disconnect)."""
        now_ms = self._clock.now_ms()
        tail = self._producer.flush(now_ms)
        if tail:
            self._record(tail, now_ms)
        # Wait briefly for the aggregator's acks of what is in flight, so a restart does not
        # resend it. Whatever is still unacked stays journaled and goes out next time.
        deadline = self._monotonic() + SHUTDOWN_ACK_WAIT_S
        while self._link.connected and self.journal_depth > 0 and self._monotonic() < deadline:
            for event in self._link.poll(0.05):
                self._handle(event)
        final = codec.STATUS.encode(self.status("offline"))
        self._link.close(final)
