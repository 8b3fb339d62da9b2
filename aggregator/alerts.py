"""Alert state: observations in, transitions out. Pure.

Exactly one alert per (node, rule). An observation that exceeds fires a resolved or absent
alert; one that does not resolves a firing alert. Observations older than the alert's last
update are ignored, so late data cannot flip the current state backwards. (Issue #3 adds
pending states, minimum durations, hysteresis, re-notification and acknowledgement.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aggregator.fleet import NodeInfo
from aggregator.rules import Observation
from schemas.messages import ALERT_SCHEMA, Alert

Event = Literal["fired", "resolved"]


@dataclass(frozen=True, slots=True)
class Transition:
    event: Event
    alert: Alert


class AlertBook:
    def __init__(self) -> None:
        self._alerts: dict[tuple[str, str], Alert] = {}

    def apply(self, obs: Observation, info: NodeInfo) -> Transition | None:
        key = (obs.node, obs.rule.id)
        current = self._alerts.get(key)
        if current is not None and obs.at_ms < current.updated_ms:
            return None
        firing = current is not None and current.state == "firing"
        if obs.exceeded and not firing:
            alert = _alert(obs, info, state="firing", since_ms=obs.at_ms)
            self._alerts[key] = alert
            return Transition("fired", alert)
        if not obs.exceeded and firing and current is not None:
            alert = _alert(obs, info, state="resolved", since_ms=current.since_ms)
            self._alerts[key] = alert
            return Transition("resolved", alert)
        if current is not None:
            self._alerts[key] = _alert(obs, info, state=current.state, since_ms=current.since_ms)
        return None

    def firing(self) -> list[Alert]:
        return [a for a in self._alerts.values() if a.state == "firing"]


def _alert(
    obs: Observation, info: NodeInfo, *, state: Literal["firing", "resolved"], since_ms: int
) -> Alert:
    rule = obs.rule
    return Alert(
        schema=ALERT_SCHEMA,
        node=obs.node,
        rule=rule.id,
        kind=rule.kind,
        state=state,
        severity=rule.severity,
        standard=rule.standard,
        clause=rule.clause,
        window_s=rule.window_s,
        value=round(obs.value, 3),
        limit=obs.limit,
        since_ms=since_ms,
        updated_ms=obs.at_ms,
        message=obs.message[:300],
        quantity=rule.quantity,
        unit=rule.unit,
        site=info.site,
        location=info.location,
        late=obs.late,
    )
