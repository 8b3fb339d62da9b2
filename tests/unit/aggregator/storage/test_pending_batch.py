"""PendingBatch: a batch's lines are formatted when it is written, not while it is buffered;
a write formats all of its items together, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from hypothesis import given
from hypothesis import strategies as st

from aggregator.fleet import NodeInfo
from aggregator.intake.checks import AcceptedBatch
from aggregator.storage.pipeline import PendingBatch, ReadingBudget, chunk_lines
from aggregator.storage.records import ReadingLines
from schemas.messages import Reading, ReadingValues

INFO = NodeInfo(node="n1", site="s1", air_zone=2)
OTHER = NodeInfo(node="n2", site="s 2", air_zone=2)


def reading(ts: int, value: float, *, flags: tuple[str, ...] = ()) -> Reading:
    return Reading(ts=ts, quantity="pm2_5", value=value, unit="ug/m3", period_s=60,
                   stat="mean", sensor="pm", flags=flags)  # type: ignore[arg-type]  # fmt: skip


class CountingLines(ReadingLines):
    """ReadingLines that counts how many readings it has formatted."""

    __slots__ = ("formatted",)

    def __init__(self, info: NodeInfo) -> None:
        super().__init__(info)
        self.formatted = 0

    def extend(
        self, out: list[str], readings: Sequence[ReadingValues], values: Iterator[str]
    ) -> None:
        self.formatted += len(readings)
        super().extend(out, readings, values)


def test_deferred_lines_are_counted_unformatted_and_formatted_on_demand() -> None:
    readings = [reading(1_780_000_000_000 + i * 60_000, 10.0 + i) for i in range(3)]
    batch = AcceptedBatch(INFO, 1, readings, False, None)
    builder = CountingLines(INFO)
    item = PendingBatch([], batch, builder=builder)
    assert (item.size, item.readings) == (3, 3)
    assert builder.formatted == 0  # counting does not format
    expected = ReadingLines(INFO).lines(readings)
    assert item.text() == expected
    assert builder.formatted == 3
    assert chunk_lines([item]) == expected
    assert builder.formatted == 6


def test_given_lines_are_kept_as_they_are() -> None:
    internal = PendingBatch(["status,node=n1 up=1i 1"])
    assert (internal.size, internal.readings, internal.text()) == (1, 0, internal.lines)
    batch = AcceptedBatch(INFO, 2, [reading(1_780_000_000_000, 5.0)], False, None)
    calibrated = PendingBatch(["x value=1 1"], batch)
    assert (calibrated.size, calibrated.readings, calibrated.text()) == (1, 1, ["x value=1 1"])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["deferred", "deferred-other-node", "lines", "empty"]),
            st.lists(st.floats(0.0, 1000.0), max_size=4),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_a_write_has_the_lines_of_its_items_each_formatted_alone_in_order(
    items: list[tuple[str, list[float], bool]],
) -> None:
    """chunk_lines formats the values of every deferred item in one call: the lines must be
    exactly those of each item formatted alone (`text`), in the items' order, whatever mix of
    nodes, flags, given lines and empty batches the write holds."""
    builders = {INFO.node: ReadingLines(INFO), OTHER.node: ReadingLines(OTHER)}
    chunk = []
    for i, (kind, values, flagged) in enumerate(items):
        info = OTHER if kind == "deferred-other-node" else INFO
        flags = ("incomplete",) if flagged else ()
        readings = [reading(1_780_000_000_000 + j * 60_000, v, flags=flags)
                    for j, v in enumerate(values)]  # fmt: skip
        batch = AcceptedBatch(info, i + 1, readings, False, None)
        if kind == "lines":
            chunk.append(PendingBatch([f"status,node=n1 up={i}i {i}"] * len(values)))
        elif kind == "empty":
            chunk.append(PendingBatch([], AcceptedBatch(info, i + 1, [], False, None),
                                      builder=builders[info.node]))  # fmt: skip
        else:
            chunk.append(PendingBatch([], batch, builder=builders[info.node]))
    assert chunk_lines(chunk) == [line for item in chunk for line in item.text()]


def test_room_is_taken_at_once_when_there_is_some_and_never_beyond_the_cap() -> None:
    async def main() -> None:
        budget = ReadingBudget(10)
        assert budget.try_acquire(25)  # oversized, but nothing else is buffered: let through
        assert not budget.try_acquire(1)
        assert budget.used == 25
        budget.release(25)
        assert budget.try_acquire(6) and not budget.try_acquire(5) and budget.try_acquire(4)
        assert budget.used == 10

    asyncio.run(main())
