"""The Grafana assets under deploy/grafana/ are fresh, consistent with storage and standards.

Every InfluxQL query (panels, annotations, variables, alert rules) may name only measurements,
tags and fields of schemas.storage, only tag values of the contract's and the
standards engine's vocabularies (quantity, report, window, body, ...), and may compare a field
only with a literal of the field's stored type (a boolean with true/false, never 'true').
Threshold lines and colours must equal the standards numbers. They are restated here from
../shared/standards.md as an independent check of schemas/standards/, which
deploy/grafana/builder/limits.py draws from.

Two tests run the queries against a real InfluxDB 1.x (the conftest `influxd` fixture); they are
marked `integration`. No Grafana server runs here: nothing checks how Grafana renders these.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from aggregator.metrics import Metrics
from deploy.grafana.builder.__main__ import ROOT, stale_files
from deploy.grafana.builder.assets import render
from deploy.grafana.builder.limits import (
    GOOD_AIR_TARGET_PERCENT,
    LIMITS,
    NIGHT_LMAX_MARGIN_DB,
    NOISE_ZONES,
    WINDOW_LIMITS,
)
from schemas.messages import AlertEvent, AlertKind, Severity
from schemas.quantities import QUANTITIES, SPECS, STATISTICS, Family
from schemas.standards import gb3838, hj633
from schemas.storage import MEASUREMENTS, WindowKind
from simulators.local_stack import Influxd

JSON = dict[str, Any]
DATABASE = "envnet"  # the database the conftest `influxd` fixture creates

# Tag and field values a query may compare with, per key.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "quantity": QUANTITIES,
    "family": get_args(Family),
    "stat": STATISTICS,
    "kind": get_args(AlertKind),
    "severity": get_args(Severity),
    "event": get_args(get_type_hints(AlertEvent)["event"]),
    "report": get_args(hj633.Report),
    "edition": get_args(hj633.Edition),
    "window": get_args(WindowKind),
    "body": get_args(gb3838.WaterBody),
}

# standards.md numbers, restated (canonical units: µg/m³, CO mg/m³, dB(A), mg/L, µg/L).
STANDARDS_MD: dict[str, set[float]] = {
    "pm2_5": {60},  # §1.1 GB 3095-2026 transition Grade II 24-h
    "pm10": {120},  # §1.1 transition Grade II 24-h
    "o3": {200},  # §1.1 Grade II 1-h
    "no2": {200},  # §1.1 Grade II 1-h
    "so2": {500},  # §1.1 Grade II 1-h
    "co": {10},  # §1.1 Grade II 1-h, mg/m³
    "laeq": {60, 50},  # §3.1 GB 3096-2008 Class 2 day / night
    "lamax": {65},  # §3.2 §5.4: Class 2 night 50 + 15
    "h2s": {60},  # §4.1 GB 14554-93 Grade II new: 0.06 mg/m³
    "nh3": {1500},  # §4.1 Grade II new: 1.5 mg/m³
    "odour": {20},  # §4.1 Grade II new
    "do": {5},  # §5.1 GB 3838-2002 Class III (minimum)
    "ph": {6, 9},  # §5.1 all classes
    "codmn": {6},  # §5.1 Class III
    "nh3_n": {1.0},  # §5.1 Class III
    "tp": {0.05, 0.2},  # §5.1 Class III lakes / rivers
    "tn": {1.0},  # §5.1 Class III lakes
    "chl_a": {10, 50},  # §6.1 WHO 1999/2003
}
# The aggregator's windows against their limits, by (quantity, window):
WINDOW_LIMITS_MD: dict[tuple[str, str], set[float]] = {
    ("pm2_5", "24h"): {60},  # §1.1 GB 3095-2026 Table 1 transition Grade II 24-h
    ("pm10", "24h"): {120},  # §1.1 transition Grade II 24-h
    ("no2", "24h"): {80},  # §1.1 transition Grade II 24-h
    ("so2", "24h"): {150},  # §1.1 transition Grade II 24-h
    ("co", "24h"): {4},  # §1.1 Grade II 24-h, mg/m³
    ("o3", "mda8"): {160},  # §1.1 Grade II daily max 8-h (MDA8)
    ("laeq", "day"): {60},  # §3.1 GB 3096-2008 Class 2 day (L_d)
    ("laeq", "night"): {50},  # §3.1 Class 2 night (L_n)
}
# §2.3 HJ 633-2026 Table 1 / Appendix A Table A.1: the first AQI of each level and its colour.
AQI_LEVELS_MD: list[tuple[float | None, str]] = [
    (None, "#00E400"),  # I 1-50 (2012: 0-50)
    (51, "#FFFF00"),  # II 51-100
    (101, "#FF7E00"),  # III 101-150
    (151, "#FF0000"),  # IV 151-200
    (201, "#99004C"),  # V 201-300
    (301, "#7E0023"),  # VI > 300
]
TLI_BOUNDS_MD = {30, 50, 60, 70}  # §6.3 总站生字[2001]090号

NOISE_ZONES_MD = {
    "0": (50, 40),
    "1": (55, 45),
    "2": (60, 50),
    "3": (65, 55),
    "4a": (70, 55),
    "4b": (70, 60),
}  # §3.1 GB 3096-2008 Table 1

QUOTED = re.compile(r'"([^"]+)"')
FROM = re.compile(r'\bFROM\s+"([^"]+)"')
ALIAS = re.compile(r'\bAS\s+"([^"]+)"')
COMPARISON = re.compile(r'"([^"]+)"\s*(=~|!~|!=|<>|=)\s*(\'(?:[^\'\\]|\\.)*\'|/(?:[^/\\]|\\.)*/)')
# A name compared with a bare literal: a boolean or a number (never a tag: tags are strings).
BARE_COMPARISON = re.compile(
    r'"([^"]+)"\s*(<=|>=|!=|<>|=|<|>)\s*(true|false|-?\d+(?:\.\d+)?)(?![\w.])'
)
GROUP_BY = re.compile(r"\bGROUP BY\s+(.*?)(?=\s+fill\(|\s+tz\(|\s+ORDER\b|\s+LIMIT\b|\)|$)")
WITH_KEY = re.compile(r'\bWITH KEY = "([^"]+)"')
TEMPLATE_VARIABLE = re.compile(r"\$[a-z_]")
FIXED_REGEX = re.compile(r"^/\^\(?([a-z0-9_.|-]+)\)?\$/$")


def load(path: Path) -> JSON:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def json_files() -> list[Path]:
    return sorted(ROOT.rglob("*.json"))


def dashboards() -> list[JSON]:
    paths = [*ROOT.glob("dashboards/*.json"), ROOT / "optional/aggregator-health/dashboard.json"]
    return [load(p) for p in sorted(paths)]


def influx_dashboards() -> list[JSON]:
    return [load(p) for p in sorted(ROOT.glob("dashboards/*.json"))]


def alert_rules() -> list[JSON]:
    return [load(p) for p in sorted(ROOT.glob("alerting/*.json"))]


def influx_uid() -> str:
    uid = load(ROOT / "datasources/influxdb.json")["uid"]
    assert isinstance(uid, str)
    return uid


def panel_queries(panel: JSON) -> list[str]:
    return [t["query"] for t in panel.get("targets", []) if "query" in t]


def all_influx_queries() -> list[str]:
    queries: list[str] = []
    for board in influx_dashboards():
        queries += [v["query"] for v in board["templating"]["list"]]
        queries += [a["target"]["query"] for a in board["annotations"]["list"] if "target" in a]
        for panel in board["panels"]:
            queries += panel_queries(panel)
    for rule in alert_rules():
        queries += [d["model"]["query"] for d in rule["data"] if "query" in d["model"]]
    return queries


def schema_problems(query: str) -> list[str]:
    """Names and values in one InfluxQL query that storage does not have."""
    measurements = FROM.findall(query)
    if not measurements:
        return [f"no FROM measurement: {query}"]
    unknown = [m for m in measurements if m not in MEASUREMENTS]
    if unknown:
        return [f"unknown measurement(s) {unknown}"]
    tags = {t for m in measurements for t in MEASUREMENTS[m].tags}
    fields: dict[str, set[str]] = {}
    for m in measurements:
        for name, kind in MEASUREMENTS[m].fields.items():
            fields.setdefault(name, set()).add(kind)
    aliases = set(ALIAS.findall(query))
    problems = [
        f"unknown name {name!r}"
        for name in QUOTED.findall(query)
        if name not in tags | set(fields) | aliases | set(measurements)
    ]
    for key, _op, value in COMPARISON.findall(query):
        problems += value_problems(key, value, tags | set(fields))
        if key in fields and key not in tags and fields[key] != {"string"}:
            problems.append(f"{key!r} ({'/'.join(sorted(fields[key]))}) compared with {value}")
    for key, _op, value in BARE_COMPARISON.findall(query):
        problems += literal_problems(key, value, tags, fields)
    for clause in GROUP_BY.findall(query):
        problems += [f"GROUP BY non-tag {k!r}" for k in QUOTED.findall(clause) if k not in tags]
    problems += [f"WITH KEY non-tag {k!r}" for k in WITH_KEY.findall(query) if k not in tags]
    return problems


def value_problems(key: str, value: str, names: set[str]) -> list[str]:
    if key not in names:
        return [f"WHERE on unknown key {key!r}"]
    if key not in VOCABULARY or TEMPLATE_VARIABLE.search(value):
        return []
    if value.startswith("'"):
        values = [value[1:-1]]
    else:
        fixed = FIXED_REGEX.match(value)
        if fixed is None:
            return [f"unrecognised regex {value} on {key!r}"]
        values = fixed.group(1).split("|")
    return [f"{key} value {v!r} not in the vocabulary" for v in values if v not in VOCABULARY[key]]


def literal_problems(
    key: str, value: str, tags: set[str], fields: dict[str, set[str]]
) -> list[str]:
    """A bare true/false or number must meet a stored field of that type."""
    if key in tags:
        return [f"tag {key!r} compared with the bare literal {value} (tags are strings)"]
    if key not in fields:
        return [f"WHERE on unknown key {key!r}"]
    wanted = {"boolean"} if value in ("true", "false") else {"integer", "float"}
    if fields[key] <= wanted:
        return []
    return [f"{key!r} ({'/'.join(sorted(fields[key]))}) compared with {value}"]


def tag_values_of(panel: JSON, key: str) -> set[str]:
    found: set[str] = set()
    for query in panel_queries(panel):
        found |= {v.strip("'") for k, op, v in COMPARISON.findall(query) if k == key and op == "="}
    return found


def measurements_of(panel: JSON) -> set[str]:
    return {m for query in panel_queries(panel) for m in FROM.findall(query)}


def panels_from(measurement: str) -> list[JSON]:
    return [
        panel
        for board in influx_dashboards()
        for panel in board["panels"]
        if measurements_of(panel) == {measurement}
    ]


def quantities_of(panel: JSON) -> set[str]:
    found: set[str] = set()
    for query in panel_queries(panel):
        found |= {v for k, _op, v in COMPARISON.findall(query) if k == "quantity"}
    return {v.strip("'") for v in found}


def threshold_values(panel: JSON) -> set[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return {float(s["value"]) for s in steps if s["value"] is not None}


# ------------------------------------------------------------------ files


def test_every_asset_is_valid_json() -> None:
    files = json_files()
    assert len(files) >= 10
    for path in files:
        load(path)


def test_committed_json_is_what_the_builder_generates() -> None:
    assert stale_files(ROOT, render()) == [], "run: python -m deploy.grafana.builder"


def test_stale_check_catches_an_edited_file(tmp_path: Path) -> None:
    expected = render()
    for path, text in expected.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert stale_files(tmp_path, expected) == []
    edited = "dashboards/city-air.json"
    (tmp_path / edited).write_text(expected[edited].replace('"60"', '"75"') + " ", "utf-8")
    (tmp_path / "dashboards/stray.json").write_text("{}", encoding="utf-8")
    assert stale_files(tmp_path, expected) == ["dashboards/city-air.json", "dashboards/stray.json"]


def test_datasource_template_holds_no_secret() -> None:
    for path in [*ROOT.glob("datasources/*.json"), *ROOT.glob("optional/*/datasource.json")]:
        text = path.read_text(encoding="utf-8")
        assert "secureJsonData" not in text
        assert not re.search(r"password|token|Authorization", text, re.IGNORECASE), path


# ------------------------------------------------------------------ queries vs storage


def test_every_influxql_query_uses_only_stored_names_and_values() -> None:
    queries = all_influx_queries()
    assert len(queries) > 30
    problems = {q: p for q in queries if (p := schema_problems(q))}
    assert problems == {}


def test_the_schema_check_rejects_what_storage_lacks() -> None:
    bad = [
        'SELECT mean("value") FROM "reading" WHERE $timeFilter',
        'SELECT mean("val") FROM "readings" WHERE $timeFilter',
        'SELECT mean("value") FROM "readings" WHERE "quantity" = \'pm25\'',
        'SELECT mean("value") FROM "readings" WHERE "quantity" =~ /^(pm2_5|ozone)$/',
        'SELECT mean("value") FROM "readings" WHERE $timeFilter GROUP BY "flags"',
        'SHOW TAG VALUES FROM "readings" WITH KEY = "value"',
        'SELECT "message" FROM "alerts" WHERE "event" = \'firing\'',
        'SELECT "aqi" FROM "aqi" WHERE "report" = \'hourly\'',
        'SELECT "aqi" FROM "aqi" WHERE "edition" = \'2020\'',
        'SELECT "value" FROM "windows" WHERE "window" =~ /^(day|evening)$/',
        'SELECT "tli" FROM "water_quality" WHERE "body" = \'sea\'',
        'SELECT "message" FROM "alerts" WHERE "late" = \'false\'',
        'SELECT "message" FROM "alerts" WHERE "suspect" = 0',
        'SELECT "value" FROM "windows" WHERE "valid" =~ /true/',
        'SELECT "aqi" FROM "aqi" WHERE "category" <= 100',
        'SELECT "aqi" FROM "aqi" WHERE "aqi" = true',
        'SELECT "aqi" FROM "aqi" WHERE "node" = 3',
        'SELECT "aqi" FROM "aqi" WHERE "level" > 2 AND "colour" = false',
        'SELECT "class" FROM "water_quality" WHERE "class" <= 3 AND "grade" <= 3',
    ]
    for query in bad:
        assert schema_problems(query), query


def test_the_schema_check_accepts_stored_values_of_the_right_type() -> None:
    good = [
        'SELECT "aqi" FROM "aqi" WHERE "report" = \'day\' AND "aqi" <= 100',
        'SELECT "value" FROM "windows" WHERE "window" =~ /^(day|night)$/ AND "valid" = true',
        'SELECT "message" FROM "alerts" WHERE "late" = false AND "acked_by" = \'ops\'',
        'SELECT "tli" FROM "water_quality" WHERE "body" = \'lake\' AND "class" > 3',
    ]
    for query in good:
        assert schema_problems(query) == [], query


def test_every_panel_and_target_uses_the_provisioned_datasource() -> None:
    prometheus_uid = load(ROOT / "optional/aggregator-health/datasource.json")["uid"]
    for board in dashboards():
        expected = prometheus_uid if "aggregator" in board["tags"] else influx_uid()
        for panel in board["panels"]:
            if "targets" not in panel:
                continue
            assert panel["datasource"]["uid"] == expected, panel["title"]
            assert {t["datasource"]["uid"] for t in panel["targets"]} == {expected}
        for item in [*board["templating"]["list"], *board["annotations"]["list"][1:]]:
            assert item["datasource"]["uid"] == influx_uid()


def test_panel_ids_and_dashboard_uids_are_unique() -> None:
    boards = dashboards()
    assert len({b["uid"] for b in boards}) == len(boards)
    for board in boards:
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        assert board["schemaVersion"] >= 36
        assert "id" not in board


def test_dashboards_have_site_and_node_variables() -> None:
    for board in influx_dashboards():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert set(variables) == {"site", "node"}
        assert all(v["query"].startswith("SHOW TAG VALUES") for v in variables.values())


def test_prometheus_dashboard_uses_only_aggregator_metrics() -> None:
    board = load(ROOT / "optional/aggregator-health/dashboard.json")
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    names = {n for e in exprs for n in re.findall(r"envnet_[a-z0-9_]+", e)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in names}
    exported = {family.name for family in Metrics().registry.collect()}
    assert len(families) == 5
    assert families <= exported


# ------------------------------------------------------------------ thresholds vs standards


def test_limits_table_matches_standards_md() -> None:
    table: dict[str, set[float]] = {}
    for lim in LIMITS:
        table.setdefault(lim.quantity, set()).add(lim.value)
    assert table == STANDARDS_MD


def test_noise_zone_table_matches_standards_md() -> None:
    assert {z.zone: (z.day, z.night) for z in NOISE_ZONES} == NOISE_ZONES_MD
    assert NIGHT_LMAX_MARGIN_DB == 15  # GB 3096-2008 §5.4


def test_threshold_lines_equal_the_standards_and_are_cited() -> None:
    """Reading panels carry the readings lines, window panels the limits of their window."""
    drawn: set[str] = set()
    for panel in panels_from("readings"):
        quantities = quantities_of(panel)
        if panel["type"] != "timeseries" or len(quantities) != 1:
            continue
        (quantity,) = quantities
        expected = STANDARDS_MD.get(quantity, set())
        assert threshold_values(panel) == expected, panel["title"]
        for lim in (x for x in LIMITS if x.quantity == quantity):
            assert lim.citation in panel["description"], panel["title"]
        drawn |= {quantity} if expected else set()
    assert drawn == set(STANDARDS_MD)


def test_window_limits_match_standards_md() -> None:
    table = {key: {lim.value for lim in limits} for key, limits in WINDOW_LIMITS.items()}
    assert table == WINDOW_LIMITS_MD


def test_window_panels_draw_their_window_limits_and_cite_them() -> None:
    drawn: set[tuple[str, str]] = set()
    for panel in panels_from("windows"):
        if panel["type"] != "timeseries":
            continue
        (quantity,) = quantities_of(panel)
        (window,) = tag_values_of(panel, "window")
        expected = WINDOW_LIMITS_MD.get((quantity, window), set())
        assert threshold_values(panel) == expected, panel["title"]
        citations = {
            lim.citation for k, v in WINDOW_LIMITS.items() if k == (quantity, window) for lim in v
        }
        for citation in citations:
            assert citation in panel["description"], panel["title"]
        if quantity in ("pm2_5", "pm10", "no2", "so2", "co", "o3"):
            assert "GB 3095-2026 Table 1" in panel["description"], panel["title"]
        drawn |= {(quantity, window)} if expected else set()
    assert drawn == set(WINDOW_LIMITS_MD)


def test_window_panels_show_only_valid_windows() -> None:
    panels = panels_from("windows")
    assert len(panels) >= 10
    for panel in panels:
        for query in panel_queries(panel):
            assert '"valid" = true' in query, panel["title"]


def test_aqi_panels_use_the_hj633_levels_and_colours() -> None:
    panels = [p for p in panels_from("aqi") if p["type"] == "timeseries"]
    assert {frozenset(tag_values_of(p, "report")) for p in panels} == {
        frozenset({"hour"}),
        frozenset({"day"}),
    }
    for panel in panels:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["value"], s["color"]) for s in steps] == AQI_LEVELS_MD, panel["title"]
        assert "HJ 633-2026 Table 1" in panel["description"]
    # The table cells use the same colours.
    tables = [p for p in panels_from("aqi") if p["type"] == "table"]
    cells = [o for t in tables for o in t["fieldConfig"]["overrides"]]
    assert cells
    for override in (o for o in cells if o["matcher"]["options"] == "aqi"):
        (steps,) = [p["value"]["steps"] for p in override["properties"] if p["id"] == "thresholds"]
        assert [(s["value"], s["color"]) for s in steps] == AQI_LEVELS_MD
    assert [c.hex for c in hj633.CATEGORIES] == [colour for _, colour in AQI_LEVELS_MD]


def test_good_air_stat_divides_good_days_by_all_days_with_the_target() -> None:
    (panel,) = [p for p in panels_from("aqi") if p["type"] == "stat"]
    (query,) = panel_queries(panel)
    assert "\"report\" = 'day'" in query
    indicator = re.search(r'floor\((\d+) / \("aqi" \+ (\d+)\)\) AS "good"', query)
    assert indicator is not None
    numerator, offset = map(int, indicator.groups())
    # 1 for a good day (AQI <= 100), else 0, for every AQI the aggregator can store and more.
    assert [numerator // (aqi + offset) for aqi in range(1001)] == [1] * 101 + [0] * 900
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [(None, "red"), (86, "green")]
    assert GOOD_AIR_TARGET_PERCENT == 86
    assert "UNVERIFIED" in panel["description"]
    assert panel["fieldConfig"]["defaults"]["unit"] == "percent"


def test_water_panels_show_class_target_and_tli_bounds() -> None:
    panels = {p["title"]: p for p in panels_from("water_quality")}
    classes = panels["Site class (GB 3838-2002) and target"]
    (query,) = panel_queries(classes)
    assert '"class"' in query and '"target"' in query
    defaults = classes["fieldConfig"]["defaults"]
    texts = {k: v["text"] for k, v in defaults["mappings"][0]["options"].items()}
    assert texts == {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "劣V"}
    tli = panels["Trophic level index (lakes)"]
    assert tag_values_of(tli, "body") == {"lake"}
    assert threshold_values(tli) == TLI_BOUNDS_MD
    assert "总站生字[2001]090号" in tli["description"]


def test_alert_annotations_keep_late_and_suspect_apart() -> None:
    for board in influx_dashboards():
        layers = {a["name"]: a for a in board["annotations"]["list"] if "target" in a}
        lanes = {
            name: (layer["iconColor"], layer["target"]["query"]) for name, layer in layers.items()
        }
        live = [q for colour, q in lanes.values() if colour == "red"]
        late = [q for colour, q in lanes.values() if colour == "orange"]
        suspect = [q for colour, q in lanes.values() if colour == "purple"]
        assert len(live) == len(late) == len(suspect) == 1, board["uid"]
        assert '"late" = false AND "suspect" = false' in live[0]
        assert '"late" = true' in late[0] and '"suspect"' not in late[0]
        assert '"suspect" = true' in suspect[0] and '"late"' not in suspect[0]
        assert all("\"event\" = 'fired'" in q for _, q in lanes.values())
    fleet = load(ROOT / "dashboards/alerts-fleet.json")
    (table,) = [p for p in fleet["panels"] if p["title"] == "Alert events (aggregator)"]
    (query,) = panel_queries(table)
    assert {"late", "suspect", "acked_by"} <= set(QUOTED.findall(query))
    assert "fired" not in query  # every event, live or not
    flagged = {o["matcher"]["options"] for o in table["fieldConfig"]["overrides"]}
    assert {"late", "suspect"} <= flagged


# ------------------------------------------------------------------ alert rules


def test_alert_rules_have_the_provisioning_fields() -> None:
    rules = alert_rules()
    assert {r["uid"] for r in rules} >= {"envnet-node-silent", "envnet-journal-dropped"}
    for rule in rules:
        for key in ("uid", "title", "ruleGroup", "folderUID", "condition", "data", "for"):
            assert rule[key], (rule["uid"], key)
        assert isinstance(rule["orgID"], int)
        assert rule["noDataState"] in ("NoData", "Alerting", "OK", "KeepLast")
        assert rule["execErrState"] in ("Error", "Alerting", "OK", "KeepLast")
        assert re.fullmatch(r"\d+[smhd]", rule["for"])
        ref_ids = [d["refId"] for d in rule["data"]]
        assert rule["condition"] in ref_ids
        assert len(ref_ids) == len(set(ref_ids))
        for item in rule["data"]:
            assert item["datasourceUid"] in (influx_uid(), "__expr__")
            assert set(item["relativeTimeRange"]) == {"from", "to"}
            assert item["model"]["refId"] == item["refId"]
        assert all(isinstance(v, str) for v in rule["annotations"].values())
        assert all(isinstance(v, str) for v in rule["labels"].values())


# ------------------------------------------------------------------ against a real InfluxDB 1.x


def first_result(server: Influxd, query: str) -> JSON:
    response = server.query(query, DATABASE)
    results = response["results"]
    assert isinstance(results, list)
    result: JSON = results[0]
    return result


def sample_points(now_s: int) -> str:
    """Two hours of every quantity from n1; n2 went silent 40 min ago; three alerts per quantity
    (live, late, suspect); and what the standards engine derives (windows, aqi, water_quality)."""
    minute = now_s // 60 * 60
    lines = []
    for m in range(120):
        ts = (minute - 60 * m) * 10**9
        for quantity in QUANTITIES:
            spec = SPECS[quantity]
            lines.append(
                f"readings,node=n1,site=s1,family={spec.family},quantity={quantity},sensor=s,"
                f"stat={spec.default_stat},period_s=60 value=7.0 {ts}"
            )
        if m >= 40:
            lines.append(
                "readings,node=n2,site=s1,family=water,quantity=chl_a,sensor=s,stat=mean,"
                f"period_s=60 value=12.0 {ts}"
            )
        lines.append(
            f"node_status,node=n1,site=s1 online=true,journal_depth={m}i,"
            f"journal_dropped={100 - m}i,sensors_ok=2i,sensors_failed=0i {ts}"
        )
    lanes = ("late=false,suspect=false", "late=true,suspect=false", "late=false,suspect=true")
    lines += [
        f"alerts,node=n1,site=s1,rule={quantity}.limit,kind=exceedance,severity=warning,"
        f'quantity={quantity} state="firing",event="fired",value=80.0,limit=60.0,'
        f'window_s=3600i,standard="std",clause="1",message="{quantity} high",{lane} '
        f"{(now_s - 300 - 3 * i - j) * 10**9}"
        for i, quantity in enumerate(QUANTITIES)
        for j, lane in enumerate(lanes)
    ]
    lines += [
        "alerts,node=n1,site=s1,rule=water.site.class,kind=exceedance,severity=warning "
        f'state="firing",event="acknowledged",message="Class IV",late=false,suspect=false,'
        f'acked_by="ops" {(now_s - 200) * 10**9}'
    ]
    # The inventory (measurement nodes), as the aggregator writes it for the map: n1 with its
    # location, and n2 retired (its newest point says active=false).
    lines += [
        f'nodes,node=n1,group=g1,site_type=roadside lat=31.3,lon=120.6,site="s1",active=true '
        f"{(now_s - 7200) * 10**9}",
        f'nodes,node=n2 lat=31.2,lon=120.5,site="s1",active=true {(now_s - 9000) * 10**9}',
        f"nodes,node=n2 active=false {(now_s - 7200) * 10**9}",
    ]
    return "\n".join(lines + derived_points(now_s))


# Daily AQI of n1 (2 of 4 days good: 50 %) and n3 (no good day: 0 %).
DAILY_AQI = {"n1": (40, 100, 101, 250), "n3": (180,)}


def derived_points(now_s: int) -> list[str]:
    """What the aggregator's standards engine stores, a few minutes apart within the hour."""
    at = [(now_s - 600 * k) * 10**9 for k in range(1, 6)]
    lines = [
        f"windows,node=n1,site=s1,sensor=s,quantity={quantity},window={window} "
        f"value=50.0,valid=true,hours=24i,coverage_s=86400i{noise},revision=false {at[0]}"
        for quantity, window in (*WINDOW_LIMITS_MD, ("laeq", "1h"))
        for noise in [",l10=62.0,l50=55.0,l90=48.0" if quantity == "laeq" else ""]
    ]
    lines += [
        f"aqi,node={node},site=s1,report=day,edition=2026 aqi={aqi}i,level=3i,"
        f'category="c",colour="#FF7E00",primary="pm2_5",missing="",publishable=true,'
        f"iaqi_pm2_5={aqi}i {at[k]}"
        for node, values in DAILY_AQI.items()
        for k, aqi in enumerate(values)
    ]
    lines += [
        f'aqi,node=n1,site=s1,report=hour,edition=2026 aqi=75i,level=2i,category="Good",'
        f'colour="#FFFF00",primary="o3",missing="so2",publishable=false,iaqi_o3=75i {at[0]}',
        f"water_quality,node=n1,site=s1,body=lake class=4i,target=3i,meets_target=false,"
        f'exceeding="tp:0.4",tli=55.2,trophic_state="light eutrophic" {at[0]}',
        f"water_quality,node=n2,site=s1,body=river class=2i,target=3i,meets_target=true,"
        f'exceeding="" {at[0]}',
    ]
    return lines


def write_samples(server: Influxd) -> None:
    body = sample_points(int(time.time())).encode()
    url = f"{server.url}/write?db={DATABASE}"
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def as_influx(query: str) -> str:
    """What Grafana would send: macros and 'All' variables expanded."""
    return (
        query.replace("$timeFilter", "time > now() - 6h")
        .replace("$__interval", "10m")
        .replace("$site", ".*")
        .replace("$node", ".*")
    )


@pytest.mark.integration
def test_every_query_runs_on_influxdb_1x(influxd: Influxd) -> None:
    write_samples(influxd)
    for query in all_influx_queries():
        result = first_result(influxd, as_influx(query))
        assert "error" not in result, (query, result)
        assert result.get("series"), f"no rows for: {query}"


@pytest.mark.integration
def test_good_air_share_on_influxdb_1x(influxd: Influxd) -> None:
    """The single-query share: good days / days, and 0 % (not a missing node) with none."""
    write_samples(influxd)
    board = load(ROOT / "dashboards/air-quality.json")
    (table,) = [p for p in board["panels"] if p["title"] == "Good-air days per node"]
    (query,) = panel_queries(table)
    series = first_result(influxd, as_influx(query))["series"]
    rows = {s["tags"]["node"]: dict(zip(s["columns"], s["values"][0], strict=True)) for s in series}
    expected = {
        node: (100 * sum(a <= 100 for a in values) / len(values), len(values))
        for node, values in DAILY_AQI.items()
    }
    assert {n: (r["good_air_percent"], r["days"]) for n, r in rows.items()} == expected
    assert rows["n1"]["good_days"] == 2


@pytest.mark.integration
def test_node_silent_rule_reads_zero_for_a_silent_node(influxd: Influxd) -> None:
    write_samples(influxd)
    rule = load(ROOT / "alerting/node-silent.json")
    query = rule["data"][0]["model"]["query"].replace("$timeFilter", "time > now() - 24h")
    series = first_result(influxd, query)["series"]
    last = {s["tags"]["node"]: s["values"][-1][1] for s in series}
    assert last["n2"] == 0  # the rule's threshold: fewer than 1 reading in 15 min
    assert last["n1"] >= 10


@pytest.mark.integration
def test_map_queries_on_influxdb_1x(influxd: Influxd) -> None:
    """The geomap's three queries: the current nodes with coordinates (the retired n2 left
    out), each node's newest hourly AQI for the marker colour, and its firing rules; joined
    by node, with the layer reading the columns the queries return."""
    write_samples(influxd)
    board = load(ROOT / "dashboards/map.json")
    (geomap,) = [p for p in board["panels"] if p["type"] == "geomap"]
    answers = [first_result(influxd, as_influx(q))["series"] for q in panel_queries(geomap)]
    rows = [
        {s["tags"]["node"]: dict(zip(s["columns"], s["values"][0], strict=True)) for s in series}
        for series in answers
    ]
    nodes, aqi, alerts = rows
    assert {n: (r["lat"], r["lon"], r["site"]) for n, r in nodes.items()} == {
        "n1": (31.3, 120.6, "s1")
    }
    assert {n: (r["aqi"], r["category"]) for n, r in aqi.items()} == {"n1": (75, "Good")}
    # One firing rule per quantity (three lanes of the same rule) and the acknowledged
    # water.site.class, which stays firing.
    assert {n: r["open_alerts"] for n, r in alerts.items()} == {"n1": len(QUANTITIES) + 1}

    (layer,) = geomap["options"]["layers"]
    location = layer["location"]
    assert {location["latitude"], location["longitude"]} <= set(nodes["n1"])
    assert layer["config"]["style"]["color"]["field"] in aqi["n1"]
    assert geomap["transformations"] == [
        {"id": "joinByField", "options": {"byField": "node", "mode": "outer"}}
    ]
    steps = geomap["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == AQI_LEVELS_MD
