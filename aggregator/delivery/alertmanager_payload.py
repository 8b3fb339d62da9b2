"""Pure: an envnet alert as a Prometheus Alertmanager v2 alert (`POST /api/v2/alerts`).

Alertmanager knows an alert by its label set, so the labels are exactly what identifies an
envnet alert and never change while it lives: the rule, the node, the lane (live or late),
and the node's standing classification. What changes (value, message, suspect) goes into the
annotations. A firing alert carries an `endsAt` in the future (a lease): if envnet stops
refreshing it, Alertmanager resolves it by itself when the lease runs out. A resolved alert
carries its resolution time as `endsAt`.

Times: envnet's alert times are event times, which a time-accelerated simulation or a clock
skew may put ahead of the wall clock. Alertmanager judges `endsAt` against its own clock, so
both times are clamped to `now_ms`: a resolved alert is resolved now, not at a future instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

from aggregator.fleet import NodeInfo
from schemas.messages import Alert

FAMILIES: Final = ("air", "noise", "odour", "water", "bloom", "health", "liveness")
Lane = Literal["live", "late"]
# (node, rule, lane): one Alertmanager alert.
AlertKey = tuple[str, str, Lane]


class PostableAlert(msgspec.Struct, frozen=True):
    """Alertmanager's `postableAlert` (api/v2/openapi.yaml)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: str  # noqa: N815 - Alertmanager's field name
    endsAt: str  # noqa: N815 - Alertmanager's field name


def lane(alert: Alert) -> Lane:
    return "late" if alert.late else "live"


def alert_key(alert: Alert) -> AlertKey:
    return (alert.node, alert.rule, lane(alert))


def family(alert: Alert) -> str:
    """The rule family: the rule id's first part (`odour.h2s` → odour); AQI alerts are air."""
    head = alert.rule.partition(".")[0]
    if head in FAMILIES:
        return head
    return "air" if alert.kind == "aqi" else alert.kind


def zone(info: NodeInfo | None, fam: str) -> str:
    """The classification the standard judged this node by, for the alert's family."""
    if info is None:
        return ""
    if fam == "air" and info.air_zone is not None:
        return f"air-{info.air_zone}"  # GB 3095 §4.1 class
    if fam == "noise" and info.noise_zone is not None:
        return f"noise-{info.noise_zone}"  # GB 3096 §4 functional zone
    if fam in ("water", "bloom") and info.water_body is not None:
        target = "" if info.water_target is None else f"-{info.water_target}"
        return f"{info.water_body}{target}"  # GB 3838 body and target class
    if fam == "odour" and info.odour_grade is not None:
        return f"odour-{info.odour_grade}"  # GB 14554 grade
    return ""


def labels_of(alert: Alert, info: NodeInfo | None) -> dict[str, str]:
    fam = family(alert)
    found = {
        "alertname": alert.rule,
        "node": alert.node,
        "family": fam,
        "severity": alert.severity,
        "zone": zone(info, fam),
        "quantity": alert.quantity or "",
        "group": (info.group or "") if info is not None else "",
        "lane": lane(alert),
    }
    # Alertmanager treats an empty label as absent; sending it would only add noise.
    return {k: v for k, v in found.items() if v}


def _iso(ms: int) -> str:
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(x: float) -> str:
    return f"{x:g}"


def annotations_of(alert: Alert) -> dict[str, str]:
    window_end = alert.updated_ms
    window_start = alert.window_start_ms if alert.window_start_ms is not None else window_end
    unit = f" {alert.unit}" if alert.unit else ""
    found = {
        "summary": alert.message,
        "value": f"{_number(alert.value)}{unit}",
        "limit": f"{_number(alert.limit)}{unit}",
        "window_start": _iso(window_start),
        "window_end": _iso(window_end),
        "standard": f"{alert.standard} {alert.clause}".strip(),
        "suspect": "true" if alert.suspect else "false",
        "site": alert.site,
        "acknowledged_by": alert.acked_by or "",
    }
    return {k: v for k, v in found.items() if v}


def postable(alert: Alert, info: NodeInfo | None, now_ms: int, lease_ms: int) -> PostableAlert:
    """The alert as Alertmanager should hold it at `now_ms`: firing with a lease of
    `lease_ms` from now, or resolved at its resolution time (never later than now)."""
    ends = min(alert.updated_ms, now_ms) if alert.state == "resolved" else now_ms + lease_ms
    starts = min(alert.since_ms, now_ms, ends)
    return PostableAlert(labels_of(alert, info), annotations_of(alert), _iso(starts), _iso(ends))


def body(alerts: list[PostableAlert]) -> bytes:
    return msgspec.json.encode(alerts)
