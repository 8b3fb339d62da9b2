"""/healthz tells the truth through an InfluxDB outage, on the real aggregator with a real
influxd that is stopped and started again: storage failing (HTTP 503) while it is down, ok
once it is back, and no reading lost. It also reports a killed alerting worker."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import msgspec

from aggregator.fleet import Fleet, NodeInfo
from simulators.local_stack import Influxd, Mosquitto
from tests.integration.aggregator.test_storage import acked, batch
from tests.support.harness import MqttProbe, aggregator_config, count, publisher, running_aggregator
from tests.support.harness import wait_for as wait_until

FLEET = Fleet({"n1": NodeInfo(site="Test site")})
NOW = 1_796_000_400_000


def healthz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def storage_state(port: int) -> tuple[int, str, dict[str, object]]:
    status, body = healthz(port)
    components = body["components"]
    assert isinstance(components, dict)
    return status, str(body["status"]), components["storage"]


def test_healthz_reports_storage_failing_through_an_outage_and_ok_after(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    config = msgspec.structs.replace(
        config, metrics=msgspec.structs.replace(config.metrics, storage_failing_after_s=3.0)
    )
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        port = agg.service.metrics_port
        assert port is not None
        client = publisher(mosquitto.port)
        client.publish("envnet/v1/nodes/n1/readings", batch("n1", 1, 10), qos=1)
        wait_until(lambda: acked(probe, "n1") == {1}, 30, "first ack")
        wait_until(lambda: storage_state(port)[:2] == (200, "ok"), 60, "healthy at start")

        influxd.stop()
        for seq in range(2, 12):
            client.publish(
                "envnet/v1/nodes/n1/readings", batch("n1", seq, 10, NOW + seq * 60_000), qos=1
            )
        wait_until(lambda: storage_state(port)[0] == 503, 120, "/healthz 503 while influxd is down")
        _, overall, storage = storage_state(port)
        assert overall == "failing" and storage["state"] == "failing", storage
        assert isinstance(storage["failed_attempts"], int) and storage["failed_attempts"] >= 1
        assert storage["buffered_readings"] == 100, storage
        assert isinstance(storage["failing_for_s"], float) and storage["failing_for_s"] >= 3
        assert storage["last_error"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert 'envnet_health_state{component="storage"} 2.0' in text
        assert 'envnet_health_state{component="overall"} 2.0' in text
        assert acked(probe, "n1") == {1}, "acked while the database was down"

        restarted = Influxd(influxd.directory, port=influxd.port)
        restarted.start()
        try:
            wait_until(lambda: storage_state(port)[:2] == (200, "ok"), 120, "/healthz ok again")
            wait_until(lambda: acked(probe, "n1") == set(range(1, 12)), 60, "every batch acked")
            assert count(restarted.url, "SELECT count(value) FROM readings") == 110
        finally:
            client.loop_stop()
            restarted.stop()
    probe.stop()


def test_healthz_reports_the_alerting_worker_gone(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    with running_aggregator(config, FLEET) as agg:
        port = agg.service.metrics_port
        assert port is not None
        wait_until(lambda: healthz(port)[0] == 200, 60, "healthy at start")
        # The aggregator runs in this process's thread: its worker is our child process.
        worker = agg.service._alerting.pid
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: healthz(port)[0] == 503, 60, "/healthz 503 without the worker")
        _, body = healthz(port)
        components = body["components"]
        assert isinstance(components, dict)
        assert body["status"] == "failing"
        assert components["worker"]["state"] == "failing"
        assert components["worker"]["alive"] is False
        assert components["storage"]["state"] == "ok"
