"""Bloom KPIs: days at or above each WHO chlorophyll-a level, from synthetic readings."""

from __future__ import annotations

import csv as _csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from aggregator.fleet import NodeInfo
from aggregator.reports.bloom import BloomReport, bloom_report
from aggregator.reports.bloom_source import chl_a_query
from aggregator.reports.request import Period
from aggregator.reports.settings import BloomSettings
from aggregator.reports.water_source import ReadingRows, Samples

D1 = date(2026, 7, 1)
CST = timezone(timedelta(hours=8))


def at(day: date, hour: int, minute: int = 10) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST).timestamp() * 1000)


def chl(days: Mapping[int, Sequence[float]], node: str = "t1") -> ReadingRows:
    """One reading per local hour of each day (offset from D1)."""
    pairs = sorted(
        (at(D1 + timedelta(days=d), h), v) for d, vs in days.items() for h, v in enumerate(vs)
    )
    samples = Samples(tuple(t for t, _ in pairs), tuple(v for _, v in pairs))
    return ReadingRows({(node, "chl_a"): samples})


INFO = {"t1": NodeInfo(site="Taihu 1", water_body="lake", group="Taihu", node="t1")}


def run(
    rows: ReadingRows,
    settings: BloomSettings | None = None,
    days: int = 5,
    nodes: Sequence[str] = ("t1",),
) -> BloomReport:
    to = D1 + timedelta(days=days - 1)
    return bloom_report(D1, to, list(nodes), {"t1": "Taihu"}, INFO, rows, settings)


def test_days_at_or_above_each_who_level() -> None:
    rows = chl({0: [5.0] * 24, 1: [10.0] * 24, 2: [49.0] * 24, 3: [50.0] * 24, 4: [80.0] * 24})
    site = run(rows).sites["t1"]
    assert site.valid_days == 5
    assert site.days_above == {"who_low": 4, "who_moderate": 2}  # 10 and 50 count (>=)
    assert [d.date for d in site.days] == ["2026-07-02", "2026-07-03", "2026-07-04", "2026-07-05"]
    assert site.days[-1].levels == ("who_low", "who_moderate")
    assert site.max_ug_l == 80.0


def test_the_daily_statistic_is_configurable() -> None:
    # One hour at 60 µg/L in a day of 5 µg/L hours; one reading of 200 inside another hour.
    rows = chl({0: [5.0] * 23 + [60.0]})
    spike = rows.series[("t1", "chl_a")]
    ts = (*spike.ts_ms, spike.ts_ms[0] + 60_000)
    values = (*spike.values, 200.0)
    order = sorted(zip(ts, values, strict=True))
    with_spike = ReadingRows({("t1", "chl_a"): Samples(*map(tuple, zip(*order, strict=True)))})
    hour = run(with_spike).sites["t1"]  # max_hour: hour 0 is (5 + 200) / 2 = 102.5
    mean = run(with_spike, BloomSettings(daily_statistic="mean")).sites["t1"]
    top = run(with_spike, BloomSettings(daily_statistic="max")).sites["t1"]
    assert hour.max_ug_l == 102.5 and top.max_ug_l == 200.0
    assert mean.max_ug_l == round((102.5 + 22 * 5 + 60) / 24, 3)  # 11.354
    assert mean.days_above == {"who_low": 1, "who_moderate": 0}
    assert hour.days_above == {"who_low": 1, "who_moderate": 1}
    assert run(rows).sites["t1"].days_above == {"who_low": 1, "who_moderate": 1}


def test_a_day_needs_min_hours_with_readings() -> None:
    rows = chl({0: [80.0] * 5, 1: [80.0] * 6})
    assert run(rows).sites["t1"].valid_days == 1
    assert run(rows, BloomSettings(min_hours=5)).sites["t1"].valid_days == 2


def test_days_outside_the_period_are_not_counted() -> None:
    rows = chl({0: [80.0] * 24, 9: [80.0] * 24})
    assert run(rows, days=5).sites["t1"].valid_days == 1


def test_no_data_is_zero_valid_days_and_a_statement() -> None:
    r = run(ReadingRows({}), nodes=("t1", "t9"))
    for site in r.sites.values():
        assert site.valid_days == 0 and site.max_ug_l is None and "zero valid days" in site.note
    too_few = run(chl({0: [80.0] * 2})).sites["t1"]
    assert too_few.valid_days == 0 and "hours" in too_few.note
    assert r.groups["Taihu"].valid_days == 0


@given(st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=30))
def test_day_counts_match_a_plain_count(daily: list[float]) -> None:
    rows = chl({d: [v] * 24 for d, v in enumerate(daily)})
    site = run(rows, days=len(daily)).sites["t1"]
    assert site.valid_days == len(daily)
    assert site.days_above["who_low"] == sum(v >= 10 for v in daily)
    assert site.days_above["who_moderate"] == sum(v >= 50 for v in daily)
    assert len(site.days) == site.days_above["who_low"]


def test_groups_sum_their_sites() -> None:
    r = run(chl({0: [20.0] * 24, 1: [60.0] * 24}))
    g = r.groups["Taihu"]
    assert (g.sites, g.valid_days, g.days_above) == (("t1",), 2, {"who_low": 2, "who_moderate": 1})


def test_the_json_csv_text_and_html_forms() -> None:
    r = run(chl({0: [20.0] * 24}))
    doc = json.loads(json.dumps(r.to_json()))["bloom"]
    assert doc["levels"] == {"who_low": 10.0, "who_moderate": 50.0}
    assert doc["sites"]["t1"]["days_above"]["who_low"] == 1 and doc["statistic"] == "max_hour"
    assert "§6.1" in doc["validity"] and "UNVERIFIED" in doc["validity"]
    rows = r.csv_rows()
    assert rows[0][:2] == ["row", "key"] and [row[0] for row in rows[1:]] == ["site", "group"]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert list(_csv.reader(io.StringIO(r.to_csv()))) == rows
    assert "Taihu" in r.text()
    page = r.html_section()
    assert (
        page.startswith("<table")
        and "<h2" not in page
        and "#ffe08a" in page
        and "<script" not in page
    )


def test_the_source_asks_for_chl_a_only() -> None:
    assert "(\"quantity\" = 'chl_a')" in chl_a_query(
        ["t1"], Period(date(2026, 6, 1), date(2026, 6, 1))
    )
