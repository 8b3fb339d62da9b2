"""The demo's live terminal view: state fed by MQTT messages, rendered by a pure function."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas import codec
from schemas.codec import ContractError
from schemas.messages import Alert, AlertEvent
from schemas.quantities import SPECS, Quantity

# Which quantities to show for a node, in this order, when it reports them.
SHOWN: tuple[Quantity, ...] = (
    "pm2_5", "pm10", "o3", "no2", "so2", "co", "laeq", "lamax", "h2s", "nh3", "odour",
    "do", "ph", "chl_a", "tp", "nh3_n",
)  # fmt: skip


@dataclass(slots=True)
class NodeView:
    latest: dict[Quantity, float] = field(default_factory=dict)
    last_ts: int = 0
    online: bool | None = None


@dataclass(slots=True)
class DemoState:
    nodes: dict[str, NodeView] = field(default_factory=dict)
    alerts: dict[tuple[str, str], Alert] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)
    # Every rule that fired while the demo watched, with how often: `events` keeps only the
    # latest few, and `envnet demo --until-alert` waits for one rule.
    fired: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    bad_messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            self._apply(topic, payload)
        except ContractError:
            with self.lock:
                self.bad_messages += 1

    def _apply(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/readings"):
            message = codec.READINGS.decode(payload)
            with self.lock:
                self.messages += 1
                view = self.nodes.setdefault(message.node, NodeView())
                for reading in message.readings:
                    if reading.ts >= view.last_ts or reading.quantity not in view.latest:
                        view.latest[reading.quantity] = reading.value
                view.last_ts = max(view.last_ts, *(r.ts for r in message.readings))
        elif topic.endswith("/status"):
            if not payload:
                return
            status = codec.STATUS.decode(payload)
            with self.lock:
                self.nodes.setdefault(status.node, NodeView()).online = status.state == "online"
        elif "/alerts/" in topic and payload:
            alert = codec.ALERT.decode(payload)
            with self.lock:
                self.alerts[(alert.node, alert.rule)] = alert
        elif topic.endswith("/alert-events"):
            event = codec.ALERT_EVENT.decode(payload)
            with self.lock:
                self.events.append(event)
                del self.events[:-8]
                if event.event == "fired":
                    self.fired[event.alert.rule] = self.fired.get(event.alert.rule, 0) + 1

    def fired_rules(self) -> dict[str, int]:
        with self.lock:
            return dict(self.fired)

    def firing(self) -> list[Alert]:
        with self.lock:
            return [a for a in self.alerts.values() if a.state == "firing"]


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%MZ") if ms else "-"


def render(state: DemoState, *, stored_per_s: float, stored_total: float, header: str) -> str:
    with state.lock:
        nodes = dict(sorted(state.nodes.items()))
        alerts = sorted(state.alerts.values(), key=lambda a: (a.state != "firing", a.node, a.rule))
        events = list(state.events)
    lines = [header, ""]
    lines.append(f"{'node':<22}{'event time':<14}latest values")
    for node, view in nodes.items():
        mark = {True: "", False: " (offline)", None: ""}[view.online]
        values = "  ".join(
            f"{q}={view.latest[q]:.4g}{SPECS[q].unit if q in ('co', 'laeq') else ''}"
            for q in SHOWN
            if q in view.latest
        )
        lines.append(f"{node + mark:<22}{_time(view.last_ts):<14}{values}")
    firing = [a for a in alerts if a.state == "firing"]
    lines += ["", f"active alerts: {len(firing)}"]
    for a in firing[:12]:
        late = " [late]" if a.late else ""
        lines.append(f"  ! {a.node:<20} {a.rule:<24} {a.message}{late}")
    lines += ["", "recent alert events:"]
    for e in events[-5:]:
        lines.append(f"  {_time(e.at_ms)} {e.event:<9} {e.alert.node:<20} {e.alert.rule}")
    lines += ["", f"ingest: {stored_per_s:,.0f} readings/s stored   total {stored_total:,.0f}"]
    return "\n".join(lines)
