"""Settings declared once (issue 10 item 5): the sections of agg.toml are the parts' own
structs, so what a part receives is the section itself, and each section checks its own
cross-field rules while the file is read."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from aggregator.config import load_aggregator_config
from aggregator.engine.event_time import EventTime
from aggregator.engine.settings import EngineSettings
from aggregator.worker.protocol import WorkerSettings
from schemas.runtime.configfile import ConfigError


def test_the_worker_is_started_with_the_engines_keys_alone() -> None:
    """[alerts] is the engine's settings plus what the service alone reads (webhooks,
    adoption); the worker is handed the engine's part, as an EngineSettings, so that
    unpickling it needs none of the service's settings modules (and their I/O clients)."""
    alerts = load_aggregator_config(
        None, environ={"ENVNET_ALERTMANAGER_URL": "http://am:9093"}
    ).alerts
    alerts = msgspec.structs.replace(alerts, aqi_alert_level=4, adopt_lookback_h=0)
    config = msgspec.structs.replace(load_aggregator_config(None, environ={}), alerts=alerts)
    settings = pickle.loads(pickle.dumps(config.worker_settings()))
    assert type(settings) is WorkerSettings
    assert type(settings.engine) is EngineSettings
    assert msgspec.structs.asdict(settings.engine) == {
        name: getattr(alerts, name) for name in EngineSettings.__struct_fields__
    }
    assert settings.engine.aqi_alert_level == 4
    assert settings.replica == config.cluster.parsed()


def test_the_worker_process_imports_no_network_client_nor_registry() -> None:
    """The worker does no network I/O (aggregator.worker.process): an import of aiohttp,
    asyncio, an MQTT client or prometheus_client there costs it 2 to 20 MiB resident for
    nothing (bench/README.md, "Memory")."""
    heavy = ("aiohttp", "asyncio", "aiomqtt", "paho", "prometheus_client", "ssl")
    code = (
        "import sys, aggregator.worker.process, aggregator.worker.__main__\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert [m for m in heavy if m in out] == []


def test_secrets_stay_out_of_the_targets_repr() -> None:
    env = {
        "ENVNET_INFLUX_TOKEN": "t0ps3cret",
        "ENVNET_INFLUX_BUCKET": "b",
        "ENVNET_INFLUX_ORG": "o",
    }
    influx = load_aggregator_config(None, environ=env).influx
    assert influx.token == "t0ps3cret"
    assert "t0ps3cret" not in repr(influx) and "t0ps3cret" not in repr(influx.target())


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[alerts]\nday_starts_h = 7\nnight_starts_h = 7\n", "must differ"),
        ('[mqtt]\nurl = "ftp://x"\n', "mqtt.url"),
        ('[influx]\nurl = "ftp://x"\n', "influx.url must be http"),
        ('[influx]\nbucket = "b"\n', "v2 API needs"),
        ("[alerts.liveness]\nsilence_periods = 0.5\n", "silence_periods must be >= 1"),
        ("[alerts.windows]\nmin_mda8_windows = 20\n", "min_mda8_windows"),
    ],
)
def test_each_section_checks_its_own_rules(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "agg.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as raised:
        load_aggregator_config(path, environ={})
    assert str(path) in str(raised.value)


def test_the_shared_clock_is_one_object_in_every_part() -> None:
    from aggregator.engine.evaluator import Evaluator

    alerts = load_aggregator_config(None, environ={}).alerts
    evaluator = Evaluator.of(alerts)
    assert isinstance(alerts, EventTime)
    assert evaluator.windows.time is alerts
