"""Interval statistics: energy averaging for sound, arithmetic means otherwise."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.stats import IntervalStats, energy_mean_db, interval_start

LEVELS = st.lists(st.floats(20, 130, allow_nan=False), min_size=1, max_size=200)


def test_energy_mean_of_two_levels_hand_worked() -> None:
    # 10·lg((10^6 + 10^8)/2) = 10·lg(50.5e6) = 77.03 dB: dominated by the loud half, not 70.
    assert energy_mean_db([60.0, 80.0]) == pytest.approx(77.033, abs=1e-3)


def test_energy_mean_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no levels"):
        energy_mean_db([])


@given(LEVELS)
def test_leq_lies_between_the_arithmetic_mean_and_the_maximum(levels: list[float]) -> None:
    leq = energy_mean_db(levels)
    assert sum(levels) / len(levels) - 1e-9 <= leq <= max(levels) + 1e-9


@given(st.floats(20, 130, allow_nan=False), st.integers(1, 100))
def test_leq_of_a_constant_level_is_that_level(level: float, n: int) -> None:
    assert energy_mean_db([level] * n) == pytest.approx(level)


def test_interval_close_uses_each_quantity_statistic() -> None:
    stats = IntervalStats(start_ms=60_000, period_s=60, expected_samples=4)
    for value in (60.0, 80.0, 60.0, 80.0):
        stats.add("snd", "laeq", value, ("simulated",))
        stats.add("snd", "lamax", value + 5, ("simulated",))
    for value in (10.0, 20.0, 30.0, 40.0):
        stats.add("pm", "pm2_5", value, ())
    by_quantity = {r.quantity: r for r in stats.close()}
    assert by_quantity["laeq"].stat == "leq"
    assert by_quantity["laeq"].value == pytest.approx(77.033, abs=1e-3)
    assert by_quantity["lamax"].stat == "max"
    assert by_quantity["lamax"].value == 85.0
    assert by_quantity["pm2_5"].stat == "mean"
    assert by_quantity["pm2_5"].value == 25.0
    assert by_quantity["pm2_5"].ts == 60_000
    assert by_quantity["pm2_5"].period_s == 60
    assert by_quantity["laeq"].flags == ("simulated",)
    assert by_quantity["pm2_5"].flags == ()


def test_interval_with_too_few_samples_is_flagged_incomplete() -> None:
    stats = IntervalStats(start_ms=0, period_s=60, expected_samples=60)
    for _ in range(44):  # 44/60 < 75 %
        stats.add("pm", "pm2_5", 10.0, ())
    (reading,) = stats.close()
    assert reading.flags == ("incomplete",)
    stats = IntervalStats(start_ms=0, period_s=60, expected_samples=60)
    for _ in range(45):
        stats.add("pm", "pm2_5", 10.0, ())
    (reading,) = stats.close()
    assert reading.flags == ()


@given(st.integers(0, 4_102_444_800_000), st.sampled_from([1, 10, 60, 600, 3600]))
def test_interval_start_contains_the_instant(at_ms: int, period_s: int) -> None:
    start = interval_start(at_ms, period_s)
    assert start <= at_ms < start + period_s * 1000
    assert start % (period_s * 1000) == 0
    assert math.isclose(interval_start(start, period_s), start)
