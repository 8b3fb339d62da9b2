"""A node the aggregator refuses is told why, on its refusal topic, and says so: the real
aggregator process on real mosquitto, and `envnet sim replay-csv` as a node missing from the
fleet (issue 9, item 10: it exited 1 with only `unacked=...`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

from aggregator.intake.mqtt_session import IntakeSettings
from schemas import codec, topics
from schemas.messages import RefusalMessage
from simulators.local_stack import Influxd, Mosquitto
from tests.integration.e2e.test_alerts import hold_session
from tests.integration.e2e.test_hostile import aggregator_process, sample, send, write_config
from tests.support.harness import MqttProbe, publisher, wait_for
from tests.unit.aggregator.intake.test_hostile_payloads import reading, readings_message
from tests.unit.simulators.test_replay_csv import row, write_csv

ENVNET: Final = [sys.executable, "-m", "envnet.cli"]
KNOWN: Final = "refusal-known"
GHOST: Final = "refusal-ghost"
WAIT_S: Final = 60.0


def refusals(probe: MqttProbe) -> list[RefusalMessage]:
    return [codec.REFUSAL.decode(p) for p in probe.on(lambda t: t.endswith("/refusal"))]


def node_toml(tmp_path: Path, journal: Path, mqtt_url: str) -> Path:
    path = tmp_path / "ghost.toml"
    path.write_text(
        f"""
[node]
id = "{GHOST}"
[mqtt]
url = "{mqtt_url}"
[journal]
path = "{journal}"
[[sensors]]
id = "ref"
driver = "sim-air"
""",
        encoding="utf-8",
    )
    return path


def test_a_replay_as_a_node_not_in_the_fleet_is_told_why_and_says_so(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, influxd, [KNOWN])
    csv = write_csv(tmp_path, *(row(i + 1, hour) for i, hour in enumerate(range(6))))
    journal = tmp_path / "ghost.sqlite"
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/+/refusal"]).start()
    client = publisher(mosquitto.port)
    hold_session(mosquitto, IntakeSettings().client_id)
    with aggregator_process(config, tmp_path / "aggregator.log") as (process, base):
        replay = subprocess.run(
            [
                *ENVNET,
                "sim",
                "replay-csv",
                str(csv),
                "--node",
                GHOST,
                "--speed",
                "36000",
                "--linger",
                "5",
                "--journal",
                str(journal),
            ],
            env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert replay.returncode == 1, replay.stderr[-2000:]
        told = f"refused by the aggregator: unknown_node: node '{GHOST}' is not in the fleet"
        assert told in replay.stderr, replay.stderr[-2000:]

        # A known node whose payload names another node: told, with the batch's seq. A topic
        # whose id is not valid names nobody to tell.
        send(client, topics.readings(KNOWN), readings_message([reading()], seq=7, node="other"))
        send(client, "envnet/v1/nodes/Not Valid/readings", readings_message([reading()]))
        wait_for(lambda: any(r.node == KNOWN for r in refusals(probe)), WAIT_S, "the mismatch told")
        assert process.poll() is None
        assert sample(base, "envnet_refused_total", reason="bad_topic") == 1
        sent = sample(base, "envnet_refusal_notices_total", outcome="sent")
    probe.stop()
    client.loop_stop()

    seen = refusals(probe)
    ghost = [r for r in seen if r.node == GHOST]
    assert ghost and {r.reason for r in ghost} == {"unknown_node"}
    # Rate-limited: one per node and reason every 10 s, however often the node resends.
    assert len(ghost) <= 2
    mismatch = [r for r in seen if r.node == KNOWN]
    assert [(r.reason, r.seq, r.kind) for r in mismatch] == [("node_mismatch", 7, "readings")]
    assert {r.node for r in seen} == {GHOST, KNOWN}
    assert sent == len(seen)

    status = subprocess.run(
        [*ENVNET, "edge", "status", "--config", str(node_toml(tmp_path, journal, mosquitto.url))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert f"unknown_node: node '{GHOST}' is not in the fleet" in status.stdout, status.stdout
