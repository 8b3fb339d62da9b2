"""Noise KPIs: day and night compliance per zone class, node and group, from synthetic
stored periods."""

from __future__ import annotations

import csv as _csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from aggregator.fleet import NodeInfo
from aggregator.reports.noise import NoiseReport, local_date, noise_report
from aggregator.reports.noise_source import NoisePeriod, Period

D1 = date(2026, 6, 1)
CST = timezone(timedelta(hours=8))


def start(day: date, period: Period) -> int:
    hour = 6 if period == "day" else 22
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=CST).timestamp() * 1000)


def p(
    node: str, day: int, period: Period, value: float | None, valid: bool = True, sensor: str = "m"
) -> NoisePeriod:
    return NoisePeriod(node, sensor, period, start(D1 + timedelta(days=day), period), value, valid)


def zone_info(node: str, zone: str | None, group: str | None = "G") -> NodeInfo:
    return NodeInfo(site=node.upper(), noise_zone=zone, group=group, node=node)  # type: ignore[arg-type]


def run(
    periods: Sequence[NoisePeriod],
    infos: dict[str, NodeInfo],
    nodes: Sequence[str] | None = None,
    days: int = 3,
) -> NoiseReport:
    selected = list(nodes if nodes is not None else infos)
    groups = {n: i.group for n, i in infos.items()}
    return noise_report(D1, D1 + timedelta(days=days - 1), selected, groups, infos, periods)


def test_compliance_is_at_or_below_the_zone_limit() -> None:
    # Zone 1: day 55, night 45 (GB 3096-2008 Table 1). 55.0 equals the limit: it complies.
    periods = [
        p("a", 0, "day", 55.0), p("a", 1, "day", 55.1), p("a", 2, "day", 50.0),
        p("a", 0, "night", 44.0), p("a", 1, "night", 46.0),
    ]  # fmt: skip
    r = run(periods, {"a": zone_info("a", "1")})
    a = r.nodes["a"]
    assert (a.limit_day, a.limit_night) == (55, 45)
    assert (a.day.valid, a.day.compliant, a.day.rate) == (3, 2, 2 / 3)
    assert (a.night.valid, a.night.compliant, a.night.rate) == (2, 1, 0.5)
    assert a.day_exceeded == ("2026-06-02",) and a.night_exceeded == ("2026-06-02",)


def test_invalid_periods_are_counted_apart_and_never_judged() -> None:
    periods = [p("a", 0, "day", 80.0, valid=False), p("a", 1, "day", 50.0), p("a", 2, "day", None)]
    a = run(periods, {"a": zone_info("a", "2")}).nodes["a"]
    assert (a.day.valid, a.day.compliant, a.day.invalid, a.day.rate) == (1, 1, 2, 1.0)


def test_zone_classes_pool_their_nodes_and_4a_and_4b_differ_at_night() -> None:
    periods = [p("r", 0, "night", 57.0), p("t", 0, "night", 57.0), p("u", 0, "night", 54.0)]
    infos = {"r": zone_info("r", "4a"), "t": zone_info("t", "4b"), "u": zone_info("u", "4a")}
    r = run(periods, infos)
    assert list(r.zones) == ["4a", "4b"]
    assert (r.zones["4a"].night.valid, r.zones["4a"].night.compliant) == (2, 1)  # 55
    assert r.zones["4b"].night.rate == 1.0  # 60
    assert r.zones["4a"].nodes == ("r", "u")
    assert (r.groups["G"].night.valid, r.groups["G"].night.compliant) == (3, 2)


def test_several_sensors_count_each_period_once_by_the_highest_valid_level() -> None:
    periods = [
        p("a", 0, "day", 50.0, sensor="m1"),
        p("a", 0, "day", 58.0, sensor="m2"),
        p("a", 1, "day", 70.0, valid=False, sensor="m1"),
        p("a", 1, "day", 52.0, sensor="m2"),
    ]
    a = run(periods, {"a": zone_info("a", "1")}).nodes["a"]
    assert (a.day.valid, a.day.compliant, a.day.invalid) == (2, 1, 0)


def test_a_night_belongs_to_the_date_it_starts_on() -> None:
    last_night = p("a", 2, "night", 40.0)  # starts 2026-06-03 22:00, ends on the 4th
    outside = p("a", 3, "night", 40.0)
    a = run([last_night, outside], {"a": zone_info("a", "1")}).nodes["a"]
    assert a.night.valid == 1
    assert local_date(start(D1, "night"), 8) == D1


def test_no_data_is_zero_valid_periods_a_statement_and_no_rate() -> None:
    r = run([], {"a": zone_info("a", "1")})
    a = r.nodes["a"]
    assert (a.day.valid, a.day.rate, a.night.rate) == (0, None, None)
    assert "zero valid periods" in a.note
    assert r.zones["1"].day.rate is None
    assert "-" in r.text() and r.csv_rows()[1][8] == ""


def test_a_node_without_a_zone_or_inventory_entry_is_counted_not_judged() -> None:
    periods = [p("a", 0, "day", 80.0), p("x", 0, "day", 80.0)]
    r = run(periods, {"a": zone_info("a", None)}, nodes=["a", "x"])
    assert r.zones == {} and r.groups == {}
    a, x = r.nodes["a"], r.nodes["x"]
    assert (a.day.valid, a.day.compliant, a.day.rate) == (1, None, None)
    assert "noise_zone" in a.note and "not in the fleet inventory" in x.note
    assert "no node with a noise zone" in r.html_section()


def test_an_unknown_zone_is_a_note_not_a_crash() -> None:
    # Struct construction does not validate: a caller may hand over a zone no file allowed.
    bad = zone_info("a", "5")
    r = run([p("a", 0, "day", 50.0)], {"a": bad})
    assert r.nodes["a"].zone is None and "unknown noise zone" in r.nodes["a"].note


@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from(["day", "night"]),
            st.one_of(st.none(), st.floats(0, 120, allow_nan=False)),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_rates_are_ratios_of_valid_periods(
    rows: list[tuple[int, Period, float | None, bool]],
) -> None:
    periods = [p("a", d, per, v, ok, sensor=f"s{i}") for i, (d, per, v, ok) in enumerate(rows)]
    r = run(periods, {"a": zone_info("a", "2")}, days=7)
    for period in ("day", "night"):
        got = getattr(r.nodes["a"], period)
        assert got.valid + got.invalid == len({(d, q) for d, q, _, _ in rows if q == period})
        assert got.compliant is not None and 0 <= got.compliant <= got.valid
        assert got.rate == (got.compliant / got.valid if got.valid else None)


def test_the_json_csv_text_and_html_forms() -> None:
    periods = [p("a", 0, "day", 50.0), p("a", 0, "night", 50.0)]
    r = run(periods, {"a": zone_info("a", "2")})
    doc = json.loads(json.dumps(r.to_json()))["noise"]
    assert (doc["from"], doc["to"]) == ("2026-06-01", "2026-06-03")
    assert doc["zones"]["2"]["day"]["rate"] == 1.0 and doc["nodes"]["a"]["zone"] == "2"
    assert "§3.1" in doc["validity"] and "UNVERIFIED" in doc["validity"]
    rows = r.csv_rows()
    assert rows[0][0] == "row" and [row[0] for row in rows[1:]] == ["zone", "node", "group"]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert list(_csv.reader(io.StringIO(r.to_csv()))) == rows
    assert "1/1 100.0 %" in r.text()
    page = r.html_section()
    assert page.startswith("<table") and "<h2" not in page and "<script" not in page
