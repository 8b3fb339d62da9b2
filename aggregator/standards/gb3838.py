"""GB 3838-2002 surface water classes: Table 1 limits and single-factor evaluation.

Single-factor evaluation (GB 3838-2002 §5.1): each parameter gets the best class whose limit it
meets; the site takes its worst parameter's class; worse than Class V is 劣V, reported as 6.
DO is a minimum (≥); pH must lie in 6-9 for every class, otherwise 劣V; for lakes and
reservoirs TP has its own limits and TN is evaluated (../shared/standards.md §5.1, §5.2).
Where adjacent classes share a limit, the better class is assigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

WaterBody = Literal["river", "lake"]
WaterItem = Literal["do", "codmn", "nh3_n", "tp", "tn", "ph"]
WORSE_THAN_V: Final = 6

# GB 3838-2002 Table 1, limits for Classes I..V, mg/L. DO Class I is 7.5 mg/L (the table's
# alternative, 90 % saturation, needs temperature and pressure and is not used here).
MAXIMA: Final[dict[tuple[str, WaterBody], tuple[float, ...]]] = {
    ("codmn", "river"): (2, 4, 6, 10, 15),
    ("codmn", "lake"): (2, 4, 6, 10, 15),
    ("nh3_n", "river"): (0.15, 0.5, 1.0, 1.5, 2.0),
    ("nh3_n", "lake"): (0.15, 0.5, 1.0, 1.5, 2.0),
    ("tp", "river"): (0.02, 0.1, 0.2, 0.3, 0.4),
    ("tp", "lake"): (0.01, 0.025, 0.05, 0.1, 0.2),
    ("tn", "lake"): (0.2, 0.5, 1.0, 1.5, 2.0),
}
MINIMA: Final[dict[str, tuple[float, ...]]] = {"do": (7.5, 6, 5, 3, 2)}
PH_RANGE: Final = (6.0, 9.0)


@dataclass(frozen=True, slots=True)
class ItemClass:
    item: WaterItem
    water_class: int
    # The limit of the target class, and how many times the value exceeds it (GB 3838-2002
    # §5.1 超标倍数 = (C - C_limit) / C_limit); 0 when within the target.
    target_limit: float
    multiple: float


def evaluates(item: str, body: WaterBody) -> bool:
    return item == "ph" or item in MINIMA or (item, body) in MAXIMA


def classify(item: WaterItem, value: float, body: WaterBody, target: int) -> ItemClass:
    if item == "ph":
        low, high = PH_RANGE
        inside = low <= value <= high
        nearest = low if value < low else high
        multiple = 0.0 if inside else abs(value - nearest) / nearest
        return ItemClass(item, 1 if inside else WORSE_THAN_V, nearest, multiple)
    if item in MINIMA:
        minima = MINIMA[item]
        cls = next((i + 1 for i, m in enumerate(minima) if value >= m), WORSE_THAN_V)
        limit = minima[target - 1]
        multiple = 0.0 if value >= limit else (limit - value) / limit
        return ItemClass(item, cls, limit, multiple)
    maxima = MAXIMA[(item, body)]
    cls = next((i + 1 for i, m in enumerate(maxima) if value <= m), WORSE_THAN_V)
    limit = maxima[target - 1]
    multiple = 0.0 if value <= limit else (value - limit) / limit
    return ItemClass(item, cls, limit, multiple)


def class_name(water_class: int) -> str:
    return "劣V" if water_class >= WORSE_THAN_V else ("I", "II", "III", "IV", "V")[water_class - 1]
