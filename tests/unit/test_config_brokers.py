"""[mqtt] url or urls (several brokers, the first is home), return_home_s, and ENVNET_MQTT_URL
as one URL or a comma-separated list: in node.toml and agg.toml alike, every bad input a
clear error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aggregator.config import load_aggregator_config
from edge.config import load_edge_config
from schemas.runtime.configfile import ConfigError
from schemas.runtime.endpoints import split_url_list, url_or_urls

NODE = """
[node]
id = "sz-1"
[[sensors]]
id = "pm"
driver = "sim-air"
"""


def _edge(tmp_path: Path, mqtt: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "node.toml"
    path.write_text(NODE + "[mqtt]\n" + mqtt, encoding="utf-8")
    config = load_edge_config(path, environ=environ or {})
    return [e.display for e in config.mqtt.endpoints()]


def _agg(tmp_path: Path, mqtt: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "agg.toml"
    path.write_text("[mqtt]\n" + mqtt, encoding="utf-8")
    config = load_aggregator_config(path, environ=environ or {})
    return [e.display for e in config.mqtt.endpoints()]


Load = Callable[[Path, str, dict[str, str] | None], list[str]]
LOADERS = pytest.mark.parametrize("load", [_edge, _agg], ids=["node.toml", "agg.toml"])


@LOADERS
def test_urls_in_order_and_a_single_url_is_a_list_of_one(tmp_path: Path, load: Load) -> None:
    many = load(tmp_path, 'urls = ["mqtt://a:1883", "mqtt://b:1884", "mqtt://u:pw@c"]\n', None)
    assert many == ["mqtt://a:1883", "mqtt://b:1884", "mqtt://c:1883"]
    assert load(tmp_path, 'url = "mqtt://a:1999"\n', None) == ["mqtt://a:1999"]
    assert load(tmp_path, "", None) == ["mqtt://localhost:1883"]


@LOADERS
def test_env_holds_one_url_or_a_comma_list_and_replaces_the_file(
    tmp_path: Path, load: Load
) -> None:
    listed = {"ENVNET_MQTT_URL": "mqtt://x:1, mqtt://y:2 ,mqtt://z:3"}
    assert load(tmp_path, 'url = "mqtt://a"\n', listed) == [
        "mqtt://x:1",
        "mqtt://y:2",
        "mqtt://z:3",
    ]
    one = {"ENVNET_MQTT_URL": "mqtt://x:1"}
    assert load(tmp_path, 'urls = ["mqtt://a", "mqtt://b"]\n', one) == ["mqtt://x:1"]


def test_return_home_s_is_read_and_defaults_to_600(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(NODE, encoding="utf-8")
    assert load_edge_config(path, environ={}).mqtt.return_home_s == 600.0
    path.write_text(NODE + "[mqtt]\nreturn_home_s = 5\n", encoding="utf-8")
    assert load_edge_config(path, environ={}).mqtt.return_home_s == 5.0
    agg = tmp_path / "agg.toml"
    agg.write_text("[mqtt]\nreturn_home_s = 0\n", encoding="utf-8")
    assert load_aggregator_config(agg, environ={}).mqtt.return_home_s == 0.0


BAD = [
    ('url = "mqtt://a"\nurls = ["mqtt://b"]\n', {}, "url .*urls.*not both"),
    ('urls = ["mqtt://a", "http://b"]\n', {}, r"mqtt\.urls: \[1\]: .*mqtt:// or mqtts://"),
    ('urls = ["mqtt://a", "mqtt://"]\n', {}, r"\[1\]: MQTT URL has no host"),
    ('urls = ["mqtt://a:99999"]\n', {}, r"\[0\]: bad MQTT URL"),
    ('urls = ["mqtt://a/x"]\n', {}, "takes no path"),
    ('urls = ["mqtt://a:1883", "mqtt://a"]\n', {}, "listed twice"),
    ('urls = ["mqtt://a", "mqtts://b"]\n', {}, "mixes mqtt:// and mqtts://"),
    ('urls = "mqtt://a"\n', {}, "urls"),
    ("urls = [1883]\n", {}, "urls"),
    ("return_home_s = -1\n", {}, "return_home_s"),
    ("", {"ENVNET_MQTT_URL": "mqtt://a,ftp://b"}, r"\[1\]: .*mqtt:// or mqtts://"),
    ("", {"ENVNET_MQTT_URL": "mqtt://a,mqtt://a"}, "listed twice"),
]


@LOADERS
@pytest.mark.parametrize(("mqtt", "environ", "message"), BAD)
def test_bad_broker_settings_are_clear_errors(
    tmp_path: Path, load: Load, mqtt: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, mqtt, environ)


def test_a_password_in_a_bad_url_is_not_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _edge(tmp_path, 'urls = ["mqtt://a", "http://u:s3cret@b"]\n')
    assert "s3cret" not in str(caught.value)


def test_url_or_urls_for_commands_that_take_one_string() -> None:
    """`envnet sim replay-csv --mqtt-url` and `envnet sim fleet` take one URL or a list."""
    assert url_or_urls("mqtt://a:1") == ("mqtt://a:1", ())
    assert url_or_urls(" mqtt://a:1 , mqtt://b:2,") == (None, ("mqtt://a:1", "mqtt://b:2"))
    assert split_url_list(" , ") == [] and split_url_list(None) == []
