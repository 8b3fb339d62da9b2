"""Water KPIs: day bucketing, the single-factor class per sample day, the site's period class,
the docs/standards.md §5.2 group rating, and the report's forms. Synthetic readings only."""

from __future__ import annotations

import csv as _csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.fleet import NodeInfo
from aggregator.reports.settings import WaterSettings
from aggregator.reports.water import (
    CLASS_COLOURS,
    WaterReport,
    WaterSite,
    daily_values,
    evaluate_group,
    item_days,
    rating_from_shares,
    water_report,
)
from aggregator.reports.water_source import ReadingRows, Samples

D1 = date(2026, 6, 1)
D2 = date(2026, 6, 2)
CST = timezone(timedelta(hours=8))
HOUR = 3_600_000


def at(day: date, hour: int, minute: int = 10) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST).timestamp() * 1000)


def readings(days: Mapping[date, Sequence[float]]) -> Samples:
    """One reading per local hour from 00:10, the day's values in order."""
    pairs = sorted((at(d, h), v) for d, vs in days.items() for h, v in enumerate(vs))
    return Samples(tuple(t for t, _ in pairs), tuple(v for _, v in pairs))


def rows(**by_node_item: Mapping[date, Sequence[float]]) -> ReadingRows:
    """rows(w1__nh3_n={D1: [...]}) -> ReadingRows."""
    series = {}
    for key, days in by_node_item.items():
        node, item = key.split("__")
        series[(node, item)] = readings(days)
    return ReadingRows(series)


RIVER = NodeInfo(site="River One", water_body="river", water_target=3, group="G", node="w1")


def info(node: str, body: str = "river", target: int | None = 3, group: str = "G") -> NodeInfo:
    return NodeInfo(site=node.upper(), water_body=body, water_target=target, group=group, node=node)  # type: ignore[arg-type]


def report(
    data: ReadingRows,
    infos: Mapping[str, NodeInfo],
    settings: WaterSettings | None = None,
    date_to: date = D2,
) -> WaterReport:
    return water_report(
        D1, date_to, list(infos), {n: i.group for n, i in infos.items()}, infos, data, settings
    )


# -- day bucketing ------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.integers(0, 3 * 24 * 60 - 1), st.floats(0, 100, allow_nan=False)),
        min_size=1,
        max_size=200,
    )
)
def test_daily_values_match_a_plain_local_day_and_hour_computation(
    samples: list[tuple[int, float]],
) -> None:
    start = at(D1, 0, 0)
    ts = np.array([start + m * 60_000 for m, _ in samples], dtype=np.int64)
    values = np.array([v for _, v in samples], dtype=np.float64)
    got = daily_values(ts, values, 8)
    hours: dict[datetime, list[float]] = {}
    for t, v in zip(ts, values, strict=True):
        local = datetime.fromtimestamp(int(t) / 1000, UTC).astimezone(CST)
        hours.setdefault(local.replace(minute=0, second=0, microsecond=0), []).append(float(v))
    by_day: dict[date, list[float]] = {}
    tops: dict[date, float] = {}
    for h, vs in hours.items():
        by_day.setdefault(h.date(), []).append(sum(vs) / len(vs))
        tops[h.date()] = max(tops.get(h.date(), 0.0), *vs)
    assert got.dates() == sorted(by_day)
    for i, day in enumerate(got.dates()):
        means = by_day[day]
        assert got.hours[i] == len(means)
        assert got.mean[i] == pytest.approx(sum(means) / len(means))
        assert got.max_hour[i] == pytest.approx(max(means))
        assert got.min_hour[i] == pytest.approx(min(means))
        assert got.max_reading[i] == pytest.approx(tops[day])


def test_a_reading_at_local_midnight_belongs_to_the_new_local_day() -> None:
    ts = np.array([at(D2, 0, 0) - 1, at(D2, 0, 0)], dtype=np.int64)
    got = daily_values(ts, np.array([1.0, 2.0]), 8)
    assert got.dates() == [D1, D2]


def test_an_item_day_needs_min_hours_with_data() -> None:
    s = WaterSettings(min_hours=6)
    ts, v = readings({D1: [0.5] * 5, D2: [0.5] * 6}).arrays()
    assert item_days("nh3_n", ts, v, s) == {D2: 0.5}
    assert item_days("nh3_n", ts[:0], v[:0], s) == {}


def test_several_readings_in_one_hour_are_one_hour_with_data() -> None:
    ts = np.array([at(D1, 3, m) for m in range(0, 60, 5)], dtype=np.int64)
    assert item_days("nh3_n", ts, np.ones(len(ts)), WaterSettings(min_hours=2)) == {}


# -- the day's class ------------------------------------------------------------------------


def test_the_worst_item_decides_the_day_and_exceedances_carry_their_multiple() -> None:
    data = rows(
        w1__nh3_n={D1: [1.2] * 24},  # IV
        w1__do={D1: [6.5] * 24},  # II
        w1__codmn={D1: [3.0] * 24},  # II
    )
    r = report(data, {"w1": RIVER})
    site = r.sites["w1"]
    (day,) = site.days
    assert (day.date, day.water_class, day.class_name) == ("2026-06-01", 4, "IV")
    assert day.deciding == ("nh3_n",)
    assert day.exceeding == {"nh3_n": pytest.approx(0.2)}  # (1.2 - 1.0) / 1.0, target III
    assert (site.valid_days, site.days_iii_or_better, site.days_worse_than_v) == (1, 0, 0)
    assert site.meets_target is False


def test_the_daily_mean_is_the_default_and_worst_is_configurable() -> None:
    values = [0.4] * 23 + [2.5]  # mean 0.4875 (II); worst hour 2.5 (劣V)
    data = rows(w1__nh3_n={D1: values})
    mean_day = report(data, {"w1": RIVER}).sites["w1"].days[0]
    worst = WaterSettings(daily_statistic="worst")
    worst_day = report(data, {"w1": RIVER}, worst).sites["w1"].days[0]
    assert (mean_day.water_class, worst_day.water_class) == (2, 6)


def test_worst_is_the_lowest_do_and_the_ph_farthest_outside_6_to_9() -> None:
    worst = WaterSettings(daily_statistic="worst")
    do = rows(w1__do={D1: [8.0] * 23 + [2.5]})  # lowest hour 2.5 -> V
    assert report(do, {"w1": RIVER}, worst).sites["w1"].days[0].water_class == 5
    ph = rows(w1__ph={D1: [7.0] * 22 + [5.9, 9.5]})  # 9.5 is farther out than 5.9
    day = report(ph, {"w1": RIVER}, worst).sites["w1"].days[0]
    assert (day.water_class, day.values["ph"]) == (6, 9.5)
    inside = rows(w1__ph={D1: [7.0] * 12 + [8.0] * 12})
    day = report(inside, {"w1": RIVER}, worst).sites["w1"].days[0]
    assert (day.water_class, day.values["ph"]) == (1, 7.5)


def test_required_items_drop_a_day_without_them_and_missing_items_are_listed() -> None:
    data = rows(w1__nh3_n={D1: [0.5] * 24, D2: [0.5] * 24}, w1__do={D2: [7.0] * 24})
    plain = report(data, {"w1": RIVER}).sites["w1"]
    assert [d.missing for d in plain.days] == [("do",), ()]
    strict = WaterSettings(required_items=("do", "nh3_n"))
    assert [d.date for d in report(data, {"w1": RIVER}, strict).sites["w1"].days] == ["2026-06-02"]


def test_tn_counts_for_a_lake_and_not_for_a_river() -> None:
    data = rows(w1__tn={D1: [1.8] * 24}, w1__nh3_n={D1: [0.1] * 24})
    lake = report(data, {"w1": info("w1", "lake")}).sites["w1"]
    river = report(data, {"w1": RIVER}).sites["w1"]
    assert (lake.days[0].water_class, lake.days[0].deciding) == (5, ("tn",))
    assert river.days[0].water_class == 1


def test_a_river_site_with_only_tn_has_no_sample_day() -> None:
    site = report(rows(w1__tn={D1: [1.0] * 24}), {"w1": RIVER}).sites["w1"]
    assert site.valid_days == 0 and site.water_class is None and "no sample day" in site.note


def test_days_outside_the_period_are_not_counted() -> None:
    data = rows(w1__nh3_n={D1: [0.5] * 24, D2: [0.5] * 24})
    assert report(data, {"w1": RIVER}, date_to=D1).sites["w1"].valid_days == 1


# -- the period class -----------------------------------------------------------------------


def test_the_period_class_is_the_class_of_the_period_means() -> None:
    data = rows(w1__nh3_n={D1: [0.9] * 24, D2: [1.3] * 24})  # III, IV; mean 1.1 -> IV
    site = report(data, {"w1": RIVER}).sites["w1"]
    assert [d.water_class for d in site.days] == [3, 4]
    assert (site.water_class, site.quality) == (4, "轻度污染")
    assert site.mean["nh3_n"] == pytest.approx(1.1)
    assert (site.days_iii_or_better, site.days_worse_than_v) == (1, 0)


def test_a_site_without_a_target_is_held_to_class_iii() -> None:
    data = rows(w1__nh3_n={D1: [0.9] * 24})
    site = report(data, {"w1": info("w1", target=None)}).sites["w1"]
    assert (site.target, site.meets_target) == (3, True)


# -- failure modes --------------------------------------------------------------------------


def test_no_data_gives_zero_valid_days_and_a_statement_not_a_division_by_zero() -> None:
    r = report(ReadingRows({}), {"w1": RIVER})
    site = r.sites["w1"]
    assert (site.valid_days, site.water_class, site.meets_target) == (0, None, None)
    assert site.note
    assert r.all.share_iii_or_better is None and r.all.rating is None
    assert "no site" in r.all.rating_method
    assert "0.000" not in "".join(",".join(row) for row in r.csv_rows())


def test_sites_without_a_water_body_or_inventory_entry_say_why() -> None:
    data = rows(w1__nh3_n={D1: [0.5] * 24}, w9__nh3_n={D1: [0.5] * 24})
    infos = {"w1": NodeInfo(site="No body", node="w1")}
    r = water_report(D1, D2, ["w1", "w9"], {}, infos, data)
    assert "water_body" in r.sites["w1"].note
    assert "not in the fleet inventory" in r.sites["w9"].note
    assert r.all.sites == 0


# -- §5.2 group rating -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "i_iii", "worse_v", "rating"),
    [
        (10, 9, 1, "优"),  # 90 % I-III, whatever the 劣V share
        (10, 8, 0, "良好"),
        (4, 3, 0, "良好"),  # exactly 75 %
        (10, 7, 1, "轻度污染"),  # < 75 %, 劣V 10 %
        (10, 7, 2, "中度污染"),  # 劣V exactly 20 %
        (5, 3, 1, "中度污染"),
        (10, 5, 4, "重度污染"),  # 劣V exactly 40 %
        (10, 0, 10, "重度污染"),
    ],
)
def test_the_share_rating_table(n: int, i_iii: int, worse_v: int, rating: str) -> None:
    assert rating_from_shares(n, i_iii, worse_v).name_zh == rating


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_every_share_has_exactly_one_rating(n_good: tuple[int, int]) -> None:
    n, good = n_good
    for bad in range(n - good + 1):
        assert rating_from_shares(n, good, bad).name_zh in {
            "优", "良好", "轻度污染", "中度污染", "重度污染",
        }  # fmt: skip


def _site(water_class: int | None, body: str = "river", nh3_n: float = 0.5) -> WaterSite:
    return WaterSite(
        site="s", group="G", body=body, target=3, valid_days=1, days_iii_or_better=0,
        days_worse_than_v=0, water_class=water_class, class_name=None, quality=None,
        meets_target=None, deciding=(), exceeding={}, mean={"nh3_n": nh3_n}, days=(),
    )  # fmt: skip


def test_five_or_more_sections_are_rated_by_shares() -> None:
    g = evaluate_group([_site(2), _site(3), _site(3), _site(4), _site(6), _site(None)])
    assert (g.sites, g.sites_iii_or_better, g.sites_worse_than_v) == (5, 3, 1)
    assert (g.share_iii_or_better, g.share_worse_than_v) == (0.6, 0.2)
    assert g.rating == "中度污染" and ">= 5" in g.rating_method


def test_fewer_than_five_sections_are_rated_by_their_mean_concentrations() -> None:
    g = evaluate_group([_site(3, nh3_n=0.8), _site(4, nh3_n=1.4)])  # mean 1.1 -> IV
    assert (g.rating, g.rating_en) == ("轻度污染", "lightly polluted")
    assert "< 5" in g.rating_method and "IV" in g.rating_method
    assert g.share_iii_or_better == 0.5


def test_fewer_than_five_sections_of_rivers_and_lakes_together_are_not_rated() -> None:
    g = evaluate_group([_site(3), _site(3, body="lake")])
    assert g.rating is None and "not rated" in g.rating_method and g.sites == 2


@given(st.lists(st.one_of(st.none(), st.integers(1, 6)), max_size=30))
def test_group_shares_are_ratios_of_the_rated_sites(classes: list[int | None]) -> None:
    g = evaluate_group([_site(c) for c in classes])
    rated = [c for c in classes if c is not None]
    assert g.sites == len(rated)
    if not rated:
        assert g.share_iii_or_better is None and g.share_worse_than_v is None
        return
    assert g.share_iii_or_better == sum(c <= 3 for c in rated) / len(rated)
    assert g.share_worse_than_v == sum(c == 6 for c in rated) / len(rated)


def test_groups_come_from_the_groups_mapping_and_all_covers_every_site() -> None:
    data = rows(w1__nh3_n={D1: [0.5] * 24}, w2__nh3_n={D1: [2.5] * 24})
    infos = {"w1": info("w1", group="A"), "w2": info("w2", group="B")}
    r = water_report(D1, D1, ["w1", "w2"], {"w1": "A", "w2": None}, infos, data)
    assert list(r.groups) == ["A"] and r.groups["A"].sites == 1
    assert (r.all.sites, r.all.share_iii_or_better, r.all.share_worse_than_v) == (2, 0.5, 0.5)


# -- forms ----------------------------------------------------------------------------------


def test_the_json_csv_text_and_html_forms() -> None:
    data = rows(w1__nh3_n={D1: [0.5] * 24, D2: [2.5] * 24})
    r = report(data, {"w1": RIVER})
    doc = json.loads(json.dumps(r.to_json()))
    water = doc["water"]
    assert (water["from"], water["to"]) == ("2026-06-01", "2026-06-02")
    assert set(water) >= {"sites", "groups", "all", "validity"}
    site = water["sites"]["w1"]
    assert site["class"] == 4 and site["days"][0]["class"] == 2  # mean 1.5 -> IV
    assert "§5.1" in water["validity"] and "UNVERIFIED" in water["validity"]
    csv = r.csv_rows()
    assert csv[0][:3] == ["row", "node", "site"]
    assert all(len(row) == len(csv[0]) for row in csv)
    assert [row[0] for row in csv[1:]] == ["day", "day", "site", "group", "all"]
    assert list(_csv.reader(io.StringIO(r.to_csv()))) == csv
    text = r.text()
    assert "06-01:II 06-02:劣V" in text and "Validity:" in text
    page = r.html_section()
    assert page.startswith("<div") and page.endswith("</p>") and "<h2" not in page
    assert CLASS_COLOURS[2] in page and CLASS_COLOURS[6] in page
    assert "<script" not in page and "<link" not in page


def test_html_escapes_names() -> None:
    infos = {"w1": NodeInfo(site="<b>x</b>", water_body="river", node="w1")}
    r = water_report(D1, D1, ["w1"], {"w1": "<g>"}, infos, rows(w1__nh3_n={D1: [0.5] * 24}))
    page = r.html_section()
    assert "<b>" not in page and "&lt;b&gt;" in page and "<g>" not in page


def test_readings_on_too_few_hours_are_zero_valid_days_with_a_statement() -> None:
    site = report(rows(w1__nh3_n={D1: [0.5] * 3}), {"w1": RIVER}).sites["w1"]
    assert (site.valid_days, site.water_class) == (0, None)
    assert "zero valid days" in site.note
