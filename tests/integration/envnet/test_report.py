"""`envnet report air` against a real influxd holding known windows and inventory, written with
the aggregator's own line builders; the HTML page rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aggregator.engine.windows import WindowResult
from aggregator.fleet import NodeInfo
from aggregator.storage.records import WindowLines, node_lines
from simulators.local_stack import Influxd
from tests.support.chromium import screenshot
from tests.support.png import pixel_counts

DAY_MS = 86_400_000
MARCH_1_MS = 1362067200000  # 2013-03-01 00:00 +08:00
CLEAN = {"so2": 10.0, "no2": 30.0, "co": 0.8, "o3": 60.0, "pm10": 40.0, "pm2_5": 20.0}
# PM2.5 daily means whose HJ 633-2012 IAQI is in level I..VI (docs/standards.md §2.1).
PM_BY_LEVEL = (20.0, 60.0, 100.0, 140.0, 200.0, 300.0)
COLOURS = ((0, 228, 0), (255, 255, 0), (255, 126, 0), (255, 0, 0), (153, 0, 76), (126, 0, 35))
ROOT = Path(__file__).resolve().parents[3]


def info(node: str, group: str, zone: int) -> NodeInfo:
    return NodeInfo(site=f"Site {node}", air_zone=zone, group=group, node=node)  # type: ignore[arg-type]


def window(
    node: str, q: str, kind: str, start: int, value: float, valid: bool = True
) -> WindowResult:
    span = 3_600_000 if kind == "1h" else DAY_MS
    return WindowResult((node, "ref", q), kind, start, start + span, value, valid, 24, 86400)  # type: ignore[arg-type]


def lines() -> list[str]:
    nodes = {"bj-a": info("bj-a", "Beijing", 2), "bj-b": info("bj-b", "Beijing", 1),
             "sz-c": info("sz-c", "Suzhou", 2)}  # fmt: skip
    out = node_lines([info("bj-old", "Beijing", 1)], [], 1_600_000_000_000)
    out += node_lines(nodes.values(), ["bj-old"], 1_700_000_000_000)  # bj-old retired since
    build = WindowLines()
    for n in range(12):
        start = MARCH_1_MS + n * DAY_MS
        for node, pm in (("bj-a", PM_BY_LEVEL[n % 6]), ("bj-b", 20.0)):
            for q, v in {**CLEAN, "pm2_5": pm}.items():
                w = window(node, q, "mda8" if q == "o3" else "24h", start, v)
                out.append(build.line(w, nodes[node]) or "")
            out.append(
                build.line(window(node, "o3", "1h", start + 3_600_000, 70.0), nodes[node]) or ""
            )
    # An invalid daily mean (fewer than 20 hours) is not a daily value.
    bad = window("bj-b", "no2", "24h", MARCH_1_MS + 13 * DAY_MS, 500.0, valid=False)
    out.append(build.line(bad, nodes["bj-b"]) or "")
    return out


@pytest.fixture
def stored(influxd: Influxd) -> Influxd:
    influxd.write(lines(), "envnet")
    return influxd


def report(influxd: Influxd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envnet.cli", "report", "air", "--from", "2013-03-01",
         "--to", "2013-03-31", *args],
        env={**os.environ, "ENVNET_INFLUX_URL": influxd.url, "ENVNET_INFLUX_DB": "envnet"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_json_of_a_group_and_its_nodes(stored: Influxd) -> None:
    result = report(stored, "--group", "Beijing", "--json")
    assert result.returncode == 0, result.stderr
    air: dict[str, Any] = json.loads(result.stdout)["air"]
    a, b = air["nodes"]["bj-a"], air["nodes"]["bj-b"]
    assert set(air["nodes"]) == {"bj-a", "bj-b"}  # sz-c is in another group
    assert (a["valid_days"], a["good_days"], a["heavy_days"]) == (12, 4, 4)
    assert a["categories"] == {"I": 2, "II": 2, "III": 2, "IV": 2, "V": 2, "VI": 2}
    assert a["exceedance_days"]["pm2_5"] == 8 and a["zone"] == 2
    # bj-b is a Class 1 site: Grade I PM2.5 24-h is 35, its 20 is within; its invalid NO2 day
    # is neither a valid day nor an exceedance.
    assert (b["valid_days"], b["good_days"], b["exceedance_days"]["no2"], b["zone"]) == (
        12,
        12,
        0,
        1,
    )
    assert b["mean"]["pm2_5"] == 20.0 and b["o3_evaluation"] == 60.0
    group = air["groups"]["Beijing"]
    assert group["members"] == ["bj-a", "bj-b"] and group["valid_days"] == 12
    assert a["edition"] == "2012" and "GB 3095-2012 Table 1" in a["clauses"][0]


def test_a_retired_node_is_reported_by_id_and_not_as_a_group_member(stored: Influxd) -> None:
    result = report(stored, "--node", "bj-old", "--json")
    assert result.returncode == 0, result.stderr
    old = json.loads(result.stdout)["air"]["nodes"]["bj-old"]
    assert (old["valid_days"], old["zone"], old["zone_source"]) == (0, 1, "inventory")


def test_an_unknown_node_exits_2(stored: Influxd) -> None:
    result = report(stored, "--node", "bj-zz")
    assert result.returncode == 2 and "unknown node(s) bj-zz" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_html_page_renders_in_headless_chromium(stored: Influxd, tmp_path: Path) -> None:
    page = tmp_path / "report-air.html"
    result = report(stored, "--group", "Beijing", "--html", str(page))
    assert result.returncode == 0, result.stderr
    png = screenshot(page, tmp_path / "report-air.png", tmp_path / "chromium")
    counts = pixel_counts(png)
    # Every HJ 633 category colour fills calendar cells (docs/standards.md §2.3): hundreds of
    # pixels each, not a stray anti-aliased edge.
    for rgb in COLOURS:
        assert counts[rgb] > 300, (rgb, counts.most_common(12))
    assert len(counts) > 20  # text, chart and table, not a blank page
    if os.environ.get("ENVNET_WRITE_REPORT_SCREENSHOT"):
        shutil.copyfile(png, ROOT / "docs" / "img" / "report-air.png")
