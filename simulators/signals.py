"""Pure physical models of what a city's sensors see: value = f(params, seed, t_ms).

Nothing here keeps state or reads a clock. A model object is built once from its parameters
and a seed (which precomputes its noise-stream keys) and is then immutable; `model.at(t_ms)`
returns every quantity of its family at that instant, in the canonical units of
schemas.quantities.SPECS. All randomness comes from simulators.noise, so the same
(params, seed, t_ms) always gives the same values, whatever was sampled before.

Local time is China Standard Time, UTC+8 all year (China has no daylight saving time).
Shapes are modelled on Suzhou (Yangtze River Delta, humid subtropical, beside Taihu) and are
plausible rather than calibrated: they exist to exercise the pipeline and its alert rules, so
levels chosen relative to a standard limit cite docs/standards.md.

Weather channels (the synoptic stagnation index, warm spells, sunshine, wind, runoff) are
shared between families: sensors of different families given the same seed see the same
weather, so a haze day is also a humid day and a warm spell also warms the lake.

Every value is clipped to its SPECS bounds by `clip` as a last guard only: the models are
built (multiplicative noise, logistic maps) to stay inside the bounds on their own, and the
clip exists so that extreme parameters or scripted episodes can never emit an impossible value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Final, Literal, cast

from schemas.quantities import QUANTITIES, SPECS, Quantity
from simulators.noise import (
    channel_id,
    keyed_hash,
    keyed_smooth,
    normal_from_hash,
    stream_key,
    unit_from_hash,
)

# -- time ---------------------------------------------------------------------------------

LOCAL_OFFSET_MS: Final = 8 * 3_600_000  # China Standard Time, UTC+8, no DST
MS_PER_DAY: Final = 86_400_000
DAY_S: Final = 86_400.0
HOUR_S: Final = 3_600.0
_DAYS_1970_TO_2000: Final = 10_957.0
_TROPICAL_YEAR_D: Final = 365.2425
# Suzhou's warmest days are in late July (day ~200); its coldest in mid/late January.
SUMMER_PEAK_DOY: Final = 200.0
_TWO_PI: Final = 2.0 * math.pi


def local_hour(t_ms: int) -> float:
    """Hour of the local (UTC+8) day, in [0, 24)."""
    return ((t_ms + LOCAL_OFFSET_MS) % MS_PER_DAY) / 3_600_000.0


def day_of_year(t_ms: int) -> float:
    """Fractional local day of the year, 0 on 1 January (±1 day: ample for seasons)."""
    days = (t_ms + LOCAL_OFFSET_MS) / MS_PER_DAY - _DAYS_1970_TO_2000
    return days % _TROPICAL_YEAR_D


def season(t_ms: int, peak_doy: float = SUMMER_PEAK_DOY) -> float:
    """+1 at the seasonal peak (midsummer by default), -1 half a year away."""
    return math.cos(_TWO_PI * (day_of_year(t_ms) - peak_doy) / _TROPICAL_YEAR_D)


def is_daytime(hour: float) -> bool:
    """GB 3096-2008 §3.4 day 06:00-22:00, night 22:00-06:00 (docs/standards.md §3.2)."""
    return 6.0 <= hour < 22.0  # the standard's hours


def bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump on the 24-h circle: 1 at `centre`, e-folding over ~`width` hours."""
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (d / width) ** 2)


def asymmetric_cycle(hour: float, low: float, high: float) -> float:
    """A daily cycle in [-1, 1]: -1 at hour `low`, +1 at hour `high`, smooth in between.

    Heating and photosynthesis rise over the daylight hours and decay over the longer rest
    of the day, so a plain cosine (12 h up, 12 h down) would put the minimum too early.
    """
    rise = (high - low) % 24.0
    since_low = (hour - low) % 24.0
    if since_low < rise:
        return -math.cos(math.pi * since_low / rise)
    return math.cos(math.pi * (since_low - rise) / (24.0 - rise))


def traffic_profile(hour: float) -> float:
    """Relative road traffic, ~1 at the 08:00 and 18:00 rush hours, ~0.08 before dawn."""
    daytime = _logistic((hour - 6.5) / 0.7) * _logistic((21.5 - hour) / 0.9)
    return 0.08 + 0.42 * daytime + 0.5 * bump(hour, 8.0, 1.0) + 0.45 * bump(hour, 18.0, 1.3)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _soft_floor(x: float, floor: float) -> float:
    """max(x, floor), smoothed (softplus): x itself once a few units above the floor."""
    excess = x - floor
    return x if excess > 30.0 else floor + math.log1p(math.exp(excess))


# -- bounds and episodes --------------------------------------------------------------------


def clip(quantity: Quantity, value: float) -> float:
    """The last guard: force a value into its SPECS bounds (see the module docstring)."""
    spec = SPECS[quantity]
    return min(max(value, spec.lower), spec.upper)


@dataclass(frozen=True, slots=True)
class Episode:
    """A scripted addition to one quantity, on top of the model: a trapezoid in time.

    Active from origin + start_s for duration_s seconds; rises linearly over the first ramp_s,
    holds `peak` (in the quantity's canonical unit; negative for a drop, e.g. a DO crash),
    falls over the last ramp_s. For dB quantities the peak adds decibels to the level.
    """

    quantity: Quantity
    start_s: float
    duration_s: float
    peak: float
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        if self.quantity not in QUANTITIES:
            raise ValueError(f"episode quantity {self.quantity!r} is not a known quantity")
        numbers = (self.start_s, self.duration_s, self.peak, self.ramp_s)
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError(f"episode for {self.quantity}: values must be finite")
        if self.duration_s <= 0:
            raise ValueError(f"episode for {self.quantity}: duration_s must be positive")
        if self.ramp_s < 0 or 2 * self.ramp_s > self.duration_s:
            raise ValueError(
                f"episode for {self.quantity}: ramp_s must be in [0, duration_s / 2], "
                f"got {self.ramp_s} with duration_s {self.duration_s}"
            )

    def offset(self, origin_ms: int, t_ms: int) -> float:
        """The addition at `t_ms` for episodes timed relative to `origin_ms`."""
        x = (t_ms - origin_ms) / 1000.0 - self.start_s
        if x < 0.0 or x >= self.duration_s:
            return 0.0
        if self.ramp_s <= 0.0:
            return self.peak
        return self.peak * min(1.0, x / self.ramp_s, (self.duration_s - x) / self.ramp_s)


def episode_offset(
    episodes: Iterable[Episode], quantity: Quantity, origin_ms: int, t_ms: int
) -> float:
    """The sum of the additions of the episodes of `quantity` at `t_ms`."""
    return sum(e.offset(origin_ms, t_ms) for e in episodes if e.quantity == quantity)


# -- noise streams ----------------------------------------------------------------------------


def _check_range(name: str, value: float, low: float, high: float) -> None:
    """A model parameter's bounds (NaN is outside them)."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")


def _keys(seed: int, family: str, *names: str) -> tuple[int, ...]:
    """The noise stream keys of a model's channels, "family.name" each, for a seed."""
    return tuple(stream_key(seed, channel_id(f"{family}.{name}")) for name in names)


@dataclass(frozen=True, slots=True)
class Weather:
    """Shared slow weather state at one instant (all dimensionless unless stated)."""

    stagnation: float  # N(0,1) synoptic stagnation tendency, ~2-day correlation
    warm_c: float  # multi-day temperature anomaly, °C (a "warm spell" when > ~1.5)
    sunshine: float  # N(0,1) day-to-day sunshine: > 0 clear, < 0 overcast
    runoff: float  # N(0,1) rain and runoff tendency, ~2-day correlation


class WeatherModel:
    """The weather channels every family shares for a seed."""

    __slots__ = ("_runoff", "_stagnation", "_sunshine", "_warm")

    def __init__(self, seed: int) -> None:
        self._stagnation, self._warm, self._sunshine, self._runoff = _keys(
            seed, "weather", "stagnation", "warm", "sunshine", "runoff"
        )

    def at(self, t_s: float) -> Weather:
        return Weather(
            stagnation=keyed_smooth(self._stagnation, t_s, 2.0 * DAY_S),
            # Anomalies of ±2.5 °C lasting several days: the scale of a YRD warm spell.
            warm_c=2.5 * keyed_smooth(self._warm, t_s, 4.0 * DAY_S),
            sunshine=keyed_smooth(self._sunshine, t_s, DAY_S),
            runoff=keyed_smooth(self._runoff, t_s, 2.0 * DAY_S),
        )


def _white(key: int, t_ms: int) -> float:
    """Per-sample white noise N(0,1) of one stream."""
    return normal_from_hash(keyed_hash(key, t_ms))


# -- air --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AirParams:
    """traffic: 0 (park) .. 1 (kerbside of an arterial road). haze: the site is in a polluted
    region where stagnant weather builds multi-day haze episodes."""

    traffic: float = 0.5
    haze: bool = False

    def __post_init__(self) -> None:
        _check_range("traffic", self.traffic, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class _Values:
    """A model's values at one instant, in fields named for their quantities."""

    def pairs(self) -> tuple[tuple[Quantity, float], ...]:
        """(quantity, value) in field order."""
        return tuple((cast(Quantity, f.name), getattr(self, f.name)) for f in fields(self))


@dataclass(frozen=True, slots=True)
class AirValues(_Values):
    pm2_5: float
    pm10: float
    o3: float
    no2: float
    so2: float
    co: float
    tvoc: float


def haze_multiplier(stagnation: float, winter: float) -> float:
    """How much stagnant weather multiplies primary pollution at a polluted-region site.

    Haze in the Yangtze River Delta is a winter phenomenon, so winter lowers the stagnation
    threshold. The tanh saturates build-up at ~6x: a typical winter base of ~30 µg/m³ then
    reaches daily means of 75-180 on haze days, above the GB 3095-2026 transition Grade II
    24-h PM2.5 limit of 60 and the 2012 limit of 75 (docs/standards.md §1.1), as Suzhou's winters
    of the 2010s did.
    """
    index = max(0.0, stagnation - 1.3 + 0.7 * winter)
    return 1.0 + 4.0 * math.tanh(index / 1.2)


class AirModel:
    """Urban air quality: rush-hour peaks, haze episodes, afternoon photochemical ozone."""

    __slots__ = (
        "_fast", "_ratio", "_so2", "_synoptic", "_weather", "_white_gas", "_white_pm", "params",
    )  # fmt: skip

    def __init__(self, params: AirParams, seed: int) -> None:
        self.params = params
        self._weather = WeatherModel(seed)
        self._synoptic, self._fast, self._ratio, self._so2, self._white_pm, self._white_gas = _keys(
            seed, "air", "synoptic", "fast", "pm_ratio", "so2", "white.pm", "white.gas"
        )

    def at(self, t_ms: int) -> AirValues:
        t_s = t_ms / 1000.0
        hour = local_hour(t_ms)
        summer = 0.5 * (1.0 + season(t_ms))
        winter = 1.0 - summer
        weather = self._weather.at(t_s)
        stag = haze_multiplier(weather.stagnation, winter) if self.params.haze else 1.0
        # Fronts and ventilation: ±30 % day-to-day in every primary pollutant.
        vent = math.exp(0.3 * keyed_smooth(self._synoptic, t_s, 1.5 * DAY_S))
        # The nocturnal boundary layer is shallow (max ~05:00), the afternoon one deep.
        layer = 1.0 + 0.12 * math.cos(_TWO_PI * (hour - 5.0) / 24.0)
        road = self.params.traffic * traffic_profile(hour)
        fast = math.exp(0.08 * keyed_smooth(self._fast, t_s, 600.0))
        h_pm = keyed_hash(self._white_pm, t_ms)
        h_gas = keyed_hash(self._white_gas, t_ms)
        jitter = 1.0 + 0.03 * normal_from_hash(h_pm)  # a low-cost optical PM sensor's noise
        pm2_5 = (18.0 + 14.0 * winter) * vent * stag * layer * (1.0 + 0.8 * road) * fast * jitter
        # Coarse dust adds 40-100 % on top of the fine fraction (PM10/PM2.5 of 1.4-2).
        pm10 = pm2_5 * (1.7 + 0.3 * math.tanh(keyed_smooth(self._ratio, t_s, DAY_S)))
        gas_jitter = 1.0 + 0.02 * (unit_from_hash(h_gas) - 0.5)
        return AirValues(
            pm2_5=clip("pm2_5", pm2_5),
            pm10=clip("pm10", pm10),
            o3=clip("o3", _ozone(hour, summer, weather, stag, self.params.traffic)
                    * fast * gas_jitter),
            no2=clip("no2", (12.0 + 8.0 * winter + 10.0 * self.params.traffic + 45.0 * road)
                     * math.sqrt(stag) * vent * layer * fast * gas_jitter),
            so2=clip("so2", (5.0 + 6.0 * winter) * math.sqrt(stag)
                     * math.exp(0.3 * keyed_smooth(self._so2, t_s, DAY_S)) * gas_jitter),
            co=clip("co", (0.35 + 0.25 * winter + 0.5 * road) * stag**0.6 * math.sqrt(vent)
                    * fast * gas_jitter),
            tvoc=clip("tvoc", (60.0 + 25.0 * summer + 140.0 * road) * math.sqrt(stag)
                      * vent * fast * gas_jitter),
        )  # fmt: skip


def _ozone(hour: float, summer: float, weather: Weather, stag: float, traffic: float) -> float:
    """Photochemical O3: an afternoon peak (~15:00 local) that is strongest on clear summer
    days. A clear midsummer afternoon reaches ~170-260 µg/m³, around the 1-h Grade II limit
    of 200 (GB 3095-2026 Table 1, docs/standards.md §1.1): ozone is the Yangtze River Delta's
    summer exceedance. Haze dims photolysis; fresh traffic NO titrates O3 near roads."""
    sunshine = math.exp(0.25 * weather.sunshine) / (1.0 + 0.1 * (stag - 1.0))
    photo = (45.0 + 95.0 * summer) * bump(hour, 15.0, 2.6) * sunshine
    background = 15.0 + 20.0 * summer
    rush = max(bump(hour, 8.0, 1.2), bump(hour, 18.0, 1.5))
    return (background + photo) * (1.0 - traffic * (0.1 + 0.45 * rush))


def air(params: AirParams, seed: int, t_ms: int) -> AirValues:
    """Convenience: `AirModel(params, seed).at(t_ms)` (build the model once for many reads)."""
    return AirModel(params, seed).at(t_ms)


# -- meteorology --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetValues(_Values):
    air_temp: float
    rh: float
    pressure: float


class MetModel:
    """Suzhou weather: 4 °C January and 29 °C July means, humid, pressure high in winter."""

    __slots__ = ("_day", "_press", "_rh", "_weather", "_white")

    def __init__(self, seed: int) -> None:
        self._weather = WeatherModel(seed)
        self._day, self._rh, self._press, self._white = _keys(
            seed, "met", "day", "rh", "pressure", "white"
        )

    def at(self, t_ms: int) -> MetValues:
        t_s = t_ms / 1000.0
        hour = local_hour(t_ms)
        seasonal = season(t_ms)
        weather = self._weather.at(t_s)
        # Clear days have a wide diurnal range (~±5 °C), overcast ones a narrow one (~±2).
        range_c = 3.5 + 1.5 * math.tanh(weather.sunshine)
        diurnal = range_c * asymmetric_cycle(hour, 5.5, 15.0)
        daily = 16.5 + 12.5 * seasonal + weather.warm_c + keyed_smooth(self._day, t_s, DAY_S)
        temp = daily + diurnal
        noise = _white(self._white, t_ms)
        # RH on a logit scale so it cannot leave (0, 100): ~75 % mean, lower in the warm
        # afternoon (warmer air holds more vapour), higher in stagnant (hazy) weather.
        logit = (
            1.1
            + 0.2 * seasonal
            - 0.15 * (diurnal + weather.warm_c)
            + 0.4 * weather.stagnation
            + 0.4 * keyed_smooth(self._rh, t_s, 0.5 * DAY_S)
        )
        # ~1025 hPa in winter highs, ~1005 in summer; synoptic swings; the semidiurnal tide.
        pressure = (
            1015.5
            - 9.0 * seasonal
            - 0.8 * weather.warm_c
            + 5.0 * keyed_smooth(self._press, t_s, 2.5 * DAY_S)
            + 0.8 * math.cos(_TWO_PI * (hour - 10.0) / 12.0)
        )
        return MetValues(
            air_temp=clip("air_temp", temp + 0.05 * noise),
            rh=clip("rh", 100.0 * _logistic(logit) + 0.3 * noise),
            pressure=clip("pressure", pressure + 0.05 * noise),
        )


def met(seed: int, t_ms: int) -> MetValues:
    return MetModel(seed).at(t_ms)


# -- environmental noise ---------------------------------------------------------------------

Zone = Literal["0", "1", "2", "3", "4a", "4b"]
ZONES: Final[tuple[Zone, ...]] = ("0", "1", "2", "3", "4a", "4b")


@dataclass(frozen=True, slots=True)
class ZoneProfile:
    """A site of one GB 3096 zone class: its limits and the sound it typically hears."""

    day_limit: float  # L_Aeq day limit, dB(A): GB 3096-2008 Table 1 (docs/standards.md §3.1)
    night_limit: float
    margin: float  # how far below the limit the site's typical period L_Aeq sits, dB
    events_day: float  # pass-by events per hour (vehicles, trains)
    events_night: float
    amp_lo: float  # event peak above the background, dB
    amp_hi: float
    dur_lo: float  # event half-width (Gaussian sigma), s
    dur_hi: float


# Zones 4a/4b sit only 1 dB under their limits (70/55 and 70/60): roadside and railside
# sites in Chinese cities commonly reach their limits, so hourly alerts fire some hours.
# The other classes sit 2.5-3 dB under theirs. 4b events are trains: rarer, louder, longer.
ZONE_PROFILES: Final[dict[Zone, ZoneProfile]] = {
    "0": ZoneProfile(50, 40, 3.0, 3, 1, 5, 15, 2, 5),
    "1": ZoneProfile(55, 45, 3.0, 4, 1.5, 5, 15, 2, 5),
    "2": ZoneProfile(60, 50, 2.5, 8, 3, 5, 18, 2, 5),
    "3": ZoneProfile(65, 55, 2.5, 12, 6, 5, 18, 2, 6),
    "4a": ZoneProfile(70, 55, 1.0, 40, 15, 4, 18, 1.5, 4),
    "4b": ZoneProfile(70, 60, 1.0, 8, 5, 10, 25, 6, 12),
}

EVENT_SLOT_S: Final = 60.0  # at most one event per slot; rates must stay below 60/h
_FLUCT_DB: Final = 2.0  # traffic-density fluctuation, seconds scale
_SLOW_DB: Final = 1.5  # hour-to-hour variation
# E[10^(X/10)] = 10^(0.1151·σ²/10) for X ~ N(0, σ²): the energy excess of Gaussian dB noise.
_GAUSS_EXCESS_DB: Final = math.log(10.0) / 20.0


def event_energy_db(rate_per_h: float, p: ZoneProfile) -> float:
    """By how much pass-by events raise the energy mean over the background, in dB.

    Each event adds (10^(A/10) - 1)·g(t) in units of background energy, g a Gaussian of
    width d; A and d are uniform. The model subtracts this from the background so that the
    hourly L_Aeq (an energy mean, GB 3096-2008 / docs/standards.md §3.3) sits at its target.
    """
    span = p.amp_hi - p.amp_lo
    mean_gain = (10 ** (p.amp_hi / 10) - 10 ** (p.amp_lo / 10)) / (span * math.log(10) / 10)
    mean_width = 0.5 * (p.dur_lo + p.dur_hi) * math.sqrt(_TWO_PI)
    share = rate_per_h / HOUR_S * (mean_gain - 1.0) * mean_width
    return 10.0 * math.log10(1.0 + share)


@dataclass(frozen=True, slots=True)
class NoiseParams:
    zone: Zone = "2"

    def __post_init__(self) -> None:
        if self.zone not in ZONE_PROFILES:
            raise ValueError(f"zone must be one of {', '.join(ZONES)}; got {self.zone!r}")


@dataclass(frozen=True, slots=True)
class NoiseValues(_Values):
    laeq: float  # L_Aeq over the 1-s sample
    lamax: float  # L_Amax (fast) within the 1-s sample


def _noise_shape(hour: float) -> float:
    """Deviation of the hourly level from its period's mean, dB (about zero-mean per period):
    louder at the rush hours, quietest at 02:00-04:00."""
    if is_daytime(hour):
        return 2.0 * (bump(hour, 8.0, 1.2) + bump(hour, 18.0, 1.5)) - 0.85
    return 1.15 - 2.5 * bump(hour, 3.0, 1.5)


class NoiseModel:
    """1-s environmental noise at a site of a GB 3096 zone class."""

    __slots__ = ("_comp_day", "_comp_night", "_events", "_fluct", "_slow", "_white", "params")

    def __init__(self, params: NoiseParams, seed: int) -> None:
        self.params = params
        p = ZONE_PROFILES[params.zone]
        gauss = _GAUSS_EXCESS_DB * (_FLUCT_DB**2 + _SLOW_DB**2)
        self._comp_day = gauss + event_energy_db(p.events_day, p)
        self._comp_night = gauss + event_energy_db(p.events_night, p)
        self._events, self._fluct, self._slow, self._white = _keys(
            seed, "noise", "events", "fluct", "slow", "white"
        )

    def at(self, t_ms: int) -> NoiseValues:
        t_s = t_ms / 1000.0
        hour = local_hour(t_ms)
        p = ZONE_PROFILES[self.params.zone]
        if is_daytime(hour):
            target, comp = p.day_limit - p.margin, self._comp_day
        else:
            target, comp = p.night_limit - p.margin, self._comp_night
        level = (
            target
            - comp
            + _noise_shape(hour)
            + _SLOW_DB * keyed_smooth(self._slow, t_s, 1800.0)
            + _FLUCT_DB * keyed_smooth(self._fluct, t_s, 6.0)
        )
        laeq = level + self._event_boost(t_ms, p)
        # Within one second the fast-weighted maximum exceeds the 1-s L_Aeq by 0.5-3 dB.
        lamax = laeq + 0.5 + 2.5 * unit_from_hash(keyed_hash(self._white, t_ms))
        return NoiseValues(laeq=clip("laeq", laeq), lamax=clip("lamax", lamax))

    def _event_boost(self, t_ms: int, p: ZoneProfile) -> float:
        """dB added by pass-by events: one possible event per 60-s slot, at a random offset,
        with a Gaussian time profile; neighbour slots are checked for their tails."""
        t_s = t_ms / 1000.0
        slot = math.floor(t_s / EVENT_SLOT_S)
        energy = 0.0
        for j in (slot - 1, slot, slot + 1):
            start_ms = int(j * EVENT_SLOT_S * 1000)
            rate = p.events_day if is_daytime(local_hour(start_ms)) else p.events_night
            h = keyed_hash(self._events, j)
            if (h & 0xFFFF) / 65536.0 >= rate / 60.0:
                continue
            t0 = j * EVENT_SLOT_S + ((h >> 16) & 0xFFFF) / 65536.0 * EVENT_SLOT_S
            amp = p.amp_lo + (p.amp_hi - p.amp_lo) * ((h >> 32) & 0xFFFF) / 65536.0
            width = p.dur_lo + (p.dur_hi - p.dur_lo) * ((h >> 48) & 0xFFFF) / 65536.0
            x = (t_s - t0) / width
            if abs(x) < 5.0:
                energy += (10.0 ** (amp / 10.0) - 1.0) * math.exp(-0.5 * x * x)
        return 10.0 * math.log10(1.0 + energy)


def noise(params: NoiseParams, seed: int, t_ms: int) -> NoiseValues:
    return NoiseModel(params, seed).at(t_ms)


# -- odour ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OdourParams:
    """A fence-line sensor near an odour source (a wastewater plant, a landfill).

    source_bearing_deg: direction from the sensor to the source, degrees clockwise from north;
    the plume arrives when the wind blows *from* that direction. source_strength scales the
    plume (1 = typical; 3+ = a source that often breaches the fence-line limits).
    """

    source_bearing_deg: float = 0.0
    source_strength: float = 1.0
    plume_width_deg: float = 15.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.source_bearing_deg):
            raise ValueError("source_bearing_deg must be finite")
        _check_range("source_strength", self.source_strength, 0.0, 1000.0)
        _check_range("plume_width_deg", self.plume_width_deg, 1.0, 90.0)


@dataclass(frozen=True, slots=True)
class OdourValues(_Values):
    h2s: float
    nh3: float
    odour: float


def angle_diff_deg(a: float, b: float) -> float:
    """Signed smallest difference a - b on the circle, in (-180, 180]."""
    d = (a - b) % 360.0
    return d - 360.0 if d > 180.0 else d


class WindModel:
    """Wind direction (where it blows from, degrees) and speed (m/s) at a Suzhou site."""

    __slots__ = ("_dir_fast", "_dir_mid", "_dir_slow", "_speed")

    def __init__(self, seed: int) -> None:
        self._dir_slow, self._dir_mid, self._dir_fast, self._speed = _keys(
            seed, "wind", "dir.slow", "dir.mid", "dir.fast", "speed"
        )

    def direction_deg(self, t_ms: int) -> float:
        """The East Asian monsoon: south-easterlies in summer, north-westerlies in winter
        (through south-west in the transition seasons), with wide synoptic swings."""
        t_s = t_ms / 1000.0
        prevailing = 135.0 + 180.0 * 0.5 * (1.0 - season(t_ms))
        swing = (
            90.0 * keyed_smooth(self._dir_slow, t_s, 2.0 * DAY_S)
            + 60.0 * keyed_smooth(self._dir_mid, t_s, 6.0 * HOUR_S)
            + 15.0 * keyed_smooth(self._dir_fast, t_s, 1800.0)
        )
        return (prevailing + swing) % 360.0

    def speed_ms(self, t_ms: int) -> float:
        """0.5-4 m/s, windier in the afternoon when the boundary layer mixes momentum down."""
        z = keyed_smooth(self._speed, t_ms / 1000.0, 12.0 * HOUR_S)
        return 0.5 + 3.5 * _logistic(1.2 * z + 0.5 * bump(local_hour(t_ms), 14.0, 3.0))


def wind_from_deg(seed: int, t_ms: int) -> float:
    """The wind direction every model of this seed uses at `t_ms` (degrees, from)."""
    return WindModel(seed).direction_deg(t_ms)


class OdourModel:
    """H2S, NH3 and odour concentration downwind of a source.

    Background: H2S ~1-3 µg/m³, NH3 ~10-25 µg/m³, odour < 5: far under the GB 14554-93
    Table 1 Grade II (new) fence-line limits of H2S 60 µg/m³, NH3 1500 µg/m³ and odour 20
    (docs/standards.md §4.1). A typical plume with the wind straight from the source brings
    H2S ~30 µg/m³; calm nights and process upsets push it past 60, and odour past 20.
    """

    __slots__ = ("_bg", "_emission", "_smell", "_upset", "_wind", "params")

    def __init__(self, params: OdourParams, seed: int) -> None:
        self.params = params
        self._wind = WindModel(seed)
        self._emission, self._upset, self._bg, self._smell = _keys(
            seed, "odour", "emission", "upset", "background", "smell"
        )

    def plume_h2s(self, t_ms: int) -> float:
        """The source's H2S contribution at the sensor, µg/m³."""
        p = self.params
        delta = angle_diff_deg(self._wind.direction_deg(t_ms), p.source_bearing_deg)
        alignment = math.exp(-0.5 * (delta / p.plume_width_deg) ** 2)
        if alignment < 1e-9:
            return 0.0
        t_s = t_ms / 1000.0
        # Emissions vary over hours; "upsets" (a sludge-handling day, an opened cell) last
        # a day or two and multiply them.
        emission = math.exp(0.4 * keyed_smooth(self._emission, t_s, 3.0 * HOUR_S)) * (
            1.0 + 4.0 * max(0.0, keyed_smooth(self._upset, t_s, 2.0 * DAY_S) - 1.3)
        )
        dilution = 2.0 / self._wind.speed_ms(t_ms)  # concentration ∝ 1 / wind speed
        stability = 1.0 + 0.6 * (0.0 if is_daytime(local_hour(t_ms)) else 1.0)
        return 25.0 * p.source_strength * alignment * emission * dilution * stability

    def at(self, t_ms: int) -> OdourValues:
        t_s = t_ms / 1000.0
        plume = self.plume_h2s(t_ms)
        bg = math.exp(0.3 * keyed_smooth(self._bg, t_s, 6.0 * HOUR_S))
        smell = math.exp(0.15 * keyed_smooth(self._smell, t_s, 600.0))
        # The source's NH3 comes with its H2S at ~12:1 by mass (wastewater and compost
        # emissions), so NH3 reaches its limit only under strong sources or episodes.
        return OdourValues(
            h2s=clip("h2s", 1.5 * bg + plume),
            nh3=clip("nh3", 15.0 * bg + 12.0 * plume),
            # Odour concentration (dilutions to threshold) tracks the reduced-sulphur load.
            odour=clip("odour", 2.0 * bg + 0.55 * plume * smell),
        )


def odour(params: OdourParams, seed: int, t_ms: int) -> OdourValues:
    return OdourModel(params, seed).at(t_ms)


# -- surface water ---------------------------------------------------------------------------

Body = Literal["lake", "river"]
TrophicState = Literal["oligotrophic", "mesotrophic", "eutrophic", "hypereutrophic"]

# Named states on the 0..1 `trophic` scale. Eutrophic (0.6) gives a Taihu-like lake; the
# names follow the TLI classes of docs/standards.md §6.3 loosely (the scale is not a TLI).
TROPHIC_STATES: Final[dict[TrophicState, float]] = {
    "oligotrophic": 0.0,
    "mesotrophic": 0.2,
    "eutrophic": 0.6,
    "hypereutrophic": 1.0,
}


@dataclass(frozen=True, slots=True)
class WaterParams:
    """body: a shallow lake (Taihu, Jinji Lake) or a city river or canal. trophic: nutrient
    richness from 0 (oligotrophic) to 1 (hypereutrophic); 0.6 is Taihu-like."""

    body: Body = "lake"
    trophic: float = 0.6

    def __post_init__(self) -> None:
        if self.body not in ("lake", "river"):
            raise ValueError(f"body must be 'lake' or 'river', got {self.body!r}")
        _check_range("trophic", self.trophic, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class WaterValues(_Values):
    water_temp: float
    ph: float
    do: float
    codmn: float
    nh3_n: float
    tp: float
    tn: float
    turbidity: float
    conductivity: float
    chl_a: float
    phycocyanin: float


def do_saturation(temp_c: float) -> float:
    """Oxygen solubility in fresh water at 1 atm, mg/L (Benson & Krause 1984, as in APHA
    Standard Methods 4500-O): 14.6 at 0 °C, 9.09 at 20 °C, 7.56 at 30 °C."""
    t = temp_c + 273.15
    return math.exp(
        -139.34411 + 1.575701e5 / t - 6.642308e7 / t**2 + 1.243800e10 / t**3 - 8.621949e11 / t**4
    )


@dataclass(frozen=True, slots=True)
class _BodyTraits:
    temp_mean: float  # annual mean water temperature, °C
    temp_diurnal: float  # ± amplitude, °C
    algae: float  # algal biomass relative to a lake of the same trophic state
    tp: tuple[float, float]  # TP mg/L at trophic 0 and its increase to trophic 1
    tn: tuple[float, float]
    nh3_n: tuple[float, float]
    codmn: tuple[float, float]
    turbidity: float
    conductivity: float


# Lake: Taihu's TP 0.05-0.15 mg/L and TN 1-3 mg/L (GB 3838-2002 lake classes III-V,
# docs/standards.md §5.1). River: Suzhou's city canals, richer in NH3-N and organics, fewer algae.
_BODIES: Final[dict[Body, _BodyTraits]] = {
    "lake": _BodyTraits(
        temp_mean=17.5, temp_diurnal=0.6, algae=1.0, tp=(0.05, 0.10), tn=(1.0, 1.5),
        nh3_n=(0.10, 0.30), codmn=(3.5, 2.5), turbidity=25.0, conductivity=450.0,
    ),
    "river": _BodyTraits(
        temp_mean=18.0, temp_diurnal=0.3, algae=0.3, tp=(0.10, 0.15), tn=(2.0, 2.0),
        nh3_n=(0.30, 0.80), codmn=(4.0, 2.5), turbidity=20.0, conductivity=600.0,
    ),
}  # fmt: skip


class WaterModel:
    """A water-quality sonde: temperature, nutrients, algae and their daily oxygen cycle."""

    __slots__ = ("_body", "_patch", "_weather", "_white", "_wind", "params")

    def __init__(self, params: WaterParams, seed: int) -> None:
        self.params = params
        self._body = _BODIES[params.body]
        self._weather = WeatherModel(seed)
        self._patch, self._wind, self._white = _keys(seed, "water", "patch", "wind", "white")

    def temperature(self, t_ms: int, warm_c: float) -> float:
        """Water lags the air by ~2 weeks (peak early August) and damps its anomalies; a
        soft floor near 1 °C stands for the ice-free winter of Taihu (surface ~3-6 °C)."""
        b = self._body
        seasonal = season(t_ms, SUMMER_PEAK_DOY + 12.0)
        diurnal = b.temp_diurnal * asymmetric_cycle(local_hour(t_ms), 7.0, 16.0)
        return _soft_floor(b.temp_mean + 12.5 * seasonal + 0.5 * warm_c + diurnal, 1.0)

    def chlorophyll(self, t_s: float, temp_c: float, warm_c: float) -> float:
        """Chl-a, µg/L: trophic state x temperature (Q10 ~2.5) x warm spells x patchiness.

        A Taihu-like lake (trophic 0.6) sits at ~3 µg/L in winter and ~30 in summer, above
        the WHO 10 µg/L level, and passes the WHO 50 µg/L "moderate" level in a summer warm
        spell (docs/standards.md §6.1). The multi-day anomaly term stands for the calm, sunny
        weather that lets Microcystis colonies float up and accumulate.
        """
        base = (3.0 + 30.0 * self.params.trophic) * self._body.algae
        patch = keyed_smooth(self._patch, t_s, 8.0 * HOUR_S)
        return base * math.exp(0.1 * (temp_c - 25.0) + 0.25 * warm_c + 0.25 * patch)

    def at(self, t_ms: int) -> WaterValues:
        t_s = t_ms / 1000.0
        hour = local_hour(t_ms)
        weather = self._weather.at(t_s)
        b = self._body
        trophic = self.params.trophic
        temp = self.temperature(t_ms, weather.warm_c)
        chl = self.chlorophyll(t_s, temp, weather.warm_c)
        bloom = chl / (chl + 40.0)
        # Photosynthesis: oxygen and pH lowest at dawn (~06:00), highest at ~16:00, with a
        # swing that grows with algal biomass and sunshine.
        cycle = asymmetric_cycle(hour, 6.0, 16.0)
        light = 1.0 + 0.3 * math.tanh(weather.sunshine)
        do = do_saturation(temp) * (0.96 - 0.06 * trophic + (0.04 + 0.3 * bloom) * light * cycle)
        ph = 7.6 + 0.3 * trophic + 1.2 * bloom * (0.6 + 0.4 * cycle * light)
        # Cyanobacteria (phycocyanin) dominate the algae above ~18 °C.
        cyano = _logistic((temp - 18.0) / 2.5)
        summer = season(t_ms)
        runoff = math.exp(0.15 * weather.runoff)
        wind = math.exp(0.5 * keyed_smooth(self._wind, t_s, 12.0 * HOUR_S))
        n = normal_from_hash(keyed_hash(self._white, t_ms))
        return WaterValues(
            water_temp=clip("water_temp", temp + 0.02 * n),
            ph=clip("ph", ph + 0.01 * n),
            do=clip("do", do + 0.03 * n),
            codmn=clip("codmn", (b.codmn[0] + b.codmn[1] * trophic + 0.02 * chl) * runoff),
            # Nitrification slows in the cold: NH3-N is highest in winter.
            nh3_n=clip("nh3_n", (b.nh3_n[0] + b.nh3_n[1] * trophic)
                       * (1.0 - 0.3 * summer) * runoff),
            # Sediments release phosphorus in summer; TN is highest in winter and spring.
            tp=clip("tp", (b.tp[0] + b.tp[1] * trophic) * (1.0 + 0.15 * summer) * runoff),
            tn=clip("tn", (b.tn[0] + b.tn[1] * trophic) * (1.0 - 0.2 * summer) * runoff),
            # Taihu is shallow: wind resuspends its sediment.
            turbidity=clip("turbidity", b.turbidity * (1.0 + trophic) * wind * runoff),
            conductivity=clip("conductivity", b.conductivity * (1.0 + 0.2 * trophic) / runoff),
            chl_a=clip("chl_a", chl * (1.0 + 0.03 * n)),
            phycocyanin=clip("phycocyanin", chl * (0.2 + 1.0 * cyano) * (1.0 + 0.03 * n)),
        )  # fmt: skip


def water(params: WaterParams, seed: int, t_ms: int) -> WaterValues:
    return WaterModel(params, seed).at(t_ms)


def warm_anomaly_c(seed: int, t_ms: int) -> float:
    """The multi-day temperature anomaly (°C) shared by the met and water models."""
    return WeatherModel(seed).at(t_ms / 1000.0).warm_c
