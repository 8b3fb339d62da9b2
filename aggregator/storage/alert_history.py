"""Alert history: the recent `alerts` points of a replica's nodes, read back at start.

What aggregator.engine.adoption rebuilds open alert tracks from, when a node's new owner does
not share the state file of its old one (docs/cluster/replicas.md). The query is InfluxQL over
`/query` (aggregator.storage.influxql), the windows warm start's path: InfluxDB 1.x natively,
2.x through its v1 compatibility API (a DBRP mapping for the bucket), InfluxDB 3 on the same
path. Derived measurements are read from `[influx] derived_retention_policy` when one is set.

`query_for` and `parse_events` are pure and tested without a database; `fetch` is the shell.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast, get_args

import aiohttp
import msgspec

from aggregator.engine.adoption import StoredEvent
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.influxql import InfluxQueryError, influxql, node_condition
from aggregator.storage.setup import quote_ident
from schemas.messages import ALERT_SCHEMA, Alert, AlertEventKind
from schemas.quantities import SPECS
from schemas.storage import ALERTS

# Node ids per query: a replica of a large fleet asks a few bounded queries (and answers)
# instead of one holding every point of thousands of nodes.
NODES_PER_QUERY: Final = 200
_EVENTS: Final = frozenset(get_args(AlertEventKind))


class AlertHistoryError(RuntimeError):
    """InfluxDB could not be asked, or answered with something other than query results."""


@dataclass(slots=True)
class EventCounts:
    rows: int = 0
    skipped: int = 0


def chunks(nodes: Sequence[str], size: int = NODES_PER_QUERY) -> list[Sequence[str]]:
    return [nodes[i : i + size] for i in range(0, len(nodes), size)]


def query_for(target: InfluxTarget, since_ms: int, nodes: Sequence[str]) -> str:
    """Every `alerts` point of `nodes` from `since_ms` on, grouped by (node, rule)."""
    # since_ms is an int and node ids are checked by node_condition: nothing to inject.
    try:
        only = node_condition(nodes)
    except ValueError as exc:
        raise ValueError(f"alert history: {exc}") from None
    measurement = quote_ident(ALERTS.name)
    if target.splits_derived:
        measurement = f"{quote_ident(target.derived_retention_policy)}.{measurement}"
    return (
        f"SELECT * FROM {measurement} "  # noqa: S608 - closed vocabulary, checked ids
        f'WHERE time >= {since_ms}ms AND {only} GROUP BY "node", "rule"'
    )


def parse_events(answer: Mapping[str, Any], counts: EventCounts) -> Iterator[StoredEvent]:
    """The events of one /query result ({"series": [...]}, epoch=ms). A point that does not
    make a valid alert (written before a vocabulary change, say) is skipped and counted."""
    for series in answer.get("series") or ():
        tags = series.get("tags") or {}
        columns = series.get("columns") or []
        for row in series.get("values") or ():
            counts.rows += 1
            event = _event(tags, dict(zip(columns, row, strict=False)))
            if event is None:
                counts.skipped += 1
            else:
                yield event


def _event(tags: Mapping[str, Any], row: Mapping[str, Any]) -> StoredEvent | None:
    point = {**row, **tags}
    event, at_ms = point.get("event"), point.get("time")
    if event not in _EVENTS or not isinstance(at_ms, int):
        return None
    quantity = point.get("quantity") or None
    fields = {
        "schema": ALERT_SCHEMA,
        "node": point.get("node"),
        "rule": point.get("rule"),
        "kind": point.get("kind"),
        "state": point.get("state"),
        "severity": point.get("severity"),
        "standard": point.get("standard"),
        "clause": point.get("clause"),
        "window_s": _int(point.get("window_s")),
        "value": point.get("value"),
        "limit": point.get("limit"),
        "since_ms": _int(point.get("since_ms")),
        "updated_ms": at_ms,
        "message": point.get("message"),
        "quantity": quantity,
        "unit": SPECS[quantity].unit if quantity in SPECS else None,
        "site": point.get("site") or "",
        "late": point.get("late"),
        "suspect": point.get("suspect"),
        "window_start_ms": _int(point.get("window_start_ms")),
        "acked_by": point.get("acked_by") or None,
    }
    try:
        alert = msgspec.convert({k: v for k, v in fields.items() if v is not None}, Alert)
    except msgspec.ValidationError:
        return None
    return StoredEvent(cast(AlertEventKind, event), at_ms, alert)


def _int(value: object) -> object:
    """Integer fields as integers (a JSON decoder may hand back 5.0 for 5)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


async def fetch(
    session: aiohttp.ClientSession, target: InfluxTarget, since_ms: int, nodes: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The /query results for `nodes`' alert points since `since_ms`, a chunk of nodes each."""
    out: list[Mapping[str, Any]] = []
    for chunk in chunks(nodes):
        try:
            out.append(await influxql(session, target, query_for(target, since_ms, chunk)))
        except InfluxQueryError as exc:
            raise AlertHistoryError(str(exc)) from None
    return out
