"""agg.toml's [alerts] sections turned into the standards engine's own settings objects.

The engine's modules take plain frozen settings (and validate them at construction); this is
the one place that knows how the configuration file spells them.
"""

from __future__ import annotations

from aggregator.config import AlertsSection
from aggregator.engine.evaluator import Evaluator, RuleSettings
from aggregator.engine.lifecycle import AlertBook, PolicyTable
from aggregator.engine.liveness import Liveness, LivenessSettings
from aggregator.engine.rules.air import AirSettings
from aggregator.engine.rules.noise import NoiseSettings
from aggregator.engine.rules.point import BloomLevel, PointSettings
from aggregator.engine.sensor_health import (
    FlatlineLimit,
    HealthMonitor,
    HealthSettings,
    PlausibleRange,
)
from aggregator.engine.windows import WindowEngine, WindowSettings


def window_settings(a: AlertsSection) -> WindowSettings:
    w = a.windows
    return WindowSettings(
        utc_offset_h=a.utc_offset_h,
        min_hour_coverage_s=w.min_hour_coverage_s,
        min_daily_hours=w.min_daily_hours,
        min_8h_hours=w.min_8h_hours,
        mda8_first_end_hour=w.mda8_first_end_hour,
        mda8_last_end_hour=w.mda8_last_end_hour,
        min_mda8_windows=w.min_mda8_windows,
        day_starts_h=a.day_starts_h,
        night_starts_h=a.night_starts_h,
        min_day_hours=w.min_day_hours,
        min_night_hours=w.min_night_hours,
        late_horizon_h=w.late_horizon_h,
    )


def health_settings(a: AlertsSection) -> HealthSettings:
    h = a.health
    return HealthSettings(
        plausible={q: PlausibleRange(r.lower, r.upper) for q, r in h.plausible.items()},
        flatline={
            q: FlatlineLimit(
                f.epsilon,
                f.min_readings,
                f.min_duration_s,
                f.exempt_at_or_below,
                f.exempt_at_or_above,
            )
            for q, f in h.flatline.items()
        },
        max_rate_per_s=dict(h.max_rate_per_s),
        high_rh_pct=h.high_rh_pct,
        high_rh_hysteresis_pct=h.high_rh_hysteresis_pct,
        rh_max_age_s=h.rh_max_age_s,
    )


def liveness_settings(a: AlertsSection) -> LivenessSettings:
    v = a.liveness
    return LivenessSettings(
        node_silence_s=v.node_silence_s,
        quantity_silence_s=v.quantity_silence_s,
        silence_periods=v.silence_periods,
        status_is_heartbeat=v.status_is_heartbeat,
        history_after_s=float(a.late_after_s),
    )


def rule_settings(a: AlertsSection) -> RuleSettings:
    hysteresis = a.hysteresis
    return RuleSettings(
        air=AirSettings(
            edition=a.air_edition,
            utc_offset_h=a.utc_offset_h,
            hysteresis_fraction=hysteresis.fraction,
            aqi_points=hysteresis.aqi_points,
            aqi_alert_level=a.aqi_alert_level,
            aqi_alert_reports=tuple(a.aqi_alert_reports),
        ),
        noise=NoiseSettings(
            utc_offset_h=a.utc_offset_h,
            day_starts_h=a.day_starts_h,
            night_starts_h=a.night_starts_h,
            hysteresis_db=hysteresis.noise_db,
        ),
        point=PointSettings(
            hysteresis_fraction=hysteresis.fraction,
            phycocyanin=tuple(BloomLevel(b.name, b.ug_l, b.severity) for b in a.bloom.phycocyanin),
            phycocyanin_source=a.bloom.phycocyanin_source,
        ),
        odour_window=a.odour.window,
        late_after_ms=a.late_after_s * 1000,
        max_future_ms=a.windows.max_future_s * 1000,
        close_after_ms=a.windows.close_after_s * 1000,
    )


def evaluator(a: AlertsSection) -> Evaluator:
    return Evaluator(
        rule_settings(a), WindowEngine(window_settings(a)), HealthMonitor(health_settings(a))
    )


def liveness(a: AlertsSection) -> Liveness:
    return Liveness(liveness_settings(a))


def alert_book(a: AlertsSection) -> AlertBook:
    policies = PolicyTable(a.lifecycle.default, a.lifecycle.rules)
    return AlertBook(policies)
