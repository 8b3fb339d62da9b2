"""kill -9 the edge agent, again and again, on the real stack (mosquitto, the aggregator,
influxd): no reading the journal acknowledged is lost, and none is stored twice.

Each cycle starts a real agent process (tests/edge_crash_child.py: build_agent, the ramp
driver, an accelerated clock), lets it journal and publish, and kills it with SIGKILL at a
random moment. A last agent drains what the killed ones left, and stops cleanly. Then, over
InfluxDB's points keyed (quantity, stat, period, time):

    journaled (reported after the commit returned)  <=  stored  <=  produced

and the stored count equals the number of distinct keys: a crash-and-resend never made a
second point. Readings produced and committed but killed before they could be reported are
between the two bounds; the crash loop in tests/integration/edge/test_journal_crash.py checks the
journal alone.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from aggregator.fleet import Fleet, NodeInfo
from edge.journal import read_status
from simulators.local_stack import Influxd, Mosquitto
from tests.support.harness import aggregator_config, running_aggregator, wait_for

FLEET = Fleet({"edge-1": NodeInfo(site="Test")})
START = 1_796_000_000_000
CYCLES = 5


def node_toml(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f"""
[node]
id = "edge-1"
[mqtt]
ack_timeout_s = 2
reconnect_initial_s = 0.1
reconnect_cap_s = 0.5
keepalive_s = 5
[sampling]
sample_interval_s = 1
report_interval_s = 1
[journal]
path = "{tmp_path / "edge-1.sqlite"}"
[drain]
rate_readings_per_s = 200
batch_readings = 50
[[sensors]]
id = "pm"
driver = "sim-air"
""")
    return path


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    reader: threading.Thread
    lines: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(len(line.split()) - 1 for line in list(self.lines) if line[0] == kind)


def start_child(config: Path, mosquitto: Mosquitto, cycle: int, log: Path) -> Child:
    read_end, write_end = os.pipe()
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.edge_crash_child",
                "--config",
                str(config),
                "--fd",
                str(write_end),
                # Each agent its own hour of event time: readings never repeat by accident.
                "--start-ms",
                str(START + cycle * 3_600_000),
                "--accel",
                "20",
            ],
            pass_fds=(write_end,),
            env={**os.environ, "ENVNET_MQTT_URL": mosquitto.url},
            stderr=log_file,
        )
    os.close(write_end)
    child = Child(process, threading.Thread())

    def read() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                child.lines.append(raw.decode())

    child.reader = threading.Thread(target=read, daemon=True)
    child.reader.start()
    return child


def stored_keys(influxd: Influxd) -> tuple[set[str], int]:
    result = influxd.query(
        "SELECT value, quantity, stat, period_s FROM readings WHERE node='edge-1'", "envnet"
    )
    keys: list[str] = []
    for series in result["results"][0].get("series", []):  # type: ignore[index]
        columns = series["columns"]
        for row in series["values"]:
            point = dict(zip(columns, row, strict=True))
            keys.append(f"{point['quantity']}:{point['stat']}:{point['period_s']}:{point['time']}")
    return set(keys), len(keys)


def journaled_at_least(child: Child, n: int) -> bool:
    return child.count("J") >= n


def keys_of(children: list[Child], kind: str) -> set[str]:
    return {k for c in children for line in c.lines if line[0] == kind for k in line.split()[1:]}


def test_kill_9_cycles_lose_nothing_journaled_and_store_nothing_twice(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    config = node_toml(tmp_path)
    log = tmp_path / "agents.log"
    rng = random.Random(4)
    children: list[Child] = []
    left_behind = 0  # readings a kill left in the journal, for the next agent to resend
    with running_aggregator(aggregator_config(mosquitto, influxd.url, tmp_path), FLEET):
        for cycle in range(CYCLES):
            child = start_child(config, mosquitto, cycle, log)
            children.append(child)
            wait_for(partial(journaled_at_least, child, 20), 30, f"cycle {cycle}: journaled")
            time.sleep(rng.uniform(0.0, 1.0))  # a random crash point, not a wait for an event
            child.process.kill()
            child.process.wait(timeout=10)
            child.reader.join(timeout=10)
            left_behind += read_status(tmp_path / "edge-1.sqlite", 0).depth
        last = start_child(config, mosquitto, CYCLES, log)
        children.append(last)
        journal = tmp_path / "edge-1.sqlite"
        own_hour = START + CYCLES * 3_600_000

        def drained() -> bool:
            # Left in the journal, as of its last commit: only the last agent's newest.
            oldest = read_status(journal, 0).oldest_ts
            return last.count("J") >= 20 and (oldest is None or oldest >= own_hour)

        wait_for(drained, 60, "the killed agents' journal drained")
        last.process.send_signal(signal.SIGTERM)
        assert last.process.wait(timeout=20) == 0
        last.reader.join(timeout=10)
        journaled = keys_of(children, "J")
        produced = keys_of(children, "T")
        wait_for(lambda: journaled <= stored_keys(influxd)[0], 30, "journaled readings stored")
    stored, count = stored_keys(influxd)
    assert journaled <= stored, f"lost: {sorted(journaled - stored)[:5]}"
    assert stored <= produced, f"stored but never produced: {sorted(stored - produced)[:5]}"
    assert count == len(stored), f"{count - len(stored)} readings stored twice"
    assert len(journaled) >= 20 * (CYCLES + 1)
    assert left_behind > 0, "no kill left anything to resend: the test proved nothing"
