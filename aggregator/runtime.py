"""Run the aggregator until SIGTERM or SIGINT, then shut down cleanly."""

from __future__ import annotations

import asyncio
import gc
import signal
from pathlib import Path

from aggregator.config import AggregatorConfig
from aggregator.fleet import load_fleet
from aggregator.service import AggregatorService

GC_GEN0_THRESHOLD = 10_000


async def serve(config: AggregatorConfig) -> None:
    fleet = load_fleet(Path(config.fleet.path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await AggregatorService(config, fleet).run(stop)


def tune_gc() -> None:
    """Fewer collections: the aggregator keeps up to `max_buffered_readings` readings in flight
    and allocates per message; at the default threshold (700) the collector took a large share
    of its time (bench/README.md). Readings themselves are not tracked (schemas/messages.py);
    freezing moves start-up objects out of every later collection."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def run_aggregator(config: AggregatorConfig) -> None:
    tune_gc()
    asyncio.run(serve(config))
