"""The edge agent loop: produce readings, journal them, publish them, delete them on ack.

One thread, one loop, in this order each turn:
1. readings that completed by now are committed to the journal; if online, as live batches
   that go out at once, ahead of anything else and outside the drain rate;
2. resends and the backlog drain follow, oldest first, under the drain rate (a token bucket
   on real time) and leaving in-flight slots free for live data, so a drain never delays a
   live exceedance;
3. the link does network I/O until the next deadline (a sample, or drain tokens) and
   reports events (connect, ack).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from edge.clock import Clock, WallClock
from edge.journal import Batch, Journal, JournalError, JournalFullError, LastRefusal
from edge.link import (
    AckReceived,
    BadAck,
    BadRefusal,
    Connected,
    Disconnected,
    Link,
    LinkEvent,
    RefusalReceived,
)
from edge.ratelimit import TokenBucket
from edge.resend import ResendSchedule
from schemas import codec, topics
from schemas.messages import (
    READINGS_SCHEMA,
    STATUS_SCHEMA,
    Reading,
    ReadingsMessage,
    RefusalMessage,
    SensorHealth,
    StatusMessage,
)
from schemas.runtime.logs import get_logger

log = get_logger("edge.agent")

# The longest the loop blocks in network I/O; bounds the reaction time to a stop request.
MAX_POLL_S: Final = 0.5
# Journal upkeep (bounds, a lone commit of acknowledged deletes) at most this often, wall s.
UPKEEP_EVERY_S: Final = 60.0
# Acknowledged deletes ride on the next append's commit; they get a commit of their own only
# when no append came for this long (a node whose sensors all failed).
ACK_FLUSH_AFTER_S: Final = 120.0
# At shutdown, how long to wait for acks of batches in flight.
SHUTDOWN_ACK_WAIT_S: Final = 3.0
# In-flight slots the drain leaves to live batches (at most half of the window), so a live
# batch is never queued behind drained ones in the MQTT client.
LIVE_RESERVE: Final = 2
# Batches sent and not acknowledged, at most; the rest waits in the journal (bounded memory).
MAX_UNACKED_BATCHES: Final = 1000
# On a full disk, drop this share of the journal (oldest first) to make room.
FULL_DISK_SHED: Final = 0.05
# The latest refusal is written to the journal (for `envnet edge status`) at most this often
# while its reason stays the same: a broker without the ACL lets anyone publish refusals.
REFUSAL_SAVE_EVERY_S: Final = 10.0


class Producer(Protocol):
    """Where readings come from: the sampler on a real node, a replay in tests."""

    def step(self, now_ms: int) -> list[Reading]: ...

    def next_due_ms(self) -> int: ...

    def flush(self, now_ms: int) -> list[Reading]:
        """Readings of the interval in progress, at shutdown."""
        ...

    def health(self) -> list[SensorHealth]: ...

    def close(self) -> None: ...


class LoopHook(Protocol):
    """Told when the loop starts, completes a turn and begins to stop: systemd's
    notifications and watchdog (edge.watchdog) are sent from the loop's own thread."""

    def started(self) -> None: ...

    def turn_done(self) -> None: ...

    def stopping(self) -> None: ...


class _NoHook:
    def started(self) -> None:
        """Nobody to tell."""

    def turn_done(self) -> None:
        """Nobody to tell."""

    def stopping(self) -> None:
        """Nobody to tell."""


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
        link: Link,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        transport_clock: Clock | None = None,
        hook: LoopHook | None = None,
    ) -> None:
        self._s = settings
        self._hook = hook or _NoHook()
        self._producer = producer
        self._journal = journal
        self._link = link
        self._clock = clock
        # Readings live in event time (`clock`, accelerated in simulations). The journal's
        # timestamps (its age bound, the last ack) are real time (`transport_clock`). Ack
        # timeouts and the drain rate are durations on the monotonic clock, which NTP does not
        # step: a clock set back an hour must not stall the drain for an hour.
        self._wall = transport_clock or WallClock()
        self._monotonic = monotonic
        self._bucket = TokenBucket(settings.drain_rate_per_s, burst=max(settings.drain_batch, 1))
        self._resend = ResendSchedule(
            int(settings.ack_timeout_s * 1000), int(settings.ack_timeout_cap_s * 1000)
        )
        self._reserve = min(LIVE_RESERVE, link.max_inflight // 2)
        self._readings_topic = topics.readings(settings.node)
        self._status_topic = topics.status(settings.node)
        self._next_status = 0.0
        self._next_upkeep = 0.0
        # A backlog batch went out since the journal was last empty: say when it is again.
        self._draining = False
        self.published_batches = 0
        # Acks that could not be decoded (malformed, invalid, another node's), logged and
        # dropped: the batches they may have meant are resent after their ack timeout.
        self.bad_acks = 0
        # What the aggregator said when it refused our messages (envnet.refusal/1): the count
        # and the latest, safe to read from another thread (a replay reports it).
        self.refusals_received = 0
        self.last_refusal: RefusalMessage | None = None
        self._refusal_saved: tuple[str, float] | None = None  # (reason, monotonic s)
        # Acks naming another journal than ours (this node's previous one, say), ignored.
        self.foreign_acks = 0
        # Readings in the journal, refreshed when readings are added or acknowledged; safe to
        # read from another thread (e.g. a replay waiting for its last acks).
        self.journal_depth = journal.depth()

    @property
    def link(self) -> Link:
        """The uplink, for its state (an MqttLink says which broker, and how often it moved)."""
        return self._link

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("agent_started", node=self._s.node, version=self._s.version)
        if self._journal.quarantined is not None:
            log.error("journal_quarantined", moved_to=str(self._journal.quarantined))
        self._hook.started()
        try:
            while not stop.is_set():
                self._turn()
                self._hook.turn_done()
            self._hook.stopping()
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
        mono = self._monotonic()
        if mono >= self._next_upkeep:
            self._upkeep(self._wall.now_ms())
            self._next_upkeep = mono + UPKEEP_EVERY_S
        if self._link.connected:
            if mono >= self._next_status:
                self._publish_status()
            self._drain(now_ms, self._mono_ms())
        for event in self._link.poll(self._poll_timeout()):
            self._handle(event)

    def _poll_timeout(self) -> float:
        """Until the next sample is due or the drain may send again, at most MAX_POLL_S."""
        until_sample = self._clock.wall_seconds_until(self._producer.next_due_ms())
        return max(0.0, min(MAX_POLL_S, until_sample, self._until_drain_s()))

    def _until_drain_s(self) -> float:
        # With the in-flight window full, the broker's PUBACKs end the poll.
        if not self._link.connected or self._link.capacity <= self._reserve:
            return MAX_POLL_S
        mono_ms = self._mono_ms()
        waits = []
        due_ms = self._resend.next_due_ms()
        if due_ms is not None:
            tokens_ms = self._bucket.ms_until(self._s.drain_batch, mono_ms)
            waits.append(max(due_ms - mono_ms, tokens_ms))
        backlog = self._journal.backlog
        if backlog and self._may_add_batches():
            waits.append(self._bucket.ms_until(min(self._s.drain_batch, backlog), mono_ms))
        return min(waits, default=MAX_POLL_S * 1000) / 1000.0

    def _handle(self, event: LinkEvent) -> None:
        if isinstance(event, Connected):
            self._resend.all_due(self._mono_ms())
            self._publish_status()
        elif isinstance(event, AckReceived):
            if event.journal is not None and event.journal != self._journal.journal_id:
                # Seqs start again at 1 in a new journal: an ack for the old journal's seq 5
                # must not delete this one's seq 5, which may not be stored.
                self.foreign_acks += 1
                log.warning("foreign_ack", journal=event.journal, seqs=len(event.seqs))
                return
            for seq in event.seqs:
                self._resend.remove(seq)
            acked = self._journal.ack(event.seqs, self._wall.now_ms())
            self.journal_depth = self._journal.depth()
            log.debug("acked", seqs=len(event.seqs), readings=acked)
            if self._draining and self.journal_depth == 0 and self._link.connected:
                # The backlog is drained: say so now (journal depth 0), not at the next
                # periodic status. The aggregator then closes this node's windows and late
                # episodes up to its newest reading (schemas/README.md, status).
                self._draining = False
                self._publish_status()
        elif isinstance(event, BadAck):
            self.bad_acks += 1
            log.warning("bad_ack", error=event.error[:300], count=self.bad_acks)
        elif isinstance(event, Disconnected):
            log.info("offline_buffering", node=self._s.node)
        elif isinstance(event, RefusalReceived):
            self._refused(event.refusal)
        elif isinstance(event, BadRefusal):
            log.warning("bad_refusal", error=event.error[:300])

    def _refused(self, refusal: RefusalMessage) -> None:
        self.refusals_received += 1
        self.last_refusal = refusal
        log.warning(
            "refused_by_aggregator",
            node=self._s.node,
            reason=refusal.reason,
            detail=refusal.detail,
            kind=refusal.kind,
            seq=refusal.seq,
            count=self.refusals_received,
        )
        mono, saved = self._monotonic(), self._refusal_saved
        if (
            saved is not None
            and saved[0] == refusal.reason
            and mono - saved[1] < REFUSAL_SAVE_EVERY_S
        ):
            return
        note = LastRefusal(
            reason=refusal.reason,
            detail=refusal.detail,
            at_ms=refusal.at_ms,
            kind=refusal.kind,
            seq=refusal.seq,
        )
        try:
            self._journal.note_refusal(note)
        except JournalError as exc:
            log.error("journal_error", error=str(exc), doing="note_refusal")
            return
        self._refusal_saved = (refusal.reason, mono)

    # -- journal then publish -------------------------------------------------------------

    def _record(self, readings: Sequence[Reading], now_ms: int) -> None:
        """Journal, then publish at once if online: live data waits for nothing."""
        live = self._link.connected and self._link.capacity > 0 and self._may_add_batches()
        for batch in self._append(readings, self._wall.now_ms(), live):
            mono_ms = self._mono_ms()
            self._resend.add(batch.seq, mono_ms)
            if self._publish(batch, now_ms, backlog=False):
                self._resend.sent(batch.seq, mono_ms)
        self.journal_depth = self._journal.depth()

    def _append(self, readings: Sequence[Reading], wall_ms: int, live: bool) -> list[Batch]:
        """Journal readings. On a full disk, drop the oldest part of the journal to make
        room and try once more; readings that still do not fit are counted as dropped."""
        try:
            return self._journal.append(readings, wall_ms, live=live)
        except JournalFullError as exc:
            log.error("journal_full", error=str(exc))
        try:
            room = int(self._journal.used_bytes() * (1 - FULL_DISK_SHED))
            dropped = self._journal.enforce_bounds(wall_ms, max_bytes=room)
            log.warning("journal_dropped", readings=dropped, reason="disk full")
            return self._journal.append(readings, wall_ms, live=live)
        except JournalFullError as exc:
            self._journal.lost(readings)
            log.error("readings_lost", readings=len(readings), reason="disk full", error=str(exc))
            return []

    def _publish(self, batch: Batch, now_ms: int, *, backlog: bool) -> bool:
        message = ReadingsMessage(
            schema=READINGS_SCHEMA,
            node=self._s.node,
            seq=batch.seq,
            readings=batch.readings,
            sent_ms=now_ms,
            backlog=backlog,
            journal=self._journal.journal_id,
        )
        if not self._link.publish(self._readings_topic, codec.READINGS.encode(message)):
            return False
        self.published_batches += 1
        return True

    def _drain(self, now_ms: int, mono_ms: int) -> None:
        """Resends, then new backlog batches, oldest first, within the drain rate and
        leaving LIVE_RESERVE in-flight slots to live batches."""
        while self._link.capacity > self._reserve:
            seq = self._resend.next_due(mono_ms)
            if seq is None:
                seq = self._pack(mono_ms)
                if seq is None:
                    return
            size = self._journal.batch_readings(seq)
            if size is None:  # acknowledged meanwhile, or dropped by the bounds
                self._resend.remove(seq)
                continue
            if not self._bucket.try_take(size, mono_ms):
                return
            batch = self._journal.batch(seq)
            if batch is None:
                self._resend.remove(seq)
                continue
            if not self._publish(batch, now_ms, backlog=True):
                return
            self._draining = True
            self._resend.sent(seq, mono_ms)

    def _pack(self, mono_ms: int) -> int | None:
        """A new backlog batch, if there is backlog and the rate allows a batch now."""
        backlog = self._journal.backlog
        if not backlog or not self._may_add_batches():
            return None
        if self._bucket.ms_until(min(self._s.drain_batch, backlog), mono_ms):
            return None
        seq = self._journal.pack_backlog(self._s.drain_batch)
        if seq is not None:
            self._resend.add(seq, mono_ms)
        return seq

    def _may_add_batches(self) -> bool:
        # An aggregator that acks nothing for days must not make the agent's memory grow:
        # past this many unacknowledged batches, new readings wait in the journal.
        return len(self._resend) < MAX_UNACKED_BATCHES

    def _mono_ms(self) -> int:
        return int(self._monotonic() * 1000)

    def _upkeep(self, wall_ms: int) -> None:
        try:
            dropped = self._journal.enforce_bounds(wall_ms)
            since = self._journal.pending_since_ms
            if since is not None and wall_ms - since >= ACK_FLUSH_AFTER_S * 1000:
                self._journal.flush()
        except JournalFullError as exc:
            log.error("journal_full", error=str(exc))
            return
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
            journal=self._journal.health(self._wall.now_ms()),
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
