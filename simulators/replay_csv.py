"""Replay of the Beijing Multi-Site Air-Quality hourly data as one node's readings.

Source: UCI Machine Learning Repository, "Beijing Multi-Site Air-Quality Data" (Song Xi Chen,
2017; Beijing Municipal Environmental Monitoring Center and China Meteorological
Administration), CC BY 4.0; see ../shared/data/README.md.

`CsvReplay` implements the edge agent's Producer protocol (edge/agent.py), so replayed rows
are journaled, published and acknowledged exactly like live readings. The file is streamed
one row at a time.

Conventions (the source states neither, so these are choices):
- times in the file are local Beijing time, UTC+8 (China has no DST): converted to UTC;
- the row's hour is taken as the START of its hourly averaging interval, matching the
  envnet Reading convention that `ts` starts [ts, ts + period_s): row "2013-03-01 hour 0"
  becomes ts = 2013-02-28T16:00Z, period_s = 3600. If the source is hour-ending, every
  replayed reading is one hour early; nothing downstream depends on which it is.

Units: PM2.5, PM10, SO2, NO2 and O3 are µg/m³ as in the contract; CO is given in µg/m³ too
and is divided by 1000 for the canonical mg/m³ (GB 3095-2026 Table 1 states CO in mg/m³);
TEMP °C and PRES hPa map to air_temp and pressure; rh is derived from TEMP and DEWP.

Data quality: `NA` skips that quantity for that row (counted per quantity). A malformed row
(wrong column count, an unparseable number or date, a value outside the SPECS bounds, a
timestamp not after the previous row's) is skipped whole, counted by reason and logged,
and never affects the other rows. A missing file or a wrong header is a ReplayFileError.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Final, TextIO

from edge.drivers.base import Sample
from schemas.messages import ID_PATTERN, Reading, SensorHealth, SensorState
from schemas.quantities import SPECS, Quantity
from schemas.runtime.logs import get_logger

log = get_logger("simulators.replay_csv")

COLUMNS: Final = (
    "No", "year", "month", "day", "hour", "PM2.5", "PM10", "SO2", "NO2", "CO", "O3",
    "TEMP", "PRES", "DEWP", "RAIN", "wd", "WSPM", "station",
)  # fmt: skip
BEIJING: Final = timezone(timedelta(hours=8), "CST")
PERIOD_S: Final = 3600
PERIOD_MS: Final = PERIOD_S * 1000
MISSING: Final = "NA"
DRIVER_NAME: Final = "replay-csv"
# Column -> quantity and the factor to its canonical unit (CO: µg/m³ -> mg/m³).
_DIRECT: Final[tuple[tuple[int, Quantity, float], ...]] = (
    (5, "pm2_5", 1.0), (6, "pm10", 1.0), (7, "so2", 1.0), (8, "no2", 1.0),
    (9, "co", 0.001), (10, "o3", 1.0), (11, "air_temp", 1.0), (12, "pressure", 1.0),
)  # fmt: skip
_TEMP, _DEWP = 11, 13
# Dew points outside this range are not weather; it also keeps the Magnus formula finite.
_DEWPOINT_RANGE: Final = (-90.0, 60.0)
# Readings must carry timestamps the contract accepts (schemas.messages.EpochMs).
_TS_RANGE_MS: Final = (946_684_800_000, 4_102_444_800_000)
# The most rows one step emits, so that a large clock jump cannot stall the agent loop;
# the rest follow on the next turns (next_due_ms is then already past).
MAX_ROWS_PER_STEP: Final = 1000
# Skipped rows are logged individually up to this many, then only counted.
_LOG_SKIPS: Final = 10
NEVER_MS: Final = 2**62


class ReplayError(Exception):
    """Base of this module's errors."""


class ReplayFileError(ReplayError):
    """The file cannot be replayed at all: missing, unreadable or not in the PRSA format."""


class RowError(ReplayError):
    """One malformed row. `reason` is a short category used in the counts."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One valid row: the UTC start of its hour, its values in canonical units, and the
    quantities it did not have (NA)."""

    ts_ms: int
    values: tuple[Sample, ...]
    missing: tuple[Quantity, ...]


# -- pure parsing ------------------------------------------------------------------------------


def local_hour_to_utc_ms(year: int, month: int, day: int, hour: int) -> int:
    """UTC epoch ms of a Beijing local (UTC+8) date and hour."""
    return int(datetime(year, month, day, hour, tzinfo=BEIJING).timestamp()) * 1000


def rh_from_dewpoint(temp_c: float, dewpoint_c: float) -> float:
    """Relative humidity, %, from temperature and dew point by the Magnus formula
    e_s(T) = 6.1094·exp(17.625·T / (T + 243.04)) hPa (Alduchov & Eskridge 1996, J. Appl.
    Meteor. 35: 601-609): RH = 100·e_s(Td)/e_s(T), clipped to 0-100 because rounding in the
    source sometimes puts the dew point a little above the temperature."""
    a, b = 17.625, 243.04
    rh = 100.0 * math.exp(a * dewpoint_c / (b + dewpoint_c) - a * temp_c / (b + temp_c))
    return min(max(rh, 0.0), 100.0)


def parse_row(fields: Sequence[str]) -> ParsedRow:
    """Parse one data row of a PRSA file. Raises RowError, and nothing else, if malformed."""
    if len(fields) != len(COLUMNS):
        raise RowError("columns", f"expected {len(COLUMNS)} columns, got {len(fields)}")
    ts_ms = _timestamp(fields)
    values: list[Sample] = []
    missing: list[Quantity] = []
    for column, quantity, factor in _DIRECT:
        number = _number(fields, column)
        if number is None:
            missing.append(quantity)
        else:
            values.append(Sample(quantity, _in_bounds(quantity, number * factor, column)))
    rh = _humidity(fields)
    if rh is None:
        missing.append("rh")
    else:
        values.append(Sample("rh", rh))
    return ParsedRow(ts_ms, tuple(values), tuple(missing))


def _timestamp(fields: Sequence[str]) -> int:
    try:
        year, month, day, hour = (int(fields[i]) for i in range(1, 5))
        ts_ms = local_hour_to_utc_ms(year, month, day, hour)
    except (ValueError, OverflowError) as exc:
        text = " ".join(fields[1:5])
        raise RowError("date", f"bad date/hour {text!r}: {exc}") from None
    if not _TS_RANGE_MS[0] <= ts_ms < _TS_RANGE_MS[1]:
        raise RowError("date", f"time {ts_ms} ms is outside 2000-2099")
    return ts_ms


def _number(fields: Sequence[str], column: int) -> float | None:
    text = fields[column]
    if text == MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError("number", f"{COLUMNS[column]}: not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise RowError("number", f"{COLUMNS[column]}: not a finite number: {text[:40]!r}")
    return value


def _in_bounds(quantity: Quantity, value: float, column: int) -> float:
    spec = SPECS[quantity]
    if not spec.lower <= value <= spec.upper:
        raise RowError(
            "bounds",
            f"{COLUMNS[column]} = {value:g} {spec.unit} is outside the physical bounds "
            f"[{spec.lower:g}, {spec.upper:g}] of {quantity}",
        )
    return value


def _humidity(fields: Sequence[str]) -> float | None:
    temp = _number(fields, _TEMP)
    dew = _number(fields, _DEWP)
    if temp is None or dew is None:
        return None
    if not _DEWPOINT_RANGE[0] <= dew <= _DEWPOINT_RANGE[1]:
        raise RowError("bounds", f"DEWP = {dew:g} degC is outside {list(_DEWPOINT_RANGE)}")
    if not SPECS["air_temp"].lower <= temp <= SPECS["air_temp"].upper:
        raise RowError("bounds", f"TEMP = {temp:g} degC is outside the air_temp bounds")
    return round(rh_from_dewpoint(temp, dew), 2)


# -- streaming the file -------------------------------------------------------------------------

RowOutcome = tuple[int, ParsedRow | RowError]  # (line number, the row or why it was skipped)


def open_csv(path: Path) -> TextIO:
    """Open a PRSA file and check its header; the handle is positioned at the first row."""
    try:
        # newline="" as the csv module requires; undecodable bytes become U+FFFD, so a
        # corrupted row fails to parse (and is skipped) instead of aborting the stream.
        handle = path.open(encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        raise ReplayFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        header = handle.readline()
        names = next(csv.reader([header]), [])
    except (OSError, csv.Error) as exc:
        handle.close()
        raise ReplayFileError(f"{path}: cannot read the header: {exc}") from None
    if tuple(names) != COLUMNS:
        handle.close()
        raise ReplayFileError(
            f"{path}: not a PRSA hourly file: expected header {','.join(COLUMNS)}, "
            f"got {header.strip()[:200]!r}"
        )
    return handle


def rows(handle: TextIO) -> Generator[RowOutcome, None, None]:
    """Parse the rows of an opened file lazily, one at a time (header already consumed)."""
    reader = csv.reader(handle)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num + 1, RowError("csv", f"bad CSV: {exc}")
            continue
        # +1: the header line was read before the reader started counting.
        line = reader.line_num + 1
        if not fields:
            continue
        try:
            yield line, parse_row(fields)
        except RowError as exc:
            yield line, exc


def iter_rows(path: Path) -> Iterator[RowOutcome]:
    """Every row of a file, parsed or with the reason it was skipped (streams the file)."""
    handle = open_csv(path)
    with handle:
        yield from rows(handle)


# -- the producer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayCounts:
    rows_emitted: int
    rows_skipped: int  # malformed rows, by reason in `skipped`
    rows_filtered: int  # valid rows outside the date filter
    readings_emitted: int
    values_missing: int  # NA values, by quantity in `missing`
    skipped: dict[str, int]
    missing: dict[Quantity, int]


def _day_bound_ms(day: date | str | None, offset_days: int) -> int | None:
    """UTC ms of Beijing local midnight starting `day` + offset_days."""
    if day is None:
        return None
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"not a date (YYYY-MM-DD): {day!r}") from None
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING) + timedelta(days=offset_days)
    return int(start.timestamp()) * 1000


class CsvReplay:
    """Emits each row's readings when the agent clock reaches the end of its hour, scaled.

    With start_ms S (the agent clock when the replay starts), speed v (data seconds per clock
    second) and t0 the interval start of the first emitted row, a row starting at t is due
    at S + (t + 1 h - t0) / v, i.e. when its hour has completed in replayed time: the first
    row is due one (scaled) hour after the start, as a real hourly analyser would report.

    date_from / date_to (inclusive, Beijing local dates, `date` or "YYYY-MM-DD") select
    rows; the file is assumed chronological, so reading stops after date_to.
    rebase_to_ms shifts every timestamp so the first emitted row starts exactly there
    (pass an hour-aligned instant to keep hourly readings on clock hours); rebase_end_ms
    shifts them so the last emitted row ends exactly there (the file is read once more to
    find it). `--rebase-now` uses the latter: a replay runs hours of data a second, so data
    starting now would soon lie hours in the future, where no aggregator can judge it;
    data ending now is the recent past. Without either, readings keep their original times.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        sensor: str = "ref",
        start_ms: int,
        speed: float = 3600.0,
        date_from: date | str | None = None,
        date_to: date | str | None = None,
        rebase_to_ms: int | None = None,
        rebase_end_ms: int | None = None,
    ) -> None:
        if rebase_to_ms is not None and rebase_end_ms is not None:
            raise ValueError("rebase_to_ms and rebase_end_ms are exclusive")
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed}")
        if not _valid_id(sensor):
            raise ValueError(f"sensor id {sensor!r} does not match {ID_PATTERN}")
        self._sensor = sensor
        self._start_ms = start_ms
        self._speed = speed
        self._lo_ms = _day_bound_ms(date_from, 0)
        self._hi_ms = _day_bound_ms(date_to, 1)
        self._path = Path(path)
        self._handle: TextIO | None = open_csv(self._path)
        self._rows = rows(self._handle)
        self._skipped: Counter[str] = Counter()
        self._missing: Counter[Quantity] = Counter()
        self._filtered = self._emitted_rows = self._emitted_readings = 0
        self._last_ts: int | None = None
        self._last_ok_ms: int | None = None
        self._last_error: str | None = None
        self._state: SensorState = "ok"
        self._pending = self._next_row()
        self._t0_ms = self._pending.ts_ms if self._pending is not None else 0
        self._shift_ms = 0 if rebase_to_ms is None else rebase_to_ms - self._t0_ms
        if rebase_end_ms is not None and self._pending is not None:
            self._shift_ms = rebase_end_ms - (self._last_row_ms() + PERIOD_MS)

    # -- Producer ----------------------------------------------------------------------------

    def step(self, now_ms: int) -> list[Reading]:
        """The readings of every row due by `now_ms` (at most MAX_ROWS_PER_STEP rows)."""
        out: list[Reading] = []
        emitted = 0
        while (
            self._pending is not None
            and emitted < MAX_ROWS_PER_STEP
            and self.due_ms(self._pending) <= now_ms
        ):
            out.extend(self._readings(self._pending))
            self._last_ok_ms = now_ms
            emitted += 1
            self._pending = self._next_row()
        return out

    def next_due_ms(self) -> int:
        return NEVER_MS if self._pending is None else self.due_ms(self._pending)

    def flush(self, now_ms: int) -> list[Reading]:
        """Nothing: a row is a complete hourly mean, emitted only when due, never early."""
        return []

    def health(self) -> list[SensorHealth]:
        return [
            SensorHealth(
                sensor=self._sensor,
                driver=DRIVER_NAME,
                state=self._state,
                errors=sum(self._skipped.values()),
                last_ok_ms=self._last_ok_ms,
                last_error=self._last_error,
            )
        ]

    def close(self) -> None:
        self._rows.close()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    # -- state --------------------------------------------------------------------------------

    @property
    def first_row_ms(self) -> int | None:
        """The start of the first selected row (its original time, or rebased), if any."""
        return self._t0_ms + self._shift_ms if self._emitted_rows or self._pending else None

    @property
    def exhausted(self) -> bool:
        """Every row has been emitted (or skipped, or filtered out)."""
        return self._pending is None

    @property
    def counts(self) -> ReplayCounts:
        return ReplayCounts(
            rows_emitted=self._emitted_rows,
            rows_skipped=sum(self._skipped.values()),
            rows_filtered=self._filtered,
            readings_emitted=self._emitted_readings,
            values_missing=sum(self._missing.values()),
            skipped=dict(self._skipped),
            missing=dict(self._missing),
        )

    def planned_rows(self) -> int:
        """How many rows this replay emits in all (counts.rows_emitted at the end), by a
        second pass over the file with the same rules (order, date filter), nothing counted
        or logged: the total a progress display counts towards."""
        planned = 0
        last: int | None = None
        for _, outcome in iter_rows(self._path):
            if isinstance(outcome, RowError) or (last is not None and outcome.ts_ms <= last):
                continue
            last = outcome.ts_ms
            if self._hi_ms is not None and outcome.ts_ms >= self._hi_ms:
                break
            if self._lo_ms is None or outcome.ts_ms >= self._lo_ms:
                planned += 1
        return planned

    def due_ms(self, row: ParsedRow) -> int:
        """Agent-clock time at which `row` is emitted."""
        offset_ms = row.ts_ms + PERIOD_MS - self._t0_ms
        return self._start_ms + math.ceil(offset_ms / self._speed)

    # -- internals ----------------------------------------------------------------------------

    def _readings(self, row: ParsedRow) -> list[Reading]:
        ts = row.ts_ms + self._shift_ms
        readings = [
            Reading(
                ts=ts,
                quantity=s.quantity,
                value=s.value,
                unit=SPECS[s.quantity].unit,
                period_s=PERIOD_S,
                stat="mean",
                sensor=self._sensor,
                flags=("replayed",),
            )
            for s in row.values
        ]
        self._missing.update(row.missing)
        self._emitted_rows += 1
        self._emitted_readings += len(readings)
        return readings

    def _next_row(self) -> ParsedRow | None:
        """The next valid row inside the date filter, or None at the end."""
        try:
            for line, outcome in self._rows:
                if isinstance(outcome, RowError):
                    self._skip(line, outcome)
                    continue
                if self._last_ts is not None and outcome.ts_ms <= self._last_ts:
                    self._skip(
                        line, RowError("order", f"time {outcome.ts_ms} is not after the last")
                    )
                    continue
                self._last_ts = outcome.ts_ms
                self._state = "ok"
                if self._hi_ms is not None and outcome.ts_ms >= self._hi_ms:
                    break  # the file is chronological: nothing later can match
                if self._lo_ms is not None and outcome.ts_ms < self._lo_ms:
                    self._filtered += 1
                    continue
                return outcome
        except OSError as exc:
            self._state = "failed"
            self._last_error = f"read error: {exc}"[:200]
            log.warning("replay_read_failed", path=str(self._path), error=str(exc))
        self.close()
        return None

    def _last_row_ms(self) -> int:
        """The start of the last row this replay will emit, by a second pass over the file
        with the same rules (order, date filter) and nothing counted or logged."""
        last = self._t0_ms
        for _, outcome in iter_rows(self._path):
            if isinstance(outcome, RowError) or outcome.ts_ms <= last:
                continue
            if self._hi_ms is not None and outcome.ts_ms >= self._hi_ms:
                break
            last = outcome.ts_ms
        return last

    def _skip(self, line: int, error: RowError) -> None:
        self._skipped[error.reason] += 1
        self._last_error = f"line {line}: {error}"[:200]
        self._state = "degraded"
        if sum(self._skipped.values()) <= _LOG_SKIPS:
            log.warning("replay_row_skipped", path=str(self._path), line=line, reason=str(error))


def _valid_id(text: str) -> bool:
    return re.fullmatch(ID_PATTERN, text) is not None
