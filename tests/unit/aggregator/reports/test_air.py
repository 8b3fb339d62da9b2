"""Air period figures from synthetic stored windows: which days count, AQI categories, limit
exceedances by the edition of each day, means, the O3 evaluation value, groups."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.reports.air import AirDay, Pollutant, compute, judge_day, node_days, percentile
from aggregator.reports.queries import WindowPoint
from aggregator.reports.request import InventoryNode, Period
from aggregator.reports.settings import ReportSettings

MARCH = Period(date(2013, 3, 1), date(2013, 3, 31))
S = ReportSettings()
CLEAN: dict[Pollutant, float] = {
    "so2": 10.0,
    "no2": 30.0,
    "co": 0.8,
    "o3": 60.0,
    "pm10": 40.0,
    "pm2_5": 20.0,
}


def day_points(
    node: str, period: Period, day: date, values: Mapping[Pollutant, float], sensor: str = "s1"
) -> list[WindowPoint]:
    """A day's valid daily windows, and for O3 also one 1-h mean (HJ 633-2012's daily AQI
    indexes the daily maximum 1-h O3: without it a 2012 day is incomplete)."""
    start = period.day_start_ms(day)
    points = [
        WindowPoint(node, sensor, q, "mda8" if q == "o3" else "24h", start, v, True)
        for q, v in values.items()
    ]
    if "o3" in values:
        points.append(WindowPoint(node, sensor, "o3", "1h", start + 3_600_000, values["o3"], True))
    return points


def inv(name: str, zone: int | None = 2, group: str | None = "G") -> InventoryNode:
    return InventoryNode(name, True, 0, group, zone)


def test_a_month_with_known_days() -> None:
    points: list[WindowPoint] = []
    for n, day in enumerate(MARCH.days):
        values = dict(CLEAN)
        if n < 10:
            values["pm2_5"] = 100.0  # IAQI 132 (2012): lightly polluted, over the 75 limit
        elif n < 13:
            values["pm2_5"] = 200.0  # IAQI 250: heavily polluted
        points += day_points("a", MARCH, day, values)
    f = compute(MARCH, [inv("a")], points, S).nodes["a"]
    assert (f.valid_days, f.good_days, f.heavy_days) == (31, 18, 3)
    assert f.good_day_ratio == round(18 / 31, 4)
    assert f.categories == {"I": 18, "II": 0, "III": 10, "IV": 0, "V": 3, "VI": 0}
    assert f.exceedance_days == {"so2": 0, "no2": 0, "co": 0, "o3": 0, "pm10": 0, "pm2_5": 13}
    assert f.mean["pm2_5"] == round((10 * 100 + 3 * 200 + 18 * 20) / 31, 1)
    assert "o3" not in f.mean
    assert f.o3_percentile == 60.0
    assert f.editions == {"2012": 31} and f.edition == "2012"
    assert f.zone == 2 and f.zone_source == "inventory"
    assert any("GB 3095-2012 Table 1" in c for c in f.clauses)


def test_a_day_with_a_pollutant_missing_counts_only_when_its_aqi_is_above_100() -> None:
    partial_good: dict[Pollutant, float] = {k: v for k, v in CLEAN.items() if k != "co"}
    partial_bad = {**partial_good, "pm2_5": 120.0}
    d1, d2 = MARCH.days[:2]
    points = day_points("a", MARCH, d1, partial_good) + day_points("a", MARCH, d2, partial_bad)
    f = compute(MARCH, [inv("a")], points, S).nodes["a"]
    # HJ 633-2026 §5.3: incomplete and <= 100 is not publishable; > 100 is.
    assert (f.valid_days, f.good_days) == (1, 0)
    assert f.exceedance_days["pm2_5"] == 1
    # Exceedances and means use every valid daily value, publishable AQI or not.
    assert f.assessed_days["pm2_5"] == 2


def test_each_day_is_judged_by_the_edition_in_force_on_it() -> None:
    period = Period(date(2026, 2, 28), date(2026, 3, 1))
    values = {**CLEAN, "pm2_5": 70.0}  # 2012 limit 75 (not exceeded), 2026 transition 60
    points = [p for d in period.days for p in day_points("a", period, d, values)]
    f = compute(period, [inv("a")], points, S).nodes["a"]
    assert f.editions == {"2012": 1, "2026": 1}
    assert f.exceedance_days["pm2_5"] == 1
    assert [d.exceeded for d in f.days] == [(), ("pm2_5",)]
    forced = compute(period, [inv("a")], points, ReportSettings(air_edition="2012"))
    assert forced.nodes["a"].exceedance_days["pm2_5"] == 0


def test_the_zone_class_picks_the_grade() -> None:
    values = {**CLEAN, "pm2_5": 50.0}  # Grade I 35, Grade II 75
    points = day_points("one", MARCH, MARCH.first, values) + day_points(
        "two", MARCH, MARCH.first, values
    )
    report = compute(MARCH, [inv("one", zone=1), inv("two", zone=None)], points, S)
    assert report.nodes["one"].exceedance_days["pm2_5"] == 1
    assert report.nodes["two"].exceedance_days["pm2_5"] == 0
    assert report.nodes["two"].zone_source == "default"


def test_stored_windows_become_days() -> None:
    d = MARCH.first
    start = MARCH.day_start_ms(d)
    points = [
        *day_points("a", MARCH, d, {"pm2_5": 40.0}),
        *day_points("a", MARCH, d, {"pm2_5": 60.0}, sensor="s2"),  # averaged: 50
        WindowPoint("a", "s1", "no2", "24h", start, 999.0, False),  # invalid: left out
        WindowPoint("a", "s1", "pm10", "24h", MARCH.end_ms, 50.0, True),  # after the period
        WindowPoint("a", "s1", "o3", "1h", start + 7_200_000, 90.0, True),
        WindowPoint("a", "s1", "o3", "1h", start + 10_800_000, 120.0, True),
        WindowPoint("a", "s1", "o3", "1h", start + 14_400_000, 500.0, False),
        WindowPoint("a", "s1", "o3", "8h", start, 300.0, True),  # not a daily value
    ]
    days = node_days(points, MARCH)
    assert days == {"a": {d: AirDay(d, {"pm2_5": 50.0}, 120.0)}}


def test_2012_days_index_the_o3_daily_maximum_1h_mean() -> None:
    d = AirDay(MARCH.first, CLEAN, o3_1h_max=250.0)  # O3 1-h IAQI 2012: 250 -> 125
    assert judge_day(d, 2, MARCH, S).aqi == 125
    later = Period(date(2026, 3, 1), date(2026, 3, 1))
    # HJ 633-2026 dropped the indicator: the day's AQI is the same without it.
    with_max = judge_day(AirDay(later.first, CLEAN, 250.0), 2, later, S)
    without = judge_day(AirDay(later.first, CLEAN), 2, later, S).aqi
    assert with_max.aqi == without and without is not None and without < 50


def test_groups_as_one_site_or_pooled() -> None:
    d1, d2 = MARCH.days[:2]
    points = (
        day_points("a", MARCH, d1, {**CLEAN, "pm2_5": 100.0})
        + day_points("b", MARCH, d1, {**CLEAN, "pm2_5": 20.0})
        + day_points("a", MARCH, d2, CLEAN)
    )
    nodes = [inv("a"), inv("b")]
    mean = compute(MARCH, nodes, points, S, group="G").groups["G"]
    # Day 1: PM2.5 (100 + 20) / 2 = 60 -> good; day 2: node a alone -> good.
    assert (mean.valid_days, mean.good_days, mean.exceedance_days["pm2_5"]) == (2, 2, 0)
    assert mean.members == ("a", "b") and mean.days_in_period == 31
    pooled = compute(MARCH, nodes, points, ReportSettings(group_days="pooled"), group="G")
    g = pooled.groups["G"]
    assert (g.valid_days, g.good_days, g.exceedance_days["pm2_5"]) == (3, 2, 1)
    assert g.days_in_period == 62 and g.days == ()


def hj663_percentile(values: list[float], p: float) -> float:
    """The percentile as HJ 663-2013 is recalled to define it (UNVERIFIED): ascending order,
    k = 1 + (n - 1) p / 100, linear between ranks floor(k) and floor(k) + 1."""
    ordered = sorted(values)
    k = 1 + (len(ordered) - 1) * p / 100
    s = int(k)
    if s >= len(ordered):
        return ordered[-1]
    return ordered[s - 1] + (ordered[s] - ordered[s - 1]) * (k - s)


values_strategy = st.lists(st.floats(min_value=0, max_value=800, allow_nan=False), min_size=1)


@given(values=values_strategy, p=st.floats(min_value=1, max_value=100))
def test_linear_percentile_is_the_rank_interpolation(values: list[float], p: float) -> None:
    assert percentile(values, p, "linear") == pytest.approx(hj663_percentile(values, p), abs=1e-6)


@given(values=values_strategy, p=st.floats(min_value=1, max_value=100))
def test_nearest_rank_percentile(values: list[float], p: float) -> None:
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * p / 100 - 1e-9))
    got = percentile(values, p, "nearest-rank")
    assert got in ordered
    assert got == pytest.approx(ordered[rank - 1]) or got == pytest.approx(ordered[rank - 2])


def test_no_mda8_no_o3_value() -> None:
    assert percentile([], 90, "linear") is None


@settings(max_examples=60, deadline=None)
@given(
    pm=st.lists(
        st.one_of(st.none(), st.floats(min_value=0, max_value=600, allow_nan=False)),
        min_size=1,
        max_size=31,
    )
)
def test_counts_agree_with_a_day_by_day_count(pm: list[float | None]) -> None:
    points: list[WindowPoint] = []
    days = MARCH.days[: len(pm)]
    for day, value in zip(days, pm, strict=True):
        values = dict(CLEAN) if value is None else {**CLEAN, "pm2_5": value}
        if value is None:
            del values["pm2_5"]
        points += day_points("a", MARCH, day, values)
    f = compute(MARCH, [inv("a")], points, ReportSettings(air_edition="2026")).nodes["a"]
    assert sum(f.categories.values()) == f.valid_days
    assert f.categories["I"] + f.categories["II"] == f.good_days
    assert f.categories["V"] + f.categories["VI"] == f.heavy_days
    assert f.exceedance_days["pm2_5"] == sum(1 for v in pm if v is not None and v > 60)
    present = [v for v in pm if v is not None]
    assert f.assessed_days["pm2_5"] == len(present)
    if present:
        assert f.mean["pm2_5"] == pytest.approx(sum(present) / len(present), abs=0.051)
    # Every day has the other five pollutants: an incomplete day is valid only above 100.
    assert f.valid_days == sum(1 for v in pm if v is not None) + sum(
        1 for d in f.days if "pm2_5" not in d.values and d.publishable
    )
    assert all(d.day == MARCH.first + timedelta(days=i) for i, d in enumerate(f.days))
