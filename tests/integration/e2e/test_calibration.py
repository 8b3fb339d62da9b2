"""Calibration end to end (issue #4), on real mosquitto and influxd.

1. A node's readings carry sensor serials. The aggregator stores the calibrated value with
   the sensor's raw value and the record's version; a serial without a record is stored with
   its serial only; a calibration that leaves the physical bounds keeps the raw value; a
   reading without a serial is stored exactly as before. The standards judge the calibrated
   value: a raw H2S reading under the GB 14554-93 limit fires once calibrated above it.
2. The calibration file changes (a new version valid from the past, a record removed), and
   `envnet calibration apply` rewrites history: InfluxDB then returns the new calibrated
   values with the same raw values, the removed record's points are back to raw, and the
   reading without a serial is untouched. A dry run writes nothing; a second run finds
   everything unchanged.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest

from aggregator.config import CalibrationSection
from aggregator.fleet import Fleet, NodeInfo
from envnet.cli import main
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from schemas.quantities import SPECS, Quantity
from simulators.local_stack import Influxd, Mosquitto, influx_query
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    publisher,
    running_aggregator,
    wait_for,
)

MIN_MS: Final = 60_000
DAY_MS: Final = 86_400_000
H2S_LIMIT: Final = 60.0  # GB 14554-93 Table 1, H2S plant boundary, Grade II new: 0.06 mg/m3
FLEET: Final = Fleet({"n1": NodeInfo(site="Calibration site", odour_grade="II-new")})

CALIBRATIONS: Final = """
[[calibration]]
serial = "PMS-1"
quantity = "pm2_5"
version = "v1"
valid_from = 2026-01-01T00:00:00+08:00
kind = "linear"
gain = 2.0
offset = 1.0

[[calibration]]
serial = "GAS-1"
quantity = "h2s"
version = "v1"
valid_from = 2026-01-01T00:00:00+08:00
kind = "linear"
gain = 2.0
offset = 1.0

[[calibration]]
serial = "MET-1"
quantity = "rh"
version = "v1"
valid_from = 2026-01-01T00:00:00+08:00
kind = "polynomial"
coefficients = [0.0, 2.0]
"""


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def recalibrated_file(switch_ms: int) -> str:
    """PMS-1 pm2_5: v1 ends and v2 (x3) begins a day before the readings; GAS-1 removed."""
    return f"""
[[calibration]]
serial = "PMS-1"
quantity = "pm2_5"
version = "v1"
valid_from = 2026-01-01T00:00:00+08:00
valid_until = {iso(switch_ms)}
kind = "linear"
gain = 2.0
offset = 1.0

[[calibration]]
serial = "PMS-1"
quantity = "pm2_5"
version = "v2"
valid_from = {iso(switch_ms)}
kind = "linear"
gain = 3.0

[[calibration]]
serial = "MET-1"
quantity = "rh"
version = "v1"
valid_from = 2026-01-01T00:00:00+08:00
kind = "polynomial"
coefficients = [0.0, 2.0]
"""


def reading(ts: int, quantity: Quantity, value: float, sensor: str, serial: str | None) -> Reading:
    spec = SPECS[quantity]
    return Reading(ts, quantity, value, spec.unit, 60, spec.default_stat, sensor, serial=serial)


def points(influxd: Influxd) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Every stored reading by (sensor, quantity, time): its fields."""
    answer = influx_query(
        influxd.url,
        'SELECT "value", "raw", "cal", "cal_rejected", "serial" FROM "readings" '
        'GROUP BY "sensor", "quantity"',
        "envnet",
    )
    found: dict[tuple[str, str, int], dict[str, Any]] = {}
    for series in answer["results"][0].get("series", []):  # type: ignore[index]
        columns = series["columns"]
        for row in series["values"]:
            fields = dict(zip(columns, row, strict=True))
            key = (series["tags"]["sensor"], series["tags"]["quantity"], fields.pop("time"))
            found[key] = {k: v for k, v in fields.items() if v is not None}
    return found


def apply(config: Path, since: int, until: int, *extra: str) -> None:
    argv = ["calibration", "apply", "--config", str(config), "--since", iso(since)]
    assert main([*argv, "--until", iso(until), *extra]) == 0


def counts_from(text: str) -> dict[str, int]:
    """`envnet calibration apply`'s table: name (15 wide), count, meaning."""
    return {line[:15].strip(): int(line[15:26]) for line in text.splitlines()[1:]}


def test_calibrated_storage_alerts_and_recalibration(
    mosquitto: Mosquitto,
    influxd: Influxd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calibrations = tmp_path / "calibrations.toml"
    calibrations.write_text(CALIBRATIONS)
    config = msgspec.structs.replace(
        aggregator_config(mosquitto, influxd.url, tmp_path),
        calibration=CalibrationSection(path=str(calibrations)),
    )
    # Event time is now (the wall clock, to the minute): the alert is live, not late.
    ts = int(time.time() * 1000) // MIN_MS * MIN_MS - MIN_MS
    readings = [
        reading(ts, "pm2_5", 10.0, "pm", "PMS-1"),  # 2 * 10 + 1 = 21
        reading(ts + MIN_MS, "pm2_5", 20.0, "pm", "PMS-1"),  # 2 * 20 + 1 = 41
        reading(ts, "pm10", 30.0, "pm", "PMS-1"),  # no record for pm10
        reading(ts, "h2s", 40.0, "gas", "GAS-1"),  # 2 * 40 + 1 = 81 > 60: fires
        reading(ts, "rh", 60.0, "met", "MET-1"),  # 2 * 60 = 120 % > 100 %: raw kept
        reading(ts, "pm2_5", 15.0, "other", None),  # no serial: as before
    ]
    message = ReadingsMessage(READINGS_SCHEMA, "n1", 1, readings)
    probe = MqttProbe(mosquitto.port, [topics.ALERT_EVENTS]).start()
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        client.publish(topics.readings("n1"), codec.READINGS.encode(message), qos=1)
        wait_for(lambda: agg.metric("envnet_readings_stored_total") == 6, 30, "stored")

        def h2s_fired() -> list[float]:
            events = [codec.ALERT_EVENT.decode(p) for p in probe.on(lambda t: True)]
            return [e.alert.value for e in events if e.alert.rule == "odour.h2s"]

        wait_for(lambda: bool(h2s_fired()), 30, "the H2S alert")
        assert h2s_fired() == [81.0] and 81.0 > H2S_LIMIT > 40.0
        assert agg.metric("envnet_calibrations_total", result="applied") == 3
        assert agg.metric("envnet_calibrations_total", result="no_record") == 1
        assert agg.metric("envnet_calibrations_total", result="out_of_bounds") == 1
        client.loop_stop()
    probe.stop()

    stored = points(influxd)
    assert stored == {
        ("pm", "pm2_5", ts): {"value": 21, "raw": 10, "cal": "v1", "serial": "PMS-1"},
        ("pm", "pm2_5", ts + MIN_MS): {"value": 41, "raw": 20, "cal": "v1", "serial": "PMS-1"},
        ("pm", "pm10", ts): {"value": 30, "serial": "PMS-1"},
        ("gas", "h2s", ts): {"value": 81, "raw": 40, "cal": "v1", "serial": "GAS-1"},
        ("met", "rh", ts): {"value": 60, "raw": 60, "cal_rejected": "v1", "serial": "MET-1"},
        ("other", "pm2_5", ts): {"value": 15},
    }

    # A new version valid from the past, and the H2S record withdrawn.
    calibrations.write_text(recalibrated_file(ts - DAY_MS))
    agg_toml = tmp_path / "agg.toml"
    agg_toml.write_text(
        f'[influx]\nurl = "{influxd.url}"\ndatabase = "envnet"\n'
        f'[calibration]\npath = "{calibrations}"\n'
    )
    capsys.readouterr()
    since, until = ts - 3_600_000, ts + 3_600_000

    apply(agg_toml, since, until, "--dry-run")
    dry = counts_from(capsys.readouterr().out)
    assert (dry["recalibrated"], dry["no calibration"], dry["out of bounds"]) == (2, 2, 1)
    assert dry["written"] == 0
    assert points(influxd) == stored

    apply(agg_toml, since, until)
    done = counts_from(capsys.readouterr().out)
    assert (done["recalibrated"], done["unchanged"], done["no calibration"]) == (2, 0, 2)
    assert (done["out of bounds"], done["skipped"], done["written"]) == (1, 0, 3)
    empty = {"cal_rejected": ""}
    assert points(influxd) == {
        ("pm", "pm2_5", ts): {"value": 30, "raw": 10, "cal": "v2", "serial": "PMS-1"} | empty,
        ("pm", "pm2_5", ts + MIN_MS): {"value": 60, "raw": 20, "cal": "v2", "serial": "PMS-1"}
        | empty,
        ("pm", "pm10", ts): {"value": 30, "serial": "PMS-1"},
        ("gas", "h2s", ts): {"value": 40, "raw": 40, "cal": "", "serial": "GAS-1"} | empty,
        ("met", "rh", ts): {"value": 60, "raw": 60, "cal_rejected": "v1", "serial": "MET-1"},
        ("other", "pm2_5", ts): {"value": 15},
    }

    apply(agg_toml, since, until)
    again = counts_from(capsys.readouterr().out)
    assert (again["recalibrated"], again["unchanged"], again["written"]) == (0, 2, 0)

    assert main(["calibration", "show", "--config", str(agg_toml), "--serial", "PMS-1"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in shown[1:]] == [
        ["PMS-1", "pm2_5", "v1"],
        ["PMS-1", "pm2_5", "v2"],
    ]
