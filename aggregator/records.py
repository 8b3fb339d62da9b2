"""Storage records: contract messages to line protocol, as pure functions.

Readings take a fast path: a node's tag prefix is built once, and only validated vocabulary
and pattern-checked ids go into the per-reading f-string, so nothing there needs escaping.
Everything else goes through lineprotocol.line.
"""

from __future__ import annotations

from aggregator.fleet import NodeInfo
from aggregator.lineprotocol import escape_key, line
from aggregator.storage_schema import ALERTS, NODE_STATUS, READINGS
from schemas.messages import Alert, Reading, StatusMessage
from schemas.quantities import SPECS


class ReadingLines:
    """Builds one node's reading lines.

    The series part of a line (measurement and tags) is cached per (sensor, quantity, stat,
    period): a node has a handful of series and sends them again and again. Tag keys are in
    sorted order: family, node, period_s, quantity, sensor, site, stat. quantity, stat and
    family come from closed vocabularies, node and sensor match ID_PATTERN, and the site is
    escaped once, so nothing per reading needs escaping.
    """

    __slots__ = ("_node", "_series", "_site")

    def __init__(self, info: NodeInfo) -> None:
        self._node = escape_key(info.node)
        self._site = escape_key(info.site)
        self._series: dict[tuple[str, str, str, int], str] = {}

    def _series_key(self, r: Reading) -> str:
        key = (r.sensor, r.quantity, r.stat, r.period_s)
        series = self._series.get(key)
        if series is None:
            family = SPECS[r.quantity].family
            series = self._series[key] = (
                f"{READINGS.name},family={family},node={self._node},period_s={r.period_s},"
                f"quantity={r.quantity},sensor={r.sensor},site={self._site},stat={r.stat} value="
            )
        return series

    def line(self, r: Reading) -> str:
        # Reading values are finite floats (the contract's bounds), so repr() is exact.
        if r.flags:
            return f'{self._series_key(r)}{float(r.value)!r},flags="{",".join(r.flags)}" {r.ts}'
        return f"{self._series_key(r)}{float(r.value)!r} {r.ts}"

    def lines(self, readings: list[Reading]) -> list[str]:
        line = self.line
        return [line(r) for r in readings]


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
