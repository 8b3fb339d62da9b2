"""The InfluxQL of a report, and reading its answers back, without a database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from aggregator.reports.queries import (
    INVENTORY_QUERY,
    AnswerError,
    WindowPoint,
    air_daily_query,
    literal,
    o3_daily_max_query,
    parse_daily_max,
    parse_inventory,
    parse_windows,
)
from aggregator.reports.request import Period
from aggregator.storage.influx import InfluxTarget

PERIOD = Period(date(2013, 3, 1), date(2013, 3, 31))


def test_one_query_fetches_every_day_of_every_node() -> None:
    q = air_daily_query(InfluxTarget(), PERIOD, ["bj-a", "bj-b"])
    assert q.startswith('SELECT "value", "valid" FROM "windows" WHERE ')
    assert "(\"window\" = '24h' OR \"window\" = 'mda8')" in q
    assert "\"node\" = 'bj-a' OR \"node\" = 'bj-b'" in q
    assert "\"quantity\" = 'pm2_5'" in q and "\"quantity\" = 'o3'" in q
    assert f"time >= {PERIOD.start_ms}ms AND time < {PERIOD.end_ms}ms" in q
    assert q.endswith('GROUP BY "node", "sensor", "quantity", "window"')


def test_derived_measurements_are_read_from_their_retention_policy() -> None:
    target = InfluxTarget(derived_retention_policy="derived")
    assert 'FROM "derived"."windows"' in o3_daily_max_query(target, PERIOD, ["n"])
    assert 'FROM "derived"."windows"' in air_daily_query(target, PERIOD, ["n"])


def test_the_o3_daily_maximum_is_bucketed_on_local_midnight() -> None:
    q = o3_daily_max_query(InfluxTarget(), PERIOD, ["n"])
    assert q.startswith('SELECT max("value") FROM "windows" WHERE ')
    assert '"window" = \'1h\' AND "quantity" = \'o3\' AND "valid" = true' in q
    # UTC+8: local midnight is 16:00 UTC.
    assert q.endswith('GROUP BY time(1d, 16h), "node" fill(none)')
    west = Period(date(2013, 3, 1), date(2013, 3, 31), utc_offset_h=-5)
    assert "time(1d, 5h)" in o3_daily_max_query(InfluxTarget(), west, ["n"])


def test_daily_maxima_become_o3_1h_points() -> None:
    answer = {"series": [series({"node": "n"}, ["time", "max"], [[7, 120.5], [8, None]])]}
    assert parse_daily_max(answer) == [WindowPoint("n", "", "o3", "1h", 7, 120.5, True)]


def test_literals_are_escaped() -> None:
    assert literal("it's") == "'it\\'s'"
    assert literal("a\\b") == "'a\\\\b'"


def test_inventory_query_reads_the_newest_point_of_each_series() -> None:
    assert INVENTORY_QUERY == 'SELECT last("active") FROM "nodes" GROUP BY *'


def series(tags: dict[str, str], columns: list[str], values: list[list[Any]]) -> dict[str, Any]:
    return {"tags": tags, "columns": columns, "values": values}


def test_windows_parse_into_typed_points_and_odd_rows_are_left_out() -> None:
    tags = {"node": "n", "sensor": "s", "quantity": "pm2_5", "window": "24h"}
    answer = {
        "series": [
            series(tags, ["time", "value", "valid"],
                   [[1, 80.5, True], [2, None, True], [3, 7, "yes"], [4, 60, False]]),
        ]
    }  # fmt: skip
    assert parse_windows(answer) == [
        WindowPoint("n", "s", "pm2_5", "24h", 1, 80.5, True),
        WindowPoint("n", "s", "pm2_5", "24h", 4, 60.0, False),
    ]
    assert parse_windows({}) == []


def test_inventory_parses_tags_of_group_by_star() -> None:
    answer = {
        "series": [
            series({"node": "a", "group": "Gusu", "air_zone": "1", "site_type": ""},
                   ["time", "last"], [[5, True]]),
            series({"node": "b", "group": "", "air_zone": ""}, ["time", "last"], [[6, False]]),
        ]
    }  # fmt: skip
    a, b = parse_inventory(answer)
    assert (a.node, a.group, a.air_zone, a.active, a.at_ms) == ("a", "Gusu", 1, True, 5)
    assert (b.group, b.air_zone, b.active) == (None, None, False)


def test_an_error_answer_is_an_answer_error() -> None:
    with pytest.raises(AnswerError, match="boom"):
        parse_windows({"error": "boom"})
    with pytest.raises(AnswerError):
        parse_windows({"series": "nope"})
