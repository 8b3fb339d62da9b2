"""The fixed vocabulary of quantities, their canonical units and physical bounds.

Canonical units follow docs/standards.md:
- gases at the 25 °C / 1013.25 hPa reference state (GB 3095-2026 §3.14, §4.3), in µg/m³,
  except CO in mg/m³ (GB 3095-2026 Table 1);
- particulate matter at actual conditions, µg/m³ (GB 3095-2026 §4.3);
- noise in dB(A) (GB 3096-2008 §3);
- odour concentration is dimensionless (GB 14554-93 Table 1);
- water in mg/L (GB 3838-2002 Table 1), chlorophyll-a and phycocyanin in µg/L (WHO 1999/2003).

Units are spelled in ASCII on the wire ("ug/m3", not "µg/m³") so that firmware in C does not
have to get UTF-8 right to be understood.

Bounds are physical plausibility, not standards limits: a value outside them cannot be a
measurement and is refused. Small negatives are allowed where reference instruments report
them near zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

Quantity = Literal[
    "pm2_5",
    "pm10",
    "o3",
    "no2",
    "so2",
    "co",
    "tvoc",
    "laeq",
    "lamax",
    "h2s",
    "nh3",
    "odour",
    "water_temp",
    "ph",
    "do",
    "codmn",
    "nh3_n",
    "tp",
    "tn",
    "turbidity",
    "conductivity",
    "chl_a",
    "phycocyanin",
    "air_temp",
    "rh",
    "pressure",
]

Unit = Literal[
    "ug/m3",
    "mg/m3",
    "dB(A)",
    "OU",
    "degC",
    "pH",
    "mg/L",
    "ug/L",
    "NTU",
    "uS/cm",
    "%",
    "hPa",
]

Family = Literal["air", "noise", "odour", "water", "met"]

Statistic = Literal["mean", "max", "min", "leq"]


@dataclass(frozen=True, slots=True)
class QuantitySpec:
    """What the contract says about one quantity."""

    unit: Unit
    family: Family
    default_stat: Statistic
    lower: float
    upper: float
    description: str


SPECS: Final[dict[Quantity, QuantitySpec]] = {
    "pm2_5": QuantitySpec("ug/m3", "air", "mean", -20, 5000, "PM2.5, actual conditions"),
    "pm10": QuantitySpec("ug/m3", "air", "mean", -20, 10000, "PM10, actual conditions"),
    "o3": QuantitySpec("ug/m3", "air", "mean", -20, 5000, "ozone at 25 °C reference"),
    "no2": QuantitySpec("ug/m3", "air", "mean", -20, 5000, "nitrogen dioxide at 25 °C"),
    "so2": QuantitySpec("ug/m3", "air", "mean", -20, 10000, "sulphur dioxide at 25 °C"),
    "co": QuantitySpec("mg/m3", "air", "mean", -2, 500, "carbon monoxide at 25 °C"),
    "tvoc": QuantitySpec("ug/m3", "air", "mean", -20, 100000, "total VOC at 25 °C"),
    "laeq": QuantitySpec("dB(A)", "noise", "leq", 0, 160, "A-weighted equivalent level"),
    "lamax": QuantitySpec("dB(A)", "noise", "max", 0, 180, "A-weighted maximum level"),
    "h2s": QuantitySpec("ug/m3", "odour", "mean", -20, 1000000, "hydrogen sulphide at 25 °C"),
    "nh3": QuantitySpec("ug/m3", "odour", "mean", -20, 1000000, "ammonia at 25 °C"),
    "odour": QuantitySpec("OU", "odour", "mean", 0, 100000, "odour concentration"),
    "water_temp": QuantitySpec("degC", "water", "mean", -5, 60, "water temperature"),
    "ph": QuantitySpec("pH", "water", "mean", 0, 14, "pH"),
    "do": QuantitySpec("mg/L", "water", "mean", 0, 50, "dissolved oxygen"),
    "codmn": QuantitySpec("mg/L", "water", "mean", 0, 1000, "permanganate index"),
    "nh3_n": QuantitySpec("mg/L", "water", "mean", 0, 1000, "ammonia nitrogen"),
    "tp": QuantitySpec("mg/L", "water", "mean", 0, 100, "total phosphorus as P"),
    "tn": QuantitySpec("mg/L", "water", "mean", 0, 1000, "total nitrogen as N"),
    "turbidity": QuantitySpec("NTU", "water", "mean", 0, 10000, "turbidity"),
    "conductivity": QuantitySpec("uS/cm", "water", "mean", 0, 200000, "conductivity"),
    "chl_a": QuantitySpec("ug/L", "water", "mean", 0, 100000, "chlorophyll-a"),
    "phycocyanin": QuantitySpec("ug/L", "water", "mean", 0, 100000, "phycocyanin"),
    "air_temp": QuantitySpec("degC", "met", "mean", -60, 70, "air temperature"),
    "rh": QuantitySpec("%", "met", "mean", 0, 100, "relative humidity"),
    "pressure": QuantitySpec("hPa", "met", "mean", 300, 1100, "station pressure"),
}

QUANTITIES: Final[tuple[Quantity, ...]] = get_args(Quantity)
UNITS: Final[tuple[Unit, ...]] = get_args(Unit)
STATISTICS: Final[tuple[Statistic, ...]] = get_args(Statistic)


def canonical_unit(quantity: Quantity) -> Unit:
    return SPECS[quantity].unit


def family_of(quantity: Quantity) -> Family:
    return SPECS[quantity].family
