"""The aggregator service as a whole: graceful shutdown flushes, and its own metrics."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from aggregator.fleet import Fleet, NodeInfo
from schemas import codec
from simulators.local_stack import Influxd, Mosquitto
from tests.integration.aggregator.test_storage import NOW, batch
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    count,
    publisher,
    running_aggregator,
    wait_for,
)

FLEET = Fleet({"n1": NodeInfo(site="Site")})


def test_shutdown_stores_and_acks_what_was_received(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    # A long linger keeps received readings buffered until the stop forces the flush.
    config = aggregator_config(
        mosquitto, influxd.url, tmp_path, linger_ms=10_000, batch_readings=100_000
    )
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/n1/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        for seq in range(1, 21):
            client.publish(
                "envnet/v1/nodes/n1/readings", batch("n1", seq, 10, NOW + seq * 10_000), qos=1
            )
        wait_for(lambda: agg.metric("envnet_readings_received_total") == 200, 20, "intake")
        assert count(influxd, "SELECT count(value) FROM readings") == 0, "written before linger"
        agg.stop()
        client.loop_stop()
    assert count(influxd, "SELECT count(value) FROM readings") == 200
    acked = {s for p in probe.on(lambda t: True) for s in codec.ACK.decode(p).seqs}
    assert acked == set(range(1, 21))
    probe.stop()


def test_metrics_and_health_endpoints(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        client.publish("envnet/v1/nodes/n1/readings", batch("n1", 1, 5), qos=1)
        client.publish("envnet/v1/nodes/n1/readings", b"{broken", qos=1)
        wait_for(lambda: agg.metric("envnet_readings_stored_total") == 5, 20, "stored")
        wait_for(lambda: agg.metric("envnet_refused_total", reason="malformed") == 1, 20, "refused")
        client.loop_stop()
        base = f"http://127.0.0.1:{agg.service.metrics_port}"
        with urllib.request.urlopen(f"{base}/metrics") as response:
            text = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain")
        with urllib.request.urlopen(f"{base}/healthz") as response:
            assert response.status == 200
    assert "envnet_readings_stored_total 5.0" in text
    assert 'envnet_refused_total{reason="malformed"} 1.0' in text
    assert "envnet_write_latency_seconds_count" in text
    assert "envnet_queue_depth" in text
