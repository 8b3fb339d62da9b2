"""An edge agent process for the kill -9 end-to-end test: the real agent, journal and MQTT
link (edge.runtime.build_agent), on an accelerated clock, fed by the deterministic ramp
driver, reporting on a file descriptor what it produced and what is journaled.

    python -m tests.support.edge_crash_child --config node.toml --fd N --start-ms MS --accel X

Lines written to the descriptor: `T key...` for readings the sampler produced (about to be
journaled), `J key...` for readings whose journal commit has returned. A reading is
reported journaled when the agent asks the producer for more: it does so only after the
previous readings' append returned. key = quantity:stat:period_s:ts.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from edge.agent import Producer
from edge.clock import ScaledClock
from edge.config import load_edge_config
from edge.runtime import build_agent, stop_on_signals
from edge.sampler import Sampler
from schemas.messages import Reading, SensorHealth
from tests.support.edge_harness import RampDriver


def key(r: Reading) -> str:
    return f"{r.quantity}:{r.stat}:{r.period_s}:{r.ts}"


class ReportingProducer:
    def __init__(self, inner: Producer, fd: int) -> None:
        self._inner = inner
        self._fd = fd
        self._handed: list[Reading] = []

    def _report(self, kind: str, readings: list[Reading]) -> None:
        if readings:
            # One write per line, well under PIPE_BUF: a kill never leaves half a line.
            for start in range(0, len(readings), 50):
                keys = " ".join(key(r) for r in readings[start : start + 50])
                os.write(self._fd, f"{kind} {keys}\n".encode())

    def step(self, now_ms: int) -> list[Reading]:
        self._report("J", self._handed)
        self._handed = self._inner.step(now_ms)
        self._report("T", self._handed)
        return self._handed

    def flush(self, now_ms: int) -> list[Reading]:
        self._report("J", self._handed)
        self._handed = self._inner.flush(now_ms)
        self._report("T", self._handed)
        return self._handed

    def next_due_ms(self) -> int:
        return self._inner.next_due_ms()

    def health(self) -> list[SensorHealth]:
        return self._inner.health()

    def close(self) -> None:
        self._inner.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--start-ms", type=int, required=True)
    parser.add_argument("--accel", type=float, default=20.0)
    args = parser.parse_args()
    config = load_edge_config(args.config)
    clock = ScaledClock(args.start_ms, args.accel)
    sampler = Sampler(
        [RampDriver()],
        config.sampling.sample_interval_s,
        config.sampling.report_interval_s,
        clock.now_ms(),
    )
    stop = threading.Event()
    stop_on_signals(stop)
    producer = ReportingProducer(sampler, args.fd)
    build_agent(config, clock=clock, producer=producer, stop=stop).run(stop)


if __name__ == "__main__":
    main()
