"""`envnet sim replay-csv` with its output not a terminal (captured, as in CI and logs):
no redraws, one summary line at the end with the rows done of the rows in the date range.
On the real broker, without an aggregator: nothing is acknowledged, so with --linger 0 the
replay ends at once after its last row, with status 1 (readings not acknowledged)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from simulators.local_stack import Mosquitto
from tests.support.harness import MqttProbe, wait_for
from tests.unit.simulators.test_replay_csv import HEADER, row

ENVNET = [sys.executable, "-m", "envnet.cli"]


def test_replay_prints_one_summary_line_when_not_a_terminal(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    lines = [row(i + 1, h, day=d) for i, (d, h) in enumerate((d, h) for d in (1, 2, 3)
                                                              for h in range(24))]  # fmt: skip
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    probe = MqttProbe(mosquitto.port, ["envnet/v1/nodes/prog-node/readings"]).start()
    result = subprocess.run(
        [*ENVNET, "sim", "replay-csv", str(csv), "--node", "prog-node", "--from", "2013-03-02",
         "--to", "2013-03-02", "--speed", "36000", "--linger", "0",
         "--journal", str(tmp_path / "journal.sqlite"), "--mqtt-url", mosquitto.url],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]  # no aggregator: nothing acked
    assert "Traceback" not in result.stderr
    assert "\r" not in result.stdout
    assert re.fullmatch(r"rows 24/24 · in \d+:\d\d · [0-9.]+ rows/s\n", result.stdout), (
        result.stdout
    )
    wait_for(lambda: bool(probe.messages), 30, "readings published")
    probe.stop()
