"""Counter-based noise and the physical models of the simulators: determinism, bounds, shapes."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.stats import energy_mean_db
from schemas.quantities import SPECS, Quantity
from simulators import noise
from simulators.signals import (
    ZONE_PROFILES,
    ZONES,
    AirModel,
    AirParams,
    Episode,
    MetModel,
    NoiseModel,
    NoiseParams,
    OdourModel,
    OdourParams,
    WaterModel,
    WaterParams,
    WindModel,
    Zone,
    angle_diff_deg,
    asymmetric_cycle,
    clip,
    day_of_year,
    do_saturation,
    episode_offset,
    is_daytime,
    local_hour,
    season,
    warm_anomaly_c,
)

CST = timezone(timedelta(hours=8))
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000


def at(year: int, month: int, day: int, hour: int = 0) -> int:
    """UTC epoch ms of a Suzhou local time."""
    return int(datetime(year, month, day, hour, tzinfo=CST).timestamp()) * 1000


def span(start_ms: int, days: float, step_ms: int) -> range:
    return range(start_ms, start_ms + int(days * DAY), step_ms)


def hour_of(t_ms: int) -> int:
    return int(local_hour(t_ms))


def mean_at_hours(values: Iterable[tuple[int, float]], hours: set[int]) -> float:
    return statistics.fmean(v for t, v in values if hour_of(t) in hours)


def daily_means(values: Iterable[tuple[int, float]]) -> list[float]:
    days: dict[int, list[float]] = {}
    for t, v in values:
        days.setdefault((t + 8 * HOUR) // DAY, []).append(v)
    return [statistics.fmean(v) for v in days.values()]


WINTER = at(2024, 12, 1)
SUMMER = at(2024, 6, 1)
# Sensor timestamps the contract accepts: 2000-01-01 .. 2100-01-01.
EPOCH_MS = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999)
SEEDS = st.integers(min_value=0, max_value=2**63)

# -- noise ------------------------------------------------------------------------------------


def test_channel_ids_are_stable_across_processes() -> None:
    # FNV-1a 64 of the UTF-8 bytes: pinned, so a seed means the same thing everywhere.
    assert noise.channel_id("") == 0xCBF29CE484222325
    assert noise.channel_id("a") == 0xAF63DC4C8601EC8C
    assert noise.channel_id("pm2_5") != noise.channel_id("pm10")


def test_same_inputs_same_numbers_and_seeds_differ() -> None:
    c = noise.channel_id("pm2_5")
    assert noise.uniform(7, c, 123) == noise.uniform(7, c, 123)
    assert noise.normal(7, c, 123) == noise.normal(7, c, 123)
    assert noise.smooth(7, c, 1234.5, 60.0) == noise.smooth(7, c, 1234.5, 60.0)
    firsts = {noise.uniform(seed, c, 123) for seed in range(100)}
    assert len(firsts) == 100
    assert noise.smooth(1, c, 1234.5, 60.0) != noise.smooth(2, c, 1234.5, 60.0)
    assert noise.uniform(7, c, 123) != noise.uniform(7, noise.channel_id("pm10"), 123)


@given(
    seed=st.integers(), channel=st.integers(min_value=0, max_value=2**64 - 1), step=st.integers()
)
def test_uniform_is_in_unit_interval_and_normal_is_finite(
    seed: int, channel: int, step: int
) -> None:
    assert 0.0 <= noise.uniform(seed, channel, step) < 1.0
    z = noise.normal(seed, channel, step)
    assert math.isfinite(z)
    assert abs(z) < 7.0


def test_normal_and_smooth_have_unit_variance() -> None:
    c = noise.channel_id("test")
    z = [noise.normal(3, c, k) for k in range(20_000)]
    assert abs(statistics.fmean(z)) < 0.03
    assert abs(statistics.pstdev(z) - 1.0) < 0.03
    # Between knots as well as on them (the renormalised blend).
    s = [noise.smooth(3, c, k * 0.37, 1.0) for k in range(20_000)]
    assert abs(statistics.fmean(s)) < 0.05
    assert abs(statistics.pstdev(s) - 1.0) < 0.05


def test_smooth_noise_is_continuous_and_decorrelates() -> None:
    c = noise.channel_id("smooth")
    scale = 100.0
    for t in (0.0, 37.5, 99.999, 100.0, 12_345.678, -250.0):
        assert abs(noise.smooth(1, c, t + 0.01, scale) - noise.smooth(1, c, t, scale)) < 0.01
    near = [
        (noise.smooth(1, c, k * 250.0, scale), noise.smooth(1, c, k * 250.0 + 5.0, scale))
        for k in range(2000)
    ]
    far = [
        (noise.smooth(1, c, k * 250.0, scale), noise.smooth(1, c, k * 250.0 + 210.0, scale))
        for k in range(2000)
    ]
    assert statistics.correlation(*zip(*near, strict=True)) > 0.9
    assert abs(statistics.correlation(*zip(*far, strict=True))) < 0.1


def test_values_do_not_depend_on_what_was_sampled_before() -> None:
    model = AirModel(AirParams(traffic=0.8, haze=True), seed=5)
    t = at(2024, 1, 10, 8)
    first = model.at(t)
    for k in range(100):
        model.at(t - k * 7919)
    assert model.at(t) == first
    assert AirModel(AirParams(traffic=0.8, haze=True), seed=5).at(t) == first
    assert AirModel(AirParams(traffic=0.8, haze=True), seed=6).at(t) != first


def test_smooth_refuses_a_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        noise.smooth(0, 0, 1.0, 0.0)


# -- time helpers ---------------------------------------------------------------------------------


def test_local_time_is_utc_plus_8() -> None:
    assert local_hour(at(2024, 7, 1, 15)) == 15.0
    assert local_hour(0) == 8.0  # 1970-01-01T00:00Z is 08:00 in Suzhou
    assert is_daytime(6.0)
    assert is_daytime(21.99)
    assert not is_daytime(22.0)
    assert not is_daytime(5.99)
    assert abs(day_of_year(at(2024, 1, 1, 12)) - 0.5) < 1.5
    assert season(at(2024, 7, 19)) > 0.99
    assert season(at(2024, 1, 18)) < -0.99


def test_asymmetric_cycle_hits_its_extremes_at_the_given_hours() -> None:
    assert asymmetric_cycle(6.0, 6.0, 16.0) == pytest.approx(-1.0)
    assert asymmetric_cycle(16.0, 6.0, 16.0) == pytest.approx(1.0)
    values = [asymmetric_cycle(h / 10, 6.0, 16.0) for h in range(240)]
    assert all(-1.0 <= v <= 1.0 for v in values)


# -- bounds everywhere -------------------------------------------------------------------------


class Values(Protocol):
    def pairs(self) -> tuple[tuple[Quantity, float], ...]: ...


class Model(Protocol):
    def at(self, t_ms: int) -> Values: ...


def families(seed: int) -> dict[str, Model]:
    models: dict[str, Model] = {
        "air": AirModel(AirParams(1.0, True), seed),
        "met": MetModel(seed),
        "odour": OdourModel(OdourParams(90.0, 5.0), seed),
        "lake": WaterModel(WaterParams("lake", 1.0), seed),
        "river": WaterModel(WaterParams("river", 0.0), seed),
    }
    for zone in ZONES:
        models[f"noise-{zone}"] = NoiseModel(NoiseParams(zone), seed)
    return models


def assert_in_bounds(pairs: Iterable[tuple[Quantity, float]]) -> None:
    for quantity, value in pairs:
        spec = SPECS[quantity]
        assert math.isfinite(value), quantity
        assert spec.lower <= value <= spec.upper, (quantity, value)


def test_sixty_days_every_ten_minutes_stay_in_bounds() -> None:
    for name, model in families(seed=11).items():
        step = 10 * MINUTE if not name.startswith("noise") else 37 * MINUTE
        for t in span(at(2024, 6, 15), 60, step):
            assert_in_bounds(model.at(t).pairs())


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, t_ms=EPOCH_MS)
def test_any_seed_and_time_stays_in_bounds(seed: int, t_ms: int) -> None:
    for model in families(seed).values():
        assert_in_bounds(model.at(t_ms).pairs())


# -- air ------------------------------------------------------------------------------------------


def test_ozone_peaks_in_the_afternoon_and_in_summer() -> None:
    model = AirModel(AirParams(traffic=0.3), seed=1)
    summer = [(t, model.at(t).o3) for t in span(SUMMER, 60, 20 * MINUTE)]
    afternoon = mean_at_hours(summer, {14, 15})
    night = mean_at_hours(summer, {0, 1, 2, 3})
    assert afternoon > 2.5 * night
    winter = [(t, model.at(t).o3) for t in span(WINTER, 60, 20 * MINUTE)]
    assert afternoon > 1.5 * mean_at_hours(winter, {14, 15})


def test_traffic_site_pm_peaks_at_the_morning_rush() -> None:
    model = AirModel(AirParams(traffic=1.0), seed=2)
    values = [(t, model.at(t).pm2_5) for t in span(WINTER, 60, 20 * MINUTE)]
    assert mean_at_hours(values, {8}) > 1.3 * mean_at_hours(values, {3})
    park = AirModel(AirParams(traffic=0.0), seed=2)
    quiet = [(t, park.at(t).pm2_5) for t in span(WINTER, 60, 20 * MINUTE)]
    assert mean_at_hours(values, {8}) > 1.5 * mean_at_hours(quiet, {8})


def test_pm10_co_and_no2_are_plausible() -> None:
    model = AirModel(AirParams(traffic=0.7), seed=3)
    values = [model.at(t) for t in span(WINTER, 30, 30 * MINUTE)]
    assert all(1.4 <= v.pm10 / v.pm2_5 <= 2.0 for v in values)
    assert 0.3 <= statistics.median(v.co for v in values) <= 2.0
    assert statistics.median(v.so2 for v in values) < 20.0
    rush = [
        v.no2 for t, v in zip(span(WINTER, 30, 30 * MINUTE), values, strict=True) if hour_of(t) == 8
    ]
    night = [
        v.no2 for t, v in zip(span(WINTER, 30, 30 * MINUTE), values, strict=True) if hour_of(t) == 3
    ]
    assert statistics.fmean(rush) > statistics.fmean(night)


@pytest.mark.parametrize("seed", range(5))
def test_haze_sites_see_haze_days_in_winter(seed: int) -> None:
    hazy = AirModel(AirParams(traffic=0.5, haze=True), seed)
    clean = AirModel(AirParams(traffic=0.5, haze=False), seed)
    times = span(WINTER, 60, HOUR)
    hazy_days = daily_means((t, hazy.at(t).pm2_5) for t in times)
    clean_days = daily_means((t, clean.at(t).pm2_5) for t in times)
    # Above the 2012 Grade II 24-h PM2.5 limit of 75 µg/m³ (docs/standards.md §1.1).
    assert max(hazy_days) > 75.0
    assert sum(d > 75 for d in hazy_days) > sum(d > 75 for d in clean_days)
    # Haze episodes last days: the most polluted day has polluted neighbours.
    worst = hazy_days.index(max(hazy_days))
    neighbours = hazy_days[max(0, worst - 1) : worst + 2]
    assert sum(d > 60 for d in neighbours) >= 2


# -- met ----------------------------------------------------------------------------------------


def test_temperature_peaks_mid_afternoon_and_rh_is_anticorrelated() -> None:
    model = MetModel(seed=4)
    times = list(span(at(2024, 4, 1), 60, 20 * MINUTE))
    values = [model.at(t) for t in times]
    by_hour = {
        h: mean_at_hours(((t, v.air_temp) for t, v in zip(times, values, strict=True)), {h})
        for h in range(24)
    }
    assert max(by_hour, key=by_hour.__getitem__) in {14, 15, 16}
    assert min(by_hour, key=by_hour.__getitem__) in {4, 5, 6}
    assert statistics.correlation([v.air_temp for v in values], [v.rh for v in values]) < -0.2
    assert all(990 <= v.pressure <= 1040 for v in values)
    july = statistics.fmean(model.at(t).air_temp for t in span(at(2024, 7, 1), 31, 3 * HOUR))
    january = statistics.fmean(model.at(t).air_temp for t in span(at(2024, 1, 1), 31, 3 * HOUR))
    assert 24 < july < 33
    assert -2 < january < 9


# -- noise --------------------------------------------------------------------------------------


def _period_levels(zone: Zone, seed: int) -> tuple[float, float, list[float]]:
    model = NoiseModel(NoiseParams(zone), seed)
    day: list[float] = []
    night: list[float] = []
    hourly: dict[int, list[float]] = {}
    for t in span(at(2024, 5, 6), 3, 9_000):
        level = model.at(t).laeq
        (day if is_daytime(local_hour(t)) else night).append(level)
        if is_daytime(local_hour(t)):
            hourly.setdefault(t // HOUR, []).append(level)
    return energy_mean_db(day), energy_mean_db(night), [energy_mean_db(v) for v in hourly.values()]


@pytest.mark.parametrize("zone", ZONES)
def test_noise_day_and_night_follow_the_zone_limits(zone: Zone) -> None:
    limits = ZONE_PROFILES[zone]
    day, night, _ = _period_levels(zone, seed=6)
    # L_d and L_n are energy means (docs/standards.md §3.3); the site sits just under its limits.
    assert limits.day_limit - 4.5 < day < limits.day_limit + 1.0
    assert limits.night_limit - 4.5 < night < limits.night_limit + 1.0
    expected_gap = limits.day_limit - limits.night_limit
    assert abs((day - night) - expected_gap) < 2.0


def test_a_4a_road_site_sometimes_exceeds_its_day_limit() -> None:
    day, _, hourly = _period_levels("4a", seed=7)
    assert 68.0 < day < 71.0  # GB 3096-2008 Table 1: zone 4a day limit 70 dB(A)
    assert any(level > 70.0 for level in hourly)
    assert sum(level > 70.0 for level in hourly) < len(hourly) / 2


def test_pass_by_events_put_lamax_well_above_laeq() -> None:
    model = NoiseModel(NoiseParams("4a"), seed=8)
    minute_gaps = []
    for start in span(at(2024, 5, 6, 9), 0.25, MINUTE):
        samples = [model.at(t) for t in range(start, start + MINUTE, 1000)]
        assert all(s.lamax >= s.laeq for s in samples)
        leq = energy_mean_db(s.laeq for s in samples)
        minute_gaps.append(max(s.lamax for s in samples) - leq)
    assert statistics.median(minute_gaps) > 5.0


# -- odour --------------------------------------------------------------------------------------


def test_the_plume_arrives_only_when_the_wind_blows_from_the_source() -> None:
    params = OdourParams(source_bearing_deg=270.0, source_strength=1.0)
    model = OdourModel(params, seed=9)
    wind = WindModel(seed=9)
    aligned: list[float] = []
    away: list[float] = []
    for t in span(at(2024, 3, 1), 60, 10 * MINUTE):
        delta = abs(angle_diff_deg(wind.direction_deg(t), 270.0))
        value = model.at(t)
        if delta < 10:
            aligned.append(value.h2s)
        elif delta > 60:
            away.append(value.h2s)
            # Background is well under the GB 14554-93 Grade II limits (docs/standards.md §4.1).
            assert value.h2s < 10.0
            assert value.nh3 < 100.0
            assert value.odour < 10.0
    assert len(aligned) > 50
    assert statistics.fmean(aligned) > 10 * statistics.fmean(away)


def test_odour_tracks_h2s_and_plumes_can_cross_the_limits() -> None:
    model = OdourModel(OdourParams(source_bearing_deg=180.0, source_strength=2.0), seed=10)
    values = [model.at(t) for t in span(at(2024, 1, 1), 120, 10 * MINUTE)]
    assert statistics.correlation([v.h2s for v in values], [v.odour for v in values]) > 0.8
    assert any(v.h2s > 60.0 for v in values)
    assert any(v.odour > 20.0 for v in values)
    assert statistics.median(v.h2s for v in values) < 10.0


def test_angle_difference_wraps() -> None:
    assert angle_diff_deg(350.0, 10.0) == pytest.approx(-20.0)
    assert angle_diff_deg(10.0, 350.0) == pytest.approx(20.0)
    assert angle_diff_deg(180.0, 0.0) == pytest.approx(180.0)


# -- water --------------------------------------------------------------------------------------


def test_dissolved_oxygen_peaks_in_the_afternoon_and_bottoms_at_dawn() -> None:
    model = WaterModel(WaterParams("lake", 0.6), seed=12)
    times = span(SUMMER, 60, 20 * MINUTE)
    do = [(t, model.at(t).do) for t in times]
    ph = [(t, model.at(t).ph) for t in times]
    assert mean_at_hours(do, {15, 16, 17}) > mean_at_hours(do, {5, 6, 7}) + 1.0
    assert mean_at_hours(ph, {15, 16, 17}) > mean_at_hours(ph, {5, 6, 7})
    assert do_saturation(20.0) == pytest.approx(9.09, abs=0.01)


def test_chlorophyll_rises_in_warm_spells_to_the_who_levels() -> None:
    seed = 13
    model = WaterModel(WaterParams("lake", 0.6), seed)
    warm: list[float] = []
    cool: list[float] = []
    for t in span(at(2024, 6, 1), 92, 2 * HOUR):
        anomaly = warm_anomaly_c(seed, t)
        value = model.at(t)
        assert value.phycocyanin > 0.3 * value.chl_a  # cyanobacteria dominate in summer
        if anomaly > 1.5:
            warm.append(value.chl_a)
        elif anomaly < -1.5:
            cool.append(value.chl_a)
    assert warm
    assert cool
    assert statistics.fmean(warm) > 1.5 * statistics.fmean(cool)
    # WHO 1999/2003 recreational levels (docs/standards.md §6.1): a summer warm spell on a
    # Taihu-like lake passes 50 µg/L; its ordinary summer sits above 10.
    assert max(warm) > 50.0
    assert statistics.median(warm + cool) > 10.0
    winter = [model.at(t).chl_a for t in span(WINTER, 30, 6 * HOUR)]
    assert statistics.median(winter) < 10.0


def test_lake_and_river_nutrients_sit_in_their_ranges() -> None:
    lake = WaterModel(WaterParams("lake", 0.6), seed=14)
    river = WaterModel(WaterParams("river", 0.6), seed=14)
    times = span(at(2024, 1, 1), 365, 12 * HOUR)
    lake_values = [lake.at(t) for t in times]
    river_values = [river.at(t) for t in times]
    assert 0.05 <= statistics.median(v.tp for v in lake_values) <= 0.15
    assert 1.0 <= statistics.median(v.tn for v in lake_values) <= 3.0
    assert statistics.median(v.tp for v in river_values) > statistics.median(
        v.tp for v in lake_values
    )
    assert statistics.median(v.nh3_n for v in river_values) > statistics.median(
        v.nh3_n for v in lake_values
    )
    assert all(0.5 < v.water_temp < 36 for v in lake_values)


# -- episodes and clipping ------------------------------------------------------------------------


def test_episode_is_a_trapezoid_relative_to_its_origin() -> None:
    origin = at(2024, 5, 1)
    episode = Episode("h2s", start_s=30, duration_s=600, peak=150.0, ramp_s=120)
    assert episode.offset(origin, origin) == 0.0
    assert episode.offset(origin, origin + 29_999) == 0.0
    assert episode.offset(origin, origin + 30_000) == 0.0
    assert episode.offset(origin, origin + 90_000) == pytest.approx(75.0)
    assert episode.offset(origin, origin + 150_000) == pytest.approx(150.0)
    assert episode.offset(origin, origin + 400_000) == pytest.approx(150.0)
    assert episode.offset(origin, origin + 570_000) == pytest.approx(75.0)
    assert episode.offset(origin, origin + 630_000) == 0.0
    step = Episode("laeq", start_s=0, duration_s=10, peak=12.0)
    assert step.offset(0, 0) == 12.0
    assert step.offset(0, 9_999) == 12.0
    assert step.offset(0, 10_000) == 0.0


def test_episode_offsets_sum_per_quantity() -> None:
    episodes = [
        Episode("pm2_5", 0, 100, 50.0),
        Episode("pm2_5", 50, 100, 25.0),
        Episode("o3", 0, 100, 1000.0),
    ]
    assert episode_offset(episodes, "pm2_5", 0, 75_000) == 75.0
    assert episode_offset(episodes, "pm2_5", 0, 125_000) == 25.0
    assert episode_offset(episodes, "no2", 0, 75_000) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 0}, "duration_s"),
        ({"ramp_s": -1}, "ramp_s"),
        ({"ramp_s": 60}, "ramp_s"),
        ({"peak": math.nan}, "finite"),
        ({"quantity": "pm1"}, "quantity"),
    ],
)
def test_bad_episodes_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"quantity": "pm2_5", "start_s": 0, "duration_s": 100, "peak": 10.0}
    with pytest.raises(ValueError, match=message):
        Episode(**{**base, **kwargs})  # type: ignore[arg-type]


def test_clip_is_a_last_guard_on_the_spec_bounds() -> None:
    assert clip("do", -3.0) == 0.0
    assert clip("rh", 104.0) == 100.0
    assert clip("pm2_5", 35.0) == 35.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: AirParams(traffic=1.5), "traffic"),
        (lambda: NoiseParams(zone="5"), "zone"),  # type: ignore[arg-type]
        (lambda: OdourParams(plume_width_deg=0.0), "plume_width_deg"),
        (lambda: OdourParams(source_strength=-1.0), "source_strength"),
        (lambda: WaterParams(body="sea"), "body"),  # type: ignore[arg-type]
        (lambda: WaterParams(trophic=2.0), "trophic"),
    ],
)
def test_bad_model_parameters_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
