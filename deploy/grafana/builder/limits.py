"""The standards limits drawn as threshold lines on the dashboards.

The numbers come from schemas.standards, the tables the aggregator's alert rules use, so a
line on a dashboard is the limit an alert is raised at. This module only chooses which column
to draw (Grade II / Class 2 / Class III, the usual target for a Suzhou urban site) and says
where it comes from. Values are in envnet's canonical units (schemas/quantities.py). These lines
are a visual reference: the alerts that enforce the standards are raised by the aggregator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from schemas.quantities import Quantity
from schemas.standards import editions, gb3095, gb3096, gb3838, gb14554, hj633, tli, who_bloom
from schemas.storage import WindowKind

# "max": values above the line are worse; "min": values below it are worse (DO, pH low end).
Direction = Literal["max", "min"]


@dataclass(frozen=True, slots=True)
class Limit:
    quantity: Quantity
    value: float
    direction: Direction
    label: str
    citation: str


@dataclass(frozen=True, slots=True)
class Band:
    """One coloured band of an index scale, from `start` (None: from the bottom) upwards."""

    start: float | None
    colour: str
    label: str


@dataclass(frozen=True, slots=True)
class NoiseZoneLimits:
    zone: str
    area: str
    day: float
    night: float


# GB 3096-2008 §4: what each acoustic functional zone is (docs/standards.md §3.1).
_NOISE_AREAS: Final[dict[gb3096.NoiseZone, str]] = {
    "0": "convalescence areas needing special quiet",
    "1": "residential, medical, education, research, administration",
    "2": "commercial, market, mixed residential-commercial-industrial",
    "3": "industrial, warehousing, logistics",
    "4a": "both sides of highways, arterial roads, urban rail, waterways",
    "4b": "both sides of railway trunk lines",
}

# GB 3096-2008 Table 1, L_Aeq limits in dB(A).
NOISE_ZONES: Final[tuple[NoiseZoneLimits, ...]] = tuple(
    NoiseZoneLimits(zone, _NOISE_AREAS[zone], limits.day, limits.night)
    for zone, limits in gb3096.LIMITS.items()
)

# GB 3096-2008 §5.4: at night L_max may not exceed the zone's night limit by more than 15 dB(A).
NIGHT_LMAX_MARGIN_DB: Final = gb3096.NIGHT_LMAX_MARGIN_DB

# The zone whose lines are drawn. Most urban sensor sites are Class 2 (mixed residential and
# commercial); Suzhou's zoning map was not checked (docs/standards.md §1.3, §8.2), and the
# dashboard says so. The aggregator applies each node's own zone.
DRAWN_NOISE_ZONE: Final[gb3096.NoiseZone] = "2"

# GB 3838-2002 Class III: the boundary of "good" water (Classes I-III, docs/standards.md §5.2).
_CLASS_III: Final = 3


def _air(quantity: Quantity, period: gb3095.Period) -> Limit:
    # GB 3095-2026 Table 1, transition columns (2026-03-01 to 2030-12-31), Grade II for
    # Class 2 zones (§4.1). From 2031 the final columns apply: regenerate then.
    value = gb3095.TRANSITION_2026[(quantity, period)].grade_ii
    standard, clause = gb3095.clause("2026-transition")
    # Table 1's O3 "8h" row is the daily maximum 8-h mean (GB 3095-2026 §3.9).
    mean = {"1h": "1-h mean", "24h": "24-h mean", "8h": "daily maximum 8-h mean (MDA8)"}[period]
    # The aggregator judges data from before 2026-03-01 by GB 3095-2012 (editions.py); a
    # dashboard line cannot change with the date, so the citation says so.
    cite = (
        f"{standard} {clause}, in force {editions.FIRST_DAY_2026.isoformat()} to "
        f"{gb3095.TRANSITION_LAST_DAY.isoformat()}; earlier data is judged by GB 3095-2012 Table 1"
    )
    return Limit(quantity, value, "max", f"Grade II {mean}", cite)


def _noise() -> tuple[Limit, ...]:
    zone = gb3096.LIMITS[DRAWN_NOISE_ZONE]
    cite = "GB 3096-2008 Table 1"
    name = f"Class {DRAWN_NOISE_ZONE}"
    return (
        Limit("laeq", zone.night, "max", f"{name} night L_Aeq (22-06 h)", cite),
        Limit("laeq", zone.day, "max", f"{name} day L_Aeq (06-22 h)", cite),
        Limit(
            "lamax",
            zone.night + NIGHT_LMAX_MARGIN_DB,
            "max",
            f"{name} night L_max (night limit + {NIGHT_LMAX_MARGIN_DB:g} dB)",
            "GB 3096-2008 §5.4",
        ),
    )


def _noise_period(period: WindowKind) -> Limit:
    # GB 3096-2008 Table 1 sets the limits for L_d and L_n themselves (docs/standards.md
    # §3.1, §3.3).
    zone = gb3096.LIMITS[DRAWN_NOISE_ZONE]
    value, name = (
        (zone.day, "day L_d (06-22 h)") if period == "day" else (zone.night, "night L_n (22-06 h)")
    )
    label = f"Class {DRAWN_NOISE_ZONE} {name}"
    return Limit("laeq", value, "max", label, "GB 3096-2008 Table 1")


def _odour(item: gb14554.OdourItem, unit: str) -> Limit:
    # Plant-boundary values for fugitive sources approved from 1994-06-01 ("new"), given by
    # the standard in mg/m³ (gases) and drawn in envnet's µg/m³.
    cite = "GB 14554-93 Table 1, plant boundary, Grade II new/expanded/rebuilt"
    label = f"Grade II new sources, {gb14554.TABLE_1[item]['II-new']:g} {unit}"
    return Limit(item, gb14554.limit(item, "II-new"), "max", label, cite)


def _water(item: gb3838.WaterItem, body: gb3838.WaterBody, label: str) -> Limit:
    value = gb3838.MAXIMA[(item, body)][_CLASS_III - 1]
    return Limit(item, value, "max", label, "GB 3838-2002 Table 1, Class III")


def _water_ranges() -> tuple[Limit, ...]:
    cite = "GB 3838-2002 Table 1"
    low, high = gb3838.PH_RANGE
    return (
        Limit("do", gb3838.MINIMA["do"][_CLASS_III - 1], "min", "Class III minimum", cite),
        Limit("ph", low, "min", f"range {low:g}-{high:g}, all classes", cite),
        Limit("ph", high, "max", f"range {low:g}-{high:g}, all classes", cite),
    )


def _blooms() -> tuple[Limit, ...]:
    cite = "WHO 1999/2003 recreational guidance, chlorophyll-a with cyanobacterial dominance"
    labels = {"who_low": "WHO low-probability level", "who_moderate": "WHO moderate level"}
    return tuple(
        Limit("chl_a", level.chl_a_ug_l, "max", labels[level.name], cite)
        for level in who_bloom.LEVELS
    )


LIMITS: Final[tuple[Limit, ...]] = (
    _air("pm2_5", "24h"),
    _air("pm10", "24h"),
    _air("o3", "1h"),
    _air("no2", "1h"),
    _air("so2", "1h"),
    _air("co", "1h"),
    *_noise(),
    _odour("h2s", "mg/m³"),
    _odour("nh3", "mg/m³"),
    _odour("odour", "(dimensionless)"),
    *_water_ranges(),
    _water("codmn", "river", "Class III"),
    _water("nh3_n", "river", "Class III"),
    _water("tp", "lake", "Class III, lakes and reservoirs (Taihu)"),
    _water("tp", "river", "Class III, rivers"),
    _water("tn", "lake", "Class III, lakes and reservoirs"),
    # Phycocyanin has no published threshold (docs/standards.md §6.3): no line.
    *_blooms(),
)


# What the aggregator's closed windows (the `windows` measurement) are compared with, by
# (quantity, window kind): the GB 3095-2026 Table 1 24-h and MDA8 limits and the GB 3096-2008
# day and night limits, in the drawn columns (Grade II, Class 2). The air.{q}.24h, air.o3.mda8,
# noise.ld and noise.ln rules compare the same windows with the node's own zone's column.
WINDOW_LIMITS: Final[dict[tuple[Quantity, WindowKind], tuple[Limit, ...]]] = {
    ("pm2_5", "24h"): (_air("pm2_5", "24h"),),
    ("pm10", "24h"): (_air("pm10", "24h"),),
    ("no2", "24h"): (_air("no2", "24h"),),
    ("so2", "24h"): (_air("so2", "24h"),),
    ("co", "24h"): (_air("co", "24h"),),
    ("o3", "mda8"): (_air("o3", "8h"),),
    ("laeq", "day"): (_noise_period("day"),),
    ("laeq", "night"): (_noise_period("night"),),
}


def _aqi_bands() -> tuple[Band, ...]:
    # HJ 633-2026 Table 1 and Appendix A Table A.1 (docs/standards.md §2.3). The AQI is an integer
    # (rounded up, §4.2.6) and each level runs from one above the previous level's upper bound
    # ("51-100"), so a band starting at upper + 1 gives every AQI exactly its level's colour;
    # a step at the upper bound itself would paint AQI 100 orange.
    bands: list[Band] = []
    start: float | None = None
    for category in hj633.CATEGORIES:
        label = f"{category.roman} {category.name_zh} {category.name_en}"
        bands.append(Band(start, category.hex, label))
        start = None if category.upper is None else category.upper + 1
    return tuple(bands)


AQI_BANDS: Final[tuple[Band, ...]] = _aqi_bands()
AQI_CITATION: Final = "HJ 633-2026 Table 1 and Appendix A Table A.1"


def _good_air_max() -> int:
    # Levels I (优) and II (良) are the good-air days, 优良天数 (HJ 633-2026 Table 1).
    upper = hj633.CATEGORIES[1].upper
    if upper is None:
        raise ValueError("HJ 633 level II has no upper bound")
    return upper


GOOD_AIR_MAX_AQI: Final = _good_air_max()
# UNVERIFIED: the Suzhou programme's target share of good-air days (>= 86 %) comes from the
# project brief, not from docs/standards.md. Change it here and regenerate the dashboards.
GOOD_AIR_TARGET_PERCENT: Final = 86.0


def _tli_bands() -> tuple[Band, ...]:
    # Trophic-state boundaries of the TLI, 总站生字[2001]090号 (docs/standards.md §6.3): 30, 50, 60,
    # 70. Which side of 50, 60 and 70 a boundary value falls on is MEDIUM there. Each band is
    # the state above its boundary; the colours are envnet's, not the method's.
    states = [state for state, _, _ in tli.CLASSES] + [tli.HYPEREUTROPHIC]
    starts: list[float | None] = [None, *(bound for _, bound, _ in tli.CLASSES)]
    colours = ("green", "yellow", "orange", "red", "dark-red")
    return tuple(
        Band(start, colour, state.name_en)
        for start, colour, state in zip(starts, colours, states, strict=True)
    )


TLI_BANDS: Final[tuple[Band, ...]] = _tli_bands()
TLI_CITATION: Final = "总站生字[2001]090号"


def window_limits_for(quantity: Quantity, window: WindowKind) -> tuple[Limit, ...]:
    return WINDOW_LIMITS.get((quantity, window), ())


def limits_for(quantity: Quantity) -> tuple[Limit, ...]:
    """The limits of one quantity, lowest value first."""
    return tuple(sorted((lim for lim in LIMITS if lim.quantity == quantity), key=_value))


def _value(limit: Limit) -> float:
    return limit.value
