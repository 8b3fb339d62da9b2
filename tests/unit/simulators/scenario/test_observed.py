"""Alert events read back from InfluxDB's /query answer, on each node's own timeline."""

from __future__ import annotations

from typing import Any

import pytest

from simulators.scenario.observed import ObservedParseError, Timeline, observed_events

ORIGIN = 1_780_000_000_000


def answer(*series: dict[str, Any]) -> dict[str, Any]:
    return {"results": [{"statement_id": 0, "series": list(series)}]}


def series(node: str, rule: str, *rows: list[Any]) -> dict[str, Any]:
    return {
        "name": "alerts",
        "tags": {"node": node, "rule": rule},
        "columns": ["time", "event", "late", "suspect", "value"],
        "values": [list(r) for r in rows],
    }


def test_events_are_timed_from_their_node_origin_with_lane_and_suspect() -> None:
    result = answer(
        series("a", "odour.h2s", [ORIGIN + 1_860_000, "fired", False, False, 250.0],
               [ORIGIN + 5_460_000, "resolved", False, None, 12]),
        series("bj", "air.pm2_5.24h", [1_362_067_200_000, "fired", True, True, 150.5]),
    )  # fmt: skip
    timelines = {
        "a": Timeline(ORIGIN, ORIGIN + 14_400_000),
        "bj": Timeline(1_362_067_200_000, None),
    }
    events = observed_events(result, timelines)
    assert [(e.node, e.rule, e.event, e.at_s, e.lane, e.suspect, e.value) for e in events] == [
        ("bj", "air.pm2_5.24h", "fired", 0.0, "late", True, 150.5),
        ("a", "odour.h2s", "fired", 1860.0, "live", False, 250.0),
        ("a", "odour.h2s", "resolved", 5460.0, "live", False, 12.0),
    ]


def test_events_after_a_node_end_and_of_other_nodes_are_left_out() -> None:
    result = answer(
        series("a", "liveness.node", [ORIGIN + 14_400_001, "fired", False, False, 1.0]),
        series("stranger", "odour.h2s", [ORIGIN, "fired", False, False, 1.0]),
    )
    assert observed_events(result, {"a": Timeline(ORIGIN, ORIGIN + 14_400_000)}) == []


def test_no_series_is_no_event() -> None:
    assert observed_events({"results": [{"statement_id": 0}]}, {}) == []


@pytest.mark.parametrize(
    "result",
    [
        {},
        {"results": []},
        {"results": [{"error": "database not found: envnet"}]},
        {"results": [{"series": "x"}]},
        answer({"tags": {"node": "a", "rule": "r"}, "values": [[1, "fired"]]}),
        answer(series("a", "r", [None, "fired", False, False, 1.0])),
        answer(series("a", "r", [ORIGIN, "exploded", False, False, 1.0])),
    ],
)
def test_an_answer_that_is_not_influxdb_s_is_an_error(result: dict[str, Any]) -> None:
    with pytest.raises(ObservedParseError):
        observed_events(result, {"a": Timeline(ORIGIN, None)})
