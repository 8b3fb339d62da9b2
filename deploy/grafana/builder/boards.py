"""The envnet dashboards: city air, noise, odour, water and blooms, alerts and fleet.

Each panel shows one quantity per node at the statistic the node reports for it
(schemas/quantities.py default_stat), with the standards lines of builder/limits.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from deploy.grafana.builder import influxql as q
from deploy.grafana.builder.datasources import INFLUX, PROMETHEUS
from deploy.grafana.builder.grafana_json import (
    JSON,
    dashboard,
    influx_annotation,
    influx_target,
    limits_description,
    prometheus_target,
    query_variable,
    row,
    stat,
    table,
    text,
    timeseries,
    unit_of,
)
from deploy.grafana.builder.limits import (
    DRAWN_NOISE_ZONE,
    NIGHT_LMAX_MARGIN_DB,
    NOISE_ZONES,
    limits_for,
)
from schemas.quantities import SPECS, Family, Quantity

AIR_UID: Final = "envnet-air"
NOISE_UID: Final = "envnet-noise"
ODOUR_UID: Final = "envnet-odour"
WATER_UID: Final = "envnet-water"
FLEET_UID: Final = "envnet-fleet"
AGGREGATOR_UID: Final = "envnet-aggregator"

FLEET_READINGS_PANEL: Final = "Readings stored per node"
FLEET_DROPPED_PANEL: Final = "Journal: readings dropped (cumulative)"
FLEET_SENSORS_PANEL: Final = "Sensors failed"

_AIR_HOURLY_NOTE = (
    "Hourly means per node; the panel never plots finer than 1 h, the averaging period "
    "of the GB 3095 1-h limits. Gases at 25 °C and 1013.25 hPa (GB 3095-2026 §3.14, §4.3)."
)
_PM_NOTE = (
    "Hourly means per node at actual conditions (GB 3095-2026 §4.3). The line is the 24-h "
    "limit: compare it with the daily-mean panel; one hour above it is not an exceedance."
)
_DAILY_NOTE = (
    "Natural-day means per node in Beijing time (GB 3095-2026 §3.10). The standard also "
    "requires at least 20 hourly means for a valid day (Table 4); this panel does not check that."
)
_PRIMARY_ALERTS = (
    "The standards alerts themselves are raised by the aggregator and shown as red "
    "annotations (measurement alerts, event fired)."
)


def _variables(family: Family | None, measurement: str = "readings") -> list[JSON]:
    base = (q.equals("family", family),) if family else ()
    site = q.tag_values(measurement, "site", base)
    node = q.tag_values(measurement, "node", (*base, q.matches_variable("site", "site")))
    return [
        query_variable("site", "Site", INFLUX, site),
        query_variable("node", "Node", INFLUX, node),
    ]


def _fired_alerts(quantities: Sequence[Quantity] = ()) -> JSON:
    conditions = [q.equals("event", "fired"), *q.SITE_AND_NODE]
    if quantities:
        conditions.append(q.one_of("quantity", quantities))
    query = q.alert_events(conditions, ("message", "severity", "rule", "node"))
    name = "Alerts fired (aggregator)"
    return influx_annotation(name, INFLUX, query, "message", "severity,rule,node")


def _quantity_panel(
    quantity: Quantity,
    title: str,
    note: str,
    query: str,
    min_interval: str | None = None,
    width: int = 12,
    draw_style: str = "line",
) -> JSON:
    limits = limits_for(quantity)
    description = f"{note}\n\n{limits_description(quantity, limits)}".strip()
    return timeseries(
        title=title,
        description=description,
        datasource=INFLUX,
        targets=[influx_target(INFLUX, query)],
        unit=unit_of(quantity),
        limits=limits,
        min_interval=min_interval,
        width=width,
        draw_style=draw_style,
    )


def _hourly(quantity: Quantity, title: str, note: str = _AIR_HOURLY_NOTE) -> JSON:
    return _quantity_panel(quantity, title, note, q.reading_series(quantity), min_interval="1h")


def _daily(quantity: Quantity, title: str) -> JSON:
    query = q.reading_daily_mean(quantity)
    return _quantity_panel(quantity, title, _DAILY_NOTE, query, draw_style="bars")


def city_air() -> JSON:
    panels = [
        row("Particulate matter: 24-h limits"),
        _hourly("pm2_5", "PM2.5, hourly mean", _PM_NOTE),
        _hourly("pm10", "PM10, hourly mean", _PM_NOTE),
        _daily("pm2_5", "PM2.5, daily mean"),
        _daily("pm10", "PM10, daily mean"),
        row("Gases: 1-h limits"),
        _hourly("o3", "O3, 1-h mean"),
        _hourly("no2", "NO2, 1-h mean"),
        _hourly("so2", "SO2, 1-h mean"),
        _hourly("co", "CO, 1-h mean (mg/m³)"),
        row("Other"),
        _hourly("tvoc", "TVOC, hourly mean", "Hourly means per node. GB 3095 sets no TVOC limit."),
    ]
    return dashboard(
        uid=AIR_UID,
        title="envnet · City air",
        description=(
            "PM2.5, PM10, O3, NO2, SO2, CO per node, with GB 3095-2026 transition Grade II "
            f"limits (Class 2 zones). {_PRIMARY_ALERTS}"
        ),
        tags=["envnet", "air"],
        panels=panels,
        variables=_variables("air"),
        annotations=[_fired_alerts(("pm2_5", "pm10", "o3", "no2", "so2", "co", "tvoc"))],
        time_from="now-7d",
    )


def _noise_zone_table() -> str:
    lines = [
        "GB 3096-2008 Table 1, L_Aeq limits in dB(A). Day 06:00-22:00, night 22:00-06:00 "
        "(§3.4). At night L_max may exceed the night limit by at most "
        f"{NIGHT_LMAX_MARGIN_DB:g} dB(A) (§5.4).",
        "",
        "| Zone | Area | Day | Night | Night L_max |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {z.zone} | {z.area} | {z.day:g} | {z.night:g} | {z.night + NIGHT_LMAX_MARGIN_DB:g} |"
        for z in NOISE_ZONES
    ]
    lines += [
        "",
        f"The panels draw the Class {DRAWN_NOISE_ZONE} lines, typical of mixed urban sites; "
        "Suzhou's zoning map was not checked. The aggregator applies each node's own zone.",
    ]
    return "\n".join(lines)


def noise() -> JSON:
    laeq_note = (
        "Hourly L_Aeq per node, energy-averaged (10·lg of the mean of 10^(L/10)); an "
        "arithmetic mean of dB understates noise. GB 3096 assesses whole day and night "
        "periods; comparing hourly values with the limits is common practice."
    )
    lamax_note = "Highest L_Amax per node in each hour."
    panels = [
        _quantity_panel("laeq", "L_Aeq, hourly", laeq_note, q.reading_energy_mean("laeq"), "1h"),
        _quantity_panel("lamax", "L_Amax, hourly maximum", lamax_note, _max("lamax"), "1h"),
        text("GB 3096-2008 limits by zone", _noise_zone_table(), width=24, height=9),
    ]
    return dashboard(
        uid=NOISE_UID,
        title="envnet · Noise",
        description=f"L_Aeq and L_Amax per node with GB 3096-2008 limits. {_PRIMARY_ALERTS}",
        tags=["envnet", "noise"],
        panels=panels,
        variables=_variables("noise"),
        annotations=[_fired_alerts(("laeq", "lamax"))],
    )


def _max(quantity: Quantity) -> str:
    return q.reading_series(quantity, aggregate="max")


def odour() -> JSON:
    note = (
        "Highest of the reported means per node in each interval, so short peaks that cause "
        "complaints are not averaged away. GB 14554-93 Table 1 limits apply at the plant "
        "boundary of fugitive sources; gases in µg/m³ (the standard's mg/m³ ×1000)."
    )
    panels = [
        _quantity_panel("h2s", "H2S", note, _max("h2s"), width=8),
        _quantity_panel("nh3", "NH3", note, _max("nh3"), width=8),
        _quantity_panel("odour", "Odour concentration", note, _max("odour"), width=8),
    ]
    return dashboard(
        uid=ODOUR_UID,
        title="envnet · Odour",
        description=f"H2S, NH3 and odour concentration per node. {_PRIMARY_ALERTS}",
        tags=["envnet", "odour"],
        panels=panels,
        variables=_variables("odour"),
        annotations=[_fired_alerts(("h2s", "nh3", "odour"))],
    )


def _water(quantity: Quantity, title: str, note: str, width: int = 8) -> JSON:
    return _quantity_panel(quantity, title, note, q.reading_series(quantity), width=width)


def water() -> JSON:
    quality = (
        "Means per node. Lines at the GB 3838-2002 Class III limits, the boundary of "
        "'good' water (Classes I-III). Taihu is a lake: use the lake values for TP and TN."
    )
    bloom = (
        "Means per node. Lines at the WHO 1999/2003 chlorophyll-a guidance levels for "
        "recreational water; the aggregator raises the bloom alerts."
    )
    phycocyanin = (
        "Means per node. No published Chinese or WHO phycocyanin threshold was found "
        "(UNVERIFIED): calibrate locally against cell counts or chlorophyll-a."
    )
    panels = [
        row("Water quality: GB 3838-2002"),
        _water("do", "Dissolved oxygen", quality),
        _water("ph", "pH", quality),
        _water("codmn", "Permanganate index (CODMn)", quality),
        _water("nh3_n", "Ammonia nitrogen (NH3-N)", quality),
        _water("tp", "Total phosphorus", quality),
        _water("tn", "Total nitrogen", quality),
        row("Blue-green algae"),
        _water("chl_a", "Chlorophyll-a", bloom, width=12),
        _water("phycocyanin", "Phycocyanin", phycocyanin, width=12),
        row("Physical"),
        _water("water_temp", "Water temperature", "Means per node."),
        _water("turbidity", "Turbidity", "Means per node."),
        _water("conductivity", "Conductivity", "Means per node."),
    ]
    return dashboard(
        uid=WATER_UID,
        title="envnet · Water & blooms",
        description=(
            "Rivers and Taihu: DO, pH, CODMn, NH3-N, TP, TN with GB 3838-2002 Class III "
            f"lines; chlorophyll-a with WHO levels; phycocyanin. {_PRIMARY_ALERTS}"
        ),
        tags=["envnet", "water"],
        panels=panels,
        variables=_variables("water"),
        annotations=[_fired_alerts(_family_quantities("water"))],
        time_from="now-7d",
    )


def _family_quantities(family: Family) -> tuple[Quantity, ...]:
    return tuple(name for name, spec in SPECS.items() if spec.family == family)


def _status_series(field: str, title: str, description: str) -> JSON:
    target = influx_target(INFLUX, q.status_series(field))
    return timeseries(title, description, INFLUX, [target], "short")


def _readings_per_node() -> JSON:
    description = (
        "Readings stored per node and interval, all quantities. A node at zero is silent; "
        "Grafana alert 'envnet: node sent no readings for 15 min' watches for that."
    )
    target = influx_target(INFLUX, q.readings_per_node())
    return timeseries(FLEET_READINGS_PANEL, description, INFLUX, [target], "short", width=24)


def _alerts_by_severity() -> JSON:
    target = influx_target(INFLUX, q.count_alerts_fired("severity"), alias="$tag_severity")
    description = "Alerts the aggregator fired in the selected time range, by severity."
    return stat("Alerts fired, by severity", description, INFLUX, [target])


def _grafana_alert_list() -> JSON:
    return {
        "type": "alertlist",
        "title": "Grafana second-line alerts",
        "description": "State of the Grafana-managed rules in deploy/grafana/alerting/.",
        "gridPos": {"h": 5, "w": 12},
        "options": {
            "viewMode": "list",
            "groupMode": "default",
            "maxItems": 20,
            "sortOrder": 1,
            "dashboardAlerts": False,
            "alertInstanceLabelFilter": '{envnet="fleet"}',
            "stateFilter": {
                "firing": True,
                "pending": True,
                "noData": True,
                "error": True,
                "normal": False,
            },
        },
    }


_ALERT_COLUMNS: Final = (
    "site", "node", "event", "severity", "kind", "rule", "quantity",
    "value", "limit", "window_s", "standard", "clause", "message", "late",
)  # fmt: skip
_STATUS_FIELDS: Final = (
    "online", "journal_depth", "journal_dropped", "sensors_ok", "sensors_failed",
)  # fmt: skip


def _online_mapping() -> JSON:
    return {
        "matcher": {"id": "byName", "options": "online"},
        "properties": [
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "value",
                        "options": {
                            "true": {"text": "online", "color": "green", "index": 0},
                            "false": {"text": "offline", "color": "red", "index": 1},
                        },
                    }
                ],
            },
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ],
    }


def _severity_colours() -> JSON:
    return {
        "matcher": {"id": "byName", "options": "severity"},
        "properties": [
            {
                "id": "mappings",
                "value": [
                    {
                        "type": "value",
                        "options": {
                            "critical": {"color": "red", "index": 0},
                            "warning": {"color": "orange", "index": 1},
                            "info": {"color": "blue", "index": 2},
                        },
                    }
                ],
            },
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ],
    }


def fleet() -> JSON:
    alert_query = q.alert_events(q.SITE_AND_NODE, _ALERT_COLUMNS)
    status_query = q.node_status_latest(_STATUS_FIELDS)
    panels = [
        _alerts_by_severity(),
        _grafana_alert_list(),
        table(
            "Alert events (aggregator)",
            "Every fired and resolved transition, newest first. 'late' marks alerts raised "
            "from backlog data after an outage: recorded at their true time, not paged.",
            INFLUX,
            [influx_target(INFLUX, alert_query, alias=None, result_format="table")],
            overrides=[_severity_colours()],
        ),
        table(
            "Node status (latest in range)",
            "Last status each node published in the selected range.",
            INFLUX,
            [influx_target(INFLUX, status_query, alias=None, result_format="table")],
            height=8,
            overrides=[_online_mapping()],
        ),
        _readings_per_node(),
        _status_series(
            "journal_depth",
            "Journal depth",
            "Readings each node holds that the aggregator has not acknowledged yet.",
        ),
        _status_series(
            "journal_dropped",
            FLEET_DROPPED_PANEL,
            "Readings a node discarded because its journal hit its age or size bound. "
            "Any increase is data lost for good.",
        ),
        _status_series(
            "sensors_failed",
            FLEET_SENSORS_PANEL,
            "Sensors each node reports as failed.",
        ),
        _status_series("sensors_ok", "Sensors OK", "Sensors each node reports as working."),
    ]
    return dashboard(
        uid=FLEET_UID,
        title="envnet · Alerts & fleet",
        description="Aggregator alerts, Grafana second-line alerts and node health.",
        tags=["envnet", "fleet"],
        panels=panels,
        variables=_variables(None, "node_status"),
        annotations=[_fired_alerts()],
    )


def _prom(title: str, description: str, exprs: Sequence[tuple[str, str]], unit: str) -> JSON:
    targets = [
        prometheus_target(PROMETHEUS, expr, legend, ref_id=chr(ord("A") + i))
        for i, (expr, legend) in enumerate(exprs)
    ]
    return timeseries(title, description, PROMETHEUS, targets, unit)


def aggregator_health() -> JSON:
    """Optional: needs Prometheus scraping the aggregator's /metrics endpoint."""
    rate = "[$__rate_interval]"
    latency = "sum by (le) (rate(envnet_write_latency_seconds_bucket" + rate + "))"
    panels = [
        _prom(
            "Messages received and readings stored",
            "Per second, all aggregator instances.",
            [
                (f"sum(rate(envnet_messages_received_total{rate}))", "messages"),
                (f"sum(rate(envnet_readings_stored_total{rate}))", "readings stored"),
            ],
            "reqps",
        ),
        _prom(
            "Refused, by reason",
            "Messages refused per second, by reason.",
            [(f"sum by (reason) (rate(envnet_refused_total{rate}))", "{{reason}}")],
            "reqps",
        ),
        _prom(
            "InfluxDB write latency",
            "Quantiles of the write latency histogram.",
            [
                (f"histogram_quantile(0.5, {latency})", "p50"),
                (f"histogram_quantile(0.95, {latency})", "p95"),
                (f"histogram_quantile(0.99, {latency})", "p99"),
            ],
            "s",
        ),
        _prom(
            "Queue depth",
            "Readings accepted and not yet stored.",
            [("max by (instance) (envnet_queue_depth)", "{{instance}}")],
            "short",
        ),
    ]
    return dashboard(
        uid=AGGREGATOR_UID,
        title="envnet · Aggregator health (optional)",
        description="Prometheus metrics of the aggregator process. Optional: needs Prometheus.",
        tags=["envnet", "aggregator"],
        panels=panels,
        refresh="30s",
        time_from="now-6h",
    )
