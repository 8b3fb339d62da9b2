"""`envnet alerts` with ENVNET_MQTT_URL naming a cluster's servers: the first serves."""

from __future__ import annotations

import argparse

import pytest

from envnet.commands.alerts import _endpoint


def test_a_url_list_in_the_environment_uses_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVNET_MQTT_URL", "mqtt://a:1883, mqtt://b:1884")
    assert _endpoint(argparse.Namespace(mqtt_url=None)).display == "mqtt://a:1883"
    # --mqtt-url wins over the environment
    flag = argparse.Namespace(mqtt_url="mqtt://c:1")
    assert _endpoint(flag).display == "mqtt://c:1"
    monkeypatch.setenv("ENVNET_MQTT_URL", "mqtt://only:1")
    assert _endpoint(argparse.Namespace(mqtt_url=None)).display == "mqtt://only:1"
