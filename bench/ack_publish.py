"""Ack flushes, CPU time of this process per ack, on a real mosquitto, rounds interleaved:

- gather: one aiomqtt publish per ack, each awaiting its PUBACK, gathered (the aggregator
  until publish_batch);
- batch: publish_batch (below): paho publishes, one wait for all of the flush's PUBACKs through
  aiomqtt's private `_pending_publishes` (the aggregator until its publisher had its own
  connection; works with the aiomqtt 2.5.x that pyproject.toml pins);
- connection: aggregator.intake.intake_connection.IntakeConnection.publish, the publisher now:
  the flush's PUBLISHes in one send, its PUBACKs parsed in one call per socket read.

Waiting for the broker's PUBACKs costs no CPU. An ack flush publishes one message per node with
acked batches: about a hundred every 0.1 s in the live bench.

    .venv/bin/python bench/ack_publish.py [--acks 100] [--flushes 200] [--rounds 5]

Last line: `gather_us_per_ack=… batch_us_per_ack=… connection_us_per_ack=… ratio=…`
(medians; ratio = connection/batch).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.intake.intake_connection import IntakeConnection
from schemas.runtime.endpoints import MqttEndpoint
from simulators.local_stack import Mosquitto

Messages = list[tuple[str, bytes]]


class _Countdown(asyncio.Event):
    """Stands in for aiomqtt's per-publish event: the last PUBACK of the batch sets it."""

    def __init__(self) -> None:
        super().__init__()
        self.left = 0

    def set(self) -> None:
        self.left -= 1
        if self.left <= 0:
            super().set()


async def publish_batch(
    client: aiomqtt.Client, messages: Sequence[tuple[str, bytes]], qos: int, timeout_s: float
) -> int:
    """Publish `messages` (topic, payload) and return how many the broker has acknowledged
    within `timeout_s` (all of them unless the connection failed meanwhile)."""
    paho = client._client
    pending = client._pending_publishes
    countdown = _Countdown()
    mids: list[int] = []
    confirmed = 0
    for topic, payload in messages:
        info = paho.publish(topic, payload, qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            continue  # disconnected: not sent (an unacked batch is resent by its node)
        if info.is_published():  # QoS 0
            confirmed += 1
            continue
        pending[info.mid] = countdown
        mids.append(info.mid)
    # No PUBACK can have been handled yet: nothing above let the event loop run.
    countdown.left = len(mids)
    if not mids:
        return confirmed
    try:
        await asyncio.wait_for(countdown.wait(), timeout_s)
    except TimeoutError:
        pass
    finally:
        for mid in mids:
            if pending.get(mid) is countdown:  # not yet acknowledged
                del pending[mid]
    return confirmed + len(mids) - max(countdown.left, 0)


async def _gather(client: aiomqtt.Client, messages: Messages) -> int:
    async def one(topic: str, payload: bytes) -> bool:
        await client.publish(topic, payload, qos=1, timeout=10)
        return True

    return sum(await asyncio.gather(*(one(t, p) for t, p in messages)))


async def _measure(port: int, acks: int, flushes: int, rounds: int) -> dict[str, list[float]]:
    messages = [
        (f"envnet/v1/nodes/n{i:03d}/ack", b'{"schema":"envnet.ack/1","node":"n","seqs":[1,2]}')
        for i in range(acks)
    ]
    out: dict[str, list[float]] = {"gather": [], "batch": [], "connection": []}
    connection = IntakeConnection(
        MqttEndpoint("127.0.0.1", port), client_id="bench-acks", clean=True, keepalive_s=30
    )
    async with (
        aiomqtt.Client("127.0.0.1", port, max_inflight_messages=1000) as client,
        connection,
    ):

        async def gather(messages: Messages) -> int:
            return await _gather(client, messages)

        async def batch(messages: Messages) -> int:
            return await publish_batch(client, messages, 1, timeout_s=10)

        async def own(messages: Messages) -> int:
            return await connection.publish(messages, qos=1, timeout_s=10)

        ways = {"gather": gather, "batch": batch, "connection": own}
        for _ in range(rounds):
            for name, way in ways.items():
                started = time.process_time()
                for _ in range(flushes):
                    if await way(messages) != acks:
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
        # as the aggregator's were (to a file), not to the terminal.
        logging.basicConfig(filename=Path(tmp) / "mqtt.log", level=logging.INFO)
        us = asyncio.run(_measure(broker.port, args.acks, args.flushes, args.rounds))
    for name, values in us.items():
        print(f"  {name:<10} " + " ".join(f"{v:.1f}" for v in values) + " CPU µs per ack")
    gather, batch = statistics.median(us["gather"]), statistics.median(us["batch"])
    own = statistics.median(us["connection"])
    print(
        f"gather_us_per_ack={gather:.1f} batch_us_per_ack={batch:.1f} "
        f"connection_us_per_ack={own:.1f} ratio={own / batch:.2f}"
    )


if __name__ == "__main__":
    main()
