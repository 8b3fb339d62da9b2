"""Run the aggregator until SIGTERM or SIGINT, then shut down cleanly."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aggregator.config import AggregatorConfig
from aggregator.fleet import load_fleet
from aggregator.gc_tuning import tune_gc
from aggregator.service import AggregatorService


async def serve(config: AggregatorConfig) -> None:
    fleet = load_fleet(Path(config.fleet.path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await AggregatorService(config, fleet).run(stop)


def run_aggregator(config: AggregatorConfig) -> None:
    tune_gc()
    asyncio.run(serve(config))
