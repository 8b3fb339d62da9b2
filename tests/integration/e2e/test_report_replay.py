"""Issue 12's "Done when": a PRSA replay through the real stack (edge agent, mosquitto,
aggregator, influxd), then `envnet report air --json`, gives the daily exceedance and good-day
counts of an independent computation from the CSV.

The independent computation below is plain Python that imports nothing of envnet: its own
hourly → daily means (>= 20 valid hours, GB 3095-2026 Table 4), its own MDA8 (8-h means of
>= 6 hours, the windows ending at local hours 8 to 24, >= 14 of them valid: envnet's UNVERIFIED
reading of HJ 663, docs/standards.md §1.4), the HJ 633-2012 IAQI breakpoints, its rounding
(concentrations half-even to integers, CO to 0.1 mg/m³; sub-indices rounded up) and the GB
3095-2012 Grade II daily limits, all retyped from docs/standards.md §1.1, §2.1, §2.2, §2.4. The
file gives CO in µg/m³; the limits and breakpoints are in mg/m³ (docs/standards.md §1.1), so
the file's CO is divided by 1000 here as the replay does.

The synthetic file runs everywhere; the real Aotizhongxin file of ../shared/data runs when
it is there.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from aggregator.fleet import Fleet, NodeInfo
from simulators.local_stack import Influxd, Mosquitto
from tests.support.chromium import screenshot
from tests.support.harness import aggregator_config, count, running_aggregator, wait_for

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
AOTI = DATA / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"
NODE = "bj-aoti"

# -- the independent computation (nothing from envnet) ------------------------------------------

HEADER = ("No", "year", "month", "day", "hour", "PM2.5", "PM10", "SO2", "NO2", "CO", "O3",
          "TEMP", "PRES", "DEWP", "RAIN", "wd", "WSPM", "station")  # fmt: skip
COLUMN = {"pm2_5": "PM2.5", "pm10": "PM10", "so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3"}
DAILY = ("so2", "no2", "co", "pm10", "pm2_5")
# GB 3095-2012 Table 1, Grade II, 24-h (O3: 8-h, on MDA8); CO in mg/m³ (docs/standards.md §1.1).
LIMIT_2012_II = {"so2": 150, "no2": 80, "co": 4, "pm10": 150, "pm2_5": 75, "o3": 160}
IAQI_LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)
# HJ 633-2012 Table 1 (docs/standards.md §2.1).
BREAKPOINTS_2012 = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm2_5_24h": (0, 35, 75, 115, 150, 250, 350, 500),
    "o3_8h": (0, 100, 160, 215, 265, 800),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
}


def rounded(indicator: str, value: float) -> Fraction:
    """HJ 633 input rounding (docs/standards.md §2.2): CO to 0.1, the rest to integers,
    half-even (envnet's UNVERIFIED reading of GB/T 8170)."""
    quantum = Decimal("0.1") if indicator.startswith("co") else Decimal(1)
    return Fraction(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_EVEN))


def iaqi(indicator: str, value: float) -> int | None:
    bp = BREAKPOINTS_2012[indicator]
    c = rounded(indicator, value)
    if c > bp[-1]:
        return None if indicator == "o3_8h" else 500  # 2012: O3 8-h above 800 falls back to 1-h
    for i in range(1, len(bp)):
        if c <= bp[i]:
            lo, hi = IAQI_LEVELS[i - 1], IAQI_LEVELS[i]
            return math.ceil(Fraction(hi - lo, 1) / (bp[i] - bp[i - 1]) * (c - bp[i - 1]) + lo)
    return 500


@dataclass
class Expected:
    daily: dict[date, dict[str, float]] = field(default_factory=dict)
    aqi: dict[date, int | None] = field(default_factory=dict)
    valid_days: int = 0
    good_days: int = 0
    exceedance_days: dict[str, int] = field(default_factory=dict)
    stored_24h: int = 0  # daily windows the aggregator stores (any data that day)
    stored_mda8: int = 0


Hours = dict[date, dict[str, dict[int, float]]]


def hourly(path: Path, first: date, last: date) -> Hours:
    """Each local day's hourly values per pollutant, by hour of the day; NA left out."""
    hours: Hours = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            day = date(int(row["year"]), int(row["month"]), int(row["day"]))
            if not first <= day <= last:
                continue
            for q, col in COLUMN.items():
                if row[col] != "NA":
                    value = float(row[col]) / (1000 if q == "co" else 1)  # CO: µg → mg/m³
                    hours.setdefault(day, {}).setdefault(q, {})[int(row["hour"])] = value
    return hours


def mda8(o3: dict[int, float]) -> list[float]:
    """The day's valid 8-h means: windows ending at local hours 8..24, each with >= 6 hours."""
    means = []
    for start in range(17):
        inside = [o3[k] for k in range(start, start + 8) if k in o3]
        if len(inside) >= 6:
            means.append(math.fsum(inside) / len(inside))
    return means


def expected_from_csv(path: Path, first: date, last: date) -> Expected:
    hours = hourly(path, first, last)
    out = Expected(exceedance_days=dict.fromkeys(LIMIT_2012_II, 0))
    day = first
    while day <= last:
        by_q = hours.get(day, {})
        values: dict[str, float] = {}
        for q in DAILY:
            h = by_q.get(q, {})
            out.stored_24h += bool(h)
            if len(h) >= 20:
                values[q] = math.fsum(h.values()) / len(h)
        o3 = by_q.get("o3", {})
        means = mda8(o3)
        out.stored_mda8 += bool(means)
        if len(means) >= 14:
            values["o3"] = max(means)
        for q, v in values.items():
            out.exceedance_days[q] += v > LIMIT_2012_II[q]
        indicators = {f"{q}_24h": values[q] for q in DAILY if q in values}
        if "o3" in values:
            indicators["o3_8h"] = values["o3"]
        if o3:
            indicators["o3_1h"] = max(o3.values())  # HJ 633-2012 §5.1.2: daily max 1-h O3
        subs = {i: iaqi(i, v) for i, v in indicators.items()}
        if subs.get("o3_8h", 0) is None:
            subs["o3_8h"] = subs.get("o3_1h")
        known = [s for s in subs.values() if s is not None]
        aqi = max(known) if known else None
        complete = len(known) == 7
        out.daily[day], out.aqi[day] = values, aqi
        if aqi is not None and (complete or aqi > 100):  # HJ 633-2026 §5.3
            out.valid_days += 1
            out.good_days += aqi <= 100
        day += timedelta(days=1)
    return out


# -- a small PRSA file with known days ------------------------------------------------------------


def synthetic_csv(path: Path, first: date) -> Path:
    """4 local days: clean; a PM2.5 haze (150); an O3 afternoon (240 from 12:00 to 19:00) and
    CO 5000 µg/m³ (5 mg/m³ > 4); PM2.5 missing 6 hours (18 < 20: no valid daily PM2.5) with
    NO2 at 120 (> 80)."""
    lines = [",".join(f'"{c}"' for c in HEADER)]
    for n in range(4 * 24):
        day, hour = first + timedelta(days=n // 24), n % 24
        pm25, pm10, so2, no2, co, o3 = "20", "40", "8", "30", "600", "50"
        if n // 24 == 1:
            pm25, pm10 = "150", "180"
        if n // 24 == 2:
            co = "5000"
            o3 = "240" if 12 <= hour < 20 else "60"
        if n // 24 == 3:
            no2 = "120"
            pm25 = "NA" if hour < 6 else "30"
        row = [n + 1, day.year, day.month, day.day, hour, pm25, pm10, so2, no2, co, o3,
               4.5, 1021.0, -12.0, 0, '"NNW"', 2.1, '"Synthetic"']  # fmt: skip
        lines.append(",".join(str(v) for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the real stack ------------------------------------------------------------------------------


def replay_and_report(
    csv_path: Path, first: date, last: date, mosquitto: Mosquitto, influxd: Influxd, tmp: Path
) -> tuple[dict[str, Any], Expected]:
    expected = expected_from_csv(csv_path, first, last)
    fleet = Fleet({NODE: NodeInfo(site="Beijing Aotizhongxin", air_zone=2, group="Beijing")})
    config = aggregator_config(mosquitto, influxd.url, tmp)
    with running_aggregator(config, fleet):
        replay = subprocess.run(
            [sys.executable, "-m", "envnet.cli", "sim", "replay-csv", str(csv_path),
             "--node", NODE, "--from", first.isoformat(), "--to", last.isoformat(),
             "--speed", "720000", "--journal", str(tmp / "replay.sqlite")],
            env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr[-2000:]
        aqi = "quantity='so2' OR quantity='no2' OR quantity='co' OR quantity='pm10' OR "
        daily = (
            f"SELECT count(value) FROM windows WHERE \"window\"='24h' AND ({aqi}quantity='pm2_5')"
        )
        mda8 = "SELECT count(value) FROM windows WHERE \"window\"='mda8' AND quantity='o3'"

        def all_days_stored() -> bool:
            return (count(influxd, daily), count(influxd, mda8)) == (
                expected.stored_24h,
                expected.stored_mda8,
            )

        # The last day closes on the replay's offline status (test_event_time.py).
        wait_for(all_days_stored, 180, "every day's daily windows in InfluxDB")
    report = subprocess.run(
        [sys.executable, "-m", "envnet.cli", "report", "air", "--from", first.isoformat(),
         "--to", last.isoformat(), "--node", NODE, "--json"],
        env={**os.environ, "ENVNET_INFLUX_URL": influxd.url, "ENVNET_INFLUX_DB": "envnet"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    out: dict[str, Any] = json.loads(report.stdout)
    (tmp / "report.json").write_text(report.stdout, encoding="utf-8")
    return out, expected


def assert_agrees(out: dict[str, Any], expected: Expected, days: int) -> None:
    node = out["air"]["nodes"][NODE]
    by_day = {d["date"]: d for d in node["daily"]}
    for day, aqi in expected.aqi.items():
        got = by_day.get(day.isoformat(), {}).get("aqi")
        assert got == aqi, (day, got, aqi, expected.daily[day])
    assert node["exceedance_days"] == expected.exceedance_days
    assert (node["valid_days"], node["good_days"]) == (expected.valid_days, expected.good_days)
    assert node["days_in_period"] == days
    assert node["edition"] == "2012"


def test_a_synthetic_replay_reports_what_the_csv_says(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    first = date(2013, 3, 1)
    path = synthetic_csv(tmp_path / "PRSA_Data_Synthetic.csv", first)
    out, expected = replay_and_report(
        path, first, first + timedelta(days=3), mosquitto, influxd, tmp_path
    )
    # The file's own story, before comparing with the report: PM2.5 and PM10 over their limits
    # on day 2, O3 (MDA8 240) and CO (5 mg/m³) on day 3, NO2 on day 4; day 4 has no valid PM2.5
    # mean.
    assert expected.exceedance_days == {"so2": 0, "no2": 1, "co": 1, "pm10": 1, "pm2_5": 1,
                                        "o3": 1}  # fmt: skip
    assert (expected.valid_days, expected.good_days) == (4, 1)
    assert_agrees(out, expected, 4)


@pytest.mark.skipif(not AOTI.exists(), reason=f"shared data not found at {AOTI}")
def test_aotizhongxin_march_2013_agrees_with_an_independent_computation(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    first, last = date(2013, 3, 1), date(2013, 3, 31)
    out, expected = replay_and_report(AOTI, first, last, mosquitto, influxd, tmp_path)
    node = out["air"]["nodes"][NODE]
    print(json.dumps({"air": {**out["air"], "nodes": {NODE: {
        k: v for k, v in node.items() if k not in ("daily",)}}}}))  # fmt: skip
    assert_agrees(out, expected, 31)
    assert expected.exceedance_days["pm2_5"] > 10  # the March 2013 haze
    if os.environ.get("ENVNET_WRITE_REPORT_SCREENSHOT"):  # the README's picture
        page = tmp_path / "report-air.html"
        html = subprocess.run(
            [sys.executable, "-m", "envnet.cli", "report", "air", "--from", "2013-03-01",
             "--to", "2013-03-31", "--node", NODE, "--html", str(page)],
            env={**os.environ, "ENVNET_INFLUX_URL": influxd.url, "ENVNET_INFLUX_DB": "envnet"},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert html.returncode == 0, html.stderr
        png = screenshot(page, tmp_path / "report-air.png", tmp_path / "chromium", (1100, 760))
        shutil.copyfile(png, Path(__file__).resolve().parents[3] / "docs/img/report-air.png")
