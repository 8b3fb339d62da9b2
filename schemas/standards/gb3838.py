"""GB 3838-2002 surface water classes: Table 1 limits and single-factor evaluation.

Single-factor evaluation (GB 3838-2002 §5.1): each parameter gets the best class whose limit it
meets; the site takes its worst parameter's class; worse than Class V is 劣V, reported as 6.
DO is a minimum (≥); pH must lie in 6-9 for every class, otherwise 劣V; for lakes and
reservoirs TP has its own limits and TN is evaluated (docs/standards.md §5.1, §5.2).
Where adjacent classes share a limit, the better class is assigned.

The exceedance multiple (超标倍数) against the target class is (C - C_limit) / C_limit (the
report format "氨氮/1.3", docs/standards.md §5.2, MEDIUM); for DO, a minimum, envnet uses the mirror
(C_limit - C) / C_limit, and for pH the distance to the nearer end of 6-9 over that end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


class WaterInputError(ValueError):
    """Input a site evaluation cannot be made from (base class)."""


class TargetClassError(WaterInputError):
    """A target class outside I..V (1..5)."""


class WaterValueError(WaterInputError):
    """A negative, NaN or infinite measurement."""


class NoWaterItemsError(WaterInputError):
    """No parameter that GB 3838 evaluates for the water body was given."""


@dataclass(frozen=True, slots=True)
class Quality:
    """Qualitative wording of a class (环办[2011]22号; docs/standards.md §5.2, MEDIUM-HIGH)."""

    name_zh: str
    name_en: str


# 《地表水环境质量评价办法（试行）》: I-II 优, III 良好, IV 轻度污染, V 中度污染, 劣V 重度污染.
QUALITY: Final[dict[int, Quality]] = {
    1: Quality("优", "excellent"),
    2: Quality("优", "excellent"),
    3: Quality("良好", "good"),
    4: Quality("轻度污染", "lightly polluted"),
    5: Quality("中度污染", "moderately polluted"),
    WORSE_THAN_V: Quality("重度污染", "heavily polluted"),
}


@dataclass(frozen=True, slots=True)
class SiteEvaluation:
    """Single-factor evaluation of one site (GB 3838-2002 §5.1; docs/standards.md §5.2).

    The site's class is its worst item's class (环办[2011]22号); one item worse than V makes it
    劣V (6). Each item carries its exceedance multiple against the target class.
    """

    body: WaterBody
    target: int
    items: Mapping[WaterItem, ItemClass]
    # Given but not evaluated for this body: TN is evaluated for lakes and reservoirs only.
    not_evaluated: tuple[WaterItem, ...]
    water_class: int

    @property
    def meets_target(self) -> bool:
        return self.water_class <= self.target

    @property
    def exceeding(self) -> tuple[ItemClass, ...]:
        """Items worse than the target class, worst multiple first."""
        worse = (c for c in self.items.values() if c.water_class > self.target)
        return tuple(sorted(worse, key=lambda c: c.multiple, reverse=True))

    @property
    def quality(self) -> Quality:
        return QUALITY[self.water_class]


def evaluate_site(
    values: Mapping[WaterItem, float], body: WaterBody, target: int
) -> SiteEvaluation:
    """Classify every item, take the worst as the site's class, and compare with `target`."""
    if target not in range(1, WORSE_THAN_V):
        raise TargetClassError(f"target class {target} is not one of 1..5 (I..V)")
    for item, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise WaterValueError(f"{item} value {value} is not a non-negative number")
    items = {
        item: classify(item, value, body, target)
        for item, value in values.items()
        if evaluates(item, body)
    }
    if not items:
        raise NoWaterItemsError(f"no parameter that GB 3838-2002 evaluates for a {body} was given")
    return SiteEvaluation(
        body=body,
        target=target,
        items=items,
        not_evaluated=tuple(item for item in values if not evaluates(item, body)),
        water_class=max(c.water_class for c in items.values()),
    )
