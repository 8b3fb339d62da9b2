"""Assemble an edge agent from its configuration, and run it until SIGTERM or SIGINT."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path
from types import FrameType

from edge.agent import AgentSettings, EdgeAgent, LoopHook, Producer
from edge.clock import Clock, WallClock
from edge.config import EdgeConfig
from edge.drivers.registry import create_driver
from edge.journal import Journal
from edge.link import LinkSettings, MqttLink
from edge.sampler import Sampler
from edge.watchdog import systemd_watchdog
from schemas.runtime.backoff import Backoff
from schemas.runtime.version import VERSION


def build_sampler(config: EdgeConfig, start_ms: int) -> Sampler:
    drivers = [create_driver(s.driver, s.id, s.options) for s in config.sensors]
    return Sampler(
        drivers,
        config.sampling.sample_interval_s,
        config.sampling.report_interval_s,
        start_ms,
        serials={s.id: s.serial for s in config.sensors if s.serial is not None},
    )


def build_agent(
    config: EdgeConfig,
    *,
    clock: Clock | None = None,
    producer: Producer | None = None,
    stop: threading.Event | None = None,
    hook: LoopHook | None = None,
) -> EdgeAgent:
    clock = clock or WallClock()
    producer = producer or build_sampler(config, clock.now_ms())
    journal = Journal(Path(config.journal.path), config.journal.max_bytes, config.journal.max_age_s)
    mqtt = config.mqtt
    link = MqttLink(
        config.node.id,
        LinkSettings(
            endpoints=mqtt.endpoints(),
            client_id=mqtt.client_id or f"envnet-edge-{config.node.id}",
            keepalive_s=mqtt.keepalive_s,
            ca_file=mqtt.ca_file,
            max_inflight=mqtt.max_inflight,
            return_home_s=mqtt.return_home_s,
        ),
        Backoff(
            initial_s=mqtt.reconnect_initial_s, cap_s=mqtt.reconnect_cap_s, rng=random.Random()
        ),
        sleep=(stop or threading.Event()).wait,
    )
    settings = AgentSettings(
        node=config.node.id,
        version=VERSION,
        ack_timeout_s=mqtt.ack_timeout_s,
        ack_timeout_cap_s=mqtt.ack_timeout_cap_s,
        drain_rate_per_s=config.drain.rate_readings_per_s,
        drain_batch=config.drain.batch_readings,
        status_interval_s=mqtt.status_interval_s,
    )
    return EdgeAgent(settings, producer, journal, link, clock, hook=hook)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (systemd, docker) and SIGINT (Ctrl-C) both ask for a clean stop."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_edge(config: EdgeConfig) -> None:
    clock = WallClock()
    # The drivers first: a bad sensor option is a configuration error before anything else.
    producer = build_sampler(config, clock.now_ms())
    stop = threading.Event()
    stop_on_signals(stop)
    # Under systemd (Type=notify): READY=1, watchdog pings while the sampler keeps its
    # schedule, STOPPING=1. Without $NOTIFY_SOCKET the hook does nothing.
    hook = systemd_watchdog(
        os.environ,
        lambda: clock.wall_seconds_until(producer.next_due_ms()),
        config.sampling.sample_interval_s,
    )
    build_agent(config, clock=clock, producer=producer, stop=stop, hook=hook).run(stop)
