"""The readings source of the water and bloom KPIs: queries and /query parsing, no database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from aggregator.reports.queries import AnswerError
from aggregator.reports.request import Period
from aggregator.reports.water_source import collect, parse_readings, readings_query

T = 1_780_000_000_000


def answer(rows: list[list[Any]], node: str = "w1", quantity: str = "nh3_n") -> dict[str, Any]:
    series = {
        "name": "readings",
        "tags": {"node": node, "quantity": quantity},
        "columns": ["time", "value", "flags"],
        "values": rows,
    }
    return {"statement_id": 0, "series": [series]}


def test_strings_are_quoted_so_a_node_id_cannot_break_out() -> None:
    june = Period(date(2026, 6, 1), date(2026, 6, 2))
    q = readings_query(["do", "ph"], ["w1", "x' OR '1'='1"], june)
    assert "(\"quantity\" = 'do' OR \"quantity\" = 'ph')" in q
    assert "'x\\' OR \\'1\\'=\\'1'" in q
    assert "\"stat\" = 'mean'" in q and f"time >= {june.start_ms}ms AND time < {june.end_ms}ms" in q
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
    with pytest.raises(AnswerError, match="epoch-ms"):
        parse_readings(answer([["2026-01-01T00:00:00Z", 1.0, None]]), {})
