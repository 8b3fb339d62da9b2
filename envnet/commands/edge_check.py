"""The arguments and the run of `envnet edge check` (see edge.check)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from edge.check import (
    DEFAULT_MAX_CLOCK_OFFSET_S,
    DEFAULT_TIMEOUT_S,
    CheckSettings,
    exit_status,
    render,
    run_checks,
)
from edge.config import load_edge_config
from edge.drivers.registry import UnknownDriverError
from schemas.runtime.configfile import ConfigError


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="node.toml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds to wait for each sensor's answer and for the broker (default: %(default)s)",
    )
    parser.add_argument(
        "--max-clock-offset",
        type=float,
        default=DEFAULT_MAX_CLOCK_OFFSET_S,
        metavar="S",
        help="warn when the clock is off by more than this (default: %(default)s)",
    )
    parser.add_argument(
        "--no-sensors",
        action="store_true",
        help="do not open the sensors: beside a running agent, a port it holds shows as busy, "
        "and two Modbus masters on one RS-485 line garble each other's answers",
    )


def run_check_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Raises ConfigError (exit status 2) for a configuration that cannot be used."""
    config = load_edge_config(args.config)
    settings = CheckSettings(
        timeout_s=args.timeout,
        max_clock_offset_s=args.max_clock_offset,
        sensors=not args.no_sensors,
    )
    try:
        report = run_checks(config, settings, time.time_ns() // 1_000_000)
    except UnknownDriverError as exc:  # a sensor's driver or options, found as it is built
        raise ConfigError(f"{args.config}: {exc}") from None
    (out or sys.stdout).write(render(report, args.json))
    return exit_status(report)
