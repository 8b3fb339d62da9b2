"""Window engine throughput: readings/s through aggregator.engine.windows.WindowEngine.

Pure CPU, no services. Each node has three series (O3 with 8-h/MDA8, NO2 with daily means,
noise with day/night and percentiles) and sends 60-s readings. Prints three rates, best of
`--rounds`:

- hot: `add` of readings into the open hour only (what almost every live reading is);
- steady: `add` of several days of live readings in time order, including every hour, day,
  8-h, MDA8 and day/night close, the packing of closed hours and the pruning of old state;
- backlog: `add_batch` of a day of late readings, 99 per batch from one node, after the
  node's live data has moved on (an edge drains its journal after an outage while its live
  readings go first, so the backlog is late and revises closed windows).

    .venv/bin/python bench/event_windows.py [--nodes 100] [--days 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from aggregator.engine.windows import AIR_DAILY, NOISE, OZONE, SeriesKey, SeriesSpec, WindowEngine
from schemas.messages import Reading
from schemas.quantities import SPECS, Quantity

START_MS = 1_782_835_200_000  # 2026-07-01 00:00 UTC+8
SERIES: tuple[tuple[Quantity, SeriesSpec], ...] = (
    ("o3", OZONE),
    ("no2", AIR_DAILY),
    ("laeq", NOISE),
)
BATCH = 99

Item = tuple[SeriesKey, Reading, SeriesSpec]


def node_minutes(node: int, first_minute: int, minutes: int) -> list[Item]:
    """One node's readings, minute by minute."""
    items: list[Item] = []
    for minute in range(first_minute, first_minute + minutes):
        ts = START_MS + minute * 60_000
        for quantity, spec in SERIES:
            q = SPECS[quantity]
            value = 40.0 + (minute * 7 + node) % 30
            reading = Reading(ts, quantity, value, q.unit, 60, q.default_stat, "s")
            items.append(((f"node{node}", "s", quantity), reading, spec))
    return items


def fleet(nodes: int, first_minute: int, minutes: int) -> list[Item]:
    """Every node's readings, interleaved minute by minute (time order across the fleet)."""
    per_node = [node_minutes(n, first_minute, minutes) for n in range(nodes)]
    width = len(SERIES)
    return [
        item
        for step in range(0, minutes * width, width)
        for node in per_node
        for item in node[step : step + width]
    ]


def add_rate(items: list[Item], engine: WindowEngine) -> tuple[float, int]:
    add = engine.add
    emitted = 0
    began = time.perf_counter()
    for key, reading, spec in items:
        emitted += len(add(key, reading, spec))
    return len(items) / (time.perf_counter() - began), emitted


def batch_rate(batches: list[list[Item]], engine: WindowEngine) -> tuple[float, int]:
    emitted = 0
    began = time.perf_counter()
    for batch in batches:
        emitted += len(engine.add_batch(batch))
    count = sum(len(b) for b in batches)
    return count / (time.perf_counter() - began), emitted


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    hot_items = fleet(args.nodes, 1, 59)
    steady_items = fleet(args.nodes, 0, args.days * 24 * 60)
    backlog = [
        items[i : i + BATCH]
        for n in range(args.nodes)
        for items in [node_minutes(n, 0, 24 * 60)]
        for i in range(0, len(items), BATCH)
    ]
    hot = steady = late = 0.0
    for _ in range(args.rounds):
        engine = WindowEngine()
        add_rate(fleet(args.nodes, 0, 1), engine)  # create the series outside the timing
        hot = max(hot, add_rate(hot_items, engine)[0])
        engine = WindowEngine()
        steady_rate, steady_emitted = add_rate(steady_items, engine)
        steady = max(steady, steady_rate)
        engine = WindowEngine()
        add_rate(fleet(args.nodes, 26 * 60, 1), engine)  # live data is 26 h ahead
        late_rate, late_emitted = batch_rate(backlog, engine)
        late = max(late, late_rate)

    tracemalloc.start()
    engine = WindowEngine()
    add_rate(steady_items, engine)
    held_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    series = args.nodes * len(SERIES)
    print(f"{series} series; {len(steady_items)} steady readings, {len(backlog)} backlog batches")
    print(f"hot:     {hot:>12,.0f} readings/s (add, open hour)")
    print(f"steady:  {steady:>12,.0f} readings/s (add, {steady_emitted} windows emitted)")
    print(f"backlog: {late:>12,.0f} readings/s (add_batch, {late_emitted} windows emitted)")
    print(
        f"state after {args.days} days: {engine.held_readings} readings held, "
        f"{held_bytes / 1e6:.1f} MB ({held_bytes / series / 1e3:.0f} kB a series)"
    )
    print(f"hot_per_s={hot:.0f} steady_per_s={steady:.0f} backlog_per_s={late:.0f}")


if __name__ == "__main__":
    main()
