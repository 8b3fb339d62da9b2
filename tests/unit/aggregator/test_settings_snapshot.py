"""Every setting the engine and the service parts receive, from deploy/config/agg.toml and from
the bare defaults, equals a snapshot taken before the settings were declared once (issue 10
item 5): moving a declaration must not move a value.

`received` names each value by the part that uses it and the name it had there; how the parts
get them may change, the names and values in tests/unit/aggregator/data/settings_snapshot.json
may not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aggregator.config import AggregatorConfig, AlertsSection, load_aggregator_config
from aggregator.engine.evaluator import Evaluator
from aggregator.engine.lifecycle import AlertBook, LifecyclePolicy
from aggregator.engine.liveness import SEVERITY as LIVENESS_SEVERITY
from aggregator.engine.liveness import Liveness
from aggregator.engine.rules.air import AQI_ROUNDING
from aggregator.engine.rules.point import WATER_MAX_AGE_MS
from aggregator.engine.sensor_health import HIGH_RH_QUANTITIES
from aggregator.engine.sensor_health import SEVERITY as HEALTH_SEVERITY
from aggregator.worker.event_clock import EventClock

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = Path(__file__).parent / "data" / "settings_snapshot.json"
HOOK = """
[[alerts.webhooks]]
url = "https://hooks.example/envnet"
token_env = "HOOK_TOKEN"
max_attempts = 3
include_late = true

[alerts.health.plausible.pm2_5]
lower = 0
upper = 800

[alerts.health.flatline.no2]
epsilon = 0.1
min_readings = 5
min_duration_s = 600
exempt_at_or_below = 2

[alerts.health.max_rate_per_s]
pm10 = 50

[[alerts.bloom.phycocyanin]]
name = "watch"
ug_l = 20
severity = "info"
"""


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe builtins; infinities as strings (json cannot hold them portably)."""
    built = msgspec.to_builtins(value, builtin_types=())
    plain: dict[str, Any] = json.loads(
        json.dumps(built, default=str, allow_nan=True), parse_constant=str
    )
    return plain


def _engine(a: AlertsSection) -> dict[str, Any]:
    """What the worker's engine parts hold, built as the worker builds them."""
    ev = Evaluator.of(a)
    s = ev._s
    windows, time = ev.windows.settings, ev.windows.time
    window_keys = set(msgspec.structs.asdict(windows)) - {"max_future_s", "close_after_s"}
    liveness = Liveness(a.liveness).settings
    policies = AlertBook(a.lifecycle.table())._policies
    return {
        "windows": {
            **{k: getattr(windows, k) for k in window_keys},
            "utc_offset_h": time.utc_offset_h,
            "day_starts_h": time.day_starts_h,
            "night_starts_h": time.night_starts_h,
        },
        "health": {
            **msgspec.structs.asdict(ev.health.settings),
            "high_rh_quantities": HIGH_RH_QUANTITIES,
            "severity": HEALTH_SEVERITY,
        },
        "liveness": {
            **{
                k: v for k, v in msgspec.structs.asdict(liveness).items() if k != "check_interval_s"
            },
            "severity": LIVENESS_SEVERITY,
            # The worker hands alerts.late_after_s to liveness.history_verdict.
            "history_after_s": float(a.late_after_s),
        },
        "rules": {
            "air": {
                "edition": s.air_edition,
                "utc_offset_h": s.utc_offset_h,
                "hysteresis_fraction": s.hysteresis.fraction,
                "aqi_points": s.hysteresis.aqi_points,
                "aqi_alert_level": s.aqi_alert_level,
                "aqi_alert_reports": s.aqi_alert_reports,
                "aqi_rounding": AQI_ROUNDING,
            },
            "noise": {
                "utc_offset_h": s.utc_offset_h,
                "day_starts_h": s.day_starts_h,
                "night_starts_h": s.night_starts_h,
                "hysteresis_db": s.hysteresis.noise_db,
            },
            "point": {
                "hysteresis_fraction": s.hysteresis.fraction,
                "phycocyanin": s.bloom.phycocyanin,
                "phycocyanin_source": s.bloom.phycocyanin_source,
                "water_max_age_ms": WATER_MAX_AGE_MS,
            },
            "odour_window": s.odour.window,
            "late_after_ms": s.late_after_ms,
            "max_future_ms": ev._max_future_ms,
            "close_after_ms": ev.clocks.lateness_ms,
        },
        "lifecycle": {"default": policies._default, "rules": policies._by_prefix},
        "worker": {"late_after_s": a.late_after_s},
    }


def _fields(struct: Any, names: str) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in names.split()}


def received(config: AggregatorConfig, environ: dict[str, str]) -> dict[str, Any]:
    """What each part receives: the engine's, and the service's sections as it hands them
    on (config.influx to storage, config.mqtt to the MQTT sessions, config.metrics as the
    /healthz limits, each webhook entry with its token from the environment)."""
    influx, mqtt, metrics = config.influx, config.mqtt, config.metrics
    target = "url database retention_policy create_duration username password org bucket"
    session = "client_id keepalive_s ca_file reconnect_initial_s reconnect_cap_s return_home_s"
    batching = "batch_readings linger_s max_inflight max_buffered_readings"
    limits = "storage_failing_after_s worker_failing_after_s broker_failing_after_s"
    return _plain(
        {
            **_engine(config.alerts),
            "influx": {
                **_fields(influx, target + " token gzip timeout_s"),
                "api": influx.resolved_api(),
            },
            "session": {**_fields(mqtt, session), "endpoint": mqtt.endpoint()},
            "session.endpoint": mqtt.endpoint(),
            # Every broker the sessions rotate through (the first is session.endpoint).
            "session.endpoints": mqtt.endpoints(),
            "subscriber": _fields(
                mqtt, "read_buffer_messages read_buffer_bytes pause_after_s max_payload_bytes"
            ),
            "pipeline": _fields(influx, batching + " retry_initial_s retry_cap_s"),
            "health_limits": _fields(metrics, limits),
            "webhooks": [
                {
                    **{k: v for k, v in msgspec.structs.asdict(h).items() if k != "token_env"},
                    "token": h.token(environ),
                }
                for h in config.alerts.webhooks
            ],
            "state": config.state,
            "metrics": _fields(metrics, "host port"),
            "fleet": config.fleet,
            "calibration": config.calibration,
            # The alert logic's clock, as the service and the worker build it.
            "clock": EventClock(config.clock).settings,
        }
    )


def _sources(tmp_path: Path) -> dict[str, AggregatorConfig]:
    shipped = ROOT / "deploy" / "config" / "agg.toml"
    hooked = tmp_path / "hooked.toml"
    hooked.write_text(shipped.read_text() + HOOK)
    return {
        "deploy/config/agg.toml": load_aggregator_config(shipped, environ={}),
        "defaults": load_aggregator_config(None, environ={}),
        "agg.toml with a webhook and overrides": load_aggregator_config(hooked, environ={}),
    }


def test_every_setting_equals_the_snapshot(tmp_path: Path) -> None:
    environ = {"HOOK_TOKEN": "secret"}
    now = {name: received(c, environ) for name, c in _sources(tmp_path).items()}
    if os.environ.get("ENVNET_WRITE_SETTINGS_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text(), parse_constant=str)
    assert now == expected


def test_the_snapshot_sees_a_changed_setting(tmp_path: Path) -> None:
    """The comparison can fail: one changed default shows."""
    config = load_aggregator_config(None, environ={})
    changed = msgspec.structs.replace(
        config,
        alerts=msgspec.structs.replace(
            config.alerts,
            lifecycle=msgspec.structs.replace(
                config.alerts.lifecycle, default=LifecyclePolicy(renotify_s=60)
            ),
        ),
    )
    assert received(changed, {}) != received(config, {})


@pytest.mark.parametrize("name", ["windows", "health", "liveness", "rules", "influx", "session"])
def test_the_snapshot_holds_each_part(name: str) -> None:
    snapshot = json.loads(SNAPSHOT.read_text(), parse_constant=str)
    assert snapshot["defaults"][name]
