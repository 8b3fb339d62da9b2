"""The Grafana assets under deploy/grafana/ are fresh, consistent with storage and standards.

Every InfluxQL query (panels, annotations, variables, alert rules) may name only measurements,
tags and fields of aggregator.storage_schema, and only tag values of the contract's vocabularies.
Threshold lines must equal the standards numbers. They are restated here from
../shared/standards.md as an independent check of aggregator/standards/, which
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
from aggregator.storage_schema import MEASUREMENTS
from deploy.grafana.builder.__main__ import ROOT, stale_files
from deploy.grafana.builder.assets import render
from deploy.grafana.builder.limits import LIMITS, NIGHT_LMAX_MARGIN_DB, NOISE_ZONES
from envnet.services import Influxd
from schemas.messages import AlertEvent, AlertKind, Severity
from schemas.quantities import QUANTITIES, SPECS, STATISTICS, Family

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
    fields = {f for m in measurements for f in MEASUREMENTS[m].fields}
    aliases = set(ALIAS.findall(query))
    problems = [
        f"unknown name {name!r}"
        for name in QUOTED.findall(query)
        if name not in tags | fields | aliases | set(measurements)
    ]
    for key, _op, value in COMPARISON.findall(query):
        problems += value_problems(key, value, tags | fields)
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
    ]
    for query in bad:
        assert schema_problems(query), query


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
    drawn: set[str] = set()
    for board in influx_dashboards():
        for panel in board["panels"]:
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
    """Two hours of every quantity from n1; n2 went silent 40 min ago; one alert each."""
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
    lines += [
        f"alerts,node=n1,site=s1,rule={quantity}.limit,kind=exceedance,severity=warning,"
        f'quantity={quantity} state="firing",event="fired",value=80.0,limit=60.0,'
        f'window_s=3600i,standard="std",clause="1",message="{quantity} high",late=false '
        f"{(now_s - 300 - i) * 10**9}"
        for i, quantity in enumerate(QUANTITIES)
    ]
    return "\n".join(lines)


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
def test_node_silent_rule_reads_zero_for_a_silent_node(influxd: Influxd) -> None:
    write_samples(influxd)
    rule = load(ROOT / "alerting/node-silent.json")
    query = rule["data"][0]["model"]["query"].replace("$timeFilter", "time > now() - 24h")
    series = first_result(influxd, query)["series"]
    last = {s["tags"]["node"]: s["values"][-1][1] for s in series}
    assert last["n2"] == 0  # the rule's threshold: fewer than 1 reading in 15 min
    assert last["n1"] >= 10
