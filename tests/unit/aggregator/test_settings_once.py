"""Settings declared once (issue 10 item 5): the sections of agg.toml are the parts' own
structs, so what a part receives is the section itself, and each section checks its own
cross-field rules while the file is read."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from aggregator.config import load_aggregator_config
from aggregator.engine.event_time import EventTime
from aggregator.storage.influx import InfluxTarget
from aggregator.worker import process
from schemas.runtime.configfile import ConfigError


def test_the_influx_section_reaches_the_worker_as_a_bare_target() -> None:
    """[influx] is the pipeline's settings, which extend InfluxTarget; the worker's message
    decoder forbids unknown fields, so warm start sends the target alone."""
    influx = load_aggregator_config(None, environ={}).influx
    request = process._REQUEST.decode(process._ENCODER.encode(process.Warm(influx.target())))
    assert isinstance(request, process.Warm)
    assert type(request.target) is InfluxTarget
    assert msgspec.structs.asdict(request.target) == {
        name: getattr(influx, name) for name in InfluxTarget.__struct_fields__
    }
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        process._REQUEST.decode(process._ENCODER.encode(process.Warm(influx)))


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
