"""Stored chlorophyll-a readings, for the bloom KPIs.

Chlorophyll-a is judged reading by reading and never windowed (aggregator.engine.evaluator),
so the bloom KPIs read the raw `readings` points, with the same query, exclusions (stat=mean;
not flagged calibrating, maintenance or out_of_range) and chunking as the water KPIs
(aggregator.reports.water_source). Pure query builder; `fetch_chl_a` is the HTTP shell.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

from aggregator.reports.water_source import ReadingRows, fetch_readings, readings_query
from aggregator.storage.influx import InfluxTarget
from schemas.quantities import Quantity

BLOOM_QUANTITIES: Final[tuple[Quantity, ...]] = ("chl_a",)


def chl_a_query(nodes: Sequence[str], start_ms: int, end_ms: int) -> str:
    return readings_query(BLOOM_QUANTITIES, nodes, start_ms, end_ms)


async def fetch_chl_a(
    target: InfluxTarget, nodes: Sequence[str], date_from: date, date_to: date, utc_offset_h: int
) -> ReadingRows:
    """The chlorophyll-a readings of `nodes` over the local days date_from..date_to."""
    return await fetch_readings(target, BLOOM_QUANTITIES, nodes, date_from, date_to, utc_offset_h)
