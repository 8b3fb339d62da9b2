"""The `envnet` command: one entry point, a subcommand per job.

Subcommands import their modules lazily, so `envnet edge` on a Pi never imports the
aggregator's dependencies, and `--help` is fast everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas.runtime.configfile import ConfigError
from schemas.runtime.logs import configure_logging
from schemas.runtime.version import VERSION

EXIT_CONFIG = 2
# The reader of our output went away (`envnet alerts list --json | head`).
EXIT_OUTPUT_CLOSED = 1

_Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class _Tool:
    """A subcommand whose module declares its options and runs it: `module.add(parser)`
    when the parser is built, `module.run(args)` when it is chosen. The module is imported
    only when its parent command's parser is built (never for `envnet edge` on a Pi)."""

    name: str
    help: str
    description: str
    module: str
    add: str
    run: str
    logging: bool = True
    # Said instead of running when the module's optional dependencies are not installed.
    needs: str | None = None


@dataclass(frozen=True)
class _Group:
    """A command whose subcommands are tools (`envnet sim fleet`)."""

    name: str
    help: str
    dest: str
    metavar: str
    tools: tuple[_Tool, ...]


_EDGE_TOOLS = (
    _Tool(
        "check",
        help="check a node on site: sensors, broker login, clock, journal",
        description="Read each configured sensor once, log in to the broker with the node's "
        "credentials and CA file, check that the clock is synchronised and look at the "
        "journal; print a table (or --json). Exit status 0 if nothing failed, 1 if a check "
        "failed, 2 for a bad configuration.",
        module="envnet.commands.edge_check",
        add="add_check_arguments",
        run="run_check_command",
    ),
    _Tool(
        "status",
        help="show the node's journal: depth, age, last ack, dropped readings",
        description="Read the node's SQLite journal (read-only; the agent may be running) and "
        "print its depth and age, the last acknowledgement (time and seq) and the readings "
        "dropped past its bounds. Exit status 1 if there is no journal.",
        module="envnet.commands.edge_status",
        add="add_status_arguments",
        run="run_status_command",
        logging=False,
    ),
)

_SIM = _Group(
    "sim",
    help="simulated fleets and data replays",
    dest="sim_command",
    metavar="SIM_COMMAND",
    tools=(
        _Tool(
            "fleet",
            help="run a seeded, simulated city fleet of edge agents",
            description="Run N simulated nodes (air, noise, odour, water) as real edge agents "
            "with their own journals and MQTT connections, in one process. Deterministic for a "
            "seed; --accel runs event time faster than real time.",
            module="envnet.commands.sim_fleet",
            add="add_fleet_arguments",
            run="run_fleet_command",
        ),
        _Tool(
            "replay-csv",
            help="replay the real Beijing hourly data as a node's readings",
            description="Replay a PRSA_Data_*.csv file (UCI Beijing Multi-Site Air-Quality "
            "Data, CC BY 4.0) through a real edge agent, time-scaled. CO is converted from the "
            "file's ug/m3 to the canonical mg/m3.",
            module="envnet.commands.sim_replay",
            add="add_replay_arguments",
            run="run_replay_command",
        ),
        _Tool(
            "scenario",
            help="play a scenario file and check the alerts it must raise",
            description="`run FILE` plays a scenario (simulated nodes, PRSA replays, scripted "
            "perturbations) through real edge agents and the real aggregator on its own "
            "mosquitto and influxd, and compares the alert events with the file's "
            "expectations; `check FILE` only checks the file. Exit 0 if every expectation "
            "holds, 1 if one does not, 2 for a bad file.",
            module="envnet.commands.sim_scenario",
            add="add_scenario_arguments",
            run="run_scenario_command",
        ),
        _Tool(
            "devices",
            help="byte-level sensor simulators on pseudo-terminals (PMS5003, SDS011, Modbus)",
            description="Serve the devices of a devices.toml on pseudo-terminals, from the same "
            "physical models as the fleet: PMS5003 and SDS011 frames, and Modbus RTU slaves for "
            "register-map profiles, with injectable faults. Prints 'name path' per device; an "
            "edge node whose `port` options name those paths runs its real drivers against "
            'them. I2C sensors are simulated inside the edge instead (bus = "sim:node"). '
            "SIGTERM or Ctrl-C stops it.",
            module="envnet.commands.sim_devices",
            add="add_devices_arguments",
            run="run_devices_command",
        ),
    ),
)

# After `edge` and `aggregator`, in the order `envnet --help` lists them.
_COMMANDS: tuple[_Tool | _Group, ...] = (
    _SIM,
    _Tool(
        "demo",
        help="a live simulated city network, end to end",
        description="Start mosquitto and influxd under .dev/ (unless ENVNET_MQTT_URL and "
        "ENVNET_INFLUX_URL name running ones), the aggregator and a simulated fleet, and show "
        "a live view. Ctrl-C or --duration stops everything it started, and only that.",
        module="envnet.demo",
        add="add_demo_arguments",
        run="run_demo",
    ),
    _Group(
        "grafana",
        help="Grafana dashboards, data source and alert rules",
        dest="grafana_command",
        metavar="ACTION",
        tools=(
            _Tool(
                "push",
                help="push deploy/grafana/ to a Grafana server",
                description="Upsert the data source, dashboards and alert rules in "
                "deploy/grafana/ through the Grafana HTTP API.",
                module="envnet.commands.grafana",
                add="add_arguments",
                run="run",
                needs="envnet grafana needs envnet[aggregator]",  # e.g. on a Pi
            ),
            _Tool(
                "build",
                help="write the generated dashboards, data sources, alert rules and "
                "provisioning files to a directory",
                description="Generate envnet's Grafana assets into --out DIR: the JSON that "
                "push sends, and DIR/provisioning/ for Grafana's file provisioning (its "
                "dashboard provider reads DIR/dashboards).",
                module="envnet.commands.grafana_build",
                add="add_arguments",
                run="run",
            ),
        ),
    ),
    _Tool(
        "standards",
        help="standards calculators: AQI, water class, noise and odour limits",
        description="Evaluate values by hand against HJ 633 (AQI), GB 3838-2002 (surface "
        "water, lake TLI), GB 3096-2008 (noise) and GB 14554-93 (odour).",
        module="envnet.commands.standards",
        add="add_standards_arguments",
        run="run_standards_command",
        logging=False,
    ),
    _Tool(
        "alerts",
        help="open alerts: list them, acknowledge one",
        description="Read the retained alert states from the broker, or acknowledge an open "
        "alert (published on envnet/v1/alert-commands; the aggregator confirms it). "
        "ENVNET_MQTT_URL names the broker.",
        module="envnet.commands.alerts",
        add="add_alerts_arguments",
        run="run",
        logging=False,
    ),
    _Group(
        "fleet",
        help="the fleet inventory: enrol a node, list them, retire one",
        dest="fleet_command",
        metavar="ACTION",
        tools=(
            _Tool(
                "enrol",
                help="add a node: broker login, ACL, inventory entry and its node.toml",
                description="Create the node's broker credentials (a random password, "
                "printed once) and ACL block, add it to the fleet inventory (validated, "
                "replaced atomically; a running aggregator reloads it) and write the "
                "node.toml the technician copies to the Pi. Exit 2 for bad input.",
                module="envnet.commands.fleet",
                add="add_enrol_arguments",
                run="run_enrol",
                logging=False,
            ),
            _Tool(
                "list",
                help="the nodes of the inventory",
                description="List the fleet inventory's nodes: kinds, group, position, site.",
                module="envnet.commands.fleet",
                add="add_list_arguments",
                run="run_list",
                logging=False,
            ),
            _Tool(
                "replicas",
                help="which aggregator replica owns which node, and what a new count moves",
                description="Partition the inventory's nodes as N aggregator replicas do "
                '([cluster] replica = "i/N"): each replica\'s node count and nodes; with '
                "--from M, the nodes a change from M to N replicas moves. Exit 2 for bad "
                "input.",
                module="envnet.commands.fleet_replicas",
                add="add_replicas_arguments",
                run="run_replicas",
                logging=False,
            ),
            _Tool(
                "retire",
                help="take a node out: inventory entry, broker login and ACL block",
                description="Remove the node from the fleet inventory, the password file and "
                "the ACL. A running aggregator reloads the inventory and resolves the node's "
                "open alerts.",
                module="envnet.commands.fleet",
                add="add_retire_arguments",
                run="run_retire",
                logging=False,
            ),
        ),
    ),
    _Tool(
        "report",
        help="the programme's period figures: good-air days, water classes, noise compliance, "
        "bloom days, from InfluxDB",
        description="Compute period KPIs from what InfluxDB holds: air (valid, good and heavy "
        "days, AQI categories, exceedance days per pollutant, period means, the O3 evaluation "
        "value, per node and per group); water (GB 3838-2002 class per site and sample day, "
        "shares of sites at III or better and worse than V, deciding items); noise (day and "
        "night compliance per zone class); bloom (days at or above each WHO chlorophyll-a "
        "level per site). --from and --to are local days, both included. Reads agg.toml's "
        "[influx], [alerts] utc_offset_h and [report], and with --config (or ENVNET_FLEET) the "
        "fleet file it names for the nodes' classes; ENVNET_INFLUX_* override the file. Exit "
        "status 1 if InfluxDB cannot be asked, 2 for bad usage (dates, an unknown node or "
        "group, a bad file).",
        module="envnet.commands.report",
        add="add_report_arguments",
        run="run",
        logging=False,
    ),
    _Tool(
        "calibration",
        help="sensor calibration records: list them, recalibrate stored history",
        description="Show the calibration records of agg.toml's [calibration] path, or apply "
        "them to readings already stored in InfluxDB. ENVNET_INFLUX_* override the file.",
        module="envnet.commands.calibration",
        add="add_calibration_arguments",
        run="run",
    ),
)


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
    # `envnet edge --config F` runs the agent; `envnet edge COMMAND` are tools beside it.
    edge_sub = edge.add_subparsers(dest="edge_command", required=False, metavar="EDGE_COMMAND")
    _add_tools(edge_sub, _EDGE_TOOLS)
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

    for command in _COMMANDS:
        if isinstance(command, _Group):
            group = sub.add_parser(command.name, help=command.help)
            group_sub = group.add_subparsers(
                dest=command.dest, required=True, metavar=command.metavar
            )
            _add_tools(group_sub, command.tools)
        else:
            _add_tools(sub, (command,))
    return parser


def _add_tools(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], tools: Sequence[_Tool]
) -> None:
    for tool in tools:
        parser = sub.add_parser(tool.name, help=tool.help, description=tool.description)
        try:
            module = importlib.import_module(tool.module)
        except ImportError as exc:
            if tool.needs is None:
                raise
            parser.set_defaults(func=_missing(f"{tool.needs}: {exc}"))
            continue
        getattr(module, tool.add)(parser)
        if tool.logging:
            _add_logging(parser)
        run: _Run = getattr(module, tool.run)
        parser.set_defaults(func=run)


def _missing(message: str) -> _Run:
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
