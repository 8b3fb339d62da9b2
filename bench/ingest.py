"""End-to-end ingest benchmark: N publisher processes → mosquitto → the aggregator process →
influxd, in two modes (backlog: 100 readings per message; live: one 6-reading sample per
message), each against two ceilings measured on the same machine in the same run: a bare MQTT
subscriber, and raw batched line-protocol writes to influxd. See bench/README.md.

    .venv/bin/python bench/ingest.py [--mode backlog|live|both] [--publishers N] [--seconds S]
                                     [--repeat N]

The last line of each run's output is machine-readable:
    readings_per_s=… live_messages_per_s=… ceiling_readings_per_s=… ratio=… lost=…
With --repeat N, N runs follow one another and a spread (min, median, max) ends the output.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import get_args

if not __package__:  # run as a script: make the repository root importable for bench.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._aggregator import AggregatorError, TomlScalar
from bench._influx_ceiling import InfluxWriteFailedError
from bench._phases import BenchOptions, add_load_arguments, run_mode
from bench._publishers import BenchError
from bench._report import last_line, spread, table
from bench._results import ModeResult
from bench._subscriber import SubscriberKind
from simulators.local_stack import ServiceError

MODES = ("backlog", "live")


def _scalar(text: str) -> TomlScalar:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: list[str]) -> dict[str, dict[str, TomlScalar]]:
    """['influx.batch_readings=10000', …] → {'influx': {'batch_readings': 10000}}."""
    out: dict[str, dict[str, TomlScalar]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        table, dot, name = key.partition(".")
        if not (sep and dot and table and name):
            raise argparse.ArgumentTypeError(f"--agg expects SECTION.KEY=VALUE, got {item!r}")
        out.setdefault(table, {})[name] = _scalar(value)
    return out


def _kinds(text: str) -> tuple[SubscriberKind, ...]:
    allowed = get_args(SubscriberKind)
    kinds = tuple(k.strip() for k in text.split(",") if k.strip() and k.strip() != "none")
    bad = [k for k in kinds if k not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(f"subscribers must be among {allowed}, got {text!r}")
    return tuple(k for k in allowed if k in kinds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--mode", choices=[*MODES, "both"], default="both")
    p.add_argument("--publishers", type=int, default=4, help="publisher processes (default 4)")
    p.add_argument("--nodes-per-publisher", type=int, default=25, help="default 25")
    p.add_argument("--seconds", type=float, default=20.0, help="publishing time per phase")
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered load in messages/s over all publishers, aggregator run only "
        "(default 0: as fast as the publishers can; ceilings are never paced)",
    )
    p.add_argument("--window", type=int, default=1000, help="unPUBACKed messages per publisher")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="s after publishing")
    p.add_argument("--influx-concurrency", type=int, default=3, help="raw-write ceiling")
    p.add_argument("--lines-per-post", type=int, default=5000, help="raw-write ceiling")
    p.add_argument(
        "--subscribers",
        type=_kinds,
        default=("intake", "aiomqtt", "paho"),
        help="bare subscriber ceilings to measure, among intake (the aggregator's own MQTT "
        "client, counting only; the ceiling), aiomqtt, paho; default all three, or none",
    )
    p.add_argument("--no-influx-ceiling", action="store_true", help="skip the raw-write ceiling")
    p.add_argument(
        "--agg",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="aggregator config override, e.g. influx.batch_readings=10000 (repeatable)",
    )
    p.add_argument("--agg-log-level", default="info", choices=["debug", "info", "warning"])
    p.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the aggregator with py-spy (pip install py-spy) and write raw stacks here",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="consecutive runs, each printed, then their spread and whether every one met the "
        "floors (default 1)",
    )
    add_load_arguments(p)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    return p


def options(args: argparse.Namespace) -> BenchOptions:
    return BenchOptions(
        publishers=args.publishers,
        nodes_per_publisher=args.nodes_per_publisher,
        seconds=args.seconds,
        window=args.window,
        drain_timeout_s=args.drain_timeout,
        influx_concurrency=args.influx_concurrency,
        lines_per_post=args.lines_per_post,
        subscriber_kinds=args.subscribers,
        influx_ceiling=not args.no_influx_ceiling,
        overrides=parse_overrides(args.agg),
        log_level=args.agg_log_level,
        profile_dir=args.py_spy,
        rate=args.rate,
        client=args.publisher_client,
        messages_per_node=args.messages_per_node,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """First Ctrl-C or SIGTERM: unwind through every context manager, each of which stops
    the processes it started. Later ones are ignored, so that cleanup can finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(modes: tuple[str, ...], opts: BenchOptions, workdir: Path) -> dict[str, ModeResult]:
    results = {}
    for mode in modes:
        print(f"[bench] {mode} mode ...", file=sys.stderr, flush=True)
        results[mode] = run_mode(mode, opts, workdir)
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    modes = MODES if args.mode == "both" else (args.mode,)
    opts = options(args)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="envnet-bench-"))
    # mkdtemp makes it 0700; mosquitto started as root drops to its own user and must
    # reach its persistence directory below this one.
    workdir.chmod(0o755)
    keep = args.keep
    runs: list[dict[str, ModeResult]] = []
    try:
        for i in range(args.repeat):
            if args.repeat > 1:
                print(f"[bench] run {i + 1} of {args.repeat}", file=sys.stderr, flush=True)
            results = run(modes, opts, workdir / f"run-{i + 1}")
            runs.append(results)
            if args.repeat > 1:
                print(f"-- run {i + 1} of {args.repeat} --")
            print(table(results.values()))
            print(last_line(results), flush=True)
    except (BenchError, AggregatorError, ServiceError, InfluxWriteFailedError) as exc:
        print(f"[bench] failed: {exc}", file=sys.stderr)
        keep = True  # the service and aggregator logs explain it
        return 1
    except KeyboardInterrupt:
        print("[bench] interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"[bench] work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.repeat > 1:
        print(spread(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
