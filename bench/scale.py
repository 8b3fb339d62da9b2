"""Beyond one machine (issue #13): N nodes' live load through a NATS cluster into 1, 2 and 3
aggregator replicas in turn, the cost per 1,000 nodes, the alerts compared across replica
counts, a chaos run (a broker server and a replica SIGKILLed and restarted), and the catch-up
of 1,000 nodes' 24-hour backlogs. Loopback only. See docs/cluster/scale.md.

    .venv/bin/python bench/scale.py [--nodes N] [--rate R] [--quick]

The last line of output is machine-readable:
    nodes=… replicas=… lost=… duplicated=… alerts_equal=yes|no catchup_s=…
    broker_kill_lost=… replica_kill_lost=… rss_mb_per_1k_nodes=…
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Final

if not __package__:  # run as a script: make the repository root importable for bench.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.cluster.subscriptions import ReadingsMode
from bench._aggregator import AggregatorError
from bench._publishers import BenchError
from bench._scale_load import MINUTES, LivePlan, origin_for
from bench._scale_report import Outcome, last_line, live_line, table
from bench._scale_run import (
    BrokerKind,
    CatchupResult,
    Chaos,
    LiveOptions,
    LiveResult,
    catchup_run,
    live_run,
    replicas_supported,
    say,
)
from simulators.local_stack import ServiceError

# Seconds a run has, beyond a live run's publishing time, to store and settle; and all the
# catch-up run has (its 14.4 million readings took 160 s here, docs/cluster/scale.md).
DRAIN_S: Final = 600.0


def _replica_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--replicas expects e.g. 1,2,3, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--replicas expects counts >= 1, got {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--nodes", type=int, default=10_000, help="live nodes (default 10000)")
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="event seconds per wall second (default: --msgs-per-s x 60 / nodes)",
    )
    p.add_argument(
        "--msgs-per-s",
        type=float,
        # What the 3-server NATS cluster carried here at 10,000 nodes with headroom (broker
        # at 72-94 % of a core for 1-3 replicas, docs/cluster/scale.md); more saturates it.
        default=280.0,
        help="offered live load when --rate is not given (default 280 messages/s)",
    )
    p.add_argument("--replicas", type=_replica_counts, default=(1, 2, 3), help="default 1,2,3")
    p.add_argument("--publishers", type=int, default=4, help="publisher processes (default 4)")
    p.add_argument("--broker", choices=["nats", "mosquitto"], default="nats")
    p.add_argument(
        "--replica-readings",
        choices=["per-node", "wildcard"],
        default=None,
        help="[cluster] readings of replicas (default: wildcard on nats, per-node on mosquitto)",
    )
    p.add_argument("--no-chaos", action="store_true", help="skip the chaos run")
    p.add_argument(
        "--only-catchup", action="store_true", help="no live runs: the catch-up run alone"
    )
    p.add_argument("--catchup-nodes", type=int, default=1000, help="default 1000; 0 skips")
    p.add_argument("--catchup-hours", type=int, default=24, help="backlog per node (default 24)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--deadline",
        type=float,
        default=0.0,
        help=f"s per run (default: a live run's publishing time + {DRAIN_S:g}, "
        f"the catch-up {DRAIN_S:g})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small run to check the machinery: 500 nodes, 100 catch-up nodes for 6 hours",
    )
    p.add_argument("--agg-log-level", default="info", choices=["debug", "info", "warning"])
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    return p


def deadlines(asked_s: float, rate: float) -> tuple[float, float]:
    """Seconds a live run and the catch-up run each have: `asked_s` for both when given.
    A live run publishes for MINUTES x 60 / rate s (about half an hour at the defaults)
    before it can drain, so one fixed default would fail the default invocation."""
    if asked_s:
        return asked_s, asked_s
    return MINUTES * 60.0 / rate + DRAIN_S, DRAIN_S


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """First Ctrl-C or SIGTERM: unwind through every context manager, each of which stops
    the processes it started. Later ones are ignored, so that cleanup can finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    nodes = 500 if args.quick else args.nodes
    rate = args.rate or args.msgs_per_s * 60.0 / nodes
    live_deadline, catchup_deadline = deadlines(args.deadline, rate)
    plan = LivePlan(nodes=nodes, origin_ms=origin_for(time.time_ns() // 1_000_000), seed=args.seed)
    broker: BrokerKind = args.broker
    # nats-server: a filter is a replicated consumer, and a session gets at most 65,535 /
    # max_ack_pending of them, so replicas read the wildcard (docs/cluster/replicas.md).
    readings: ReadingsMode = args.replica_readings or (
        "wildcard" if broker == "nats" else "per-node"
    )
    opts = LiveOptions(
        plan, rate, args.publishers, broker, deadline_s=live_deadline,
        log_level=args.agg_log_level, readings=readings,
    )  # fmt: skip
    if not args.only_catchup:
        say(
            f"{nodes} nodes x {MINUTES} event minutes at {rate:g}x "
            f"({nodes * rate / 60:.0f} messages/s), broker {broker}, replicas read {readings}, "
            f"replica support {'present' if replicas_supported() else 'ABSENT (one process runs)'}"
        )
    lives: list[LiveResult] = []
    for replicas in () if args.only_catchup else args.replicas:
        say(f"live run, {replicas} replica(s)")
        lives.append(live_run(opts, replicas, workdir))
        say(live_line(lives[-1], nodes))
    chaos = None
    if not (args.no_chaos or args.only_catchup):
        top = max(args.replicas)
        say(f"chaos run, {top} replica(s)")
        chaos = live_run(
            opts, top, workdir, Chaos(broker_minute=MINUTES // 4, replica_minute=MINUTES // 2)
        )
        say(live_line(chaos, nodes))
    catchup: CatchupResult | None = None
    catchup_nodes = 100 if args.quick else args.catchup_nodes
    if catchup_nodes:
        hours = 6 if args.quick else args.catchup_hours
        say(f"catch-up run: {catchup_nodes} nodes x {hours} h backlog")
        catchup = catchup_run(
            catchup_nodes, hours, args.publishers, broker, workdir, catchup_deadline,
            args.agg_log_level,
        )  # fmt: skip
    return Outcome(plan, rate, broker, tuple(lives), chaos, catchup)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="envnet-scale-"))
    workdir.chmod(0o755)  # mosquitto started as root drops to its own user
    keep = args.keep
    started = time.monotonic()
    try:
        outcome = run(args, workdir)
    except (BenchError, AggregatorError, ServiceError) as exc:
        print(f"[scale] failed: {exc}", file=sys.stderr)
        keep = True  # the service and aggregator logs explain it
        return 1
    except KeyboardInterrupt:
        print("[scale] interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"[scale] work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(outcome, time.monotonic() - started))
    print(last_line(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
