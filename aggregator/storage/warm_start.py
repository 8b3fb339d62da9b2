"""Warm start: rebuild window, health and liveness state from what InfluxDB already holds.

InfluxDB is the durable record of every acknowledged reading, so the aggregator does not keep
a second copy of its windows: after a restart (or a crash) it reads back the recent readings
of the windowed quantities and replays them, silently, through its evaluators. Alert state
itself is saved separately (aggregator.worker.state_store), so nothing replayed here pages again;
open alerts a replica's state file lacks are adopted from the stored `alerts` points
(aggregator.storage.alert_history, aggregator.engine.adoption).

The query is InfluxQL over `/query`: InfluxDB 1.x natively; InfluxDB 2.x through its v1
compatibility API, which needs a DBRP mapping for the bucket (`influx v1 dbrp create`);
InfluxDB 3 answers InfluxQL on the same path. A server that cannot answer leaves the windows
empty: the aggregator logs it, counts it and carries on.

`parse_series` is pure and tested without a database; `fetch` is the HTTP shell.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import aiohttp
import msgspec

from aggregator.storage.influx import InfluxTarget
from aggregator.storage.influxql import InfluxQueryError, influxql, node_condition
from schemas.messages import Flag, Reading
from schemas.quantities import SPECS, Quantity, Statistic
from schemas.storage import READINGS


class WarmStartError(RuntimeError):
    """InfluxDB could not be asked, or answered with something other than query results."""


@dataclass(frozen=True, slots=True)
class Replayed:
    node: str
    reading: Reading


@dataclass(slots=True)
class ParseCounts:
    rows: int = 0
    skipped: int = 0


_FLAGS: Final = frozenset(Flag.__args__)  # type: ignore[attr-defined]


def query_for(quantity: Quantity, since_ms: int, nodes: Sequence[str] | None = None) -> str:
    """The recent readings of one quantity: of every node, or (a partitioned replica's
    warm start) of `nodes` alone, so N replicas do not each read the whole fleet."""
    # quantity is from the fixed vocabulary, since_ms an int, and node ids match ID_PATTERN
    # (checked again here): nothing to inject.
    only = ""
    if nodes is not None:
        try:
            only = f" AND {node_condition(nodes)}"
        except ValueError as exc:
            raise ValueError(f"warm start: {exc}") from None
    return (
        f'SELECT "value", "flags" FROM "{READINGS.name}" '  # noqa: S608 - closed vocabulary
        f"WHERE \"quantity\" = '{quantity}' AND time >= {since_ms}ms{only} "
        'GROUP BY "node", "sensor", "stat", "period_s"'
    )


def parse_series(
    quantity: Quantity, answer: Mapping[str, Any], counts: ParseCounts
) -> Iterator[Replayed]:
    """Readings from one /query answer (epoch=ms). Rows that no longer pass the contract (a
    reading stored before a vocabulary change, say) are skipped and counted."""
    results = answer.get("results")
    if not isinstance(results, list) or not results:
        raise WarmStartError(f"unexpected /query answer: {str(answer)[:200]}")
    first = results[0]
    if "error" in first:
        raise WarmStartError(f"InfluxDB: {first['error']}")
    unit = SPECS[quantity].unit
    for series in first.get("series", []):
        tags = series.get("tags", {})
        columns = series.get("columns", [])
        for row in series.get("values", []):
            counts.rows += 1
            replayed = _reading(quantity, unit, tags, dict(zip(columns, row, strict=False)))
            if replayed is None:
                counts.skipped += 1
            else:
                yield replayed


def _reading(
    quantity: Quantity, unit: str, tags: Mapping[str, str], row: Mapping[str, Any]
) -> Replayed | None:
    flags = tuple(f for f in (row.get("flags") or "").split(",") if f)
    if not set(flags) <= _FLAGS:
        return None
    try:
        reading = msgspec.convert(
            {
                "ts": row["time"],
                "quantity": quantity,
                "value": row["value"],
                "unit": unit,
                "period_s": int(tags["period_s"]),
                "stat": cast(Statistic, tags["stat"]),
                "sensor": tags["sensor"],
                "flags": flags,
            },
            Reading,
        )
    except (KeyError, ValueError, TypeError, msgspec.ValidationError):
        return None
    return Replayed(tags.get("node", ""), reading)


async def fetch(
    session: aiohttp.ClientSession,
    target: InfluxTarget,
    quantity: Quantity,
    since_ms: int,
    nodes: Sequence[str] | None = None,
) -> Mapping[str, Any]:
    """The /query answer for one quantity's recent readings (aggregator.storage.influxql)."""
    try:
        first = await influxql(session, target, query_for(quantity, since_ms, nodes))
    except InfluxQueryError as exc:
        raise WarmStartError(str(exc)) from None
    return {"results": [first]}
