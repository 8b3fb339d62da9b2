"""Stored readings of the water quantities, for the water and bloom KPIs.

Water quantities are judged reading by reading and never windowed (aggregator.engine
.evaluator), so their daily values are computed here from the raw `readings` points
(schemas.storage.READINGS). The query and the parser are pure and tested without a database;
`fetch_readings` is the HTTP shell over aggregator.storage.influxql, as warm_start's fetch is.

Which readings count (envnet's choice, as the alert engine's sensor health does,
aggregator.engine.sensor_health): only `stat = mean` points; readings the node flags
"calibrating" or "maintenance" are not ambient measurements and "out_of_range" ones are
outside what the sensor can measure, so all three are left out; a value that is not a finite
non-negative number is left out. Left-out rows are counted, so a report can say so.

A long period is asked for in chunks of at most `CHUNK_DAYS` local days, so that no single
answer holds a year of five-minute readings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Final, cast

import aiohttp
import msgspec
import numpy as np
import numpy.typing as npt

from aggregator.storage.influx import InfluxTarget
from aggregator.storage.influxql import InfluxQueryError, influxql
from schemas.messages import Flag
from schemas.quantities import Quantity
from schemas.storage import READINGS

WATER_QUANTITIES: Final[tuple[Quantity, ...]] = ("ph", "do", "codmn", "nh3_n", "tp", "tn")
# Readings that are not ambient measurements (see the module docstring).
EXCLUDED_FLAGS: Final[frozenset[Flag]] = frozenset({"calibrating", "maintenance", "out_of_range"})
CHUNK_DAYS: Final = 31
_DAY_MS: Final = 86_400_000


class ReportSourceError(RuntimeError):
    """InfluxDB could not be asked, or did not answer with query results."""


class ReportPeriodError(ValueError):
    """A report period that ends before it starts."""


class Samples(msgspec.Struct, frozen=True):
    """One node's readings of one quantity: times (epoch ms) and values, time-ordered."""

    ts_ms: tuple[int, ...]
    values: tuple[float, ...]

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        return np.asarray(self.ts_ms, dtype=np.int64), np.asarray(self.values, dtype=np.float64)


class ReadingRows(msgspec.Struct, frozen=True):
    """Parsed readings by (node, quantity), and how many rows were left out."""

    series: dict[tuple[str, str], Samples]
    rows: int = 0
    excluded: int = 0


def period_bounds_ms(date_from: date, date_to: date, utc_offset_h: int) -> tuple[int, int]:
    """[local midnight starting date_from, local midnight ending date_to) as epoch ms."""
    if date_to < date_from:
        raise ReportPeriodError(f"the period ends ({date_to}) before it starts ({date_from})")
    zone = timezone(timedelta(hours=utc_offset_h))
    start = datetime.combine(date_from, time(), zone)
    end = datetime.combine(date_to + timedelta(days=1), time(), zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def chunks(start_ms: int, end_ms: int, days: int = CHUNK_DAYS) -> Iterator[tuple[int, int]]:
    """[start, end) cut into consecutive spans of at most `days` days."""
    step = days * _DAY_MS
    at = start_ms
    while at < end_ms:
        yield at, min(at + step, end_ms)
        at += step


def quote_string(text: str) -> str:
    """An InfluxQL single-quoted string literal (node ids come from the caller)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def any_of(tag: str, values: Sequence[str]) -> str:
    """`("tag" = 'a' OR "tag" = 'b')`; tag names are this module's constants."""
    return "(" + " OR ".join(f'"{tag}" = {quote_string(v)}' for v in values) + ")"


def readings_query(
    quantities: Sequence[Quantity], nodes: Sequence[str], start_ms: int, end_ms: int
) -> str:
    """The readings of `quantities` at `nodes` in [start_ms, end_ms), per node and quantity."""
    return (
        f'SELECT "value", "flags" FROM "{READINGS.name}" '  # noqa: S608 - quoted literals
        f"WHERE {any_of('quantity', quantities)} AND {any_of('node', nodes)} "
        f"AND \"stat\" = 'mean' AND time >= {start_ms}ms AND time < {end_ms}ms "
        'GROUP BY "node", "quantity"'
    )


def parse_readings(answer: Mapping[str, Any], into: dict[tuple[str, str], list[Any]]) -> int:
    """Add one /query answer's rows (epoch=ms) to `into[(node, quantity)]` as (ts, value)
    pairs; returns the number of rows left out (flags, or a value that is not a finite
    non-negative number). Rows without a time are malformed and raise ReportSourceError."""
    excluded = 0
    for series in answer.get("series", []):
        tags = series.get("tags") or {}
        key = (str(tags.get("node", "")), str(tags.get("quantity", "")))
        columns = series.get("columns", [])
        rows = into.setdefault(key, [])
        for values in series.get("values", []):
            row = dict(zip(columns, values, strict=False))
            ts, value = row.get("time"), row.get("value")
            if not isinstance(ts, int):
                raise ReportSourceError(f"a readings row without an epoch-ms time: {row}")
            if not _counts(row.get("flags"), value):
                excluded += 1
                continue
            rows.append((ts, float(cast(float, value))))
    return excluded


def _counts(flags: object, value: object) -> bool:
    if isinstance(flags, str) and not EXCLUDED_FLAGS.isdisjoint(flags.split(",")):
        return False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


def collect(pairs: Mapping[tuple[str, str], list[Any]], rows: int, excluded: int) -> ReadingRows:
    """Sort each series by time; a time seen twice (two chunks never overlap, but two
    sensors of one node may) keeps both readings."""
    series = {}
    for key, items in pairs.items():
        if not items:
            continue
        ordered = sorted(items)
        series[key] = Samples(tuple(t for t, _ in ordered), tuple(v for _, v in ordered))
    return ReadingRows(series, rows, excluded)


async def fetch_readings(
    target: InfluxTarget,
    quantities: Sequence[Quantity],
    nodes: Sequence[str],
    date_from: date,
    date_to: date,
    utc_offset_h: int,
) -> ReadingRows:
    """The readings of `quantities` at `nodes` over the local days date_from..date_to."""
    start_ms, end_ms = period_bounds_ms(date_from, date_to, utc_offset_h)
    pairs: dict[tuple[str, str], list[Any]] = {}
    rows = excluded = 0
    if not nodes or not quantities:
        return ReadingRows({})
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for lo, hi in chunks(start_ms, end_ms):
            answer = await query(session, target, readings_query(quantities, nodes, lo, hi))
            rows += sum(len(s.get("values", [])) for s in answer.get("series", []))
            excluded += parse_readings(answer, pairs)
    return collect(pairs, rows, excluded)


async def query(session: aiohttp.ClientSession, target: InfluxTarget, q: str) -> Mapping[str, Any]:
    try:
        return await influxql(session, target, q)
    except InfluxQueryError as exc:
        raise ReportSourceError(str(exc)) from None
