"""The scenario of issue 12, written only from the issue's format (its example, verbatim),
runs as specified: the PRSA file it names is a small one the test writes, and the run's
expectation (one live odour.h2s alert between 1800 and 3000 s) holds."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import msgspec

from tests.support.prsa import write_prsa
from tests.unit.simulators.scenario.test_spec import ISSUE_EXAMPLE


def test_the_issue_s_example_runs_as_specified(tmp_path: Path) -> None:
    scenario = tmp_path / "wwtp.toml"
    scenario.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    (tmp_path / "data").mkdir()
    # Three hours of March 2013: the replay runs alongside, on its own timeline.
    write_prsa(tmp_path / "data" / "PRSA_Data_X.csv", date(2013, 3, 1), days=1, hours=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    argv = [sys.executable, "-m", "envnet.cli", "sim", "scenario", "run", str(scenario),
            "--workdir", str(tmp_path / "work"), "--json",
            "--junit", str(tmp_path / "j.xml")]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    result = msgspec.json.decode(done.stdout)
    (expectation,) = result["expectations"]
    assert expectation["holds"] is True
    (event,) = expectation["matched"]
    assert (event["rule"], event["event"], event["lane"]) == ("odour.h2s", "fired", "live")
    assert 1800 <= event["at_s"] <= 3000
    # The replayed node's readings were stored too (3 hours of PRSA rows, several quantities).
    assert result["readings_stored"] > 3 * 5
    assert (tmp_path / "j.xml").read_text().count("<testcase") == 1
