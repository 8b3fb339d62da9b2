"""Every InfluxQL query of the Grafana assets runs on a real InfluxDB 1.x (the `influxd` fixture)
and returns rows for sample data."""

from __future__ import annotations

import time
import urllib.request

from deploy.grafana.builder.__main__ import ROOT
from schemas.quantities import QUANTITIES, SPECS
from simulators.local_stack import Influxd
from tests.unit.deploy.grafana.test_assets import (
    AQI_LEVELS_MD,
    JSON,
    WINDOW_LIMITS_MD,
    all_influx_queries,
    load,
    panel_queries,
)

DATABASE = "envnet"  # the database the conftest `influxd` fixture creates


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


def test_every_query_runs_on_influxdb_1x(influxd: Influxd) -> None:
    write_samples(influxd)
    for query in all_influx_queries():
        result = first_result(influxd, as_influx(query))
        assert "error" not in result, (query, result)
        assert result.get("series"), f"no rows for: {query}"


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


def test_node_silent_rule_reads_zero_for_a_silent_node(influxd: Influxd) -> None:
    write_samples(influxd)
    rule = load(ROOT / "alerting/node-silent.json")
    query = rule["data"][0]["model"]["query"].replace("$timeFilter", "time > now() - 24h")
    series = first_result(influxd, query)["series"]
    last = {s["tags"]["node"]: s["values"][-1][1] for s in series}
    assert last["n2"] == 0  # the rule's threshold: fewer than 1 reading in 15 min
    assert last["n1"] >= 10


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
