"""Periods in local days (UTC+8 by default), and choosing nodes through the stored inventory."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.reports.request import (
    InventoryNode,
    Period,
    ReportUsageError,
    current_inventory,
    select_nodes,
)


def test_a_period_runs_from_the_first_local_midnight_to_the_end_of_the_last_day() -> None:
    period = Period(date(2013, 3, 1), date(2013, 3, 31))
    # 2013-03-01 00:00 Beijing time is 2013-02-28 16:00 UTC.
    assert period.start_ms == int(datetime(2013, 2, 28, 16, tzinfo=UTC).timestamp() * 1000)
    assert period.end_ms == int(datetime(2013, 3, 31, 16, tzinfo=UTC).timestamp() * 1000)
    assert len(period.days) == 31


def test_from_after_to_is_a_usage_error() -> None:
    with pytest.raises(ReportUsageError, match="after --to"):
        Period(date(2013, 3, 2), date(2013, 3, 1))


@given(
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    into_day_ms=st.integers(min_value=0, max_value=86_400_000 - 1),
    offset=st.integers(min_value=-12, max_value=14),
)
def test_every_instant_of_a_local_day_buckets_to_that_day(
    day: date, into_day_ms: int, offset: int
) -> None:
    period = Period(day, day, offset)
    ts = period.day_start_ms(day) + into_day_ms
    assert period.local_day(ts) == day
    # The same instant, seen on a clock at that offset, has that date.
    local = datetime.fromtimestamp(ts / 1000, UTC) + timedelta(hours=offset)
    assert local.date() == day


def node(name: str, group: str | None = "Gusu", active: bool = True, at: int = 10) -> InventoryNode:
    return InventoryNode(node=name, active=active, at_ms=at, group=group, air_zone=2)


def test_the_newest_point_of_a_node_says_its_current_group() -> None:
    points = [node("a", "Old", at=1), node("a", "Gusu", at=5), node("b", at=5)]
    points.append(InventoryNode("b", active=False, at_ms=9))  # retired later
    current = current_inventory(points)
    assert current["a"].group == "Gusu"
    assert current["b"].active is False
    # Retired, it keeps its zone class for reports on its history, not its group.
    assert (current["b"].air_zone, current["b"].group) == (2, None)


def test_selection_by_node_group_and_default() -> None:
    inventory = current_inventory(
        [node("a"), node("b", "SIP"), node("c"), node("old", active=False)]
    )
    assert [i.node for i in select_nodes(inventory, ["b"], None).nodes] == ["b"]
    assert [i.node for i in select_nodes(inventory, [], "Gusu").nodes] == ["a", "c"]
    assert [i.node for i in select_nodes(inventory, [], None).nodes] == ["a", "b", "c"]
    # A retired node named by id is still reported (its history is stored).
    assert [i.node for i in select_nodes(inventory, ["old"], None).nodes] == ["old"]


def test_unknown_node_and_group_are_usage_errors() -> None:
    inventory = current_inventory([node("a")])
    with pytest.raises(ReportUsageError, match=r"unknown node.*zz"):
        select_nodes(inventory, ["zz"], None)
    with pytest.raises(ReportUsageError, match=r"unknown group 'Nope'.*Gusu"):
        select_nodes(inventory, [], "Nope")
    with pytest.raises(ReportUsageError, match="no active node"):
        select_nodes({}, [], None)


def test_a_group_is_reported_only_when_asked_for_and_only_for_its_members() -> None:
    inventory = current_inventory([node("a"), node("b", "SIP"), node("c")])
    asked = select_nodes(inventory, ["b"], "Gusu")
    assert asked.asked == ("b",)
    assert asked.groups() == {"b": None, "a": "Gusu", "c": "Gusu"}
    assert select_nodes(inventory, [], None).groups() == {"a": None, "b": None, "c": None}


@given(
    first=st.dates(date(2000, 1, 1), date(2040, 1, 1)),
    length=st.integers(0, 800),
    days=st.integers(1, 40),
)
def test_chunks_cover_the_period_exactly_and_are_short(first: date, length: int, days: int) -> None:
    period = Period(first, first + timedelta(days=length), 8)
    chunks = period.chunks(days)
    assert chunks[0].start_ms == period.start_ms and chunks[-1].end_ms == period.end_ms
    assert all(a.end_ms == b.start_ms for a, b in itertools.pairwise(chunks))
    assert all(1 <= len(c.days) <= days and c.utc_offset_h == 8 for c in chunks)
