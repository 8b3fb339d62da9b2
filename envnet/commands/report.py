"""`envnet report air|water|noise|bloom|all`: the programme's period figures from InfluxDB.

Reads agg.toml (its [influx] target with the ENVNET_INFLUX_* overrides, [alerts] utc_offset_h
for local days, [report] for the evaluation rules) as the aggregator does, and prints a text
table, --json, --csv, or writes --html FILE. With --config, or ENVNET_FLEET set, the fleet file
([fleet] path, relative to the working directory as for the aggregator) gives the nodes' water
targets and classes; otherwise they are the stored inventory's (aggregator.reports.node_info).
Exit status: 0 done, 1 InfluxDB could not be asked, 2 bad usage (dates, an unknown node or
group, no node the kind applies to, a bad file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import get_args

from envnet.argtypes import day, node_id

EXIT_SERVICE = 1
EXIT_USAGE = 2


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    from aggregator.reports.request import ReportKind

    parser.add_argument(
        "kind",
        choices=get_args(ReportKind),
        help="what to report on; all: every kind that applies to the nodes, on one page",
    )
    parser.add_argument("--from", dest="first", type=day, required=True,
                        help="first local day, YYYY-MM-DD")  # fmt: skip
    parser.add_argument("--to", dest="last", type=day, required=True,
                        help="last local day, YYYY-MM-DD (included)")  # fmt: skip
    parser.add_argument("--node", action="append", type=node_id, default=[],
                        help="a node id (repeatable); default: every active node")  # fmt: skip
    parser.add_argument("--group", help="the active nodes of this inventory group, and the group")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument(
        "--csv",
        action="store_true",
        help="print CSV (air: kind,scope,id,figure,key,value; water, noise, bloom: a header "
        "row naming their columns)",
    )
    out.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML page")
    parser.add_argument("--config", type=Path, default=None, help="agg.toml (default: built-ins)")


def run(args: argparse.Namespace) -> int:
    from aggregator.config import load_aggregator_config
    from aggregator.reports.fetch import ReportServiceError
    from aggregator.reports.kinds import html_document, run_report
    from aggregator.reports.node_info import read_fleet
    from aggregator.reports.request import Period, ReportUsageError

    config = load_aggregator_config(args.config)  # a ConfigError exits 2 (envnet.cli)
    # The fleet file is the aggregator's when its agg.toml (or ENVNET_FLEET) is named; the
    # built-in default path alone would read whatever fleet.toml the working directory holds.
    named = args.config is not None or "ENVNET_FLEET" in os.environ
    fleet = read_fleet(Path(config.fleet.path)) if named else None
    name = f"envnet report {args.kind}"
    if args.kind == "all" and args.csv:
        sys.stderr.write(f"{name}: --csv needs one kind (their tables differ)\n")
        return EXIT_USAGE
    try:
        period = Period(args.first, args.last, config.alerts.utc_offset_h)
        report = asyncio.run(
            run_report(
                args.kind, config.influx, period, args.node, args.group, config.report, fleet
            )
        )
    except ReportUsageError as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return EXIT_USAGE
    except ReportServiceError as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return EXIT_SERVICE
    if args.html is not None:
        try:
            args.html.write_text(html_document(args.kind, period, report), encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"{name}: cannot write {args.html}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        sys.stdout.write(f"{name}: wrote {args.html}\n")
    elif args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    elif args.csv:
        sys.stdout.write(report.to_csv())
    else:
        sys.stdout.write(report.to_text())
    return 0
