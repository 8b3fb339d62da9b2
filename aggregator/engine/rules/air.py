"""Air rules: GB 3095 limit exceedances on closed windows, and HJ 633 AQI categories. Pure.

Limit exceedance and AQI category are separate rule kinds (docs/standards.md §0.3, §2.5):
under GB 3095-2026's final limits (from 2031) a daily PM2.5 of 55 µg/m³ exceeds the Grade II
limit (50) while its IAQI (90 under HJ 633-2026 Table 3) is still "good" (51-100).

- air.{q}.1h: valid 1-h means (>= 45 min, GB 3095-2026 Table 4) against the Table 1 1-h limits
  (SO2, NO2, CO, O3);
- air.{q}.24h: valid natural-day means (>= 20 hourly means) against the 24-h limits (SO2, NO2,
  CO, PM10, PM2.5);
- air.o3.mda8: the day's maximum 8-h mean (8-h means valid with >= 6 hours) against the
  O3 8-h limit;
- aqi.hour / aqi.day: the node's real-time and daily AQI (HJ 633) at or above a configured
  category level (default III, 轻度污染, AQI > 100).

Which edition applies follows from the window's start (schemas.standards.editions, unless
`air_edition` forces one): GB 3095-2012 / HJ 633-2012 before 2026-03-01 00:00 Beijing time,
the 2026 editions from then on. Which column of GB 3095-2026 Table 1 applies follows from the
window's local date: the transition limits to 2030-12-31, the final limits from 2031-01-01
(GB 3095-2026 前言, §4.4); Grade I in Class 1 zones, Grade II in Class 2 zones (§4.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, cast

from aggregator.engine.observations import Observation, Rule
from aggregator.engine.settings import EngineSettings
from aggregator.engine.windows import DAY_MS, WindowResult
from aggregator.fleet import NodeInfo
from schemas.messages import Severity
from schemas.quantities import SPECS, Quantity
from schemas.standards import editions, gb3095, hj633

AQI_POLLUTANTS: Final[frozenset[str]] = frozenset(hj633.POLLUTANTS)
# The window kinds that carry a GB 3095 Table 1 period; "8h" sliding means have no limit of
# their own (the O3 8-h limit applies to the daily maximum, MDA8).
LIMIT_PERIOD: Final[dict[str, gb3095.Period]] = {"1h": "1h", "24h": "24h", "mda8": "8h"}
WINDOW_S: Final[dict[str, int]] = {"1h": 3600, "24h": 86400, "mda8": 28800}
# How long the AQI tracker keeps a node's hourly and daily values for late revisions.
KEEP_MS: Final = 3 * DAY_MS


# HJ 633 input rounding (docs/standards.md §2.2, UNVERIFIED): half-even, as the standard's
# own examples round.
AQI_ROUNDING: Final[hj633.Rounding] = "half-even"


def edition_at(s: EngineSettings, start_ms: int) -> gb3095.Edition:
    """The GB 3095 / HJ 633 edition a window starting at `start_ms` is judged by."""
    return editions.resolve(s.air_edition, start_ms)


@dataclass(frozen=True, slots=True)
class AqiRecord:
    """One computed AQI, for storage (the `aqi` measurement) and for its alert rule."""

    node: str
    report: hj633.Report
    start_ms: int
    result: hj633.AqiResult


Suspect = Callable[[str, str], bool]


def limit_observation(
    s: EngineSettings, info: NodeInfo, q: Quantity, w: WindowResult, late: bool, suspect: bool
) -> Observation | None:
    period = LIMIT_PERIOD.get(w.kind)
    if period is None or not w.valid or info.air_zone is None:
        return None
    phase = gb3095.phase_for(edition_at(s, w.start_ms), s.local_date(w.start_ms))
    limit = gb3095.limit(phase, q, period, info.air_zone)
    if limit is None:
        return None
    standard, clause = gb3095.clause(phase)
    rule = Rule(f"air.{q}.{w.kind}", "exceedance", "warning", q, standard, clause, WINDOW_S[w.kind])
    exceeded = w.value > limit
    grade = "I" if info.air_zone == 1 else "II"
    name = {"1h": "1-h mean", "24h": "daily mean", "mda8": "MDA8"}[w.kind]
    message = (
        f"{name} {q} {w.value:.4g} {SPECS[q].unit} "
        f"{'exceeds' if exceeded else 'within'} Grade {grade} limit {limit:g} ({standard})"
    )
    return Observation(
        rule,
        info.node,
        exceeded,
        w.value,
        limit,
        w.start_ms,
        late,
        message,
        cleared=w.value <= limit * (1 - s.hysteresis.fraction),
        suspect=suspect,
        window_start_ms=w.start_ms,
    )


@dataclass(slots=True)
class _NodeAqi:
    hours: dict[int, dict[hj633.Pollutant, float]] = field(default_factory=dict)
    days: dict[int, dict[hj633.Pollutant, float]] = field(default_factory=dict)
    o3_1h_max: dict[int, float] = field(default_factory=dict)  # HJ 633-2012 daily indicator
    sensors: dict[hj633.Pollutant, str] = field(default_factory=dict)


class AqiTracker:
    """Collects a node's valid window values per pollutant and recomputes its AQI whenever one
    of them arrives or is revised. HJ 633-2026 §5.3: with pollutants missing, the AQI is
    computed from the others (the record says which are missing)."""

    def __init__(self, settings: EngineSettings) -> None:
        self._s = settings
        self._nodes: dict[str, _NodeAqi] = {}

    def add(self, node: str, sensor: str, q: Quantity, w: WindowResult) -> AqiRecord | None:
        """Note a closed window and recompute the AQI it belongs to."""
        key = self.note(node, sensor, q, w)
        return None if key is None else self.compute(node, *key)

    def note(
        self, node: str, sensor: str, q: Quantity, w: WindowResult
    ) -> tuple[hj633.Report, int] | None:
        """Note a closed window; returns which AQI (report, start) it changes, to compute once
        after a whole batch (a batch often closes the same hour for several pollutants)."""
        if q not in AQI_POLLUTANTS or not w.valid:
            return None
        pollutant = cast(hj633.Pollutant, q)
        state = self._nodes.setdefault(node, _NodeAqi())
        state.sensors[pollutant] = sensor
        day = self._day_start(w.start_ms)
        if w.kind == "1h":
            if pollutant == "o3":
                state.o3_1h_max[day] = max(w.value, state.o3_1h_max.get(day, w.value))
            state.hours.setdefault(w.start_ms, {})[pollutant] = _non_negative(w.value)
            self._forget(state, w.start_ms)
            return "hour", w.start_ms
        if w.kind in ("24h", "mda8"):
            state.days.setdefault(day, {})[pollutant] = _non_negative(w.value)
            return "day", day
        return None

    def compute(self, node: str, report: hj633.Report, start_ms: int) -> AqiRecord | None:
        state = self._nodes.get(node)
        if state is None:
            return None
        if report == "hour":
            return self._hourly(node, state, start_ms) if start_ms in state.hours else None
        return self._daily(node, state, start_ms) if start_ms in state.days else None

    def sensor_of(self, node: str, pollutant: hj633.Pollutant) -> str | None:
        state = self._nodes.get(node)
        return None if state is None else state.sensors.get(pollutant)

    def _hourly(self, node: str, state: _NodeAqi, hour: int) -> AqiRecord | None:
        if edition_at(self._s, hour) == "2012":
            # HJ 633-2012's real-time AQI reads PM as 24-h *sliding* means, which envnet does
            # not compute; its hourly AQI is therefore not reported (the daily one is).
            return None
        result = hj633.hourly_aqi("2026", state.hours[hour], rounding=AQI_ROUNDING)
        return AqiRecord(node, "hour", hour, result)

    def _daily(self, node: str, state: _NodeAqi, day: int) -> AqiRecord:
        values = state.days[day]
        edition = edition_at(self._s, day)
        # HJ 633-2012 §5.1.2: the daily AQI also indexes the O3 daily maximum 1-h mean.
        o3_max = state.o3_1h_max.get(day) if edition == "2012" else None
        result = hj633.daily_aqi(edition, values, o3_1h_max=o3_max, rounding=AQI_ROUNDING)
        return AqiRecord(node, "day", day, result)

    def _day_start(self, ts_ms: int) -> int:
        offset = self._s.offset_ms
        return ts_ms - (ts_ms + offset) % DAY_MS

    def _forget(self, state: _NodeAqi, newest_ms: int) -> None:
        floor = newest_ms - KEEP_MS
        for table in (state.hours, state.days, state.o3_1h_max):
            for old in [k for k in table if k < floor]:
                del table[old]


def _non_negative(value: float) -> float:
    # Reference analysers report small negatives near zero (the contract allows them); HJ 633
    # concentrations are not negative, and such a value means "about zero".
    return max(value, 0.0)


def aqi_observation(
    s: EngineSettings, info: NodeInfo, record: AqiRecord, late: bool, suspect: bool
) -> Observation | None:
    result = record.result
    if result.aqi is None or result.category is None:
        return None
    if record.report not in s.aqi_alert_reports:
        return None
    threshold = hj633.CATEGORIES[s.aqi_alert_level - 1]
    limit = hj633.CATEGORIES[s.aqi_alert_level - 2].upper or 0
    severity: Severity = "critical" if result.category.level >= 5 else "warning"
    # The edition the record was computed by (in force at its start, or forced).
    edition = f"HJ 633-{result.edition}"
    report = "real-time (hourly)" if record.report == "hour" else "daily"
    window_s = 3600 if record.report == "hour" else 86400
    rule = Rule(f"aqi.{record.report}", "aqi", severity, None, edition, "Table 1, §4.2", window_s)
    category = result.category
    primary = ", ".join(result.primary) or "none"
    missing = f"; missing {', '.join(result.missing)}" if result.missing else ""
    message = (
        f"{report} AQI {result.aqi} {category.name_en} ({category.name_zh}, level "
        f"{category.roman}, {category.colour_en}); primary {primary}{missing}; alerts from "
        f"{threshold.name_en} ({edition})"
    )
    return Observation(
        rule,
        info.node,
        category.level >= s.aqi_alert_level,
        float(result.aqi),
        float(limit),
        record.start_ms,
        late,
        message,
        cleared=result.aqi <= limit - s.hysteresis.aqi_points,
        suspect=suspect,
        window_start_ms=record.start_ms,
    )
