"""The alerting worker's evaluation rate on one core, without MQTT or InfluxDB.

Feeds bench-shaped batches (100 nodes × 6 quantities, 1-min readings, 30 days old) through
aggregator.worker.process's request handler in-process, decoding each request from msgpack
as the worker does, and prints readings/s and the CPU time per reading and per batch. Two
shapes, as bench/ingest.py sends them:
- backlog: requests of 50 batches of 100 readings (a node's journal drain);
- live: requests of 40 one-message batches of 6 readings (one sample), nodes in turn.

Last line: `readings_per_s=… cpu_us_per_reading=… cpu_us_per_batch=…`.

    .venv/bin/python bench/alerting_worker.py [--shape backlog|live] [--requests N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from aggregator.config import load_aggregator_config
from aggregator.fleet import Fleet, NodeInfo
from aggregator.worker.process import _Worker
from aggregator.worker.protocol import ENCODER, REQUESTS, Open, Stored, StoredBatch
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
# (readings per batch, batches per request) of each shape.
SHAPES = {"backlog": (100, 50), "live": (6, 40)}


def requests(count: int, shape: str) -> list[bytes]:
    per_batch, per_request = SHAPES[shape]
    rng = random.Random(1)
    t0 = int(time.time() * 1000) - 30 * 86_400_000
    t0 -= t0 % 3_600_000
    k = dict.fromkeys(NODES, 0)
    out = []
    turn = 0
    for _ in range(count):
        batches = []
        for _ in range(per_request):
            node = NODES[turn % len(NODES)]
            turn += 1
            readings = []
            for _ in range(per_batch):
                q, sensor, typical, spread = SAMPLE[k[node] % 6]
                value = round(typical * rng.uniform(1 - spread, 1 + spread), 1)
                ts = t0 + (k[node] // 6) * 60_000
                readings.append(
                    Reading(ts=ts, quantity=q, value=value, unit=SPECS[q].unit, period_s=60,
                            stat="mean", sensor=sensor)
                )  # fmt: skip
                k[node] += 1
            batches.append(StoredBatch(node, k[node], shape == "backlog", readings))
        out.append(ENCODER.encode(Stored(batches)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shape", choices=list(SHAPES), default="backlog")
    parser.add_argument("--requests", type=int, help="default: 60 backlog, 3000 live")
    args = parser.parse_args()
    count = args.requests or (60 if args.shape == "backlog" else 3000)
    fleet = Fleet({node: NodeInfo(site="bench", air_zone=2) for node in NODES})
    worker = _Worker(load_aggregator_config(None, {}).worker_settings(), fleet)
    worker.handle(Open(tempfile.mkdtemp(prefix="envnet-bench-worker-")))
    bodies = requests(count, args.shape)
    per_batch, per_request = SHAPES[args.shape]
    started, cpu_started = time.perf_counter(), time.process_time()
    for body in bodies:
        worker.handle(REQUESTS.decode(body))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    batches = count * per_request
    readings = batches * per_batch
    print(f"{args.shape}: {readings:,} readings in {batches:,} batches, {elapsed:.2f} s")
    print(
        f"readings_per_s={readings / elapsed:.0f} cpu_us_per_reading={cpu / readings * 1e6:.2f} "
        f"cpu_us_per_batch={cpu / batches * 1e6:.1f}"
    )


if __name__ == "__main__":
    main()
