"""The measurements of one mode, each on fresh services in its own directory:

- the aggregator run: publishers → mosquitto → aggregator process → influxd;
- the MQTT ceiling: the same publishers → mosquitto → a bare counting subscriber;
- the database ceiling: raw batched line-protocol writes → influxd.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench._aggregator import AggregatorProcess, AggregatorSetup, Overrides
from bench._influx_ceiling import bodies, measure_influx_writes
from bench._procstat import CpuSampler, children, peak_rss_mb
from bench._profile import PySpy, summarize
from bench._publisher import CLIENTS, PublisherClient, PublisherSpec
from bench._publishers import BenchError, PublisherFleet, SentTotals
from bench._results import (
    AggregatorRun,
    Delivery,
    InfluxCeiling,
    ModeResult,
    SubscriberCeiling,
    Timeline,
)
from bench._shapes import SHAPES, Shape, node_ids, start_ts_ms
from bench._subscriber import Counters, SubscriberKind, SubscriberSpec, run_subscriber
from simulators.local_stack import Influxd, Mosquitto, influx_query

DATABASE: Final = "bench"
POLL_S: Final = 0.1
_CTX: Final = multiprocessing.get_context("spawn")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    publishers: int = 4
    nodes_per_publisher: int = 25
    seconds: float = 20.0
    window: int = 1000
    drain_timeout_s: float = 300.0
    ack_grace_s: float = 30.0
    influx_concurrency: int = 3
    lines_per_post: int = 5000
    subscriber_kinds: tuple[SubscriberKind, ...] = ("intake", "aiomqtt", "paho")
    influx_ceiling: bool = True
    overrides: Overrides = field(default_factory=dict)
    log_level: str = "info"
    profile_dir: Path | None = None
    rate: float = 0.0  # messages/s over all publishers in the aggregator run; 0: unpaced
    client: PublisherClient = "raw"  # the publishers' MQTT client (bench/_publisher.py)
    # Messages per node a phase publishes at most; None: the shape's budget, 0: no limit.
    messages_per_node: int | None = None

    @property
    def nodes(self) -> list[tuple[str, ...]]:
        return node_ids(self.publishers, self.nodes_per_publisher)


def log_warnings(path: Path) -> tuple[str, ...]:
    """Warning and error lines of a service log (mosquitto logs drops as warnings; influxd
    runs at level warn, so any line of it counts)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ()
    needles = ("warn", "error", "dropp", "lvl=")
    return tuple(line for line in text.splitlines() if any(n in line.lower() for n in needles))


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    """The publishers' options that bench/ingest.py and bench/peer_nodered.py share."""
    p.add_argument(
        "--publisher-client",
        choices=CLIENTS,
        default="raw",
        help="the publishers' MQTT client: raw (lean, the default) or paho (bench/_publisher.py)",
    )
    p.add_argument(
        "--messages-per-node",
        type=int,
        help="at most this many messages per node and phase (default: 1000 backlog, 4000 "
        "live; 0: no limit, only --seconds)",
    )


def publisher_specs(
    port: int, shape: Shape, opts: BenchOptions, rate: float = 0.0
) -> list[PublisherSpec]:
    t0_ms = start_ts_ms()
    sent_ms = int(time.time() * 1000)
    each = rate / opts.publishers
    budget = shape.budget_per_node if opts.messages_per_node is None else opts.messages_per_node
    return [
        PublisherSpec(
            i,
            port,
            nodes,
            shape.mode,
            t0_ms,
            sent_ms,
            opts.seconds,
            opts.window,
            each,
            messages_per_node=budget,
            client=opts.client,
        )
        for i, nodes in enumerate(opts.nodes)
    ]


def count_readings(influx_url: str) -> int:
    result = influx_query(influx_url, "SELECT count(value) FROM readings", DATABASE)
    try:
        series = result["results"][0].get("series")  # type: ignore[index]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise BenchError(f"unexpected InfluxDB answer: {str(result)[:300]}") from None
    if not series:
        return 0
    return int(series[0]["values"][0][1])


# -- the MQTT ceiling -----------------------------------------------------------------------


def _wait_count(counters: Counters, target: int, deadline: float) -> tuple[float, bool]:
    """When the subscriber had `target` messages (the time of the last one), and whether it
    got there before the deadline."""
    while time.perf_counter() < deadline:
        if counters.messages.value >= target:
            return counters.last_at.value, True
        time.sleep(POLL_S)
    return time.perf_counter(), False


def _start_subscriber(
    spec: SubscriberSpec, counters: Counters
) -> multiprocessing.context.SpawnProcess:
    ready = _CTX.Event()
    proc = _CTX.Process(
        target=run_subscriber, args=(spec, ready, counters), name="bench-subscriber", daemon=True
    )
    proc.start()
    if not ready.wait(timeout=30):
        proc.terminate()
        raise BenchError(f"{spec.kind} subscriber did not subscribe")
    return proc


def subscriber_ceiling(
    opts: BenchOptions, shape: Shape, kind: SubscriberKind, workdir: Path
) -> SubscriberCeiling:
    with Mosquitto(workdir / f"{shape.mode}-subscriber-{kind}") as broker:
        counters = Counters(_CTX.RawValue("q", 0), _CTX.RawValue("d", 0.0))
        proc = _start_subscriber(SubscriberSpec(broker.port, kind), counters)
        try:
            with PublisherFleet(publisher_specs(broker.port, shape, opts)) as fleet:
                fleet.wait_ready()
                roles = {"subscriber": [proc.pid or 0], "mosquitto": [broker.pid or 0]}
                sampler = CpuSampler({**roles, "publishers": fleet.pids})
                sampler.start()
                fleet.go()
                sent = fleet.wait_sent(opts.seconds)
                deadline = time.perf_counter() + opts.drain_timeout_s
                ended, complete = _wait_count(counters, sent.messages, deadline)
                cpu = sampler.stop()
            delivery = Delivery(sent, counters.messages.value, ended, complete, cpu)
        finally:
            proc.terminate()
            proc.join(timeout=10)
    return SubscriberCeiling(kind, delivery, shape.readings)


# -- the database ceiling -------------------------------------------------------------------


def influx_ceiling(opts: BenchOptions, shape: Shape, workdir: Path) -> InfluxCeiling:
    with Influxd(workdir / f"{shape.mode}-influx") as influxd:
        influxd.query(f"CREATE DATABASE {DATABASE}")
        nodes = [node for group in opts.nodes for node in group]
        source = bodies(nodes, shape, start_ts_ms(), opts.lines_per_post)
        writes = measure_influx_writes(
            influxd.url, DATABASE, source, opts.seconds, opts.influx_concurrency
        )
        return InfluxCeiling(writes, count_readings(influxd.url))


# -- the aggregator run ---------------------------------------------------------------------


def wait_stored(
    stored_counter: Callable[[], float],
    influx_url: str,
    target: int,
    deadline: float,
    timeline: Timeline,
    stall_s: float | None = None,
) -> tuple[float, bool, int]:
    """Poll a cheap stored counter until it reaches `target`, then InfluxDB's count. Return
    when the count reached it (the start of the query that saw it) or the deadline, whether
    it did, and the last count. With `stall_s`, also give up once the counter has not moved
    for that long (a system that lost messages never gets there); the end is then the time
    it last moved."""
    counted = 0
    last, moved_at = -1.0, time.perf_counter()
    while time.perf_counter() < deadline:
        stored = stored_counter()
        now = time.perf_counter()
        timeline.samples.append((now, stored))
        if stored != last:
            last, moved_at = stored, now
        elif stall_s is not None and now - moved_at > stall_s:
            return moved_at, False, count_readings(influx_url)
        if stored < target:
            time.sleep(POLL_S)
            continue
        asked = time.perf_counter()
        counted = count_readings(influx_url)
        if counted >= target:
            return asked, True, counted
        time.sleep(POLL_S * 5)
    return time.perf_counter(), False, counted


def stored_counter(agg: AggregatorProcess) -> Callable[[], float]:
    return lambda: agg.metrics().get("envnet_readings_stored_total", 0)


def _sent_while_sampling(
    fleet: PublisherFleet, agg: AggregatorProcess, opts: BenchOptions, timeline: Timeline
) -> SentTotals:
    """Wait for the publishers' reports, sampling the stored counter meanwhile."""

    def sample() -> None:
        stored = agg.metrics().get("envnet_readings_stored_total", 0)
        timeline.samples.append((time.perf_counter(), stored))

    return fleet.wait_sent(opts.seconds, on_idle=sample)


def _drive(
    agg: AggregatorProcess,
    broker: Mosquitto,
    influxd: Influxd,
    shape: Shape,
    opts: BenchOptions,
    timeline: Timeline,
) -> tuple[Delivery, int]:
    with PublisherFleet(publisher_specs(broker.port, shape, opts, opts.rate)) as fleet:
        fleet.wait_ready()
        roles = {
            "aggregator": [agg.pid or 0],
            # Standards evaluation runs in a child process (aggregator/worker/process.py).
            "alerting worker": children(agg.pid or 0),
            "mosquitto": [broker.pid or 0],
            "influxd": [influxd.pid or 0],
            "publishers": fleet.pids,
        }
        sampler = CpuSampler(roles)
        sampler.start()
        fleet.go()
        sent = _sent_while_sampling(fleet, agg, opts, timeline)
        deadline = time.perf_counter() + opts.drain_timeout_s
        ended, complete, counted = wait_stored(
            stored_counter(agg), influxd.url, sent.readings, deadline, timeline
        )
        cpu = sampler.stop()
        acked = fleet.wait_acked(opts.ack_grace_s)
    return Delivery(sent, counted, ended, complete, cpu), acked


@contextmanager
def _profiled(agg: AggregatorProcess, opts: BenchOptions, shape: Shape) -> Iterator[PySpy | None]:
    if opts.profile_dir is None or agg.pid is None:
        yield None
        return
    with PySpy(agg.pid, opts.profile_dir / f"{shape.mode}-aggregator.pyspy.txt") as spy:
        yield spy


def aggregator_run(opts: BenchOptions, shape: Shape, workdir: Path) -> AggregatorRun:
    directory = workdir / f"{shape.mode}-aggregator"
    with Mosquitto(directory / "mosquitto") as broker, Influxd(directory / "influxd") as influxd:
        influxd.query(f"CREATE DATABASE {DATABASE}")
        setup = AggregatorSetup(
            directory=directory / "aggregator",
            mqtt_url=broker.url,
            influx_url=influxd.url,
            database=DATABASE,
            nodes=tuple(node for group in opts.nodes for node in group),
            overrides=opts.overrides,
            log_level=opts.log_level,
        )
        with AggregatorProcess(setup) as agg:
            agg.wait_subscribed(broker.port)
            timeline = Timeline()
            with _profiled(agg, opts, shape) as profile:
                delivery, acked = _drive(agg, broker, influxd, shape, opts, timeline)
            metrics = agg.metrics()
            rss = _peak_rss(agg.pid or 0)
        stored = count_readings(influxd.url)
    warnings = log_warnings(broker.log_path) + log_warnings(influxd.log_path)
    summary = summarize(profile.output) if profile is not None else None
    return AggregatorRun(
        delivery, stored, acked, metrics, shape.readings, timeline, summary, warnings, rss
    )


def _peak_rss(pid: int) -> dict[str, float]:
    helpers = [peak_rss_mb(child) or 0.0 for child in children(pid)]
    return {"service": peak_rss_mb(pid) or 0.0, "worker and helpers": sum(helpers)}


def _say(text: str) -> None:
    print(f"[bench]   {text}", file=sys.stderr, flush=True)


def run_mode(mode: str, opts: BenchOptions, workdir: Path) -> ModeResult:
    """The aggregator run first, then the ceilings, each on fresh services."""
    shape = SHAPES[mode]
    _say("aggregator run")
    run = aggregator_run(opts, shape, workdir)
    subscribers = []
    for kind in opts.subscriber_kinds:
        _say(f"bare {kind} subscriber ceiling")
        subscribers.append(subscriber_ceiling(opts, shape, kind, workdir))
    influx = None
    if opts.influx_ceiling:
        _say("raw InfluxDB write ceiling")
        influx = influx_ceiling(opts, shape, workdir)
    return ModeResult(shape, run, tuple(subscribers), influx)
