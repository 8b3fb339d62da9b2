"""Stored noise day and night periods (L_d, L_n), for the noise KPIs.

The engine closes each node's GB 3096-2008 day and night periods and stores them as `windows`
points (schemas.storage.WINDOWS): quantity laeq, window day or night, at the period's start,
with the energy mean `value` and `valid` (envnet's minimum hours, docs/standards.md §3.3). A
period revised by late data is written again at the same time and replaces the first, so
the stored point is the final one. The query and the parser are pure; `fetch_noise_periods`
is the HTTP shell over aggregator.storage.influxql.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final, Literal

import aiohttp
import msgspec

from aggregator.reports.water_source import (
    ReportSourceError,
    any_of,
    chunks,
    period_bounds_ms,
    query,
)
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.setup import quote_ident
from schemas.storage import WINDOWS

Period = Literal["day", "night"]
PERIODS: Final[tuple[Period, ...]] = ("day", "night")


class NoisePeriod(msgspec.Struct, frozen=True):
    """One stored L_d or L_n of one sensor of one node; value None when not a finite number."""

    node: str
    sensor: str
    period: Period
    start_ms: int
    value: float | None
    valid: bool


def windows_ref(target: InfluxTarget) -> str:
    """The `windows` measurement, in the derived retention policy when it has its own
    (aggregator.storage.influx.InfluxTarget.splits_derived)."""
    if target.splits_derived:
        return f'{quote_ident(target.derived_retention_policy)}."{WINDOWS.name}"'
    return f'"{WINDOWS.name}"'


def windows_query(nodes: Sequence[str], start_ms: int, end_ms: int, ref: str) -> str:
    """Day and night L_Aeq periods of `nodes` starting in [start_ms, end_ms)."""
    return (
        f'SELECT "value", "valid" FROM {ref} '  # noqa: S608 - quoted literals
        f"WHERE \"quantity\" = 'laeq' AND {any_of('window', PERIODS)} "
        f"AND {any_of('node', nodes)} AND time >= {start_ms}ms AND time < {end_ms}ms "
        'GROUP BY "node", "sensor", "window"'
    )


def parse_windows(answer: Mapping[str, Any]) -> list[NoisePeriod]:
    """The periods of one /query answer (epoch=ms). A row whose valid flag is not true, or
    whose value is not a finite non-negative number, is kept as an invalid period."""
    out = []
    for series in answer.get("series", []):
        tags = series.get("tags") or {}
        period = tags.get("window")
        if period not in PERIODS:
            continue
        columns = series.get("columns", [])
        for values in series.get("values", []):
            row = dict(zip(columns, values, strict=False))
            ts = row.get("time")
            if not isinstance(ts, int):
                raise ReportSourceError(f"a windows row without an epoch-ms time: {row}")
            value = row.get("value")
            level = (
                float(value)
                if isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
                else None
            )
            valid = row.get("valid") is True and level is not None
            node, sensor = str(tags.get("node", "")), str(tags.get("sensor", ""))
            out.append(NoisePeriod(node, sensor, period, ts, level, valid))
    return out


async def fetch_noise_periods(
    target: InfluxTarget,
    nodes: Sequence[str],
    date_from: date,
    date_to: date,
    utc_offset_h: int,
) -> list[NoisePeriod]:
    """The stored day and night periods of `nodes` that start in the local days
    date_from..date_to (a night belongs to the day it starts on, as the engine keys it)."""
    start_ms, end_ms = period_bounds_ms(date_from, date_to, utc_offset_h)
    if not nodes:
        return []
    out: list[NoisePeriod] = []
    ref = windows_ref(target)
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for lo, hi in chunks(start_ms, end_ms):
            out.extend(
                parse_windows(await query(session, target, windows_query(nodes, lo, hi, ref)))
            )
    return out
