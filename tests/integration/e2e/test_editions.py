"""A replayed March 2013 day is judged by GB 3095-2012 / HJ 633-2012 with the default config
(issue 9, item 4): the real edge agent (`envnet sim replay-csv`), mosquitto, aggregator and
influxd; the edition is read back from what the aggregator stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from aggregator.fleet import Fleet, NodeInfo
from simulators.local_stack import Influxd, Mosquitto, influx_query
from tests.support.harness import aggregator_config, running_aggregator, wait_for

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CSV = DATA / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"
NODE: Final = "bj-aoti-2013"
# 2013-03-05 00:00 Beijing time (UTC+8) is 2013-03-04 16:00 UTC.
MARCH_5_MS: Final = 1_362_412_800_000
WAIT_S: Final = 60.0


def rows(influxd: Influxd, query: str) -> list[dict[str, Any]]:
    answer: Any = influx_query(influxd.url, query, "envnet")
    out: list[dict[str, Any]] = []
    for series in answer["results"][0].get("series", []):
        tags = series.get("tags", {})
        out.extend(
            {**tags, **dict(zip(series["columns"], v, strict=True))} for v in series["values"]
        )
    return out


@pytest.mark.skipif(not CSV.exists(), reason=f"shared data not found at {CSV}")
def test_a_replayed_march_2013_day_is_judged_by_the_2012_editions(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    fleet = Fleet({NODE: NodeInfo(site="Beijing Aotizhongxin", air_zone=2)})
    # The default [alerts] section: air_edition = "auto".
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    assert config.alerts.air_edition == "auto"
    with running_aggregator(config, fleet):
        replay = subprocess.run(
            [sys.executable, "-m", "envnet.cli", "sim", "replay-csv", str(CSV),
             "--node", NODE, "--from", "2013-03-05", "--to", "2013-03-06",
             "--speed", "720000", "--journal", str(tmp_path / "replay.sqlite")],
            env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr[-2000:]
        # The day's PM2.5 mean is 148.9 µg/m³ (the file's 24 hourly values): above both
        # editions' limits, so the alert's limit and standard say which edition judged it.
        fired = (
            'SELECT "limit", "standard", "clause", "message" FROM alerts WHERE '
            f"\"node\" = '{NODE}' AND \"rule\" = 'air.pm2_5.24h' AND \"event\" = 'fired'"
        )
        wait_for(lambda: bool(rows(influxd, fired)), WAIT_S, "the 2013-03-05 PM2.5 alert")
        day_aqi = f'SELECT "aqi" FROM aqi WHERE "node" = \'{NODE}\' GROUP BY "edition", "report"'
        wait_for(lambda: bool(rows(influxd, day_aqi)), WAIT_S, "the 2013-03-05 daily AQI")
    (alert,) = [r for r in rows(influxd, fired) if r["time"] == MARCH_5_MS]
    # GB 3095-2012 Table 1: PM2.5 24-h Grade II 75 µg/m³ (GB 3095-2026 transition: 60).
    assert (alert["limit"], alert["standard"], alert["clause"]) == (75.0, "GB 3095-2012", "Table 1")
    assert "GB 3095-2012" in alert["message"]
    aqi = rows(influxd, day_aqi)
    # HJ 633-2012 only: a daily AQI for March 5, and no real-time one (HJ 633-2012's needs 24-h
    # sliding PM means, which envnet does not compute).
    assert {(r["edition"], r["report"]) for r in aqi} == {("2012", "day")}
    assert MARCH_5_MS in {r["time"] for r in aqi}
