"""The noise KPIs' source: the windows query and /query parsing, no database."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.reports.noise_source import (
    NoisePeriod,
    parse_windows,
    windows_query,
    windows_ref,
)
from aggregator.reports.water_source import ReportSourceError
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


def test_the_query_asks_for_day_and_night_laeq_of_the_nodes() -> None:
    q = windows_query(["n1", "n2"], 10, 20, '"windows"')
    assert "\"quantity\" = 'laeq'" in q
    assert "(\"window\" = 'day' OR \"window\" = 'night')" in q
    assert "(\"node\" = 'n1' OR \"node\" = 'n2')" in q
    assert "time >= 10ms AND time < 20ms" in q and 'FROM "windows"' in q


def test_derived_data_in_its_own_retention_policy_is_asked_for_there() -> None:
    assert windows_ref(InfluxTarget()) == '"windows"'
    split = InfluxTarget(derived_retention_policy="derived")
    assert windows_ref(split) == '"derived"."windows"'


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
    with pytest.raises(ReportSourceError, match="epoch-ms"):
        parse_windows(answer("day", [[None, 50.0, True]]))
