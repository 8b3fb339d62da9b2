"""The InfluxQL a report asks and the rows it reads back. Pure: strings in, typed rows out.

A report asks a handful of queries whatever its period (one per measurement and window kind,
never one per day or per node): the inventory (`nodes`), the daily windows of the nodes chosen
(`windows`, window 24h and mda8) and, for days judged by HJ 633-2012, the O3 1-h means whose
daily maximum that edition's daily AQI indexes (docs/standards.md §2.4). Answers are read as
InfluxDB gives them with epoch=ms (aggregator.storage.influxql).

Derived measurements live in `[influx] derived_retention_policy` when one is set
(aggregator.storage.influx.InfluxTarget), so their queries name it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aggregator.reports.request import InventoryNode, Period
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.setup import quote_ident
from schemas.standards import hj633
from schemas.storage import NODES, WINDOWS


class AnswerError(ValueError):
    """A /query answer that is not the result of a query."""


@dataclass(frozen=True, slots=True)
class WindowPoint:
    """One stored closed window (schemas.storage.WINDOWS), at its start."""

    node: str
    sensor: str
    quantity: str
    window: str
    start_ms: int
    value: float
    valid: bool


AIR_QUANTITIES: Final = hj633.POLLUTANTS
# The newest point of every (node, tags) series of the inventory.
INVENTORY_QUERY: Final = f'SELECT last("active") FROM {quote_ident(NODES.name)} GROUP BY *'  # noqa: S608


def literal(text: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def derived(target: InfluxTarget, measurement: str) -> str:
    """The FROM clause of a derived measurement: in its own retention policy when split."""
    name = quote_ident(measurement)
    if target.splits_derived:
        return f"{quote_ident(target.derived_retention_policy)}.{name}"
    return name


def any_of(key: str, values: Sequence[str]) -> str:
    """`("key" = 'a' OR "key" = 'b')`."""
    return "(" + " OR ".join(f"{quote_ident(key)} = {literal(v)}" for v in values) + ")"


def windows_query(
    target: InfluxTarget,
    period: Period,
    nodes: Sequence[str],
    windows: Sequence[str],
    quantities: Sequence[str],
) -> str:
    """Every stored window of these kinds, quantities and nodes that starts in the period."""
    if not nodes or not windows or not quantities:
        raise ValueError("a windows query needs nodes, window kinds and quantities")
    where = " AND ".join(
        (
            any_of("window", windows),
            any_of("quantity", quantities),
            any_of("node", nodes),
            f"time >= {period.start_ms}ms AND time < {period.end_ms}ms",
        )
    )
    return (
        f'SELECT "value", "valid" FROM {derived(target, WINDOWS.name)} '  # noqa: S608 - literals escaped
        f'WHERE {where} GROUP BY "node", "sensor", "quantity", "window"'
    )


def air_daily_query(target: InfluxTarget, period: Period, nodes: Sequence[str]) -> str:
    """The daily means (24h) and O3 MDA8 of the six AQI pollutants."""
    return windows_query(target, period, nodes, ("24h", "mda8"), AIR_QUANTITIES)


def o3_daily_max_query(target: InfluxTarget, period: Period, nodes: Sequence[str]) -> str:
    """Each node's largest valid O3 1-h mean per local day (HJ 633-2012's daily maximum 1-h O3
    indicator, docs/standards.md §2.4), taken by InfluxDB: one row per node-day instead of 24.
    Buckets start at local midnight (an offset of -utc_offset_h hours from UTC midnight); the
    maximum is over all of the node's O3 sensors, as the aggregator's own daily AQI takes it."""
    if not nodes:
        raise ValueError("a windows query needs nodes")
    offset_h = (-period.utc_offset_h) % 24
    where = " AND ".join(
        (
            '"window" = \'1h\' AND "quantity" = \'o3\' AND "valid" = true',
            any_of("node", nodes),
            f"time >= {period.start_ms}ms AND time < {period.end_ms}ms",
        )
    )
    return (
        f'SELECT max("value") FROM {derived(target, WINDOWS.name)} '  # noqa: S608 - literals escaped
        f'WHERE {where} GROUP BY time(1d, {offset_h}h), "node" fill(none)'
    )


def series_rows(answer: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, str], dict[str, Any]]]:
    """(tags, row by column) of every row of one statement's result ({"series": [...]})."""
    if "error" in answer:
        raise AnswerError(f"InfluxDB: {answer['error']}")
    series = answer.get("series") or []
    if not isinstance(series, list):
        raise AnswerError(f"unexpected /query answer: {str(answer)[:200]}")
    for one in series:
        if not isinstance(one, Mapping):
            raise AnswerError(f"unexpected series: {str(one)[:200]}")
        tags = one.get("tags") or {}
        columns = one.get("columns") or []
        for values in one.get("values") or []:
            yield tags, dict(zip(columns, values, strict=False))


def parse_inventory(answer: Mapping[str, Any]) -> list[InventoryNode]:
    """The inventory's points from INVENTORY_QUERY's answer (GROUP BY * gives every tag, ""
    for one the series does not have)."""
    out = []
    for tags, row in series_rows(answer):
        node, at = tags.get("node"), row.get("time")
        if not node or not isinstance(at, int):
            continue
        zone = tags.get("air_zone") or ""
        out.append(
            InventoryNode(
                node=node,
                active=row.get("last") is True,
                at_ms=at,
                group=tags.get("group") or None,
                air_zone=int(zone) if zone.isdigit() else None,
                noise_zone=tags.get("noise_zone") or None,
                water_body=tags.get("water_body") or None,
            )
        )
    return out


def parse_daily_max(answer: Mapping[str, Any]) -> list[WindowPoint]:
    """o3_daily_max_query's rows as valid O3 "1h" windows at their local day's start: the
    day's largest 1-h mean is all the daily AQI needs of them."""
    out = []
    for tags, row in series_rows(answer):
        value, at = row.get("max"), row.get("time")
        if isinstance(value, int | float) and not isinstance(value, bool) and isinstance(at, int):
            out.append(WindowPoint(tags.get("node", ""), "", "o3", "1h", at, float(value), True))
    return out


def parse_windows(answer: Mapping[str, Any]) -> list[WindowPoint]:
    """The windows of a windows_query answer; a row without a number or a valid flag (written
    by something else than the aggregator) is left out."""
    out = []
    for tags, row in series_rows(answer):
        value, valid, at = row.get("value"), row.get("valid"), row.get("time")
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if not isinstance(valid, bool) or not isinstance(at, int):
            continue
        out.append(
            WindowPoint(
                node=tags.get("node", ""),
                sensor=tags.get("sensor", ""),
                quantity=tags.get("quantity", ""),
                window=tags.get("window", ""),
                start_ms=at,
                value=float(value),
                valid=valid,
            )
        )
    return out
