"""The scenario library (tests/scenarios/*.toml) runs as a tester would run it: `envnet sim
scenario run FILE --strict --junit F --json`, each on its own mosquitto and influxd, with real
edge agents and the real aggregator. Every expectation must hold; a scenario whose
expectation is made false must fail with a diff that names it; and the issue's own example,
written only from its format, runs as specified.

A scenario spends most of its time waiting for its event time to pass, not computing, so the
runs are started together, a few at a time (RUNS_AT_ONCE), when the first test asks for
them; each test then judges its own run. A scenario whose replay CSV is absent
(../shared/data is not in a clone) is skipped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path

import msgspec
import pytest

from simulators.scenario.spec import load_scenario
from tests.support.prsa import write_prsa

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
ISSUE_EXAMPLE = (
    Path(__file__).resolve().parents[2] / "unit/simulators/scenario/data/issue12_example.toml"
)
SCENARIOS = sorted(LIBRARY.glob("*.toml"))
# Generous: a scenario plays in about half a minute, but a loaded CI machine is slow.
RUN_TIMEOUT_S = 900
RUNS_AT_ONCE = 3
FALSE = "odour-wwtp-h2s-false"
ISSUE = "issue12-example"


def run(file: Path, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    argv = [sys.executable, "-m", "envnet.cli", "sim", "scenario", "run", str(file),
            "--workdir", str(workdir / "work"), *extra]  # fmt: skip
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def missing_replays(file: Path) -> list[Path]:
    spec = load_scenario(file)
    return [spec.csv_path(r) for r in spec.replays if not spec.csv_path(r).exists()]


def false_scenario(directory: Path) -> Path:
    """The odour scenario with its first expectation made false: the release starts at
    1800 s, and the file now claims it fired in the first ten minutes."""
    source = (LIBRARY / "odour-wwtp-h2s.toml").read_text(encoding="utf-8")
    false = re.sub(r"within_s = \[1800, 3000\]", "within_s = [0, 600]", source, count=1)
    assert false != source
    file = directory / f"{FALSE}.toml"
    file.write_text(false, encoding="utf-8")
    return file


def issue_scenario(directory: Path) -> Path:
    """The scenario of issue 12, written only from the issue's format (its example,
    verbatim), with the small PRSA file its [[replay]] names: three hours of March 2013."""
    scenario = directory / "wwtp.toml"
    scenario.write_text(ISSUE_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "data").mkdir()
    write_prsa(directory / "data" / "PRSA_Data_X.csv", date(2013, 3, 1), days=1, hours=3)
    return scenario


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    with ThreadPoolExecutor(RUNS_AT_ONCE, thread_name_prefix="scenario") as pool:
        futures = {}
        for file in SCENARIOS:
            if missing_replays(file):
                continue
            workdir = tmp_path_factory.mktemp(file.stem)
            junit = str(workdir / "junit.xml")
            futures[file.stem] = pool.submit(
                run, file, workdir, "--strict", "--junit", junit, "--json"
            )
        workdir = tmp_path_factory.mktemp(FALSE)
        futures[FALSE] = pool.submit(run, false_scenario(workdir), workdir)
        workdir = tmp_path_factory.mktemp(ISSUE)
        junit = str(workdir / "junit.xml")
        futures[ISSUE] = pool.submit(
            run, issue_scenario(workdir), workdir, "--json", "--junit", junit
        )
        yield futures


def test_the_library_covers_every_rule_family() -> None:
    rules = {e.rule for f in SCENARIOS for e in load_scenario(f).expects}
    for family in ("air.", "aqi.", "noise.", "odour.", "water.", "bloom.", "health.", "liveness."):
        assert any(r.startswith(family) for r in rules), f"no scenario expects a {family} alert"
    kinds = {e.kind for f in SCENARIOS for e in load_scenario(f).events}
    assert {"offline", "link_outage", "stuck"} <= kinds


@pytest.mark.parametrize("file", SCENARIOS, ids=[f.stem for f in SCENARIOS])
def test_each_scenario_passes(
    file: Path, runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    if absent := missing_replays(file):
        pytest.skip(f"replay data absent: {absent[0]}")
    done = runs[file.stem].result(timeout=RUN_TIMEOUT_S * 4)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    result = msgspec.json.decode(done.stdout)
    assert result["passed"] is True
    assert result["readings_stored"] > 0
    junit = Path(done.args[done.args.index("--junit") + 1])
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    assert len(suite.findall("testcase")) == len(load_scenario(file).expects) + 1


def test_a_false_expectation_fails_with_a_diff_that_names_it(
    runs: dict[str, Future[subprocess.CompletedProcess[str]]],
) -> None:
    done = runs[FALSE].result(timeout=RUN_TIMEOUT_S * 4)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout
    assert "✗ [1] sz-wwtp-odour odour.h2s fired within [0, 600] s" in done.stdout
    assert "- expected: sz-wwtp-odour odour.h2s fired within [0, 600] s" in done.stdout
    assert re.search(r"\+ observed: sz-wwtp-odour odour.h2s fired at \d+ s \(live", done.stdout)
    # The other expectations still hold, and say so.
    assert "✓ [2] sz-wwtp-odour odour.h2s resolved" in done.stdout


def test_the_issue_s_example_runs_as_specified(
    runs: dict[str, Future[subprocess.CompletedProcess[str]]],
) -> None:
    done = runs[ISSUE].result(timeout=RUN_TIMEOUT_S * 4)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    result = msgspec.json.decode(done.stdout)
    (expectation,) = result["expectations"]
    assert expectation["holds"] is True
    (event,) = expectation["matched"]
    assert (event["rule"], event["event"], event["lane"]) == ("odour.h2s", "fired", "live")
    assert 1800 <= event["at_s"] <= 3000
    # The replayed node's readings were stored too (3 hours of PRSA rows, several quantities).
    assert result["readings_stored"] > 3 * 5
    junit = Path(done.args[done.args.index("--junit") + 1])
    assert junit.read_text(encoding="utf-8").count("<testcase") == 1


def test_a_bad_file_exits_2_with_the_field_named(tmp_path: Path) -> None:
    source = (LIBRARY / "odour-wwtp-h2s.toml").read_text(encoding="utf-8")
    file = tmp_path / "bad.toml"
    file.write_text(source.replace('kind = "step"', 'kind = "stpe"', 1), encoding="utf-8")
    done = run(file, tmp_path)
    assert done.returncode == 2
    assert "$.event[0].kind" in done.stderr
    assert "Traceback" not in done.stderr
