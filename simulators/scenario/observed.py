"""The alert events a run produced, read back from InfluxDB's `alerts` measurement. Pure:
the query is text, and its result the decoded /query JSON.

Each stored transition (schemas/storage.py ALERTS) is one point at its event time, tagged
node and rule, with fields event, late and suspect. Only `fired` and `resolved` are events
an expectation can name. Times become event seconds after the node's origin; events after
the node's end (a simulated node's duration, when the runner stops it) are left out, since
the run's own shutdown raises them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from simulators.scenario.verdict import Observed

ALERTS_QUERY: Final = (
    'SELECT "event", "late", "suspect", "value" FROM "alerts" '
    'WHERE "event" = \'fired\' OR "event" = \'resolved\' GROUP BY "node", "rule"'
)


class ObservedParseError(ValueError):
    """A /query result that is not what InfluxDB returns for ALERTS_QUERY."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """A node's event-time origin and the end of its judged span, epoch ms."""

    origin_ms: int
    end_ms: int | None


def observed_events(result: Mapping[str, Any], timelines: Mapping[str, Timeline]) -> list[Observed]:
    """Events of the nodes in `timelines` within their spans, in time order."""
    out: list[Observed] = []
    for series in _series(result):
        tags = series.get("tags") or {}
        node, rule = tags.get("node"), tags.get("rule")
        if not isinstance(node, str) or not isinstance(rule, str):
            continue
        timeline = timelines.get(node)
        if timeline is None:
            continue
        columns = series.get("columns")
        if not isinstance(columns, list):
            raise ObservedParseError("a series without columns")
        for row in series.get("values") or []:
            event = _event(node, rule, dict(zip(columns, row, strict=False)), timeline)
            if event is not None:
                out.append(event)
    return sorted(out, key=lambda o: (o.at_s, o.node, o.rule, o.event))


def _series(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    results = result.get("results")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise ObservedParseError("no results in the /query answer")
    if "error" in results[0]:
        raise ObservedParseError(f"InfluxDB: {results[0]['error']}")
    series = results[0].get("series", [])
    if not isinstance(series, list):
        raise ObservedParseError("series is not a list")
    return [s for s in series if isinstance(s, dict)]


def _event(node: str, rule: str, point: dict[str, Any], timeline: Timeline) -> Observed | None:
    at, kind = point.get("time"), point.get("event")
    if not isinstance(at, int) or kind not in ("fired", "resolved"):
        raise ObservedParseError(f"{node} {rule}: a point without time or event: {point}")
    if timeline.end_ms is not None and at > timeline.end_ms:
        return None
    value = point.get("value")
    return Observed(
        node=node,
        rule=rule,
        event=kind,
        at_s=(at - timeline.origin_ms) / 1000.0,
        lane="late" if point.get("late") is True else "live",
        suspect=point.get("suspect") is True,
        value=float(value) if isinstance(value, int | float) else None,
    )
