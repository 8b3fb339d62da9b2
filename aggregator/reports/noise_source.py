"""Stored noise day and night periods (L_d, L_n), for the noise KPIs.

The engine closes each node's GB 3096-2008 day and night periods and stores them as `windows`
points (schemas.storage.WINDOWS): quantity laeq, window day or night, at the period's start,
with the energy mean `value` and `valid` (envnet's minimum hours, docs/standards.md §3.3). A
period revised by late data is written again at the same time and replaces the first, so
the stored point is the final one. The query is the reports' windows query (aggregator
.reports.queries, in the derived retention policy when it has its own) and the parser is
pure; `fetch_noise_periods` asks them through aggregator.reports.fetch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from aggregator.reports import request
from aggregator.reports.fetch import ask
from aggregator.reports.queries import AnswerError, series_rows, windows_query
from aggregator.reports.water_source import CHUNK_DAYS
from aggregator.storage.influx import InfluxTarget

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


def parse_windows(answer: Mapping[str, Any]) -> list[NoisePeriod]:
    """The periods of one /query answer (epoch=ms). A row whose valid flag is not true, or
    whose value is not a finite non-negative number, is kept as an invalid period."""
    out = []
    for tags, row in series_rows(answer):
        period = tags.get("window")
        if period not in PERIODS:
            continue
        ts = row.get("time")
        if not isinstance(ts, int):
            raise AnswerError(f"a windows row without an epoch-ms time: {row}")
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
    target: InfluxTarget, nodes: Sequence[str], period: request.Period
) -> list[NoisePeriod]:
    """The stored day and night periods of `nodes` that start in the period's local days (a
    night belongs to the day it starts on, as the engine keys it)."""
    if not nodes:
        return []
    queries = [
        windows_query(target, chunk, nodes, PERIODS, ("laeq",))
        for chunk in period.chunks(CHUNK_DAYS)
    ]
    return [p for answer in await ask(target, queries) for p in parse_windows(answer)]
