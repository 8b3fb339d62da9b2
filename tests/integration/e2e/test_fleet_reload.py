"""Hot reload of the fleet inventory on real mosquitto, influxd and the real aggregator.

While one node's readings flow all along, the test enrols a node with `envnet fleet enrol`
(its readings are then accepted without a restart), retires a node with a firing alert with
`envnet fleet retire` (the alert resolves, on the event stream, in the retained state and in
InfluxDB), and writes a broken inventory (refused and counted; the old one stays in force).
At the end every reading of the flowing node is in InfluxDB. Waits poll with deadlines.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec
import paho.mqtt.client as mqtt
import pytest

from aggregator.fleet import load_fleet
from envnet.cli import main as envnet
from schemas import codec, topics
from schemas.messages import READINGS_SCHEMA, Reading, ReadingsMessage
from schemas.quantities import SPECS
from simulators.local_stack import Influxd, Mosquitto, free_port
from tests.support.harness import MqttProbe, aggregator_config, count, publisher, running_aggregator
from tests.support.harness import wait_for as wait

WAIT_S: Final = 60.0
MIN_MS: Final = 60_000
FLEET: Final = """\
# The test's inventory.

[nodes.flow-odour]
site = "Always flowing"
location = { lat = 31.3, lon = 120.6 }
odour_grade = "II-new"

[nodes.old-odour]
site = "To be retired"
location = { lat = 31.4, lon = 120.7 }
odour_grade = "II-new"
"""


class Feed:
    def __init__(self, client: mqtt.Client, node: str, t0: int) -> None:
        self.client, self.node, self.t0 = client, node, t0
        self.seq = 0
        self.readings = 0

    def send(self, value: float) -> int:
        """One H2S reading (5-min mean) in one message; returns its seq."""
        self.seq += 1
        self.readings += 1
        reading = Reading(
            ts=self.t0 + self.seq * 5 * MIN_MS,
            quantity="h2s",
            value=value,
            unit=SPECS["h2s"].unit,
            period_s=300,
            stat="mean",
            sensor="gas",
        )
        message = ReadingsMessage(READINGS_SCHEMA, self.node, self.seq, [reading])
        info = self.client.publish(topics.readings(self.node), codec.READINGS.encode(message), 1)
        info.wait_for_publish(timeout=10)
        return self.seq


@pytest.fixture
def probe(mosquitto: Mosquitto) -> Iterator[MqttProbe]:
    watcher = MqttProbe(
        mosquitto.port, [topics.ALERT_EVENTS, topics.ALERTS_FILTER, "envnet/v1/nodes/+/ack"]
    )
    yield watcher.start()
    watcher.stop()


def acked(probe: MqttProbe, node: str) -> set[int]:
    return {s for p in probe.on(lambda t: t == topics.ack(node)) for s in codec.ACK.decode(p).seqs}


def events(probe: MqttProbe, node: str) -> list[tuple[str, str, str]]:
    decoded = (codec.ALERT_EVENT.decode(p) for p in probe.on(lambda t: t == topics.ALERT_EVENTS))
    return [(e.event, e.alert.rule, e.alert.message) for e in decoded if e.alert.node == node]


def cli(tmp_path: Path, *args: str) -> int:
    paths = ["--fleet", str(tmp_path / "fleet.toml"), "--passwd", str(tmp_path / "passwd")]
    return envnet(["fleet", *args, *paths, "--acl", str(tmp_path / "envnet.acl")])


def test_enrol_retire_and_a_broken_edit_while_readings_flow(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path, probe: MqttProbe
) -> None:
    fleet_path = tmp_path / "fleet.toml"
    fleet_path.write_text(FLEET)
    config = aggregator_config(mosquitto, influxd.url, tmp_path)
    config = msgspec.structs.replace(
        config, fleet=msgspec.structs.replace(config.fleet, path=str(fleet_path), reload_s=0.2)
    )
    t0 = (int(time.time() * 1000) // MIN_MS) * MIN_MS
    client = publisher(mosquitto.port)
    flow = Feed(client, "flow-odour", t0)
    old = Feed(client, "old-odour", t0)
    new = Feed(client, "new-odour", t0)
    try:
        with running_aggregator(config, load_fleet(fleet_path), fleet_path) as agg:

            def reloads(outcome: str) -> float:
                return agg.metric("envnet_fleet_reloads_total", outcome=outcome)

            # A node not yet enrolled is refused.
            flow.send(10.0)
            new.send(10.0)
            wait(lambda: agg.metric("envnet_refused_total", reason="unknown_node") == 1,
                 WAIT_S, "the unknown node's refusal")  # fmt: skip

            # Enrolled while the aggregator runs: accepted from then on, no restart.
            enrolled = cli(tmp_path, "enrol", "new-odour", "--kind", "odour", "--zone",
                           "II-new", "--lat", "31.2", "--lon", "120.5",
                           "--out", str(tmp_path / "new-odour.node.toml"))  # fmt: skip
            assert enrolled == 0
            wait(lambda: reloads("reloaded") == 1, WAIT_S, "the reload after enrol")
            flow.send(11.0)
            accepted = new.send(12.0)
            wait(lambda: accepted in acked(probe, "new-odour"), WAIT_S, "the new node's ack")

            # A node with a firing alert is retired: the alert resolves, saying why.
            old.send(100.0)  # H2S > 60 µg/m³ (GB 14554-93 Grade II new): fires at once
            wait(lambda: [e[:2] for e in events(probe, "old-odour")] == [("fired", "odour.h2s")],
                 WAIT_S, "the alert to fire")  # fmt: skip
            assert cli(tmp_path, "retire", "old-odour") == 0
            wait(lambda: reloads("reloaded") == 2, WAIT_S, "the reload after retire")
            wait(lambda: len(events(probe, "old-odour")) == 2, WAIT_S, "the resolution")
            resolved = events(probe, "old-odour")[1]
            assert resolved[:2] == ("resolved", "odour.h2s")
            assert resolved[2].startswith("node old-odour retired from the inventory")
            flow.send(12.0)

            # A broken edit: refused, counted; the old inventory stays in force.
            fleet_path.write_text(fleet_path.read_text() + "\n[nodes.bad]\nsite = 5\n")
            wait(lambda: reloads("refused") == 1, WAIT_S, "the refusal of the broken file")
            last_new = new.send(13.0)
            last_flow = flow.send(14.0)
            wait(lambda: last_new in acked(probe, "new-odour"), WAIT_S, "acks after the refusal")
            wait(lambda: last_flow in acked(probe, "flow-odour"), WAIT_S, "the flowing acks")
            retired = old.send(15.0)
            wait(lambda: agg.metric("envnet_refused_total", reason="unknown_node") == 2,
                 WAIT_S, "the retired node's refusal")  # fmt: skip
            assert retired not in acked(probe, "old-odour")
            assert reloads("reloaded") == 2

            def stored(node: str) -> int:
                return count(influxd, f"SELECT count(value) FROM readings WHERE node = '{node}'")

            wait(lambda: stored("flow-odour") == flow.readings, WAIT_S, "every flowing reading")
            wait(lambda: stored("new-odour") == 2, WAIT_S, "the new node's readings")
            resolutions = count(
                influxd,
                "SELECT count(value) FROM alerts WHERE node = 'old-odour' AND event = 'resolved'",
            )
            assert resolutions == 1
    finally:
        client.loop_stop()
        client.disconnect()


def test_sighup_reloads_the_inventory_of_the_real_command(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    """`envnet aggregator` as systemd runs it; polling off (reload_s = 0), so only SIGHUP
    (`systemctl reload envnet-aggregator`) can reload; without a handler SIGHUP would kill it."""
    fleet_path = tmp_path / "fleet.toml"
    fleet_path.write_text('[nodes.n1]\nsite = "One"\n')
    port = free_port()
    config = tmp_path / "agg.toml"
    config.write_text(
        f'[fleet]\npath = "{fleet_path}"\nreload_s = 0\n'
        f'[metrics]\nhost = "127.0.0.1"\nport = {port}\n[state]\ndir = "{tmp_path / "state"}"\n'
    )
    env = {**os.environ, "ENVNET_MQTT_URL": mosquitto.url, "ENVNET_INFLUX_URL": influxd.url}
    command = [sys.executable, "-m", "envnet.cli", "aggregator", "--config", str(config)]
    log_path = tmp_path / "aggregator.log"
    log_file = log_path.open("w")  # a file, not a pipe: a full pipe would block its logging
    process = subprocess.Popen(command, env=env, stderr=log_file)

    def reloaded() -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return -1.0
        found = re.search(r'^envnet_fleet_reloads_total\{outcome="reloaded"\} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    try:
        wait(lambda: reloaded() == 0.0, WAIT_S, "the aggregator's metrics")
        fleet_path.write_text(fleet_path.read_text() + '[nodes.n2]\nsite = "Two"\n')
        process.send_signal(signal.SIGHUP)
        wait(lambda: reloaded() == 1.0, WAIT_S, "the reload on SIGHUP")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()
    stderr = log_path.read_text()
    assert process.returncode == 0, stderr[-2000:]
    assert "fleet_reloaded" in stderr and "added=n2" in stderr
