"""Configuration files and ENVNET_* overrides give clear errors, never tracebacks."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from aggregator.calibration.file import load_calibrations
from aggregator.config import load_aggregator_config
from aggregator.fleet import load_fleet
from edge.config import EdgeConfig, load_edge_config
from edge.drivers.registry import create_driver
from edge.runtime import build_sampler
from envnet.cli import EXIT_CONFIG, main
from schemas.runtime.configfile import ConfigError
from schemas.runtime.endpoints import EndpointError, parse_mqtt_url
from simulators.devices import load_devices_config

NODE = """
[node]
id = "sz-1"
[[sensors]]
id = "pm"
driver = "sim-air"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_edge_config_defaults_and_env_override(tmp_path: Path) -> None:
    path = write(tmp_path, "node.toml", NODE)
    config = load_edge_config(path, environ={"ENVNET_MQTT_URL": "mqtts://u:p%40ss@broker:8884"})
    endpoint = config.mqtt.endpoint()
    assert (endpoint.host, endpoint.port, endpoint.tls) == ("broker", 8884, True)
    assert (endpoint.username, endpoint.password) == ("u", "p@ss")
    assert "p@ss" not in repr(endpoint) and "p@ss" not in endpoint.display
    assert config.sampling.report_interval_s == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NODE + "[mqtt]\nurl = 'http://x'\n", "mqtt:// or mqtts://"),
        (NODE + "[mqtt]\nurl = 'mqtt://x'\nbogus = 1\n", "bogus"),
        (NODE.replace('"sz-1"', '"SZ 1"'), "node.id"),
        (NODE + "[[sensors]]\nid = 'pm'\ndriver = 'sim-air'\n", "unique"),
        (NODE + "[sampling]\nsample_interval_s = 120\n", "sample_interval_s"),
        ("[node\nid=1", "not valid TOML"),
    ],
)
def test_edge_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_edge_config(write(tmp_path, "node.toml", text), environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_edge_config(tmp_path / "absent.toml", environ={})


def test_aggregator_env_overrides_select_v2(tmp_path: Path) -> None:
    env = {
        "ENVNET_INFLUX_URL": "http://db:8086",
        "ENVNET_INFLUX_ORG": "suzhou",
        "ENVNET_INFLUX_BUCKET": "envnet",
        "ENVNET_INFLUX_TOKEN": "secret",
        "ENVNET_FLEET": "/etc/envnet/fleet.toml",
    }
    config = load_aggregator_config(None, environ=env)
    assert config.influx.resolved_api() == "v2"
    assert config.fleet.path == "/etc/envnet/fleet.toml"
    v1 = load_aggregator_config(None, environ={"ENVNET_INFLUX_DB": "city"})
    assert v1.influx.resolved_api() == "v1" and v1.influx.database == "city"


def test_aggregator_v2_needs_token(tmp_path: Path) -> None:
    path = write(tmp_path, "agg.toml", "[influx]\napi = 'v2'\norg = 'o'\nbucket = 'b'\n")
    with pytest.raises(ConfigError, match="org, bucket and token"):
        load_aggregator_config(path, environ={})


def test_windows_must_close_by_time_before_their_results_are_late(tmp_path: Path) -> None:
    """A window closed by time later than late_after_s would be judged late: never paged."""
    text = "[alerts]\nlate_after_s = 600\n[alerts.windows]\nclose_after_s = 600\n"
    with pytest.raises(ConfigError, match="close_after_s must be below late_after_s"):
        load_aggregator_config(write(tmp_path, "agg.toml", text), {})
    ok = "[alerts]\nlate_idle_s = 900\n[alerts.windows]\nclose_after_s = 60\n"
    assert load_aggregator_config(write(tmp_path, "agg.toml", ok), {}).alerts.late_idle_s == 900


def test_fleet_inventory(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fleet.toml",
        """
[nodes.sz-taihu]
site = "Taihu, Gonghu Bay"
location = { lat = 31.42, lon = 120.33 }
water_body = "lake"
water_target = 3
[nodes.sz-road]
site = "Ring road"
noise_zone = "4a"
air_zone = 2
""",
    )
    fleet = load_fleet(path)
    info = fleet.get("sz-taihu")
    assert info is not None and info.node == "sz-taihu" and info.water_target == 3
    assert "sz-road" in fleet and len(fleet) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[nodes.x]\nsite = "a"\nnoise_zone = "5"\n', "noise_zone"),
        ('[nodes.x]\nsite = "a"\nair_zone = 3\n', "air_zone"),
        ('[nodes.x]\nsite = "a"\nwater_target = 3\n', "water_target needs water_body"),
        ('[nodes."X Y"]\nsite = "a"\n', "nodes"),
        ('[nodes.x]\nsite = "back\\\\slash"\n', "site"),
        ('[nodes.x]\nsite = "a"\nodour_grade = "II"\n', "odour_grade"),
    ],
)
def test_fleet_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_fleet(write(tmp_path, "fleet.toml", text))


@pytest.mark.parametrize("url", ["tcp://x", "mqtt://", "mqtt://h:99999", "mqtt://h/path"])
def test_bad_mqtt_urls(url: str) -> None:
    with pytest.raises(EndpointError):
        parse_mqtt_url(url)


def test_shipped_example_configs_load() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "config"
    node = load_edge_config(deploy / "node.toml", environ={})
    assert node.node.id == "sz-sip-roadside"
    sampler = build_sampler(node, start_ms=1_796_000_000_000)
    assert {h.sensor for h in sampler.health()} == {"pm", "met", "snd"}
    agg = load_aggregator_config(deploy / "agg.toml", environ={})
    assert agg.influx.resolved_api() == "v1"
    fleet = load_fleet(deploy / "fleet.toml")
    assert node.node.id in fleet


ROOT = Path(__file__).resolve().parents[2]
# Every example configuration shipped, with the parser the command that reads it uses.
EXAMPLES: dict[str, Callable[[Path], object]] = {
    "deploy/config/node.toml": lambda p: load_edge_config(p, environ={}),
    "deploy/config/node-hardware.toml": lambda p: load_edge_config(p, environ={}),
    "deploy/config/agg.toml": lambda p: load_aggregator_config(p, environ={}),
    "deploy/config/fleet.toml": load_fleet,
    "deploy/config/devices.toml": load_devices_config,
    "deploy/config/calibrations.toml": load_calibrations,
    "deploy/pi/node.toml": lambda p: load_edge_config(p, environ={}),
}


def test_every_example_config_is_listed_here() -> None:
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "deploy").glob("*/*.toml")}
    assert shipped == set(EXAMPLES), "give the new example its parser in EXAMPLES"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_config_loads_with_its_parser(name: str) -> None:
    config = EXAMPLES[name](ROOT / name)
    if isinstance(config, EdgeConfig):
        # The driver options too, with each driver's own parser (drivers open nothing yet).
        build_sampler(config, start_ms=1_796_000_000_000).close()


def test_the_hardware_examples_simulator_options_load() -> None:
    """The options node-hardware.toml's comment shows for the simulators are accepted by the
    drivers of the sensors they are for: `flags` in options, not beside id and driver."""
    path = ROOT / "deploy/config/node-hardware.toml"
    config = load_edge_config(path, environ={})
    drivers = {s.id: s.driver for s in config.sensors}
    examples = [
        tomllib.loads(line.removeprefix("#").strip())["options"]
        for line in path.read_text().splitlines()
        if line.startswith("#   options = ")
    ]
    assert len(examples) == 3
    for options in examples:
        port = options.get("port")
        driver = drivers[Path(port).name] if port else "bme280"
        create_driver(driver, "x", options).close()
    flagged = [o for o in examples if o.get("flags") == ["simulated"]]
    assert len(flagged) == 2


def test_a_driver_option_beside_id_and_driver_says_where_it_goes(tmp_path: Path) -> None:
    text = NODE.replace('driver = "sim-air"', 'driver = "pms5003"\nflags = ["simulated"]')
    with pytest.raises(ConfigError, match=r"node.toml: sensors\[0\] \(pm\): 'flags' .*options"):
        load_edge_config(write(tmp_path, "node.toml", text), environ={})


@pytest.mark.parametrize("command", [["edge"], ["edge", "check"]])
def test_driver_option_errors_name_the_file_the_sensor_and_the_option(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = NODE.replace('driver = "sim-air"', 'driver = "pms5003"\noptions = { prot = "/x" }')
    path = write(tmp_path, "node.toml", text)
    assert main([*command, "--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{path}: sensor pm: bad options for pms5003" in err
    assert "unknown field `prot`" in err
