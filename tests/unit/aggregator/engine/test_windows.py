"""Event-time windows: GB 3095-2026 Table 4 validity counts, GB 3096-2008 day/night periods in
UTC+8, the MDA8 convention, late data, duplicates, and memory bounds."""

from __future__ import annotations

import itertools
import math
import random
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.engine.event_time import EventTime
from aggregator.engine.windows import (
    AIR_DAILY,
    HOUR_MS,
    HOURLY,
    NOISE,
    OZONE,
    Aggregation,
    SeriesKey,
    SeriesSpec,
    WindowEngine,
    WindowResult,
    WindowSettings,
    WindowSettingsError,
    _Packed,
)
from schemas.messages import Reading
from schemas.quantities import SPECS, Quantity
from schemas.storage import WindowKind

MIN_MS = 60_000
DAY_MS = 24 * HOUR_MS
O3: SeriesKey = ("n1", "s1", "o3")
NO2: SeriesKey = ("n1", "s1", "no2")
LAEQ: SeriesKey = ("n1", "s2", "laeq")


def local_ms(iso: str) -> int:
    """Epoch ms of a China Standard Time (UTC+8) wall-clock instant."""
    return int(datetime.fromisoformat(iso + "+08:00").astimezone(UTC).timestamp() * 1000)


DAY0 = local_ms("2026-07-01T00:00")  # a local midnight (16:00 UTC the day before)


def reading(q: Quantity, ts: int, value: float, period_s: int = 60) -> Reading:
    spec = SPECS[q]
    return Reading(
        ts=ts,
        quantity=q,
        value=value,
        unit=spec.unit,
        period_s=period_s,
        stat=spec.default_stat,
        sensor="s",
    )


def key_of(q: Quantity) -> SeriesKey:
    return {"o3": O3, "no2": NO2, "laeq": LAEQ}[q]


def feed(engine: WindowEngine, spec: SeriesSpec, readings: Iterable[Reading]) -> list[WindowResult]:
    out: list[WindowResult] = []
    for r in readings:
        out.extend(engine.add(key_of(r.quantity), r, spec))
    return out


def hours(q: Quantity, start: int, values: Iterable[float | None]) -> list[Reading]:
    """One full-hour reading per hour from `start`; None leaves the hour without data."""
    return [reading(q, start + i * HOUR_MS, v, 3600) for i, v in enumerate(values) if v is not None]


def of(results: Iterable[WindowResult], kind: WindowKind) -> list[WindowResult]:
    return [r for r in results if r.kind == kind]


def one(results: Iterable[WindowResult], kind: WindowKind, start: int) -> WindowResult:
    (found,) = [r for r in results if r.kind == kind and r.start_ms == start]
    return found


def outcome(r: WindowResult) -> tuple[object, ...]:
    """The comparable content of a result: nan made equal to itself, revision left out."""

    def norm(x: float | None) -> object:
        return "nan" if x is not None and math.isnan(x) else x

    return (
        r.key,
        r.kind,
        r.start_ms,
        r.end_ms,
        norm(r.value),
        r.valid,
        r.hours,
        r.coverage_s,
        norm(r.l10),
        norm(r.l50),
        norm(r.l90),
        r.max_start_ms,
    )


# -- GB 3095-2026 Table 4 validity counts ---------------------------------------------------


def test_an_hour_is_valid_with_45_minutes_of_data_not_44_59() -> None:
    engine = WindowEngine()
    short = [reading("no2", DAY0 + m * MIN_MS, 40.0) for m in range(44)]
    short.append(reading("no2", DAY0 + 44 * MIN_MS, 40.0, 59))  # 44 min 59 s in all
    enough = [reading("no2", DAY0 + HOUR_MS + m * MIN_MS, 50.0) for m in range(45)]
    out = feed(engine, HOURLY, short + enough) + engine.advance(NO2, DAY0 + 2 * HOUR_MS)
    first, second = of(out, "1h")
    assert (first.start_ms, first.coverage_s, first.valid, first.hours) == (DAY0, 2699, False, 0)
    assert first.value == pytest.approx(40.0)  # the value is still given, marked invalid
    assert (second.coverage_s, second.valid, second.hours) == (2700, True, 1)
    assert second.end_ms == DAY0 + 2 * HOUR_MS


def test_an_hour_closes_once_when_a_reading_starts_in_a_later_hour() -> None:
    engine = WindowEngine()
    for m in range(60):
        assert engine.add(NO2, reading("no2", DAY0 + m * MIN_MS, 100.0 + m), HOURLY) == []
    (result,) = engine.add(NO2, reading("no2", DAY0 + HOUR_MS, 0.0), HOURLY)
    assert (result.kind, result.start_ms, result.coverage_s, result.revision) == (
        "1h",
        DAY0,
        3600,
        False,
    )
    assert result.value == pytest.approx(129.5)
    assert engine.add(NO2, reading("no2", DAY0 + HOUR_MS + MIN_MS, 0.0), HOURLY) == []


def test_a_daily_mean_needs_20_valid_hourly_means_of_the_local_day() -> None:
    engine = WindowEngine()
    # Day 1: 19 valid hours and one of 30 min; day 2: 20 valid hours.
    day1 = [float(10 + h) for h in range(19)]
    day2 = [float(100 + h) for h in range(20)]
    readings = hours("no2", DAY0, day1)
    readings.append(reading("no2", DAY0 + 19 * HOUR_MS, 999.0, 1800))
    readings += hours("no2", DAY0 + DAY_MS, day2)
    out = feed(engine, AIR_DAILY, readings) + engine.advance(NO2, DAY0 + 2 * DAY_MS)
    first, second = of(out, "24h")
    assert (first.start_ms, first.end_ms) == (DAY0, DAY0 + DAY_MS)  # local midnights
    assert (first.valid, first.hours) == (False, 19)
    assert first.value == pytest.approx(sum(day1) / 19)  # the invalid hour is not averaged in
    assert first.coverage_s == 19 * 3600 + 1800
    assert (second.valid, second.hours) == (True, 20)
    assert second.value == pytest.approx(sum(day2) / 20)


def test_an_8h_mean_needs_6_of_its_8_hourly_means() -> None:
    engine = WindowEngine()
    values = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0]
    out = feed(engine, OZONE, hours("o3", DAY0, values)) + engine.advance(O3, DAY0 + 7 * HOUR_MS)
    five = one(out, "8h", DAY0 - 3 * HOUR_MS)  # hours -3..4: five with data
    six = one(out, "8h", DAY0 - 2 * HOUR_MS)  # hours -2..5: six
    assert (five.valid, five.hours, five.end_ms) == (False, 5, DAY0 + 5 * HOUR_MS)
    assert (six.valid, six.hours) == (True, 6)
    assert six.value == pytest.approx(sum(values) / 6)


# -- MDA8 -----------------------------------------------------------------------------------


def _ozone_day() -> list[Reading]:
    # 200 from 20:00 the evening before through 03:00, 100 otherwise, until 01:00 next day.
    evening = hours("o3", DAY0 - 4 * HOUR_MS, [200.0] * 4)
    day = hours("o3", DAY0, [200.0] * 4 + [100.0] * 20)
    return [*evening, *day, reading("o3", DAY0 + DAY_MS, 100.0, 3600)]


def test_mda8_uses_the_17_windows_ending_08_to_24_by_default() -> None:
    engine = WindowEngine()
    out = feed(engine, OZONE, _ozone_day())
    mda8 = one(out, "mda8", DAY0)
    assert mda8.end_ms == DAY0 + DAY_MS
    assert (mda8.valid, mda8.hours) == (True, 17)
    # The best counted window is 00:00-08:00 (four hours of 200, four of 100). The all-200
    # window 20:00-04:00 ends at 04:00 and does not count under this convention.
    assert mda8.value == pytest.approx(150.0)
    assert mda8.max_start_ms == DAY0
    # The evening before has no valid 8-h window: its MDA8 is emitted, invalid.
    previous = one(out, "mda8", DAY0 - DAY_MS)
    assert (previous.valid, previous.hours, math.isnan(previous.value)) == (False, 0, True)
    assert previous.max_start_ms is None


def test_mda8_window_convention_is_configurable() -> None:
    engine = WindowEngine(WindowSettings(mda8_first_end_hour=1))
    out = feed(engine, OZONE, _ozone_day())
    mda8 = one(out, "mda8", DAY0 - 7 * HOUR_MS)  # the first window ends at 01:00
    # 24 windows; the one ending 01:00 has 5 hours of data (20:00-01:00), the rest >= 6.
    assert mda8.hours == 23
    assert mda8.value == pytest.approx(200.0)
    # 18:00-02:00 is the first all-200 window with >= 6 hours; ties go to the earliest.
    assert mda8.max_start_ms == DAY0 - 6 * HOUR_MS


def test_mda8_validity_counts_valid_8h_windows() -> None:
    engine = WindowEngine()  # 14 valid windows of 17 needed (UNVERIFIED default)
    # Day A: hours 00-17 -> windows ending 08..20 valid (13). Day B: 00-18 -> 14.
    day_a = hours("o3", DAY0, [100.0] * 18)
    day_b = hours("o3", DAY0 + DAY_MS, [100.0] * 19)
    out = feed(engine, OZONE, day_a + day_b) + engine.advance(O3, DAY0 + 2 * DAY_MS)
    assert (one(out, "mda8", DAY0).hours, one(out, "mda8", DAY0).valid) == (13, False)
    assert (one(out, "mda8", DAY0 + DAY_MS).hours, one(out, "mda8", DAY0 + DAY_MS).valid) == (
        14,
        True,
    )


# -- GB 3096-2008 day and night ---------------------------------------------------------------


def test_noise_night_spans_midnight_in_utc8_and_belongs_to_its_start_date() -> None:
    engine = WindowEngine()
    start, end = local_ms("2026-07-01T21:30"), local_ms("2026-07-02T06:30")
    readings = [
        reading("laeq", ts, 45.0 if (ts // MIN_MS) % 2 else 55.0)
        for ts in range(start, end, MIN_MS)
    ]
    out = feed(engine, NOISE, readings) + engine.advance(LAEQ, local_ms("2026-07-02T23:00"))
    night = one(out, "night", local_ms("2026-07-01T22:00"))
    assert night.end_ms == local_ms("2026-07-02T06:00")
    assert (night.valid, night.hours, night.coverage_s) == (True, 8, 8 * 3600)
    hourly = 10 * math.log10((10**4.5 + 10**5.5) / 2)
    assert night.value == pytest.approx(hourly)
    assert (night.l10, night.l50, night.l90) == (55.0, 50.0, 45.0)
    # 21:30-22:00 belongs to the day of July 1, 06:00-06:30 to the day of July 2: one
    # invalid half hour each.
    day1 = one(out, "day", local_ms("2026-07-01T06:00"))
    day2 = one(out, "day", local_ms("2026-07-02T06:00"))
    assert day1.end_ms == local_ms("2026-07-01T22:00")
    for day in (day1, day2):
        assert (day.valid, day.hours, day.coverage_s, math.isnan(day.value)) == (
            False,
            0,
            1800,
            True,
        )
        assert day.l10 == 55.0 and day.l90 == 45.0
    # Exactly one night window has data, and it starts on July 1.
    assert [n.start_ms for n in of(out, "night") if n.coverage_s] == [night.start_ms]


def test_ln_is_the_energy_mean_of_the_night_hours() -> None:
    engine = WindowEngine()
    night = local_ms("2026-07-01T22:00")
    levels = [50.0, 50.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0]
    out = feed(engine, NOISE, hours("laeq", night, levels))
    out += engine.advance(LAEQ, night + 8 * HOUR_MS)
    (ln,) = [n for n in of(out, "night") if n.coverage_s]
    assert ln.value == pytest.approx(10 * math.log10((2 * 10**5 + 6 * 10**4) / 8))
    assert ln.value > sum(levels) / 8  # not the arithmetic mean of the dB values
    assert ln.l10 == pytest.approx(50.0)
    assert ln.l90 == pytest.approx(40.0)


def test_day_night_hours_are_configurable() -> None:
    engine = WindowEngine(time=EventTime(day_starts_h=7, night_starts_h=23))
    out = feed(engine, NOISE, hours("laeq", DAY0, [50.0] * 30))
    assert [n.start_ms for n in of(out, "night")] == [local_ms("2026-06-30T23:00")]
    assert [d.start_ms for d in of(out, "day")] == [local_ms("2026-07-01T07:00")]
    assert of(out, "day")[0].end_ms == local_ms("2026-07-01T23:00")


# -- late data, duplicates, horizon ---------------------------------------------------------


def test_a_late_reading_revises_the_hour_and_the_closed_windows_that_contain_it() -> None:
    engine = WindowEngine()
    feed(engine, OZONE, hours("o3", DAY0, [100.0] * 11))  # watermark 10:00, hour 10 open
    late = engine.add(O3, reading("o3", DAY0 + 3 * HOUR_MS + 30 * MIN_MS, 400.0, 60), OZONE)
    assert all(r.revision for r in late)
    # Hour 03 and the closed 8-h windows containing it (starting 20:00..03:00, ending by
    # 10:00); not the ones still open, nor the MDA8 of a day not closed.
    expected = [("1h", DAY0 + 3 * HOUR_MS)] + [("8h", DAY0 + h * HOUR_MS) for h in range(-4, 3)]
    assert [(r.kind, r.start_ms) for r in late] == expected
    assert one(late, "1h", DAY0 + 3 * HOUR_MS).value == pytest.approx(
        (3600 * 100 + 60 * 400) / 3660
    )
    assert engine.late_readings == 1


def test_only_windows_whose_value_or_validity_changed_are_re_emitted() -> None:
    engine = WindowEngine()
    day = hours("no2", DAY0, [100.0] * 24)
    del day[5]  # hour 05 gets 20 min only
    day += [reading("no2", DAY0 + 5 * HOUR_MS + m * MIN_MS, 100.0) for m in range(20)]
    out = feed(engine, AIR_DAILY, day) + engine.advance(NO2, DAY0 + DAY_MS)
    assert one(out, "24h", DAY0).hours == 23
    # Ten more minutes at 300: the hour's value changes but it stays invalid, so the daily
    # mean does not change and is not re-emitted (its coverage is updated quietly).
    first = feed(engine, AIR_DAILY, [reading("no2", DAY0 + 5 * HOUR_MS + 40 * MIN_MS, 300.0, 600)])
    assert [(r.kind, r.revision, r.valid) for r in first] == [("1h", True, False)]
    assert one(engine.windows(NO2), "24h", DAY0).coverage_s == 23 * 3600 + 1800
    # Twenty more minutes: the hour becomes valid and the daily mean changes.
    second = feed(
        engine, AIR_DAILY, [reading("no2", DAY0 + 5 * HOUR_MS + 20 * MIN_MS, 100.0, 1200)]
    )
    assert [(r.kind, r.revision, r.valid) for r in second] == [
        ("1h", True, True),
        ("24h", True, True),
    ]
    assert one(second, "24h", DAY0).hours == 24


def test_a_late_reading_before_the_first_hour_closes_the_windows_in_between() -> None:
    engine = WindowEngine()
    engine.add(NO2, reading("no2", DAY0 + 10 * HOUR_MS, 1.0, 3600), HOURLY)
    out = engine.add(NO2, reading("no2", DAY0 + 8 * HOUR_MS, 2.0, 3600), HOURLY)
    assert [(r.start_ms, r.valid, r.revision) for r in out] == [
        (DAY0 + 8 * HOUR_MS, True, False),
        (DAY0 + 9 * HOUR_MS, False, False),
    ]


def test_a_resent_batch_counts_once() -> None:
    engine = WindowEngine()
    batch = [reading("no2", DAY0 + m * MIN_MS, float(m)) for m in range(60)]
    feed(engine, HOURLY, batch + batch)
    (result,) = engine.advance(NO2, DAY0 + HOUR_MS)
    assert result.coverage_s == 3600
    assert result.value == pytest.approx(29.5)
    assert engine.duplicates == 60
    # Re-sent again after the hour closed: counted, nothing changes, nothing is emitted.
    assert feed(engine, HOURLY, batch) == []
    assert (engine.duplicates, engine.late_readings) == (120, 60)


def test_a_duplicate_replaces_the_earlier_value() -> None:
    engine = WindowEngine()
    feed(engine, HOURLY, [reading("no2", DAY0, 10.0, 3600), reading("no2", DAY0, 20.0, 3600)])
    (result,) = engine.advance(NO2, DAY0 + HOUR_MS)
    assert result.value == 20.0


def test_readings_older_than_the_late_horizon_are_counted_and_ignored() -> None:
    engine = WindowEngine(WindowSettings(late_horizon_h=48))
    engine.add(NO2, reading("no2", DAY0, 1.0), HOURLY)
    engine.add(NO2, reading("no2", DAY0 + 60 * HOUR_MS, 1.0), HOURLY)
    assert engine.add(NO2, reading("no2", DAY0 + 11 * HOUR_MS + 59 * MIN_MS, 5.0), HOURLY) == []
    assert engine.too_late == 1
    accepted = engine.add(NO2, reading("no2", DAY0 + 12 * HOUR_MS, 5.0), HOURLY)
    # Hour 12 was closed empty (it ends within the horizon); now it has data.
    assert [(r.start_ms, r.revision) for r in accepted] == [(DAY0 + 12 * HOUR_MS, True)]
    assert (engine.too_late, engine.late_readings) == (1, 1)


def test_readings_longer_than_an_hour_are_not_windowed() -> None:
    engine = WindowEngine()
    assert engine.add(NO2, reading("no2", DAY0, 1.0, 86400), HOURLY) == []
    assert engine.counters.not_windowed == 1
    assert engine.series_count == 0


def test_a_reading_straddling_an_hour_boundary_counts_in_both_hours() -> None:
    engine = WindowEngine()
    engine.add(NO2, reading("no2", DAY0 + 50 * MIN_MS, 10.0, 1200), HOURLY)
    first, second = engine.advance(NO2, DAY0 + 2 * HOUR_MS)
    assert (first.coverage_s, second.coverage_s) == (600, 600)
    assert first.value == second.value == 10.0


def test_advance_closes_a_silent_series_without_a_month_of_empty_windows() -> None:
    engine = WindowEngine()
    engine.add(NO2, reading("no2", DAY0, 1.0, 3600), AIR_DAILY)
    out = engine.advance(NO2, DAY0 + 30 * DAY_MS)
    with_data = [r for r in out if r.coverage_s]
    assert [(r.kind, r.start_ms) for r in with_data] == [("1h", DAY0), ("24h", DAY0)]
    # Empty windows are emitted only within the late horizon (48 h) of the watermark.
    empty = [r for r in out if not r.coverage_s]
    assert len(of(empty, "1h")) == 48 and len(of(empty, "24h")) == 2
    assert all(r.end_ms > DAY0 + 28 * DAY_MS and not r.valid for r in empty)
    assert engine.advance(NO2, DAY0 + 30 * DAY_MS) == []
    assert engine.advance(("x", "y", "z"), DAY0) == []


def test_memory_is_bounded_by_the_late_horizon() -> None:
    engine = WindowEngine(WindowSettings(late_horizon_h=6))
    readings = [reading("laeq", DAY0 + m * MIN_MS, 50.0) for m in range(8 * 24 * 60)]
    feed(engine, NOISE, readings)
    # Raw minutes: the horizon plus, for period percentiles, the rest of the period it
    # falls in (at most a 16-h day), plus the open hour.
    assert engine.held_readings <= (6 + 16 + 1) * 60
    assert len(engine.windows(LAEQ)) <= 24 * 6 + 10


def test_period_percentiles_see_the_whole_period_even_with_a_short_horizon() -> None:
    engine = WindowEngine(WindowSettings(late_horizon_h=1))
    day = local_ms("2026-07-01T06:00")
    levels = [40.0] * 10 + [60.0] * 6  # L90 of the day is 40 only if its morning is kept
    out = feed(engine, NOISE, hours("laeq", day, levels))
    out += engine.advance(LAEQ, day + 16 * HOUR_MS)
    ld = one(out, "day", day)
    assert (ld.l90, ld.l50, ld.l10) == (40.0, 40.0, 60.0)


def test_advance_all_closes_every_series() -> None:
    engine = WindowEngine()
    engine.add(NO2, reading("no2", DAY0, 1.0, 3600), HOURLY)
    engine.add(O3, reading("o3", DAY0, 2.0, 3600), HOURLY)
    out = engine.advance_all(DAY0 + HOUR_MS)
    assert sorted((r.key, r.value) for r in out) == [(NO2, 1.0), (O3, 2.0)]


@pytest.mark.parametrize(
    "changes",
    [
        {"min_8h_hours": 9},
        {"min_hour_coverage_s": 0},
        {"day_starts_h": 22, "night_starts_h": 6},
        {"mda8_first_end_hour": 9, "mda8_last_end_hour": 8},
        {"min_mda8_windows": 18},
        {"late_horizon_h": -1},
    ],
)
def test_impossible_settings_are_refused(changes: dict[str, int]) -> None:
    clock = {k: v for k, v in changes.items() if k in ("day_starts_h", "night_starts_h")}
    own = {k: v for k, v in changes.items() if k not in clock}
    with pytest.raises(WindowSettingsError):
        WindowEngine(WindowSettings(**own), EventTime(**clock))


# -- properties -----------------------------------------------------------------------------

ALL_MEAN = SeriesSpec("mean", daily=True, eight_hour=True, day_night=True, percentiles=True)
ALL_ENERGY = SeriesSpec("energy", daily=True, eight_hour=True, day_night=True, percentiles=True)
PERIODS = st.sampled_from([1, 60, 300, 1800, 3600])


@st.composite
def one_hour(draw: st.DrawFn) -> list[tuple[int, float, int]]:
    """(ts, value, period) inside one hour, unique ts; periods may run into the next hour."""
    seconds = draw(st.lists(st.integers(0, 3599), min_size=1, max_size=40, unique=True))
    return [(DAY0 + s * 1000, draw(st.floats(20, 120)), draw(PERIODS)) for s in seconds]


@given(one_hour(), st.sampled_from(["mean", "energy"]), st.floats(20, 120))
def test_the_hourly_mean_of_a_constant_is_the_constant(
    samples: list[tuple[int, float, int]], aggregation: Aggregation, constant: float
) -> None:
    engine = WindowEngine()
    spec = SeriesSpec(aggregation, percentiles=True)
    feed(engine, spec, [reading("laeq", ts, constant, p) for ts, _, p in samples])
    first = engine.advance(LAEQ, DAY0 + HOUR_MS)[0]
    assert first.value == pytest.approx(constant, rel=1e-12)
    assert first.l10 == first.l50 == first.l90 == constant


@given(one_hour(), st.randoms(use_true_random=False), st.sampled_from(["mean", "energy"]))
def test_an_hourly_value_is_exactly_the_same_in_any_arrival_order(
    samples: list[tuple[int, float, int]], rng: random.Random, aggregation: Aggregation
) -> None:
    spec = SeriesSpec(aggregation, percentiles=True)
    readings = [reading("laeq", ts, v, p) for ts, v, p in samples]
    results = []
    for order in (readings, rng.sample(readings, len(readings))):
        engine = WindowEngine()
        feed(engine, spec, order)
        results.append(outcome(engine.advance(LAEQ, DAY0 + HOUR_MS)[0]))
    assert results[0] == results[1]


@given(one_hour())
def test_energy_mean_is_at_least_the_arithmetic_mean_and_percentiles_are_ordered(
    samples: list[tuple[int, float, int]],
) -> None:
    results = []
    for aggregation in ("mean", "energy"):
        engine = WindowEngine()
        spec = SeriesSpec(aggregation, percentiles=True)
        feed(engine, spec, [reading("laeq", ts, v, p) for ts, v, p in samples])
        results.append(engine.advance(LAEQ, DAY0 + HOUR_MS)[0])
    arithmetic, energy = results
    assert energy.value >= arithmetic.value - 1e-9
    assert energy.coverage_s == min(
        3600, sum(min(p, 3600 - (ts - DAY0) // 1000) for ts, _, p in samples)
    )
    values = [v for _, v, _ in samples]
    assert energy.l10 is not None and energy.l50 is not None and energy.l90 is not None
    assert max(values) >= energy.l10 >= energy.l50 >= energy.l90 >= min(values)


@given(
    st.lists(
        st.one_of(st.none(), st.tuples(st.floats(0, 500), st.integers(1, 60))),
        min_size=24,
        max_size=24,
    )
)
def test_the_daily_mean_is_the_mean_of_the_valid_hourly_means(
    day: list[tuple[float, int] | None],
) -> None:
    engine = WindowEngine()
    readings = [
        reading("no2", DAY0 + h * HOUR_MS, hour[0], hour[1] * 60)
        for h, hour in enumerate(day)
        if hour is not None
    ]
    out = feed(engine, AIR_DAILY, readings) + engine.advance(NO2, DAY0 + DAY_MS)
    if not readings:
        assert out == []  # no series without a reading
        return
    valid = [r.value for r in of(out, "1h") if r.valid]
    assert len(valid) == sum(1 for hour in day if hour is not None and hour[1] >= 45)
    daily = one(out, "24h", DAY0)
    assert (daily.hours, daily.valid) == (len(valid), len(valid) >= 20)
    if valid:
        assert daily.value == math.fsum(valid) / len(valid)
    else:
        assert math.isnan(daily.value)


@st.composite
def span_of_readings(draw: st.DrawFn) -> list[Reading]:
    """Up to 120 readings with unique ts over 30 hours from a drawn local hour."""
    start = DAY0 + draw(st.integers(0, 23)) * HOUR_MS
    minutes = draw(st.lists(st.integers(0, 30 * 60 - 1), min_size=1, max_size=120, unique=True))
    return [
        reading("laeq", start + m * MIN_MS, draw(st.floats(20, 120)), draw(PERIODS))
        for m in minutes
    ]


def _final_states(
    engine: WindowEngine, spec: SeriesSpec, readings: list[Reading], batch: int = 0
) -> tuple[dict[tuple[WindowKind, int], tuple[object, ...]], list[tuple[object, ...]]]:
    if batch:
        emitted = []
        for i in range(0, len(readings), batch):
            emitted += engine.add_batch((LAEQ, r, spec) for r in readings[i : i + batch])
    else:
        emitted = feed(engine, spec, readings)
    emitted += engine.advance(LAEQ, max(r.ts for r in readings) + 3 * DAY_MS)
    last = {(r.kind, r.start_ms): outcome(r) for r in emitted}
    # Emissions carry value and validity changes; the held state has every field.
    outcomes = {k: (v[4], v[5], *v[8:]) for k, v in last.items()}
    return outcomes, [outcome(r) for r in engine.windows(LAEQ)]


@given(
    span_of_readings(), st.randoms(use_true_random=False), st.sampled_from([ALL_MEAN, ALL_ENERGY])
)
def test_window_results_do_not_depend_on_arrival_order(
    readings: list[Reading], rng: random.Random, spec: SeriesSpec
) -> None:
    shuffled = list(readings)
    rng.shuffle(shuffled)
    in_order = _final_states(WindowEngine(), spec, sorted(readings, key=lambda r: r.ts))
    any_order = _final_states(WindowEngine(), spec, shuffled)
    assert any_order == in_order


@given(
    span_of_readings(),
    st.randoms(use_true_random=False),
    st.sampled_from([ALL_MEAN, ALL_ENERGY]),
    st.integers(1, 50),
)
def test_batches_give_the_same_windows_as_single_adds(
    readings: list[Reading], rng: random.Random, spec: SeriesSpec, batch: int
) -> None:
    rng.shuffle(readings)
    singly = _final_states(WindowEngine(), spec, readings)
    batched = _final_states(WindowEngine(), spec, readings, batch)
    assert batched == singly


def test_a_backlog_batch_revises_each_window_once() -> None:
    engine = WindowEngine()
    feed(engine, OZONE, hours("o3", DAY0, [100.0] * 11))  # live data up to 10:00
    engine.add(O3, reading("o3", DAY0 + 3 * HOUR_MS, 100.0, 3600), OZONE)  # a duplicate
    # The node drains its backlog: hour 03 again, minute by minute, at 160.
    backlog = [
        (O3, reading("o3", DAY0 + 3 * HOUR_MS + m * MIN_MS, 160.0), OZONE) for m in range(60)
    ]
    out = engine.add_batch(backlog)
    keys = [(r.kind, r.start_ms) for r in out]
    assert len(keys) == len(set(keys)) == 1 + 7  # the hour and its closed 8-h windows
    # Minute 0 has the hourly reading's ts and replaces it: the hour is 160 throughout.
    assert one(out, "1h", DAY0 + 3 * HOUR_MS).value == pytest.approx(160.0)
    assert all(r.revision for r in out)
    assert (engine.late_readings, engine.duplicates) == (61, 2)


@given(span_of_readings(), st.randoms(use_true_random=False), st.data())
def test_re_sent_readings_change_nothing_but_the_duplicate_count(
    readings: list[Reading], rng: random.Random, data: st.DataObject
) -> None:
    rng.shuffle(readings)
    resent = data.draw(st.lists(st.sampled_from(readings), max_size=40))
    with_resends = list(readings)
    for r in resent:
        # Each copy arrives at some point after its original.
        first = with_resends.index(r)
        with_resends.insert(rng.randint(first + 1, len(with_resends)), r)
    once, twice = WindowEngine(), WindowEngine()
    assert _final_states(twice, ALL_ENERGY, with_resends) == _final_states(
        once, ALL_ENERGY, readings
    )
    assert twice.duplicates - once.duplicates == len(resent)


def test_a_new_spec_applies_to_windows_closed_from_then_on() -> None:
    engine = WindowEngine()
    feed(engine, HOURLY, hours("no2", DAY0, [50.0] * 12))
    out = feed(engine, AIR_DAILY, hours("no2", DAY0 + 12 * HOUR_MS, [50.0] * 13))
    (daily,) = of(out, "24h")
    assert (daily.start_ms, daily.hours, daily.value) == (DAY0, 24, 50.0)


def test_a_replacement_that_no_longer_straddles_leaves_nothing_in_the_next_hour() -> None:
    engine = WindowEngine()
    engine.add(NO2, reading("no2", DAY0 + 50 * MIN_MS, 10.0, 1200), HOURLY)
    engine.add(NO2, reading("no2", DAY0 + 50 * MIN_MS, 10.0, 600), HOURLY)  # same ts
    first, second = engine.advance(NO2, DAY0 + 2 * HOUR_MS)
    assert (first.coverage_s, second.coverage_s) == (600, 0)


def test_a_batch_closes_a_day_with_its_own_late_data_included() -> None:
    engine = WindowEngine()
    feed(engine, AIR_DAILY, hours("no2", DAY0, [50.0] * 23))  # watermark 22:00
    out = engine.add_batch(
        [
            (NO2, reading("no2", DAY0 + 5 * HOUR_MS, 98.0, 3600), AIR_DAILY),  # replaces 50
            (NO2, reading("no2", DAY0 + DAY_MS, 50.0, 3600), AIR_DAILY),  # closes the day
        ]
    )
    (daily,) = of(out, "24h")  # emitted once, already with the late hour
    assert (daily.revision, daily.hours) == (False, 23)
    assert daily.value == pytest.approx((22 * 50 + 98) / 23)


@given(
    st.lists(st.integers(0, 3599), min_size=1, max_size=60, unique=True),
    st.sampled_from(["grid", "shuffled", "as drawn"]),
    st.lists(st.sampled_from([60_000, 60_000, 1_000, 300_000]), min_size=60, max_size=60),
)
def test_a_packed_hour_gives_back_exactly_what_it_was_given(
    seconds: list[int], order: str, weights: list[int]
) -> None:
    """Closed hours are packed (regular time stamps as a range, equal weights as one) and
    unpacked for late readings: the same readings, in the same order, whatever the form."""
    if order == "grid":
        seconds = [s * 60 % 3600 for s in range(len(seconds) % 60 + 1)]
    elif order == "shuffled":
        random.Random(len(seconds)).shuffle(seconds)
    samples = {DAY0 + s * 1000: (float(i) / 3, weights[i % 60]) for i, s in enumerate(seconds)}
    packed = _Packed(samples)
    assert list(packed.unpacked().items()) == list(samples.items())
    assert len(packed) == len(samples)
    assert list(packed.ts) == list(samples) and list(packed.weights) == [
        w for _, w in samples.values()
    ]
    for ts, sample in samples.items():
        assert packed.get(ts) == sample
    assert packed.get(DAY0 - 1) is None


def test_a_regular_hour_packs_into_one_array() -> None:
    regular = _Packed({DAY0 + m * MIN_MS: (1.0, MIN_MS) for m in range(60)})
    assert isinstance(regular.ts, range) and not isinstance(regular.weights, array)
    ragged = _Packed({DAY0 + m * MIN_MS + (m == 7): (1.0, MIN_MS - (m == 59)) for m in range(60)})
    assert isinstance(ragged.ts, array) and isinstance(ragged.weights, array)


def test_results_are_kept_for_the_longest_window_beyond_the_late_horizon() -> None:
    """What a late reading can re-evaluate: windows that contain an hour within the horizon,
    and the hourly results they are computed from; older results are forgotten."""
    settings = WindowSettings(late_horizon_h=20, mda8_first_end_hour=15, mda8_last_end_hour=31)
    engine = WindowEngine(settings)
    feed(engine, OZONE, hours("o3", DAY0, [80.0] * 10 * 24))
    watermark = DAY0 + (10 * 24 - 1) * HOUR_MS  # day 9, 23:00
    lowest = watermark - 20 * HOUR_MS
    floor = min(r.start_ms for r in engine.windows(O3))
    longest = (31 - 15 + 8) * HOUR_MS  # the MDA8 span
    assert lowest - longest - DAY_MS < floor <= lowest - longest
    # A late reading at the horizon (day 9, 03:00) still revises the MDA8 of day 8, which
    # spans day 8 07:00 to day 9 07:00.
    late = feed(engine, OZONE, [reading("o3", lowest, 200.0, 3600)])
    (mda8,) = of(late, "mda8")
    assert mda8.revision and mda8.start_ms == DAY0 + 8 * DAY_MS + 7 * HOUR_MS


@st.composite
def node_messages(draw: st.DrawFn) -> list[list[Reading]]:
    """One node's readings of three windowed quantities over 30 hours, in any order (late
    ones and duplicates included), cut into messages of 1 to 12 readings."""
    start = DAY0 + draw(st.integers(0, 23)) * HOUR_MS
    readings = [
        reading(q, start + m * MIN_MS, draw(st.floats(1, 150)), draw(PERIODS))
        for q in ("o3", "no2", "laeq")
        for m in draw(st.lists(st.integers(0, 30 * 60 - 1), max_size=40))
    ]
    order = draw(st.permutations(readings))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=8)))
    bounds = [0, *cuts, len(order)]
    return [list(order[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


NODE_SPECS: dict[Quantity, SeriesSpec] = {"o3": OZONE, "no2": AIR_DAILY, "laeq": NOISE}


@given(node_messages())
def test_add_node_emits_what_add_batch_emits(messages: list[list[Reading]]) -> None:
    # add_node takes the open-hour case inline (aggregator.engine.windows); it must emit the
    # same windows, in the same order, as the general path, and hold the same state after.
    general, inline = WindowEngine(), WindowEngine()
    for message in messages:
        expected = general.add_batch(
            (("n1", r.sensor, r.quantity), r, NODE_SPECS[r.quantity]) for r in message
        )
        assert inline.add_node("n1", message, NODE_SPECS) == expected
    for q in NODE_SPECS:
        assert inline.windows(("n1", "s", q)) == general.windows(("n1", "s", q))
    assert inline.counters == general.counters
