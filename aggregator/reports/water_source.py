"""Stored readings of the water quantities, for the water and bloom KPIs.

Water quantities are judged reading by reading and never windowed (aggregator.engine
.evaluator), so their daily values are computed here from the raw `readings` points
(schemas.storage.READINGS). The query and the parser are pure and tested without a database;
`fetch_readings` asks them through the reports' HTTP shell (aggregator.reports.fetch).

Which readings count (envnet's choice, as the alert engine's sensor health does,
aggregator.engine.sensor_health): only `stat = mean` points; readings the node flags
"calibrating" or "maintenance" are not ambient measurements and "out_of_range" ones are
outside what the sensor can measure, so all three are left out; a value that is not a finite
non-negative number is left out. Left-out rows are counted, so a report can say so.

A long period is asked for in chunks of at most `CHUNK_DAYS` local days (request.Period
.chunks), so that no single answer holds a year of five-minute readings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import msgspec
import numpy as np
import numpy.typing as npt

from aggregator.reports.fetch import ask
from aggregator.reports.queries import AnswerError, any_of, series_rows
from aggregator.reports.request import Period
from aggregator.storage.influx import InfluxTarget
from schemas.messages import Flag
from schemas.quantities import Quantity
from schemas.storage import READINGS

WATER_QUANTITIES: Final[tuple[Quantity, ...]] = ("ph", "do", "codmn", "nh3_n", "tp", "tn")
# Readings that are not ambient measurements (see the module docstring).
EXCLUDED_FLAGS: Final[frozenset[Flag]] = frozenset({"calibrating", "maintenance", "out_of_range"})
CHUNK_DAYS: Final = 31


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


def readings_query(quantities: Sequence[Quantity], nodes: Sequence[str], period: Period) -> str:
    """The readings of `quantities` at `nodes` in the period's local days, per node and
    quantity."""
    return (
        f'SELECT "value", "flags" FROM "{READINGS.name}" '  # noqa: S608 - quoted literals
        f"WHERE {any_of('quantity', quantities)} AND {any_of('node', nodes)} "
        f"AND \"stat\" = 'mean' AND time >= {period.start_ms}ms AND time < {period.end_ms}ms "
        'GROUP BY "node", "quantity"'
    )


def parse_readings(answer: Mapping[str, Any], into: dict[tuple[str, str], list[Any]]) -> int:
    """Add one /query answer's rows (epoch=ms) to `into[(node, quantity)]` as (ts, value)
    pairs; returns the number of rows left out (flags, or a value that is not a finite
    non-negative number). Rows without a time are malformed and raise AnswerError."""
    excluded = 0
    for tags, row in series_rows(answer):
        rows = into.setdefault((str(tags.get("node", "")), str(tags.get("quantity", ""))), [])
        ts, value = row.get("time"), row.get("value")
        if not isinstance(ts, int):
            raise AnswerError(f"a readings row without an epoch-ms time: {row}")
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
    target: InfluxTarget, quantities: Sequence[Quantity], nodes: Sequence[str], period: Period
) -> ReadingRows:
    """The readings of `quantities` at `nodes` over the period's local days."""
    if not nodes or not quantities:
        return ReadingRows({})
    queries = [readings_query(quantities, nodes, chunk) for chunk in period.chunks(CHUNK_DAYS)]
    pairs: dict[tuple[str, str], list[Any]] = {}
    rows = excluded = 0
    for answer in await ask(target, queries):
        rows += sum(len(s.get("values") or []) for s in answer.get("series") or [])
        excluded += parse_readings(answer, pairs)
    return collect(pairs, rows, excluded)
