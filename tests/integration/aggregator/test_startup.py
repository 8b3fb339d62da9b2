"""The aggregator at start: fresh storage, and settings an operator must fix.

- v1: on a real influxd that has no database, the aggregator creates it (with its retention
  policy) and stores readings; also when influxd comes up fresh only after the aggregator.
- v2: the bucket check against a stand-in for InfluxDB 2 is in
  tests/unit/aggregator/test_startup.py.
- `envnet aggregator` with its metrics port taken, or a v2 bucket that does not exist: a
  clear message and exit 2, run as the real command.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.fleet import Fleet, NodeInfo
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.setup import ensure_database
from simulators.local_stack import Influxd, Mosquitto, influx_query
from tests.integration.aggregator.test_storage import NOW, acked, batch
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    count,
    publisher,
    running_aggregator,
    wait_for,
)
from tests.unit.aggregator.test_startup import influxdb2_buckets

ENVNET = [sys.executable, "-m", "envnet.cli"]
FLEET = Fleet({"n1": NodeInfo(site="Test site")})


@pytest.fixture
def bare_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """A real influxd with no database at all, as after a fresh install."""
    with Influxd(tmp_path / "bare-influxd") as server:
        yield server


def databases(server: Influxd) -> set[str]:
    answer = influx_query(server.url, "SHOW DATABASES")
    series = answer["results"][0].get("series", [])  # type: ignore[index]
    return {row[0] for s in series for row in s.get("values", [])}


def retention_policies(server: Influxd, database: str) -> list[list[object]]:
    answer = influx_query(server.url, f'SHOW RETENTION POLICIES ON "{database}"')
    values: list[list[object]] = answer["results"][0]["series"][0]["values"]  # type: ignore[index]
    return values


# -- v1: a fresh influxd ---------------------------------------------------------------------


def test_a_fresh_influxd_gets_its_database_and_stores_readings(
    mosquitto: Mosquitto, bare_influxd: Influxd, tmp_path: Path
) -> None:
    assert "envnet" not in databases(bare_influxd)
    config = aggregator_config(mosquitto, bare_influxd.url, tmp_path)
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        for seq in (1, 2, 3):
            readings = batch("n1", seq, 10, NOW + seq * 60_000)
            client.publish("envnet/v1/nodes/n1/readings", readings, qos=1)
        wait_for(lambda: acked(probe, "n1") == {1, 2, 3}, 30, "acks from a fresh influxd")
        client.loop_stop()
        assert agg.metric("envnet_write_failures_total", kind="http_404") == 0
    probe.stop()
    assert count(bare_influxd, "SELECT count(value) FROM readings") == 30
    # The default retention policy, as documented: autogen, 400 days.
    assert retention_policies(bare_influxd, "envnet")[0][:2] == ["autogen", "9600h0m0s"]


def test_creating_the_database_is_idempotent_and_never_changes_an_existing_one(
    bare_influxd: Influxd,
) -> None:
    target = InfluxTarget(
        url=bare_influxd.url, api="v1", database="env net", retention_policy="raw",
        create_duration="30d",
    )  # fmt: skip
    other = InfluxTarget(url=bare_influxd.url, api="v1", database="env net", create_duration="1d")

    async def run() -> list[bool]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            return [await ensure_database(session, t) for t in (target, target, other)]

    assert asyncio.run(run()) == [True, False, False]
    assert retention_policies(bare_influxd, "env net") == [["raw", "720h0m0s", "24h0m0s", 1, True]]


def test_an_influxd_that_comes_up_fresh_after_the_aggregator_gets_its_database(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """influxd not reachable at start (booting at the same time): writes that meet a fresh,
    empty influxd create the database instead of retrying "database not found" for ever."""
    later = Influxd(tmp_path / "later-influxd")
    config = aggregator_config(mosquitto, later.url, tmp_path)
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        client.publish("envnet/v1/nodes/n1/readings", batch("n1", 1, 10), qos=1)
        wait_for(
            lambda: agg.metric("envnet_write_failures_total", kind="network") >= 1,
            30,
            "a failed write while influxd is down",
        )
        later.start()
        try:
            wait_for(lambda: acked(probe, "n1") == {1}, 60, "acked once influxd is up")
            assert count(later, "SELECT count(value) FROM readings") == 10
        finally:
            client.loop_stop()
            later.stop()
    probe.stop()


# -- v2: the bucket check, against a stand-in for InfluxDB 2's bucket API --------------------


def write_config(tmp_path: Path, metrics_port: int, influx: str = "") -> Path:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[nodes.n1]\nsite = "Test site"\n', encoding="utf-8")
    path = tmp_path / "agg.toml"
    path.write_text(
        f'[fleet]\npath = "{fleet}"\n'
        f'[metrics]\nhost = "127.0.0.1"\nport = {metrics_port}\n'
        f'[state]\ndir = "{tmp_path / "state"}"\n{influx}',
        encoding="utf-8",
    )
    return path


def run_aggregator(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENVNET, "aggregator", "--config", str(config)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_metrics_port_in_use_is_a_message_and_exit_2(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, port)
        env = {"ENVNET_MQTT_URL": mosquitto.url, "ENVNET_INFLUX_URL": influxd.url}
        done = run_aggregator(config, env)
    assert done.returncode == 2, done.stderr
    assert f"metrics endpoint 127.0.0.1:{port} is already in use" in done.stderr
    assert "[metrics]" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_v2_bucket_is_a_message_and_exit_2(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with influxdb2_buckets({"suzhou": ["other"]}) as url:
        config = write_config(tmp_path, 0, '[influx]\norg = "suzhou"\nbucket = "envnet"\n')
        env = {
            "ENVNET_MQTT_URL": mosquitto.url,
            "ENVNET_INFLUX_URL": url,
            "ENVNET_INFLUX_TOKEN": "t0ken",
        }
        done = run_aggregator(config, env)
    assert done.returncode == 2, done.stderr
    assert "bucket 'envnet' not found in organisation 'suzhou'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "t0ken" not in done.stderr + done.stdout
    json.dumps(done.stderr)  # printable as it is
