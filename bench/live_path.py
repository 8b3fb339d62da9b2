"""The service's own work per live message, without its I/O: CPU time per message of
`AggregatorService._handle` (intake checks, dedup, liveness bookkeeping, queueing), the
pipeline's writes (the request body built; the InfluxDB writer does nothing), `_stored` (seq
tracking, the worker's request framed and written to a socket that does nothing, its reply
faked) and ack flushes (encoded; the publisher does nothing).

What it leaves out is the I/O the end-to-end bench has (bench/ingest.py): reading MQTT, the
HTTP client, the socket writes, the publisher's PUBACKs, asyncio's scheduling of it all. It
reaches into the service's private parts to stand in for them, so it measures the code of the
tree it runs from, and two trees (before and after a change) are compared by running it from
each in turn, alternating; a ratio of the two is what to read on a shared machine:

    PYTHONPATH=TREE TREE/.venv/bin/python bench/live_path.py [--rounds 16] [--label NAME]

100 bench nodes (bench/_shapes.py, live: 6 readings a message), 100 messages each per round,
an ack flush every 850 messages (0.1 s at 8,500 messages/s). Last line:
`live_path label=… us_per_msg=…` (best round).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from aggregator.config import load_aggregator_config
from aggregator.fleet import Fleet
from aggregator.service import AggregatorService
from aggregator.storage.deadletter import DeadLetters
from aggregator.storage.pipeline import Pipeline
from aggregator.worker.protocol import Reply
from bench._shapes import SHAPES, PayloadTemplates, node_info, start_ts_ms

NODES = [f"b{p:03d}n{i:03d}" for p in range(4) for i in range(25)]
MESSAGES_PER_NODE = 100
ACK_FLUSH_EVERY = 850


class _Target:
    splits_derived = False
    display = "none"

    def resolved_api(self) -> str:
        return "v2"


class _Writer:
    """Stands in for InfluxWriter: takes the body, writes nothing."""

    target = _Target()

    async def write(self, body: bytes, derived: bool) -> None:
        pass


class _Socket:
    """Stands in for the worker's socket (an asyncio.StreamWriter)."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    async def drain(self) -> None:
        pass


class _Publisher:
    async def publish_all(self, sends: list[tuple[str, bytes]], qos: int = 1) -> int:
        return len(sends)


async def measure(rounds: int, dead_letters: Path) -> float:
    config = load_aggregator_config(
        None, {"ENVNET_MQTT_URL": "mqtt://127.0.0.1:1", "ENVNET_INFLUX_URL": "http://127.0.0.1:1"}
    )
    service = AggregatorService(config, Fleet({node: node_info(node) for node in NODES}))
    writer = _Writer()
    dead = DeadLetters(dead_letters)
    pipeline = Pipeline(writer, config.influx, service.metrics, dead, service._stored)  # type: ignore[arg-type]
    service._pipeline = pipeline
    worker = service._alerting
    worker._writer = _Socket()  # type: ignore[assignment]
    service._publisher = _Publisher()  # type: ignore[assignment]
    shape = SHAPES["live"]
    t0, sent = start_ts_ms(), int(time.time() * 1000)
    templates = [PayloadTemplates(node, shape, t0, sent) for node in NODES]
    best = float("inf")
    for r in range(rounds):
        messages = [
            (t.topic, t.payload(r * MESSAGES_PER_NODE + m))
            for m in range(MESSAGES_PER_NODE)
            for t in templates
        ]
        started = time.process_time()
        for i, (topic, payload) in enumerate(messages):
            await service._handle(topic, payload)
            if pipeline._buffer.lines >= config.influx.batch_readings or i == len(messages) - 1:
                chunk = pipeline._take_chunk()
                await pipeline._slots.acquire()
                await pipeline._write_chunk(chunk, None, asyncio.Event())
                while worker._waiters:  # the worker's replies
                    waiter = worker._waiters.popleft()
                    if waiter is not None:
                        waiter.set_result(Reply())
                await asyncio.sleep(0)  # their callbacks: the acks are queued
            if i % ACK_FLUSH_EVERY == ACK_FLUSH_EVERY - 1:
                await service._flush_outbox()
        await service._flush_outbox()
        best = min(best, (time.process_time() - started) / len(messages))
    service.metrics.flush()
    stored = service.metrics.readings_stored._value.get()
    expected = rounds * len(NODES) * MESSAGES_PER_NODE * shape.readings
    assert stored == expected, f"stored {stored} readings of {expected}"
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        best = asyncio.run(measure(args.rounds, Path(work) / "dead-letters.jsonl"))
    print(f"live_path label={args.label} us_per_msg={best * 1e6:.2f}")


if __name__ == "__main__":
    main()
