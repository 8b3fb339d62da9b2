"""`envnet sim scenario run|check FILE`: play a scenario file and judge its expectations.

Exit status: 0 when every expectation holds, 1 when one does not (or the run could not be
played: a service did not start), 2 for a bad scenario file or bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from simulators.scenario.runner import RunOutcome
    from simulators.scenario.spec import ScenarioSpec

EXIT_FAILED: Final = 1
EXIT_BAD_FILE: Final = 2


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    run = sub.add_parser(
        "run",
        help="play a scenario through real agents and the aggregator, and judge it",
        description="Start mosquitto and influxd on free ports (or use the services "
        "ENVNET_MQTT_URL and ENVNET_INFLUX_URL name), the aggregator on the scenario's clock, "
        "and its nodes as real edge agents; then compare the alert events with the "
        "expectations. Exit 0 if all hold, 1 if one does not, 2 for a bad file.",
    )
    run.add_argument("file", type=Path, help="scenario TOML file")
    run.add_argument("--strict", action="store_true",
                     help="also fail on any alert event no expectation names")  # fmt: skip
    run.add_argument("--junit", type=Path, default=None, help="write a JUnit XML report here")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("--workdir", type=Path, default=None,
                     help="services, journals and logs (default .dev/scenarios/NAME)")  # fmt: skip
    check = sub.add_parser(
        "check",
        help="check a scenario file without running it",
        description="Parse the file and plan the run (node kinds, zones, perturbations). "
        "Exit 0 if it would run, 2 if not.",
    )
    check.add_argument("file", type=Path, help="scenario TOML file")


def run_scenario_command(args: argparse.Namespace) -> int:
    from schemas.runtime.configfile import ConfigError
    from simulators.scenario.plan import PlanError, plan
    from simulators.scenario.spec import ScenarioFileError, load_scenario

    try:
        spec = load_scenario(args.file)
        plan(spec, 0)
        check_aggregator_table(spec)
    except (ScenarioFileError, PlanError, ConfigError) as exc:
        sys.stderr.write(f"envnet sim scenario: {exc}\n")
        return EXIT_BAD_FILE
    if args.scenario_command == "check":
        sys.stdout.write(f"{args.file}: scenario {spec.header.name} is ready to run\n")
        return 0
    return _run(args, spec)


def check_aggregator_table(spec: ScenarioSpec) -> None:
    """The run's agg.toml, the file's [aggregator] table included, as the aggregator will
    read it: a bad setting is the file's fault (exit 2), found before anything starts."""
    from aggregator.config import AggregatorConfig
    from schemas.runtime.configfile import convert
    from simulators.scenario.plan import aggregator_settings

    settings = aggregator_settings(
        spec, fleet_path="fleet.toml", state_dir="state", metrics_port=0, origin_ms=0,
        anchor_wall_ms=0,
    )  # fmt: skip
    convert(settings, AggregatorConfig, f"{spec.source} [aggregator]")


def _run(args: argparse.Namespace, spec: ScenarioSpec) -> int:
    from edge.runtime import stop_on_signals
    from schemas.runtime.progress import EVENT_TIME, ProgressReporter
    from simulators.scenario.runner import RunError, RunSettings, ScenarioRunner

    workdir = args.workdir or Path(".dev/scenarios") / spec.header.name
    stop = threading.Event()
    stop_on_signals(stop)
    # On stderr: stdout is the verdict's (the diff, or --json).
    reporter = ProgressReporter(sys.stderr, EVENT_TIME, spec.header.duration_s)
    played = [0.0]

    def progress(done_s: float) -> None:
        played[0] = done_s
        reporter.update(done_s)

    runner = ScenarioRunner(
        spec, RunSettings(workdir.resolve(), strict=args.strict), os.environ, stop,
        progress=progress,
    )  # fmt: skip
    try:
        outcome = runner.run()
    except RunError as exc:
        reporter.finish(played[0])
        return _report_error(args, spec, str(exc))
    reporter.finish(played[0])
    return _report(args, outcome)


def _report(args: argparse.Namespace, outcome: RunOutcome) -> int:
    from simulators.scenario.results import junit_xml, result_document
    from simulators.scenario.verdict import render_diff

    if args.junit is not None:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_bytes(junit_xml(outcome.facts, outcome.verdict))
    if args.json:
        sys.stdout.write(
            result_document(outcome.facts, outcome.verdict, outcome.observed).decode() + "\n"
        )
    else:
        diff = render_diff(outcome.facts.name, outcome.verdict, outcome.observed)
        facts = outcome.facts
        sys.stdout.write(
            f"{diff}\nplayed in {facts.wall_s:.1f} s; {facts.readings_stored} readings stored\n"
        )
    return 0 if outcome.verdict.holds else EXIT_FAILED


def _report_error(args: argparse.Namespace, spec: ScenarioSpec, error: str) -> int:
    from simulators.scenario.results import RunFacts, junit_xml, result_document
    from simulators.scenario.verdict import judge

    facts = RunFacts(spec.header.name, str(spec.source), 0.0, 0, 0, error=error)
    verdict = judge(spec.expects, [], strict=args.strict)
    if args.junit is not None:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_bytes(junit_xml(facts, verdict))
    if args.json:
        sys.stdout.write(result_document(facts, verdict, []).decode() + "\n")
    sys.stderr.write(f"envnet sim scenario: the run could not be played: {error}\n")
    return EXIT_FAILED
