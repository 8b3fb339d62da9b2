"""Air-quality period figures (`envnet report air`): good-air days, AQI categories, limit
exceedance days, period means and the O3 evaluation value, per node and per group. Pure.

Where the figures come from, and why (docs/standards.md §2.7):

- **Daily values, not stored daily AQI points.** Each day is judged from the node's stored
  valid daily windows (`windows`: 24h means, O3 MDA8, and for HJ 633-2012 days the O3 1-h means
  whose maximum that edition indexes), with the same HJ 633 code the aggregator uses
  (schemas.standards.hj633, aggregator.engine.rules.air.AQI_ROUNDING). The stored `aqi` points
  were computed under the aggregator's `[alerts] air_edition` at the time; the report must
  judge each day by the edition in force on it, or by one configured edition
  (`[report] air_edition`), and must count limit exceedances, which the AQI does not carry
  (from 2031 an IAQI of 100 is not the limit, docs/standards.md §0.3). One set of inputs for
  every figure keeps them consistent with each other.
- **Which days count.** A daily mean is valid with >= 20 valid 1-h means, an MDA8 under the
  `[alerts.windows]` MDA8 rule (GB 3095-2026 Table 4, docs/standards.md §1.4); the aggregator
  decided that when it stored the window (`valid`). A *valid day* has a publishable daily AQI
  (HJ 633-2026 §5.3, docs/standards.md §2.4): every indicator present, or an AQI above 100
  from those present. Good days are valid days with AQI <= 100 (levels I and II, §2.3), heavy
  days valid days with AQI > 200 (levels V and VI). A pollutant's exceedance days, mean and
  (O3) percentile use that pollutant's valid daily values, whether or not the day's AQI is
  publishable.
- **Limits.** The pollutant's GB 3095 Table 1 daily limit (24-h; O3: 8-h, applied to MDA8) of
  the edition and phase in force on the day (docs/standards.md §0.1, §1.1), for the node's zone
  class from the inventory (Grade I in Class 1, Grade II in Class 2, §1.3; a node without one
  takes `[report] default_air_zone`). Exceeding means above the limit, as the alerts judge it.
- **Several sensors of one pollutant on a node**: their valid daily values are averaged
  (envnet's choice).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal, cast

import numpy as np

from aggregator.engine.rules.air import AQI_ROUNDING
from aggregator.reports.queries import WindowPoint
from aggregator.reports.request import InventoryNode, Period
from aggregator.reports.settings import ReportSettings
from schemas.standards import editions, gb3095, hj633

Pollutant = hj633.Pollutant
POLLUTANTS: Final[tuple[Pollutant, ...]] = hj633.POLLUTANTS
# The stored window that is a pollutant's daily value (docs/standards.md §2.4).
DAILY_WINDOW: Final[dict[Pollutant, str]] = {
    p: ("mda8" if p == "o3" else "24h") for p in POLLUTANTS
}
# GB 3095 Table 1 period of that daily value: the O3 8-h limit applies to MDA8 (§1.1).
LIMIT_PERIOD: Final[dict[Pollutant, gb3095.Period]] = {
    p: ("8h" if p == "o3" else "24h") for p in POLLUTANTS
}
GOOD_MAX: Final = 100  # levels I and II: 优良 (docs/standards.md §2.3)
HEAVY_ABOVE: Final = 200  # levels V and VI: 重度污染 and worse (docs/standards.md §2.3)
# Decimals of the period means in the report (µg/m³; CO mg/m³).
MEAN_DECIMALS: Final[dict[Pollutant, int]] = {p: (2 if p == "co" else 1) for p in POLLUTANTS}
ZoneSource = Literal["inventory", "default", "members"]


@dataclass(frozen=True, slots=True)
class AirDay:
    """One local day's valid daily values of a node (or a group's mean of them)."""

    day: date
    values: Mapping[Pollutant, float]
    o3_1h_max: float | None = None


@dataclass(frozen=True, slots=True)
class JudgedDay:
    """A day judged: its daily AQI (HJ 633) and the pollutants over their daily limit."""

    day: date
    edition: gb3095.Edition
    phase: gb3095.Phase
    values: Mapping[Pollutant, float]
    aqi: int | None
    category: hj633.Category | None
    publishable: bool
    missing: tuple[str, ...]
    primary: tuple[str, ...]
    exceeded: tuple[Pollutant, ...]

    @property
    def valid(self) -> bool:
        return self.publishable


@dataclass(frozen=True, slots=True)
class MonthFigures:
    valid_days: int
    good_days: int


@dataclass(frozen=True, slots=True)
class AirFigures:
    """The period figures of one node or group."""

    days_in_period: int
    valid_days: int
    good_days: int
    good_day_ratio: float | None
    categories: dict[str, int]
    heavy_days: int
    exceedance_days: dict[str, int]
    assessed_days: dict[str, int]
    mean: dict[str, float]
    o3_percentile: float | None
    editions: dict[str, int]
    zone: int
    zone_source: ZoneSource
    clauses: tuple[str, ...]
    months: dict[str, MonthFigures]
    days: tuple[JudgedDay, ...] = ()
    members: tuple[str, ...] = ()

    @property
    def edition(self) -> str:
        return ",".join(sorted(self.editions)) or "-"


@dataclass(frozen=True, slots=True)
class AirReport:
    period: Period
    settings: ReportSettings
    nodes: dict[str, AirFigures]
    groups: dict[str, AirFigures] = field(default_factory=dict)


# -- from stored windows to days ----------------------------------------------------------------


def node_days(points: Iterable[WindowPoint], period: Period) -> dict[str, dict[date, AirDay]]:
    """Each node's days from its stored windows: valid 24h means and MDA8 as the daily values
    (several sensors averaged), and the largest valid O3 1-h mean of the day. Windows outside
    the period, invalid ones and other kinds are left out."""
    daily: dict[tuple[str, date, Pollutant], list[float]] = defaultdict(list)
    o3_max: dict[tuple[str, date], float] = {}
    for p in points:
        if not p.valid or p.quantity not in POLLUTANTS:
            continue
        day = period.local_day(p.start_ms)
        if not period.first <= day <= period.last:
            continue
        pollutant = p.quantity  # narrowed to a Pollutant by the test above
        if p.window == DAILY_WINDOW[pollutant]:
            daily[(p.node, day, pollutant)].append(max(p.value, 0.0))  # as the engine (air.py)
        elif p.window == "1h" and pollutant == "o3":
            key = (p.node, day)
            o3_max[key] = max(p.value, o3_max.get(key, p.value))
    values: dict[tuple[str, date], dict[Pollutant, float]] = defaultdict(dict)
    for (node, day, pollutant), found in daily.items():
        values[(node, day)][pollutant] = float(np.mean(found))
    out: dict[str, dict[date, AirDay]] = defaultdict(dict)
    for (node, day), vals in values.items():
        out[node][day] = AirDay(day, vals, o3_max.get((node, day)))
    return dict(out)


def group_days(members: Sequence[Mapping[date, AirDay]]) -> dict[date, AirDay]:
    """A group's days judged as one site ("mean-of-nodes", docs/standards.md §2.7): each
    pollutant's daily value is the mean of the members' valid daily values that day, the O3
    1-h maximum the mean of theirs (envnet's choice; UNVERIFIED against HJ 663)."""
    out: dict[date, AirDay] = {}
    for day in sorted({d for m in members for d in m}):
        present = [m[day] for m in members if day in m]
        values = {
            p: float(np.mean([d.values[p] for d in present if p in d.values]))
            for p in POLLUTANTS
            if any(p in d.values for d in present)
        }
        maxima = [d.o3_1h_max for d in present if d.o3_1h_max is not None]
        out[day] = AirDay(day, values, float(np.mean(maxima)) if maxima else None)
    return out


# -- judging a day -------------------------------------------------------------------------------


def judge_day(
    d: AirDay, zone: Literal[1, 2], period: Period, settings: ReportSettings
) -> JudgedDay:
    """The day's HJ 633 daily AQI and its GB 3095 daily-limit exceedances, by the edition of
    the day (docs/standards.md §0.1) unless `[report] air_edition` forces one."""
    edition = editions.resolve(settings.air_edition, period.day_start_ms(d.day))
    phase = gb3095.phase_for(edition, d.day)
    # HJ 633-2012 §5.1.2: the 2012 daily AQI also indexes the O3 daily maximum 1-h mean.
    o3_max = d.o3_1h_max if edition == "2012" else None
    result = hj633.daily_aqi(edition, d.values, o3_1h_max=o3_max, rounding=AQI_ROUNDING)
    exceeded = tuple(
        p
        for p in POLLUTANTS
        if p in d.values
        and (limit := gb3095.limit(phase, p, LIMIT_PERIOD[p], zone)) is not None
        and d.values[p] > limit
    )
    return JudgedDay(
        day=d.day,
        edition=edition,
        phase=phase,
        values=d.values,
        aqi=result.aqi,
        category=result.category,
        publishable=result.publishable,
        missing=tuple(result.missing) + tuple(result.not_computable),
        primary=result.primary,
        exceeded=exceeded,
    )


# -- period figures ------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float, method: str) -> float | None:
    """The `pct` percentile of `values` by `[report] o3_percentile_method` (UNVERIFIED,
    docs/standards.md §2.7); None without values."""
    if not values:
        return None
    array = np.asarray(values, dtype=np.float64)
    if method == "nearest-rank":
        return float(np.percentile(array, pct, method="inverted_cdf"))
    return float(np.percentile(array, pct, method="linear"))


def figures(
    days: Sequence[JudgedDay],
    days_in_period: int,
    zone: Literal[1, 2],
    zone_source: ZoneSource,
    settings: ReportSettings,
    *,
    calendar: bool = True,
    members: tuple[str, ...] = (),
) -> AirFigures:
    """The figures of a node's (or a group's) judged days; a node-day counts once."""
    aqi = np.array([d.aqi if d.valid and d.aqi is not None else -1 for d in days], dtype=int)
    valid = aqi >= 0
    levels = np.array([d.category.level if d.valid and d.category else 0 for d in days], int)
    valid_days = int(np.count_nonzero(valid))
    good_days = int(np.count_nonzero(valid & (aqi <= GOOD_MAX)))
    categories = {c.roman: int(np.count_nonzero(levels == c.level)) for c in hj633.CATEGORIES}
    exceedance: dict[str, int] = {}
    assessed: dict[str, int] = {}
    mean: dict[str, float] = {}
    for p in POLLUTANTS:
        vals = np.array([d.values[p] for d in days if p in d.values], dtype=float)
        assessed[p] = int(vals.size)
        exceedance[p] = sum(1 for d in days if p in d.exceeded)
        if vals.size and p != "o3":
            mean[p] = round(float(np.mean(vals)), MEAN_DECIMALS[p])
    mda8 = [d.values["o3"] for d in days if "o3" in d.values]
    o3 = percentile(mda8, settings.o3_percentile, settings.o3_percentile_method)
    editions_used: dict[str, int] = defaultdict(int)
    for d in days:
        editions_used[d.edition] += 1
    return AirFigures(
        days_in_period=days_in_period,
        valid_days=valid_days,
        good_days=good_days,
        good_day_ratio=round(good_days / valid_days, 4) if valid_days else None,
        categories=categories,
        heavy_days=int(np.count_nonzero(valid & (aqi > HEAVY_ABOVE))),
        exceedance_days=exceedance,
        assessed_days=assessed,
        mean=mean,
        o3_percentile=None if o3 is None else round(o3, 1),
        editions=dict(sorted(editions_used.items())),
        zone=zone,
        zone_source=zone_source,
        clauses=clauses(days, zone),
        months=months(days),
        days=tuple(days) if calendar else (),
        members=members,
    )


def months(days: Iterable[JudgedDay]) -> dict[str, MonthFigures]:
    """Valid and good days per calendar month (YYYY-MM), for the monthly chart."""
    valid: dict[str, int] = defaultdict(int)
    good: dict[str, int] = defaultdict(int)
    for d in days:
        key = f"{d.day.year:04d}-{d.day.month:02d}"
        valid[key] += 0
        if d.valid and d.aqi is not None:
            valid[key] += 1
            good[key] += int(d.aqi <= GOOD_MAX)
    return {k: MonthFigures(valid[k], good[k]) for k in sorted(valid)}


def clauses(days: Iterable[JudgedDay], zone: Literal[1, 2]) -> tuple[str, ...]:
    """The standards and clauses the days were judged by."""
    grade = "Grade I" if zone == 1 else "Grade II"
    out: list[str] = []
    for phase in sorted({d.phase for d in days}):
        standard, clause = gb3095.clause(phase)
        out.append(f"{standard} {clause}, {grade} 24-h and O3 8-h (MDA8) limits")
    for edition in sorted({d.edition for d in days}):
        table = "Table 1, §5.1.2" if edition == "2012" else "Table 3, §4.2, §5.3"
        out.append(f"HJ 633-{edition} {table} (daily AQI)")
    return tuple(out)


# -- nodes and groups ----------------------------------------------------------------------------


def zone_of(info: InventoryNode, settings: ReportSettings) -> tuple[Literal[1, 2], ZoneSource]:
    if info.air_zone in (1, 2):
        return cast(Literal[1, 2], info.air_zone), "inventory"
    return settings.default_air_zone, "default"


def compute(
    period: Period,
    nodes: Sequence[InventoryNode],
    points: Iterable[WindowPoint],
    settings: ReportSettings,
    group: str | None = None,
) -> AirReport:
    """The report: figures per node and, when a group was asked for, for the group."""
    by_node = node_days(points, period)
    count = len(period.days)
    node_figures: dict[str, AirFigures] = {}
    judged: dict[str, list[JudgedDay]] = {}
    zones: dict[str, Literal[1, 2]] = {}
    for info in nodes:
        zone, source = zone_of(info, settings)
        zones[info.node] = zone
        days = by_node.get(info.node, {})
        judged[info.node] = [judge_day(days[d], zone, period, settings) for d in sorted(days)]
        node_figures[info.node] = figures(judged[info.node], count, zone, source, settings)
    groups: dict[str, AirFigures] = {}
    if group is not None:
        members = tuple(i.node for i in nodes if i.group == group)
        # A group mixing zone classes is judged by the stricter one (envnet's choice).
        zone = min((zones[m] for m in members), default=settings.default_air_zone)
        if settings.group_days == "pooled":
            pooled = [d for m in members for d in judged[m]]
            groups[group] = figures(
                pooled, count * len(members), zone, "members", settings,
                calendar=False, members=members,
            )  # fmt: skip
        else:
            days = group_days([by_node.get(m, {}) for m in members])
            as_one = [judge_day(days[d], zone, period, settings) for d in sorted(days)]
            groups[group] = figures(as_one, count, zone, "members", settings, members=members)
    return AirReport(period, settings, node_figures, groups)
