"""HJ 633 Air Quality Index (AQI), both editions: HJ 633-2026 (in force from 2026-03-01) and
the superseded HJ 633-2012, for historical data (docs/standards.md §0.2, §2).

- IAQI by linear interpolation between the breakpoints that bracket the concentration
  (equation (1) of both editions), rounded UP to an integer (HJ 633-2026 §4.2.6, HJ 633-2012
  §6.2: "全部(向上)进位取整数"). AQI = the largest IAQI (equation (2)).
- Input concentrations are first rounded as HJ 633-2026 §4.2.2 says: µg/m³ to integers, CO
  (mg/m³) to one decimal, "per GB/T 8170". That GB/T 8170 means round-half-to-even for an exact
  trailing 5 is UNVERIFIED (docs/standards.md §2.2), so the rounding mode is a parameter, default
  "half-even". The same rounding is applied to 2012 data.
- The arithmetic is exact (fractions), so a concentration on a breakpoint gives exactly that
  breakpoint's IAQI, never one more from a floating-point residue before rounding up.
- Above the top breakpoint (IAQI 500) neither edition defines a sub-index; envnet reports 500,
  as aqi-hub does (docs/standards.md §2.6), and lists the indicator in `beyond_scale`.
- Missing pollutants (HJ 633-2026 §5.3): the AQI is computed from the remaining ones and the
  result names what was missing. `publishable` applies §5.3's rule that such an AQI is
  published only when it is above 100; its exemption for pollutants outside the monitoring
  plan needs three years of history and is the caller's call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from typing import Final, Literal, get_args

Edition = Literal["2012", "2026"]
Report = Literal["hour", "day"]
Pollutant = Literal["so2", "no2", "co", "o3", "pm10", "pm2_5"]
# The breakpoint columns of HJ 633-2026 Table 3 / HJ 633-2012 Table 1. "o3_8h" is the 8-h
# (sliding or daily-maximum) mean; in a daily report "o3_1h" is the daily maximum 1-h mean.
Column = Literal[
    "so2_24h",
    "so2_1h",
    "no2_24h",
    "no2_1h",
    "co_24h",
    "co_1h",
    "o3_8h",
    "o3_1h",
    "pm10_24h",
    "pm2_5_24h",
]
# What a report is computed from: the columns plus PM 1-h means, which only HJ 633-2026 indexes
# (against the daily breakpoints).
Indicator = Literal[Column, "pm10_1h", "pm2_5_1h"]
Rounding = Literal["half-even", "half-up", "none"]

EDITIONS: Final[tuple[Edition, ...]] = get_args(Edition)
POLLUTANTS: Final[tuple[Pollutant, ...]] = get_args(Pollutant)
INDICATORS: Final[tuple[Indicator, ...]] = get_args(Indicator)
ROUNDINGS: Final[tuple[Rounding, ...]] = get_args(Rounding)

# IAQI at each breakpoint, the first column of both tables.
IAQI_LEVELS: Final = (0, 50, 100, 150, 200, 300, 400, 500)

# HJ 633-2026 Table 3 (docs/standards.md §2.1, HIGH). µg/m³; CO mg/m³. SO2 1-h stops at IAQI 200
# (note b) and O3 8-h at IAQI 300 (note c).
BREAKPOINTS_2026: Final[dict[Column, tuple[int, ...]]] = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800),
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_8h": (0, 100, 160, 215, 265, 800),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "pm10_24h": (0, 50, 120, 250, 350, 420, 500, 600),
    "pm2_5_24h": (0, 35, 60, 115, 150, 250, 350, 500),
}

# HJ 633-2012 Table 1 (docs/standards.md §2.1, HIGH): as 2026 except the PM breakpoints at IAQI 100.
BREAKPOINTS_2012: Final[dict[Column, tuple[int, ...]]] = {
    **BREAKPOINTS_2026,
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm2_5_24h": (0, 35, 75, 115, 150, 250, 350, 500),
}

BREAKPOINTS: Final[dict[Edition, dict[Column, tuple[int, ...]]]] = {
    "2026": BREAKPOINTS_2026,
    "2012": BREAKPOINTS_2012,
}

# HJ 633-2026 Table 3 notes b and c: above the last breakpoint (800) the IAQI is fixed.
CEILING_IAQI_2026: Final[dict[Column, int]] = {"so2_1h": 200, "o3_8h": 300}

# HJ 633-2012 Table 1 notes (2) and (3): above 800 the indicator's own IAQI is not computed;
# the pollutant's IAQI is reported from this other indicator instead.
FALLBACK_2012: Final[dict[Column, Indicator]] = {"so2_1h": "so2_24h", "o3_8h": "o3_1h"}

# HJ 633-2026 §4.2.2: concentrations in µg/m³ are rounded to integers, CO (mg/m³) to 0.1.
DECIMALS: Final[dict[Pollutant, int]] = {
    "so2": 0,
    "no2": 0,
    "co": 1,
    "o3": 0,
    "pm10": 0,
    "pm2_5": 0,
}

POLLUTANT_OF: Final[dict[Indicator, Pollutant]] = {
    "so2_24h": "so2",
    "so2_1h": "so2",
    "no2_24h": "no2",
    "no2_1h": "no2",
    "co_24h": "co",
    "co_1h": "co",
    "o3_8h": "o3",
    "o3_1h": "o3",
    "pm10_24h": "pm10",
    "pm10_1h": "pm10",
    "pm2_5_24h": "pm2_5",
    "pm2_5_1h": "pm2_5",
}

# The column each indicator is read against. HJ 633-2026 §4.2.2: a PM 1-h mean is read against
# the daily breakpoints.
COLUMN_OF: Final[dict[Indicator, Column]] = {
    "so2_24h": "so2_24h",
    "so2_1h": "so2_1h",
    "no2_24h": "no2_24h",
    "no2_1h": "no2_1h",
    "co_24h": "co_24h",
    "co_1h": "co_1h",
    "o3_8h": "o3_8h",
    "o3_1h": "o3_1h",
    "pm10_24h": "pm10_24h",
    "pm10_1h": "pm10_24h",
    "pm2_5_24h": "pm2_5_24h",
    "pm2_5_1h": "pm2_5_24h",
}
PM_1H: Final[frozenset[Indicator]] = frozenset({"pm10_1h", "pm2_5_1h"})

# Which indicator stands for each pollutant in each report (docs/standards.md §2.4, HIGH):
# HJ 633-2026 §4.2.3-4.2.5: real-time = six 1-h means, PM against the daily breakpoints;
#   daily = five daily means + O3 MDA8.
# HJ 633-2012 §5.1.2-5.1.3 and Table 4: real-time = SO2, NO2, CO, O3 1-h means and PM 24-h
#   sliding means (plus the O3 8-h sliding mean, below); daily = five daily means + O3 MDA8
#   (plus the O3 daily maximum 1-h mean, below).
# Both editions' daily AQI: five daily means and the O3 MDA8.
_DAILY: Final[dict[Pollutant, Indicator]] = {
    "so2": "so2_24h",
    "no2": "no2_24h",
    "co": "co_24h",
    "o3": "o3_8h",
    "pm10": "pm10_24h",
    "pm2_5": "pm2_5_24h",
}
BY_POLLUTANT: Final[dict[tuple[Edition, Report], dict[Pollutant, Indicator]]] = {
    ("2026", "hour"): {
        "so2": "so2_1h",
        "no2": "no2_1h",
        "co": "co_1h",
        "o3": "o3_1h",
        "pm10": "pm10_1h",
        "pm2_5": "pm2_5_1h",
    },
    ("2026", "day"): _DAILY,
    ("2012", "hour"): {
        "so2": "so2_1h",
        "no2": "no2_1h",
        "co": "co_1h",
        "o3": "o3_1h",
        "pm10": "pm10_24h",
        "pm2_5": "pm2_5_24h",
    },
    ("2012", "day"): _DAILY,
}
# HJ 633-2012's second O3 indicator in each report (9 and 7 indicators, docs/standards.md §2.4).
SECOND_O3_2012: Final[dict[Report, Indicator]] = {"hour": "o3_8h", "day": "o3_1h"}
# Accepted only to apply HJ 633-2012 note (2) in the real-time report.
FALLBACK_INPUTS: Final[dict[tuple[Edition, Report], tuple[Indicator, ...]]] = {
    ("2012", "hour"): ("so2_24h",),
}


class AqiInputError(ValueError):
    """Input that the AQI cannot be computed from (base class)."""


class ConcentrationError(AqiInputError):
    """A concentration that is negative, NaN or infinite."""


class IndicatorError(AqiInputError):
    """An indicator that the chosen edition and report do not use."""


@dataclass(frozen=True, slots=True)
class Category:
    """One row of HJ 633-2026 Table 1 / Appendix A Table A.1 (docs/standards.md §2.3, HIGH)."""

    level: int  # 1..6, written I..VI (一级..六级)
    name_zh: str
    name_en: str
    colour_zh: str
    colour_en: str
    rgb: tuple[int, int, int]
    cmyk: tuple[int, int, int, int]
    upper: int | None  # highest AQI in the band; None for the open top band

    @property
    def roman(self) -> str:
        return ("I", "II", "III", "IV", "V", "VI")[self.level - 1]

    @property
    def level_zh(self) -> str:
        return "一二三四五六"[self.level - 1] + "级"

    @property
    def hex(self) -> str:
        return "#{:02X}{:02X}{:02X}".format(*self.rgb)


# HJ 633-2026 Table 1 and Appendix A Table A.1; identical in HJ 633-2012 except that the first
# band starts at 0 there and at 1 in 2026 (docs/standards.md §2.3). The purple is 153,0,76, not the
# US-EPA purple.
CATEGORIES: Final[tuple[Category, ...]] = (
    Category(1, "优", "Excellent", "绿", "green", (0, 228, 0), (40, 0, 100, 0), 50),
    Category(2, "良", "Good", "黄", "yellow", (255, 255, 0), (0, 0, 100, 0), 100),
    Category(
        3, "轻度污染", "Lightly polluted", "橙", "orange", (255, 126, 0), (0, 52, 100, 0), 150
    ),
    Category(4, "中度污染", "Moderately polluted", "红", "red", (255, 0, 0), (0, 100, 100, 0), 200),
    Category(
        5, "重度污染", "Heavily polluted", "紫", "purple", (153, 0, 76), (10, 100, 40, 30), 300
    ),
    Category(
        6, "严重污染", "Severely polluted", "褐红", "maroon", (126, 0, 35), (30, 100, 100, 30), None
    ),
)
AQI_MAX: Final = 500
# First AQI of band I: 0 in HJ 633-2012, 1 in HJ 633-2026 (its AQI range is 1-500). An AQI of 0
# (every concentration exactly 0) can still come out of equation (1); it is put in band I.
AQI_MIN: Final[dict[Edition, int]] = {"2012": 0, "2026": 1}
# HJ 633-2012 §3: a pollutant with IAQI > 100 is a non-attainment pollutant (超标污染物).
# HJ 633-2026 deleted the concept.
NON_ATTAINMENT_ABOVE_2012: Final = 100
# Both editions: a primary pollutant is named only when AQI > 50.
PRIMARY_ABOVE: Final = 50


@dataclass(frozen=True, slots=True)
class AqiResult:
    edition: Edition
    report: Report
    aqi: int | None
    iaqi: Mapping[Indicator, int]
    category: Category | None
    primary_indicators: tuple[Indicator, ...]
    # Report indicators not supplied, and (HJ 633-2012 notes (2)/(3)) those whose IAQI could not
    # be computed because the indicator to fall back on was not supplied.
    missing: tuple[Indicator, ...]
    not_computable: tuple[Indicator, ...]
    # Indicator -> the indicator its IAQI was reported from (HJ 633-2012 notes (2)/(3)).
    fallbacks: Mapping[Indicator, Indicator]
    beyond_scale: tuple[Indicator, ...]
    non_attainment: tuple[Indicator, ...]

    @property
    def level(self) -> int | None:
        return None if self.category is None else self.category.level

    @property
    def primary(self) -> tuple[Pollutant, ...]:
        """The primary pollutant(s) (首要污染物), empty when AQI <= 50."""
        return tuple(dict.fromkeys(POLLUTANT_OF[i] for i in self.primary_indicators))

    @property
    def by_pollutant(self) -> dict[Pollutant, int]:
        """Each pollutant's IAQI: the larger of its indicators' where 2012 has two for O3."""
        out: dict[Pollutant, int] = {}
        for indicator, value in self.iaqi.items():
            pollutant = POLLUTANT_OF[indicator]
            out[pollutant] = max(value, out.get(pollutant, value))
        return out

    @property
    def publishable(self) -> bool:
        """HJ 633-2026 §5.3: with pollutants missing, publish the AQI only when above 100."""
        if self.aqi is None:
            return False
        complete = not self.missing and not self.not_computable
        return complete or self.aqi > NON_ATTAINMENT_ABOVE_2012


# Exact decimal rounding of any finite float: its shortest form has at most 17 significant
# digits and an exponent within ±324, so this precision never rounds before `quantize` does.
_DECIMAL_CONTEXT: Final = Context(prec=800, Emax=999, Emin=-999)
_QUANTUM: Final[dict[int, Decimal]] = {p: Decimal(1).scaleb(-p) for p in set(DECIMALS.values())}
_DECIMAL_ROUNDING: Final[dict[Rounding, str]] = {
    "half-even": ROUND_HALF_EVEN,
    "half-up": ROUND_HALF_UP,  # the same as half-away-from-zero: concentrations are >= 0
}


def round_concentration(pollutant: Pollutant, value: float, rounding: Rounding) -> Fraction:
    """`value` as HJ 633-2026 §4.2.2 uses it: µg/m³ to integers, CO mg/m³ to 0.1.

    The float's shortest decimal form is rounded, so 0.15 is 0.15 (not 0.1499...). Decimal,
    not Fraction, does the rounding: exact as well, and several times faster (it runs for
    every pollutant of every hourly AQI).
    """
    if not math.isfinite(value):
        raise ConcentrationError(f"{pollutant} concentration {value} is not a number")
    if value < 0:
        raise ConcentrationError(f"{pollutant} concentration {value} is negative")
    exact = Decimal(repr(float(value)))
    if rounding == "none":
        return Fraction(exact)
    quantum = _QUANTUM[DECIMALS[pollutant]]
    rounded = exact.quantize(quantum, _DECIMAL_ROUNDING[rounding], _DECIMAL_CONTEXT)
    return Fraction(rounded)


def column_for(edition: Edition, indicator: Indicator) -> Column:
    """The breakpoint column an indicator is read against."""
    if edition == "2012" and indicator in PM_1H:
        # HJ 633-2012 Table 4: PM 1-h means are reported as concentrations only.
        raise IndicatorError(f"HJ 633-2012 gives {indicator} no IAQI")
    return COLUMN_OF[indicator]


def iaqi(
    edition: Edition, indicator: Indicator, concentration: float, rounding: Rounding = "half-even"
) -> int | None:
    """The individual AQI of one indicator (µg/m³; CO mg/m³).

    None when HJ 633-2012 notes (2)/(3) say it is not computed from this indicator (SO2 1-h or
    O3 8-h above 800 µg/m³); the report functions then fall back to the other indicator.
    """
    value = round_concentration(POLLUTANT_OF[indicator], concentration, rounding)
    return _iaqi_of_rounded(edition, column_for(edition, indicator), value)


# Rounded concentrations repeat (µg/m³ integers), so equation (1) is computed once per value.
@functools.lru_cache(maxsize=16_384)
def _iaqi_of_rounded(edition: Edition, column: Column, value: Fraction) -> int | None:
    points = BREAKPOINTS[edition][column]
    for i in range(1, len(points)):
        if value <= points[i]:
            low, high = points[i - 1], points[i]
            low_i, high_i = IAQI_LEVELS[i - 1], IAQI_LEVELS[i]
            # Equation (1), exact; then rounded up (2026 §4.2.6, 2012 §6.2).
            return math.ceil(Fraction(high_i - low_i, high - low) * (value - low) + low_i)
    if edition == "2026" and column in CEILING_IAQI_2026:
        return CEILING_IAQI_2026[column]
    if edition == "2012" and column in FALLBACK_2012:
        return None
    return AQI_MAX


def _beyond_scale(edition: Edition, column: Column, value: Fraction) -> bool:
    over_top = value > BREAKPOINTS[edition][column][-1]
    return over_top and column not in CEILING_IAQI_2026 and column not in FALLBACK_2012


def category_for(aqi: int) -> Category:
    """The AQI band (level I..VI) of an AQI value."""
    if aqi < 0:
        raise AqiInputError(f"AQI {aqi} is negative")
    return next(c for c in CATEGORIES if c.upper is None or aqi <= c.upper)


def band(edition: Edition, category: Category) -> tuple[int, int]:
    """The AQI range of a band in an edition, e.g. (1, 50) for level I in 2026."""
    index = CATEGORIES.index(category)
    low = AQI_MIN[edition] if index == 0 else (CATEGORIES[index - 1].upper or 0) + 1
    return low, AQI_MAX if category.upper is None else category.upper


def indicators(edition: Edition, report: Report) -> tuple[Indicator, ...]:
    """The indicators a report is computed from, in the standard's order."""
    main = tuple(BY_POLLUTANT[(edition, report)].values())
    return (*main, SECOND_O3_2012[report]) if edition == "2012" else main


def report_aqi(
    edition: Edition,
    report: Report,
    values: Mapping[Indicator, float],
    rounding: Rounding = "half-even",
) -> AqiResult:
    """The AQI of a real-time ("hour") or daily ("day") report from indicator concentrations."""
    used = indicators(edition, report)
    allowed = set(used) | set(FALLBACK_INPUTS.get((edition, report), ()))
    for indicator in values:
        if indicator not in allowed:
            raise IndicatorError(
                f"{indicator} is not used by the HJ 633-{edition} {_REPORT_NAMES[report]} AQI"
            )
    rounded = {
        i: round_concentration(POLLUTANT_OF[i], value, rounding) for i, value in values.items()
    }
    sub: dict[Indicator, int] = {}
    fallbacks: dict[Indicator, Indicator] = {}
    not_computable: list[Indicator] = []
    beyond: list[Indicator] = []
    for indicator in used:
        if indicator not in rounded:
            continue
        column = column_for(edition, indicator)
        if _beyond_scale(edition, column, rounded[indicator]):
            beyond.append(indicator)
        value = _iaqi_of_rounded(edition, column, rounded[indicator])
        if value is None:
            source = FALLBACK_2012[column]
            if source not in rounded:
                not_computable.append(indicator)
                continue
            value = _iaqi_of_rounded(edition, column_for(edition, source), rounded[source])
            fallbacks[indicator] = source
        if value is not None:
            sub[indicator] = value
    return _result(edition, report, sub, used, values, not_computable, fallbacks, beyond)


_REPORT_NAMES: Final[dict[Report, str]] = {"hour": "real-time (hourly)", "day": "daily"}


def _result(
    edition: Edition,
    report: Report,
    sub: dict[Indicator, int],
    used: tuple[Indicator, ...],
    values: Mapping[Indicator, float],
    not_computable: list[Indicator],
    fallbacks: dict[Indicator, Indicator],
    beyond: list[Indicator],
) -> AqiResult:
    aqi = max(sub.values()) if sub else None  # equation (2)
    primary = (
        tuple(i for i, v in sub.items() if v == aqi)
        if aqi is not None and aqi > PRIMARY_ABOVE
        else ()
    )
    non_attainment = (
        tuple(i for i, v in sub.items() if v > NON_ATTAINMENT_ABOVE_2012)
        if edition == "2012"
        else ()
    )
    return AqiResult(
        edition=edition,
        report=report,
        aqi=aqi,
        iaqi=sub,
        category=None if aqi is None else category_for(aqi),
        primary_indicators=primary,
        missing=tuple(i for i in used if i not in values),
        not_computable=tuple(not_computable),
        fallbacks=fallbacks,
        beyond_scale=tuple(beyond),
        non_attainment=non_attainment,
    )


def hourly_aqi(
    edition: Edition,
    values: Mapping[Pollutant, float],
    *,
    o3_8h: float | None = None,
    so2_24h: float | None = None,
    rounding: Rounding = "half-even",
) -> AqiResult:
    """The real-time (hourly) AQI from one value per pollutant.

    HJ 633-2026: `values` are the six 1-h means (PM 1-h means read against the daily
    breakpoints). HJ 633-2012: SO2, NO2, CO and O3 are 1-h means and PM10, PM2.5 the 24-h
    sliding means; `o3_8h` is the O3 8-h sliding mean, and `so2_24h` the SO2 24-h mean that
    note (2) falls back on when SO2 1-h exceeds 800 µg/m³. Both are 2012-only.
    """
    extra: dict[Indicator, float] = {}
    if o3_8h is not None:
        extra["o3_8h"] = o3_8h
    if so2_24h is not None:
        extra["so2_24h"] = so2_24h
    return report_aqi(edition, "hour", _by_indicator(edition, "hour", values, extra), rounding)


def daily_aqi(
    edition: Edition,
    values: Mapping[Pollutant, float],
    *,
    o3_1h_max: float | None = None,
    rounding: Rounding = "half-even",
) -> AqiResult:
    """The daily AQI: daily means, O3 as MDA8 (the daily maximum 8-h sliding mean).

    `o3_1h_max` is the O3 daily maximum 1-h mean, an indicator of HJ 633-2012 only.
    """
    extra: dict[Indicator, float] = {} if o3_1h_max is None else {"o3_1h": o3_1h_max}
    return report_aqi(edition, "day", _by_indicator(edition, "day", values, extra), rounding)


def _by_indicator(
    edition: Edition,
    report: Report,
    values: Mapping[Pollutant, float],
    extra: dict[Indicator, float],
) -> dict[Indicator, float]:
    mapping = BY_POLLUTANT[(edition, report)]
    out: dict[Indicator, float] = {}
    for pollutant, value in values.items():
        if pollutant not in mapping:
            raise IndicatorError(f"unknown pollutant {pollutant!r}")
        out[mapping[pollutant]] = value
    return {**out, **extra}
