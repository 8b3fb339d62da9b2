"""Sensor health checks: is each reading of a series believable? Pure.

A series is (node, sensor, quantity, statistic, period): a 1-min mean and a 1-h mean of the
same quantity are judged apart, or the step between them would look like a spike. Every
reading is judged by four checks:

- out_of_range: outside the plausible range of its quantity (a table, tighter than the
  contract's physical bounds where a real sensor or ambient air make that sensible), or
  flagged "out_of_range" by the node itself.
- flatline: the same value (within epsilon of the run's first value) for at least
  `min_readings` readings AND at least `min_duration_s` of event time, from the start of the
  run's first interval to the end of the latest one. A frozen driver or a dead ADC repeats
  its last value exactly; a working sensor's interval mean never does for long. Runs at
  levels where sensors legitimately sit still (zero below the detection limit, 100 % RH in
  fog) are exempt.
- spike: |Δvalue|/Δt against the last accepted reading (the baseline) above a maximum rate
  per quantity. Rate of change is the one method used, for three reasons: it is O(1) per
  reading (a median or Hampel filter needs a window sorted per reading, and this runs at
  the aggregator's full rate); it scales itself to the reporting interval (an hourly series
  may move 60 times as far between readings as a 1-min one); and after a gap the allowed
  change grows with the gap, so a node back from an outage is not flagged. A spike flags
  that reading only and never becomes the baseline, so the reading after a single-point
  glitch is judged against the good value before it. A genuine step (a plume arriving, a
  level shift) is told apart from a glitch by confirmation: when the reading after a spike
  is consistent with the spike (within the maximum rate of it), the step is real, the
  baseline moves to it and that reading is healthy. So a real step costs exactly one
  flagged reading, and a glitch one flagged reading.
- high_rh: a PM2.5 or PM10 reading while the node's latest relative humidity (quantity "rh",
  from any of its sensors, at most `rh_max_age_s` away in event time) is above
  `high_rh_pct`. Optical PM sensors have no inlet dryer, so particles take up water and
  grow, and fog droplets are counted as particles: the sensor over-reads. Jayaratne et al.
  2018 (Atmos. Meas. Tech. 11, 4883-4890, doi:10.5194/amt-11-4883-2018) found a Plantower
  PMS1003 reading significantly high above about 75 % RH, and PM10 46 % above a dried
  reference monitor in fog. The 90 % default level is an envnet choice, not a standard:
  Suzhou's humidity is often above 75 %, so a lower level would flag half the year.
  It has hysteresis: the problem clears only below the level minus `high_rh_hysteresis_pct`,
  or when no RH reading is fresh enough to judge by.

Readings the node flags "calibrating" or "maintenance" are not ambient measurements: they
are not judged and change no state. A reading not newer than the newest already judged in
its series (a duplicate, or a backlog reading behind live data) gets the range check only
and changes no state: health state describes the sensor now, and history cannot move it.

State and alerts. Each series keeps a bit per check, "active while the problem persists":
out_of_range, spike and high_rh follow the latest reading; flatline stays active until the
value moves. A sensor's check is active while any of its series has it (so pm2_5 and pm10
of one PM sensor share one alert). `judge` records a change whenever a sensor's check turns
on or off; `take_observations` turns those changes into health Observations for the alert
lifecycle (rule `health.{check}.{sensor}`, kind "health"), so a healthy stream costs no
Observation at all. `observations` gives the current state of a sensor's checks on demand
(re-notification, resynchronising after a restart). `is_suspect` tells the standards rules
whether an exceedance measured by a sensor should be marked suspect right now.

Observation value and limit, per check: out_of_range, the reading and the bound it crossed;
flatline, the seconds stuck and min_duration_s; spike, the rate from the baseline and the
maximum rate (per second); high_rh, the RH and the level (the clear level on a clear). The
rules have no quantity: one sensor's alert covers all its quantities, named in the message.

Time is event time throughout (reading `ts`); nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Final, Literal, get_args

import msgspec

from aggregator.engine.observations import Observation, Rule
from schemas.messages import Flag, NodeId, ReadingValues, SensorId, Severity
from schemas.quantities import SPECS, Quantity, Statistic

Check = Literal["out_of_range", "flatline", "spike", "high_rh"]
CHECKS: Final[tuple[Check, ...]] = get_args(Check)

# One bit per check, in CHECKS order: a series' problems are one small int.
OUT_OF_RANGE: Final = 1
FLATLINE: Final = 2
SPIKE: Final = 4
HIGH_RH: Final = 8

STANDARD: Final = "envnet sensor health"
CLAUSES: Final[dict[Check, str]] = {
    "out_of_range": "value outside the plausible range",
    "flatline": "same value for min_readings and min_duration_s",
    "spike": "rate of change above the maximum",
    "high_rh": "optical PM at high relative humidity",
}

# Readings in these states are not ambient measurements and are not judged.
NOT_AMBIENT: Final[frozenset[Flag]] = frozenset({"calibrating", "maintenance"})


class HealthSnapshotError(ValueError):
    """A health state snapshot could not be decoded (corrupt, truncated or foreign)."""


# -- settings -------------------------------------------------------------------------------


class PlausibleRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts.health.plausible.<quantity>]."""

    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"plausible range needs lower < upper, got {self}")


class FlatlineLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """agg.toml [alerts.health.flatline.<quantity>]."""

    # Values within epsilon of the run's first value count as the same value.
    epsilon: Annotated[float, msgspec.Meta(ge=0)]
    min_readings: Annotated[int, msgspec.Meta(ge=2)]
    min_duration_s: Annotated[float, msgspec.Meta(ge=0)]
    # A run at or beyond these levels is not a fault: sensors legitimately sit there.
    exempt_at_or_below: float = -math.inf
    exempt_at_or_above: float = math.inf

    def __post_init__(self) -> None:
        if not (self.epsilon >= 0 and self.min_readings >= 2 and self.min_duration_s >= 0):
            raise ValueError(
                f"flatline limit needs epsilon >= 0, min_readings >= 2, "
                f"min_duration_s >= 0, got {self}"
            )


# Plausible ranges. Quantities not listed here use the contract's physical bounds (SPECS),
# so only the node's own "out_of_range" flag catches them. All are envnet choices unless a
# source is named; a range too tight would mark real exceedances suspect, so they are wide.
DEFAULT_PLAUSIBLE: Final[dict[Quantity, PlausibleRange]] = {
    # Optical PM sensors: Plantower's PMS series is rated 0-500 µg/m³ (DFRobot SEN0177
    # wiki); AirGradient accepts PMS5003T values up to 1000 (airgradienthq/arduino#190).
    # Above 1000 the value is extrapolated far past calibration. Small negatives come from
    # reference monitors near zero; below -10 is a zero fault.
    "pm2_5": PlausibleRange(-10, 1000),
    "pm10": PlausibleRange(-10, 1000),
    # Five times the GB 3095-2026 Table 1 Grade II 1-h limits (O3 200, NO2 200, SO2 500
    # µg/m³, CO 10 mg/m³). Ambient air beyond that is far likelier a failing cell than air.
    "o3": PlausibleRange(-20, 1000),
    "no2": PlausibleRange(-20, 1000),
    "so2": PlausibleRange(-20, 2500),
    "co": PlausibleRange(-2, 50),
    # Below 20 dB(A) is under the self-noise of outdoor measurement microphones: a dead or
    # disconnected microphone. No sustained environmental level reaches 140 dB(A).
    "laeq": PlausibleRange(20, 140),
    "lamax": PlausibleRange(20, 150),
    # Liquid fresh water, with 1 °C of probe tolerance; no Yangtze-delta surface water is
    # near 40 °C.
    "water_temp": PlausibleRange(-1, 40),
    # The full pH scale (the contract's bounds): an acid or caustic spill is real and must
    # not be marked suspect.
    "ph": PlausibleRange(0, 14),
    # Supersaturation under a bloom stays well below 25 mg/L.
    "do": PlausibleRange(0, 25),
    # Yangtze-delta climate; configure for other cities.
    "air_temp": PlausibleRange(-30, 50),
    # Sea-level pressure records: 870 hPa (Typhoon Tip, 1979), 1083.8 hPa (Agata, 1968).
    # For stations near sea level, like Suzhou's; set the lower bound down at altitude.
    "pressure": PlausibleRange(870, 1085),
}

# Half a unit in the third decimal: the edge rounds interval statistics to 3 decimals
# (edge/stats.py DECIMALS), so values "the same as reported" differ by less than this, and
# float noise from other firmware is absorbed too. Steady to 3 decimals is not steady air.
_EPS: Final = 0.0005
_HOUR: Final = 3600.0

# The (N readings, T seconds) pair is set per family below; both must hold. T decides for
# 1-min data, N for slow series (30 identical hourly readings take 30 h).
_PM = FlatlineLimit(_EPS, 30, 0.5 * _HOUR)  # a PM sensor frozen at 35.0 for 30 min
# Below a cell's detection limit a steady reading is expected: electrochemical boards clamp
# negatives to zero, and clean-air SO2 or boundary-background H2S sits under the noise of
# low-cost cells for hours. Zero runs are exempt for every gas; for H2S and odour
# concentration, runs at background levels too (below).
_GAS = FlatlineLimit(_EPS, 60, _HOUR, exempt_at_or_below=0.0)
# 5 µg/m³ H2S is about 3.6 ppb at 25 °C (docs/standards.md §4: 1 ppm = 1.393 mg/m³): the order
# of a low-cost cell's detection limit (envnet choice), a twelfth of the GB 14554-93 Table 1
# Grade II (new) limit of 60 µg/m³.
_H2S = FlatlineLimit(_EPS, 60, _HOUR, exempt_at_or_below=5.0)
# Odour monitors estimate dilutions-to-threshold coarsely and idle at a floor in clean air;
# 10 is the GB 14554-93 Table 1 Grade I limit, the lowest level any rule judges.
_ODOUR = FlatlineLimit(_EPS, 60, _HOUR, exempt_at_or_below=10.0)
# A 1-min LAeq of real outdoor sound never repeats to 0.001 dB for 15 min.
_NOISE = FlatlineLimit(_EPS, 15, 0.25 * _HOUR)
# Water changes slowly, and probes report at coarse resolution: half a day.
_PROBE = FlatlineLimit(_EPS, 30, 12 * _HOUR)
_PROBE_ZERO = FlatlineLimit(_EPS, 30, 12 * _HOUR, exempt_at_or_below=0.0)  # clear or anoxic
# A lake's temperature and conductivity can hold still at probe resolution for hours.
_SLOW_PROBE = FlatlineLimit(_EPS, 30, 24 * _HOUR)
# Wet-chemistry analysers report every 1-4 h and repeat values near their detection limit.
_ANALYSER = FlatlineLimit(_EPS, 24, 48 * _HOUR, exempt_at_or_below=0.0)
_MET = FlatlineLimit(_EPS, 30, 6 * _HOUR)
# Capacitive RH sensors read ~100 % for hours in fog and rain (saturation).
_RH = FlatlineLimit(_EPS, 30, 6 * _HOUR, exempt_at_or_above=99.0)

DEFAULT_FLATLINE: Final[dict[Quantity, FlatlineLimit]] = {
    "pm2_5": _PM,
    "pm10": _PM,
    **{q: _GAS for q in ("o3", "no2", "so2", "co", "tvoc", "nh3")},
    "h2s": _H2S,
    "odour": _ODOUR,
    "laeq": _NOISE,
    "lamax": _NOISE,
    "ph": _PROBE,
    "do": _PROBE_ZERO,
    "turbidity": _PROBE_ZERO,
    "chl_a": _PROBE_ZERO,
    "phycocyanin": _PROBE_ZERO,
    "water_temp": _SLOW_PROBE,
    "conductivity": _SLOW_PROBE,
    **{q: _ANALYSER for q in ("codmn", "nh3_n", "tp", "tn")},
    "air_temp": _MET,
    "pressure": _MET,
    "rh": _RH,
}

# Maximum believable rate of change, canonical unit per second (x60 for the change between
# two 1-min readings). envnet choices, set above the fastest real change a fixed station
# sees so that only glitches trip them: a passing lorry's plume, a plant-boundary release
# (the demo's H2S ramp is 1.25 µg/m³/s) and rain onset all stay below.
DEFAULT_MAX_RATE_PER_S: Final[dict[Quantity, float]] = {
    "pm2_5": 10.0,
    "pm10": 20.0,
    "o3": 2.0,  # regional, smooth; NO titration by a plume is tens of µg/m³ a minute
    "no2": 5.0,
    "so2": 5.0,
    "co": 0.1,
    "tvoc": 100.0,
    "laeq": 1.0,  # 60 dB between 1-min means
    "lamax": math.inf,  # a maximum jumps by design: not judged
    "h2s": 50.0,
    "nh3": 100.0,
    "odour": 10.0,
    "water_temp": 0.02,
    "ph": 0.01,
    "do": 0.05,
    "codmn": 0.01,
    "nh3_n": 0.005,
    "tp": 0.001,
    "tn": 0.005,
    "turbidity": 5.0,  # a boat wake stirs sediment fast
    "conductivity": 10.0,
    "chl_a": 5.0,  # a drifting scum passes a probe in minutes
    "phycocyanin": 5.0,
    "air_temp": 0.05,
    "rh": 0.5,
    "pressure": 0.05,
}


# Optical PM sensors over-read in fog and high humidity (see the module docstring).
HIGH_RH_QUANTITIES: Final[tuple[Quantity, ...]] = ("pm2_5", "pm10")
# A health problem is the operator's to look at, never a standards exceedance.
SEVERITY: Final[Severity] = "warning"


class HealthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Health check settings: agg.toml [alerts.health]. Every default is an envnet choice,
    not a standard (docs/standards.md §9). The per-quantity tables are overrides: a quantity
    not named keeps its DEFAULT_PLAUSIBLE / DEFAULT_FLATLINE / DEFAULT_MAX_RATE_PER_S entry. A
    rate of inf disables the spike check for a quantity; a huge min_duration_s the flatline
    check."""

    plausible: dict[Quantity, PlausibleRange] = {}
    flatline: dict[Quantity, FlatlineLimit] = {}
    max_rate_per_s: dict[Quantity, Annotated[float, msgspec.Meta(gt=0)]] = {}
    # envnet choice, not a standard (see the module docstring): UNVERIFIED.
    high_rh_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 90.0
    high_rh_hysteresis_pct: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # RH older or newer than this, in event time, than the PM reading does not judge it.
    rh_max_age_s: Annotated[float, msgspec.Meta(gt=0)] = 900.0

    def __post_init__(self) -> None:
        if any(not rate > 0 for rate in self.max_rate_per_s.values()):
            raise ValueError("max_rate_per_s entries must be > 0 (inf disables the check)")
        if not 0 < self.high_rh_pct <= 100 or not self.high_rh_hysteresis_pct >= 0:
            raise ValueError("high_rh_pct must be in (0, 100], hysteresis >= 0")
        if not self.rh_max_age_s > 0:
            raise ValueError("rh_max_age_s must be > 0")

    def plausible_for(self, quantity: Quantity) -> PlausibleRange:
        found = self.plausible.get(quantity) or DEFAULT_PLAUSIBLE.get(quantity)
        if found is not None:
            return found
        spec = SPECS[quantity]
        return PlausibleRange(spec.lower, spec.upper)

    def flatline_for(self, quantity: Quantity) -> FlatlineLimit:
        return self.flatline.get(quantity) or DEFAULT_FLATLINE[quantity]

    def max_rate_for(self, quantity: Quantity) -> float:
        return self.max_rate_per_s.get(quantity, DEFAULT_MAX_RATE_PER_S[quantity])


# -- verdicts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The problems of one reading; empty when it is healthy."""

    problems: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _verdict(mask: int) -> Verdict:
    return Verdict(tuple(check for i, check in enumerate(CHECKS) if mask & (1 << i)))


# Every possible verdict, made once: judging a reading allocates nothing.
VERDICTS: Final[tuple[Verdict, ...]] = tuple(_verdict(mask) for mask in range(16))
HEALTHY: Final = VERDICTS[0]


# -- state ----------------------------------------------------------------------------------


class CheckDetail(msgspec.Struct, frozen=True, array_like=True):
    """What the latest transition of a sensor's check said, for its Observations."""

    quantity: Quantity | None
    value: float
    limit: float
    message: str
    at_ms: int
    period_s: Annotated[int, msgspec.Meta(ge=1)]


# Unhealthy spans kept per sensor: enough for a late-horizon of windows on a flaky sensor.
MAX_SPANS: Final = 256


class _Sensor:
    """A sensor's checks: how many of its series have each problem, and what was said."""

    __slots__ = (
        "active", "counts", "details", "node", "rh_judged", "sensor", "spans", "unhealthy_since"
    )  # fmt: skip

    def __init__(self, node: str, sensor: str) -> None:
        self.node = node
        self.sensor = sensor
        self.counts = [0, 0, 0, 0]
        self.active = 0  # sum of counts: > 0 means suspect
        self.details: list[CheckDetail | None] = [None, None, None, None]
        self.rh_judged = False  # has a series the high_rh check applies to
        # Event time the sensor was unhealthy: closed [start, end) spans, newest last, and
        # the start of the current one (-1 when healthy). A window is judged by the spans it
        # overlaps, not by the sensor's state when the window happens to close.
        self.spans: list[tuple[int, int]] = []
        self.unhealthy_since = -1

    def turned(self, on: bool, at_ms: int) -> None:
        if on:
            if self.unhealthy_since < 0 or at_ms < self.unhealthy_since:
                self.unhealthy_since = at_ms
            return
        if self.unhealthy_since >= 0:
            self.spans.append((self.unhealthy_since, at_ms))
            del self.spans[:-MAX_SPANS]
            self.unhealthy_since = -1

    def unhealthy_during(self, start_ms: int, end_ms: int) -> bool:
        if 0 <= self.unhealthy_since < end_ms:
            return True
        return any(s < end_ms and start_ms < e for s, e in reversed(self.spans))


class _Series:
    __slots__ = (
        "base_ms",
        "base_value",
        "cand_ms",
        "cand_value",
        "epsilon",
        "exempt_above",
        "exempt_below",
        "is_rh",
        "lower",
        "mask",
        "max_rate",
        "max_rate_per_ms",
        "min_duration_ms",
        "min_readings",
        "newest_ms",
        "owner",
        "period_ms",
        "quantity",
        "rh_affected",
        "run_count",
        "run_start_ms",
        "run_value",
        "stat",
        "upper",
    )

    def __init__(
        self,
        owner: _Sensor,
        quantity: Quantity,
        stat: Statistic,
        period_s: int,
        settings: HealthSettings,
    ) -> None:
        self.owner = owner
        self.quantity: Quantity = quantity
        self.stat: Statistic = stat
        self.period_ms = period_s * 1000
        # Limits, resolved once so that judging a reading looks nothing up.
        plausible = settings.plausible_for(quantity)
        flat = settings.flatline_for(quantity)
        self.lower = float(plausible.lower)
        self.upper = float(plausible.upper)
        self.epsilon = flat.epsilon
        self.min_readings = flat.min_readings
        self.min_duration_ms = flat.min_duration_s * 1000.0
        self.exempt_below = flat.exempt_at_or_below
        self.exempt_above = flat.exempt_at_or_above
        self.max_rate = settings.max_rate_for(quantity)
        self.max_rate_per_ms = self.max_rate / 1000.0
        self.is_rh = quantity == "rh"
        self.rh_affected = quantity in HIGH_RH_QUANTITIES
        # State.
        self.newest_ms = -1
        self.run_value = math.nan
        self.run_start_ms = -1
        self.run_count = 0
        self.base_value = 0.0
        self.base_ms = -1  # < 0: no baseline yet
        self.cand_value = 0.0
        self.cand_ms = -1  # < 0: the latest reading was not a spike
        self.mask = 0


class _Rh:
    __slots__ = ("ts", "value")

    def __init__(self, value: float, ts: int) -> None:
        self.value = value
        self.ts = ts


@dataclass(frozen=True, slots=True)
class _Change:
    sensor: _Sensor
    check: int
    active: bool
    detail: CheckDetail


def _range_text(series: _Series, on: bool, reading: ReadingValues) -> tuple[float, float, str]:
    value, q, unit = reading.value, series.quantity, reading.unit
    lower, upper = series.lower, series.upper
    limit = lower if value < lower else upper
    if not on:
        return value, limit, f"{q} {value:g} {unit} back within [{lower:g}, {upper:g}]"
    if lower <= value <= upper:
        return value, limit, f"{q} {value:g} {unit} flagged out_of_range by the node"
    return value, limit, f"{q} {value:g} {unit} outside plausible [{lower:g}, {upper:g}]"


def _flatline_text(series: _Series, on: bool, reading: ReadingValues) -> tuple[float, float, str]:
    """Value: seconds the value has been stuck; limit: min_duration_s."""
    limit = series.min_duration_ms / 1000.0
    if not on:
        return 0.0, limit, f"{series.quantity} moving again ({reading.value:g} {reading.unit})"
    stuck_s = (reading.ts + series.period_ms - series.run_start_ms) / 1000.0
    text = (
        f"{series.quantity} stuck at {series.run_value:g} {reading.unit} for {stuck_s:g} s "
        f"({series.run_count} readings)"
    )
    return stuck_s, limit, text


def _spike_text(series: _Series, on: bool, reading: ReadingValues) -> tuple[float, float, str]:
    """Value: the rate from the baseline, per second; limit: the maximum rate."""
    limit = series.max_rate
    q, unit = series.quantity, reading.unit
    if not on:
        return 0.0, limit, f"{q} {reading.value:g} {unit} consistent with its baseline"
    dt_s = (reading.ts - series.base_ms) / 1000.0
    rate = abs(reading.value - series.base_value) / dt_s
    text = (
        f"{q} jumped {series.base_value:g} -> {reading.value:g} {unit} in {dt_s:g} s "
        f"({rate:.3g}/s, max {limit:g}/s)"
    )
    return rate, limit, text


# -- the monitor ----------------------------------------------------------------------------


class HealthMonitor:
    def __init__(self, settings: HealthSettings | None = None) -> None:
        self.settings = settings if settings is not None else HealthSettings()
        self._series: dict[tuple[str, str, Quantity, Statistic, int], _Series] = {}
        self._sensors: dict[tuple[str, str], _Sensor] = {}
        self._rh: dict[str, _Rh] = {}
        self._changes: list[_Change] = []
        self._rh_age_ms = self.settings.rh_max_age_s * 1000.0
        self._rh_on = self.settings.high_rh_pct
        self._rh_off = self.settings.high_rh_pct - self.settings.high_rh_hysteresis_pct

    # -- judging --------------------------------------------------------------------------

    # One function on purpose, with no helper calls on the healthy path: it runs for every
    # reading at the aggregator's full rate, and each Python call would add ~10 % to it.
    def judge(self, node: str, reading: ReadingValues) -> Verdict:  # noqa: PLR0912
        """Judge one reading of `node` and update its series' state."""
        flags = reading.flags
        if flags and not NOT_AMBIENT.isdisjoint(flags):
            return HEALTHY
        key = (node, reading.sensor, reading.quantity, reading.stat, reading.period_s)
        series = self._series.get(key)
        if series is None:
            series = self._open(key)
        value = reading.value
        ts = reading.ts
        if series.is_rh:
            self._note_rh(node, value, ts)
        mask = 0
        if value < series.lower or value > series.upper or (flags and "out_of_range" in flags):
            mask = OUT_OF_RANGE
        if ts <= series.newest_ms:
            return VERDICTS[mask]  # a duplicate or older reading: range only, no state
        series.newest_ms = ts
        # Flatline: extend the run, or start a new one at this value.
        run_value = series.run_value
        epsilon = series.epsilon
        if run_value - epsilon <= value <= run_value + epsilon:
            series.run_count += 1
            if (
                series.run_count >= series.min_readings
                and ts + series.period_ms - series.run_start_ms >= series.min_duration_ms
                and series.exempt_below < run_value < series.exempt_above
            ):
                mask |= FLATLINE
        else:
            series.run_value = value
            series.run_start_ms = ts
            series.run_count = 1
        # Spike: an out-of-range reading is already condemned and never becomes a baseline.
        if not mask & OUT_OF_RANGE:
            base_ms = series.base_ms
            allowed = series.max_rate_per_ms * (ts - base_ms)
            if base_ms < 0 or -allowed <= value - series.base_value <= allowed:
                series.base_value = value
                series.base_ms = ts
                series.cand_ms = -1
            elif self._spike(series, value, ts):
                mask |= SPIKE
        if series.rh_affected and self._humid(node, series, ts):
            mask |= HIGH_RH
        if mask != series.mask:
            self._transition(node, series, mask, reading)
        return VERDICTS[mask]

    def _open(self, key: tuple[str, str, Quantity, Statistic, int]) -> _Series:
        node, sensor, quantity, stat, period_s = key
        owner = self._sensors.get((node, sensor))
        if owner is None:
            owner = self._sensors[(node, sensor)] = _Sensor(node, sensor)
        series = self._series[key] = _Series(owner, quantity, stat, period_s, self.settings)
        owner.rh_judged = owner.rh_judged or series.rh_affected
        return series

    def _note_rh(self, node: str, value: float, ts: int) -> None:
        rh = self._rh.get(node)
        if rh is None:
            self._rh[node] = _Rh(value, ts)
        elif ts >= rh.ts:
            rh.value = value
            rh.ts = ts

    @staticmethod
    def _spike(series: _Series, value: float, ts: int) -> bool:
        """Beyond the maximum rate from the baseline. Returns False (and moves the baseline)
        when the previous reading was a spike that this one confirms as a real step."""
        cand_ms = series.cand_ms
        if cand_ms >= 0 and abs(value - series.cand_value) <= series.max_rate_per_ms * (
            ts - cand_ms
        ):
            series.base_value = value
            series.base_ms = ts
            series.cand_ms = -1
            return False
        series.cand_value = value
        series.cand_ms = ts
        return True

    def _humid(self, node: str, series: _Series, ts: int) -> bool:
        rh = self._rh.get(node)
        if rh is None or abs(ts - rh.ts) > self._rh_age_ms:
            return False  # no fresh RH: nothing to judge by, so no problem claimed
        if series.mask & HIGH_RH:
            return rh.value >= self._rh_off
        return rh.value > self._rh_on

    # -- transitions ----------------------------------------------------------------------

    def _transition(self, node: str, series: _Series, mask: int, reading: ReadingValues) -> None:
        owner = series.owner
        flipped = series.mask ^ mask
        series.mask = mask
        for index in range(4):
            bit = 1 << index
            if not flipped & bit:
                continue
            on = bool(mask & bit)
            step = 1 if on else -1
            was_active = owner.active > 0
            owner.counts[index] += step
            owner.active += step
            if on:
                # A flatline began when its run of identical values did, not when the run
                # became long enough to call it one.
                since = series.run_start_ms if bit == FLATLINE else reading.ts
                owner.turned(True, since)
            elif was_active and owner.active == 0:
                owner.turned(False, reading.ts)
            # The detail follows the latest series to raise the problem, and the one that
            # cleared it last. Only the sensor's first raise and last clear are changes.
            if on or owner.counts[index] == 0:
                detail = self._detail(node, series, index, on, reading)
                owner.details[index] = detail
                if owner.counts[index] == (1 if on else 0):
                    self._changes.append(_Change(owner, index, on, detail))

    def _detail(
        self, node: str, series: _Series, index: int, on: bool, reading: ReadingValues
    ) -> CheckDetail:
        if index == 0:
            value, limit, text = _range_text(series, on, reading)
        elif index == 1:
            value, limit, text = _flatline_text(series, on, reading)
        elif index == 2:
            value, limit, text = _spike_text(series, on, reading)
        else:
            value, limit, text = self._rh_text(node, series, on, reading)
        return CheckDetail(
            series.quantity, float(value), float(limit), text, reading.ts, series.period_ms // 1000
        )

    def _rh_text(
        self, node: str, series: _Series, on: bool, reading: ReadingValues
    ) -> tuple[float, float, str]:
        limit = self._rh_on if on else self._rh_off
        rh = self._rh.get(node)
        q = series.quantity
        if rh is None or abs(reading.ts - rh.ts) > self._rh_age_ms:  # only on a clear
            return 0.0, limit, f"no RH within {self.settings.rh_max_age_s:g} s: check idle"
        if on:
            return rh.value, limit, f"RH {rh.value:g} % > {limit:g} %: optical {q} over-reads"
        return rh.value, limit, f"RH {rh.value:g} % < {limit:g} %: {q} readable again"

    # -- observations ---------------------------------------------------------------------

    def take_observations(self, late: bool) -> list[Observation]:
        """Observations for every sensor check that turned on or off since the last call,
        in order. Call after judging a batch, with the batch's `late` flag."""
        changes = self._changes
        if not changes:
            return []  # almost every batch: no list swap
        self._changes = []
        return [
            self._observation(c.sensor, c.check, c.active, c.detail, late, c.active)
            for c in changes
        ]

    def observations(self, node: str, sensor: str, at_ms: int, late: bool) -> list[Observation]:
        """The current state of each check of one sensor, as Observations at `at_ms`
        (high_rh only for a sensor with PM series). Empty for a sensor never judged."""
        owner = self._sensors.get((node, sensor))
        if owner is None:
            return []
        out = []
        for index, detail in enumerate(owner.details):
            if CHECKS[index] == "high_rh" and not owner.rh_judged:
                continue
            on = owner.counts[index] > 0
            said = detail or CheckDetail(None, 0.0, 0.0, "no problem seen", at_ms, 1)
            said = msgspec.structs.replace(said, at_ms=at_ms)
            out.append(self._observation(owner, index, on, said, late, self._beyond(owner, index)))
        return out

    def sensors(self) -> list[tuple[str, str]]:
        """Every (node, sensor) judged so far."""
        return list(self._sensors)

    def is_suspect(self, node: str, sensor: str) -> bool:
        """Whether any health problem is active on this sensor now."""
        owner = self._sensors.get((node, sensor))
        return owner is not None and owner.active > 0

    def was_unhealthy(self, node: str, sensor: str, start_ms: int, end_ms: int) -> bool:
        """Whether the sensor was judged unhealthy at any time in [start_ms, end_ms) of event
        time: what makes a window (or a reading) it measured suspect."""
        owner = self._sensors.get((node, sensor))
        return owner is not None and owner.unhealthy_during(start_ms, end_ms)

    def _beyond(self, owner: _Sensor, index: int) -> bool:
        """Whether a sensor's check is beyond its limit now. Inside high_rh's hysteresis
        band the problem holds but is not beyond the level: neither exceeded nor cleared,
        as Observation defines it."""
        if owner.counts[index] == 0:
            return False
        if CHECKS[index] != "high_rh":
            return True
        rh = self._rh.get(owner.node)
        return rh is not None and rh.value > self._rh_on

    def _observation(
        self,
        owner: _Sensor,
        index: int,
        on: bool,
        detail: CheckDetail,
        late: bool,
        exceeded: bool,
    ) -> Observation:
        check = CHECKS[index]
        rule = Rule(
            f"health.{check}.{owner.sensor}",
            "health",
            SEVERITY,
            None,
            STANDARD,
            CLAUSES[check],
            detail.period_s,
        )
        return Observation(
            rule,
            owner.node,
            exceeded,
            detail.value,
            detail.limit,
            detail.at_ms,
            late,
            detail.message,
            cleared=not on,
        )

    # -- snapshot -------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The state, as bytes that `restore` accepts (msgpack). Take observations first:
        changes not yet taken are not part of it."""
        series = [_SeriesState.of(key, s) for key, s in self._series.items()]
        details = [
            _DetailState(owner.node, owner.sensor, CHECKS[index], detail)
            for owner in self._sensors.values()
            for index, detail in enumerate(owner.details)
            if detail is not None
        ]
        rh = [_RhState(node, float(r.value), r.ts) for node, r in self._rh.items()]
        spans = [
            _SpansState(o.node, o.sensor, o.spans, o.unhealthy_since)
            for o in self._sensors.values()
            if o.spans or o.unhealthy_since >= 0
        ]
        return msgspec.msgpack.encode(_Snapshot(_SNAPSHOT_SCHEMA, series, details, rh, spans))

    @classmethod
    def restore(cls, data: bytes, settings: HealthSettings | None = None) -> HealthMonitor:
        """A monitor in the state `snapshot` saved, judging with `settings` (which may differ
        from the saved monitor's: limits are never saved). Raises HealthSnapshotError."""
        try:
            snap = msgspec.msgpack.decode(data, type=_Snapshot)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise HealthSnapshotError(f"health snapshot: {exc}") from None
        monitor = cls(settings)
        for s in snap.series:
            key = (s.node, s.sensor, s.quantity, s.stat, s.period_s)
            if key in monitor._series:
                raise HealthSnapshotError(f"health snapshot: series {key} twice")
            series = monitor._open(key)
            series.newest_ms, series.run_value = s.newest_ms, s.run_value
            series.run_start_ms, series.run_count = s.run_start_ms, s.run_count
            series.base_value, series.base_ms = s.base_value, s.base_ms
            series.cand_value, series.cand_ms = s.cand_value, s.cand_ms
            series.mask = s.mask
            owner = series.owner
            for index in range(4):
                if s.mask & (1 << index):
                    owner.counts[index] += 1
                    owner.active += 1
        for d in snap.details:
            owner = monitor._sensors.setdefault((d.node, d.sensor), _Sensor(d.node, d.sensor))
            owner.details[CHECKS.index(d.check)] = d.detail
        for r in snap.rh:
            monitor._rh[r.node] = _Rh(r.value, r.ts)
        for sp in snap.spans:
            owner = monitor._sensors.setdefault((sp.node, sp.sensor), _Sensor(sp.node, sp.sensor))
            owner.spans = [(start, end) for start, end in sp.spans]
            owner.unhealthy_since = sp.unhealthy_since
        return monitor


_SNAPSHOT_SCHEMA: Final = "envnet.health-state/1"


class _SeriesState(msgspec.Struct, frozen=True, array_like=True):
    node: NodeId
    sensor: SensorId
    quantity: Quantity
    stat: Statistic
    period_s: Annotated[int, msgspec.Meta(ge=1)]
    newest_ms: int
    run_value: float
    run_start_ms: int
    run_count: Annotated[int, msgspec.Meta(ge=0)]
    base_value: float
    base_ms: int
    cand_value: float
    cand_ms: int
    mask: Annotated[int, msgspec.Meta(ge=0, le=15)]

    @classmethod
    def of(cls, key: tuple[str, str, Quantity, Statistic, int], s: _Series) -> _SeriesState:
        node, sensor, quantity, stat, period_s = key
        return cls(
            node, sensor, quantity, stat, period_s, s.newest_ms, float(s.run_value),
            s.run_start_ms, s.run_count, float(s.base_value), s.base_ms, float(s.cand_value),
            s.cand_ms, s.mask,
        )  # fmt: skip


class _DetailState(msgspec.Struct, frozen=True, array_like=True):
    node: NodeId
    sensor: SensorId
    check: Check
    detail: CheckDetail


class _RhState(msgspec.Struct, frozen=True, array_like=True):
    node: NodeId
    value: float
    ts: int


class _SpansState(msgspec.Struct, frozen=True, array_like=True):
    node: NodeId
    sensor: SensorId
    spans: list[tuple[int, int]]
    unhealthy_since: int


class _Snapshot(msgspec.Struct, frozen=True):
    schema: Literal["envnet.health-state/1"]
    series: list[_SeriesState]
    details: list[_DetailState]
    rh: list[_RhState]
    spans: list[_SpansState] = []
