"""`envnet report water|noise|bloom` end to end: a real influxd holding known readings, noise
periods and inventory (written with the aggregator's own line builders), the command run as a
user runs it, and the figures checked against values worked out here by hand (GB 3838-2002
Table 1, GB 3096-2008 Table 1, the WHO chlorophyll-a levels: docs/standards.md §5.1, §3.1,
§6.1). The water page is rendered in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aggregator.engine.windows import WindowResult
from aggregator.fleet import NodeInfo
from aggregator.storage.records import ReadingLines, WindowLines, node_lines
from schemas.messages import ReadingValues
from schemas.quantities import SPECS, Quantity
from simulators.local_stack import Influxd
from tests.support.chromium import screenshot
from tests.support.png import pixel_counts

D1, D2 = date(2026, 6, 1), date(2026, 6, 2)
CST = timezone(timedelta(hours=8))
HOUR_MS = 3_600_000
# The water class colours of the page (aggregator.reports.water.CLASS_COLOURS).
CLASS_II, CLASS_III, CLASS_IV = (0, 204, 255), (0, 255, 0), (255, 255, 0)

TH_A = NodeInfo(site="Taihu A", water_body="lake", water_target=2, group="Taihu", node="th-a")
TH_B = NodeInfo(site="Taihu B", water_body="lake", group="Taihu", node="th-b")
SZ_N = NodeInfo(site="Gusu school", noise_zone="2", group="Gusu", node="sz-n")  # 60 / 50 dB


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=CST).timestamp() * 1000)


def hourly(info: NodeInfo, quantity: Quantity, day: date, value: float) -> list[str]:
    """One 5-minute mean reading at :10 of each of the day's 24 local hours."""
    unit = SPECS[quantity].unit
    return ReadingLines(info).lines(
        [ReadingValues(at(day, h, 10), quantity, value, unit, 300, "mean", "sonde", ())
         for h in range(24)]
    )  # fmt: skip


def period(info: NodeInfo, kind: str, day: date, value: float, valid: bool) -> str:
    start = at(day, 6) if kind == "day" else at(day, 22)
    w = WindowResult(
        (info.node, "mic", "laeq"), kind, start, start + (16 if kind == "day" else 8) * HOUR_MS,  # type: ignore[arg-type]
        value, valid, 12 if valid else 3, 3600 * 12,
    )  # fmt: skip
    return WindowLines().line(w, info) or ""


def lines() -> list[str]:
    out = node_lines([TH_A, TH_B, SZ_N], [], at(D1, 0) - 86_400_000)
    # th-a: day 1 NH3-N 0.4 (II) and DO 8.0 (I): II; day 2 NH3-N 1.2 (IV): IV.
    out += hourly(TH_A, "nh3_n", D1, 0.4) + hourly(TH_A, "nh3_n", D2, 1.2)
    out += hourly(TH_A, "do", D1, 8.0) + hourly(TH_A, "do", D2, 8.0)
    # th-b (lake): day 1 TP 0.03 (lake III: 0.025 < 0.03 <= 0.05) and TN 0.4 (II): III.
    out += hourly(TH_B, "tp", D1, 0.03) + hourly(TH_B, "tn", D1, 0.4)
    # th-a chlorophyll-a: 12 µg/L (>= 10) on day 1, 60 (>= 10 and >= 50) on day 2.
    out += hourly(TH_A, "chl_a", D1, 12.0) + hourly(TH_A, "chl_a", D2, 60.0)
    # sz-n, zone 2: day 58 (complies) and 61 (not); night 49 (complies), the second invalid.
    out += [
        period(SZ_N, "day", D1, 58.0, True),
        period(SZ_N, "day", D2, 61.0, True),
        period(SZ_N, "night", D1, 49.0, True),
        period(SZ_N, "night", D2, 52.0, False),
    ]
    return out


@pytest.fixture
def stored(influxd: Influxd) -> Influxd:
    influxd.write(lines(), "envnet")
    return influxd


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """agg.toml naming a fleet file that gives th-a its target, Class II."""
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[nodes.th-a]\nsite = "Taihu A"\nwater_body = "lake"\nwater_target = 2\n'
        'group = "Taihu"\n\n[nodes.th-b]\nsite = "Taihu B"\nwater_body = "lake"\n'
        'group = "Taihu"\n',
        encoding="utf-8",
    )
    path = tmp_path / "agg.toml"
    path.write_text(f'[fleet]\npath = "{fleet}"\n', encoding="utf-8")
    return path


def report(influxd: Influxd, kind: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENVNET_INFLUX_URL": influxd.url, "ENVNET_INFLUX_DB": "envnet"}
    env.pop("ENVNET_FLEET", None)
    return subprocess.run(
        [sys.executable, "-m", "envnet.cli", "report", kind, "--from", str(D1), "--to", str(D2),
         *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def figures(result: subprocess.CompletedProcess[str], kind: str) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)[kind]
    return body


def days(site: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(d["date"], d["class_name"], d["deciding"]) for d in site["days"]]


def test_water_classes_per_site_and_sample_day(stored: Influxd, config: Path) -> None:
    water = figures(report(stored, "water", "--json", "--config", str(config)), "water")
    a, b = water["sites"]["th-a"], water["sites"]["th-b"]
    assert set(water["sites"]) == {"th-a", "th-b"}  # sz-n has no water body
    assert days(a) == [("2026-06-01", "II", ["nh3_n"]), ("2026-06-02", "IV", ["nh3_n"])]
    assert days(b) == [("2026-06-01", "III", ["tp"])]
    assert (a["valid_days"], a["days_iii_or_better"], a["days_worse_than_v"]) == (2, 1, 0)
    # The period: NH3-N mean (0.4 + 1.2) / 2 = 0.8, Class III, against th-a's target II.
    assert (a["class_name"], a["mean"]["nh3_n"], a["target"], a["meets_target"]) == (
        "III", 0.8, 2, False,
    )  # fmt: skip
    assert (b["class_name"], b["target"], b["meets_target"]) == ("III", 3, True)
    assert (water["all"]["share_iii_or_better"], water["all"]["share_worse_than_v"]) == (1.0, 0.0)
    assert str(config.parent / "fleet.toml") in water["validity"]
    assert "No fleet file gives" not in water["validity"]


def test_without_a_fleet_file_targets_default_to_class_iii_and_the_report_says_so(
    stored: Influxd,
) -> None:
    water = figures(report(stored, "water", "--json", "--group", "Taihu"), "water")
    assert water["sites"]["th-a"]["target"] == 3 and water["sites"]["th-a"]["meets_target"]
    assert water["sites"]["th-a"]["site"] == "th-a"  # the stored inventory has no site name
    assert "No fleet file gives the water target of th-a, th-b" in water["validity"]
    assert water["groups"]["Taihu"]["sites"] == 2


def test_water_csv_and_text(stored: Influxd, config: Path) -> None:
    result = report(stored, "water", "--csv", "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    day_rows = [(r["node"], r["date"], r["class_name"]) for r in rows if r["row"] == "day"]
    assert day_rows == [
        ("th-a", "2026-06-01", "II"), ("th-a", "2026-06-02", "IV"), ("th-b", "2026-06-01", "III"),
    ]  # fmt: skip
    text = report(stored, "water", "--config", str(config))
    assert text.returncode == 0 and "06-01:II 06-02:IV" in text.stdout
    assert "Validity:" in text.stdout


def test_noise_compliance_per_zone_class(stored: Influxd) -> None:
    noise = figures(report(stored, "noise", "--json"), "noise")
    zone = noise["zones"]["2"]
    assert (zone["limit_day"], zone["limit_night"], zone["nodes"]) == (60.0, 50.0, ["sz-n"])
    assert (zone["day"]["valid"], zone["day"]["compliant"], zone["day"]["rate"]) == (2, 1, 0.5)
    assert (zone["night"]["valid"], zone["night"]["rate"], zone["night"]["invalid"]) == (1, 1.0, 1)
    text = report(stored, "noise", "--csv")
    assert text.returncode == 0 and text.stdout.count("\n") >= 3


def test_bloom_days_above_each_who_level(stored: Influxd) -> None:
    bloom = figures(report(stored, "bloom", "--json"), "bloom")
    a, b = bloom["sites"]["th-a"], bloom["sites"]["th-b"]
    assert (a["valid_days"], a["days_above"]) == (2, {"who_low": 2, "who_moderate": 1})
    assert (b["valid_days"], b["days_above"]["who_low"]) == (0, 0)
    text = report(stored, "bloom")
    assert text.returncode == 0 and "th-a" in text.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["noise", "--group", "Taihu"], "no selected node has a noise_zone"),
        (["water", "--node", "th-zz"], "unknown node(s) th-zz"),
        (["water", "--json", "--csv"], "not allowed with argument"),
    ],
)
def test_bad_requests_exit_2(stored: Influxd, argv: Sequence[str], message: str) -> None:
    result = report(stored, *argv)
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_water_page_renders_in_headless_chromium(
    stored: Influxd, config: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report-water.html"
    result = report(stored, "water", "--config", str(config), "--html", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text(encoding="utf-8")
    assert html.count("<h2>") == 1 and "GB 3838-2002 classes per site and sample day" in html
    counts = pixel_counts(screenshot(page, tmp_path / "water.png", tmp_path / "chromium"))
    # The class table's cells are filled with the class colours: II and IV on th-a's days,
    # III on th-b's day and on both sites' period class.
    for rgb in (CLASS_II, CLASS_III, CLASS_IV):
        assert counts[rgb] > 200, (rgb, counts.most_common(12))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "noise",
            [
                "GB 3096-2008 day and night compliance",
                "<td>sz-n</td>",
                "<td>1/2</td><td>50.0 %</td>",
            ],
        ),
        ("bloom", ["WHO chlorophyll-a levels", "<td>th-a</td>", "background:#ff9b6a"]),
    ],
)
def test_the_noise_and_bloom_pages_hold_their_tables(
    stored: Influxd, tmp_path: Path, kind: str, expected: list[str]
) -> None:
    page = tmp_path / f"report-{kind}.html"
    result = report(stored, kind, "--html", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text(encoding="utf-8")
    assert html.count("<h2>") == 1 and "<table" in html and "<script" not in html
    for text in expected:
        assert text in html, text


def test_all_puts_every_kind_that_applies_on_one_page(stored: Influxd, tmp_path: Path) -> None:
    result = report(stored, "all", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["water"]["sites"]["th-a"]["valid_days"] == 2
    assert body["noise"]["zones"]["2"]["day"]["rate"] == 0.5
    assert body["bloom"]["sites"]["th-a"]["days_above"]["who_moderate"] == 1
    # No node here has an air zone class: air is said not to apply, not reported as empty.
    assert "air" not in body and "air_zone" in body["not_reported"]["air"]
    page = tmp_path / "report-all.html"
    assert report(stored, "all", "--html", str(page)).returncode == 0
    html = page.read_text(encoding="utf-8")
    for title in ("GB 3838-2002 classes", "GB 3096-2008 day and night", "WHO chlorophyll-a",
                  "Not reported"):  # fmt: skip
        assert title in html, title
    text = report(stored, "all")
    assert text.returncode == 0 and "air: not reported" in text.stdout
    csv = report(stored, "all", "--csv")
    assert csv.returncode == 2 and "--csv needs one kind" in csv.stderr
