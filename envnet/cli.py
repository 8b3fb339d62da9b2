"""The `envnet` command: one entry point, a subcommand per job.

Subcommands import their modules lazily, so `envnet edge` on a Pi never imports the
aggregator's dependencies, and `--help` is fast everywhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from envnet import __version__
from envnet.configfile import ConfigError
from envnet.logs import configure_logging

EXIT_CONFIG = 2


def _edge(args: argparse.Namespace) -> int:
    from edge.config import load_edge_config
    from edge.runtime import run_edge

    run_edge(load_edge_config(args.config))
    return 0


def _aggregator(args: argparse.Namespace) -> int:
    from aggregator.config import load_aggregator_config
    from aggregator.runtime import run_aggregator

    run_aggregator(load_aggregator_config(args.config))
    return 0


def _sim_fleet(args: argparse.Namespace) -> int:
    from simulators.fleet_cli import run_fleet_command

    return run_fleet_command(args)


def _sim_replay(args: argparse.Namespace) -> int:
    from simulators.replay_cli import run_replay_command

    return run_replay_command(args)


def _demo(args: argparse.Namespace) -> int:
    from envnet.demo import run_demo

    return run_demo(args)


def _grafana_push(args: argparse.Namespace) -> int:
    from aggregator.grafana_push import run

    return run(args)


def _add_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envnet",
        description="City environmental sensor networks: edge agents, aggregator, simulators.",
    )
    parser.add_argument("--version", action="version", version=f"envnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    edge = sub.add_parser(
        "edge",
        help="run an edge agent (sensors -> journal -> MQTT)",
        description="Read the node's sensors, journal every reading durably, publish over MQTT "
        "and delete readings when the aggregator acknowledges them. ENVNET_MQTT_URL overrides "
        "[mqtt] url. SIGTERM or Ctrl-C stops it cleanly.",
    )
    edge.add_argument("--config", type=Path, required=True, help="node.toml")
    _add_logging(edge)
    edge.set_defaults(func=_edge)

    agg = sub.add_parser(
        "aggregator",
        help="run the aggregator (MQTT -> validation -> InfluxDB, alerts, metrics)",
        description="Receive readings, validate them against the contract and the fleet "
        "inventory, store them in InfluxDB (v1 or v2 API), ack them to the nodes, raise "
        "standards alerts and serve Prometheus metrics. ENVNET_MQTT_URL, ENVNET_INFLUX_URL, "
        "ENVNET_INFLUX_DB, ENVNET_INFLUX_ORG, ENVNET_INFLUX_BUCKET, ENVNET_INFLUX_TOKEN and "
        "ENVNET_FLEET override the file.",
    )
    agg.add_argument("--config", type=Path, default=None, help="agg.toml (default: built-ins)")
    _add_logging(agg)
    agg.set_defaults(func=_aggregator)

    _add_sim(sub)
    _add_demo(sub)
    _add_grafana(sub)
    return parser


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulators.fleet_cli import add_fleet_arguments
    from simulators.replay_cli import add_replay_arguments

    sim = sub.add_parser("sim", help="simulated fleets and data replays")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    fleet = sim_sub.add_parser(
        "fleet",
        help="run a seeded, simulated city fleet of edge agents",
        description="Run N simulated nodes (air, noise, odour, water) as real edge agents with "
        "their own journals and MQTT connections, in one process. Deterministic for a seed; "
        "--accel runs event time faster than real time.",
    )
    add_fleet_arguments(fleet)
    _add_logging(fleet)
    fleet.set_defaults(func=_sim_fleet)
    replay = sim_sub.add_parser(
        "replay-csv",
        help="replay the real Beijing hourly data as a node's readings",
        description="Replay a PRSA_Data_*.csv file (UCI Beijing Multi-Site Air-Quality Data, "
        "CC BY 4.0) through a real edge agent, time-scaled. CO is converted from the file's "
        "ug/m3 to the canonical mg/m3.",
    )
    add_replay_arguments(replay)
    _add_logging(replay)
    replay.set_defaults(func=_sim_replay)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from envnet.demo import add_demo_arguments

    demo = sub.add_parser(
        "demo",
        help="a live simulated city network, end to end",
        description="Start mosquitto and influxd under .dev/ (unless ENVNET_MQTT_URL and "
        "ENVNET_INFLUX_URL name running ones), the aggregator and a simulated fleet, and show "
        "a live view. Ctrl-C or --duration stops everything it started, and only that.",
    )
    add_demo_arguments(demo)
    _add_logging(demo)
    demo.set_defaults(func=_demo)


def _add_grafana(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grafana = sub.add_parser("grafana", help="Grafana dashboards, data source and alert rules")
    grafana_sub = grafana.add_subparsers(dest="grafana_command", required=True, metavar="ACTION")
    push = grafana_sub.add_parser(
        "push",
        help="push deploy/grafana/ to a Grafana server",
        description="Upsert the data source, dashboards and alert rules in deploy/grafana/ "
        "through the Grafana HTTP API.",
    )
    try:
        from aggregator.grafana_push import add_arguments
    except ImportError as exc:  # the aggregator extra is not installed (e.g. on a Pi)
        push.set_defaults(func=_missing(f"envnet grafana needs envnet[aggregator]: {exc}"))
        return
    add_arguments(push)
    _add_logging(push)
    push.set_defaults(func=_grafana_push)


def _missing(message: str) -> Callable[[argparse.Namespace], int]:
    def report(args: argparse.Namespace) -> int:
        sys.stderr.write(message + "\n")
        return 1

    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "logfmt"))
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"envnet: configuration error: {exc}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
