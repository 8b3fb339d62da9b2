"""The load generator's own cost: CPU per QoS 1 message of one publisher, paho against the
lean raw client (bench/_raw_mqtt.py), publishing the live shape to a real mosquitto.

Each round runs both clients in turn, in this process, each publishing the same messages
(one 6-reading sample per message, 25 nodes in turn) until the broker has PUBACKed them all.
No aggregator listens. Prints CPU µs per message of each, and the ratio. Last line:
`paho_cpu_us_per_msg=… raw_cpu_us_per_msg=… raw_ratio=…`

    .venv/bin/python bench/publisher_cost.py [--messages 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable for bench.*
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._publisher import CLIENTS, PublisherClient, PublisherSpec, PublisherState, connect, send
from bench._shapes import node_ids, start_ts_ms
from simulators.local_stack import Mosquitto

NODES = 25


def cost(port: int, client: PublisherClient, messages: int, index: int) -> float:
    """CPU seconds per message of one publisher run."""
    spec = PublisherSpec(
        index=index,
        port=port,
        nodes=node_ids(1, NODES)[0],
        mode="live",
        t0_ms=start_ts_ms(),
        sent_ms=int(time.time() * 1000),
        seconds=3600.0,
        window=1000,
        messages_per_node=messages // NODES,
        client=client,
    )
    state = PublisherState()
    link = connect(spec, state)
    try:
        started = time.process_time()
        report = send(link, spec, state)
        used = time.process_time() - started
    finally:
        link.close()
    if report.error:
        raise SystemExit(f"{client}: {report.error}")
    return used / report.messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[PublisherClient, list[float]] = {c: [] for c in CLIENTS}
    with tempfile.TemporaryDirectory(prefix="envnet-pubcost-") as tmp:
        Path(tmp).chmod(0o755)  # mosquitto drops to its own user
        with Mosquitto(Path(tmp) / "mosquitto") as broker:
            for r in range(args.rounds):
                for i, client in enumerate(CLIENTS):
                    per = cost(broker.port, client, args.messages, r * len(CLIENTS) + i)
                    results[client].append(per)
                    print(f"round {r + 1}: {client:<5} {per * 1e6:7.1f} us CPU per message")
    paho, raw = (statistics.median(results[c]) * 1e6 for c in ("paho", "raw"))
    print(f"paho_cpu_us_per_msg={paho:.1f} raw_cpu_us_per_msg={raw:.1f} raw_ratio={raw / paho:.3f}")


if __name__ == "__main__":
    main()
