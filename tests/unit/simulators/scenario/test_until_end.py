"""A simulated node's sampler in a scenario catches up instead of skipping, and stops at the
scenario's end: its last interval is reported, nothing after it."""

from __future__ import annotations

from pathlib import Path

from edge.config import EdgeConfig, NodeSection, SensorSection
from edge.runtime import build_sampler
from schemas.messages import Reading, SensorHealth
from simulators.scenario.nodes import UntilEnd

MIN = 60_000
END = 60 * MIN


class Counting:
    """A producer due every minute, reporting one reading stamped with the instant asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.due = MIN
        self.closed = False

    def step(self, now_ms: int) -> list[Reading]:
        self.asked.append(now_ms)
        if now_ms < self.due:
            return []
        self.due = now_ms - now_ms % MIN + MIN
        return [Reading(now_ms, "h2s", 1.0, "ug/m3", 60, "mean", "s")]

    def next_due_ms(self) -> int:
        return self.due

    def flush(self, now_ms: int) -> list[Reading]:
        return [Reading(now_ms, "h2s", 1.0, "ug/m3", 60, "mean", "s")]

    def health(self) -> list[SensorHealth]:
        return []

    def close(self) -> None:
        self.closed = True


def test_a_late_step_catches_up_one_due_instant_at_a_time() -> None:
    inner = Counting()
    producer = UntilEnd(inner, END)
    # Ten minutes late: every minute is still taken, at its own instant.
    assert [r.ts for r in producer.step(10 * MIN + 5)] == [k * MIN for k in range(1, 11)]
    assert inner.asked == [k * MIN for k in range(1, 11)]


def test_the_last_interval_is_reported_at_the_end_and_nothing_after() -> None:
    inner = Counting()
    producer = UntilEnd(inner, END)
    readings = producer.step(END + 30 * MIN)
    assert readings[-1].ts == END and max(inner.asked) == END
    assert producer.step(END + 40 * MIN) == []
    assert producer.flush(END + 50 * MIN) == []
    assert producer.next_due_ms() > END + 60 * MIN
    producer.close()
    assert inner.closed


def test_a_flush_before_the_end_stops_at_the_end() -> None:
    producer = UntilEnd(Counting(), END)
    assert [r.ts for r in producer.flush(END + 1)] == [END]


def test_a_real_sampler_far_behind_loses_no_interval(tmp_path: Path) -> None:
    """The edge's own sampler skips what it missed; wrapped, it reports every interval."""
    config = EdgeConfig(
        node=NodeSection(id="n"),
        sensors=[SensorSection(id="gas", driver="sim-odour", options={"seed": 3})],
    )
    origin = 1_780_243_200_000
    plain = build_sampler(config, origin)
    wrapped = UntilEnd(build_sampler(config, origin), origin + END)
    late = origin + 30 * MIN  # one step, half an hour late
    skipped = {r.ts for r in plain.step(late)}
    caught_up = {r.ts for r in wrapped.step(late)}
    assert len(caught_up) == 30  # every minute of [origin, origin + 30 min), each closed
    assert len(skipped) < len(caught_up)
