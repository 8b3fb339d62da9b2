"""Stored chlorophyll-a readings, for the bloom KPIs.

Chlorophyll-a is judged reading by reading and never windowed (aggregator.engine.evaluator),
so the bloom KPIs read the raw `readings` points, with the same query, exclusions (stat=mean;
not flagged calibrating, maintenance or out_of_range) and chunking as the water KPIs
(aggregator.reports.water_source). Pure query builder; `fetch_chl_a` is the HTTP shell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aggregator.reports.request import Period
from aggregator.reports.water_source import ReadingRows, fetch_readings, readings_query
from aggregator.storage.influx import InfluxTarget
from schemas.quantities import Quantity

BLOOM_QUANTITIES: Final[tuple[Quantity, ...]] = ("chl_a",)


def chl_a_query(nodes: Sequence[str], period: Period) -> str:
    return readings_query(BLOOM_QUANTITIES, nodes, period)


async def fetch_chl_a(target: InfluxTarget, nodes: Sequence[str], period: Period) -> ReadingRows:
    """The chlorophyll-a readings of `nodes` over the period's local days."""
    return await fetch_readings(target, BLOOM_QUANTITIES, nodes, period)
