"""`envnet sim fleet`: run a simulated fleet of real edge agents in one process.

Every node is a full EdgeAgent (its own SQLite journal and MQTT connection) fed by simulated
drivers; only the sensors are simulated. The agents share one scaled clock, each runs in its
own thread, and SIGTERM/SIGINT stops them all cleanly.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from datetime import datetime
from pathlib import Path

from envnet.argtypes import instant, non_negative_float, positive_float, positive_int

DEFAULT_MQTT = "mqtt://127.0.0.1:1883"


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nodes", type=positive_int, default=10, help="number of nodes (default 10)"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument(
        "--accel",
        type=positive_float,
        default=1.0,
        help="event-time acceleration: 60 runs an hour per minute (default 1)",
    )
    parser.add_argument(
        "--start",
        type=instant,
        default=None,
        help="event time to start at, ISO 8601 UTC (default: now). With --accel > 1 event time "
        "runs ahead of the clock: give the aggregator [alerts.windows] max_future_s = 0, as "
        "envnet demo does. Data from the past is late for the aggregator: recorded, not paged",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".dev/fleet"), help="journals")
    parser.add_argument(
        "--mqtt-url", default=None, help=f"broker (default: $ENVNET_MQTT_URL or {DEFAULT_MQTT})"
    )
    parser.add_argument(
        "--report-interval", type=positive_int, default=60, help="seconds per reading"
    )
    parser.add_argument(
        "--inventory",
        type=Path,
        default=None,
        help="write the fleet inventory TOML for the aggregator here, then run",
    )
    parser.add_argument("--inventory-only", action="store_true", help="write it and exit")
    parser.add_argument(
        "--duration", type=non_negative_float, default=None, help="stop after N seconds"
    )


def start_ms(start: datetime | None, accel: float, now_ms: int) -> int:
    if start is not None:
        return int(start.timestamp() * 1000)
    # Now, also when accelerated: data from the past would be "late" to the aggregator, and a
    # demo whose alerts are all late shows no live alert at all.
    return now_ms


def run_fleet_command(args: argparse.Namespace) -> int:
    from edge.clock import ScaledClock
    from edge.runtime import build_agent, stop_on_signals
    from schemas.runtime.configfile import ConfigError
    from schemas.runtime.logs import get_logger
    from simulators.fleet import FleetSettings, edge_config, fleet_nodes, inventory_toml

    log = get_logger("simulators.fleet")
    if args.nodes < 1 or args.accel <= 0:
        raise ConfigError("--nodes must be >= 1 and --accel > 0")
    origin = start_ms(args.start, args.accel, time.time_ns() // 1_000_000)
    nodes = fleet_nodes(args.nodes, args.seed, origin)
    if args.inventory is not None:
        args.inventory.parent.mkdir(parents=True, exist_ok=True)
        args.inventory.write_text(inventory_toml(nodes), encoding="utf-8")
        if args.inventory_only:
            return 0
    settings = FleetSettings(
        mqtt_url=args.mqtt_url or os.environ.get("ENVNET_MQTT_URL") or DEFAULT_MQTT,
        state_dir=args.state_dir,
        report_interval_s=args.report_interval,
    )
    stop = threading.Event()
    stop_on_signals(stop)
    clock = ScaledClock(origin, args.accel)
    agents = [build_agent(edge_config(spec, settings), clock=clock, stop=stop) for spec in nodes]
    threads = [
        threading.Thread(target=agent.run, args=(stop,), name=f"node-{spec.node}", daemon=True)
        for agent, spec in zip(agents, nodes, strict=True)
    ]
    for thread in threads:
        thread.start()
    log.info("fleet_running", nodes=len(nodes), accel=args.accel, seed=args.seed, origin_ms=origin)
    stop.wait(args.duration)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    return 0
