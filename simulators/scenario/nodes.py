"""A scenario's nodes: real edge agents on the scenario's clock, and the sampler wrapper
that ends a simulated node's measuring at the scenario's end."""

from __future__ import annotations

import threading
from typing import Final

from edge.agent import EdgeAgent, Producer
from edge.clock import ScaledClock
from edge.config import EdgeConfig
from edge.runtime import build_agent, build_sampler
from schemas.messages import Reading, SensorHealth
from simulators.replay_csv import CsvReplay

_DAY_MS: Final = 86_400_000
# How long a stopping agent may take (it waits briefly for acks, then says it is offline).
_STOP_TIMEOUT_S: Final = 60.0


class NodeStopError(RuntimeError):
    """An agent that did not stop."""


class UntilEnd:
    """A simulated node's sampler, for a scenario: it catches up instead of skipping, and
    stops at the scenario's end.

    Catching up. On a Pi the sampler skips the samples it missed (edge.sampler): a reading
    of the past cannot be taken. A simulated sensor is a pure function of time, so it can,
    and a scenario running at 1000x would otherwise lose whole intervals whenever the machine
    stalls for a few wall milliseconds, making its verdict depend on the machine's load. So
    the sampler is stepped to each due instant in turn, never past it.

    The end. Its last interval is reported, nothing after it, and the agent, still
    connected, drains its journal (and says so, which closes its windows at the aggregator)
    instead of measuring on."""

    def __init__(self, inner: Producer, end_ms: int) -> None:
        self._inner = inner
        self._end_ms = end_ms
        self._ended = False

    def step(self, now_ms: int) -> list[Reading]:
        if self._ended:
            return []
        readings = self._catch_up(min(now_ms, self._end_ms))
        self._ended = now_ms >= self._end_ms
        return readings

    def _catch_up(self, until_ms: int) -> list[Reading]:
        readings: list[Reading] = []
        due = self._inner.next_due_ms()
        while due <= until_ms:
            readings.extend(self._inner.step(due))
            after = self._inner.next_due_ms()
            if after <= due:  # a producer that does not move on: step it once, not forever
                break
            due = after
        return readings

    def next_due_ms(self) -> int:
        # After the end nothing is due; the agent's loop still serves its link meanwhile.
        return self._inner.next_due_ms() if not self._ended else self._end_ms + _DAY_MS

    def flush(self, now_ms: int) -> list[Reading]:
        return [] if self._ended else self._inner.flush(min(now_ms, self._end_ms))

    def health(self) -> list[SensorHealth]:
        return self._inner.health()

    def close(self) -> None:
        self._inner.close()


class ScenarioNode:
    """One node's edge agent, which offline events stop and start again."""

    def __init__(
        self, node: str, config: EdgeConfig, replay: CsvReplay | None, end_ms: int
    ) -> None:
        self.node = node
        self.config = config
        self.replay = replay
        self._end_ms = end_ms
        self._agent: EdgeAgent | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _producer(self, clock: ScaledClock) -> Producer:
        if self.replay is not None:
            return self.replay
        return UntilEnd(build_sampler(self.config, clock.now_ms()), self._end_ms)

    def start(self, clock: ScaledClock) -> None:
        self._stop = threading.Event()
        producer = self._producer(clock)
        agent = build_agent(self.config, clock=clock, producer=producer, stop=self._stop)
        self._agent = agent
        self._thread = threading.Thread(
            target=agent.run, args=(self._stop,), name=f"scenario-{self.node}", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def depth(self) -> int:
        return self._agent.journal_depth if self._agent is not None else 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_STOP_TIMEOUT_S)
            if self._thread.is_alive():
                raise NodeStopError(f"node {self.node}: its agent did not stop within 60 s")
