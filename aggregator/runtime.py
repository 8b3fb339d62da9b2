"""Run the aggregator until SIGTERM or SIGINT, then shut down cleanly; SIGHUP reloads the
fleet inventory."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from aggregator.config import AggregatorConfig
from aggregator.fleet import load_fleet
from aggregator.gc_tuning import tune_gc
from aggregator.service import AggregatorService


async def serve(config: AggregatorConfig) -> None:
    path = Path(config.fleet.path)
    fleet = load_fleet(path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = AggregatorService(config, fleet, fleet_path=path)
    if service.fleet_watcher is not None:
        loop.add_signal_handler(signal.SIGHUP, service.fleet_watcher.request)
    await service.run(stop)


def run_aggregator(config: AggregatorConfig) -> None:
    tune_gc()
    asyncio.run(serve(config))
