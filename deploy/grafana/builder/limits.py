"""The standards limits drawn as threshold lines on the dashboards.

The numbers come from aggregator.standards, the tables the aggregator's alert rules use, so a
line on a dashboard is the limit an alert is raised at. This module only chooses which column
to draw (Grade II / Class 2 / Class III, the usual target for a Suzhou urban site) and says
where it comes from. Values are in envnet's canonical units (schemas/quantities.py). These lines
are a visual reference: the alerts that enforce the standards are raised by the aggregator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from aggregator.standards import gb3095, gb3096, gb3838, gb14554, who_bloom
from schemas.quantities import Quantity

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
class NoiseZoneLimits:
    zone: str
    area: str
    day: float
    night: float


# GB 3096-2008 §4: what each acoustic functional zone is (standards.md §3.1).
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
# commercial); Suzhou's zoning map was not checked (standards.md §1.3, §8.2), and the
# dashboard says so. The aggregator applies each node's own zone.
DRAWN_NOISE_ZONE: Final[gb3096.NoiseZone] = "2"

# GB 3838-2002 Class III: the boundary of "good" water (Classes I-III, standards.md §5.2).
_CLASS_III: Final = 3


def _air(quantity: Quantity, period: gb3095.Period) -> Limit:
    # GB 3095-2026 Table 1, transition columns (2026-03-01 to 2030-12-31), Grade II for
    # Class 2 zones (§4.1). From 2031 the final columns apply: regenerate then.
    value = gb3095.TRANSITION_2026[(quantity, period)].grade_ii
    standard, clause = gb3095.clause("2026-transition")
    hours = {"1h": "1-h", "24h": "24-h"}[period]
    cite = f"{standard} {clause}, in force to {gb3095.TRANSITION_LAST_DAY.isoformat()}"
    return Limit(quantity, value, "max", f"Grade II {hours} mean", cite)


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
    # Phycocyanin has no published threshold (standards.md §6.3): no line.
    *_blooms(),
)


def limits_for(quantity: Quantity) -> tuple[Limit, ...]:
    """The limits of one quantity, lowest value first."""
    return tuple(sorted((lim for lim in LIMITS if lim.quantity == quantity), key=_value))


def _value(limit: Limit) -> float:
    return limit.value
