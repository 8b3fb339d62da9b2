"""Event-time windows over reading series: hourly, daily, 8-h/MDA8 and noise day/night. Pure.

A series is (node, sensor, quantity). Its readings are windowed by their own timestamps, never
by the wall clock:

- A reading covers [ts, ts + period_s) (schemas/messages.py). It counts in the clock hour(s)
  it overlaps, weighted by the overlap, so an interval that straddles an hour boundary adds
  to both hours' coverage. Readings longer than one hour are not windowed (counted).
- The series' watermark is the start of the hour of its newest reading (or of the time given
  to `advance`). Every window that ends at or before the watermark is closed: it is computed
  and emitted once, valid or not (invalid windows carry valid=False).
- A window that no newer reading closes (a node gone quiet, the end of a replay) is closed by
  `advance_node` when the node's own clock says it is over (aggregator.engine.window_closing).
- A reading for a closed hour that is at most `late_horizon_h` hours behind the watermark is
  late: it re-computes that hour and every derived window containing it, and re-emits those
  whose value or validity changed, with revision=True. Older readings are counted (too_late).
- A reading with the same ts as one already held replaces it (last write wins): a re-sent
  batch counts once.
- Emitted windows are those whose end lies between the series' first hour and its watermark.
  A window without any data is emitted only if it ends within the late horizon of the
  watermark, so a node silent for a month does not produce a month of empty windows.

Values (docs/standards.md §1.4, §3.3):
- 1-h: time-weighted arithmetic mean, or energy mean for sound levels (`aggregation="energy"`,
  L_eq = 10·lg[Σ t_i·10^(0.1·L_i) / Σ t_i]); valid with >= 45 min of data (GB 3095-2026 Table 4).
- 24-h (natural local day): mean of the day's valid hourly means; valid with >= 20 of them
  (GB 3095-2026 §3.10, Table 4).
- 8-h [s, s + 8 h): mean of the valid hourly means among the 8; valid with >= 6 (GB 3095-2026
  §3.8, Table 4). Emitted every hour, keyed by its start.
- MDA8: maximum valid 8-h mean among the day's windows (GB 3095-2026 §3.9). Which windows count
  is UNVERIFIED (HJ 663 not read): by default those ending 08:00..24:00 local (17 windows).
- Noise day and night (GB 3096-2008 §3.4; docs/standards.md §3.3): L_d and L_n are energy means of
  the period's valid hourly L_eq. A night belongs to the local date on which it starts.
- L10/L50/L90 (per hour, and per day/night period): percentiles (linear interpolation between
  order statistics, as numpy and reviutils `calc_PSL` do) of the values of the readings that
  overlap the window, each reading counted once. With 1-s readings they are the classic
  percentile levels; with longer readings they are percentiles of interval L_eq values, which
  understate the spread of the underlying levels.

Sums use math.fsum, which is exactly rounded, so results do not depend on arrival order.

Cost: a reading for the open hour is a dict insert. Closing an hour computes it and the
derived windows ending with it, packs its readings into arrays (20 bytes each) and prunes:
raw readings are kept for `late_horizon_h` (and, for noise percentiles, the rest of the
period that reaches into it), hourly and derived results for the longest window more (a day
by default), rounded to a local day. `add_batch`
re-evaluates late data once per batch instead of once per reading.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Final, Literal

import msgspec

from aggregator.engine.event_time import EventTime
from schemas.messages import ReadingValues
from schemas.quantities import Quantity
from schemas.standards.gb3095 import MIN_COVERAGE_1H_S
from schemas.storage import WindowKind

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
_HOUR_S: Final = 3600

# GB 3095-2026 Table 4 (docs/standards.md §1.4): a daily mean needs >= 20 hourly means
# of the natural day, an 8-h mean >= 6 hourly means of its 8.
MIN_DAILY_HOURS: Final = 20
MIN_8H_HOURS: Final = 6

# Every window that can contain an hour is shorter than this (the longest is an MDA8 span of
# at most 47 + 8 hours); used to bound the work of closing a long silence.
_SPAN_MS: Final = 4 * DAY_MS

SeriesKey = tuple[str, str, str]
Aggregation = Literal["mean", "energy"]

# Emission order for windows that close at the same instant.
_RANK: Final[dict[WindowKind, int]] = {"1h": 0, "8h": 1, "24h": 2, "mda8": 3, "day": 4, "night": 5}
_Percentiles = tuple[float | None, float | None, float | None]
_NO_PERCENTILES: Final[_Percentiles] = (None, None, None)
_NAN: Final = math.nan


class WindowSettingsError(ValueError):
    """Window settings that cannot describe a valid window scheme."""


class WindowSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How windows are cut and when they are valid: agg.toml [alerts.windows].

    Hours are local clock hours at the EventTime's `utc_offset_h` (whole hours, no DST), and
    the noise day and night are its `day_starts_h` / `night_starts_h`: those are shared with
    the rules, so they come with the EventTime, not from here. The validity counts are
    GB 3095-2026 Table 4's; the MDA8 convention and the noise day/night minimums are
    UNVERIFIED or envnet choices (docs/standards.md §1.4, §8.1, §9).
    """

    # GB 3095-2026 Table 4 (docs/standards.md §1.4): a 1-h mean needs >= 45 min of data.
    min_hour_coverage_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = MIN_COVERAGE_1H_S
    # GB 3095-2026 Table 4: >= 20 valid hourly means of the natural day.
    min_daily_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = MIN_DAILY_HOURS
    # GB 3095-2026 Table 4: >= 6 valid hourly means in each 8-h window.
    min_8h_hours: Annotated[int, msgspec.Meta(ge=1, le=8)] = MIN_8H_HOURS
    # UNVERIFIED (HJ 663-2013/2026 not read, docs/standards.md §1.4 and §8.1): the 8-h windows
    # counted for a day's MDA8 are those ending at local hours first..last (24 = midnight that
    # ends the day; up to 47 for windows ending the next morning, e.g. US EPA's 15..31).
    mda8_first_end_hour: Annotated[int, msgspec.Meta(ge=8, le=47)] = 8
    mda8_last_end_hour: Annotated[int, msgspec.Meta(ge=8, le=47)] = 24
    # UNVERIFIED: valid 8-h means needed for a valid MDA8. 14 of 17 is recalled from
    # HJ 663-2013, which was not read; GB 3095-2026 Table 4 sets no MDA8 rule.
    min_mda8_windows: Annotated[int, msgspec.Meta(ge=1, le=40)] = 14
    # envnet's choice, not the standard's (docs/standards.md §3.3, §9): valid hourly L_eq
    # needed for L_d (of 16) and L_n (of 8); 75 %, like the 45-of-60-minutes rule.
    min_day_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 12
    min_night_hours: Annotated[int, msgspec.Meta(ge=1, le=24)] = 6
    # A late reading this far behind its series' newest data still re-evaluates windows; the
    # aggregator also rebuilds this much window state from InfluxDB when it starts.
    late_horizon_h: Annotated[int, msgspec.Meta(ge=2, le=24 * 14)] = 48
    # Readings starting more than this ahead of the aggregator's clock (a node clock fault)
    # are stored but not windowed or judged, and counted (the evaluator): a node with a broken
    # clock would otherwise move its series' event time far ahead and make its real data
    # "too late". 0 turns the guard off, for accelerated simulations whose event time runs
    # ahead of the wall clock.
    max_future_s: Annotated[int, msgspec.Meta(ge=0)] = 3600
    # A window no newer reading closes (a node gone quiet, the end of a replay) closes this
    # long after its end in the node's own clock (aggregator.engine.window_closing): room for
    # readings still on their way. Must stay below alerts.late_after_s, so that a window
    # closed by time is still judged live (checked by EngineSettings).
    close_after_s: Annotated[int, msgspec.Meta(ge=0)] = 300

    def __post_init__(self) -> None:
        # The file's bounds (msgspec.Meta) are checked when agg.toml is read; these are the
        # ones without which no window scheme exists, checked however the settings are made.
        mda8_windows = self.mda8_last_end_hour - self.mda8_first_end_hour + 1
        checks = [
            (1 <= self.min_hour_coverage_s <= _HOUR_S, "min_hour_coverage_s must be in 1..3600"),
            (1 <= self.min_daily_hours <= 24, "min_daily_hours must be in 1..24"),
            (1 <= self.min_8h_hours <= 8, "min_8h_hours must be in 1..8"),
            (
                1 <= self.mda8_first_end_hour <= self.mda8_last_end_hour <= 47,
                "need 1 <= mda8_first_end_hour <= mda8_last_end_hour <= 47",
            ),
            (
                1 <= self.min_mda8_windows <= mda8_windows,
                "min_mda8_windows must be in 1..window count",
            ),
            (0 <= self.late_horizon_h <= 31 * 24, "late_horizon_h must be in 0..744"),
        ]
        _refuse(checks)


def _check_day_night(s: WindowSettings, t: EventTime) -> None:
    """The noise periods need the civil clock, so they are checked where both meet."""
    day_hours = t.night_starts_h - t.day_starts_h
    _refuse(
        [
            (-12 <= t.utc_offset_h <= 14, "utc_offset_h must be in -12..14"),
            (
                0 <= t.day_starts_h < t.night_starts_h <= 23,
                "need 0 <= day_starts_h < night_starts_h <= 23",
            ),
            (1 <= s.min_day_hours <= day_hours, "min_day_hours must be in 1..day length"),
            (
                1 <= s.min_night_hours <= 24 - day_hours,
                "min_night_hours must be in 1..night length",
            ),
        ]
    )


def _refuse(checks: list[tuple[bool, str]]) -> None:
    problems = [message for ok, message in checks if not ok]
    if problems:
        raise WindowSettingsError("; ".join(problems))


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """What a series needs: how values combine, and which derived windows to keep.

    The hourly window is always kept. Pass the same spec object (e.g. the constants below)
    for every reading of a series: the fast path checks identity. A different spec replaces
    the old one for windows closed from then on.
    """

    aggregation: Aggregation = "mean"
    daily: bool = False  # natural-day "24h" mean (GB 3095 24-h limits)
    eight_hour: bool = False  # "8h" sliding means and "mda8" (O3, GB 3095 8-h limit)
    day_night: bool = False  # noise "day" L_d and "night" L_n (GB 3096-2008)
    percentiles: bool = False  # L10/L50/L90 on "1h", "day" and "night"


HOURLY: Final = SeriesSpec()
AIR_DAILY: Final = SeriesSpec(daily=True)
OZONE: Final = SeriesSpec(eight_hour=True)
NOISE: Final = SeriesSpec("energy", day_night=True, percentiles=True)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One closed window of one series.

    `hours`: valid hourly means used (for "1h": 1 if valid else 0; for "mda8": the number of
    valid 8-h means among the day's windows). `coverage_s`: seconds of data inside
    [start_ms, end_ms). `value` is nan when there is nothing to average. For "mda8",
    start_ms..end_ms spans the day's 8-h windows (local midnight to midnight by default) and
    `max_start_ms` is the start of the 8-h window that gave the maximum.
    `revision` is True when this replaces a result emitted earlier for the same window.
    """

    key: SeriesKey
    kind: WindowKind
    start_ms: int
    end_ms: int
    value: float
    valid: bool
    hours: int
    coverage_s: int
    l10: float | None = None
    l50: float | None = None
    l90: float | None = None
    revision: bool = False
    max_start_ms: int | None = None


@dataclass(frozen=True, slots=True)
class WindowCounters:
    late_readings: int  # accepted for an already-closed hour (windows re-evaluated)
    too_late: int  # older than the late horizon: ignored
    not_windowed: int  # period_s > 3600
    duplicates: int  # same ts as a reading already held (replaced it)


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Windows of one kind end every `period_ms`, at `phase_ms` modulo it, and last `length_ms`."""

    period_ms: int
    phase_ms: int
    length_ms: int

    def ends(self, after: int, until: int) -> Iterator[int]:
        """Window ends e with after < e <= until."""
        end = after + (self.phase_ms - after) % self.period_ms
        if end == after:
            end += self.period_ms
        while end <= until:
            yield end
            end += self.period_ms


def _geometries(s: WindowSettings, t: EventTime) -> dict[WindowKind, _Geometry]:
    offset = t.offset_ms
    first, last = s.mda8_first_end_hour, s.mda8_last_end_hour
    return {
        "1h": _Geometry(HOUR_MS, 0, HOUR_MS),
        "8h": _Geometry(HOUR_MS, 0, 8 * HOUR_MS),
        "24h": _Geometry(DAY_MS, -offset % DAY_MS, DAY_MS),
        "mda8": _Geometry(DAY_MS, (last * HOUR_MS - offset) % DAY_MS, (last - first + 8) * HOUR_MS),
        "day": _Geometry(
            DAY_MS,
            (t.night_starts_h * HOUR_MS - offset) % DAY_MS,
            (t.night_starts_h - t.day_starts_h) * HOUR_MS,
        ),
        "night": _Geometry(
            DAY_MS,
            (t.day_starts_h * HOUR_MS - offset) % DAY_MS,
            (24 + t.day_starts_h - t.night_starts_h) * HOUR_MS,
        ),
    }


def _kinds(spec: SeriesSpec) -> tuple[WindowKind, ...]:
    # "1h" first: every derived window is computed from the hourly results.
    kinds: list[WindowKind] = ["1h"]
    if spec.eight_hour:
        kinds += ["8h", "mda8"]
    if spec.daily:
        kinds.append("24h")
    if spec.day_night:
        kinds += ["day", "night"]
    return tuple(kinds)


# One reading's share of an hour: (value, milliseconds of the hour it covers).
_Sample = tuple[float, int]


class _Packed:
    """A closed hour's readings, unpacked again only when a late reading lands in it.

    The values in an array (8 bytes a reading). The time stamps likewise (8 more), unless
    they step evenly (a sensor sampled at a fixed period, in order): then the first and the
    step alone (`ts` is then a range). The weights (milliseconds of the hour each covers) likewise
    (4 bytes), unless all are equal (every reading of a fixed period inside the hour): then
    the one weight. A regular hour of 1-min readings holds 8 bytes a reading instead of 20,
    and one array instead of three (each about 80 bytes more), against about 170 bytes a
    reading for a dict entry, a tuple and its numbers. Packing checks both in C (array
    comparison, tuple.count): no per-reading bytecode."""

    __slots__ = ("_first", "_stamps", "_step", "_weight", "_weights", "values")

    def __init__(self, samples: dict[int, _Sample]) -> None:
        # Compared as lists: building an array from a dict or a range costs several times
        # more than the list, and most hours are regular, so never need the array.
        stamps = list(samples)
        n = len(stamps)
        self._first: int = stamps[0]
        self._step: int = stamps[1] - stamps[0] if n > 1 else 1
        grid = range(self._first, self._first + n * self._step, self._step)
        # Two ints rather than the range itself (about 80 bytes less an hour).
        self._stamps: array[int] | None = (
            None if self._step > 0 and stamps == list(grid) else array("q", stamps)
        )
        values, weights = zip(*samples.values(), strict=True)  # one pass, no per-item bytecode
        self.values = array("d", values)
        self._weight: int = weights[0]
        self._weights: array[int] | None = (
            None if weights.count(weights[0]) == n else array("i", weights)  # <= 3.6e6 ms
        )

    @property
    def ts(self) -> Sequence[int]:
        if self._stamps is not None:
            return self._stamps
        return range(self._first, self._first + len(self.values) * self._step, self._step)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def weights(self) -> Sequence[int]:
        return self._weights if self._weights is not None else [self._weight] * len(self.values)

    def unpacked(self) -> dict[int, _Sample]:
        return dict(zip(self.ts, zip(self.values, self.weights, strict=True), strict=True))

    def get(self, ts: int) -> _Sample | None:
        # Linear, but only for duplicates of late readings.
        for i, held in enumerate(self.ts):
            if held == ts:
                weight = self._weights[i] if self._weights is not None else self._weight
                return (self.values[i], weight)
        return None


_Hour = dict[int, _Sample] | _Packed


def _columns(data: _Hour) -> tuple[Sequence[int], Sequence[float], Sequence[int]]:
    """(ts, values, weights) of an hour's readings."""
    if isinstance(data, _Packed):
        return data.ts, data.values, data.weights
    return list(data), [v for v, _ in data.values()], [w for _, w in data.values()]


@dataclass(slots=True)
class _Series:
    key: SeriesKey
    spec: SeriesSpec
    kinds: tuple[WindowKind, ...]
    watermark: int  # start of the newest hour; every window ending at or before it is closed
    origin: int  # start of the earliest hour with an accepted reading
    raw: dict[int, _Hour]  # hour start -> readings; closed hours packed
    open: dict[int, _Sample]  # raw[watermark], for the hot path
    # Last emitted, by kind, then start: one dict a kind, not a (kind, start) tuple a result.
    results: dict[WindowKind, dict[int, WindowResult]]
    results_floor: int = 0
    dirty: set[int] = field(default_factory=set)  # closed hours changed by late readings


class WindowEngine:
    """Event-time windows for many series. Not thread-safe; one engine per aggregator."""

    def __init__(
        self, settings: WindowSettings | None = None, time: EventTime | None = None
    ) -> None:
        self.settings = settings if settings is not None else WindowSettings()
        self.time = time if time is not None else EventTime()
        _check_day_night(self.settings, self.time)
        self._geometry = _geometries(self.settings, self.time)
        self._horizon_ms = self.settings.late_horizon_h * HOUR_MS
        # The longest window (24 h by default; an MDA8 span up to 47 h): how far before the
        # late horizon results are still needed (_prune).
        self._longest_ms = max(g.length_ms for g in self._geometry.values())
        self._offset_ms = self.time.offset_ms
        self._minimum_hours: dict[WindowKind, int] = {
            "8h": self.settings.min_8h_hours,
            "24h": self.settings.min_daily_hours,
            "day": self.settings.min_day_hours,
            "night": self.settings.min_night_hours,
        }
        self._series: dict[SeriesKey, _Series] = {}
        self._by_node: dict[str, list[SeriesKey]] = {}  # for closing a node's series at once
        self._dirty: list[_Series] = []  # series with late data to re-evaluate (add_batch)
        self.late_readings = 0
        self.too_late = 0
        self.not_windowed = 0
        self.duplicates = 0

    @property
    def counters(self) -> WindowCounters:
        return WindowCounters(self.late_readings, self.too_late, self.not_windowed, self.duplicates)

    @property
    def series_count(self) -> int:
        return len(self._series)

    @property
    def held_readings(self) -> int:
        """Raw reading parts held for late re-evaluation (a memory gauge; O(series × hours))."""
        return sum(len(samples) for s in self._series.values() for samples in s.raw.values())

    def windows(self, key: SeriesKey) -> list[WindowResult]:
        """The retained closed windows of a series, latest result of each, by end time."""
        series = self._series.get(key)
        if series is None:
            return []
        return _ordered([r for by_start in series.results.values() for r in by_start.values()])

    # -- ingest ---------------------------------------------------------------------------

    def add(self, key: SeriesKey, reading: ReadingValues, spec: SeriesSpec) -> list[WindowResult]:
        """Add a reading; return the windows it closed or revised, by end time."""
        # Shortcut for almost every live reading: new, inside the open hour, closes nothing.
        # `_add` handles this case the same way; inlining it here saves a fifth of the time.
        series = self._series.get(key)
        if series is not None and series.spec is spec:
            ts = reading.ts
            offset = ts % HOUR_MS
            weight = reading.period_s * 1000
            if ts - offset == series.watermark and offset + weight <= HOUR_MS:
                samples = series.open
                if ts not in samples:
                    samples[ts] = (reading.value, weight)
                    return []
        out: list[WindowResult] = []
        self._add(key, reading, spec, out, defer=False)
        return _ordered(out) if out else out

    def add_batch(
        self, items: Iterable[tuple[SeriesKey, ReadingValues, SeriesSpec]]
    ) -> list[WindowResult]:
        """Add many readings (say, one message's), as `add` does one by one, except that late
        readings re-evaluate their windows once, at the end: a window that the batch revises
        several times is emitted once, with its final value. A node draining its backlog
        after an outage sends exactly such batches."""
        out: list[WindowResult] = []
        try:
            for key, reading, spec in items:
                self._add(key, reading, spec, out, defer=True)
        finally:
            self._flush_dirty(out)
        return _ordered(out)

    def add_node(
        self, node: str, readings: Iterable[ReadingValues], specs: Mapping[Quantity, SeriesSpec]
    ) -> list[WindowResult]:
        """`add_batch` for readings of one node, each in the series its `specs[quantity]`
        defines: what one message brings. The common case (a new reading inside its series'
        open hour, which closes nothing) is inline, as in `add`: at the live rate the call
        and the key tuples `add_batch` takes cost more than storing the reading."""
        out: list[WindowResult] = []
        get = self._series.get
        try:
            for r in readings:
                spec = specs[r.quantity]
                key = (node, r.sensor, r.quantity)
                series = get(key)
                if series is not None and series.spec is spec:
                    ts = r.ts
                    hour = ts - ts % HOUR_MS
                    weight = r.period_s * 1000
                    if hour == series.watermark and ts - hour + weight <= HOUR_MS:
                        samples = series.open
                        if ts not in samples:
                            samples[ts] = (r.value, weight)
                            continue
                self._add(key, r, spec, out, defer=True)
        finally:
            self._flush_dirty(out)
        return _ordered(out) if out else out

    def _flush_dirty(self, out: list[WindowResult]) -> None:
        """Re-evaluate, once each, the series that late readings of a batch changed."""
        for series in self._dirty:
            self._flush(series, out)
        self._dirty.clear()

    def advance(self, key: SeriesKey, watermark_ms: int) -> list[WindowResult]:
        """Close what a reading of `key` starting at `watermark_ms` would close (e.g. after
        a silence); unknown series and watermarks already passed close nothing."""
        series = self._series.get(key)
        hour = watermark_ms - watermark_ms % HOUR_MS
        if series is None or hour <= series.watermark:
            return []
        out: list[WindowResult] = []
        self._move_watermark(series, hour, out)
        return _ordered(out)

    def advance_all(self, watermark_ms: int) -> list[WindowResult]:
        """`advance` every series."""
        out: list[WindowResult] = []
        for key in self._series:
            out.extend(self.advance(key, watermark_ms))
        return out

    def advance_node(self, node: str, until_ms: int) -> list[WindowResult]:
        """Close every window of `node`'s series that ends at or before `until_ms`, by end
        time: what the node's clock says is over, even for a series that stopped earlier (its
        last day is judged too). A reading that later arrives for a window closed here takes
        the late path (re-evaluation, revision=True), like any other late reading."""
        out: list[WindowResult] = []
        for key in self._by_node.get(node, ()):
            out.extend(self.advance(key, until_ms))
        return _ordered(out)

    def _add(
        self,
        key: SeriesKey,
        reading: ReadingValues,
        spec: SeriesSpec,
        out: list[WindowResult],
        defer: bool,
    ) -> None:
        period_s = reading.period_s
        if period_s > _HOUR_S:
            self.not_windowed += 1
            return
        ts = reading.ts
        hour = ts - ts % HOUR_MS
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._new_series(key, hour, spec)
            self._by_node.setdefault(key[0], []).append(key)
        elif series.spec is not spec:
            if spec != series.spec:
                series.kinds = _kinds(spec)
            series.spec = spec  # the same object next time: the shortcut in `add` applies
        weight = period_s * 1000
        if hour == series.watermark:
            # The hot path: a reading for the open hour closes nothing.
            samples = series.open
            if ts not in samples and ts - hour + weight <= HOUR_MS:
                samples[ts] = (reading.value, weight)
            else:
                self._store(series, hour, ts, reading.value, weight)
        elif hour > series.watermark:
            self._move_watermark(series, hour, out)
            self._store(series, hour, ts, reading.value, weight)
        else:
            self._add_late(series, hour, ts, reading.value, weight, out, defer)

    def _new_series(self, key: SeriesKey, hour: int, spec: SeriesSpec) -> _Series:
        open_hour: dict[int, _Sample] = {}
        return _Series(key, spec, _kinds(spec), hour, hour, {hour: open_hour}, open_hour, {})

    def _add_late(
        self,
        series: _Series,
        hour: int,
        ts: int,
        value: float,
        weight: int,
        out: list[WindowResult],
        defer: bool,
    ) -> None:
        if hour < series.watermark - self._horizon_ms:
            self.too_late += 1
            return
        self.late_readings += 1
        touched = self._store(series, hour, ts, value, weight)
        if not touched:
            return
        if hour < series.origin:
            # Windows between the new first hour and the old one were never closed.
            old_origin, series.origin = series.origin, hour
            self._close(series, hour, old_origin, out)
        if defer and not series.dirty:
            self._dirty.append(series)
        series.dirty.update(h for h in touched if h < series.watermark)
        if not defer:
            self._flush(series, out)

    def _writable(self, series: _Series, hour: int) -> dict[int, _Sample]:
        data = series.raw.get(hour)
        if data is None:
            data = series.raw[hour] = {}
        elif isinstance(data, _Packed):
            data = series.raw[hour] = data.unpacked()
        return data

    def _store(self, series: _Series, hour: int, ts: int, value: float, weight: int) -> list[int]:
        """Store a reading; return the hours whose data changed."""
        samples = self._writable(series, hour)
        over = ts - hour + weight - HOUR_MS
        old = samples.get(ts)
        if over <= 0 and old is None:
            samples[ts] = (value, weight)
            return [hour]
        return self._store_rare(series, samples, hour, ts, value, weight, old)

    def _store_rare(
        self,
        series: _Series,
        samples: dict[int, _Sample],
        hour: int,
        ts: int,
        value: float,
        weight: int,
        old: _Sample | None,
    ) -> list[int]:
        """A duplicate, or a reading that straddles the hour's end (it is at most an hour
        long, so it reaches one more hour): split it, the part in the next hour keyed by the
        same ts."""
        over = ts - hour + weight - HOUR_MS
        sample = (value, weight - over) if over > 0 else (value, weight)
        tail = (value, over) if over > 0 else None
        next_data = series.raw.get(hour + HOUR_MS)
        old_tail = next_data.get(ts) if next_data is not None and old is not None else None
        if old is not None:
            self.duplicates += 1
            if old == sample and old_tail == tail:
                return []
        samples[ts] = sample
        if tail is not None:
            self._writable(series, hour + HOUR_MS)[ts] = tail
        elif old_tail is not None:
            del self._writable(series, hour + HOUR_MS)[ts]  # the replaced reading straddled
        if tail is None and old_tail is None:
            return [hour]
        return [hour, hour + HOUR_MS]

    # -- closing and re-evaluation --------------------------------------------------------

    def _move_watermark(self, series: _Series, hour: int, out: list[WindowResult]) -> None:
        if series.dirty:
            # Late data first, so that the windows closing now see its hourly results.
            self._flush(series, out)
        old = series.watermark
        series.watermark = hour
        series.open = self._writable(series, hour)
        for closed in (old, old + HOUR_MS):  # the only hours that can hold unpacked data
            if closed < hour:
                _pack(series, closed)
        self._close(series, old, hour, out)
        self._prune(series)

    def _flush(self, series: _Series, out: list[WindowResult]) -> None:
        hours = sorted(series.dirty)
        series.dirty.clear()
        self._reevaluate(series, hours, out)
        for hour in hours:
            _pack(series, hour)

    def _close(self, series: _Series, after: int, until: int, out: list[WindowResult]) -> None:
        """Emit every window of the series ending in (after, until]."""
        empty_cutoff = series.watermark - self._horizon_ms
        # Data lies only in the first hours after `after`, so after a long silence only the
        # windows near either end can be emitted: skip the empty middle without visiting it.
        split = after + _SPAN_MS
        spans = [(after, until)]
        if until > split:
            spans = [(after, split), (max(split, empty_cutoff), until)]
        for kind in series.kinds:
            geometry = self._geometry[kind]
            for lo, hi in spans:
                for end in geometry.ends(lo, hi):
                    result = self._compute(series, kind, end - geometry.length_ms, end)
                    if result.coverage_s > 0 or end > empty_cutoff:
                        _record(series, result, out)

    def _reevaluate(self, series: _Series, hours: list[int], out: list[WindowResult]) -> None:
        """Re-compute the closed windows that contain any of `hours`; emit those that changed."""
        for kind in series.kinds:
            geometry = self._geometry[kind]
            ends: set[int] = set()
            for hour in hours:
                ends.update(geometry.ends(hour + HOUR_MS - 1, hour + geometry.length_ms))
            for end in sorted(ends):
                if end <= series.watermark:
                    _record(series, self._compute(series, kind, end - geometry.length_ms, end), out)

    def _prune(self, series: _Series) -> None:
        """Forget raw readings no late reading can reach, and results no window needs."""
        lowest = series.watermark - self._horizon_ms
        raw_floor = lowest
        if series.spec.percentiles and series.spec.day_night:
            # Period percentiles are re-computed from raw readings: keep the whole period.
            raw_floor = self._period_start(lowest)
        for hour in [h for h in series.raw if h < raw_floor]:
            del series.raw[hour]
        # A window containing an hour >= lowest (all a late reading can re-evaluate, and the
        # 1-h results they are computed from) starts less than the longest window before it;
        # rounding down to a local day prunes once a day instead of every hour.
        results_floor = self._day_start(lowest - self._longest_ms)
        if results_floor > series.results_floor:
            series.results_floor = results_floor
            for by_start in series.results.values():
                for start in [t for t in by_start if t < results_floor]:
                    del by_start[start]

    def _day_start(self, ms: int) -> int:
        return ms - (ms + self._offset_ms) % DAY_MS

    def _period_start(self, hour: int) -> int:
        """Start of the noise day or night period containing `hour`."""
        day = self._day_start(hour)
        day_starts = day + self.time.day_starts_h * HOUR_MS
        night_starts = day + self.time.night_starts_h * HOUR_MS
        if hour < day_starts:
            return night_starts - DAY_MS
        return day_starts if hour < night_starts else night_starts

    # -- window values --------------------------------------------------------------------

    def _compute(self, series: _Series, kind: WindowKind, start: int, end: int) -> WindowResult:
        if kind == "1h":
            return self._hour(series, start)
        if kind == "mda8":
            return self._mda8(series, start, end)
        values, coverage_s = _valid_hours(series, start, end)
        percentiles: _Percentiles = _NO_PERCENTILES
        if kind in ("day", "night") and series.spec.percentiles:
            percentiles = self._period_percentiles(series, start, end)
        return WindowResult(
            series.key,
            kind,
            start,
            end,
            _combine(values, series.spec.aggregation),
            len(values) >= self._minimum_hours[kind],
            len(values),
            coverage_s,
            *percentiles,
        )

    def _hour(self, series: _Series, start: int) -> WindowResult:
        data = series.raw.get(start)
        percentiles: _Percentiles = _NO_PERCENTILES
        if not data:
            if series.spec.percentiles:
                percentiles = (_NAN, _NAN, _NAN)
            return WindowResult(
                series.key, "1h", start, start + HOUR_MS, _NAN, False, 0, 0, *percentiles
            )
        _, values, weights = _columns(data)
        total = sum(weights)
        if series.spec.aggregation == "energy":
            energy = math.fsum(w * 10.0 ** (0.1 * v) for v, w in zip(values, weights, strict=True))
            value = 10.0 * math.log10(energy / total)
        else:
            value = math.fsum(v * w for v, w in zip(values, weights, strict=True)) / total
        coverage_ms = min(total, HOUR_MS)  # overlapping readings cannot cover more
        valid = coverage_ms >= self.settings.min_hour_coverage_s * 1000
        if series.spec.percentiles:
            percentiles = _percentiles(sorted(values))
        return WindowResult(
            series.key,
            "1h",
            start,
            start + HOUR_MS,
            value,
            valid,
            1 if valid else 0,
            coverage_ms // 1000,
            *percentiles,
        )

    def _mda8(self, series: _Series, start: int, end: int) -> WindowResult:
        best = _NAN
        best_start: int | None = None
        count = 0
        for window_start in range(start, end - 8 * HOUR_MS + 1, HOUR_MS):
            values, _ = _valid_hours(series, window_start, window_start + 8 * HOUR_MS)
            if len(values) < self.settings.min_8h_hours:
                continue
            count += 1
            mean = _combine(values, series.spec.aggregation)
            if best_start is None or mean > best:
                best, best_start = mean, window_start
        _, coverage_s = _valid_hours(series, start, end)
        valid = count >= self.settings.min_mda8_windows
        return WindowResult(
            series.key, "mda8", start, end, best, valid, count, coverage_s, max_start_ms=best_start
        )

    def _period_percentiles(self, series: _Series, start: int, end: int) -> _Percentiles:
        values: dict[int, float] = {}  # by ts: a straddling reading is in two hours
        for hour in range(start, end, HOUR_MS):
            data = series.raw.get(hour)
            if data:
                ts, hour_values, _ = _columns(data)
                values.update(zip(ts, hour_values, strict=True))
        return _percentiles(sorted(values.values()))


# -- pure helpers ---------------------------------------------------------------------------


def _pack(series: _Series, hour: int) -> None:
    data = series.raw.get(hour)
    if isinstance(data, dict):
        if data:
            series.raw[hour] = _Packed(data)
        else:
            del series.raw[hour]


def _record(series: _Series, result: WindowResult, out: list[WindowResult]) -> None:
    """Keep `result`; emit it if it is new, or if its value or validity changed.

    A change only in `hours` or `coverage_s` (say, 30 -> 40 min in a still invalid hour) is
    kept without a re-emission: nothing a rule acts on changed.
    """
    by_start = series.results.get(result.kind)
    if by_start is None:
        by_start = series.results[result.kind] = {}
    start = result.start_ms
    previous = by_start.get(start)
    if previous is not None:
        if _same_outcome(previous, result):
            if previous.hours != result.hours or previous.coverage_s != result.coverage_s:
                by_start[start] = replace(result, revision=previous.revision)
            return
        result = replace(result, revision=True)
    by_start[start] = result
    out.append(result)


def _same_outcome(a: WindowResult, b: WindowResult) -> bool:
    return (
        a.valid == b.valid
        and a.max_start_ms == b.max_start_ms
        and _same_float(a.value, b.value)
        and _same_float(a.l10, b.l10)
        and _same_float(a.l50, b.l50)
        and _same_float(a.l90, b.l90)
    )


def _same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _ordered(results: list[WindowResult]) -> list[WindowResult]:
    results.sort(key=lambda r: (r.end_ms, _RANK[r.kind], r.start_ms))
    return results


def _valid_hours(series: _Series, start: int, end: int) -> tuple[list[float], int]:
    """The valid hourly means in [start, end), and the seconds of data in all its hours."""
    values: list[float] = []
    coverage_s = 0
    hourly = series.results.get("1h", {})
    for hour in range(start, end, HOUR_MS):
        result = hourly.get(hour)
        if result is not None:
            coverage_s += result.coverage_s
            if result.valid:
                values.append(result.value)
    return values, coverage_s


def _combine(values: list[float], aggregation: Aggregation) -> float:
    if not values:
        return _NAN
    if aggregation == "energy":
        return 10.0 * math.log10(math.fsum(10.0 ** (0.1 * v) for v in values) / len(values))
    return math.fsum(values) / len(values)


def _percentiles(ascending: list[float]) -> tuple[float, float, float]:
    """(L10, L50, L90): the levels exceeded 10, 50 and 90 % of the time (docs/standards.md §3.3)."""
    if not ascending:
        return (_NAN, _NAN, _NAN)
    return (_quantile(ascending, 0.9), _quantile(ascending, 0.5), _quantile(ascending, 0.1))


def _quantile(ascending: list[float], q: float) -> float:
    position = q * (len(ascending) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ascending) - 1)
    return ascending[low] + (ascending[high] - ascending[low]) * (position - low)
