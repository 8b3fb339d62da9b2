"""The standards engine: stored readings in; observations and derived values out.

Pure apart from the state it keeps (windows, health, AQI and water trackers), and every clock
is a parameter. Per batch of a node, in order:

1. health checks judge each reading (aggregator.engine.sensor_health): a sensor judged
   unhealthy makes the exceedances it measures *suspect*;
2. averaging windows close in event time (aggregator.engine.windows): 1-h, daily, O3 8-h and
   MDA8, noise day/night with L10/L50/L90, re-evaluated when data arrives late;
3. rule families turn closed windows and single readings into observations:
   aggregator.engine.rules.air (GB 3095 limits, HJ 633 AQI), aggregator.engine.rules.noise
   (GB 3096), aggregator.engine.rules.point (GB 14554 odour, GB 3838 water, WHO blooms).

An observation is *late* when it comes from a node's backlog, from a window revised by late
data, or from data older than `late_after_ms` on the aggregator's clock: recorded at its true
time and never paged (aggregator.engine.lifecycle).

Which rules apply to a node follows from its fleet inventory entry: a node without an air zone
gets no GB 3095 rules, and so on; such skips are counted, because a missing classification
silently muting alerts would be worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from aggregator.engine.observations import Observation
from aggregator.engine.rules.air import AqiRecord, AqiTracker, aqi_observation
from aggregator.engine.rules.air import limit_observation as air_limit
from aggregator.engine.rules.noise import lamax_observation, window_observation
from aggregator.engine.rules.point import (
    WaterRecord,
    WaterSites,
    bloom_observations,
    odour_observation,
    site_observation,
    water_item_observation,
)
from aggregator.engine.sensor_health import HealthMonitor
from aggregator.engine.settings import EngineSettings
from aggregator.engine.window_closing import NodeClocks
from aggregator.engine.windows import (
    AIR_DAILY,
    HOURLY,
    NOISE,
    OZONE,
    SeriesSpec,
    WindowEngine,
    WindowResult,
)
from aggregator.fleet import NodeInfo
from schemas.messages import ReadingValues
from schemas.quantities import Quantity

SkipReason = Literal["no_air_zone", "no_noise_zone", "no_odour_grade", "no_water_class"]

AIR: Final[frozenset[Quantity]] = frozenset(("pm2_5", "pm10", "so2", "no2", "co", "o3"))
ODOUR: Final[frozenset[Quantity]] = frozenset(("h2s", "nh3", "odour"))
WATER: Final[frozenset[Quantity]] = frozenset(
    ("do", "codmn", "nh3_n", "tp", "tn", "ph", "chl_a", "phycocyanin")
)
# Quantities judged reading by reading (no window needed).
POINT: Final[frozenset[Quantity]] = WATER | ODOUR | {"lamax"}
# The windows each quantity needs. Quantities not listed are not windowed.
SPECS: Final[dict[Quantity, SeriesSpec]] = {
    "pm2_5": AIR_DAILY,
    "pm10": AIR_DAILY,
    "so2": AIR_DAILY,
    "no2": AIR_DAILY,
    "co": AIR_DAILY,
    "o3": OZONE,
    "laeq": NOISE,
    "h2s": HOURLY,
    "nh3": HOURLY,
    "odour": HOURLY,
}


@dataclass(slots=True)
class Evaluation:
    """What one batch produced: observations for the alert lifecycle, and derived values
    (closed windows, AQI, water site evaluations) for storage."""

    observations: list[Observation] = field(default_factory=list)
    windows: list[WindowResult] = field(default_factory=list)
    aqi: list[AqiRecord] = field(default_factory=list)
    water: list[WaterRecord] = field(default_factory=list)


class Evaluator:
    def __init__(
        self, settings: EngineSettings, windows: WindowEngine, health: HealthMonitor
    ) -> None:
        self._s = settings
        self.windows = windows
        self.health = health
        self._aqi = AqiTracker(settings)
        self._water = WaterSites()
        self.skipped: dict[SkipReason, int] = {}
        self.future_readings = 0
        # Readings starting further ahead of the aggregator's clock are stored but not judged
        # (alerts.windows.max_future_s; 0 disables the guard).
        self._max_future_ms = settings.windows.max_future_s * 1000
        # Each node's clock, for closing windows no newer reading closes.
        self.clocks = NodeClocks(settings.windows.close_after_s * 1000)
        # AQI (report, start) changed by the batch being evaluated, with its late flag.
        self._aqi_due: dict[tuple[Literal["hour", "day"], int], bool] = {}

    @classmethod
    def of(cls, settings: EngineSettings) -> Evaluator:
        """An evaluator with its window engine and health monitor, all from `settings`."""
        return cls(
            settings, WindowEngine(settings.windows, settings), HealthMonitor(settings.health)
        )

    # -- entry points ---------------------------------------------------------------------

    def evaluate(
        self, info: NodeInfo, readings: Sequence[ReadingValues], backlog: bool, now_ms: int
    ) -> Evaluation:
        out = Evaluation()
        node = info.node
        judge = self.health.judge
        windowed: list[ReadingValues] = []
        horizon = now_ms + self._max_future_ms if self._max_future_ms else None
        newest_end = -1
        for r in readings:
            if horizon is not None and r.ts > horizon:
                self.future_readings += 1
                continue
            judge(node, r)
            q = r.quantity
            if q in SPECS:
                windowed.append(r)
                end = r.ts + r.period_s * 1000
                newest_end = max(newest_end, end)
            if q in POINT:
                self._point(info, r, backlog, now_ms, out)
        if windowed:
            for w in self.windows.add_node(node, windowed, SPECS):
                self._window(info, w, backlog, now_ms, out)
            if self._aqi_due:
                self._aqi_records(info, backlog, now_ms, out)
            self.clocks.observe(node, newest_end, now_ms)
        if health := self.health.take_observations(late=backlog):
            # Health, too, is late when its data is: a flatline in a 2013 replay is not news.
            out.observations.extend(
                o
                if o.late or not self._late(False, False, o.at_ms, now_ms)
                else replace(o, late=True)
                for o in health
            )
        return out

    def close(self, info: NodeInfo, until_ms: int, now_ms: int) -> Evaluation:
        """Close the node's windows that end at or before `until_ms` (its clock says they are
        over, aggregator.engine.window_closing) and judge them as if a reading had closed them."""
        out = Evaluation()
        closed = self.windows.advance_node(info.node, until_ms)
        for w in closed:
            self._window(info, w, False, now_ms, out)
        if self._aqi_due:
            self._aqi_records(info, False, now_ms, out)
        return out

    def warm(self, info: NodeInfo, readings: Sequence[ReadingValues], now_ms: int) -> None:
        """Replay stored readings (a restart), producing nothing: into the windows, and the
        water readings into the site state (else the first reading after a restart would
        judge the site on one parameter, and its alert would resolve and fire again). The AQI
        tracker is rebuilt from the windows they close: an hour's AQI is computed again when
        a slower series (a 1-h analyser) closes that hour after the restart, and it must
        still count the pollutants that closed it before, or the AQI drops and the alert
        flaps (resolved, then fired again)."""
        node = info.node
        closed = self.windows.add_node(node, (r for r in readings if r.quantity in SPECS), SPECS)
        horizon = now_ms + self._max_future_ms if self._max_future_ms else None
        ends = [
            r.ts + r.period_s * 1000
            for r in readings
            if r.quantity in SPECS and (horizon is None or r.ts <= horizon)
        ]
        if ends:
            # The node's clock resumes from its newest stored reading, as of the restart.
            self.clocks.observe(node, max(ends), now_ms)
        for r in readings:
            if r.quantity in WATER:
                self._water.add(info, r)
        for w in closed:
            _, sensor, quantity = w.key
            q: Quantity = quantity  # type: ignore[assignment]
            self._aqi.note(node, sensor, q, w)

    def _late(self, backlog: bool, revision: bool, end_ms: int, now_ms: int) -> bool:
        return backlog or revision or now_ms - end_ms > self._s.late_after_ms

    def _skip(self, reason: SkipReason) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    # -- closed windows -------------------------------------------------------------------

    def _window(
        self, info: NodeInfo, w: WindowResult, backlog: bool, now_ms: int, out: Evaluation
    ) -> None:
        out.windows.append(w)
        _, sensor, quantity = w.key
        q: Quantity = quantity  # type: ignore[assignment]
        late = self._late(backlog, w.revision, w.end_ms, now_ms)
        suspect = self.health.was_unhealthy(info.node, sensor, w.start_ms, w.end_ms)
        if q in AIR:
            self._air(info, sensor, q, w, late, suspect, out)
        elif q == "laeq":
            if info.noise_zone is None:
                self._skip("no_noise_zone")
            elif obs := window_observation(self._s, info, w, late, suspect):
                out.observations.append(obs)
        elif q in ODOUR and self._s.odour.window == "1h" and w.kind == "1h" and w.valid:
            obs = odour_observation(
                self._s.hysteresis, info, q, w.value, w.start_ms, 3600, late, suspect
            )
            self._odour(obs, out)

    def _air(
        self,
        info: NodeInfo,
        sensor: str,
        q: Quantity,
        w: WindowResult,
        late: bool,
        suspect: bool,
        out: Evaluation,
    ) -> None:
        if info.air_zone is None:
            self._skip("no_air_zone")
        elif obs := air_limit(self._s, info, q, w, late, suspect):
            out.observations.append(obs)
        key = self._aqi.note(info.node, sensor, q, w)
        if key is not None:
            self._aqi_due[key] = late

    def _aqi_records(self, info: NodeInfo, backlog: bool, now_ms: int, out: Evaluation) -> None:
        """The AQI of every hour and day this batch changed, computed once each."""
        due, self._aqi_due = self._aqi_due, {}
        for (report, start), late in due.items():
            record = self._aqi.compute(info.node, report, start)
            if record is None:
                continue
            out.aqi.append(record)
            span = 3_600_000 if report == "hour" else 86_400_000
            suspect = any(
                self.health.was_unhealthy(info.node, s, start, start + span)
                for p in record.result.primary
                if (s := self._aqi.sensor_of(info.node, p)) is not None
            )
            if obs := aqi_observation(self._s, info, record, late, suspect):
                out.observations.append(obs)

    # -- single readings ------------------------------------------------------------------

    def _point(
        self, info: NodeInfo, r: ReadingValues, backlog: bool, now_ms: int, out: Evaluation
    ) -> None:
        end = r.ts + r.period_s * 1000
        late = self._late(backlog, False, end, now_ms)
        suspect = self.health.was_unhealthy(info.node, r.sensor, r.ts, end)
        q = r.quantity
        if q == "lamax":
            if info.noise_zone is None:
                self._skip("no_noise_zone")
            elif obs := lamax_observation(self._s, info, r, late, suspect):
                out.observations.append(obs)
        elif q in ODOUR:
            if self._s.odour.window == "reading":
                obs = odour_observation(
                    self._s.hysteresis, info, q, r.value, r.ts, r.period_s, late, suspect
                )
                self._odour(obs, out)
        else:
            self._water_reading(info, r, late, suspect, out)

    def _odour(self, obs: Observation | None, out: Evaluation) -> None:
        """Keeps an odour observation; None means the node has no odour grade to judge by."""
        if obs is None:
            self._skip("no_odour_grade")
        else:
            out.observations.append(obs)

    def _water_reading(
        self, info: NodeInfo, r: ReadingValues, late: bool, suspect: bool, out: Evaluation
    ) -> None:
        out.observations.extend(
            bloom_observations(self._s.bloom, self._s.hysteresis, info, r, late, suspect)
        )
        if r.quantity in ("chl_a", "phycocyanin"):
            record = self._water.add(info, r)
        elif info.water_body is None or info.water_target is None:
            self._skip("no_water_class")
            return
        else:
            if obs := water_item_observation(self._s.hysteresis, info, r, late, suspect):
                out.observations.append(obs)
            record = self._water.add(info, r)
        if record is not None:
            out.water.append(record)
            out.observations.append(site_observation(info, record, late, suspect))
