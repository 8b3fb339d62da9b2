"""Outages in simulated time: the real EdgeAgent and Journal against a simulated link.

One simulated clock is the agent's event time, real time and monotonic time; it moves only
while the agent waits in `poll()`, so a day and the drain after it take seconds. The link
models the broker (PUBACK latency, in-flight window) and the aggregator (an ack 100 ms after
a publish), and can be down for a while, or up with an aggregator that acks nothing.

1. A 24-hour broker outage at 1 Hz x 10 channels (864,000 readings): every reading is
   delivered exactly once; after the reconnect each live batch is published the instant it
   is journaled, flagged live, while the backlog drains; the drain never exceeds the
   configured rate (token bucket: rate x window + one batch) and ends when that rate allows.
2. The same after a 1-hour outage on a thin link (6 in flight, 1.5 s to a PUBACK): the
   drain fills the window, and live batches still go out at once.
3. An aggregator that acks nothing for 2 hours: the agent keeps at most MAX_UNACKED_BATCHES
   batches in memory, the rest waits in the journal; when acks come back, all is delivered.
4. The stop: the interval in progress is sent, and the agent waits for its ack at most
   SHUTDOWN_ACK_WAIT_S; what is still unacked then stays journaled for the next run.

The journal lives on /dev/shm when there is one: 86,400 offline commits with a real fsync
each would take minutes here, and these tests are about scheduling, not the disk (the crash
and footprint tests are about the disk).
"""

from __future__ import annotations

import heapq
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edge.agent import MAX_UNACKED_BATCHES, SHUTDOWN_ACK_WAIT_S, AgentSettings, EdgeAgent
from edge.journal import Journal
from edge.link import AckReceived, Connected, Disconnected, LinkEvent
from schemas import codec
from schemas.messages import Reading, SensorHealth

START_MS = 1_796_000_000_000
CHANNELS = 10
LIVE_BEFORE_S = 60
RATE = 500.0
DRAIN_BATCH = 100
ACK_US = 100_000
SHM_NEEDED = 256 * 1024 * 1024


class SimTime:
    """Event time, real time and monotonic time at once, in integer microseconds."""

    def __init__(self, start_ms: int) -> None:
        self.us = start_ms * 1000

    def now_ms(self) -> int:
        return self.us // 1000

    def wall_seconds_until(self, at_ms: int) -> float:
        return (at_ms * 1000 - self.us) / 1e6

    def monotonic(self) -> float:
        return self.us / 1e6


@dataclass
class Published:
    at_us: int
    backlog: bool
    first_ts: int
    count: int


@dataclass
class SimLink:
    """Broker and aggregator in one: down during [down_us, up_us); the aggregator ignores
    batches published before `acks_from_us`."""

    time: SimTime
    seconds: int
    down_us: int
    up_us: int
    max_inflight: int = 100
    puback_us: int = 5_000
    acks_from_us: int = 0
    connected: bool = False
    delivered: bytearray = field(default_factory=bytearray)
    published: list[Published] = field(default_factory=list)
    statuses: list[tuple[int, int]] = field(default_factory=list)  # (at_us, journal depth)
    _events: list[tuple[int, int, str, int]] = field(default_factory=list)
    _inflight: int = 0
    _counter: int = 0
    _idle_polls: int = 0

    def __post_init__(self) -> None:
        self.delivered = bytearray(self.seconds * CHANNELS)
        self._schedule(self.time.us, "up", 0)
        if self.up_us > self.down_us:
            self._schedule(self.down_us, "down", 0)
            self._schedule(self.up_us, "up", 0)

    @property
    def capacity(self) -> int:
        return self.max_inflight - self._inflight

    def _schedule(self, at_us: int, kind: str, seq: int) -> None:
        self._counter += 1
        heapq.heappush(self._events, (at_us, self._counter, kind, seq))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        if not self.connected:
            return False
        if topic.endswith("/status"):
            journal = codec.STATUS.decode(payload).journal
            self.statuses.append((self.time.us, -1 if journal is None else journal.depth))
        if topic.endswith("/readings"):
            message = codec.READINGS.decode(payload)
            for r in message.readings:
                index = (r.ts - START_MS) // 1000 * CHANNELS + int(r.sensor[2:])
                self.delivered[index] = min(255, self.delivered[index] + 1)
            first = min(r.ts for r in message.readings)
            self.published.append(
                Published(self.time.us, message.backlog, first, len(message.readings))
            )
            if self.time.us >= self.acks_from_us:
                self._schedule(self.time.us + ACK_US, "ack", message.seq)
        self._inflight += 1
        self._schedule(self.time.us + self.puback_us, "puback", 0)
        return True

    def poll(self, timeout_s: float) -> list[LinkEvent]:
        step_us = max(0, round(timeout_s * 1e6))
        self._idle_polls = self._idle_polls + 1 if step_us == 0 else 0
        assert self._idle_polls < 10_000, "the agent spins: zero poll timeouts and no progress"
        until = self.time.us + step_us
        if self._events and self._events[0][0] <= until:
            until = max(self.time.us, self._events[0][0])  # like a socket: wake on traffic
        self.time.us = until
        events: list[LinkEvent] = []
        while self._events and self._events[0][0] <= until:
            _, _, kind, seq = heapq.heappop(self._events)
            events.extend(self._fire(kind, seq))
        return events

    def _fire(self, kind: str, seq: int) -> list[LinkEvent]:
        if kind == "down":
            self.connected = False
            self._inflight = 0
            # Whatever was in flight is lost with the connection: acks never come.
            self._events = [e for e in self._events if e[2] not in ("ack", "puback")]
            heapq.heapify(self._events)
            return [Disconnected("simulated outage")]
        if kind == "up":
            self.connected = True
            return [Connected()]
        if kind == "puback":
            self._inflight = max(0, self._inflight - 1)
            return []
        return [AckReceived([seq])] if self.connected else []

    def close(self, final_status: bytes | None, timeout_s: float = 3.0) -> None:
        self.connected = False


@dataclass
class Channels:
    """10 channels sampled at 1 Hz, a 1-s reading each per second; stops at `end_ms`.
    `watch` is called every second (the tests record the agent's state with it)."""

    time: SimTime
    end_ms: int
    stop: threading.Event
    watch: Callable[[], None] = lambda: None
    next_ms: int = 0
    produced: int = 0

    def __post_init__(self) -> None:
        self.next_ms = self.time.now_ms() // 1000 * 1000 + 1000

    def step(self, now_ms: int) -> list[Reading]:
        out: list[Reading] = []
        while self.next_ms <= now_ms:
            ts = self.next_ms - 1000  # the second that just closed
            out.extend(
                Reading(
                    ts=ts,
                    quantity="pm2_5",
                    value=35.0,
                    unit="ug/m3",
                    period_s=1,
                    stat="mean",
                    sensor=f"ch{c}",
                )
                for c in range(CHANNELS)
            )
            self.next_ms += 1000
            self.watch()
        self.produced += len(out)
        if now_ms >= self.end_ms:
            self.stop.set()
        return out

    def next_due_ms(self) -> int:
        return self.next_ms

    def flush(self, now_ms: int) -> list[Reading]:
        return []

    def health(self) -> list[SensorHealth]:
        return []

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class Run:
    link: SimLink
    producer: Channels
    agent: EdgeAgent
    up_us: int

    @property
    def seconds(self) -> int:
        return self.producer.produced // CHANNELS

    def after_reconnect(self, *, backlog: bool) -> list[Published]:
        return [p for p in self.link.published if p.at_us >= self.up_us and p.backlog == backlog]


def agent_settings(node: str) -> AgentSettings:
    return AgentSettings(
        node=node,
        version="test",
        ack_timeout_s=60.0,
        ack_timeout_cap_s=900.0,
        drain_rate_per_s=RATE,
        drain_batch=DRAIN_BATCH,
        status_interval_s=60.0,
    )


def simulate(
    directory: Path,
    *,
    outage_s: int,
    run_after_s: int,
    max_inflight: int = 100,
    puback_us: int = 5_000,
    silent_aggregator_s: int = 0,
    watch: Callable[[EdgeAgent], None] | None = None,
    producer_type: type[Channels] = Channels,
) -> Run:
    time = SimTime(START_MS)
    down_us = (START_MS + LIVE_BEFORE_S * 1000) * 1000 + 500_000
    up_us = down_us + outage_s * 1_000_000
    seconds = LIVE_BEFORE_S + outage_s + run_after_s + 10
    link = SimLink(
        time,
        seconds,
        down_us,
        up_us,
        max_inflight=max_inflight,
        puback_us=puback_us,
        acks_from_us=up_us + silent_aggregator_s * 1_000_000 if silent_aggregator_s else 0,
    )
    stop = threading.Event()
    producer = producer_type(time, up_us // 1000 + run_after_s * 1000, stop)
    settings = agent_settings("outage-node")
    journal = Journal(directory / "journal.sqlite", 1 << 30, 30 * 86400)
    agent = EdgeAgent(
        settings, producer, journal, link, time, monotonic=time.monotonic, transport_clock=time
    )
    if watch is not None:
        producer.watch = lambda: watch(agent)
    agent.run(stop)
    return Run(link, producer, agent, up_us)


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    # The day's journal is about 40 MB; a container's /dev/shm may hold only 64 MB.
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and shutil.disk_usage(shm).free >= SHM_NEEDED
    with tempfile.TemporaryDirectory(dir=shm if roomy else None) as directory:
        yield Path(directory)


def assert_delivered_once(run: Run) -> None:
    n = run.seconds * CHANNELS
    assert bytes(run.link.delivered[:n]) == b"\x01" * n, "a reading lost or sent twice"
    assert not any(run.link.delivered[n:])


def assert_live_first(run: Run) -> None:
    """Each second's readings went out the instant they were journaled, flagged live."""
    live = run.after_reconnect(backlog=False)
    for p in live:
        closed_us = (p.first_ts + 1000) * 1000
        assert p.at_us - closed_us <= 1_000, f"a live batch waited {p.at_us - closed_us} us"
    drain_end = run.after_reconnect(backlog=True)[-1].at_us
    seconds_draining = (drain_end - run.up_us) // 1_000_000
    assert sum(1 for p in live if p.at_us < drain_end) >= seconds_draining - 1


def test_a_24_hour_outage_drains_completely_live_first_within_the_rate(shm_dir: Path) -> None:
    outage_s = 24 * 3600
    backlog_readings = outage_s * CHANNELS  # 864,000
    drain_s = backlog_readings / RATE  # 1728 s at the configured rate
    run = simulate(shm_dir, outage_s=outage_s, run_after_s=int(drain_s * 1.1) + 120)
    assert run.producer.produced >= backlog_readings
    assert_delivered_once(run)
    assert_live_first(run)
    backlog = run.after_reconnect(backlog=True)
    assert sum(p.count for p in backlog) >= backlog_readings
    # Within the rate: no window holds more than rate x window + one batch...
    for window_s in (1, 10, 100):
        assert max_in_window(backlog, window_s * 1_000_000) <= RATE * window_s + DRAIN_BATCH
    # ...and at that rate: done within 2 % of backlog / rate.
    took_s = (backlog[-1].at_us - run.up_us) / 1e6
    assert took_s <= drain_s * 1.02 + 1, f"drain took {took_s:.0f} s"


def test_live_batches_skip_the_queue_on_a_thin_congested_link(shm_dir: Path) -> None:
    # 6 in flight and 1.5 s to a PUBACK: the window, not the rate, limits the drain.
    run = simulate(shm_dir, outage_s=3600, run_after_s=600, max_inflight=6, puback_us=1_500_000)
    assert_delivered_once(run)
    assert_live_first(run)
    backlog = run.after_reconnect(backlog=True)
    assert max_in_window(backlog, 10_000_000) < RATE * 10 * 0.8, "the window was not the limit"


def test_an_aggregator_that_acks_nothing_costs_journal_not_memory(shm_dir: Path) -> None:
    most_unacked = [0]

    def watch(agent: EdgeAgent) -> None:
        most_unacked[0] = max(most_unacked[0], len(agent._resend))

    silent_s = 2 * 3600
    run = simulate(
        shm_dir, outage_s=0, run_after_s=silent_s + 1500, silent_aggregator_s=silent_s, watch=watch
    )
    assert most_unacked[0] == MAX_UNACKED_BATCHES
    n = run.seconds * CHANNELS
    assert all(run.link.delivered[:n]), "a reading never got out"
    assert run.agent.journal_depth == 0


def max_in_window(sent: list[Published], window_us: int) -> int:
    best = total = 0
    start = 0
    for p in sent:
        total += p.count
        while sent[start].at_us <= p.at_us - window_us:
            total -= sent[start].count
            start += 1
        best = max(best, total)
    return best


def test_the_end_of_a_drain_is_told_at_once_by_a_status_with_an_empty_journal(
    shm_dir: Path,
) -> None:
    """The aggregator closes a node's windows and late episodes when it hears the backlog is
    drained: the node says so as soon as its journal is empty, not a minute later."""
    run = simulate(shm_dir, outage_s=600, run_after_s=120)
    assert_delivered_once(run)
    drain_end = run.after_reconnect(backlog=True)[-1].at_us
    told = [at for at, depth in run.link.statuses if at > drain_end and depth == 0]
    assert told and told[0] - drain_end <= 2_000_000, (drain_end, run.link.statuses[-5:])


@dataclass
class WithTail(Channels):
    """Channels whose interval in progress, flushed at the stop, holds one more reading."""

    def flush(self, now_ms: int) -> list[Reading]:
        ts = self.next_ms - 1000
        tail = Reading(ts, "pm2_5", 35.0, "ug/m3", period_s=1, stat="mean", sensor="ch0")
        self.produced += 1
        return [tail]


def test_the_stop_sends_the_interval_in_progress_and_waits_for_its_ack(shm_dir: Path) -> None:
    run = simulate(shm_dir, outage_s=0, run_after_s=0, producer_type=WithTail)
    tail = run.link.published[-1]
    assert tail.count == 1, "the flushed tail was not sent"
    assert run.agent.journal_depth == 0, "the stop did not wait for the tail's ack"
    assert run.link.time.us - tail.at_us <= ACK_US + 100_000, "the stop waited longer than the ack"


def test_a_stop_without_acks_gives_up_after_its_wait_and_keeps_the_batches(shm_dir: Path) -> None:
    run = simulate(
        shm_dir, outage_s=0, run_after_s=0, silent_aggregator_s=3600, producer_type=WithTail
    )
    tail = run.link.published[-1]
    assert tail.count == 1
    waited_s = (run.link.time.us - tail.at_us) / 1e6
    assert SHUTDOWN_ACK_WAIT_S <= waited_s <= SHUTDOWN_ACK_WAIT_S + 0.1
    # Unacked, so kept for the next run: every 1-s interval of 10 channels, and the tail.
    assert run.producer.produced == LIVE_BEFORE_S * CHANNELS + 1
    assert Journal(shm_dir / "journal.sqlite", 1 << 30, 30 * 86400).depth() == run.producer.produced
