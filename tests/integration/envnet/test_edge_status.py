"""`envnet edge status` reads the journal of a running `envnet edge` on a real mosquitto."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import msgspec

from envnet.commands.edge_status import StatusReport
from simulators.local_stack import Mosquitto
from tests.support.harness import wait_for
from tests.unit.envnet.commands.test_edge_status import node_toml

ENVNET = [sys.executable, "-m", "envnet.cli"]


def test_status_reads_the_journal_of_a_running_agent(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = node_toml(tmp_path, mosquitto.url)
    agent = subprocess.Popen(
        [*ENVNET, "edge", "--config", str(config)], stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    try:
        wait_for((tmp_path / "journal.sqlite-wal").exists, 20, "a running journal")

        def status() -> StatusReport:
            out = subprocess.run(
                [*ENVNET, "edge", "status", "--config", str(config), "--json"],
                capture_output=True,
                check=True,
            ).stdout
            return msgspec.json.decode(out, type=StatusReport)

        # Nothing acknowledges (no aggregator): the journal grows while status reads it.
        wait_for(lambda: status().journal.depth >= 2, 20, "journaled readings")
        first = status().journal
        assert not first.closed_cleanly and first.last_ack_ms is None
        wait_for(lambda: status().journal.depth > first.depth, 20, "the agent going on")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0
    finally:
        agent.kill()
    assert status().journal.closed_cleanly
