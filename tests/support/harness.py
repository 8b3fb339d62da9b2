"""Test harness: run the real aggregator and edge agents in background threads, poll with
deadlines (never sleep-and-hope), and watch MQTT and InfluxDB."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from aggregator.config import AggregatorConfig, load_aggregator_config
from aggregator.fleet import Fleet
from aggregator.service import AggregatorService
from simulators.local_stack import Influxd, Mosquitto, influx_query


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def aggregator_config(
    mosquitto: Mosquitto | str, influx_url: str, tmp_path: Path, **influx: Any
) -> AggregatorConfig:
    """`mosquitto`: the broker, or ENVNET_MQTT_URL's value (one URL or a comma list)."""
    env = {
        "ENVNET_MQTT_URL": mosquitto if isinstance(mosquitto, str) else mosquitto.url,
        "ENVNET_INFLUX_URL": influx_url,
        "ENVNET_INFLUX_DB": "envnet",
    }
    config = load_aggregator_config(None, env)
    return msgspec.structs.replace(
        config,
        metrics=msgspec.structs.replace(config.metrics, port=0),
        state=msgspec.structs.replace(config.state, dir=str(tmp_path / "agg-state")),
        influx=msgspec.structs.replace(
            config.influx, retry_initial_s=0.05, retry_cap_s=0.5, **influx
        ),
        # Simulated fleets run event time ahead of the wall clock (time acceleration).
        alerts=msgspec.structs.replace(
            config.alerts,
            windows=msgspec.structs.replace(config.alerts.windows, max_future_s=0),
        ),
    )


@dataclass
class RunningAggregator:
    service: AggregatorService
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    thread: threading.Thread

    def metric(self, name: str, **labels: str) -> float:
        value = self.service.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "aggregator did not stop"


@contextmanager
def running_aggregator(
    config: AggregatorConfig, fleet: Fleet, fleet_path: Path | None = None
) -> Iterator[RunningAggregator]:
    """The aggregator in a thread; given `fleet_path` (the file `fleet` was read from), it
    reloads the inventory when the file changes, as `envnet aggregator` does."""
    ready = threading.Event()
    holder: dict[str, Any] = {}
    errors: list[BaseException] = []

    async def main() -> None:
        service = AggregatorService(config, fleet, fleet_path=fleet_path)
        stop = asyncio.Event()
        holder.update(service=service, loop=asyncio.get_running_loop(), stop=stop)
        task = asyncio.create_task(service.run(stop))
        await asyncio.wait(
            [task, asyncio.create_task(service.started.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        ready.set()
        await task

    def target() -> None:
        try:
            asyncio.run(main())
        except Exception as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=target, name="aggregator", daemon=True)
    thread.start()
    assert ready.wait(30), "aggregator did not start"
    if errors:
        raise errors[0]
    running = RunningAggregator(holder["service"], holder["loop"], holder["stop"], thread)
    try:
        yield running
    finally:
        running.stop()
        if errors:
            raise errors[0]


@dataclass
class MqttProbe:
    """A plain paho subscriber that records what crosses the broker."""

    url_port: int
    topics: list[str]
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client | None = None
    subscribed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> MqttProbe:
        """Connect and subscribe, until the broker grants every filter. A SUBACK may refuse
        one (0x80): nats-server does while its JetStream cluster is still settling after a
        start or a server's loss (docs/cluster/broker.md); such a probe would hear nothing."""
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        refused: list[bool] = []

        def on_connect(c: mqtt.Client, *_: object) -> None:
            c.subscribe([(t, 1) for t in self.topics])

        def on_subscribe(
            c: mqtt.Client, u: object, mid: int, codes: list[ReasonCode], *_: object
        ) -> None:
            if any(code.is_failure for code in codes):
                refused.append(True)
                c.subscribe([(t, 1) for t in self.topics])  # again, as a client would
                return
            self.subscribed.set()

        def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect("127.0.0.1", self.url_port)
        client.loop_start()
        self.client = client
        granted = self.subscribed.wait(30)
        assert granted, f"probe not subscribed in 30 s ({len(refused)} SUBACKs refused it)"
        return self

    def on(self, predicate: Callable[[str], bool]) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if predicate(t)]

    def stop(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def count(influx: Influxd | str, query: str) -> int:
    url = influx if isinstance(influx, str) else influx.url
    result = influx_query(url, query, "envnet")
    try:
        series = result["results"][0]["series"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return 0
    return sum(int(s["values"][0][1]) for s in series)
