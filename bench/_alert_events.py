"""Alert transitions as stored in InfluxDB's `alerts` measurement, and their comparison
between runs of the same seeded input. Pure.

Only `fired` and `resolved` points are compared: they are stamped in event time, so the same
input gives the same points whatever the replica count or a crash. `renotified` and
`acknowledged` are stamped on the wall clock (aggregator.storage.records.alert_line).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

COMPARED_EVENTS: Final = frozenset(("fired", "resolved"))
# One query per node group would be slower; the alerts are few (a tenth of the nodes).
ALERTS_QUERY: Final = 'SELECT "state", "event" FROM "alerts" GROUP BY "node", "rule"'


@dataclass(frozen=True, slots=True, order=True)
class AlertEvent:
    node: str
    rule: str
    event: str  # fired | resolved
    state: str
    ts: int  # event time, epoch ms


@dataclass(frozen=True, slots=True)
class AlertDiff:
    missing: tuple[AlertEvent, ...]  # in the reference, not in the other
    extra: tuple[AlertEvent, ...]  # in the other, not in the reference (or more often)

    @property
    def equal(self) -> bool:
        return not self.missing and not self.extra


class AlertQueryError(ValueError):
    """InfluxDB answered the alerts query with something unexpected."""


def parse_alerts(answer: Mapping[str, object]) -> list[AlertEvent]:
    """The compared alert points of an InfluxDB /query answer to ALERTS_QUERY, sorted."""
    try:
        results = answer["results"]
        if not isinstance(results, list) or not results or "error" in results[0]:
            raise AlertQueryError(f"alerts query failed: {str(answer)[:300]}")
        out = []
        for series in results[0].get("series", []):
            tags = series["tags"]
            columns = series["columns"]
            i_state, i_event = columns.index("state"), columns.index("event")
            for row in series["values"]:
                if row[i_event] in COMPARED_EVENTS:
                    out.append(
                        AlertEvent(tags["node"], tags["rule"], row[i_event], row[i_state], row[0])
                    )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, AlertQueryError):
            raise
        raise AlertQueryError(f"unexpected alerts answer: {str(answer)[:300]}") from None
    return sorted(out)


def compare(reference: Iterable[AlertEvent], other: Iterable[AlertEvent]) -> AlertDiff:
    """Event-by-event difference, counting repeats (a doubled alert is an extra)."""
    ref, oth = Counter(reference), Counter(other)
    return AlertDiff(
        missing=tuple(sorted((ref - oth).elements())),
        extra=tuple(sorted((oth - ref).elements())),
    )
