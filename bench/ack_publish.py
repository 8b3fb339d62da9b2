"""Ack flushes: one aiomqtt publish per ack (each awaiting its PUBACK, gathered) against
aggregator.intake.publish_batch (one wait for the whole flush), on a real mosquitto, in the
same process, rounds interleaved. Measured in CPU time of this process: waiting for the
broker's PUBACKs costs none. An ack flush publishes one message per node with acked batches:
about a hundred every 0.1 s in the live bench.

    .venv/bin/python bench/ack_publish.py [--acks 100] [--flushes 200] [--rounds 5]

Last line: `gather_us_per_ack=… batch_us_per_ack=… ratio=…` (medians; ratio = batch/gather).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.intake.publish_batch import publish_batch
from simulators.local_stack import Mosquitto


async def _gather(client: aiomqtt.Client, messages: list[tuple[str, bytes]]) -> int:
    async def one(topic: str, payload: bytes) -> bool:
        await client.publish(topic, payload, qos=1, timeout=10)
        return True

    return sum(await asyncio.gather(*(one(t, p) for t, p in messages)))


async def _batch(client: aiomqtt.Client, messages: list[tuple[str, bytes]]) -> int:
    return await publish_batch(client, messages, 1, timeout_s=10)


async def _measure(port: int, acks: int, flushes: int, rounds: int) -> dict[str, list[float]]:
    messages = [
        (f"envnet/v1/nodes/n{i:03d}/ack", b'{"schema":"envnet.ack/1","node":"n","seqs":[1,2]}')
        for i in range(acks)
    ]
    ways = {"gather": _gather, "batch": _batch}
    out: dict[str, list[float]] = {name: [] for name in ways}
    async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=1000) as client:
        for _ in range(rounds):
            for name, way in ways.items():
                started = time.process_time()
                for _ in range(flushes):
                    if await way(client, messages) != acks:
                        raise RuntimeError(f"{name}: not every ack was acknowledged")
                out[name].append((time.process_time() - started) / (flushes * acks) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--acks", type=int, default=100, help="acks per flush")
    parser.add_argument("--flushes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "mosquitto") as broker:
        # aiomqtt logs a warning per publish beyond 10 pending: part of the cost, so logged
        # as the aggregator's are (to a file), not to the terminal.
        logging.basicConfig(filename=Path(tmp) / "mqtt.log", level=logging.INFO)
        us = asyncio.run(_measure(broker.port, args.acks, args.flushes, args.rounds))
    for name, values in us.items():
        print(f"  {name:<7} " + " ".join(f"{v:.1f}" for v in values) + " CPU µs per ack")
    gather, batch = statistics.median(us["gather"]), statistics.median(us["batch"])
    print(f"gather_us_per_ack={gather:.1f} batch_us_per_ack={batch:.1f} ratio={batch / gather:.2f}")


if __name__ == "__main__":
    main()
