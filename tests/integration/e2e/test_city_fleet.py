"""End to end on real mosquitto and influxd: a simulated city fleet (real edge agents with
simulated drivers) through the real aggregator into InfluxDB, with hostile traffic alongside.

- every reading the nodes produced is stored exactly once (counted in InfluxDB);
- the injected H2S release at the wastewater plant raises an alert on MQTT and in InfluxDB;
- malformed, oversized and hostile payloads are refused and counted, and the flow goes on;
- line-protocol injection through ids creates no series.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import msgspec

from aggregator.fleet import Fleet, NodeInfo
from edge.agent import EdgeAgent
from edge.clock import ScaledClock
from edge.runtime import build_agent, build_sampler
from schemas import codec, topics
from schemas.storage import READINGS
from simulators.fleet import FleetSettings, edge_config, fleet_nodes
from simulators.local_stack import Influxd, Mosquitto, influx_query
from simulators.node_kinds import NodeSpec
from tests.support.edge_harness import CountingProducer
from tests.support.harness import (
    MqttProbe,
    aggregator_config,
    count,
    publisher,
    running_aggregator,
    wait_for,
)

DAY_MS = 86_400_000
# The fleet's episodes are timed for this instant's time of day. Event time starts at that
# time of day on the next such day from now: exceedances in data from the past are late by
# design (recorded, never paged), and this test checks the live path.
REFERENCE = 1_795_900_000_000
ORIGIN = REFERENCE + DAY_MS * -(-(int(time.time() * 1000) - REFERENCE) // DAY_MS)
ACCEL = 120.0


def inventory(nodes: list[NodeSpec]) -> Fleet:
    return Fleet(
        {n.node: msgspec.convert({"site": n.site, **n.inventory}, NodeInfo) for n in nodes}
    )


@contextmanager
def fleet_running(
    nodes: list[NodeSpec], mqtt_url: str, tmp_path: Path
) -> Iterator[list[tuple[EdgeAgent, CountingProducer]]]:
    settings = FleetSettings(
        mqtt_url=mqtt_url, state_dir=tmp_path / "journals", ack_timeout_s=5.0, status_interval_s=2.0
    )
    clock = ScaledClock(ORIGIN, ACCEL)
    stop = threading.Event()
    agents = []
    for spec in nodes:
        config = edge_config(spec, settings)
        producer = CountingProducer(build_sampler(config, clock.now_ms()))
        agents.append((build_agent(config, clock=clock, producer=producer, stop=stop), producer))
    threads = [threading.Thread(target=a.run, args=(stop,), daemon=True) for a, _ in agents]
    for thread in threads:
        thread.start()
    try:
        yield agents
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "an edge agent did not stop"


def hostile_payloads() -> list[tuple[str, bytes]]:
    reading = {
        "ts": ORIGIN,
        "quantity": "o3",
        "value": 50.0,
        "unit": "ug/m3",
        "period_s": 60,
        "stat": "mean",
        "sensor": "x",
    }

    def msg(node: str, **reading_overrides: object) -> bytes:
        return json.dumps(
            {
                "schema": "envnet.readings/1",
                "node": node,
                "seq": 1,
                "readings": [{**reading, **reading_overrides}],
            }
        ).encode()

    target = "envnet/v1/nodes/sz-gusu-oldtown/readings"
    return [
        (target, b'{"schema": "envnet.readings/1", "node": '),  # malformed
        (target, b"\xff\xfe\x00 binary"),  # malformed
        (target, b"[" * 100_000),  # oversized (limit 64 KiB here)
        (target, msg("sz-gusu-oldtown", unit="ppb")),  # a wrong unit: invalid reading
        (target, msg("sz-gusu-oldtown,site=evil value=1")),  # injection via payload node
        (target, msg("sz-gusu-oldtown", sensor="x value=1,evil=2")),  # injection via sensor
        ("envnet/v1/nodes/evil,site=x/readings", msg("evil,site=x")),  # injection via topic
        ("envnet/v1/nodes/intruder/readings", msg("intruder")),  # not in the inventory
        ("envnet/v1/nodes/sz-res-noise/readings", msg("sz-gusu-oldtown")),  # node mismatch
        ("envnet/v1/nodes/sz-gusu-oldtown/status", b"{}"),  # invalid status
    ]


def tag_values(influxd: Influxd, key: str) -> set[str]:
    result = influx_query(
        influxd.url, f'SHOW TAG VALUES FROM readings WITH KEY = "{key}"', "envnet"
    )
    series = result["results"][0].get("series", [])  # type: ignore[index]
    return {value for s in series for _, value in s["values"]}


def test_fleet_end_to_end_exactly_once_with_alerts_and_hostile_traffic(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    nodes = fleet_nodes(10, seed=7, origin_ms=ORIGIN)
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    config = msgspec.structs.replace(
        config, mqtt=msgspec.structs.replace(config.mqtt, max_payload_bytes=64 * 1024)
    )
    probe = MqttProbe(mosquitto.port, ["envnet/v1/alert-events", "envnet/v1/alerts/#"]).start()
    with ExitStack() as stack:
        agg = stack.enter_context(running_aggregator(config, inventory(nodes)))
        agents = stack.enter_context(fleet_running(nodes, mosquitto.url, tmp_path))
        wait_for(lambda: all(p.count() >= 20 for _, p in agents), 60, "readings from every node")
        attacker = publisher(mosquitto.port)
        for topic, body in hostile_payloads():
            attacker.publish(topic, body, qos=1)
        wait_for(
            lambda: agg.metric("envnet_refused_total", reason="unknown_node") >= 1,
            20,
            "hostile traffic handled",
        )
        attacker.loop_stop()
        # Keep the fleet running a little after the attack: the flow must go on.
        after = sum(p.count() for _, p in agents)
        wait_for(lambda: sum(p.count() for _, p in agents) >= after + 100, 60, "flow continues")
        h2s_topic = topics.alert("sz-wwtp-odour", "odour.h2s")
        wait_for(lambda: any(t == h2s_topic for t, _, _ in probe.messages), 60, "h2s alert")
    # The fleet has stopped (gracefully, waiting for its last acks) and the aggregator too.
    produced = {spec.node: p.count() for spec, (_, p) in zip(nodes, agents, strict=True)}
    for node, expected in produced.items():
        stored = count(influxd, f"SELECT count(value) FROM readings WHERE node='{node}'")
        assert stored == expected, f"{node}: produced {expected}, stored {stored}"

    assert agg.metric("envnet_refused_total", reason="malformed") == 1 + 1
    assert agg.metric("envnet_refused_total", reason="oversized") == 1
    assert agg.metric("envnet_refused_total", reason="bad_topic") == 1
    assert agg.metric("envnet_refused_total", reason="unknown_node") == 1
    assert agg.metric("envnet_refused_total", reason="node_mismatch") == 1
    assert agg.metric("envnet_refused_total", reason="invalid") >= 2
    assert agg.metric("envnet_readings_refused_total", reason="invalid_reading") == 2

    assert tag_values(influxd, "node") == set(produced)
    assert not any("evil" in v for key in READINGS.tags for v in tag_values(influxd, key))
    keys = influx_query(influxd.url, "SHOW TAG KEYS FROM readings", "envnet")
    stored_keys = {row[0] for row in keys["results"][0]["series"][0]["values"]}  # type: ignore[index]
    assert stored_keys == set(READINGS.tags)

    events = [codec.ALERT_EVENT.decode(p) for p in probe.on(lambda t: t.endswith("alert-events"))]
    h2s = [e for e in events if e.alert.rule == "odour.h2s" and e.alert.node == "sz-wwtp-odour"]
    assert h2s and h2s[0].event == "fired"
    assert h2s[0].alert.standard == "GB 14554-93" and h2s[0].alert.limit == 60.0
    retained = probe.on(lambda t: t == topics.alert("sz-wwtp-odour", "odour.h2s"))
    assert retained and codec.ALERT.decode(retained[0]).state == "firing"
    stored_alerts = count(influxd, "SELECT count(value) FROM alerts WHERE rule='odour.h2s'")
    assert stored_alerts >= 1
    probe.stop()
