"""`envnet sim replay-csv` replays the real Beijing data through a real edge agent, broker and
aggregator into InfluxDB, with CO converted from the file's ug/m3 to mg/m3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.fleet import Fleet, NodeInfo
from simulators.local_stack import Influxd, Mosquitto, influx_query
from tests.support.harness import aggregator_config, count, running_aggregator

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CSV = DATA / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"


@pytest.mark.skipif(not CSV.exists(), reason=f"shared data not found at {CSV}")
def test_replay_of_the_march_2013_haze(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    fleet = Fleet({"bj-aoti": NodeInfo(site="Beijing Aotizhongxin", air_zone=2)})
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    with running_aggregator(config, fleet):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "envnet.cli",
                "sim",
                "replay-csv",
                str(CSV),
                "--node",
                "bj-aoti",
                "--from",
                "2013-03-05",
                "--to",
                "2013-03-08",
                "--speed",
                "720000",
                "--journal",
                str(tmp_path / "replay.sqlite"),
            ],
            env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    # 4 days x 24 h; the file has no NA in these days for PM2.5.
    assert count(influxd, "SELECT count(value) FROM readings WHERE quantity='pm2_5'") == 96
    co = influx_query(influxd.url, "SELECT max(value) FROM readings WHERE quantity='co'", "envnet")
    co_max = co["results"][0]["series"][0]["values"][0][1]  # type: ignore[index]
    assert 1 < co_max < 30, "CO must be in mg/m3, not the file's ug/m3"
    pm = influx_query(
        influxd.url, "SELECT max(value) FROM readings WHERE quantity='pm2_5'", "envnet"
    )
    assert pm["results"][0]["series"][0]["values"][0][1] > 300  # type: ignore[index]
    first = influx_query(influxd.url, "SELECT first(value) FROM readings", "envnet")
    # 2013-03-05 00:00 Beijing time is 2013-03-04 16:00 UTC.
    assert first["results"][0]["series"][0]["values"][0][0] == 1362412800000  # type: ignore[index]
    flags = influx_query(
        influxd.url, "SELECT count(flags) FROM readings WHERE flags='replayed'", "envnet"
    )
    assert flags["results"][0]["series"][0]["values"][0][1] > 0  # type: ignore[index]
