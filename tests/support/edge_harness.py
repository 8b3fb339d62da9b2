"""Run real edge agents in threads for tests, fed by a scripted driver."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from edge.agent import EdgeAgent, Producer
from edge.clock import Clock, ScaledClock
from edge.config import (
    DrainSection,
    EdgeConfig,
    JournalSection,
    MqttSection,
    NodeSection,
    SamplingSection,
    SensorSection,
)
from edge.drivers.base import Driver, Sample
from edge.runtime import build_agent
from edge.sampler import Sampler
from schemas.messages import Flag, Reading, SensorHealth
from tests.support.harness import wait_for


@dataclass
class RampDriver:
    """A deterministic test driver: PM values that rise with time."""

    sensor_id: str = "pm"
    name: str = "ramp"

    @property
    def flags(self) -> tuple[Flag, ...]:
        return ("simulated",)

    def read(self, at_ms: int) -> Sequence[Sample]:
        value = float(at_ms // 1000 % 500)
        return [Sample("pm2_5", value), Sample("pm10", value * 1.5)]

    def close(self) -> None:
        pass


@dataclass
class CountingProducer:
    """Wraps a producer and keeps every reading it handed to the agent. Once paused, it still
    steps the inner producer (so the agent's timing is unchanged) but hands nothing on: a
    test can then wait for the journal to drain knowing no new batch follows."""

    inner: Producer
    produced: list[Reading] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    paused: threading.Event = field(default_factory=threading.Event)

    def step(self, now_ms: int) -> list[Reading]:
        return self._keep(self.inner.step(now_ms))

    def flush(self, now_ms: int) -> list[Reading]:
        return self._keep(self.inner.flush(now_ms))

    def pause(self) -> None:
        self.paused.set()

    def _keep(self, readings: list[Reading]) -> list[Reading]:
        with self.lock:
            if self.paused.is_set():
                return []
            self.produced.extend(readings)
        return readings

    def next_due_ms(self) -> int:
        return self.inner.next_due_ms()

    def health(self) -> list[SensorHealth]:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()

    def count(self) -> int:
        with self.lock:
            return len(self.produced)


def node_config(
    node: str, mqtt_url: str, tmp_path: Path, *, report_s: int = 10, ack_timeout_s: float = 2.0
) -> EdgeConfig:
    return EdgeConfig(
        node=NodeSection(id=node),
        sensors=[SensorSection(id="pm", driver="ramp")],
        mqtt=MqttSection(
            url=mqtt_url,
            reconnect_initial_s=0.1,
            reconnect_cap_s=0.5,
            ack_timeout_s=ack_timeout_s,
            keepalive_s=5,
        ),
        sampling=SamplingSection(sample_interval_s=1.0, report_interval_s=report_s),
        journal=JournalSection(path=str(tmp_path / f"{node}.sqlite")),
        drain=DrainSection(rate_readings_per_s=50.0, batch_readings=20),
    )


@dataclass
class RunningAgent:
    agent: EdgeAgent
    producer: CountingProducer
    stop: threading.Event
    thread: threading.Thread

    def halt(self) -> None:
        """Stop the agent and wait for its thread to end."""
        self.stop.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "edge agent did not stop"


def drain_and_stop(run: RunningAgent, deadline_s: float, what: str = "the journal drained") -> None:
    """Stop sampling, wait until every journaled batch is acknowledged, then stop the agent.
    Sampling stops first because a batch sampled after the drain is sent at shutdown, and
    its ack may come after the agent's short shutdown wait: it then stays journaled for the
    next run, as designed, and a check that the journal is empty would race with it."""
    run.producer.pause()
    wait_for(lambda: run.agent.journal_depth == 0, deadline_s, what)
    run.halt()


@contextmanager
def running_agent(
    config: EdgeConfig, start_ms: int, accel: float = 20.0, clock: Clock | None = None
) -> Iterator[RunningAgent]:
    clock = clock or ScaledClock(start_ms, accel)
    driver: Driver = RampDriver()
    sampler = Sampler(
        [driver],
        config.sampling.sample_interval_s,
        config.sampling.report_interval_s,
        clock.now_ms(),
    )
    producer = CountingProducer(sampler)
    stop = threading.Event()
    agent = build_agent(config, clock=clock, producer=producer, stop=stop)
    thread = threading.Thread(target=agent.run, args=(stop,), name=config.node.id, daemon=True)
    thread.start()
    run = RunningAgent(agent, producer, stop, thread)
    try:
        yield run
    finally:
        run.halt()
