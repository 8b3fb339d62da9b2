"""InfluxQL text for the panels and alert rules, built from the storage schema's names.

InfluxQL throughout (not Flux or SQL) because it is the one language InfluxDB 1.x, 2.x (through
a DBRP mapping) and 3.x all answer. Identifiers are always double-quoted and string literals
single-quoted, which is also what lets the asset tests find every name a query uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from aggregator.storage_schema import ALERTS, NODE_STATUS, READINGS
from schemas.quantities import SPECS, Quantity

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


def reading_filter(quantity: Quantity) -> tuple[str, ...]:
    """One quantity at its canonical statistic (mean, leq or max), for the selected nodes."""
    return (
        equals("quantity", quantity),
        equals("stat", SPECS[quantity].default_stat),
        *SITE_AND_NODE,
    )


def reading_series(quantity: Quantity, aggregate: str = "mean") -> str:
    """One series per node, aggregated to the panel's interval."""
    return select(
        f"{aggregate}({ident('value')})",
        ident(READINGS.name),
        (*reading_filter(quantity), TIME_FILTER),
        by_interval(),
        "fill(null)",
    )


def reading_daily_mean(quantity: Quantity) -> str:
    """Natural-day (Beijing time) means per node: what a 24-h limit is compared with."""
    return select(
        f"mean({ident('value')})",
        ident(READINGS.name),
        (*reading_filter(quantity), TIME_FILTER),
        by_interval("1d"),
        f"fill(null) tz({literal(CHINA_TZ)})",
    )


def reading_energy_mean(quantity: Quantity) -> str:
    """Energy average of sound levels: 10·lg(mean(10^(L/10))).

    An arithmetic mean of dB values understates the level (standards.md §3.3), so the linear
    energies are averaged in a subquery and converted back to dB.
    """
    inner = select(
        f"pow(10, {ident('value')} / 10) AS {ident('energy')}",
        ident(READINGS.name),
        (*reading_filter(quantity), TIME_FILTER),
        (ident("node"),),
    )
    return select(
        f"10 * log10(mean({ident('energy')})) AS {ident(quantity)}",
        f"({inner})",
        (TIME_FILTER,),
        by_interval(),
        "fill(null)",
    )


def tag_values(measurement: str, key: str, conditions: Sequence[str] = ()) -> str:
    text = f"SHOW TAG VALUES FROM {ident(measurement)} WITH KEY = {ident(key)}"
    return f"{text} WHERE {where(*conditions)}" if conditions else text


def alert_events(conditions: Sequence[str], columns: Sequence[str]) -> str:
    return select(
        ", ".join(ident(c) for c in columns),
        ident(ALERTS.name),
        (*conditions, TIME_FILTER),
        tail="ORDER BY time DESC LIMIT 1000",
    )


def count_alerts_fired(group_key: str) -> str:
    return select(
        f"count({ident('event')})",
        ident(ALERTS.name),
        (equals("event", "fired"), *SITE_AND_NODE, TIME_FILTER),
        (ident(group_key),),
    )


def readings_per_node(fill: str = "fill(0)") -> str:
    return select(
        f"count({ident('value')})",
        ident(READINGS.name),
        (*SITE_AND_NODE, TIME_FILTER),
        by_interval(),
        fill,
    )


def status_series(field: str) -> str:
    return select(
        f"last({ident(field)})",
        ident(NODE_STATUS.name),
        (*SITE_AND_NODE, TIME_FILTER),
        by_interval(),
        "fill(null)",
    )


def node_status_latest(fields: Sequence[str]) -> str:
    return select(
        ", ".join(f"last({ident(f)}) AS {ident(f)}" for f in fields),
        ident(NODE_STATUS.name),
        (*SITE_AND_NODE, TIME_FILTER),
        (ident("site"), ident("node")),
    )


def per_node(selection: str, measurement: str, lookback_group: Sequence[str] = ()) -> str:
    """For alert rules: every node, no dashboard variables, grouped by node."""
    return select(
        selection,
        ident(measurement),
        (TIME_FILTER,),
        (*lookback_group, ident("node")),
        "fill(0)" if lookback_group else "",
    )
