"""The envnet dashboards: city air, air quality (HJ 633), noise, odour, water and blooms,
alerts and fleet.

Reading panels show one quantity per node at the statistic the node reports for it
(schemas/quantities.py default_stat), with the standards lines of builder/limits.py. Standards
panels show what the aggregator derived and stored: closed windows (`windows`), AQI (`aqi`) and
water site evaluations (`water_quality`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from deploy.grafana.builder import influxql as q
from deploy.grafana.builder.datasources import ALERTMANAGER_NAME, INFLUX, PROMETHEUS
from deploy.grafana.builder.grafana_json import (
    JSON,
    band_thresholds,
    dashboard,
    geomap_markers,
    influx_annotation,
    influx_target,
    join_by_field,
    limits_description,
    prometheus_target,
    query_variable,
    row,
    stat,
    table,
    text,
    timeseries,
    unit_of,
    value_text,
)
from deploy.grafana.builder.limits import (
    AQI_BANDS,
    AQI_CITATION,
    DRAWN_NOISE_ZONE,
    GOOD_AIR_MAX_AQI,
    GOOD_AIR_TARGET_PERCENT,
    NIGHT_LMAX_MARGIN_DB,
    NOISE_ZONES,
    TLI_BANDS,
    TLI_CITATION,
    limits_for,
    window_limits_for,
)
from schemas.quantities import SPECS, Family, Quantity
from schemas.standards import gb3838
from schemas.storage import WindowKind

# The alert rules link to the fleet dashboard's panels.
FLEET_UID: Final = "envnet-fleet"

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
    "requires at least 20 hourly means for a valid day (Table 4); this panel does not check that. "
    "The Air quality (HJ 633) dashboard shows the aggregator's valid daily means."
)
_PRIMARY_ALERTS = (
    "The standards alerts themselves are raised by the aggregator and shown as red "
    "annotations (measurement alerts, event fired, live); alerts found late in backlog data "
    "(orange) and alerts from a sensor judged unhealthy (purple) are separate layers, "
    "because they were not paged."
)
AIR_POLLUTANTS: Final[tuple[Quantity, ...]] = ("pm2_5", "pm10", "o3", "no2", "so2", "co")


def _family_board(
    family: Family,
    title: str,
    about: str,
    panels: Sequence[JSON],
    alerts_on: Sequence[Quantity],
    alert_rules: Sequence[str] = (),
    time_from: str = "now-24h",
) -> JSON:
    """The dashboard of one family's readings (envnet-FAMILY), for the selected sites and
    nodes, with the aggregator's alerts on `alerts_on` and `alert_rules` as annotations."""
    return dashboard(
        uid=f"envnet-{family}",
        title=f"envnet · {title}",
        description=f"{about} {_PRIMARY_ALERTS}",
        tags=["envnet", family],
        panels=panels,
        variables=_variables(family),
        annotations=_fired_alerts(alerts_on, alert_rules),
        time_from=time_from,
    )


def _variables(family: Family | None, measurement: str = "readings") -> list[JSON]:
    base = (q.equals("family", family),) if family else ()
    site = q.tag_values(measurement, "site", base)
    node = q.tag_values(measurement, "node", (*base, q.matches_variable("site", "site")))
    return [
        query_variable("site", "Site", INFLUX, site),
        query_variable("node", "Node", INFLUX, node),
    ]


def _rows_table(
    title: str,
    description: str,
    query: str,
    width: int = 24,
    height: int = 9,
    overrides: Sequence[JSON] = (),
) -> JSON:
    """A table of the rows an InfluxQL query returns, under the query's column names."""
    target = influx_target(INFLUX, query, alias=None, result_format="table")
    return table(title, description, [target], width=width, height=height, overrides=overrides)


def _fired_alerts(quantities: Sequence[Quantity] = (), rules: Sequence[str] = ()) -> list[JSON]:
    """Three annotation layers of the aggregator's fired alerts: live ones (those the webhooks
    receive), and apart from them the late (backlog data) and suspect (unhealthy sensor) ones,
    which are recorded but never paged."""
    conditions = [q.equals("event", "fired"), *q.SITE_AND_NODE]
    scope = [q.one_of("quantity", quantities)] if quantities else []
    scope += [q.equals("rule", rule) for rule in rules]
    if scope:
        conditions.append(q.any_of(*scope) if len(scope) > 1 else scope[0])
    columns, tags = ("message", "severity", "rule", "node"), "severity,rule,node"
    live = (q.bool_equals("late", False), q.bool_equals("suspect", False))
    layers = (
        ("Alerts fired (aggregator, live)", live, "red"),
        ("Late alerts (backlog data, not paged)", (q.bool_equals("late", True),), "orange"),
        (
            "Suspect alerts (unhealthy sensor, not paged)",
            (q.bool_equals("suspect", True),),
            "purple",
        ),
    )
    return [
        influx_annotation(
            name, INFLUX, q.alert_events([*conditions, *lane], columns), "message", tags, colour
        )
        for name, lane, colour in layers
    ]


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
    about = (
        "PM2.5, PM10, O3, NO2, SO2, CO per node, with GB 3095-2026 transition Grade II "
        "limits (Class 2 zones)."
    )
    alerts_on = (*AIR_POLLUTANTS, "tvoc")
    return _family_board("air", "City air", about, panels, alerts_on, time_from="now-7d")


_WINDOW_ALIAS: Final = "$tag_node ($tag_sensor)"
_DAILY_WINDOW_NOTE = (
    "Valid natural-day means as the aggregator computed them (measurement windows, window "
    "24h, valid = true: at least 20 valid hourly means, GB 3095-2026 §3.10 and Table 4; "
    "[alerts.windows] min_daily_hours), per "
    "node and sensor at the start of the local day. A day revised by late data replaces the "
    "first value. The daily AQI is computed from these means and the O3 MDA8."
)
_MDA8_NOTE = (
    "O3 daily maximum 8-h mean (MDA8, GB 3095-2026 §3.9) as the aggregator computed it: the "
    "highest 8-h mean of the local day, each valid with at least 6 hourly means (Table 4). "
    "Which 8-h windows count, and how many must be valid, is UNVERIFIED (HJ 663 not read): by "
    "default those ending 08:00-24:00, at least 14 of them ([alerts.windows] "
    "mda8_first_end_hour, mda8_last_end_hour, min_mda8_windows)."
)


def _aqi_scale() -> str:
    lines = [f"Levels and colours, {AQI_CITATION} (AQI 1-500; HJ 633-2012 from 0):", ""]
    starts = [band.start for band in AQI_BANDS]
    ends = [None if start is None else start - 1 for start in starts[1:]] + [None]
    for band, start, end in zip(AQI_BANDS, starts, ends, strict=True):
        if start is None:
            span = f"up to {end:g}"
        else:
            span = f"{start:g} and above" if end is None else f"{start:g}-{end:g}"
        lines.append(f"- AQI {span}: {band.label}, {band.colour}")
    return "\n".join(lines)


def _aqi_panel(title: str, note: str, query: str, min_interval: str | None, bars: bool) -> JSON:
    return timeseries(
        title=title,
        description=f"{note}\n\n{_aqi_scale()}",
        targets=[influx_target(INFLUX, query)],
        unit="none",
        min_interval=min_interval,
        draw_style="bars" if bars else "line",
        steps=band_thresholds(AQI_BANDS),
        thresholds_style="line+area",
        defaults={"min": 0, "decimals": 0},
    )


def _aqi_cells(column: str = "aqi") -> JSON:
    """Colour a table's AQI cells in their HJ 633 category colour."""
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "thresholds", "value": band_thresholds(AQI_BANDS)},
            {"id": "color", "value": {"mode": "thresholds"}},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
        ],
    }


_AQI_DAY_COLUMNS: Final = (
    "site", "node", "edition", "aqi", "category", "primary", "missing", "publishable",
    "iaqi_pm2_5", "iaqi_pm10", "iaqi_o3", "iaqi_no2", "iaqi_so2", "iaqi_co",
)  # fmt: skip
_AQI_LATEST_FIELDS: Final = ("aqi", "category", "primary", "missing", "publishable")
_GOOD_AIR_NOTE = (
    f"Share of days in the selected range whose daily AQI (report day) is at most "
    f"{GOOD_AIR_MAX_AQI}, levels I and II (优良天数, {AQI_CITATION}), per node. Every day with a "
    "stored daily AQI counts, including days whose AQI was computed without some pollutants "
    "(see missing and publishable in the daily table; HJ 633-2026 §5.3 publishes such an "
    f"AQI only above 100). Green at the programme target of {GOOD_AIR_TARGET_PERCENT:g} % or "
    "more: that target is from the Suzhou programme brief, not from a standard (UNVERIFIED); "
    "it is set in deploy/grafana/builder/limits.py."
)


def _good_air() -> list[JSON]:
    steps = {
        "mode": "absolute",
        "steps": [
            {"color": "red", "value": None},
            {"color": "green", "value": GOOD_AIR_TARGET_PERCENT},
        ],
    }
    share = influx_target(INFLUX, q.good_air_share(GOOD_AIR_MAX_AQI))
    counts = q.good_air_share(GOOD_AIR_MAX_AQI, with_counts=True)
    return [
        stat(
            "Good-air days (优良天数), share of days",
            _GOOD_AIR_NOTE,
            [share],
            width=12,
            height=6,
            unit="percent",
            steps=steps,
            decimals=1,
        ),
        _rows_table(
            "Good-air days per node",
            f"The same count as the share: good days, days with a daily AQI, and the share. "
            f"{_GOOD_AIR_NOTE}",
            counts,
            width=12,
            height=6,
        ),
    ]


def _window_panel(quantity: Quantity, window: WindowKind, title: str, note: str) -> JSON:
    limits = window_limits_for(quantity, window)
    target = influx_target(INFLUX, q.window_values(quantity, window), alias=_WINDOW_ALIAS)
    return timeseries(
        title=title,
        description=f"{note}\n\n{limits_description(quantity, limits)}".strip(),
        targets=[target],
        unit=unit_of(quantity),
        limits=limits,
        width=8,
        draw_style="bars",
    )


def air_quality() -> JSON:
    hourly_note = (
        "Real-time (hourly) AQI per node, HJ 633-2026 (docs/standards.md §2.4): from the six valid "
        "1-h means, PM read on the daily breakpoints; with pollutants missing, from the "
        "others (§5.3). The highest hour per node in each plotted interval. Hours before "
        "2026-03-01 (judged by HJ 633-2012, the edition then in force) have none, nor any "
        "hour with air_edition 2012: HJ 633-2012's real-time AQI needs 24-h sliding PM "
        "means, which envnet does not compute."
    )
    daily_note = (
        "Daily AQI per node, by the HJ 633 edition in force on the day (HJ 633-2012 before "
        "2026-03-01; the edition column of the table below): from the valid daily means of "
        "SO2, NO2, CO, PM10, PM2.5 and the O3 MDA8 (row below), at the start of the local day."
    )
    day_table = q.aqi_rows("day", _AQI_DAY_COLUMNS)
    latest = q.aqi_latest("hour", _AQI_LATEST_FIELDS)
    panels = [
        row("Air Quality Index, HJ 633-2026"),
        _aqi_panel("AQI, hourly (real-time)", hourly_note, q.aqi_series("hour"), "1h", False),
        _aqi_panel("AQI, daily", daily_note, q.aqi_values("day"), None, True),
        *_good_air(),
        _rows_table(
            "Daily AQI and primary pollutant",
            "Each daily AQI, newest first: category, primary pollutant (named only when AQI > "
            "50, docs/standards.md §2.2), pollutants missing that day, whether HJ 633-2026 §5.3 "
            "lets it be published, and the IAQI of each pollutant.",
            day_table,
            overrides=[_aqi_cells()],
        ),
        _rows_table(
            "Latest hourly AQI per node",
            "The newest real-time AQI of each node in the selected range.",
            latest,
            height=7,
            overrides=[_aqi_cells()],
        ),
        row("GB 3095-2026: valid daily means and O3 MDA8 (the daily AQI's inputs)"),
        _window_panel("pm2_5", "24h", "PM2.5, valid daily mean", _DAILY_WINDOW_NOTE),
        _window_panel("pm10", "24h", "PM10, valid daily mean", _DAILY_WINDOW_NOTE),
        _window_panel("o3", "mda8", "O3, MDA8", _MDA8_NOTE),
        _window_panel("no2", "24h", "NO2, valid daily mean", _DAILY_WINDOW_NOTE),
        _window_panel("so2", "24h", "SO2, valid daily mean", _DAILY_WINDOW_NOTE),
        _window_panel("co", "24h", "CO, valid daily mean (mg/m³)", _DAILY_WINDOW_NOTE),
    ]
    return dashboard(
        uid="envnet-aqi",
        title="envnet · Air quality (HJ 633)",
        description=(
            "HJ 633-2026 hourly and daily AQI per node with the category colours, primary "
            "pollutants and the share of good-air days; the valid daily means and O3 MDA8 the "
            "daily AQI is computed from, with GB 3095-2026 transition Grade II limits. All "
            f"values as the aggregator computed and stored them. {_PRIMARY_ALERTS}"
        ),
        tags=["envnet", "air", "aqi"],
        panels=panels,
        variables=_variables(None, "aqi"),
        annotations=_fired_alerts(AIR_POLLUTANTS, ("aqi.hour", "aqi.day")),
        time_from="now-30d",
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
        *_noise_periods(),
    ]
    about = (
        "L_Aeq and L_Amax per node, and the aggregator's day and night levels L_d and L_n "
        "with L10, L50 and L90, with GB 3096-2008 limits."
    )
    return _family_board("noise", "Noise", about, panels, ("laeq", "lamax"), time_from="now-7d")


_PERIOD_NOTE = (
    "{name} as the aggregator computed it (measurement windows, window {window}, valid = "
    "true): the energy mean of the period's valid hourly L_Aeq (GB 3096-2008 §3.3, §3.4), "
    "valid by default with at least {hours} of its hours (an envnet choice, [alerts.windows] "
    "min_{window}_hours), per node and sensor at the "
    "period's start; a night belongs to the date it starts on. These are the quantities GB "
    "3096 limits. The line is for Class {zone}; the aggregator applies each node's own zone."
)
_PERCENTILE_COLUMNS: Final = (
    "site",
    "node",
    "sensor",
    "window",
    "value",
    "l10",
    "l50",
    "l90",
    "hours",
)


def _noise_period(window: WindowKind, title: str, name: str, hours: str) -> JSON:
    limits = window_limits_for("laeq", window)
    note = _PERIOD_NOTE.format(name=name, window=window, hours=hours, zone=DRAWN_NOISE_ZONE)
    target = influx_target(INFLUX, q.window_values("laeq", window), alias=_WINDOW_ALIAS)
    return timeseries(
        title=title,
        description=f"{note}\n\n{limits_description('laeq', limits)}",
        targets=[target],
        unit=unit_of("laeq"),
        limits=limits,
        draw_style="bars",
    )


def _noise_periods() -> list[JSON]:
    percentiles = q.window_values("laeq", "1h", ("l10", "l50", "l90"))
    rows = q.window_rows("laeq", ("day", "night"), _PERCENTILE_COLUMNS)
    percentile_note = (
        "Percentile levels of each valid hour per node and sensor: L10 (exceeded 10 % of the "
        "time, the peaks), L50 (the median) and L90 (the background). They are percentiles of "
        "the readings' values: with readings longer than 1 s they understate the spread of "
        "the underlying levels. GB 3096-2008 sets no limit for them."
    )
    return [
        row("GB 3096-2008 day and night levels (aggregator windows)"),
        _noise_period("day", "L_d, day (06-22 h)", "The day level L_d", "12 of 16"),
        _noise_period("night", "L_n, night (22-06 h)", "The night level L_n", "6 of 8"),
        timeseries(
            "L10, L50, L90, hourly",
            percentile_note,
            [influx_target(INFLUX, percentiles, alias="$tag_node ($tag_sensor) $col")],
            unit_of("laeq"),
            width=24,
        ),
        _rows_table(
            "Day and night periods: L_d, L_n and percentile levels",
            "Each valid day and night period, newest first: value is L_d (window day) or L_n "
            "(window night); L10, L50 and L90 of the period; hours is the number of valid "
            "hourly values it was computed from.",
            rows,
            height=8,
        ),
    ]


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
    about = "H2S, NH3 and odour concentration per node."
    return _family_board("odour", "Odour", about, panels, ("h2s", "nh3", "odour"))


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
        *_water_sites(),
        row("Physical"),
        _water("water_temp", "Water temperature", "Means per node."),
        _water("turbidity", "Turbidity", "Means per node."),
        _water("conductivity", "Conductivity", "Means per node."),
    ]
    about = (
        "Rivers and Taihu: DO, pH, CODMn, NH3-N, TP, TN with GB 3838-2002 Class III "
        "lines; chlorophyll-a with WHO levels; phycocyanin; the aggregator's site class "
        "against each node's target, and the TLI of lakes."
    )
    alerts_on = _family_quantities("water")
    rules = ("water.site.class",)
    return _family_board("water", "Water & blooms", about, panels, alerts_on, rules, "now-7d")


_WATER_LATEST: Final = ("class", "target", "meets_target", "exceeding", "tli", "trophic_state")


def _class_names() -> JSON:
    """Water class numbers as GB 3838-2002 writes them: 1-5 as I-V, 6 as 劣V (worse than V)."""
    names = {c: gb3838.class_name(c) for c in range(1, gb3838.WORSE_THAN_V + 1)}
    return value_text(names)


def _dashed(pattern: str) -> JSON:
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
    }


def _met_colours() -> JSON:
    meets = {"text": "meets target", "color": "green"}
    worse = {"text": "worse than target", "color": "red"}
    return _mapped_cells("meets_target", {"true": meets, "false": worse}, "color-text")


def _mapped_cells(column: str, texts: dict[str, JSON], cell_type: str) -> JSON:
    """A table column whose values show as the given texts and colours, in cells of
    `cell_type` (color-text, color-background)."""
    options = {value: {**text, "index": i} for i, (value, text) in enumerate(texts.items())}
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "mappings", "value": [{"type": "value", "options": options}]},
            {"id": "custom.cellOptions", "value": {"type": cell_type}},
        ],
    }


def _water_sites() -> list[JSON]:
    class_note = (
        "Each site's GB 3838-2002 class as the aggregator evaluated it (measurement "
        "water_quality): the single-factor class of its worst parameter among the latest "
        "values (GB 3838-2002 §5.1, 环办[2011]22号), 1-5 for I-V and 6 for 劣V (worse than V); "
        "the worst class per node in each plotted interval. The dashed line is the node's "
        "target class from the fleet inventory: above it the site is worse than its target."
    )
    tli_note = (
        "Trophic level index TLI(Σ) of lake sites (body lake) per node, "
        f"{TLI_CITATION} (docs/standards.md §6.3), from the latest chlorophyll-a, TP, TN, SD and "
        "CODMn available. Lines at the state boundaries: below 30 oligotrophic, 30-50 "
        "mesotrophic, 50-60 light, 60-70 moderate, above 70 hypereutrophic (on which side of "
        "50, 60 and 70 a boundary value falls is MEDIUM confidence there). Colours are envnet's."
    )
    classes = influx_target(INFLUX, q.water_class_series(), alias="$tag_node $col")
    latest = q.water_latest(_WATER_LATEST)
    return [
        row("Site class and trophic state (aggregator)"),
        timeseries(
            "Site class (GB 3838-2002) and target",
            class_note,
            [classes],
            "none",
            custom={"lineInterpolation": "stepAfter"},
            defaults={
                "min": 1,
                "max": gb3838.WORSE_THAN_V,
                "decimals": 0,
                "mappings": [_class_names()],
            },
            overrides=[_dashed(" target$")],
        ),
        timeseries(
            "Trophic level index (lakes)",
            tli_note,
            [influx_target(INFLUX, q.lake_tli_series())],
            "none",
            steps=band_thresholds(TLI_BANDS),
        ),
        _rows_table(
            "Site evaluation (latest in range)",
            "Latest values per site: class and target (6 = 劣V), whether it meets the target, "
            "the exceeding items with their exceedance multiples, and for lakes the TLI and "
            "trophic state. Each column is its own latest value.",
            latest,
            height=7,
            overrides=[_met_colours(), _value_names("class"), _value_names("target")],
        ),
    ]


def _value_names(column: str) -> JSON:
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [{"id": "mappings", "value": [_class_names()]}],
    }


def _family_quantities(family: Family) -> tuple[Quantity, ...]:
    return tuple(name for name, spec in SPECS.items() if spec.family == family)


def _status_series(field: str, title: str, description: str) -> JSON:
    target = influx_target(INFLUX, q.status_series(field))
    return timeseries(title, description, [target], "short")


def _readings_per_node() -> JSON:
    description = (
        "Readings stored per node and interval, all quantities. A node at zero is silent; "
        "Grafana alert 'envnet: node sent no readings for 15 min' watches for that."
    )
    target = influx_target(INFLUX, q.readings_per_node())
    return timeseries(FLEET_READINGS_PANEL, description, [target], "short", width=24)


def _alerts_by_severity() -> JSON:
    target = influx_target(INFLUX, q.count_alerts_fired("severity"), alias="$tag_severity")
    description = (
        "Alerts the aggregator fired in the selected time range, by severity, live, late and "
        "suspect alike (the table below tells them apart)."
    )
    return stat("Alerts fired, by severity", description, [target])


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
    "value", "limit", "window_s", "standard", "clause", "message", "late", "suspect", "acked_by",
)  # fmt: skip
_STATUS_FIELDS: Final = (
    "online", "journal_depth", "journal_dropped", "sensors_ok", "sensors_failed",
)  # fmt: skip


def _online_mapping() -> JSON:
    online = {"text": "online", "color": "green"}
    offline = {"text": "offline", "color": "red"}
    return _mapped_cells("online", {"true": online, "false": offline}, "color-text")


def _flag_cells(column: str, text: str, colour: str) -> JSON:
    """A boolean alert flag: its name in colour when true, blank when false."""
    flagged = {"text": text, "color": colour}
    return _mapped_cells(column, {"true": flagged, "false": {"text": ""}}, "color-background")


def _severity_colours() -> JSON:
    colours = {"critical": "red", "warning": "orange", "info": "blue"}
    texts = {severity: {"color": colour} for severity, colour in colours.items()}
    return _mapped_cells("severity", texts, "color-text")


def fleet() -> JSON:
    alert_query = q.alert_events(q.SITE_AND_NODE, _ALERT_COLUMNS)
    status_query = q.node_status_latest(_STATUS_FIELDS)
    panels = [
        _alerts_by_severity(),
        _grafana_alert_list(),
        _rows_table(
            "Alert events (aggregator)",
            "Every transition (fired, resolved, renotified, acknowledged), live or not, newest "
            "first. 'late' (orange) marks alerts found in backlog data or in windows revised "
            "by late data: recorded at their true time, not paged. 'suspect' (purple) marks "
            "values from a sensor a health check flagged: not paged until a healthy sensor "
            "confirms them. 'acked_by' names who acknowledged the alert. The annotations show "
            "live fired alerts in red, late and suspect ones in their own layers.",
            alert_query,
            overrides=[
                _severity_colours(),
                _flag_cells("late", "late", "orange"),
                _flag_cells("suspect", "suspect", "purple"),
            ],
        ),
        _rows_table(
            "Node status (latest in range)",
            "Last status each node published in the selected range.",
            status_query,
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
        annotations=_fired_alerts(),
    )


def _prom(title: str, description: str, exprs: Sequence[tuple[str, str]], unit: str) -> JSON:
    targets = [
        prometheus_target(PROMETHEUS, expr, legend, ref_id=chr(ord("A") + i))
        for i, (expr, legend) in enumerate(exprs)
    ]
    return timeseries(title, description, targets, unit)


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
        uid="envnet-aggregator",
        title="envnet · Aggregator health (optional)",
        description="Prometheus metrics of the aggregator process. Optional: needs Prometheus.",
        tags=["envnet", "aggregator"],
        panels=panels,
        refresh="30s",
        time_from="now-6h",
    )


# The map opens on Suzhou's urban districts and Taihu's eastern shore.
MAP_UID: Final = "envnet-map"
MAP_CENTRE: Final = (31.30, 120.60)
MAP_ZOOM: Final = 10.0


def _node_map() -> JSON:
    description = (
        "Every node of the fleet inventory with a location (measurement nodes: the aggregator "
        "writes it at start and when the inventory changes; nodes removed from the inventory "
        "are left out). A marker's colour is the node's newest real-time (hourly) AQI in the "
        f"selected range, in the HJ 633 category colours ({AQI_CITATION}); a node without "
        "an AQI in the range (noise, odour and water nodes, or air nodes without a valid hour) "
        "has no value and is drawn in the default colour. The tooltip also shows the node's "
        "site, its AQI category and how many of its rules are firing (open_alerts: rules whose "
        "newest transition in the range left them firing)."
    )
    targets = [
        influx_target(INFLUX, q.node_locations(), "A", alias=None, result_format="table"),
        influx_target(INFLUX, q.latest_hourly_aqi(), "B", alias=None, result_format="table"),
        influx_target(INFLUX, q.open_alerts_per_node(), "C", alias=None, result_format="table"),
    ]
    return geomap_markers(
        "Nodes by current AQI",
        description,
        targets,
        MAP_CENTRE,
        MAP_ZOOM,
        colour_field="aqi",
        steps=band_thresholds(AQI_BANDS),
        label_field="node",
        transformations=[join_by_field("node")],
    )


def _alertmanager_note() -> JSON:
    link = "/alerting/groups?alertmanager=" + ALERTMANAGER_NAME.replace(" ", "%20")
    markdown = (
        "The aggregator sends its alerts to Prometheus Alertmanager, which routes, groups, "
        "inhibits and silences them. Grafana shows them on its Alerting pages, not in a "
        f"panel: open [Alert groups in {ALERTMANAGER_NAME}]({link}) (Alerting → Alert groups, "
        f"choose {ALERTMANAGER_NAME}); silences are under Alerting → Silences.\n\n"
        "Why not a panel: Grafana's Alertmanager data source only serves the Alerting pages "
        "and answers no panel queries, and the alert list panel lists alert *rules* (Grafana's "
        "or a Prometheus-compatible ruler's), not alerts pushed to an Alertmanager. The table "
        "beside this note lists the alerts the aggregator has open, from InfluxDB."
    )
    return text("Alerts in Alertmanager", markdown, width=8, height=9)


_OPEN_ALERT_FIELDS: Final = ("message", "value", "limit")


def _open_alerts_table() -> JSON:
    query = q.open_alert_rows(_OPEN_ALERT_FIELDS)
    return _rows_table(
        "Open alerts (aggregator)",
        "Per node and rule, the newest transition in the range, where it left the rule firing: "
        "what the aggregator has sent to Alertmanager and not resolved. Alertmanager may still "
        "silence or inhibit it (see its Alert groups page).",
        query,
        width=16,
        height=9,
        overrides=[_severity_colours()],
    )


def node_map() -> JSON:
    panels = [_node_map(), _alertmanager_note(), _open_alerts_table()]
    return dashboard(
        uid=MAP_UID,
        title="envnet · Map",
        description=(
            "The fleet on a map, coloured by each node's current AQI (HJ 633 colours), with the "
            "alerts the aggregator has open and where to find them in Alertmanager. "
            f"{_PRIMARY_ALERTS}"
        ),
        tags=["envnet", "map"],
        panels=panels,
        variables=_variables(None, "node_status"),
        annotations=_fired_alerts(),
        time_from="now-6h",
    )
