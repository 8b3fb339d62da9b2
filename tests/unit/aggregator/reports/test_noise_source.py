"""The noise KPIs' source: the windows query and /query parsing, no database."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from aggregator.reports import noise_source
from aggregator.reports.noise_source import NoisePeriod, parse_windows
from aggregator.reports.queries import AnswerError, windows_query
from aggregator.reports.request import Period
from aggregator.storage.influx import InfluxTarget

T = 1_780_000_000_000


def answer(window: str, rows: list[list[Any]], sensor: str = "mic") -> dict[str, Any]:
    series = {
        "name": "windows",
        "tags": {"node": "n1", "sensor": sensor, "window": window},
        "columns": ["time", "value", "valid"],
        "values": rows,
    }
    return {"statement_id": 0, "series": [series]}


def test_the_query_asks_for_day_and_night_laeq_of_the_nodes_in_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    async def ask(target: InfluxTarget, queries: list[str]) -> list[dict[str, Any]]:
        asked.extend(queries)
        return [answer("day", [[T, 50.0, True]]) for _ in queries]

    monkeypatch.setattr(noise_source, "ask", ask)
    year = Period(date(2026, 1, 1), date(2026, 12, 31))
    split = InfluxTarget(derived_retention_policy="derived")
    got = asyncio.run(noise_source.fetch_noise_periods(split, ["n1", "n2"], year))
    assert len(asked) == 12 and len(got) == 12  # 365 days in chunks of 31
    q = asked[0]
    assert "(\"quantity\" = 'laeq')" in q
    assert "(\"window\" = 'day' OR \"window\" = 'night')" in q
    assert "(\"node\" = 'n1' OR \"node\" = 'n2')" in q
    assert 'FROM "derived"."windows"' in q
    assert q == windows_query(split, year.chunks(31)[0], ["n1", "n2"], ("day", "night"), ("laeq",))


def test_rows_become_periods_and_bad_levels_are_invalid_periods() -> None:
    rows: list[list[Any]] = [
        [T, 54.0, True],
        [T + 1, 56.0, False],
        [T + 2, None, True],
        [T + 3, float("nan"), True],
        [T + 4, -3.0, True],
        [T + 5, 50, None],
    ]
    got = parse_windows(answer("night", rows))
    assert got[0] == NoisePeriod("n1", "mic", "night", T, 54.0, True)
    assert [p.valid for p in got] == [True, False, False, False, False, False]
    assert [p.value for p in got[2:5]] == [None, None, None]


def test_other_windows_are_ignored_and_empty_answers_are_no_periods() -> None:
    assert parse_windows(answer("1h", [[T, 50.0, True]])) == []
    assert parse_windows({"statement_id": 0}) == []


def test_a_row_without_a_time_is_a_clear_error() -> None:
    with pytest.raises(AnswerError, match="epoch-ms"):
        parse_windows(answer("day", [[None, 50.0, True]]))
