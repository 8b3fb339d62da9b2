"""`envnet sim fleet`: run a simulated fleet of real edge agents in one process.

The fleet is the built-in Suzhou city (simulators.fleet), or the one a fleet file describes
(--fleet, simulators.fleet_file). Two fleets of different ids share one broker: a file's
fleet id, or --fleet-id for the city (which also prefixes the city's node ids), namespaces
the journals under --state-dir and the MQTT client ids.

Every node is a full EdgeAgent (its own SQLite journal and MQTT connection) fed by simulated
drivers; only the sensors are simulated. The agents share one scaled clock, each runs in its
own thread, and SIGTERM/SIGINT stops them all cleanly.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from envnet.argtypes import instant, node_id, non_negative_float, positive_float, positive_int
from schemas.runtime.configfile import ConfigError

if TYPE_CHECKING:
    from simulators.node_kinds import NodeSpec

DEFAULT_MQTT = "mqtt://127.0.0.1:1883"


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fleet",
        type=Path,
        default=None,
        help="a fleet file (TOML: [fleet] id, seed; [[node]] id, kind, zone, ...; see the "
        "README) to run instead of the built-in Suzhou city",
    )
    parser.add_argument(
        "--fleet-id",
        type=node_id,
        default=None,
        help="run the built-in city as fleet ID: its node ids become ID-<node>, its journals "
        "and MQTT client ids are namespaced, so it can share a broker with other fleets",
    )
    parser.add_argument(
        "--nodes", type=positive_int, default=None, help="city nodes (default 10; not with --fleet)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="simulation seed (default: the file's, or 1)"
    )
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
    from simulators.fleet import FleetSettings, edge_config, inventory_toml

    log = get_logger("simulators.fleet")
    if args.accel <= 0:
        raise ConfigError("--accel must be > 0")
    origin = start_ms(args.start, args.accel, time.time_ns() // 1_000_000)
    fleet_id, nodes = chosen_fleet(args, origin)
    if args.inventory is not None:
        args.inventory.parent.mkdir(parents=True, exist_ok=True)
        args.inventory.write_text(inventory_toml(nodes), encoding="utf-8")
        if args.inventory_only:
            return 0
    settings = FleetSettings(
        mqtt_url=args.mqtt_url or os.environ.get("ENVNET_MQTT_URL") or DEFAULT_MQTT,
        state_dir=args.state_dir,
        report_interval_s=args.report_interval,
        fleet_id=fleet_id,
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
    log.info("fleet_running", fleet=fleet_id, nodes=len(nodes), accel=args.accel, origin_ms=origin)
    stop.wait(args.duration)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    return 0


def chosen_fleet(args: argparse.Namespace, origin_ms: int) -> tuple[str, list[NodeSpec]]:
    """The fleet's id ("" for the unnamed built-in city) and its nodes."""
    from schemas.messages import ID_REGEX
    from simulators.fleet import fleet_nodes
    from simulators.fleet_file import FleetFileError, load_fleet_file

    if args.fleet is None:
        prefix = f"{args.fleet_id}-" if args.fleet_id else ""
        nodes = fleet_nodes(args.nodes or 10, 1 if args.seed is None else args.seed, origin_ms,
                            prefix=prefix)  # fmt: skip
        too_long = [n.node for n in nodes if not ID_REGEX.match(n.node)]
        if too_long:
            raise ConfigError(f"--fleet-id {args.fleet_id}: node id {too_long[0]!r} is too long")
        return args.fleet_id or "", nodes
    if args.fleet_id is not None or args.nodes is not None:
        raise ConfigError("--fleet-id and --nodes are for the built-in city, not with --fleet")
    try:
        fleet = load_fleet_file(args.fleet)
    except FleetFileError as exc:
        raise ConfigError(str(exc)) from None
    if args.seed is not None:
        fleet = dataclasses.replace(fleet, seed=args.seed)
    return fleet.id, fleet.nodes(origin_ms)
