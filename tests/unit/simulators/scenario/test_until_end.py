"""A simulated node stops measuring at the scenario's end: its last interval is reported,
nothing after it, so its agent can drain its journal while still connected."""

from __future__ import annotations

from schemas.messages import Reading, SensorHealth
from simulators.scenario.nodes import UntilEnd

END = 3_600_000


class Counting:
    """A producer that reports one reading per call, stamped with the time it was asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.closed = False

    def step(self, now_ms: int) -> list[Reading]:
        self.asked.append(now_ms)
        return [Reading(now_ms, "h2s", 1.0, "ug/m3", 60, "mean", "s")]

    def next_due_ms(self) -> int:
        return (self.asked[-1] if self.asked else 0) + 60_000

    def flush(self, now_ms: int) -> list[Reading]:
        return self.step(now_ms)

    def health(self) -> list[SensorHealth]:
        return []

    def close(self) -> None:
        self.closed = True


def test_the_last_interval_is_reported_at_the_end_and_nothing_after() -> None:
    inner = Counting()
    producer = UntilEnd(inner, END)
    assert len(producer.step(END - 60_000)) == 1
    # The first step past the end is asked for the end itself, once.
    assert [r.ts for r in producer.step(END + 500_000)] == [END]
    assert producer.step(END + 600_000) == []
    assert producer.flush(END + 700_000) == []
    assert inner.asked == [END - 60_000, END]
    assert producer.next_due_ms() > END + 3_600_000


def test_before_the_end_it_is_the_sampler_and_a_flush_stops_at_the_end() -> None:
    inner = Counting()
    producer = UntilEnd(inner, END)
    assert producer.next_due_ms() == inner.next_due_ms()
    assert [r.ts for r in producer.flush(END + 1)] == [END]
    producer.close()
    assert inner.closed
