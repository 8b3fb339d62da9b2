"""Two fleets of different ids share one broker (issue 12): three `envnet sim fleet`
processes on one mosquitto, the built-in city twice (--fleet-id east, --fleet-id west) and
the example fleet file (fleet id wuxi), into one real aggregator and influxd. Every node's
readings are stored under its own id, no id is shared, and each fleet keeps its journals
in its own directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from aggregator.fleet import Fleet, load_fleet
from simulators.local_stack import Influxd, Mosquitto
from tests.support.harness import aggregator_config, count, running_aggregator, wait_for

ENVNET = [sys.executable, "-m", "envnet.cli"]
EXAMPLE = Path(__file__).resolve().parents[3] / "simulators" / "fleets" / "wuxi.toml"
FLEETS = {
    "east": ["--fleet-id", "east", "--nodes", "3"],
    "west": ["--fleet-id", "west", "--nodes", "3"],
    "wuxi": ["--fleet", str(EXAMPLE)],
}
READINGS_PER_NODE = 10


def fleet_argv(args: list[str], state: Path, inventory: Path) -> list[str]:
    return [*ENVNET, "sim", "fleet", *args, "--accel", "120", "--state-dir", str(state),
            "--inventory", str(inventory), "--duration", "300"]  # fmt: skip


@contextmanager
def fleets_running(
    tmp_path: Path, mosquitto: Mosquitto
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    env = {**os.environ, "ENVNET_MQTT_URL": mosquitto.url}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in FLEETS.items():
            argv = fleet_argv(args, tmp_path / "state", tmp_path / f"{name}.toml")
            # The inventory first, as `envnet demo` does: the aggregator must know the nodes.
            subprocess.run([*argv, "--inventory-only"], env=env, check=True, timeout=60)
            with (tmp_path / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(argv, env=env, stderr=log)
        yield processes
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def inventories(tmp_path: Path) -> dict[str, set[str]]:
    return {name: {n.node for n in load_fleet(tmp_path / f"{name}.toml")} for name in FLEETS}


def stored(influxd: Influxd, node: str) -> int:
    return count(influxd, f"SELECT count(value) FROM readings WHERE node='{node}'")


def test_two_fleets_of_different_ids_share_one_broker(
    mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        processes = stack.enter_context(fleets_running(tmp_path, mosquitto))
        ids = inventories(tmp_path)
        everyone = [node for nodes in ids.values() for node in nodes]
        assert len(everyone) == len(set(everyone)) == 3 + 3 + 8, ids
        fleet = Fleet({i.node: i for name in FLEETS for i in load_fleet(tmp_path / f"{name}.toml")})
        config = aggregator_config(mosquitto, influxd.url, tmp_path)
        agg = stack.enter_context(running_aggregator(config, fleet))
        wait_for(
            lambda: all(stored(influxd, node) >= READINGS_PER_NODE for node in everyone),
            120,
            f"{READINGS_PER_NODE} readings stored from each of the {len(everyone)} nodes",
        )
        assert all(p.poll() is None for p in processes.values()), "a fleet stopped early"
        assert agg.metric("envnet_refused_total", reason="unknown_node") == 0
    assert [p.returncode for p in processes.values()] == [0, 0, 0]
    assert ids["east"] == {"east-sz-sip-roadside", "east-sz-gusu-oldtown", "east-sz-xishan-park"}
    assert ids["west"] == {n.replace("east-", "west-") for n in ids["east"]}
    for name, nodes in ids.items():
        journals = {p.stem for p in (tmp_path / "state" / name).glob("*.sqlite")}
        assert journals == nodes, f"{name}'s journals"
