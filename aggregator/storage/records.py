"""Storage records: contract messages to line protocol, as pure functions.

Readings take a fast path: a node's tag prefix is built once, and only validated vocabulary
and pattern-checked ids go into the per-reading f-string, so nothing there needs escaping.
Everything else goes through lineprotocol.line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import msgspec

from aggregator.engine.rules.air import AqiRecord
from aggregator.engine.rules.point import WaterRecord
from aggregator.engine.windows import WindowResult
from aggregator.fleet import NodeInfo
from aggregator.storage.lineprotocol import (
    escape_key,
    escape_measurement,
    format_field,
    line,
    tag_set,
)
from schemas.messages import Alert, ReadingValues, StatusMessage
from schemas.quantities import SPECS
from schemas.storage import ALERTS, AQI, NODE_STATUS, NODES, READINGS, WATER_QUALITY, WINDOWS


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

    def _series_key(self, r: ReadingValues) -> str:
        key = (r.sensor, r.quantity, r.stat, r.period_s)
        series = self._series.get(key)
        if series is None:
            family = SPECS[r.quantity].family
            series = self._series[key] = (
                f"{READINGS.name},family={family},node={self._node},period_s={r.period_s},"
                f"quantity={r.quantity},sensor={r.sensor},site={self._site},stat={r.stat} value="
            )
        return series

    def line(self, r: ReadingValues) -> str:
        """The reading as sent: its value, flags and, if it has one, its sensor's serial."""
        # Reading values are finite floats (the contract's bounds), so repr() is exact.
        return self._formatted(r, f"{float(r.value)!r}")

    def lines(self, readings: Sequence[ReadingValues]) -> list[str]:
        """`line` of each reading."""
        out: list[str] = []
        self.extend(out, readings, iter(value_texts([r.value for r in readings])))
        return out

    def extend(
        self, out: list[str], readings: Sequence[ReadingValues], values: Iterator[str]
    ) -> None:
        """Append `line` of each reading to `out`, taking the text of its value from `values`:
        `value_texts` of these readings' values and maybe more after them, so that one call
        formats the values of a whole write (aggregator.storage.pipeline.chunk_lines). zip()
        asks `readings` first, so it takes no value past the last reading."""
        series = self._series
        append = out.append
        for r, value in zip(readings, values):  # noqa: B905 - see above: values may go on
            if r.serial is None and not r.flags:
                prefix = series.get((r.sensor, r.quantity, r.stat, r.period_s))
                if prefix is not None:
                    append(f"{prefix}{value} {r.ts}")
                    continue
            append(self._formatted(r, value))

    def _formatted(self, r: ReadingValues, value: str) -> str:
        if r.serial is None:  # first: the fast path measured fastest this way round
            if r.flags:
                return f'{self._series_key(r)}{value},flags="{",".join(r.flags)}" {r.ts}'
            return f"{self._series_key(r)}{value} {r.ts}"
        return self._with_serial(r, value)

    def calibrated_line(self, r: ReadingValues, raw: float, version: str) -> str:
        """`r` carries the calibrated value; the sensor's own value and the calibration
        version are stored beside it. Versions and serials are pattern-checked (the
        calibration record, the contract): nothing to escape."""
        return self._with_serial(r, f'{float(r.value)!r},raw={float(raw)!r},cal="{version}"')

    def rejected_line(self, r: ReadingValues, version: str) -> str:
        """Calibration `version` gave a value outside the physical bounds: the sensor's own
        value is stored as the value, and the rejected version is named."""
        raw = f"{float(r.value)!r}"
        return self._with_serial(r, f'{raw},raw={raw},cal_rejected="{version}"')

    def _with_serial(self, r: ReadingValues, fields: str) -> str:
        flags = f',flags="{",".join(r.flags)}"' if r.flags else ""
        return f'{self._series_key(r)}{fields}{flags},serial="{r.serial}" {r.ts}'


def alert_line(alert: Alert, event: str, at_ms: int) -> str:
    """One alert transition, at `at_ms`: the event time of fired/resolved, the wall clock of
    renotified/acknowledged (so they never overwrite the fired point of the same series)."""
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
        ("late", alert.late),
        ("suspect", alert.suspect),
        ("since_ms", alert.since_ms),
        ("window_start_ms", alert.window_start_ms),
        ("acked_by", alert.acked_by),
    ]
    return line(ALERTS.name, tags, fields, at_ms)


def status_line(status: StatusMessage, info: NodeInfo, received_ms: int) -> str:
    journal = status.journal
    sensors = status.sensors
    fields: list[tuple[str, float | int | bool | str | None]] = [
        ("online", status.state == "online"),
        ("journal_depth", journal.depth if journal else None),
        ("journal_dropped", journal.dropped if journal else None),
        ("journal_dropped_bytes", journal.dropped_bytes if journal else None),
        ("journal_bytes", journal.bytes if journal else None),
        ("journal_oldest_age_s", journal.oldest_age_s if journal else None),
        ("sensors_ok", sum(1 for s in sensors if s.state == "ok") if sensors else None),
        ("sensors_failed", sum(1 for s in sensors if s.state == "failed") if sensors else None),
    ]
    # The offline will carries no timestamp: it is stamped on arrival.
    ts = status.ts if status.ts is not None else received_ms
    return line(NODE_STATUS.name, [("node", info.node), ("site", info.site)], fields, ts)


Field = tuple[str, float | int | bool | str | None]


class WindowLines:
    """Builds closed windows' lines, the measurement and tags cached per series: every series
    closes a window an hour (more at day ends), and escaping and sorting its five tags each
    time cost the alerting worker more than the rest of the line."""

    __slots__ = ("_series",)

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str, str, str], str] = {}

    def line(self, w: WindowResult, info: NodeInfo) -> str | None:
        """A closed window; None for one without data (nothing to plot)."""
        if w.value != w.value:  # nan: no data in the window
            return None
        _, sensor, quantity = w.key
        key = (info.node, info.site, sensor, quantity, w.kind)
        series = self._series.get(key)
        if series is None:
            tags = [("node", info.node), ("site", info.site), ("sensor", sensor),
                    ("quantity", quantity), ("window", w.kind)]  # fmt: skip
            series = self._series[key] = escape_measurement(WINDOWS.name) + tag_set(tags)
        fields = (
            f"value={format_field(float(w.value))},valid={_BOOL[w.valid]},"
            f"hours={w.hours}i,coverage_s={w.coverage_s}i"
        )
        if w.l10 is not None or w.l50 is not None or w.l90 is not None:
            fields += "".join(
                f",{name}={format_field(float(v))}"
                for name, v in (("l10", w.l10), ("l50", w.l50), ("l90", w.l90))
                if v is not None
            )
        return f"{series} {fields},revision={_BOOL[w.revision]} {w.start_ms}"


_BOOL: Final = {True: "true", False: "false"}
_JSON: Final = msgspec.json.Encoder()


def value_texts(values: list[float]) -> list[str]:
    """Reading values as line-protocol floats, all formatted in one C call: msgspec writes the
    shortest form that reads back exactly, as repr() does, with exponents as 1e-5 and 1e300
    rather than 1e-05 and 1e+300 (InfluxDB reads both). repr() per value was a third of the
    time of building a reading's line. JSON numbers hold no comma, so the list splits on them."""
    text = _JSON.encode(values)[1:-1].decode()
    return text.split(",") if text else []  # "".split(",") would be one empty text


def aqi_line(record: AqiRecord, info: NodeInfo) -> str | None:
    result = record.result
    if result.aqi is None or result.category is None:
        return None
    tags = [("node", info.node), ("site", info.site), ("report", record.report),
            ("edition", result.edition)]  # fmt: skip
    iaqi = result.by_pollutant
    fields: list[Field] = [
        ("aqi", result.aqi),
        ("level", result.category.level),
        ("category", result.category.name_en),
        ("colour", result.category.hex),
        ("primary", ",".join(result.primary)),
        ("missing", ",".join(result.missing)),
        ("publishable", result.publishable),
        *((f"iaqi_{p}", v) for p, v in sorted(iaqi.items())),
    ]
    return line(AQI.name, tags, fields, record.start_ms)


def water_line(record: WaterRecord, info: NodeInfo) -> str:
    e = record.evaluation
    tags = [("node", info.node), ("site", info.site), ("body", e.body)]
    trophic = record.trophic
    fields: list[Field] = [
        ("class", e.water_class),
        ("target", e.target),
        ("meets_target", e.meets_target),
        ("exceeding", ",".join(f"{c.item}:{c.multiple:.3g}" for c in e.exceeding)),
        ("tli", None if trophic is None else round(trophic.tli, 2)),
        ("trophic_state", None if trophic is None else trophic.state.name_en),
    ]
    return line(WATER_QUALITY.name, tags, fields, record.at_ms)


def node_tags(info: NodeInfo) -> list[tuple[str, str]]:
    """The node's inventory labels as `nodes` tags; an empty value leaves its tag out."""
    return [
        ("node", info.node),
        ("group", info.group or ""),
        ("site_type", info.site_type or ""),
        ("air_zone", "" if info.air_zone is None else str(info.air_zone)),
        ("noise_zone", info.noise_zone or ""),
        ("water_body", info.water_body or ""),
    ]


def node_lines(nodes: Iterable[NodeInfo], retired: Iterable[str], at_ms: int) -> list[str]:
    """The inventory as `nodes` points at `at_ms`: each current node with its location and
    active=true, and each `retired` node id (stored before, no longer in the inventory) with
    active=false only, so the map drops it. A query taking each node's newest point across
    its series therefore sees the current inventory, whatever tags a node had before."""
    out = []
    for info in nodes:
        where = info.location
        fields: list[Field] = [
            ("lat", None if where is None else float(where.lat)),
            ("lon", None if where is None else float(where.lon)),
            ("site", info.site),
            ("active", True),
        ]
        out.append(line(NODES.name, node_tags(info), fields, at_ms))
    out.extend(line(NODES.name, [("node", node)], [("active", False)], at_ms) for node in retired)
    return out
