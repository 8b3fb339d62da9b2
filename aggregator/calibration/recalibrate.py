"""Recalibrate history: rewrite stored readings with the calibration book as it is now.

Every reading stored with a `serial` keeps the sensor's own value (`raw`, or `value` itself
when no calibration applied), so a new or corrected calibration record can be applied to the
past. This reads those points back over InfluxQL (aggregator.storage.influxql), recomputes each from
its raw value, and writes the ones that change through aggregator.storage.influx.InfluxWriter. A
point written again with the same measurement, tag set and time overwrites the fields it
names, so the rewrite replaces the value in place and leaves `flags` and `serial` as they were.

InfluxDB cannot delete a field from a point, so a rewrite always writes `raw`, `cal` and
`cal_rejected`, with an empty string for "none".

`plan` and `parse_points` are pure; `recalibrate` is the I/O shell. Running it twice does
nothing the second time (every point is then unchanged). Derived records (windows, AQI,
alerts) are not recomputed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import aiohttp

from aggregator.calibration.book import CalibratedOutOfBoundsError, CalibrationBook
from aggregator.storage.influx import InfluxTarget, InfluxWriter, WriteError
from aggregator.storage.influxql import InfluxQueryError, influxql
from aggregator.storage.lineprotocol import line
from schemas.messages import ID_PATTERN, ID_REGEX
from schemas.storage import READINGS

Outcome = Literal["recalibrated", "unchanged", "no_calibration", "out_of_bounds"]

DEFAULT_CHUNK_MS: Final = 6 * 3_600_000
DEFAULT_BATCH_LINES: Final = 5000


class RecalibrationError(RuntimeError):
    """Reading or rewriting history failed; points before the failure may be rewritten
    already, which is harmless: running again finds them unchanged."""


class TimeArgumentError(ValueError):
    """A time that is not ISO 8601 with a UTC offset."""


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """One `readings` point with a serial, as InfluxDB returned it."""

    tags: tuple[tuple[str, str], ...]  # the whole tag set: the series the rewrite must hit
    quantity: str
    ts_ms: int
    value: float
    raw: float | None
    cal: str
    cal_rejected: str
    serial: str

    @property
    def sensor_value(self) -> float:
        """What the sensor measured: `raw` when stored, else the value was never calibrated."""
        return self.value if self.raw is None else self.raw


@dataclass(slots=True)
class RecalibrationCounts:
    recalibrated: int = 0  # a record applies, and the value or version changed
    unchanged: int = 0  # already as the current book has it
    no_calibration: int = 0  # no record applies (some of these reverted to the raw value)
    reverted: int = 0  # were calibrated, no record applies now: value = raw again
    out_of_bounds: int = 0  # the record gives a value outside the physical bounds: raw kept
    skipped: int = 0  # rows that are not readable readings
    written: int = 0  # points rewritten (0 in a dry run)

    def add(self, outcome: Outcome, rewrite: bool) -> None:
        if outcome == "recalibrated":
            if rewrite:
                self.recalibrated += 1
            else:
                self.unchanged += 1
        elif outcome == "no_calibration":
            self.no_calibration += 1
            self.reverted += rewrite
        else:
            self.out_of_bounds += 1


@dataclass(frozen=True, slots=True)
class RecalibrationRequest:
    since_ms: int
    until_ms: int
    node: str | None = None
    dry_run: bool = False
    chunk_ms: int = DEFAULT_CHUNK_MS
    batch_lines: int = DEFAULT_BATCH_LINES

    def __post_init__(self) -> None:
        if self.until_ms <= self.since_ms:
            raise ValueError("--until must be after --since")
        if self.node is not None and not ID_REGEX.match(self.node):
            raise ValueError(f"node {self.node!r} is not a node id ({ID_PATTERN})")
        if self.chunk_ms <= 0 or self.batch_lines <= 0:
            raise ValueError("chunk and batch sizes must be positive")


def parse_time_ms(text: str) -> int:
    """ISO 8601 with a UTC offset ('2026-03-01T00:00:00+08:00', '…Z') to epoch ms."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise TimeArgumentError(f"{text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise TimeArgumentError(f"{text!r} has no UTC offset: write e.g. {text}+08:00")
    return round(at.timestamp() * 1000)


def query_for(since_ms: int, until_ms: int, node: str | None) -> str:
    # Only ints and a pattern-checked node id are interpolated: nothing to inject.
    where = f'time >= {since_ms}ms AND time < {until_ms}ms AND "serial" =~ /./'
    if node is not None:
        where += f" AND \"node\" = '{node}'"
    return (
        f'SELECT "value", "raw", "cal", "cal_rejected", "serial" FROM "{READINGS.name}" '  # noqa: S608
        f"WHERE {where} GROUP BY *"
    )


def parse_points(result: Mapping[str, Any], counts: RecalibrationCounts) -> Iterator[StoredPoint]:
    """The points of one query result; rows that are not readable readings are counted."""
    for series in result.get("series", []):
        tags = series.get("tags") or {}
        columns = series.get("columns", [])
        tag_set = tuple(sorted((str(k), str(v)) for k, v in tags.items() if v))
        for row in series.get("values", []):
            point = _point(tag_set, tags.get("quantity"), dict(zip(columns, row, strict=False)))
            if point is None:
                counts.skipped += 1
            else:
                yield point


def _point(
    tags: tuple[tuple[str, str], ...], quantity: object, row: Mapping[str, Any]
) -> StoredPoint | None:
    value, raw, ts, serial = row.get("value"), row.get("raw"), row.get("time"), row.get("serial")
    if not isinstance(quantity, str) or not isinstance(ts, int) or not isinstance(serial, str):
        return None
    if not isinstance(value, int | float) or not (raw is None or isinstance(raw, int | float)):
        return None
    return StoredPoint(
        tags=tags,
        quantity=quantity,
        ts_ms=ts,
        value=float(value),
        raw=None if raw is None else float(raw),
        cal=str(row.get("cal") or ""),
        cal_rejected=str(row.get("cal_rejected") or ""),
        serial=serial,
    )


def plan(point: StoredPoint, book: CalibrationBook) -> tuple[Outcome, str | None]:
    """What the current book makes of a stored point, and the line that rewrites it (None
    when it is already so)."""
    raw = point.sensor_value
    outcome: Outcome
    try:
        result = book.calibrate_value(point.serial, point.quantity, point.ts_ms, raw)
    except CalibratedOutOfBoundsError as exc:
        outcome, target = "out_of_bounds", (raw, "", exc.version)
    else:
        if result is None:
            outcome, target = "no_calibration", (raw, "", "")
        else:
            outcome, target = "recalibrated", (result[0], result[1], "")
    if target == (point.value, point.cal, point.cal_rejected):
        return outcome, None
    value, cal, rejected = target
    fields: list[tuple[str, float | str]] = [
        ("value", value),
        ("raw", raw),
        ("cal", cal),
        ("cal_rejected", rejected),
    ]
    return outcome, line(READINGS.name, point.tags, fields, point.ts_ms)


async def recalibrate(
    target: InfluxTarget, book: CalibrationBook, request: RecalibrationRequest
) -> RecalibrationCounts:
    counts = RecalibrationCounts()
    timeout = aiohttp.ClientTimeout(total=max(60.0, target.timeout_s))
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        InfluxWriter(target) as writer,
    ):
        start = request.since_ms
        while start < request.until_ms:
            end = min(start + request.chunk_ms, request.until_ms)
            try:
                result = await influxql(session, target, query_for(start, end, request.node))
            except InfluxQueryError as exc:
                raise RecalibrationError(f"reading {start}..{end} ms: {exc}") from None
            pending: list[str] = []
            for point in parse_points(result, counts):
                outcome, rewrite = plan(point, book)
                counts.add(outcome, rewrite is not None)
                if rewrite is not None and not request.dry_run:
                    pending.append(rewrite)
                    if len(pending) >= request.batch_lines:
                        await _write(writer, pending, counts)
            await _write(writer, pending, counts)
            start = end
    return counts


async def _write(writer: InfluxWriter, lines: list[str], counts: RecalibrationCounts) -> None:
    if not lines:
        return
    try:
        await writer.write("\n".join(lines).encode())
    except WriteError as exc:
        raise RecalibrationError(f"rewriting {len(lines)} points: {exc}") from None
    counts.written += len(lines)
    lines.clear()
