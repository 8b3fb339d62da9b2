"""MQTT intake: how fast can one asyncio process take QoS 1 messages off a real mosquitto?

Fills a persistent session's queue with N messages while the subscriber is away, then times
draining it, alone, with four intakes, in the same run:

- paho: paho-mqtt's own network loop with a counting callback (the baseline);
- aiomqtt-iter: aiomqtt 2.5 as documented, `async for message in client.messages`;
- aiomqtt-queue: aiomqtt, taking messages straight off its queue when they are waiting
  (what the aggregator's Subscriber does);
- burst: BurstReadClient (below), which reads every buffered packet per event-loop wake-up
  (the aggregator's intake until issue #14, and its publisher until the publisher moved to
  IntakeConnection too; kept here as a baseline);
- intake: aggregator.intake.intake_connection.IntakeConnection, the aggregator's intake now,
  which parses all packets of a socket read in one call and writes their PUBACKs in one send.

Prints each rate and CPU time per message and their ratios to paho's. Last line,
machine-readable:
`paho_msgs_per_s=… aiomqtt_iter_ratio=… aiomqtt_queue_ratio=… burst_ratio=… intake_ratio=…
intake_cpu_ratio_to_burst=…`

    .venv/bin/python bench/mqtt_intake.py [--messages 60000] [--payload-bytes 700] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import select
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt.types import PahoSocket
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.intake.intake_connection import IntakeConnection
from schemas.runtime.endpoints import MqttEndpoint
from simulators.local_stack import Mosquitto

TOPIC_FILTER = "bench/+/readings"


class BurstReadClient(aiomqtt.Client):
    """aiomqtt.Client that reads every MQTT packet already buffered on the socket per event-
    loop wake-up, instead of one: the aggregator's intake, then its publisher, before both had
    their own connection (aggregator.intake.intake_connection); a baseline here.

    aiomqtt registers a reader that calls paho's `loop_read()` once per wake-up, and for a QoS 1
    subscriber that reads a single PUBLISH. The event-loop round trip per message then costs
    more than the message: draining a mosquitto queue of 700-byte QoS 1 messages alone on one
    core, plain aiomqtt reached 19-20k messages/s and this class 42-44k, the same as paho's own
    network loop (bench/README.md, "MQTT intake"). The PUBACKs that paho queues during the
    burst are written once, through aiomqtt's own write registration.

    This overrides a private method of aiomqtt and reads the size of its private receive
    queue (`_queue`): it works with aiomqtt 2.5.x, which pyproject.toml pins.
    """

    MAX_PACKETS_PER_WAKEUP: ClassVar[int] = 256

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: PahoSocket) -> None:
        loop = self._loop
        queue = self._queue

        def on_readable() -> None:
            try:
                for _ in range(self.MAX_PACKETS_PER_WAKEUP):
                    received = queue.qsize()
                    client.loop_read()
                    if client.socket() is None:
                        break
                    # A packet that was a message: read on. Otherwise the socket may be empty
                    # (paho read nothing), and only then is it asked, once per wake-up
                    # instead of once per message (a select() per message was 8 % of the
                    # aggregator's time with live 6-reading messages).
                    if queue.qsize() == received and not _has_data(sock):
                        break
            except Exception as exc:  # noqa: BLE001 - as aiomqtt: any failure ends the connection
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def start() -> None:
            loop.add_reader(sock.fileno(), on_readable)
            self._misc_task = loop.create_task(self._misc_loop())

        # paho calls this from the executor thread that ran connect() (as in aiomqtt).
        loop.call_soon_threadsafe(start)


def _has_data(sock: PahoSocket) -> bool:
    # An SSL socket may hold decrypted bytes that select() cannot see.
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def fill(port: int, client_id: str, count: int, payload: bytes) -> None:
    """Create the persistent session, leave, and publish `count` messages for it."""
    session = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
    )
    session.connect("127.0.0.1", port)
    session.subscribe(TOPIC_FILTER, 1)
    for _ in range(3):
        session.loop(0.2)
    session.disconnect()
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    publisher.max_inflight_messages_set(1000)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    infos = [publisher.publish(f"bench/{i % 100}/readings", payload, qos=1) for i in range(count)]
    for info in infos:
        info.wait_for_publish(timeout=60)
    publisher.loop_stop()
    publisher.disconnect()


def drain_paho(port: int, client_id: str, count: int) -> float:
    received = 0
    started = 0.0

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received, started
        if received == 0:
            started = time.perf_counter()
        received += 1
        if received == count:
            client.disconnect()

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
    )
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_forever()
    return count / (time.perf_counter() - started)


async def _drain_aiomqtt(port: int, client_id: str, count: int, kind: str) -> float:
    holder: list[asyncio.Queue[aiomqtt.Message]] = []

    class HeldQueue(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            holder.append(self)

    client_type = BurstReadClient if kind == "burst" else aiomqtt.Client
    client = client_type(
        "127.0.0.1",
        port,
        identifier=client_id,
        clean_session=False,
        protocol=aiomqtt.ProtocolVersion.V311,
        max_inflight_messages=1000,
        queue_type=HeldQueue,
    )
    received = 0
    started = 0.0
    async with client:
        queue = holder[0]
        while received < count:
            if kind == "aiomqtt-iter":
                await anext(client.messages)
            else:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    await anext(client.messages)
            if received == 0:
                started = time.perf_counter()
            received += 1
    return count / (time.perf_counter() - started)


async def _drain_intake(port: int, client_id: str, count: int) -> float:
    connection = IntakeConnection(
        MqttEndpoint("127.0.0.1", port), client_id=client_id, clean=False, keepalive_s=30
    )
    received = 0
    started = 0.0
    async with connection:
        messages = connection.messages
        while received < count:
            if not messages:
                await connection.wait()
            connection.taken(len(messages.popleft()[1]))
            if received == 0:
                started = time.perf_counter()
            received += 1
    return count / (time.perf_counter() - started)


def drainer(kind: str) -> Callable[[int, str, int], float]:
    if kind == "paho":
        return drain_paho
    if kind == "intake":
        return lambda port, client_id, count: asyncio.run(_drain_intake(port, client_id, count))
    return lambda port, client_id, count: asyncio.run(_drain_aiomqtt(port, client_id, count, kind))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--payload-bytes", type=int, default=700)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    kinds = ["paho", "aiomqtt-iter", "aiomqtt-queue", "burst", "intake"]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    cpu_us: dict[str, list[float]] = {k: [] for k in kinds}
    payload = b"x" * args.payload_bytes
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "mosquitto") as broker:
        for round_ in range(args.rounds):
            for kind in kinds:  # interleaved, so machine noise hits every intake alike
                client_id = f"intake-{kind}-{round_}"
                fill(broker.port, client_id, args.messages, payload)
                cpu = time.process_time()
                rates[kind].append(drainer(kind)(broker.port, client_id, args.messages))
                # This process's CPU over the drain, connecting included: on a shared machine
                # steadier than the rate.
                cpu_us[kind].append((time.process_time() - cpu) / args.messages * 1e6)
    baseline = statistics.median(rates["paho"])
    print(
        f"{args.messages} QoS 1 messages of {args.payload_bytes} bytes, drained alone, "
        f"median of {args.rounds} rounds:"
    )
    for kind in kinds:
        median = statistics.median(rates[kind])
        cpu = statistics.median(cpu_us[kind])
        print(
            f"  {kind:<14} {median:>9,.0f} msg/s  {median / baseline:5.2f} x paho"
            f"  {cpu:6.1f} us CPU/msg"
        )
    ratio = {k: statistics.median(v) / baseline for k, v in rates.items()}
    cpu_ratio = statistics.median(cpu_us["intake"]) / statistics.median(cpu_us["burst"])
    print(
        f"paho_msgs_per_s={baseline:.0f} aiomqtt_iter_ratio={ratio['aiomqtt-iter']:.2f} "
        f"aiomqtt_queue_ratio={ratio['aiomqtt-queue']:.2f} burst_ratio={ratio['burst']:.2f} "
        f"intake_ratio={ratio['intake']:.2f} intake_cpu_ratio_to_burst={cpu_ratio:.2f}"
    )


if __name__ == "__main__":
    main()
