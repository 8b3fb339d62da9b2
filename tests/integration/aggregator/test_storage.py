"""Storage against real servers: InfluxDB 1.6.7 (v1 API), VictoriaMetrics (v2 write API).

Acks are sent only after a durable write; an outage loses nothing and acks nothing; a batch the
database rejects is isolated and kept in the dead-letter file; intake pauses under backpressure
without losing a message.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from pathlib import Path

import msgspec
import pytest

from aggregator.fleet import Fleet, NodeInfo
from aggregator.storage.influx import InfluxTarget, InfluxWriter, WriteError
from schemas import codec
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from simulators.local_stack import Influxd, Mosquitto, VictoriaMetrics
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    count,
    publisher,
    running_aggregator,
    wait_for,
)

FLEET = Fleet({"n1": NodeInfo(site="Test site"), "n2": NodeInfo(site="Other site")})
NOW = 1_796_000_400_000


def batch(node: str, seq: int, n: int, start_ms: int = NOW) -> bytes:
    readings = [
        Reading(
            ts=start_ms + i * 1000,
            quantity="pm2_5",
            value=10.0 + i,
            unit="ug/m3",
            period_s=1,
            stat="mean",
            sensor="pm",
        )
        for i in range(n)
    ]
    message = ReadingsMessage(schema=READINGS_SCHEMA, node=node, seq=seq, readings=readings)
    return codec.READINGS.encode(message)


def acked(probe: MqttProbe, node: str) -> set[int]:
    seqs: set[int] = set()
    for payload in probe.on(lambda t: t == f"envnet/v1/nodes/{node}/ack"):
        seqs.update(codec.ACK.decode(payload).seqs)
    return seqs


def test_writer_v1_and_clear_errors(influxd: Influxd) -> None:
    async def scenario() -> None:
        good = InfluxTarget(url=influxd.url, api="v1", database="envnet")
        async with InfluxWriter(good) as writer:
            await writer.write(b"readings,node=n1 value=1.0 1796000400000")
        missing = InfluxTarget(url=influxd.url, api="v1", database="nope")
        async with InfluxWriter(missing) as writer:
            with pytest.raises(WriteError, match="database not found") as raised:
                await writer.write(b"readings,node=n1 value=1.0 1796000400000")
            assert raised.value.status == 404 and raised.value.retryable
        v2_on_v1 = InfluxTarget(url=influxd.url, api="v2", org="o", bucket="b", token="t")
        async with InfluxWriter(v2_on_v1) as writer:
            with pytest.raises(WriteError) as raised:
                await writer.write(b"readings,node=n1 value=1.0 1796000400000")
            assert raised.value.status == 404  # influxd 1.6.7 has no /api/v2/write

    asyncio.run(scenario())
    assert count(influxd, "SELECT count(value) FROM readings") == 1


def victoria_count(server: VictoriaMetrics, series: str) -> int:
    # Export's time range defaults to end=now; these readings are timestamped ahead of it.
    selector = '{__name__="' + series + '"}'
    query = urllib.parse.urlencode({"match[]": selector, "start": "0", "end": "4102444800"})
    with urllib.request.urlopen(f"{server.url}/api/v1/export?{query}") as response:
        lines = response.read().decode().splitlines()
    return sum(len(json.loads(line)["values"]) for line in lines)


def test_end_to_end_over_the_v2_write_api(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    """VictoriaMetrics is a real server that accepts /api/v2/write with org, bucket and a
    token; InfluxDB 2 itself is not packaged for this machine."""
    config = aggregator_config(
        mosquitto, victoria.url, tmp_path, api="v2", org="suzhou", bucket="envnet", token="t0ken"
    )
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET):
        client = publisher(mosquitto.port)
        for seq in range(1, 4):
            client.publish(
                "envnet/v1/nodes/n1/readings", batch("n1", seq, 50, NOW + seq * 60_000), qos=1
            )
        wait_for(lambda: acked(probe, "n1") == {1, 2, 3}, 20, "acks over v2")
        wait_for(lambda: victoria_count(victoria, "readings_value") == 150, 20, "150 points")
        client.loop_stop()
    probe.stop()


def test_influx_outage_acks_nothing_and_loses_nothing(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        client.publish("envnet/v1/nodes/n1/readings", batch("n1", 1, 10), qos=1)
        wait_for(lambda: acked(probe, "n1") == {1}, 20, "first ack")
        influxd.stop()
        for seq in range(2, 12):
            client.publish(
                "envnet/v1/nodes/n1/readings", batch("n1", seq, 10, NOW + seq * 60_000), qos=1
            )
        wait_for(
            lambda: agg.metric("envnet_write_failures_total", kind="network") >= 3,
            20,
            "failed write attempts",
        )
        assert acked(probe, "n1") == {1}, "acked while the database was down"
        restarted = Influxd(influxd.directory, port=influxd.port)
        restarted.start()
        try:
            wait_for(lambda: acked(probe, "n1") == set(range(1, 12)), 30, "acks after recovery")
            assert count(restarted.url, "SELECT count(value) FROM readings") == 110
        finally:
            client.loop_stop()
            restarted.stop()
    probe.stop()


def test_rejected_batch_is_isolated_dead_lettered_and_acked(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    # Poison one shard (the week of 2013-03-04): 'value' becomes a string field there, so
    # InfluxDB answers 400 "field type conflict" for float writes into that week only.
    old = 1_362_400_000_000
    influxd_write = InfluxTarget(url=influxd.url, api="v1", database="envnet")

    async def poison() -> None:
        async with InfluxWriter(influxd_write) as writer:
            await writer.write(f'readings,node=x value="text" {old}'.encode())

    asyncio.run(poison())
    config = aggregator_config(mosquitto, influxd.url, tmp_path, linger_ms=300)
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        client = publisher(mosquitto.port)
        client.publish("envnet/v1/nodes/n1/readings", batch("n1", 1, 5, old + 60_000), qos=1)
        client.publish("envnet/v1/nodes/n2/readings", batch("n2", 1, 5), qos=1)
        wait_for(lambda: acked(probe, "n1") == {1} and acked(probe, "n2") == {1}, 20, "acks")
        assert count(influxd, "SELECT count(value) FROM readings WHERE node='n2'") == 5
        assert agg.metric("envnet_readings_refused_total", reason="db_rejected") == 5
        client.loop_stop()
    dead = (tmp_path / "agg-state" / "dead-letters.jsonl").read_text().splitlines()
    assert len(dead) == 1
    entry = json.loads(dead[0])
    assert entry["node"] == "n1" and entry["seq"] == 1 and len(entry["lines"]) == 5
    assert "field type conflict" in entry["reason"]
    probe.stop()


def test_backpressure_pauses_intake_without_loss(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = aggregator_config(mosquitto, influxd.url, tmp_path, max_buffered_readings=1000)
    config = msgspec.structs.replace(
        config,
        mqtt=msgspec.structs.replace(config.mqtt, read_buffer_messages=20, pause_after_s=1.0),
    )
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/ack"]).start()
    with running_aggregator(config, FLEET) as agg:
        influxd.stop()
        client = publisher(mosquitto.port)
        for seq in range(1, 301):
            client.publish(
                "envnet/v1/nodes/n1/readings", batch("n1", seq, 10, NOW + seq * 10_000), qos=1
            )
        wait_for(lambda: agg.metric("envnet_intake_pauses_total") >= 1, 20, "an intake pause")
        assert acked(probe, "n1") == set()
        restarted = Influxd(influxd.directory, port=influxd.port)
        restarted.start()
        try:
            wait_for(lambda: acked(probe, "n1") == set(range(1, 301)), 60, "all 300 acks")
            assert count(restarted.url, "SELECT count(value) FROM readings") == 3000
        finally:
            client.loop_stop()
            restarted.stop()
    probe.stop()


def test_v2_writer_behind_a_path_prefix(victoria: VictoriaMetrics) -> None:
    """A VictoriaMetrics cluster takes writes at vminsert's `/insert/{tenant}/influx/api/v2/write`,
    so its `[influx] url` carries a path. The single-node server answers the same API under
    `/influx`, which is how this runs here: the writer must keep the path, not replace it."""

    async def scenario() -> None:
        target = InfluxTarget(
            url=f"{victoria.url}/influx/", api="v2", org="suzhou", bucket="envnet", token="t0ken"
        )
        assert target.write_url() == f"{victoria.url}/influx/api/v2/write"
        async with InfluxWriter(target) as writer:
            await writer.write(b"prefixed,node=n1 value=1.0 1796000400000")

    asyncio.run(scenario())
    wait_for(lambda: victoria_count(victoria, "prefixed_value") == 1, 20, "1 point via /influx")
