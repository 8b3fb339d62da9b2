"""End to end: `envnet sim devices` serves ptys in its own process, and the edge's sampler reads
them through the driver registry with the example node-hardware.toml, changed only in its
ports and I2C bus, exactly as an operator would point a node at the simulators."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge.config import EdgeConfig, SamplingSection, load_edge_config
from edge.runtime import build_sampler
from schemas import codec, topics
from schemas.quantities import SPECS
from simulators.local_stack import Mosquitto
from tests.support.harness import MqttProbe, wait_for

ROOT = Path(__file__).parents[3]
ENVNET = [sys.executable, "-m", "envnet.cli"]

DEVICES = """
[[uart]]
name = "pm"
kind = "pms5003"
period_s = 0.1
site = { seed = 2, traffic = 0.9 }

[[uart]]
name = "pm-b"
kind = "sds011"
period_s = 0.1
site = { seed = 2 }

[[modbus]]
name = "noise"
line = "rs485"
profile = "typical-noise"
slave = 1

[[modbus]]
name = "gas"
line = "rs485"
profile = "typical-h2s-nh3"
slave = 2
site = { seed = 2, source_bearing_deg = 135.0, source_strength = 2.0 }

[[modbus]]
name = "odour"
line = "rs485"
profile = "typical-odour"
slave = 3
"""


def _wait_for(path: Path, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"envnet sim devices exited {process.returncode}: {err.decode()}")
        if time.monotonic() > deadline:
            pytest.fail("envnet sim devices did not write its paths in time")
        time.sleep(0.02)


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    config = tmp_path / "devices.toml"
    config.write_text(DEVICES)
    paths_json = tmp_path / "devices.json"
    links = tmp_path / "links"
    process = subprocess.Popen(
        [*ENVNET, "sim", "devices", "--config", str(config), "--paths-json", str(paths_json),
         "--link-dir", str(links)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for(paths_json, process, 30.0)
        yield json.loads(paths_json.read_text()), links
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err.decode()
    assert b"pm /dev/pts/" in out
    assert not any(links.iterdir())  # the symlinks are removed at exit


def _simulated_node(links: Path) -> EdgeConfig:
    """deploy/config/node-hardware.toml, pointed at the simulators as its comments describe."""
    config = load_edge_config(ROOT / "deploy/config/node-hardware.toml")
    sensors = []
    for sensor in config.sensors:
        options: dict[str, Any] = dict(sensor.options)
        if "port" in options:
            options["port"] = str(links / sensor.id)
            options["flags"] = ["simulated"]
        if "bus" in options:
            options["bus"] = "sim:node"
        sensors.append(msgspec.structs.replace(sensor, options=options))
    sampling = SamplingSection(sample_interval_s=1.0, report_interval_s=3)
    return msgspec.structs.replace(config, sensors=sensors, sampling=sampling)


def test_edge_sampler_reads_every_simulated_device(
    devices: tuple[dict[str, str], Path],
) -> None:
    paths, links = devices
    assert set(paths) == {"pm", "pm-b", "noise", "gas", "odour"}
    assert paths["noise"] == paths["gas"] == paths["odour"]  # one RS-485 line, three slaves
    config = _simulated_node(links)
    t0 = 1_717_200_000_000
    sampler = build_sampler(config, t0)
    try:
        readings = sampler.step(t0 + 3000)
    finally:
        sampler.close()
    health = {h.sensor: h for h in sampler.health()}
    assert all(h.state == "ok" and h.errors == 0 for h in health.values()), health
    by_sensor: dict[str, set[str]] = {}
    for reading in readings:
        by_sensor.setdefault(reading.sensor, set()).add(reading.quantity)
        assert SPECS[reading.quantity].lower <= reading.value <= SPECS[reading.quantity].upper
        assert "simulated" in reading.flags
    assert by_sensor == {
        "pm": {"pm2_5", "pm10"},
        "pm-b": {"pm2_5", "pm10"},
        "noise": {"laeq", "lamax"},
        "gas": {"h2s", "nh3"},
        "odour": {"odour"},
        "met": {"air_temp", "pressure", "rh"},
        "h2s": {"h2s"},
        "nh3": {"nh3"},
    }


def test_an_unplugged_modbus_line_does_not_stop_the_edge_agent(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """`envnet edge` reads a Modbus slave on `envnet sim devices`' pty and a simulated PM
    sensor; the devices process is killed (its pty goes away, as a pulled USB adapter's tty
    does). The agent reports the Modbus sensor failed and keeps publishing the other."""
    config = tmp_path / "devices.toml"
    config.write_text('[[modbus]]\nname = "noise"\nprofile = "typical-noise"\nslave = 1\n')
    paths_json = tmp_path / "devices.json"
    devices = subprocess.Popen(
        [*ENVNET, "sim", "devices", "--config", str(config), "--paths-json", str(paths_json)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    edge: subprocess.Popen[bytes] | None = None
    probe = MqttProbe(mosquitto.port, [topics.status("n1"), topics.readings("n1")]).start()
    try:
        _wait_for(paths_json, devices, 30.0)
        node = tmp_path / "node.toml"
        node.write_text(
            f'[node]\nid = "n1"\n[mqtt]\nurl = "{mosquitto.url}"\nstatus_interval_s = 0.5\n'
            "[sampling]\nsample_interval_s = 0.2\nreport_interval_s = 1\n"
            f'[journal]\npath = "{tmp_path / "journal.sqlite"}"\n'
            '[[sensors]]\nid = "noise"\ndriver = "modbus"\n'
            f'options = {{ port = "{json.loads(paths_json.read_text())["noise"]}", '
            'profile = "typical-noise", timeout_s = 0.5 }\n'
            '[[sensors]]\nid = "pm"\ndriver = "sim-air"\n'
        )
        edge = subprocess.Popen(
            [*ENVNET, "edge", "--config", str(node)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def sensors_of(state: str) -> set[str]:
            return {
                h.sensor
                for payload in probe.on(lambda t: t.endswith("/status"))
                if payload
                for h in codec.STATUS.decode(payload).sensors
                if h.state == state
            }

        def readings_of(sensor: str) -> int:
            return sum(
                r.sensor == sensor
                for payload in probe.on(lambda t: t.endswith("/readings"))
                for r in codec.READINGS.decode(payload).readings
            )

        def alive(check: Callable[[], bool]) -> Callable[[], bool]:
            def alive_and_check() -> bool:
                assert edge is not None
                if edge.poll() is not None:
                    pytest.fail(f"envnet edge exited {edge.returncode}: {_tail(edge)}")
                return check()

            return alive_and_check

        wait_for(alive(lambda: readings_of("noise") > 0), 60, "readings of the Modbus sensor")
        devices.kill()  # the pty's master side closes with the process
        devices.wait(timeout=15)
        wait_for(alive(lambda: "noise" in sensors_of("failed")), 60, "the Modbus sensor failed")
        pm_then = readings_of("pm")
        wait_for(alive(lambda: readings_of("pm") > pm_then), 60, "PM readings after the unplug")
        edge.send_signal(signal.SIGTERM)
        _, err = edge.communicate(timeout=30)
        assert edge.returncode == 0, err.decode()[-3000:]
        assert b"SerialPortError" in err and b"Traceback" not in err
    finally:
        probe.stop()
        for process in (devices, edge):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()


def _tail(process: subprocess.Popen[bytes]) -> str:
    _, err = process.communicate(timeout=15)
    return err.decode(errors="replace")[-3000:]
