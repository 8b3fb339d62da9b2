"""Clock-hour windows in event time (property-tested arithmetic)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.windows import HOUR_MS, HourlyWindows, hour_start
from schemas.messages import Reading

BASE = 1_796_000_400_000 - 1_796_000_400_000 % HOUR_MS
KEY = ("n1", "s1", "o3")


def reading(ts: int, value: float, period_s: int = 60) -> Reading:
    return Reading(
        ts=ts, quantity="o3", value=value, unit="ug/m3", period_s=period_s, stat="mean", sensor="s1"
    )


def test_an_hour_closes_when_the_next_hour_starts() -> None:
    windows = HourlyWindows()
    for minute in range(60):
        assert windows.add(KEY, reading(BASE + minute * 60_000, 100.0 + minute), False) == []
    (result,) = windows.add(KEY, reading(BASE + HOUR_MS, 0.0), False)
    assert result.start_ms == BASE
    assert result.coverage_s == 3600
    assert result.value == pytest.approx(129.5)


def test_energy_mean_for_sound() -> None:
    windows = HourlyWindows()
    windows.add(KEY, reading(BASE, 60.0, 1800), True)
    windows.add(KEY, reading(BASE + 1_800_000, 80.0, 1800), True)
    (result,) = windows.add(KEY, reading(BASE + HOUR_MS, 0.0), True)
    assert result.value == pytest.approx(77.033, abs=1e-3)


def test_duplicates_count_once_and_late_readings_are_counted() -> None:
    windows = HourlyWindows()
    windows.add(KEY, reading(BASE, 100.0, 3600), False)
    windows.add(KEY, reading(BASE, 100.0, 3600), False)
    (result,) = windows.add(KEY, reading(BASE + HOUR_MS, 1.0), False)
    assert result.coverage_s == 3600
    assert windows.add(KEY, reading(BASE + 60_000, 5.0), False) == []
    assert windows.late_readings == 1


@given(
    st.lists(st.tuples(st.integers(0, 59), st.floats(0, 1000, allow_nan=False)), min_size=1),
    st.sampled_from([60, 300]),
)
def test_mean_and_coverage_properties(samples: list[tuple[int, float]], period: int) -> None:
    windows = HourlyWindows()
    distinct: dict[int, float] = {}
    for minute, value in samples:
        windows.add(KEY, reading(BASE + minute * 60_000, value, period), False)
        distinct[minute] = value
    (result,) = windows.add(KEY, reading(BASE + HOUR_MS, 0.0), False)
    assert result.coverage_s == min(3600, period * len(distinct))
    assert min(distinct.values()) - 1e-6 <= result.value <= max(distinct.values()) + 1e-6


@given(st.integers(0, 4_102_444_800_000))
def test_hour_start_is_a_utc_and_utc8_hour_boundary(ts: int) -> None:
    start = hour_start(ts)
    assert start <= ts < start + HOUR_MS
    assert (start + 8 * HOUR_MS) % HOUR_MS == 0


def test_readings_longer_than_an_hour_are_ignored() -> None:
    windows = HourlyWindows()
    assert windows.add(KEY, reading(BASE, 1.0, 86400), False) == []
