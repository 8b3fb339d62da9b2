"""Storage records: contract messages to line protocol, as pure functions.

Readings take a fast path: a node's tag prefix is built once, and only validated vocabulary
and pattern-checked ids go into the per-reading f-string, so nothing there needs escaping.
Everything else goes through lineprotocol.line.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.fleet import NodeInfo
from aggregator.lineprotocol import escape_key, format_field, line
from aggregator.storage_schema import ALERTS, NODE_STATUS, READINGS
from schemas.messages import Alert, Reading, StatusMessage
from schemas.quantities import SPECS


@dataclass(frozen=True, slots=True)
class NodeTags:
    """The escaped parts of a node's reading lines that do not change per reading."""

    node: str
    site: str

    @classmethod
    def of(cls, info: NodeInfo) -> NodeTags:
        return cls(node=escape_key(info.node), site=escape_key(info.site))


def reading_line(tags: NodeTags, reading: Reading) -> str:
    # Tag keys in sorted order: family, node, period_s, quantity, sensor, site, stat.
    # quantity, stat and family come from closed vocabularies; node and sensor match
    # ID_PATTERN; the site is pre-escaped. None of them can carry a metacharacter.
    family = SPECS[reading.quantity].family
    head = (
        f"{READINGS.name},family={family},node={tags.node},period_s={reading.period_s},"
        f"quantity={reading.quantity},sensor={reading.sensor},site={tags.site},"
        f"stat={reading.stat} value={format_field(float(reading.value))}"
    )
    if reading.flags:
        head += ',flags="' + ",".join(reading.flags) + '"'
    return f"{head} {reading.ts}"


def reading_lines(tags: NodeTags, readings: list[Reading]) -> list[str]:
    return [reading_line(tags, r) for r in readings]


def alert_line(alert: Alert, event: str, late: bool) -> str:
    tags = [
        ("node", alert.node),
        ("site", alert.site),
        ("rule", alert.rule),
        ("kind", alert.kind),
        ("severity", alert.severity),
        ("quantity", alert.quantity or ""),
    ]
    fields: list[tuple[str, float | int | bool | str | None]] = [
        ("state", alert.state),
        ("event", event),
        ("value", float(alert.value)),
        ("limit", float(alert.limit)),
        ("window_s", alert.window_s),
        ("standard", alert.standard),
        ("clause", alert.clause),
        ("message", alert.message),
        ("late", late),
    ]
    return line(ALERTS.name, tags, fields, alert.updated_ms)


def status_line(status: StatusMessage, info: NodeInfo, received_ms: int) -> str:
    journal = status.journal
    sensors = status.sensors
    fields: list[tuple[str, float | int | bool | str | None]] = [
        ("online", status.state == "online"),
        ("journal_depth", journal.depth if journal else None),
        ("journal_dropped", journal.dropped if journal else None),
        ("sensors_ok", sum(1 for s in sensors if s.state == "ok") if sensors else None),
        ("sensors_failed", sum(1 for s in sensors if s.state == "failed") if sensors else None),
    ]
    # The offline will carries no timestamp: it is stamped on arrival.
    ts = status.ts if status.ts is not None else received_ms
    return line(NODE_STATUS.name, [("node", info.node), ("site", info.site)], fields, ts)
