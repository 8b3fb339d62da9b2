"""The alerting worker's evaluation rate on one core, without MQTT or InfluxDB.

Feeds bench-shaped backlog batches (100 nodes × 6 quantities, 1-min readings, 30 days old)
through aggregator.worker.process's request handler in-process, decoding each request from
msgpack as the worker does, and prints readings/s. Last line: `readings_per_s=…`.

    .venv/bin/python bench/alerting_worker.py [--requests 60]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from aggregator.config import load_aggregator_config
from aggregator.fleet import Fleet, NodeInfo
from aggregator.worker.process import _ENCODER, _REQUEST, Open, Stored, StoredBatch, _Worker
from schemas.messages import Reading
from schemas.quantities import SPECS, Quantity

SAMPLE: list[tuple[Quantity, str, float, float]] = [
    ("pm2_5", "pm", 35.0, 0.3),
    ("pm10", "pm", 60.0, 0.3),
    ("o3", "gas", 80.0, 0.3),
    ("no2", "gas", 40.0, 0.3),
    ("air_temp", "met", 18.0, 0.01),
    ("rh", "met", 55.0, 0.01),
]
NODES = [f"b000n{i:03d}" for i in range(100)]
PER_BATCH = 100


def requests(count: int) -> list[bytes]:
    rng = random.Random(1)
    t0 = int(time.time() * 1000) - 30 * 86_400_000
    t0 -= t0 % 3_600_000
    k = dict.fromkeys(NODES, 0)
    out = []
    for i in range(count):
        batches = []
        for node in NODES[:50] if i % 2 == 0 else NODES[50:]:
            readings = []
            for _ in range(PER_BATCH):
                q, sensor, typical, spread = SAMPLE[k[node] % 6]
                value = round(typical * rng.uniform(1 - spread, 1 + spread), 1)
                ts = t0 + (k[node] // 6) * 60_000
                readings.append(
                    Reading(ts=ts, quantity=q, value=value, unit=SPECS[q].unit, period_s=60,
                            stat="mean", sensor=sensor)
                )  # fmt: skip
                k[node] += 1
            batches.append(StoredBatch(node, k[node], True, readings))
        out.append(_ENCODER.encode(Stored(batches)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=60, help="requests of 5,000 readings")
    args = parser.parse_args()
    fleet = Fleet({node: NodeInfo(site="bench", air_zone=2) for node in NODES})
    worker = _Worker(load_aggregator_config(None, {}), fleet)
    worker.handle(Open(tempfile.mkdtemp(prefix="envnet-bench-worker-")))
    bodies = requests(args.requests)
    started = time.perf_counter()
    for body in bodies:
        worker.handle(_REQUEST.decode(body))
    elapsed = time.perf_counter() - started
    rate = len(bodies) * 50 * PER_BATCH / elapsed
    print(f"{len(bodies) * 50 * PER_BATCH:,} readings in {elapsed:.2f} s")
    print(f"readings_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
