"""Hostile payloads against the real aggregator process on real mosquitto and influxd: it
keeps running (same PID), counts each one under its refusal reason, and still stores and
acks a good reading sent afterwards (issue 9, item 1)."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
from prometheus_client.parser import text_string_to_metric_families

from aggregator.intake.mqtt_session import IntakeSettings
from schemas import codec, topics
from schemas.codec import ContractError
from simulators.local_stack import Influxd, Mosquitto
from tests.integration.e2e.test_alerts import hold_session
from tests.support.harness import MqttProbe, count, publisher, wait_for
from tests.unit.aggregator.intake.test_hostile_payloads import (
    SPECIALS,
    deep_in,
    nested,
    nested_objects,
    reading,
    readings_message,
)

ENVNET: Final = Path(sys.executable).with_name("envnet")
NODE: Final = "hostile-n1"
WAIT_S: Final = 60.0


def write_config(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, nodes: list[str]) -> Path:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        "".join(f'[nodes.{n}]\nsite = "Hostile roadside"\nair_zone = 2\n' for n in nodes),
        encoding="utf-8",
    )
    config = tmp_path / "agg.toml"
    config.write_text(
        f"""
[mqtt]
url = "{mosquitto.url}"
[influx]
url = "{influxd.url}"
database = "envnet"
retry_initial_s = 0.05
retry_cap_s = 0.5
[fleet]
path = "{fleet}"
[metrics]
port = 0
[state]
dir = "{tmp_path / "agg-state"}"
""",
        encoding="utf-8",
    )
    return config


@contextmanager
def aggregator_process(config: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The aggregator as a process of its own, and the base URL of its metrics server."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(ENVNET), "aggregator", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        port: list[str] = []

        def started() -> bool:
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"aggregator_started.*metrics_port=(\d+)", log.read_text("utf-8"))
            if found:
                port.append(found.group(1))
            return bool(found)

        wait_for(started, WAIT_S, "the aggregator to start")
        yield process, f"http://127.0.0.1:{port[0]}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def metrics(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(base: str, name: str, **labels: str) -> float:
    return metrics(base).get((name, frozenset(labels.items())), 0.0)


def acked_seqs(probe: MqttProbe, node: str) -> set[int]:
    seqs: set[int] = set()
    for payload in probe.on(lambda t: t == topics.ack(node)):
        try:
            seqs.update(codec.ACK.decode(payload).seqs)
        except ContractError:
            continue  # the hostile ack this test sends itself
    return seqs


def send(client: mqtt.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=WAIT_S)
    assert info.is_published(), topic


def test_hostile_payloads_leave_the_aggregator_running_and_counted(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, influxd, [NODE])
    log = tmp_path / "aggregator.log"
    readings_topic, status_topic = topics.readings(NODE), topics.status(NODE)
    probe = MqttProbe(mosquitto.port, [topics.ack(NODE)]).start()
    client = publisher(mosquitto.port)
    # The broker queues for the aggregator's session from now on, subscribed or not yet.
    hold_session(mosquitto, IntakeSettings().client_id)
    with aggregator_process(config, log) as (process, base):
        pid = process.pid
        malformed = [
            (readings_topic, nested_objects(100_000)),
            (readings_topic, deep_in("extra", 100_000)),
            (readings_topic, readings_message([{"bad": 1}])[:-2] + b", " + nested(100_000) + b"]}"),
            (readings_topic, b"\xff\xfe{\x80"),
            (status_topic, b'{"schema": "envnet.status/1", "x": ' + nested(100_000) + b"}"),
            (status_topic, nested_objects(100_000)),
        ]
        for topic, payload in malformed:
            send(client, topic, payload)
        huge = [reading(ts=1796000400000 + i * 60_000) for i in range(10_000)]
        send(client, readings_topic, readings_message(huge, node=NODE))
        for i, special in enumerate(SPECIALS):
            # mosquitto itself disconnects a client that names a topic with a control
            # character (MQTT 3.1.1 §4.7.3 discourages them), so a newline never gets here.
            if special != "\n":
                send(client, f"envnet/v1/nodes/n{special}1/readings", readings_message([reading()]))
            bad_node = readings_message([reading()], seq=100 + i, node=f"{NODE}{special}")
            send(client, readings_topic, bad_node)
            mixed = [reading(ts=1796000400000 + i * 60_000), reading(sensor=f"s{special}1")]
            send(client, readings_topic, readings_message(mixed, seq=200 + i, node=NODE))
        # The ack topic is the nodes' (see tests/integration/edge/test_agent.py for the edge's
        # side); the alert-command topic is read by the alerting worker process.
        send(client, topics.ack(NODE), nested_objects(100_000))
        send(client, topics.ALERT_COMMANDS, b'{"x": ' + nested(100_000) + b"}")
        send(client, topics.ALERT_COMMANDS, b"\xff\xfe")
        good = [reading(ts=1796100000000, quantity="co", unit="mg/m3", value=1)]
        send(client, readings_topic, readings_message(good, seq=5, node=NODE))

        wait_for(lambda: 5 in acked_seqs(probe, NODE), WAIT_S, "the good reading's ack")
        wait_for(
            lambda: sample(base, "envnet_alert_commands_total", result="invalid") == 2,
            WAIT_S,
            "the alert commands refused",
        )
        assert process.poll() is None and process.pid == pid
        counted = metrics(base)
        expected = {
            ("envnet_refused_total", "reason", "malformed"): len(malformed),
            ("envnet_refused_total", "reason", "oversized"): 1,
            ("envnet_refused_total", "reason", "bad_topic"): len(SPECIALS) - 1,
            ("envnet_refused_total", "reason", "invalid"): len(SPECIALS),
            ("envnet_readings_refused_total", "reason", "invalid_reading"): len(SPECIALS),
        }
        for (name, label, value), n in expected.items():
            assert counted.get((name, frozenset({(label, value)}))) == n, (name, value)
        failures = [v for (name, _), v in counted.items() if name.startswith("envnet_message_f")]
        assert sum(failures) == 0
        # The good reading, and the good half of each mixed message, are stored.
        stored = len(SPECIALS) + 1
        wait_for(
            lambda: (
                count(influxd, f"SELECT count(value) FROM readings WHERE node='{NODE}'") == stored
            ),
            WAIT_S,
            "the good readings in InfluxDB",
        )
        assert acked_seqs(probe, NODE) >= {5, *range(200, 200 + len(SPECIALS))}
    probe.stop()
    client.loop_stop()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text and "RecursionError" not in text
