"""GB 3096-2008 noise assessment by zone and period (docs/standards.md §3)."""

from __future__ import annotations

import math

import pytest

from schemas.standards import gb3096
from schemas.standards.gb3096 import (
    NoiseInputError,
    NoiseLevelError,
    UnknownZoneError,
    assess,
    assess_night_lmax,
    parse_zone,
)

# docs/standards.md §3.1 Table C1, day / night dB(A).
TABLE_C1: dict[gb3096.NoiseZone, tuple[float, float]] = {
    "0": (50, 40),
    "1": (55, 45),
    "2": (60, 50),
    "3": (65, 55),
    "4a": (70, 55),
    "4b": (70, 60),
}


@pytest.mark.parametrize(("zone", "limits"), TABLE_C1.items())
def test_limits_by_zone_and_period(zone: gb3096.NoiseZone, limits: tuple[float, float]) -> None:
    day, night = limits
    assert assess(zone, "day", 30).limit == day
    assert assess(zone, "night", 30).limit == night
    # §5.4: night L_max limit is the night limit + 15.
    assert assess_night_lmax(zone, 30).limit == night + 15


def test_roadside_night_example() -> None:
    # Zone 4a night limit 55: 58 exceeds it by 3 dB(A).
    result = assess("4a", "night", 58)
    assert result.limit == 55 and result.exceeds and result.excess_db == pytest.approx(3.0)
    assert result.metric == "leq" and result.zone == "4a"


def test_a_level_equal_to_the_limit_meets_it() -> None:
    result = assess("2", "day", 60)
    assert not result.exceeds and result.excess_db == 0


def test_night_lmax() -> None:
    # Zone 2: 50 + 15 = 65; zone 1: 45 + 15 = 60 (docs/standards.md §3.2 examples).
    assert assess_night_lmax("2", 65).limit == 65 and not assess_night_lmax("2", 65).exceeds
    result = assess_night_lmax("1", 62.5)
    assert result.limit == 60 and result.exceeds and result.excess_db == pytest.approx(2.5)
    assert result.metric == "lmax" and result.period == "night"


def test_zone_parsing() -> None:
    assert parse_zone("4A") == "4a"
    assert parse_zone(" 2 ") == "2"
    with pytest.raises(UnknownZoneError, match="unknown noise zone '5'"):
        parse_zone("5")
    with pytest.raises(UnknownZoneError):
        assess("4c", "day", 50)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_levels_are_refused(bad: float) -> None:
    with pytest.raises(NoiseLevelError):
        assess("2", "day", bad)
    with pytest.raises(NoiseLevelError):
        assess_night_lmax("2", bad)


def test_unknown_period_is_refused() -> None:
    with pytest.raises(NoiseInputError, match="unknown period"):
        assess("2", "evening", 50)  # type: ignore[arg-type]
