"""HJ 633 AQI, both editions, against the standard's tables (docs/standards.md §2).

The reference rows of §2.6 are the acceptance tests; the hand-worked examples show the
equation (1) arithmetic in comments; the properties hold for any concentration.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.standards import hj633
from schemas.standards.hj633 import (
    CATEGORIES,
    ConcentrationError,
    Edition,
    Indicator,
    IndicatorError,
    Pollutant,
    band,
    category_for,
    daily_aqi,
    hourly_aqi,
    iaqi,
)

# docs/standards.md §2.6, the reference columns:
# (indicator, concentration, HJ 633-2012, HJ 633-2026).
TABLE_2_6: list[tuple[Indicator, float, int, int]] = [
    ("pm2_5_24h", 60, 82, 100),
    ("pm2_5_24h", 75, 100, 114),
    ("pm2_5_24h", 100, 132, 137),
    ("pm10_24h", 150, 100, 112),
    ("so2_24h", 150, 100, 100),
    ("so2_24h", 475, 150, 150),
    ("co_24h", 3, 75, 75),
    ("co_1h", 7.5, 75, 75),
]


@pytest.mark.parametrize(("indicator", "conc", "ref_2012", "ref_2026"), TABLE_2_6)
def test_reference_table_rows(
    indicator: Indicator, conc: float, ref_2012: int, ref_2026: int
) -> None:
    assert iaqi("2012", indicator, conc) == ref_2012
    assert iaqi("2026", indicator, conc) == ref_2026


def test_so2_1h_above_800_is_200_in_2026() -> None:
    # HJ 633-2026 Table 3 note b.
    assert iaqi("2026", "so2_1h", 900) == 200
    result = hourly_aqi("2026", {"so2": 900})
    assert result.iaqi == {"so2_1h": 200} and result.aqi == 200 and not result.fallbacks


def test_so2_1h_above_800_uses_the_24h_value_in_2012() -> None:
    # HJ 633-2012 Table 1 note (2): the 1-h IAQI is not computed; the 24-h one is reported.
    assert iaqi("2012", "so2_1h", 900) is None
    result = hourly_aqi("2012", {"so2": 900}, so2_24h=475)
    assert result.iaqi["so2_1h"] == 150  # the SO2 24-h IAQI of 475 µg/m³
    assert result.fallbacks == {"so2_1h": "so2_24h"}
    assert result.aqi == 150 and result.primary == ("so2",)


def test_so2_1h_above_800_without_a_24h_value_is_not_computable_in_2012() -> None:
    result = hourly_aqi("2012", {"so2": 900, "no2": 100})
    assert result.not_computable == ("so2_1h",)
    assert "so2_1h" not in result.iaqi
    assert result.aqi == 50  # from NO2 1-h alone: 100 µg/m³ is the IAQI-50 breakpoint
    assert not result.publishable


def test_o3_8h_above_800_is_300_in_2026() -> None:
    # HJ 633-2026 Table 3 note c.
    assert iaqi("2026", "o3_8h", 900) == 300
    assert daily_aqi("2026", {"o3": 900}).aqi == 300


def test_o3_8h_above_800_uses_the_1h_value_in_2012() -> None:
    # HJ 633-2012 Table 1 note (3).
    assert iaqi("2012", "o3_8h", 900) is None
    # Daily: O3 daily max 1-h 1000 -> (400-300)/(1000-800)*(1000-800)+300 = 400.
    day = daily_aqi("2012", {"o3": 900}, o3_1h_max=1000)
    assert day.iaqi == {"o3_8h": 400, "o3_1h": 400} and day.fallbacks == {"o3_8h": "o3_1h"}
    assert day.aqi == 400 and day.primary == ("o3",)
    # Real-time: the 8-h sliding mean falls back on the 1-h mean.
    hour = hourly_aqi("2012", {"o3": 1000}, o3_8h=900)
    assert hour.iaqi["o3_8h"] == 400 and hour.fallbacks == {"o3_8h": "o3_1h"}
    # Without the 1-h value it cannot be computed.
    assert daily_aqi("2012", {"o3": 900}).not_computable == ("o3_8h",)


def test_at_800_both_editions_compute_from_the_table() -> None:
    # Exactly 800 is the last breakpoint, not "above 800".
    for edition in hj633.EDITIONS:
        assert iaqi(edition, "so2_1h", 800) == 200
        assert iaqi(edition, "o3_8h", 800) == 300


@pytest.mark.parametrize("edition", hj633.EDITIONS)
def test_every_breakpoint_gives_exactly_its_iaqi(edition: Edition) -> None:
    # Exact arithmetic: no floating-point residue may round a breakpoint up by one.
    for column, points in hj633.BREAKPOINTS[edition].items():
        for level, point in zip(hj633.IAQI_LEVELS, points, strict=False):
            assert iaqi(edition, column, point) == level, (column, point)


def test_exact_arithmetic_between_breakpoints() -> None:
    # CO 24-h 2.2: (100-50)/(4-2) * (2.2-2) + 50 = 55 exactly. In binary floating point
    # 25 * (2.2 - 2) + 50 is 55.00000000000001, which rounded up would be 56.
    assert iaqi("2026", "co_24h", 2.2) == 55
    # CO 1-h 65.4: (300-200)/(90-60) * (65.4-60) + 200 = 218 exactly (floats give 219).
    assert iaqi("2026", "co_1h", 65.4) == 218


def test_hourly_2026_hand_worked() -> None:
    # HJ 633-2026 real-time: six 1-h means, PM 1-h against the daily breakpoints.
    result = hourly_aqi(
        "2026", {"pm2_5": 75, "o3": 210, "so2": 10, "no2": 40, "co": 0.8, "pm10": 90}
    )
    assert result.iaqi == {
        "so2_1h": 4,  # 50/150 * 10 = 3.33 -> 4
        "no2_1h": 20,  # 50/100 * 40 = 20
        "co_1h": 8,  # 50/5 * 0.8 = 8
        "o3_1h": 105,  # (150-100)/(300-200) * (210-200) + 100 = 105
        "pm10_1h": 79,  # (100-50)/(120-50) * (90-50) + 50 = 78.57 -> 79
        "pm2_5_1h": 114,  # (150-100)/(115-60) * (75-60) + 100 = 113.6 -> 114
    }
    assert result.aqi == 114 and result.level == 3 and result.primary == ("pm2_5",)
    assert result.category is not None and result.category.name_zh == "轻度污染"
    assert result.missing == () and result.non_attainment == () and result.publishable


def test_daily_2026_hand_worked() -> None:
    result = daily_aqi(
        "2026", {"so2": 20, "no2": 100, "co": 1.2, "o3": 180, "pm10": 100, "pm2_5": 50}
    )
    assert result.iaqi == {
        "so2_24h": 20,  # 50/50 * 20 = 20
        "no2_24h": 110,  # (150-100)/(180-80) * (100-80) + 100 = 110
        "co_24h": 30,  # 50/2 * 1.2 = 30
        "o3_8h": 119,  # (150-100)/(215-160) * (180-160) + 100 = 118.2 -> 119
        "pm10_24h": 86,  # (100-50)/(120-50) * (100-50) + 50 = 85.7 -> 86
        "pm2_5_24h": 80,  # (100-50)/(60-35) * (50-35) + 50 = 80
    }
    assert result.aqi == 119 and result.primary == ("o3",)
    assert result.primary_indicators == ("o3_8h",)


def test_hourly_2012_uses_pm_24h_sliding_and_o3_8h() -> None:
    result = hourly_aqi("2012", {"pm2_5": 100, "pm10": 200, "o3": 150}, o3_8h=170)
    assert result.iaqi == {
        "o3_1h": 47,  # 50/160 * 150 = 46.9 -> 47
        "pm10_24h": 125,  # (150-100)/(250-150) * (200-150) + 100 = 125
        "pm2_5_24h": 132,  # (150-100)/(115-75) * (100-75) + 100 = 131.25 -> 132
        "o3_8h": 110,  # (150-100)/(215-160) * (170-160) + 100 = 109.1 -> 110
    }
    assert result.non_attainment == ("pm10_24h", "pm2_5_24h", "o3_8h")
    assert set(result.missing) == {"so2_1h", "no2_1h", "co_1h"}


def test_daily_2012_has_seven_indicators() -> None:
    assert hj633.indicators("2012", "day") == (
        "so2_24h",
        "no2_24h",
        "co_24h",
        "o3_8h",
        "pm10_24h",
        "pm2_5_24h",
        "o3_1h",
    )
    assert len(hj633.indicators("2026", "day")) == 6


def test_input_rounding_modes() -> None:
    # HJ 633-2026 §4.2.2: µg/m³ to integers, CO to 0.1 mg/m³. The half-even default is
    # UNVERIFIED, so the mode is a parameter.
    # PM2.5 60.5: half-even -> 60 -> IAQI 100; half-up -> 61 -> 50/55*1 + 100 = 100.9 -> 101.
    assert iaqi("2026", "pm2_5_24h", 60.5) == 100
    assert iaqi("2026", "pm2_5_24h", 60.5, "half-up") == 101
    # Unrounded: 50/55 * 0.5 + 100 = 100.45 -> 101.
    assert iaqi("2026", "pm2_5_24h", 60.5, "none") == 101
    # CO 7.45: half-even -> 7.4 -> 50/5 * 2.4 + 50 = 74; half-up -> 7.5 -> 75.
    assert iaqi("2026", "co_1h", 7.45) == 74
    assert iaqi("2026", "co_1h", 7.45, "half-up") == 75
    # Not a tie: 60.6 -> 61 in either mode.
    assert iaqi("2026", "pm2_5_24h", 60.6) == 101


def test_above_the_top_breakpoint_is_capped_at_500() -> None:
    assert iaqi("2026", "pm2_5_24h", 501) == 500
    result = daily_aqi("2026", {"pm2_5": 800, "pm10": 50})
    assert result.aqi == 500 and result.beyond_scale == ("pm2_5_24h",)
    assert result.category is not None and result.category.level == 6


def test_pm_1h_has_no_iaqi_in_2012() -> None:
    with pytest.raises(IndicatorError, match="no IAQI"):
        iaqi("2012", "pm2_5_1h", 50)


def test_indicators_outside_the_report_are_refused() -> None:
    with pytest.raises(IndicatorError, match="o3_8h is not used by the HJ 633-2026"):
        hourly_aqi("2026", {"o3": 100}, o3_8h=120)
    with pytest.raises(IndicatorError, match="o3_1h"):
        daily_aqi("2026", {"o3": 100}, o3_1h_max=120)
    with pytest.raises(IndicatorError, match="unknown pollutant"):
        hourly_aqi("2026", {"pm1": 5})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_concentrations_are_refused(bad: float) -> None:
    with pytest.raises(ConcentrationError):
        iaqi("2026", "pm2_5_24h", bad)
    with pytest.raises(ConcentrationError):
        hourly_aqi("2026", {"pm2_5": 10, "so2": bad})


def test_primary_pollutants_tie_and_threshold() -> None:
    # PM2.5 60 and PM10 120 are both IAQI 100 in 2026: both are primary.
    tie = hourly_aqi("2026", {"pm2_5": 60, "pm10": 120, "so2": 10})
    assert tie.aqi == 100 and tie.primary == ("pm10", "pm2_5")
    # AQI 50 is not above 50: no primary pollutant.
    assert hourly_aqi("2026", {"pm2_5": 35}).primary == ()
    assert hourly_aqi("2026", {"pm2_5": 36}).primary == ("pm2_5",)


def test_non_attainment_exists_only_in_2012() -> None:
    assert daily_aqi("2012", {"pm2_5": 100}).non_attainment == ("pm2_5_24h",)
    assert daily_aqi("2026", {"pm2_5": 100}).non_attainment == ()


def test_missing_pollutants_and_publication() -> None:
    # HJ 633-2026 §5.3: computed from the rest; published only when AQI > 100.
    high = hourly_aqi("2026", {"pm2_5": 75})
    assert high.aqi == 114 and len(high.missing) == 5 and high.publishable
    low = hourly_aqi("2026", {"pm2_5": 30})
    assert low.aqi is not None and not low.publishable
    nothing = hourly_aqi("2026", {})
    assert nothing.aqi is None and nothing.category is None and nothing.level is None
    assert nothing.primary == () and not nothing.publishable


def test_categories_and_colours() -> None:
    # docs/standards.md §2.3: the purple is 153,0,76 (not the EPA purple).
    purple = CATEGORIES[4]
    assert purple.rgb == (153, 0, 76) and purple.hex == "#99004C" and purple.name_zh == "重度污染"
    assert [c.hex for c in CATEGORIES] == [
        "#00E400",
        "#FFFF00",
        "#FF7E00",
        "#FF0000",
        "#99004C",
        "#7E0023",
    ]
    assert [c.roman for c in CATEGORIES] == ["I", "II", "III", "IV", "V", "VI"]
    assert CATEGORIES[5].level_zh == "六级"
    cases = {0: 1, 1: 1, 50: 1, 51: 2, 100: 2, 101: 3, 150: 3, 151: 4, 200: 4, 201: 5}
    cases |= {300: 5, 301: 6, 500: 6}
    for aqi, level in cases.items():
        assert category_for(aqi).level == level, aqi
    assert band("2026", CATEGORIES[0]) == (1, 50)
    assert band("2012", CATEGORIES[0]) == (0, 50)
    assert band("2026", CATEGORIES[2]) == (101, 150)
    assert band("2026", CATEGORIES[5]) == (301, 500)


def test_by_pollutant_takes_the_larger_o3_indicator() -> None:
    result = daily_aqi("2012", {"o3": 170}, o3_1h_max=150)
    # MDA8 170 -> 110 (as above); max 1-h 150 -> 47.
    assert result.by_pollutant == {"o3": 110}


# ------------------------------------------------------------------------- properties

_SINGLE: list[tuple[Edition, Indicator]] = [
    (e, i)
    for e in hj633.EDITIONS
    for i in hj633.INDICATORS
    if not (e == "2012" and i in hj633.PM_1H)
]
_CONC = st.floats(min_value=0, max_value=5000, allow_nan=False)


def _top(edition: Edition, indicator: Indicator) -> float:
    """Highest concentration for which 2012 still computes the indicator's own IAQI."""
    column = hj633.COLUMN_OF[indicator]
    return 800 if edition == "2012" and column in hj633.FALLBACK_2012 else math.inf


@given(st.sampled_from(_SINGLE), _CONC, _CONC)
def test_iaqi_is_monotone_and_bounded(case: tuple[Edition, Indicator], a: float, b: float) -> None:
    edition, indicator = case
    low, high = sorted((a, b))
    high = min(high, _top(edition, indicator))
    low = min(low, high)
    i_low, i_high = iaqi(edition, indicator, low), iaqi(edition, indicator, high)
    assert i_low is not None and i_high is not None
    assert 0 <= i_low <= i_high <= hj633.AQI_MAX


@given(
    st.sampled_from(hj633.EDITIONS),
    st.sampled_from(("hour", "day")),
    st.dictionaries(st.sampled_from(hj633.POLLUTANTS), st.floats(0, 800), max_size=6),
)
def test_aqi_is_the_max_iaqi_and_category_follows(
    edition: Edition, report: hj633.Report, values: dict[Pollutant, float]
) -> None:
    result = hj633.report_aqi(
        edition, report, {hj633.BY_POLLUTANT[(edition, report)][p]: v for p, v in values.items()}
    )
    if not values:
        assert result.aqi is None
        return
    assert result.aqi == max(result.iaqi.values())
    for indicator, sub in result.iaqi.items():
        assert sub == iaqi(edition, indicator, values[hj633.POLLUTANT_OF[indicator]])
    assert result.category is not None
    low, high = band(edition, result.category)
    assert low <= result.aqi <= high or (result.aqi == 0 and result.category.level == 1)
    assert result.level == result.category.level
    assert bool(result.primary) == (result.aqi > hj633.PRIMARY_ABOVE)
    assert all(result.iaqi[i] == result.aqi for i in result.primary_indicators)
    assert len(result.missing) == len(hj633.indicators(edition, report)) - len(values)


def _reference_rounding(value: float, places: int, rounding: str) -> Fraction:
    """The rounding written out in rationals, as the standard states it."""
    exact = Fraction(repr(value))
    if rounding == "half-even":
        return round(exact, places)  # Fraction rounds half to even
    if rounding == "half-up":
        return Fraction(math.floor(exact * 10**places + Fraction(1, 2)), 10**places)
    return exact


@given(
    st.floats(min_value=0, allow_nan=False, allow_infinity=False)
    | st.integers(0, 200_000).map(lambda n: n / 20),  # many exact ties (x.x5, x.5)
    st.sampled_from(["so2", "co"]),
    st.sampled_from(["half-even", "half-up", "none"]),
)
def test_concentration_rounding_is_exact_decimal_rounding(
    value: float, pollutant: hj633.Pollutant, rounding: hj633.Rounding
) -> None:
    expected = _reference_rounding(value, hj633.DECIMALS[pollutant], rounding)
    assert hj633.round_concentration(pollutant, value, rounding) == expected
