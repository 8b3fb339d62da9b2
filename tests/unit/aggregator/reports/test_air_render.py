"""The air report's outputs: the JSON contract of issue 12, the long CSV, the text table and
the HTML page (calendar cells in the HJ 633 colours, the monthly chart, nothing external)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

from aggregator.reports.air import compute
from aggregator.reports.air_render import CSV_HEADER, html_sections, to_csv, to_json, to_text
from aggregator.reports.html_page import Section, page
from aggregator.reports.queries import WindowPoint
from aggregator.reports.request import InventoryNode, Period
from aggregator.reports.settings import ReportSettings
from schemas.standards import hj633

MARCH = Period(date(2013, 3, 1), date(2013, 3, 31))
CLEAN = {"so2": 10.0, "no2": 30.0, "co": 0.8, "o3": 60.0, "pm10": 40.0, "pm2_5": 20.0}
# PM2.5 daily means whose 2012 IAQI falls in each category I..VI (docs/standards.md §2.1).
PM_BY_LEVEL = (20.0, 60.0, 100.0, 140.0, 200.0, 300.0)


def report() -> object:
    points = []
    for n, day in enumerate(MARCH.days[:12]):
        start = MARCH.day_start_ms(day)
        values = {**CLEAN, "pm2_5": PM_BY_LEVEL[n % 6]}
        points += [
            WindowPoint("bj-x", "s", q, "mda8" if q == "o3" else "24h", start, v, True)
            for q, v in values.items()
        ]
        points.append(WindowPoint("bj-x", "s", "o3", "1h", start, 60.0, True))
    nodes = [InventoryNode("bj-x", True, 0, "BJ", 2)]
    return compute(MARCH, nodes, points, ReportSettings(), group="BJ")


def test_the_json_has_the_contracted_shape() -> None:
    out = json.loads(json.dumps(to_json(report())))  # type: ignore[arg-type]
    air = out["air"]
    assert (air["from"], air["to"]) == ("2013-03-01", "2013-03-31")
    node = air["nodes"]["bj-x"]
    for key, kind in (("valid_days", int), ("good_days", int), ("good_day_ratio", float),
                      ("exceedance_days", dict), ("mean", dict), ("edition", str)):  # fmt: skip
        assert isinstance(node[key], kind), key
    assert node["valid_days"] == 12 and node["good_days"] == 4
    assert node["good_day_ratio"] == round(4 / 12, 4)
    assert node["exceedance_days"]["pm2_5"] == 8  # above 75 on 4 of each 6 days
    assert node["edition"] == "2012"
    assert node["heavy_days"] == 4
    assert node["categories"] == {"I": 2, "II": 2, "III": 2, "IV": 2, "V": 2, "VI": 2}
    assert len(node["daily"]) == 12 and node["daily"][0]["date"] == "2013-03-01"
    assert air["groups"]["BJ"]["members"] == ["bj-x"]
    assert "GB 3095-2026 Table 4" in air["validity"]["daily_values"]
    assert air["settings"]["o3_percentile_method"] == "linear"


def test_the_csv_is_one_row_per_figure() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(report()))))  # type: ignore[arg-type]
    assert tuple(rows[0]) == CSV_HEADER
    assert ["air", "node", "bj-x", "good_days", "", "4"] in rows
    assert ["air", "node", "bj-x", "exceedance_days", "pm2_5", "8"] in rows
    assert ["air", "group", "BJ", "valid_days", "", "12"] in rows
    assert ["air", "node", "bj-x", "month_good_days", "2013-03", "4"] in rows


def test_the_text_table_names_each_node_and_group() -> None:
    text = to_text(report())  # type: ignore[arg-type]
    assert "node bj-x" in text and "group BJ" in text
    assert "12/31" in text and "pm2_5:8" in text


def html() -> str:
    return page("envnet air report", html_sections(report()))  # type: ignore[arg-type]


def test_the_calendar_cells_carry_the_official_category_colours() -> None:
    doc = html()
    cells = dict(re.findall(r'background:(#[0-9A-F]{6});[^"]*" data-date="([0-9-]+)"', doc))
    by_day = {day: colour for colour, day in re.findall(
        r'background:(#[0-9A-F]{6});[^"]*" data-date="([0-9-]+)"', doc)}  # fmt: skip
    assert cells  # the pattern matched
    for n in range(12):
        level = n % 6
        assert by_day[f"2013-03-{n + 1:02d}"] == hj633.CATEGORIES[level].hex
    # The official HJ 633 purple and maroon (docs/standards.md §2.3), not the US-EPA purple.
    assert "#99004C" in doc and "#7E0023" in doc and "#8F3F97" not in doc.upper()
    # A day without data is grey "NA", and the days before and after are in the calendar.
    assert 'data-date="2013-03-20"><b>20</b>NA' in doc


def test_the_monthly_chart_draws_the_target_line() -> None:
    doc = html()
    assert "<svg" in doc and "target 86%" in doc
    assert ">33%</text>" in doc  # 4 good of 12 valid days in March


def test_the_page_is_self_contained() -> None:
    doc = page("t <x>", [Section("A & B", "<p>body</p>")], note="n")
    assert doc.startswith("<!DOCTYPE html>")
    assert "<title>t &lt;x&gt;</title>" in doc and "<h2>A &amp; B</h2>" in doc
    for external in ("<script", "<link", " src=", "url(", "@import", "https://", "http://"):
        assert external not in html().replace('xmlns="http://www.w3.org/2000/svg"', "")
