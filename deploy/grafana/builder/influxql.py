"""InfluxQL text for the panels and alert rules, built from the storage schema's names.

InfluxQL throughout (not Flux or SQL) because it is the one language InfluxDB 1.x, 2.x (through
a DBRP mapping) and 3.x all answer. Identifiers are always double-quoted and string literals
single-quoted, which is also what lets the asset tests find every name a query uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from schemas.quantities import SPECS, Quantity
from schemas.standards.hj633 import Report
from schemas.storage import (
    ALERTS,
    AQI,
    NODE_STATUS,
    NODES,
    READINGS,
    WATER_QUALITY,
    WINDOWS,
    WindowKind,
)

# Grafana macros, interpolated by Grafana before the query reaches InfluxDB.
TIME_FILTER: Final = "$timeFilter"
AUTO_INTERVAL: Final = "$__interval"
# GB 3095-2026 §3.10: a daily mean is over a natural day, which in China is Beijing time.
CHINA_TZ: Final = "Asia/Shanghai"

_PLAIN_VALUE = re.compile(r"^[a-z0-9_.-]+$")


def ident(name: str) -> str:
    return f'"{name}"'


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def equals(key: str, value: str) -> str:
    return f"{ident(key)} = {literal(value)}"


def bool_equals(key: str, value: bool) -> str:
    """A boolean field compared with a boolean literal (never the string 'true')."""
    return f"{ident(key)} = {'true' if value else 'false'}"


def any_of(*conditions: str) -> str:
    return "(" + " OR ".join(conditions) + ")"


def one_of(key: str, values: Sequence[str]) -> str:
    """A regex match on fixed values; they are ids, so nothing in them needs escaping."""
    if not values or not all(_PLAIN_VALUE.match(v) for v in values):
        raise ValueError(f"values must be plain ids: {values!r}")
    return f"{ident(key)} =~ /^({'|'.join(values)})$/"


def matches_variable(key: str, variable: str) -> str:
    """Filter on a multi-value dashboard variable, which Grafana renders as a regex group."""
    return f"{ident(key)} =~ /^${variable}$/"


SITE_AND_NODE: Final = (matches_variable("site", "site"), matches_variable("node", "node"))


def where(*conditions: str) -> str:
    return " AND ".join(conditions)


def select(
    columns: str,
    source: str,
    conditions: Sequence[str],
    group_by: Sequence[str] = (),
    tail: str = "",
) -> str:
    """One SELECT statement. `source` is a quoted measurement or a parenthesised subquery."""
    # The text is generated into committed dashboards from the schema's fixed names, never
    # from input at run time, so there is nothing to inject.
    text = f"SELECT {columns} FROM {source} WHERE {where(*conditions)}"  # noqa: S608
    if group_by:
        text += " GROUP BY " + ", ".join(group_by)
    return f"{text} {tail}" if tail else text


def by_interval(interval: str = AUTO_INTERVAL) -> tuple[str, str]:
    return (f"time({interval})", ident("node"))


def series(
    column: str,
    source: str,
    conditions: Sequence[str],
    interval: str = AUTO_INTERVAL,
    fill: str = "fill(null)",
) -> str:
    """One series per node in the panel's time range, `column` aggregated to each interval."""
    return select(column, source, (*conditions, TIME_FILTER), by_interval(interval), fill)


def latest(
    fields: Sequence[str], source: str, conditions: Sequence[str], keys: Sequence[str]
) -> str:
    """The newest value of each field in the time range, one row per combination of `keys`."""
    return select(
        ", ".join(f"last({ident(f)}) AS {ident(f)}" for f in fields),
        source,
        (*conditions, TIME_FILTER),
        tuple(ident(k) for k in keys),
    )


def newest_rows(columns: Sequence[str], source: str, conditions: Sequence[str]) -> str:
    """Table rows in the time range, newest first (the latest 1000)."""
    return select(
        ", ".join(ident(c) for c in columns),
        source,
        (*conditions, TIME_FILTER),
        tail="ORDER BY time DESC LIMIT 1000",
    )


def reading_filter(quantity: Quantity) -> tuple[str, ...]:
    """One quantity at its canonical statistic (mean, leq or max), for the selected nodes."""
    return (
        equals("quantity", quantity),
        equals("stat", SPECS[quantity].default_stat),
        *SITE_AND_NODE,
    )


def reading_series(quantity: Quantity, aggregate: str = "mean") -> str:
    """One series per node, aggregated to the panel's interval."""
    return series(f"{aggregate}({ident('value')})", ident(READINGS.name), reading_filter(quantity))


def reading_daily_mean(quantity: Quantity) -> str:
    """Natural-day (Beijing time) means per node: what a 24-h limit is compared with."""
    return series(
        f"mean({ident('value')})",
        ident(READINGS.name),
        reading_filter(quantity),
        interval="1d",
        fill=f"fill(null) tz({literal(CHINA_TZ)})",
    )


def reading_energy_mean(quantity: Quantity) -> str:
    """Energy average of sound levels: 10·lg(mean(10^(L/10))).

    An arithmetic mean of dB values understates the level (docs/standards.md §3.3), so the linear
    energies are averaged in a subquery and converted back to dB.
    """
    inner = select(
        f"pow(10, {ident('value')} / 10) AS {ident('energy')}",
        ident(READINGS.name),
        (*reading_filter(quantity), TIME_FILTER),
        (ident("node"),),
    )
    return series(f"10 * log10(mean({ident('energy')})) AS {ident(quantity)}", f"({inner})", ())


def window_filter(quantity: Quantity, window: WindowKind) -> tuple[str, ...]:
    """Valid closed windows of one quantity and kind (GB 3095-2026 Table 4 validity, as the
    aggregator judged it), for the selected nodes."""
    return (
        equals("quantity", quantity),
        equals("window", window),
        bool_equals("valid", True),
        *SITE_AND_NODE,
    )


def window_values(
    quantity: Quantity, window: WindowKind, fields: Sequence[str] = ("value",)
) -> str:
    """The aggregator's window results as stored, one series per node and sensor.

    Not re-aggregated: a window is already the mean the standard defines, one point per period
    at its start (a revised window replaced the first at the same time)."""
    return select(
        ", ".join(ident(f) for f in fields),
        ident(WINDOWS.name),
        (*window_filter(quantity, window), TIME_FILTER),
        (ident("node"), ident("sensor")),
    )


def window_rows(quantity: Quantity, windows: Sequence[WindowKind], columns: Sequence[str]) -> str:
    """Table rows of the valid windows of `quantity` of the given kinds, newest first."""
    valid = (
        equals("quantity", quantity),
        one_of("window", windows),
        bool_equals("valid", True),
        *SITE_AND_NODE,
    )
    return newest_rows(columns, ident(WINDOWS.name), valid)


def aqi_series(report: Report, interval: str = AUTO_INTERVAL) -> str:
    """The highest AQI per node in each interval: zoomed out, the worst hour or day shows."""
    conditions = (equals("report", report), *SITE_AND_NODE)
    return series(f"max({ident('aqi')})", ident(AQI.name), conditions, interval)


def aqi_values(report: Report) -> str:
    """Every AQI of one report per node as stored: one point per hour or day."""
    return select(
        ident("aqi"),
        ident(AQI.name),
        (equals("report", report), *SITE_AND_NODE, TIME_FILTER),
        (ident("node"),),
    )


def aqi_rows(report: Report, columns: Sequence[str]) -> str:
    return newest_rows(columns, ident(AQI.name), (equals("report", report), *SITE_AND_NODE))


def aqi_latest(report: Report, fields: Sequence[str]) -> str:
    conditions = (equals("report", report), *SITE_AND_NODE)
    return latest(fields, ident(AQI.name), conditions, ("site", "node"))


def good_air_share(max_aqi: int, with_counts: bool = False) -> str:
    """Per node: the percentage of daily AQI values at or below `max_aqi` in the range.

    InfluxQL cannot count two different WHERE clauses in one SELECT, and dividing two queries
    in Grafana would drop a node with no good day at all (no series to divide). So the subquery
    turns each day into 1 (good) or 0 with arithmetic alone, and the outer query averages it:
    floor(2(L+1) / (aqi + L + 2)) is 1 for 0 <= aqi <= L and 0 for aqi > L, because the
    quotient is below 2 for every aqi > -1 and reaches 1 exactly when aqi <= L.
    """
    good = f"floor({2 * (max_aqi + 1)} / ({ident('aqi')} + {max_aqi + 2})) AS {ident('good')}"
    inner = select(
        good,
        ident(AQI.name),
        (equals("report", "day"), *SITE_AND_NODE, TIME_FILTER),
        (ident("node"),),
    )
    columns = f"mean({ident('good')}) * 100 AS {ident('good_air_percent')}"
    if with_counts:
        columns += f", sum({ident('good')}) AS {ident('good_days')}"
        columns += f", count({ident('good')}) AS {ident('days')}"
    return select(columns, f"({inner})", (TIME_FILTER,), (ident("node"),))


def water_class_series() -> str:
    """Worst class and the target per node and interval (GB 3838-2002 single-factor class)."""
    return series(
        f"max({ident('class')}) AS {ident('class')}, last({ident('target')}) AS {ident('target')}",
        ident(WATER_QUALITY.name),
        SITE_AND_NODE,
    )


def lake_tli_series() -> str:
    lakes = (equals("body", "lake"), *SITE_AND_NODE)
    return series(f"mean({ident('tli')})", ident(WATER_QUALITY.name), lakes)


def water_latest(fields: Sequence[str]) -> str:
    return latest(fields, ident(WATER_QUALITY.name), SITE_AND_NODE, ("site", "node", "body"))


def tag_values(measurement: str, key: str, conditions: Sequence[str] = ()) -> str:
    text = f"SHOW TAG VALUES FROM {ident(measurement)} WITH KEY = {ident(key)}"
    return f"{text} WHERE {where(*conditions)}" if conditions else text


def alert_events(conditions: Sequence[str], columns: Sequence[str]) -> str:
    return newest_rows(columns, ident(ALERTS.name), conditions)


def count_alerts_fired(group_key: str) -> str:
    return select(
        f"count({ident('event')})",
        ident(ALERTS.name),
        (equals("event", "fired"), *SITE_AND_NODE, TIME_FILTER),
        (ident(group_key),),
    )


def readings_per_node(fill: str = "fill(0)") -> str:
    return series(f"count({ident('value')})", ident(READINGS.name), SITE_AND_NODE, fill=fill)


def status_series(field: str) -> str:
    return series(f"last({ident(field)})", ident(NODE_STATUS.name), SITE_AND_NODE)


def node_status_latest(fields: Sequence[str]) -> str:
    return latest(fields, ident(NODE_STATUS.name), SITE_AND_NODE, ("site", "node"))


def per_node(selection: str, measurement: str, lookback_group: Sequence[str] = ()) -> str:
    """For alert rules: every node, no dashboard variables, grouped by node."""
    return select(
        selection,
        ident(measurement),
        (TIME_FILTER,),
        (*lookback_group, ident("node")),
        "fill(0)" if lookback_group else "",
    )


def node_locations() -> str:
    """Each current node's newest location and site (measurement nodes), for the map.

    No time filter: the inventory is written when the aggregator starts or the inventory
    changes, which may be long before the dashboard's range. The inner query takes each
    node's newest values across all its series (whatever group or site type it had), and
    the outer one drops the nodes whose newest point says they left the inventory."""
    newest = ", ".join(f"last({ident(f)}) AS {ident(f)}" for f in ("lat", "lon", "site", "active"))
    inner = select(newest, ident(NODES.name), (matches_variable("node", "node"),), (ident("node"),))
    return select(
        ", ".join(ident(f) for f in ("lat", "lon", "site")),
        f"({inner})",
        (bool_equals("active", True),),
        (ident("node"),),
    )


def latest_hourly_aqi() -> str:
    """Each node's newest real-time (hourly) AQI and category in the range, for the map."""
    conditions = (equals("report", "hour"), *SITE_AND_NODE)
    return latest(("aqi", "category"), ident(AQI.name), conditions, ("node",))


def _newest_alert_states(fields: Sequence[str], keys: Sequence[str]) -> str:
    """Per node and rule, the newest value in the range of each of `fields` (state first)."""
    return select(
        ", ".join(f"last({ident(f)}) AS {ident(f)}" for f in fields),
        ident(ALERTS.name),
        (*SITE_AND_NODE, TIME_FILTER),
        tuple(ident(k) for k in keys),
    )


def open_alerts_per_node() -> str:
    """Per node, how many rules are firing: those whose newest transition in the range left
    them firing (acknowledged and renotified keep state firing)."""
    inner = _newest_alert_states(("state",), ("node", "rule"))
    return select(
        f"count({ident('state')}) AS {ident('open_alerts')}",
        f"({inner})",
        (equals("state", "firing"), TIME_FILTER),
        (ident("node"),),
    )


def open_alert_rows(fields: Sequence[str]) -> str:
    """Table rows of the firing rules per node (see open_alerts_per_node), with the newest
    value of each of `fields`."""
    keys = ("node", "rule", "severity")
    inner = _newest_alert_states(("state", *fields), keys)
    return select(
        ", ".join(ident(f) for f in ("state", *fields)),
        f"({inner})",
        (equals("state", "firing"), TIME_FILTER),
        tuple(ident(k) for k in keys),
    )
