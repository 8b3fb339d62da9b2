"""PendingBatch: a batch's lines are formatted when it is written, not while it is buffered."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.fleet import NodeInfo
from aggregator.intake.checks import AcceptedBatch
from aggregator.storage.pipeline import PendingBatch
from aggregator.storage.records import ReadingLines
from schemas.messages import Reading, ReadingValues

INFO = NodeInfo(node="n1", site="s1", air_zone=2)


def reading(ts: int, value: float) -> Reading:
    return Reading(ts=ts, quantity="pm2_5", value=value, unit="ug/m3", period_s=60,
                   stat="mean", sensor="pm")  # fmt: skip


def test_deferred_lines_are_counted_unformatted_and_formatted_on_demand() -> None:
    readings = [reading(1_780_000_000_000 + i * 60_000, 10.0 + i) for i in range(3)]
    batch = AcceptedBatch(INFO, 1, readings, False, None)
    builder = ReadingLines(INFO)
    calls: list[int] = []

    def render(values: Sequence[ReadingValues]) -> list[str]:
        calls.append(len(values))
        return builder.lines(values)

    item = PendingBatch([], batch, render=render)
    assert (item.size, item.readings) == (3, 3)
    assert calls == []  # counting does not format
    assert item.text() == ReadingLines(INFO).lines(readings)
    assert calls == [3]


def test_given_lines_are_kept_as_they_are() -> None:
    internal = PendingBatch(["status,node=n1 up=1i 1"])
    assert (internal.size, internal.readings, internal.text()) == (1, 0, internal.lines)
    batch = AcceptedBatch(INFO, 2, [reading(1_780_000_000_000, 5.0)], False, None)
    calibrated = PendingBatch(["x value=1 1"], batch)
    assert (calibrated.size, calibrated.readings, calibrated.text()) == (1, 1, ["x value=1 1"])
