"""The readings source of the water and bloom KPIs: queries and /query parsing, no database."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.reports.water_source import (
    ReportPeriodError,
    ReportSourceError,
    chunks,
    collect,
    parse_readings,
    period_bounds_ms,
    quote_string,
    readings_query,
)

T = 1_780_000_000_000


def answer(rows: list[list[Any]], node: str = "w1", quantity: str = "nh3_n") -> dict[str, Any]:
    series = {
        "name": "readings",
        "tags": {"node": node, "quantity": quantity},
        "columns": ["time", "value", "flags"],
        "values": rows,
    }
    return {"statement_id": 0, "series": [series]}


def test_the_period_is_local_midnight_to_local_midnight() -> None:
    start, end = period_bounds_ms(date(2026, 6, 1), date(2026, 6, 2), 8)
    assert datetime.fromtimestamp(start / 1000, UTC) == datetime(2026, 5, 31, 16, tzinfo=UTC)
    assert datetime.fromtimestamp(end / 1000, UTC) == datetime(2026, 6, 2, 16, tzinfo=UTC)


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ReportPeriodError, match="ends"):
        period_bounds_ms(date(2026, 6, 2), date(2026, 6, 1), 8)


@given(
    start=st.integers(0, 2_000_000_000_000),
    length=st.integers(0, 400 * 86_400_000),
    days=st.integers(1, 40),
)
def test_chunks_cover_the_period_exactly_and_are_short(start: int, length: int, days: int) -> None:
    spans = list(chunks(start, start + length, days))
    if length == 0:
        assert spans == []
        return
    assert spans[0][0] == start and spans[-1][1] == start + length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(0 < hi - lo <= days * 86_400_000 for lo, hi in spans)


def test_strings_are_quoted_so_a_node_id_cannot_break_out() -> None:
    assert quote_string("a'b\\c") == "'a\\'b\\\\c'"
    q = readings_query(["do", "ph"], ["w1", "x' OR '1'='1"], 10, 20)
    assert "(\"quantity\" = 'do' OR \"quantity\" = 'ph')" in q
    assert "'x\\' OR \\'1\\'=\\'1'" in q
    assert "\"stat\" = 'mean'" in q and "time >= 10ms AND time < 20ms" in q
    assert q.endswith('GROUP BY "node", "quantity"')


def test_rows_are_parsed_and_non_ambient_or_bad_values_left_out() -> None:
    into: dict[tuple[str, str], list[Any]] = {}
    rows: list[list[Any]] = [
        [T + 60_000, 0.8, None],
        [T, 0.5, "simulated"],
        [T + 120_000, 9.0, "calibrating"],
        [T + 180_000, 9.0, "replayed,maintenance"],
        [T + 240_000, 9.0, "out_of_range"],
        [T + 300_000, None, None],
        [T + 360_000, float("nan"), None],
        [T + 420_000, -1.0, None],
        [T + 480_000, True, None],
        [T + 540_000, 1, None],
    ]
    excluded = parse_readings(answer(rows), into)
    assert excluded == 7
    got = collect(into, len(rows), excluded)
    s = got.series[("w1", "nh3_n")]
    assert s.ts_ms == (T, T + 60_000, T + 540_000) and s.values == (0.5, 0.8, 1.0)
    assert (got.rows, got.excluded) == (10, 7)


def test_an_empty_answer_is_no_series() -> None:
    into: dict[tuple[str, str], list[Any]] = {}
    assert parse_readings({"statement_id": 0}, into) == 0
    assert collect(into, 0, 0).series == {}


def test_a_row_without_a_time_is_a_clear_error() -> None:
    with pytest.raises(ReportSourceError, match="epoch-ms"):
        parse_readings(answer([["2026-01-01T00:00:00Z", 1.0, None]]), {})
