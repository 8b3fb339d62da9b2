"""The aggregator under test, as its own process: `python -m envnet.cli aggregator`.

It gets a temporary agg.toml (metrics port, state dir, knob overrides) and fleet.toml (the
bench nodes), and the broker and database through ENVNET_* variables, as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._shapes import node_info
from schemas import codec, topics
from schemas.messages import STATUS_SCHEMA, StatusMessage
from schemas.runtime.toml_text import dumps
from simulators.local_stack import free_port

READY_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 60.0
TomlScalar = int | float | bool | str
Overrides = Mapping[str, Mapping[str, TomlScalar]]


class AggregatorError(RuntimeError):
    """The aggregator process failed to start or to take messages."""


@dataclass(frozen=True, slots=True)
class AggregatorSetup:
    directory: Path
    mqtt_url: str
    influx_url: str
    database: str
    nodes: tuple[str, ...]
    overrides: Overrides = field(default_factory=dict)
    log_level: str = "info"
    env: Mapping[str, str] = field(default_factory=dict)  # e.g. ENVNET_REPLICA


def fleet_document(nodes: tuple[str, ...]) -> dict[str, object]:
    """fleet.toml of the bench nodes: each node's site and air zone (bench._shapes)."""
    return {"nodes": {n: {"site": (i := node_info(n)).site, "air_zone": i.air_zone} for n in nodes}}


def _merge(base: dict[str, dict[str, TomlScalar]], extra: Overrides) -> Overrides:
    for table, values in extra.items():
        base.setdefault(table, {}).update(values)
    return base


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format to {'name{labels}': value}."""
    values = {}
    for raw in text.splitlines():
        if not raw or raw.startswith("#"):
            continue
        key, _, value = raw.rpartition(" ")
        values[key] = float(value)
    return values


class AggregatorProcess:
    """Starts the aggregator and stops it (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, setup: AggregatorSetup) -> None:
        self._setup = setup
        self.metrics_port = free_port()
        self.log_path = setup.directory / "aggregator.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._config = setup.directory / "agg.toml"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _write_config(self) -> Path:
        s = self._setup
        s.directory.mkdir(parents=True, exist_ok=True)
        fleet = s.directory / "fleet.toml"
        fleet.write_text(dumps(fleet_document(s.nodes)), encoding="utf-8")
        base: dict[str, dict[str, TomlScalar]] = {
            "mqtt": {"client_id": "envnet-aggregator-bench"},
            "fleet": {"path": str(fleet)},
            "metrics": {"host": "127.0.0.1", "port": self.metrics_port},
            "state": {"dir": str(s.directory / "state")},
        }
        config = s.directory / "agg.toml"
        config.write_text(dumps(_merge(base, s.overrides)), encoding="utf-8")
        return config

    def __enter__(self) -> Self:
        self._config = self._write_config()
        self.start()
        return self

    def start(self) -> None:
        """Start the process on the written configuration (again, after `kill`) and return
        once /healthz answers."""
        s = self._setup
        env = {
            **os.environ,
            "ENVNET_MQTT_URL": s.mqtt_url,
            "ENVNET_INFLUX_URL": s.influx_url,
            "ENVNET_INFLUX_DB": s.database,
            **s.env,
        }
        argv = [sys.executable, "-m", "envnet.cli", "aggregator", "--config", str(self._config)]
        argv += ["--log-level", s.log_level]
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(  # fixed argv: this interpreter, our module
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL, as a crash: no drain, no clean MQTT disconnect."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        self.stop(timeout_s=5.0 if interrupted else STOP_TIMEOUT_S)

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def _check_alive(self) -> None:
        process = self._process
        if process is not None and process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise AggregatorError(f"aggregator exited with {process.returncode}:\n{tail}")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(self._url("/healthz"), timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AggregatorError(f"aggregator not healthy after {READY_TIMEOUT_S} s")

    def metrics(self) -> dict[str, float]:
        self._check_alive()
        with urllib.request.urlopen(self._url("/metrics"), timeout=5) as response:
            return parse_metrics(response.read().decode())

    def wait_subscribed(self, mqtt_port: int) -> None:
        """Publish a node status until the aggregator has received one: its subscriptions
        are in place, and no bench message can go to a topic nobody subscribes to."""
        node = self._setup.nodes[0]
        status = StatusMessage(
            STATUS_SCHEMA, node, "online", ts=int(time.time() * 1000), version="bench"
        )
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", mqtt_port)
        client.loop_start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline:
                client.publish(topics.status(node), codec.STATUS.encode(status), qos=1)
                time.sleep(0.2)
                if self.metrics().get('envnet_messages_received_total{kind="status"}', 0) > 0:
                    return
            raise AggregatorError("aggregator did not receive a status message")
        finally:
            client.loop_stop()
            client.disconnect()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (the aggregator drains and exits cleanly), SIGKILL after `timeout_s`."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
