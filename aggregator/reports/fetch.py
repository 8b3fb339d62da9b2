"""The I/O shell of the reports: ask InfluxDB the queries (aggregator.reports.queries) over
HTTP /query, with the aggregator's own [influx] target (agg.toml, ENVNET_INFLUX_*)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from aggregator.reports.queries import AnswerError
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.influxql import InfluxQueryError, influxql


class ReportServiceError(RuntimeError):
    """InfluxDB could not be asked, or did not answer with query results."""


async def ask(target: InfluxTarget, queries: Sequence[str]) -> list[Mapping[str, Any]]:
    """Each query's first statement result, in order, over one HTTP session."""
    timeout = aiohttp.ClientTimeout(total=target.timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout, auth=target.auth()) as session:
            return [await influxql(session, target, q) for q in queries]
    except (InfluxQueryError, AnswerError) as exc:
        raise ReportServiceError(f"InfluxDB {target.display}: {exc}") from None
