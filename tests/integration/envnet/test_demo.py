"""`envnet demo` as a newcomer runs it: on its own services, or on the ones ENVNET_* names;
Ctrl-C (SIGINT) stops everything it started, and only that."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulators.local_stack import Influxd, Mosquitto
from tests.support.harness import count, wait_for

DEMO = [sys.executable, "-m", "envnet.cli", "demo", "--plain", "--nodes", "10"]
# A cap, not the expected run time: the demo tests wait for an event and stop on it.
DEMO_CAP_S = 300


def pids_mentioning(text: str) -> dict[int, str]:
    """Processes whose command line mentions `text`: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and str(os.getpid()) != entry.name:
            found[int(entry.name)] = cmdline
    return found


def processes_mentioning(text: str) -> list[str]:
    return list(pids_mentioning(text).values())


@pytest.fixture(autouse=True)
def _reap_demo_children(tmp_path: Path) -> Iterator[None]:
    """A demo killed mid-run (the test's timeout) cannot stop its children: whatever still
    mentions this test's demo directory afterwards is killed, so no run leaves processes."""
    yield
    for pid in pids_mentioning(str(tmp_path / "dev")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _more_alerts_than(influxd: Influxd, before: int) -> Callable[[], bool]:
    return lambda: count(influxd, "SELECT count(value) FROM alerts") > before


def test_demo_uses_the_services_named_by_the_environment(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ENVNET_MQTT_URL": mosquitto.url,
        "ENVNET_INFLUX_URL": influxd.url,
        "ENVNET_INFLUX_DB": "envnet",
    }
    for run in ("first", "second"):  # the second in the same directory, after the first
        alerts_before = count(influxd, "SELECT count(value) FROM alerts")
        # Until the scripted H2S release fires, however long a busy machine takes; the
        # duration is only a cap for a demo that never gets there.
        result = subprocess.run(
            [*DEMO, "--until-alert", "odour.h2s", "--duration", str(DEMO_CAP_S),
             "--dir", str(tmp_path / "dev")],
            env=env,
            capture_output=True,
            text=True,
            timeout=DEMO_CAP_S + 120,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, run + result.stdout[-3000:] + result.stderr[-3000:]
        assert not (tmp_path / "dev" / "mosquitto").exists(), "started its own broker"
        assert not (tmp_path / "dev" / "influxdb").exists(), "started its own influxd"
        assert count(influxd, "SELECT count(value) FROM readings") > 0
        # Fired in this run (not only shown as still active from the last one)...
        assert re.search(r"^alerts fired: .*odour\.h2s x\d", result.stdout, re.M), f"{run} run"
        wait_for(
            _more_alerts_than(influxd, alerts_before),
            60,
            f"the {run} run's alert events in InfluxDB",
        )
        # ...because each run starts without the alert state of the one before: alerts saved
        # as firing would not fire again, and a run could end with no alert event (exit 1).
        log = (tmp_path / "dev" / "demo" / "aggregator.log").read_text()
        loaded = re.findall(r"event=state_loaded .* alerts=(\d+)", log)
        assert loaded[-1] == "0", f"{run} run loaded {loaded[-1]} saved alerts"


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVNET_")}
    demo = subprocess.Popen(
        [*DEMO, "--dir", str(directory)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("ingest:") and "total 0" not in line:
                break
        assert processes_mentioning(str(directory)), "demo started nothing"
        demo.send_signal(signal.SIGINT)
        remaining, _ = demo.communicate(timeout=60)
        lines.append(remaining)
    finally:
        demo.kill()
    assert demo.returncode == 0, "".join(lines)[-3000:]
    wait_for(lambda: not processes_mentioning(str(directory)), 30, "demo children to exit")
    assert "stored readings:" in "".join(lines)
    # With no ENVNET_ALERTMANAGER_URL it ran its own Alertmanager, and said where its UI is.
    assert re.search(r"its UI at http://127\.0\.0\.1:\d+/#/alerts", "".join(lines))
    # ...at the start only: its summary does not send the reader to services it has stopped.
    summary = "".join(lines).split("stored readings:")[1]
    assert "its UI at" not in summary and "influx -host" not in summary, summary
    assert (directory / "alertmanager" / "alertmanager.yml").exists()
