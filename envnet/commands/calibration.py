"""`envnet calibration show` and `envnet calibration apply`: the calibration book by hand.

`show` lists the records of the aggregator's `[calibration] path`. `apply` recalibrates stored
history with them (aggregator.calibration.recalibrate). Both read agg.toml, and its ENVNET_*
overrides, as the aggregator does. Modules beyond argparse are imported when a command runs, so that
building the `envnet` parser stays cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aggregator.calibration.book import CalibrationBook, CalibrationRecord
    from aggregator.calibration.recalibrate import RecalibrationCounts
    from aggregator.config import AggregatorConfig

EXIT_FAILED = 1
EXIT_USAGE = 2


def add_calibration_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="calibration_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=None, help="agg.toml (default: built-ins)")
    show = sub.add_parser(
        "show",
        parents=[common],
        help="list the calibration records",
        description="List the records of agg.toml's [calibration] path, by serial, quantity "
        "and validity, with times in the aggregator's local time ([alerts] utc_offset_h).",
    )
    show.add_argument("--serial", help="only this sensor serial")
    show.add_argument("--json", action="store_true", help="print a JSON array")
    show.set_defaults(calibration_func=_show)
    apply = sub.add_parser(
        "apply",
        parents=[common],
        help="recalibrate stored readings with the current records",
        description="Read back the readings stored with a sensor serial between --since and "
        "--until from InfluxDB, recompute each value from the sensor's raw value with the "
        "current calibration records, and rewrite the points that change (same series and "
        "time: the old point is overwritten). Readings without a serial are not touched. "
        "Windows, AQI and alerts already derived are not recomputed.",
    )
    apply.add_argument(
        "--since", required=True, help="ISO 8601 with offset, e.g. 2026-03-01T00:00+08:00"
    )
    apply.add_argument("--until", help="ISO 8601 with offset, exclusive (default: now)")
    apply.add_argument("--node", help="only this node")
    apply.add_argument("--dry-run", action="store_true", help="count, write nothing")
    apply.add_argument("--chunk-h", type=float, default=6.0, help="hours of data per query (6)")
    apply.set_defaults(calibration_func=_apply)


def run(args: argparse.Namespace) -> int:
    result: int = args.calibration_func(args)
    return result


def _config_and_book(path: Path | None) -> tuple[AggregatorConfig, CalibrationBook]:
    from aggregator.calibration.file import load_calibrations
    from aggregator.config import load_aggregator_config
    from schemas.runtime.configfile import ConfigError

    config = load_aggregator_config(path)
    if config.calibration.path is None:
        source = path or "the built-in configuration"
        raise ConfigError(f"{source}: calibration.path is not set: there are no records")
    return config, load_calibrations(Path(config.calibration.path))


def _show(args: argparse.Namespace) -> int:
    config, book = _config_and_book(args.config)
    zone = timezone(timedelta(hours=config.alerts.utc_offset_h))
    records = [r for r in book if args.serial is None or r.serial == args.serial]
    rows = [_record_row(r, zone) for r in records]
    if args.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return 0
    if not rows:
        sys.stdout.write("no calibration records\n")
        return 0
    headers = ["SERIAL", "QUANTITY", "VERSION", "VALID FROM", "VALID UNTIL", "CURVE", "SOURCE"]
    table = [
        [r["serial"], r["quantity"], r["version"], r["valid_from"], r["valid_until"] or "-",
         r["curve"], r["source"]]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(row[i])) for row in [headers, *table]) for i in range(len(headers))]
    for row in [headers, *table]:
        sys.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        sys.stdout.write("\n")
    return 0


def _record_row(record: CalibrationRecord, zone: timezone) -> dict[str, Any]:
    from aggregator.calibration.book import Linear

    def at(ms: int | None) -> str | None:
        if ms is None:
            return None
        return datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="seconds")

    curve = record.curve
    if isinstance(curve, Linear):
        text = f"{curve.gain!r} * raw + {curve.offset!r}"
        numbers: dict[str, Any] = {"gain": curve.gain, "offset": curve.offset}
    else:
        text = " + ".join(f"{c!r}*raw^{i}" for i, c in enumerate(curve.coefficients))
        numbers = {"coefficients": list(curve.coefficients)}
    return {
        "serial": record.serial,
        "quantity": record.quantity,
        "version": record.version,
        "valid_from": at(record.valid_from_ms),
        "valid_until": at(record.valid_until_ms),
        "kind": record.kind,
        **numbers,
        "curve": text,
        "source": record.source,
        "note": record.note,
    }


def _apply(args: argparse.Namespace) -> int:
    from aggregator.calibration.recalibrate import (
        RecalibrationError,
        RecalibrationRequest,
        parse_time_ms,
        recalibrate,
    )

    config, book = _config_and_book(args.config)
    try:
        since = parse_time_ms(args.since)
        until = (
            parse_time_ms(args.until) if args.until else round(datetime.now(UTC).timestamp() * 1000)
        )
        request = RecalibrationRequest(
            since_ms=since,
            until_ms=until,
            node=args.node,
            dry_run=args.dry_run,
            chunk_ms=round(args.chunk_h * 3_600_000),
        )
    except ValueError as exc:
        sys.stderr.write(f"envnet calibration apply: {exc}\n")
        return EXIT_USAGE
    try:
        # The [influx] section is the storage's own InfluxTarget (aggregator.storage).
        counts = asyncio.run(recalibrate(config.influx, book, request))
    except RecalibrationError as exc:
        sys.stderr.write(f"envnet calibration apply: {exc}\n")
        return EXIT_FAILED
    _print_counts(counts, request.dry_run, config.influx.display)
    return 0


def _print_counts(counts: RecalibrationCounts, dry_run: bool, where: str) -> None:
    mode = " (dry run: nothing written)" if dry_run else ""
    sys.stdout.write(f"envnet calibration apply: {where}{mode}\n")
    rows = [
        ("recalibrated", counts.recalibrated, "a record applies; value or version changed"),
        ("unchanged", counts.unchanged, "already calibrated with the current record"),
        ("no calibration", counts.no_calibration, f"no record applies ({counts.reverted} "
         "reverted to the raw value)"),
        ("out of bounds", counts.out_of_bounds, "calibrated value outside the physical "
         "bounds: raw value kept"),
        ("skipped", counts.skipped, "rows that are not readable readings"),
        ("written", counts.written, "points rewritten"),
    ]  # fmt: skip
    for name, number, meaning in rows:
        sys.stdout.write(f"{name:<15} {number:>9}  {meaning}\n")
