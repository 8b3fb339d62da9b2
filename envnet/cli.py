"""The `envnet` command: one entry point, a subcommand per job.

Subcommands import their modules lazily, so `envnet edge` on a Pi never imports the
aggregator's dependencies, and `--help` is fast everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from schemas.runtime.configfile import ConfigError
from schemas.runtime.logs import configure_logging
from schemas.runtime.version import VERSION

EXIT_CONFIG = 2
# The reader of our output went away (`envnet alerts list --json | head`).
EXIT_OUTPUT_CLOSED = 1


def _edge(args: argparse.Namespace) -> int:
    from edge.config import load_edge_config
    from edge.runtime import run_edge

    if args.config is None:  # not required by argparse, so that `edge check --config` parses
        sys.stderr.write("envnet edge: the following arguments are required: --config\n")
        return EXIT_CONFIG
    from edge.drivers.registry import UnknownDriverError
    from edge.journal import JournalError

    config = load_edge_config(args.config)
    try:
        run_edge(config)
    except UnknownDriverError as exc:  # a sensor's driver or options, found as it is built
        raise ConfigError(f"{args.config}: {exc}") from None
    except JournalError as exc:
        # An unwritable directory, a journal from a newer agent: say so, no traceback.
        sys.stderr.write(f"envnet edge: journal: {exc}\n")
        return 1
    return 0


def _edge_check(args: argparse.Namespace) -> int:
    from envnet.commands.edge_check import run_check_command

    return run_check_command(args)


def _edge_status(args: argparse.Namespace) -> int:
    from envnet.commands.edge_status import run_status_command

    return run_status_command(args)


def _aggregator(args: argparse.Namespace) -> int:
    from aggregator.config import load_aggregator_config
    from aggregator.runtime import run_aggregator
    from aggregator.startup import StartupError

    try:
        run_aggregator(load_aggregator_config(args.config))
    except StartupError as exc:
        # A taken port, a missing bucket: a setting to fix, not a crash to restart.
        sys.stderr.write(f"envnet aggregator: {exc}\n")
        return EXIT_CONFIG
    return 0


def _sim_fleet(args: argparse.Namespace) -> int:
    from envnet.commands.sim_fleet import run_fleet_command

    return run_fleet_command(args)


def _sim_replay(args: argparse.Namespace) -> int:
    from envnet.commands.sim_replay import run_replay_command

    return run_replay_command(args)


def _sim_devices(args: argparse.Namespace) -> int:
    from envnet.commands.sim_devices import run_devices_command

    return run_devices_command(args)


def _demo(args: argparse.Namespace) -> int:
    from envnet.demo import run_demo

    return run_demo(args)


def _grafana_push(args: argparse.Namespace) -> int:
    from envnet.commands.grafana import run

    return run(args)


def _standards(args: argparse.Namespace) -> int:
    from envnet.commands.standards import run_standards_command

    return run_standards_command(args)


def _alerts(args: argparse.Namespace) -> int:
    from envnet.commands.alerts import run

    return run(args)


def _calibration(args: argparse.Namespace) -> int:
    from envnet.commands.calibration import run

    return run(args)


def _add_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])


def build_parser(*, edge_only: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envnet",
        description="City environmental sensor networks: edge agents, aggregator, simulators.",
    )
    parser.add_argument("--version", action="version", version=f"envnet {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    edge = sub.add_parser(
        "edge",
        help="run an edge agent (sensors -> journal -> MQTT)",
        description="Read the node's sensors, journal every reading durably, publish over MQTT "
        "and delete readings when the aggregator acknowledges them. ENVNET_MQTT_URL overrides "
        "[mqtt] url. SIGTERM or Ctrl-C stops it cleanly.",
    )
    edge.add_argument("--config", type=Path, default=None, help="node.toml (required)")
    _add_logging(edge)
    edge.set_defaults(func=_edge)
    _add_edge_commands(edge)
    if edge_only:
        # `envnet edge` on a Pi: the other commands import their modules to declare their
        # options (the aggregator, the simulators, an HTTP client for Grafana), which cost the
        # running agent 23 MB of RSS here (bench/edge_footprint.py).
        return parser

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
    _add_standards(sub)
    _add_alerts(sub)
    _add_calibration(sub)
    return parser


def _add_calibration(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from envnet.commands.calibration import add_calibration_arguments

    calibration = sub.add_parser(
        "calibration",
        help="sensor calibration records: list them, recalibrate stored history",
        description="Show the calibration records of agg.toml's [calibration] path, or apply "
        "them to readings already stored in InfluxDB. ENVNET_INFLUX_* override the file.",
    )
    add_calibration_arguments(calibration)
    _add_logging(calibration)
    calibration.set_defaults(func=_calibration)


def _add_alerts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from envnet.commands.alerts import add_alerts_arguments

    alerts = sub.add_parser(
        "alerts",
        help="open alerts: list them, acknowledge one",
        description="Read the retained alert states from the broker, or acknowledge an open "
        "alert (published on envnet/v1/alert-commands; the aggregator confirms it). "
        "ENVNET_MQTT_URL names the broker.",
    )
    add_alerts_arguments(alerts)
    alerts.set_defaults(func=_alerts)


def _add_edge_commands(edge: argparse.ArgumentParser) -> None:
    """`envnet edge --config F` runs the agent; `envnet edge COMMAND` are tools beside it."""
    from envnet.commands.edge_check import add_check_arguments
    from envnet.commands.edge_status import add_status_arguments

    edge_sub = edge.add_subparsers(dest="edge_command", required=False, metavar="EDGE_COMMAND")
    check = edge_sub.add_parser(
        "check",
        help="check a node on site: sensors, broker login, clock, journal",
        description="Read each configured sensor once, log in to the broker with the node's "
        "credentials and CA file, check that the clock is synchronised and look at the "
        "journal; print a table (or --json). Exit status 0 if nothing failed, 1 if a check "
        "failed, 2 for a bad configuration.",
    )
    add_check_arguments(check)
    _add_logging(check)
    check.set_defaults(func=_edge_check)
    status = edge_sub.add_parser(
        "status",
        help="show the node's journal: depth, age, last ack, dropped readings",
        description="Read the node's SQLite journal (read-only; the agent may be running) and "
        "print its depth and age, the last acknowledgement (time and seq) and the readings "
        "dropped past its bounds. Exit status 1 if there is no journal.",
    )
    add_status_arguments(status)
    status.set_defaults(func=_edge_status)


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from envnet.commands.sim_devices import add_devices_arguments
    from envnet.commands.sim_fleet import add_fleet_arguments
    from envnet.commands.sim_replay import add_replay_arguments

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
    devices = sim_sub.add_parser(
        "devices",
        help="byte-level sensor simulators on pseudo-terminals (PMS5003, SDS011, Modbus)",
        description="Serve the devices of a devices.toml on pseudo-terminals, from the same "
        "physical models as the fleet: PMS5003 and SDS011 frames, and Modbus RTU slaves for "
        "register-map profiles, with injectable faults. Prints 'name path' per device; an edge "
        "node whose `port` options name those paths runs its real drivers against them. I2C "
        'sensors are simulated inside the edge instead (bus = "sim:node"). SIGTERM or '
        "Ctrl-C stops it.",
    )
    add_devices_arguments(devices)
    _add_logging(devices)
    devices.set_defaults(func=_sim_devices)


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
        from envnet.commands.grafana import add_arguments
    except ImportError as exc:  # the aggregator extra is not installed (e.g. on a Pi)
        push.set_defaults(func=_missing(f"envnet grafana needs envnet[aggregator]: {exc}"))
        return
    add_arguments(push)
    _add_logging(push)
    push.set_defaults(func=_grafana_push)


def _add_standards(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from envnet.commands.standards import add_standards_arguments

    standards = sub.add_parser(
        "standards",
        help="standards calculators: AQI, water class, noise and odour limits",
        description="Evaluate values by hand against HJ 633 (AQI), GB 3838-2002 (surface "
        "water, lake TLI), GB 3096-2008 (noise) and GB 14554-93 (odour).",
    )
    add_standards_arguments(standards)
    standards.set_defaults(func=_standards)


def _missing(message: str) -> Callable[[argparse.Namespace], int]:
    def report(args: argparse.Namespace) -> int:
        sys.stderr.write(message + "\n")
        return 1

    return report


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(edge_only=argv[:1] == ["edge"]).parse_args(argv)
    configure_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "logfmt"))
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"envnet: configuration error: {exc}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _output_closed()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _output_closed()
    return result


def _output_closed() -> int:
    """Stop quietly when stdout's reader has gone: `| head` wanted no more. Python flushes
    stdout again at exit, which would fail again with a traceback, so stdout is pointed at
    /dev/null first (the recipe of the Python docs' note on SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):  # a stdout without a descriptor (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_OUTPUT_CLOSED


if __name__ == "__main__":
    raise SystemExit(main())
