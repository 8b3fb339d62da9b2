"""Every setting the engine and the service parts receive, from deploy/config/agg.toml and from
the bare defaults, equals a snapshot taken before the settings were declared once (issue 10
item 5): moving a declaration must not move a value.

`received` names each value by the part that uses it and the name it had there; how the parts
get them may change, the names and values in tests/data/settings_snapshot.json may not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aggregator.config import AggregatorConfig, load_aggregator_config
from aggregator.engine import settings as engine_config
from aggregator.engine.lifecycle import LifecyclePolicy
from aggregator.service import influx_target, session_settings

ROOT = Path(__file__).resolve().parents[1]
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


def _plain(value: Any) -> Any:
    """JSON-safe builtins; infinities as strings (json cannot hold them portably)."""
    built = msgspec.to_builtins(value, builtin_types=())
    return json.loads(json.dumps(built, default=str, allow_nan=True), parse_constant=str)


def received(config: AggregatorConfig, environ: dict[str, str]) -> dict[str, Any]:
    a = config.alerts
    influx = config.influx
    rules = engine_config.rule_settings(a)
    policies = engine_config.alert_book(a)._policies
    return _plain(
        {
            "windows": engine_config.window_settings(a),
            "health": engine_config.health_settings(a),
            "liveness": engine_config.liveness_settings(a),
            "rules": rules,
            "lifecycle": {
                "default": policies._default,
                "rules": policies._by_prefix,
            },
            "worker": {"late_after_s": a.late_after_s},
            "influx": influx_target(config),
            "session": session_settings(config),
            "session.endpoint": config.mqtt.endpoint(),
            "subscriber": {
                "read_buffer_messages": config.mqtt.read_buffer_messages,
                "pause_after_s": config.mqtt.pause_after_s,
                "max_payload_bytes": config.mqtt.max_payload_bytes,
            },
            "pipeline": {
                "batch_readings": influx.batch_readings,
                "linger_s": influx.linger_ms / 1000,
                "max_inflight": influx.max_inflight,
                "max_buffered_readings": influx.max_buffered_readings,
                "retry_initial_s": influx.retry_initial_s,
                "retry_cap_s": influx.retry_cap_s,
            },
            "health_limits": {
                "storage_failing_after_s": config.metrics.storage_failing_after_s,
                "worker_failing_after_s": config.metrics.worker_failing_after_s,
                "broker_failing_after_s": config.metrics.broker_failing_after_s,
            },
            "webhooks": [hook.settings(environ) for hook in a.webhooks],
            "state": config.state,
            "metrics": {"host": config.metrics.host, "port": config.metrics.port},
            "fleet": config.fleet,
            "calibration": config.calibration,
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
