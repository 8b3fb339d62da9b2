"""End to end: `envnet sim devices` serves ptys in its own process, and the edge's sampler reads
them through the driver registry with the example node-hardware.toml, changed only in its
ports and I2C bus, exactly as an operator would point a node at the simulators."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge.config import EdgeConfig, SamplingSection, load_edge_config
from edge.runtime import build_sampler
from envnet.cli import EXIT_CONFIG, build_parser, main
from envnet.configfile import ConfigError
from schemas.quantities import SPECS
from simulators.devices import load_devices_config

ROOT = Path(__file__).parents[1]
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


def test_example_devices_config_loads_and_the_command_is_wired() -> None:
    config = load_devices_config(ROOT / "deploy/config/devices.toml")
    assert {d.name for d in config.uart} == {"pm", "pm-b"}
    assert {d.name for d in config.modbus} == {"noise", "gas", "odour", "sonde"}
    args = build_parser().parse_args(["sim", "devices", "--config", "d.toml"])
    assert args.config == Path("d.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no devices"),
        (
            '[[uart]]\nname = "a"\nkind = "pms5003"\n[[uart]]\nname = "a"\nkind = "sds011"\n',
            "unique",
        ),
        ('[[modbus]]\nname = "a"\n', "exactly one"),
        ('[[modbus]]\nname = "a"\nprofile = "typical-noise"\nfaults = { fire = 0.1 }\n', "fire"),
        ('[[uart]]\nname = "a"\nkind = "pms7003"\n', "kind"),
        (
            '[[uart]]\nname = "a"\nkind = "sds011"\nfaults = { silence = 0.8, garbage = 0.8 }\n',
            "sum",
        ),
    ],
)
def test_devices_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_devices_config(path)
    assert main(["sim", "devices", "--config", str(path), "--duration", "0"]) == EXIT_CONFIG


def test_two_slaves_with_one_address_on_a_line_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(
        '[[modbus]]\nname = "a"\nline = "l"\nprofile = "typical-noise"\n'
        '[[modbus]]\nname = "b"\nline = "l"\nprofile = "typical-odour"\n'
    )
    assert main(["sim", "devices", "--config", str(path), "--duration", "0"]) == EXIT_CONFIG
