"""Peer benchmark: envnet beside Node-RED 4.1 + node-red-contrib-influxdb, in one run, over
the same mosquitto and influxd, with the same publishers and messages (bench/ingest.py's):
backlog (100-reading messages) and live (6-reading messages, QoS 1). Node-RED runs two flows:
one InfluxDB write per MQTT message, and a join node batching messages. Not part of CI; it
installs Node-RED from npm (cached under ~/.cache/envnet-bench/nodered). See bench/README.md.

    .venv/bin/python bench/peer_nodered.py [--quick] [--repeat N] [--seconds S]

The last line of each run is machine-readable:
    envnet_backlog_readings_per_s=… envnet_live_messages_per_s=… … verdict=PASS|FAIL
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Final

if not __package__:  # run as a script: make the repository root importable for bench.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._aggregator import AggregatorError
from bench._nodered import (
    FLOWS,
    INFLUXDB_NODE_SPEC,
    NODE_RED_SPEC,
    UNKNOWN_COUNTS,
    Counts,
    Flow,
    FlowSpec,
    NodeRedError,
    NodeRedInstall,
    NodeRedProcess,
    install,
)
from bench._phases import (
    DATABASE,
    BenchOptions,
    add_load_arguments,
    aggregator_run,
    count_readings,
    log_warnings,
    publisher_specs,
    wait_stored,
)
from bench._procstat import CpuSampler, peak_rss_mb
from bench._publishers import BenchError, PublisherFleet
from bench._report import TARGET_LIVE_MESSAGES_PER_S, TARGET_READINGS_PER_S
from bench._results import AggregatorRun, DeliveredRun, Delivery, Timeline
from bench._shapes import SHAPES, Shape
from simulators.local_stack import Influxd, Mosquitto, ServiceError, influx_query

MODES: Final = ("backlog", "live")
# The thresholds (#14): envnet against Node-RED in the same run.
LIVE_RATIO: Final = 1.25  # envnet live messages/s ≥ this × Node-RED's join flow
BACKLOG_RATIO: Final = 1.5  # envnet backlog readings/s ≥ this × Node-RED's best flow
RSS_RATIO: Final = 0.5  # envnet peak RSS (service + worker) ≤ this × Node-RED's


# -- a Node-RED run -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerRun(DeliveredRun):
    flow: Flow
    delivery: Delivery
    stored: int  # SELECT count(value) after publishing and draining
    counts: Counts  # what the flow itself counted: messages decoded, writes failed
    readings_per_message: int
    peak_rss_mb: float
    timeline: Timeline = field(default_factory=Timeline)
    service_warnings: tuple[str, ...] = ()


def _points_written(influx_url: str) -> float:
    """influxd's own count of points written over HTTP (cheap, unlike count(value))."""
    result = influx_query(influx_url, "SHOW STATS FOR 'httpd'")
    try:
        series = result["results"][0]["series"][0]  # type: ignore[index]
        return float(series["values"][0][series["columns"].index("pointsWrittenOK")])
    except (KeyError, IndexError, TypeError, ValueError):
        raise BenchError(f"unexpected SHOW STATS answer: {str(result)[:300]}") from None


def _final_count(influx_url: str, attempts: int = 3) -> int:
    for _ in range(attempts - 1):
        try:
            return count_readings(influx_url)
        except OSError:  # a query timed out: influxd is still busy with a flow's writes
            time.sleep(5)
    return count_readings(influx_url)


@dataclass(frozen=True, slots=True)
class PeerOptions:
    bench: BenchOptions
    join_readings: int = 5000
    join_timeout_s: float = 1.0
    stall_s: float = 15.0


def nodered_run(
    installed: NodeRedInstall, flow: Flow, opts: PeerOptions, shape: Shape, workdir: Path
) -> PeerRun:
    bench = opts.bench
    directory = workdir / f"nodered-{flow}-{shape.mode}"
    with Mosquitto(directory / "mosquitto") as broker, Influxd(directory / "influxd") as influxd:
        influxd.query(f"CREATE DATABASE {DATABASE}")
        per_write = max(1, opts.join_readings // shape.readings)
        spec = FlowSpec(flow, broker.port, influxd.port, DATABASE, per_write, opts.join_timeout_s)
        with NodeRedProcess(installed, spec, directory / "node-red") as nr:
            timeline = Timeline()

            last = [0.0]

            def written() -> float:
                # influxd flooded by an overrun flow may not answer in time: no progress seen.
                with contextlib.suppress(OSError):
                    last[0] = _points_written(influxd.url)
                return last[0]

            def sample() -> None:
                timeline.samples.append((time.perf_counter(), written()))

            specs = publisher_specs(broker.port, shape, bench, bench.rate)
            with PublisherFleet(specs) as fleet:
                fleet.wait_ready()
                roles = {
                    "node-red": [nr.pid or 0],
                    "mosquitto": [broker.pid or 0],
                    "influxd": [influxd.pid or 0],
                    "publishers": fleet.pids,
                }
                sampler = CpuSampler(roles)
                sampler.start()
                fleet.go()
                sent = fleet.wait_sent(bench.seconds, on_idle=sample)
                deadline = time.perf_counter() + bench.drain_timeout_s
                ended, complete, counted = wait_stored(
                    written, influxd.url, sent.readings, deadline, timeline, opts.stall_s
                )
                cpu = sampler.stop()
            try:
                counts = nr.counts(timeout_s=60)
            except (OSError, ValueError):  # timed out, refused, or not JSON: overrun
                counts = UNKNOWN_COUNTS
            rss = peak_rss_mb(nr.pid or 0) or float("nan")
        stored = _final_count(influxd.url)
    warnings = log_warnings(broker.log_path) + log_warnings(influxd.log_path)
    delivery = Delivery(sent, counted, ended, complete, cpu)
    return PeerRun(flow, delivery, stored, counts, shape.readings, rss, timeline, warnings)


# -- one comparison ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    envnet: dict[str, AggregatorRun]  # by mode
    nodered: dict[tuple[Flow, str], PeerRun]  # by (flow, mode)


def _say(text: str) -> None:
    print(f"[peer] {text}", file=sys.stderr, flush=True)


def compare(
    installed: NodeRedInstall,
    opts: PeerOptions,
    modes: tuple[str, ...],
    flows: tuple[Flow, ...],
    workdir: Path,
) -> Comparison:
    envnet = {}
    for mode in modes:
        _say(f"envnet, {mode} mode")
        envnet[mode] = aggregator_run(opts.bench, SHAPES[mode], workdir / "envnet")
        _say("\n".join(_envnet_lines(mode, envnet[mode])).strip())
    nodered = {}
    for flow in flows:
        for mode in modes:
            _say(f"Node-RED {flow} flow, {mode} mode")
            nodered[flow, mode] = nodered_run(installed, flow, opts, SHAPES[mode], workdir)
            _say("\n".join(_peer_lines(mode, nodered[flow, mode])).strip())
    return Comparison(envnet, nodered)


# -- report ---------------------------------------------------------------------------------


def _n(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:,.0f}"


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs > 0 else float("nan")


def _cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{role} {pct:.0f}%" for role, pct in cpu.items())


def _envnet_lines(mode: str, run: AggregatorRun) -> list[str]:
    d = run.delivery
    done = "" if d.complete else " (NOT complete)"
    return [
        f"  envnet             {mode:<8} {_n(run.readings_per_s):>9} readings/s "
        f"{_n(run.messages_per_s):>7} msg/s  lost {run.lost:,}  acked {run.acked:,}/"
        f"{d.sent.messages:,}  {d.elapsed_s:.1f} s{done}  peak RSS {run.total_peak_rss_mb:.0f} "
        f"MiB ({_rss(run)})  CPU {_cpu(d.cpu)}"
    ]


def _rss(run: AggregatorRun) -> str:
    return ", ".join(f"{role} {mb:.0f}" for role, mb in run.peak_rss_mb.items())


def _peer_lines(mode: str, run: PeerRun) -> list[str]:
    d = run.delivery
    c = run.counts
    done = "" if d.complete else " (NOT complete: its count stood still, or the deadline came)"
    if c == UNKNOWN_COUNTS:
        failed = f" ({c.last_error})"
    elif c.failed_writes:
        failed = f", {c.failed_writes:,} writes failed ({c.last_error[:80]})"
    else:
        failed = ""
    return [
        f"  Node-RED {run.flow:<11} {mode:<8} {_n(run.readings_per_s):>9} readings/s "
        f"{_n(run.messages_per_s):>7} msg/s  lost {run.lost:,} ({_lost_pct(run)})  "
        f"decoded {c.decoded:,}/{d.sent.messages:,} messages{failed}  {d.elapsed_s:.1f} s{done}  "
        f"peak RSS {run.peak_rss_mb:.0f} MiB  CPU {_cpu(d.cpu)}"
    ]


def _lost_pct(run: PeerRun) -> str:
    sent = run.delivery.sent.readings
    return f"{100 * run.lost / sent:.1f} %" if sent else "-"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ours: float
    theirs: float
    ratio: float
    passed: bool

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"  {verdict}  {self.name}: {_n(self.ours)} vs {_n(self.theirs)} = {self.ratio:.2f}"


def checks(c: Comparison) -> list[Check]:
    """The issue's thresholds, those this comparison measured."""
    out = []
    live = c.envnet.get("live")
    join_live = c.nodered.get(("join", "live"))
    if live is not None and join_live is not None:
        ratio = _ratio(live.messages_per_s, join_live.messages_per_s)
        out.append(
            Check(
                f"live msg/s, envnet ≥ {LIVE_RATIO} × Node-RED join flow",
                live.messages_per_s,
                join_live.messages_per_s,
                ratio,
                ratio >= LIVE_RATIO,
            )
        )
    backlog = c.envnet.get("backlog")
    # The join flow, as in the figures: the per-message flow loses messages under
    # load, and its rate then counts only what it stored.
    join_backlog = c.nodered.get(("join", "backlog"))
    if backlog is not None and join_backlog is not None:
        ratio = _ratio(backlog.readings_per_s, join_backlog.readings_per_s)
        out.append(
            Check(
                f"backlog readings/s, envnet ≥ {BACKLOG_RATIO} × Node-RED join flow",
                backlog.readings_per_s,
                join_backlog.readings_per_s,
                ratio,
                ratio >= BACKLOG_RATIO,
            )
        )
    if c.envnet and c.nodered:
        ours = max(run.total_peak_rss_mb for run in c.envnet.values())
        by_flow: dict[Flow, float] = {}
        for (flow, _), run in c.nodered.items():
            by_flow[flow] = max(by_flow.get(flow, 0.0), run.peak_rss_mb)
        lightest = min(by_flow, key=lambda flow: by_flow[flow])
        ratio = _ratio(ours, by_flow[lightest])
        out.append(
            Check(
                f"peak RSS MiB, envnet (service + worker) ≤ {RSS_RATIO} × Node-RED "
                f"({lightest} flow, its lighter)",
                ours,
                by_flow[lightest],
                ratio,
                ratio <= RSS_RATIO,
            )
        )
    if c.envnet:
        lost = sum(run.lost for run in c.envnet.values())
        out.append(Check("envnet lost readings = 0", lost, 0, float("nan"), lost == 0))
    if backlog is not None:
        ours = backlog.readings_per_s
        target = TARGET_READINGS_PER_S
        name = f"envnet backlog floor ≥ {target:,.0f} readings/s"
        out.append(Check(name, ours, target, _ratio(ours, target), ours >= target))
    if live is not None:
        ours = live.messages_per_s
        target = TARGET_LIVE_MESSAGES_PER_S
        name = f"envnet live floor ≥ {target:,.0f} msg/s"
        out.append(Check(name, ours, target, _ratio(ours, target), ours >= target))
    return out


def table(c: Comparison) -> str:
    out = ["== envnet beside Node-RED: same broker, database, publishers and messages =="]
    for mode in MODES:
        if mode in c.envnet:
            out.extend(_envnet_lines(mode, c.envnet[mode]))
        for (_, m), run in c.nodered.items():
            if m == mode:
                out.extend(_peer_lines(mode, run))
    out.append("ratios envnet / Node-RED (readings/s; same for msg/s):")
    for (flow, mode), run in c.nodered.items():
        if mode in c.envnet:
            ratio = _ratio(c.envnet[mode].readings_per_s, run.readings_per_s)
            out.append(f"  {mode:<8} vs {flow:<11} {ratio:.2f}")
    out.append("thresholds (issue #14):")
    out.extend(check.line() for check in checks(c))
    return "\n".join(out)


def last_line(c: Comparison) -> str:
    nan = float("nan")
    fields = {
        "envnet_backlog_readings_per_s": c.envnet["backlog"].readings_per_s
        if "backlog" in c.envnet
        else nan,
        "envnet_live_messages_per_s": c.envnet["live"].messages_per_s
        if "live" in c.envnet
        else nan,
    }
    for (flow, mode), run in c.nodered.items():
        key = flow.replace("-", "_")
        if mode == "backlog":
            fields[f"nodered_{key}_backlog_readings_per_s"] = run.readings_per_s
        else:
            fields[f"nodered_{key}_live_messages_per_s"] = run.messages_per_s
    text = " ".join(f"{k}={v:.0f}" for k, v in fields.items())
    rss = max((run.total_peak_rss_mb for run in c.envnet.values()), default=nan)
    peer_rss = max((run.peak_rss_mb for run in c.nodered.values()), default=nan)
    lost = sum(run.lost for run in c.envnet.values())
    verdict = "PASS" if all(check.passed for check in checks(c)) else "FAIL"
    return (
        f"{text} envnet_peak_rss_mb={rss:.0f} nodered_peak_rss_mb={peer_rss:.0f} "
        f"envnet_lost={lost} verdict={verdict}"
    )


# -- command line ---------------------------------------------------------------------------


def _flows(text: str) -> tuple[Flow, ...]:
    chosen = tuple(f for f in FLOWS if f in {part.strip() for part in text.split(",")})
    if not chosen or len(chosen) != len([p for p in text.split(",") if p.strip()]):
        raise argparse.ArgumentTypeError(f"flows must be among {FLOWS}, got {text!r}")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--mode", choices=[*MODES, "both"], default="both")
    p.add_argument("--flows", type=_flows, default=FLOWS, help="join,per-message (default both)")
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--nodes-per-publisher", type=int, default=25)
    p.add_argument("--seconds", type=float, default=20.0, help="publishing time per phase")
    p.add_argument("--window", type=int, default=1000, help="unPUBACKed messages per publisher")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="s after publishing")
    p.add_argument(
        "--stall",
        type=float,
        default=15.0,
        help="Node-RED: stop waiting once its count stood still this long (it lost messages)",
    )
    p.add_argument(
        "--join-readings",
        type=int,
        default=5000,
        help="join flow: readings per write, as envnet's batch (messages per group = this ÷ "
        "readings per message)",
    )
    p.add_argument("--join-timeout", type=float, default=1.0, help="join flow: s per group")
    p.add_argument("--quick", action="store_true", help="5-s phases: a smoke run, not figures")
    p.add_argument("--repeat", type=int, default=1, help="whole comparisons in a row")
    p.add_argument("--node-red", default=NODE_RED_SPEC, help="npm version spec")
    p.add_argument("--influxdb-node", default=INFLUXDB_NODE_SPEC, help="npm version spec")
    p.add_argument("--no-cache", action="store_true", help="install into the work directory")
    add_load_arguments(p)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def options(args: argparse.Namespace) -> PeerOptions:
    bench = BenchOptions(
        publishers=args.publishers,
        nodes_per_publisher=args.nodes_per_publisher,
        seconds=5.0 if args.quick else args.seconds,
        window=args.window,
        drain_timeout_s=args.drain_timeout,
        subscriber_kinds=(),
        influx_ceiling=False,
        client=args.publisher_client,
        messages_per_node=args.messages_per_node,
    )
    return PeerOptions(bench, args.join_readings, args.join_timeout, args.stall)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    modes = MODES if args.mode == "both" else (args.mode,)
    opts = options(args)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="envnet-peer-"))
    workdir.chmod(0o755)  # mosquitto drops to its own user (see bench/ingest.py)
    keep = args.keep
    verdicts = []
    try:
        cache = None if args.no_cache else Path.home() / ".cache" / "envnet-bench" / "nodered"
        installed = install(args.node_red, args.influxdb_node, cache, workdir)
        _say(
            f"node-red {installed.version('node-red')}, node-red-contrib-influxdb "
            f"{installed.version('node-red-contrib-influxdb')} in {installed.root}"
        )
        for i in range(args.repeat):
            comparison = compare(installed, opts, modes, args.flows, workdir / f"run-{i + 1}")
            print(f"-- run {i + 1} of {args.repeat} --")
            print(table(comparison))
            print(last_line(comparison), flush=True)
            verdicts.append(all(check.passed for check in checks(comparison)))
    except (BenchError, AggregatorError, ServiceError, NodeRedError, OSError) as exc:
        print(f"[peer] failed: {exc}", file=sys.stderr)
        keep = True
        return 1
    except KeyboardInterrupt:
        print("[peer] interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"[peer] work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.repeat > 1:
        passed = sum(verdicts)
        print(f"every run PASS: {'yes' if all(verdicts) else 'no'} ({passed} of {len(verdicts)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
