"""The first set of standards rules: readings in, observations (exceeded or not) out.

Pure apart from the hourly windows it keeps. Which rules apply to a node follows from its
fleet inventory entry: a node without an air zone gets no GB 3095 rules, and so on; such
skips are counted, because a missing classification silently muting alerts would be worse.

Rules in this set:
- air.{so2,no2,co,o3}.1h: clock-hour means (valid with >= 45 min of data, GB 3095-2026 Table 4)
  against GB 3095 Table 1 1-h limits, by zone grade and by the phase of the hour's local date;
- noise.laeq.1h: hourly energy-mean L_Aeq against the GB 3096-2008 Table 1 day or night limit
  (comparing each hour is common real-time practice, UNVERIFIED as the standard's evaluation,
  which uses whole-period L_d and L_n: ../shared/standards.md §3.3);
- noise.lamax.night: night L_Amax against the night limit + 15 dB(A) (GB 3096-2008 §5.4);
- odour.{h2s,nh3,odour}: each reading against GB 14554-93 Table 1 by the node's grade;
- water.{do,codmn,nh3_n,tp,tn,ph}.class: single-factor class worse than the node's target
  (GB 3838-2002 §5.1);
- bloom.chl_a.{who_low,who_moderate}: chlorophyll-a at the WHO 1999/2003 levels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, cast

from aggregator.fleet import NodeInfo
from aggregator.standards import gb3095, gb3096, gb3838, gb14554, who_bloom
from aggregator.windows import HourlyWindows, HourResult
from schemas.messages import AlertKind, Reading, Severity
from schemas.quantities import SPECS, Quantity, Unit

AIR_1H: Final[tuple[Quantity, ...]] = ("so2", "no2", "co", "o3")
ODOUR: Final[tuple[gb14554.OdourItem, ...]] = ("h2s", "nh3", "odour")
WATER: Final[tuple[gb3838.WaterItem, ...]] = ("do", "codmn", "nh3_n", "tp", "tn", "ph")

SkipReason = Literal["no_air_zone", "no_noise_zone", "no_odour_grade", "no_water_class"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: AlertKind
    severity: Severity
    quantity: Quantity
    standard: str
    clause: str
    window_s: int

    @property
    def unit(self) -> Unit:
        return SPECS[self.quantity].unit


@dataclass(frozen=True, slots=True)
class Observation:
    rule: Rule
    node: str
    exceeded: bool
    value: float
    limit: float
    at_ms: int
    late: bool
    message: str


@dataclass(frozen=True, slots=True)
class LocalTime:
    utc_offset_h: int
    day_starts_h: int
    night_starts_h: int

    def of(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, UTC) + timedelta(hours=self.utc_offset_h)

    def is_night(self, ts_ms: int) -> bool:
        return gb3096.is_night(self.of(ts_ms).hour, self.day_starts_h, self.night_starts_h)


_Handler = Callable[[NodeInfo, Reading, bool], list[Observation]]


class Evaluator:
    def __init__(self, edition: gb3095.Edition, local: LocalTime) -> None:
        self._edition: gb3095.Edition = edition
        self._local = local
        self._windows = HourlyWindows()
        self.skipped: dict[SkipReason, int] = {}
        handlers: dict[Quantity, _Handler] = {
            "laeq": self._noise_hourly,
            "lamax": self._noise_lmax,
            "chl_a": self._bloom,
        }
        handlers.update({q: self._air for q in AIR_1H})
        handlers.update({q: self._odour for q in ODOUR})
        handlers.update({q: self._water for q in WATER})
        self._handlers = handlers

    @property
    def late_window_readings(self) -> int:
        return self._windows.late_readings

    def evaluate(self, info: NodeInfo, readings: list[Reading], late: bool) -> list[Observation]:
        observations: list[Observation] = []
        for reading in readings:
            observations.extend(self._one(info, reading, late))
        return observations

    def _one(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        handler = self._handlers.get(r.quantity)
        return handler(info, r, late) if handler is not None else []

    def _skip(self, reason: SkipReason) -> list[Observation]:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        return []

    # -- air ------------------------------------------------------------------------------

    def _air(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        if info.air_zone is None:
            return self._skip("no_air_zone")
        hours = self._windows.add((info.node, r.sensor, r.quantity), r, energy=False)
        return [obs for h in hours if (obs := self._air_hour(info, r.quantity, h, late))]

    def _air_hour(
        self, info: NodeInfo, q: Quantity, hour: HourResult, late: bool
    ) -> Observation | None:
        if hour.coverage_s < gb3095.MIN_COVERAGE_1H_S or info.air_zone is None:
            return None
        phase = gb3095.phase_for(self._edition, self._local.of(hour.start_ms).date())
        limit = gb3095.limit(phase, q, "1h", info.air_zone)
        if limit is None:
            return None
        standard, clause = gb3095.clause(phase)
        grade = "I" if info.air_zone == 1 else "II"
        rule = Rule(f"air.{q}.1h", "exceedance", "warning", q, standard, clause, 3600)
        exceeded = hour.value > limit
        unit = SPECS[q].unit
        message = (
            f"1-h mean {q} {hour.value:.1f} {unit} "
            f"{'exceeds' if exceeded else 'within'} Grade {grade} limit {limit:g}"
        )
        return Observation(
            rule, info.node, exceeded, hour.value, limit, hour.start_ms, late, message
        )

    # -- noise ----------------------------------------------------------------------------

    def _noise_hourly(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        if info.noise_zone is None:
            return self._skip("no_noise_zone")
        hours = self._windows.add((info.node, r.sensor, r.quantity), r, energy=True)
        zone = info.noise_zone
        out = []
        for hour in hours:
            if hour.coverage_s < gb3095.MIN_COVERAGE_1H_S:
                continue
            night = self._local.is_night(hour.start_ms)
            limit = gb3096.LIMITS[zone].night if night else gb3096.LIMITS[zone].day
            rule = Rule(
                "noise.laeq.1h", "exceedance", "warning", "laeq", "GB 3096-2008", "Table 1", 3600
            )
            exceeded = hour.value > limit
            period = "night" if night else "day"
            message = f"hourly LAeq {hour.value:.1f} dB(A) vs zone {zone} {period} limit {limit:g}"
            out.append(
                Observation(
                    rule, info.node, exceeded, hour.value, limit, hour.start_ms, late, message
                )
            )
        return out

    def _noise_lmax(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        if info.noise_zone is None:
            return self._skip("no_noise_zone")
        limit = gb3096.LIMITS[info.noise_zone].night + gb3096.NIGHT_LMAX_MARGIN_DB
        rule = Rule(
            "noise.lamax.night",
            "exceedance",
            "warning",
            "lamax",
            "GB 3096-2008",
            "§5.4",
            r.period_s,
        )
        # By day the rule does not apply: an open night alert resolves when the night ends.
        exceeded = self._local.is_night(r.ts) and r.value > limit
        message = f"night LAmax {r.value:.1f} dB(A) vs night limit + 15 = {limit:g}"
        return [Observation(rule, info.node, exceeded, r.value, limit, r.ts, late, message)]

    # -- odour ----------------------------------------------------------------------------

    def _odour(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        if info.odour_grade is None:
            return self._skip("no_odour_grade")
        item = cast(gb14554.OdourItem, r.quantity)
        limit = gb14554.limit(item, info.odour_grade)
        rule = Rule(
            f"odour.{item}",
            "exceedance",
            "warning",
            r.quantity,
            "GB 14554-93",
            "Table 1",
            r.period_s,
        )
        exceeded = r.value > limit
        message = (
            f"{item} {r.value:g} {r.unit} vs plant-boundary limit {limit:g} "
            f"(grade {info.odour_grade})"
        )
        return [Observation(rule, info.node, exceeded, r.value, limit, r.ts, late, message)]

    # -- water and blooms -----------------------------------------------------------------

    def _water(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        body, target = info.water_body, info.water_target
        if body is None or target is None:
            return self._skip("no_water_class")
        if not gb3838.evaluates(r.quantity, body):
            return []
        item = cast(gb3838.WaterItem, r.quantity)
        result = gb3838.classify(item, r.value, body, target)
        rule = Rule(
            f"water.{item}.class",
            "exceedance",
            "warning",
            r.quantity,
            "GB 3838-2002",
            "Table 1, §5.1",
            r.period_s,
        )
        exceeded = result.water_class > target
        message = (
            f"{item} {r.value:g} {r.unit} is Class {gb3838.class_name(result.water_class)}, "
            f"target Class {gb3838.class_name(target)}"
        )
        if exceeded:
            message += f", exceeds by {result.multiple:.2f}x"
        limit = result.target_limit
        return [Observation(rule, info.node, exceeded, r.value, limit, r.ts, late, message)]

    def _bloom(self, info: NodeInfo, r: Reading, late: bool) -> list[Observation]:
        out = []
        for level in who_bloom.LEVELS:
            rule = Rule(
                f"bloom.chl_a.{level.name}",
                "exceedance",
                level.severity,
                "chl_a",
                "WHO 2003",
                "recreational guidance levels",
                r.period_s,
            )
            exceeded = r.value >= level.chl_a_ug_l
            message = f"chlorophyll-a {r.value:g} ug/L vs WHO level {level.chl_a_ug_l:g}"
            out.append(
                Observation(
                    rule, info.node, exceeded, r.value, level.chl_a_ug_l, r.ts, late, message
                )
            )
        return out
