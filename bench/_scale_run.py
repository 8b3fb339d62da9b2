"""The runs of bench/scale.py, each on fresh services in its own directory:

- a live run: publisher processes → the broker (a NATS cluster, or one mosquitto) → 1…N
  aggregator replicas on the load's event clock → influxd; optionally with chaos (one broker
  server and one replica SIGKILLed and restarted mid-run);
- the catch-up run: 1,000 nodes' 24-hour journals drained in 960-reading batches into one
  replica, on the wall clock.

The broker, the aggregator process, CPU and InfluxDB counting are bench/_aggregator.py,
bench/_procstat.py and bench/_phases.py, as the ingest bench uses them.
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Final, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from aggregator.cluster.subscriptions import ReadingsMode
from aggregator.config import AggregatorConfig
from bench._aggregator import AggregatorProcess, AggregatorSetup, TomlScalar
from bench._alert_events import ALERTS_QUERY, AlertEvent, parse_alerts
from bench._phases import DATABASE, count_readings, stored_counter, wait_stored
from bench._procstat import CpuSampler, children, rss_bytes
from bench._publisher import PublisherSpec
from bench._publishers import BenchError, PublisherFleet
from bench._results import Timeline
from bench._scale_load import LivePlan, expected_sums
from bench._scale_publisher import LiveReport, LiveSpec, run_live_publisher
from bench._shapes import SHAPES, node_ids, start_ts_ms
from schemas import codec, topics
from schemas.messages import STATUS_SCHEMA, StatusMessage
from schemas.runtime.configfile import ConfigError, convert
from simulators.local_stack import Influxd, Mosquitto, NatsCluster, influx_query

_CTX: Final = multiprocessing.get_context("spawn")
BrokerKind = Literal["nats", "mosquitto"]
SAMPLE_S: Final = 1.0
SETTLE_S: Final = 10.0  # alerts unchanged this long after everything is stored: final
LEAD_S: Final = 5.0  # from the replicas' health to the event clock's anchor
SUM_TOLERANCE: Final = 1e-6


def say(text: str) -> None:
    print(f"[scale] {text}", file=sys.stderr, flush=True)


# -- the broker ----------------------------------------------------------------------------


class Broker(Protocol):
    @property
    def urls(self) -> list[str]: ...
    def pid(self, i: int) -> int | None: ...
    def kill(self, i: int) -> None: ...
    def start_server(self, i: int) -> None: ...


class SingleMosquitto:
    """One mosquitto behind the cluster's interface (no chaos on it: it keeps no sessions)."""

    def __init__(self, broker: Mosquitto) -> None:
        self._broker = broker

    @property
    def urls(self) -> list[str]:
        return [self._broker.url]

    def pid(self, i: int) -> int | None:
        return self._broker.pid

    def kill(self, i: int) -> None:
        self._broker.kill()

    def start_server(self, i: int) -> None:
        self._broker.start()


@contextmanager
def open_broker(kind: BrokerKind, directory: Path) -> Iterator[Broker]:
    if kind == "nats":
        with NatsCluster(directory / "nats") as cluster:
            yield cluster
    else:
        with Mosquitto(directory / "mosquitto") as single:
            yield SingleMosquitto(single)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def replicas_supported() -> bool:
    """Whether this aggregator knows `[cluster] replica` (issue #13, built in parallel)."""
    try:
        convert({"cluster": {"replica": "0/2"}}, AggregatorConfig, "probe")
    except ConfigError:
        return False
    return True


def publish_statuses(url: str, nodes: Sequence[str]) -> None:
    """Each node's retained online status, as its edge would publish at connect."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port_of(url))
    client.loop_start()
    try:
        infos = []
        for node in nodes:
            body = codec.STATUS.encode(
                StatusMessage(STATUS_SCHEMA, node, "online", ts=int(time.time() * 1000))
            )
            infos.append(client.publish(topics.status(node), body, qos=1, retain=True))
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        client.loop_stop()
        client.disconnect()


# -- the aggregator replicas ---------------------------------------------------------------


def replica_setups(
    directory: Path,
    broker: Broker,
    influx_url: str,
    nodes: tuple[str, ...],
    replicas: int,
    clock: dict[str, TomlScalar] | None,
    log_level: str,
    readings: ReadingsMode = "per-node",
) -> list[AggregatorSetup]:
    out = []
    for i in range(replicas):
        overrides: dict[str, dict[str, TomlScalar]] = {
            "mqtt": {"client_id": f"envnet-agg-scale-{i}"},
            # The readings past the hour close it: a minute after its end is enough here.
            "alerts.windows": {"close_after_s": 60},
            # The deadman is judged at wall-clock check instants, so at an accelerated clock
            # when it fires depends on the machine's timing, not on the input: compared
            # alerts would differ by chance. Silences here are far longer than any run.
            "alerts.liveness": {"node_silence_s": 172_800.0, "quantity_silence_s": 172_800.0},
        }
        if clock is not None:
            overrides["clock"] = clock
        if replicas > 1:
            overrides["cluster"] = {"readings": readings}
        env = {"ENVNET_REPLICA": f"{i}/{replicas}"} if replicas_supported() else {}
        # Each replica starts on its own server, as a deployment spreads them.
        urls = broker.urls[i % len(broker.urls) :] + broker.urls[: i % len(broker.urls)]
        out.append(
            AggregatorSetup(
                directory=directory / f"replica-{i}",
                mqtt_url=",".join(urls),
                influx_url=influx_url,
                database=DATABASE,
                nodes=nodes,
                overrides=overrides,
                log_level=log_level,
                env=env,
            )
        )
    return out


# -- measurements --------------------------------------------------------------------------


@dataclass(slots=True)
class Cost:
    """Peak RSS and mean CPU (% of one core) of the aggregator replicas and broker servers."""

    agg_rss_peak: int = 0
    broker_rss_peak: int = 0
    agg_cpu_pct: float = 0.0
    broker_cpu_pct: float = 0.0


@dataclass(slots=True)
class Watch:
    aggs: list[AggregatorProcess]
    broker: Broker
    servers: int
    cost: Cost = field(default_factory=Cost)

    def agg_pids(self) -> list[int]:
        pids = [a.pid for a in self.aggs if a.pid is not None]
        return pids + [c for p in pids for c in children(p)]

    def broker_pids(self) -> list[int]:
        return [p for i in range(self.servers) if (p := self.broker.pid(i)) is not None]

    def sample(self) -> None:
        c = self.cost
        c.agg_rss_peak = max(c.agg_rss_peak, sum(rss_bytes(p) for p in self.agg_pids()))
        c.broker_rss_peak = max(c.broker_rss_peak, sum(rss_bytes(p) for p in self.broker_pids()))

    def sampler(self) -> CpuSampler:
        return CpuSampler({"aggregator": self.agg_pids(), "broker": self.broker_pids()})


@dataclass(frozen=True, slots=True)
class NodeCheck:
    """Per-node counts and sums in InfluxDB against what was sent."""

    lost: int
    duplicated: int  # readings stored beyond those sent (a node's count above its own)
    sum_mismatch: int  # nodes whose count is right but whose values are not


def check_nodes(
    influx_url: str, plan: LivePlan, minutes: range | None = None
) -> tuple[NodeCheck, int]:
    span = range(plan.minutes) if minutes is None else minutes
    where = ""
    if minutes is not None:
        where = f" WHERE time >= {plan.ts(span.start)}ms AND time < {plan.ts(span.stop)}ms"
    answer = influx_query(
        influx_url, f'SELECT count("value"), sum("value") FROM "readings"{where} GROUP BY "node"',
        DATABASE,
    )  # fmt: skip
    stored: dict[str, tuple[int, float]] = {}
    results = answer.get("results")
    if not isinstance(results, list) or not results:
        raise BenchError(f"unexpected InfluxDB answer: {str(answer)[:300]}")
    for series in results[0].get("series", []):
        _, count, total = series["values"][0]
        stored[series["tags"]["node"]] = (int(count), float(total))
    per_node = len(span) * 6
    sums = expected_sums(plan, span)
    lost = duplicated = mismatch = 0
    for node, expected_sum in sums.items():
        count, total = stored.get(node, (0, 0.0))
        lost += max(0, per_node - count)
        duplicated += max(0, count - per_node)
        if count == per_node and abs(total - expected_sum) > SUM_TOLERANCE * max(1.0, total):
            mismatch += 1
    duplicated += sum(c for n, (c, _) in stored.items() if n not in sums)
    return NodeCheck(lost, duplicated, mismatch), sum(c for c, _ in stored.values())


def read_alerts(influx_url: str) -> list[AlertEvent]:
    return parse_alerts(influx_query(influx_url, ALERTS_QUERY, DATABASE))


def settled_alerts(influx_url: str, deadline: float) -> list[AlertEvent]:
    """The alert points once unchanged for SETTLE_S (or at the deadline)."""
    last = read_alerts(influx_url)
    since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < SETTLE_S:
        time.sleep(1.0)
        now = read_alerts(influx_url)
        if now != last:
            last, since = now, time.monotonic()
    return last


# -- the live run --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveOptions:
    plan: LivePlan
    rate: float
    publishers: int
    broker: BrokerKind
    ack_timeout_s: float = 60.0  # the edge's default ([mqtt] ack_timeout_s, edge/config.py)
    deadline_s: float = 600.0
    log_level: str = "info"
    # How replicas of several read readings ([cluster] readings, docs/cluster/replicas.md).
    readings: ReadingsMode = "per-node"


@dataclass(frozen=True, slots=True)
class Chaos:
    """Event minutes at which to kill broker server 1 and replica 1; wall seconds down."""

    broker_minute: int
    replica_minute: int
    down_s: float = 5.0


@dataclass(frozen=True, slots=True)
class ChaosResult:
    broker_lost: int | None  # None: not done (a single broker keeps no sessions to test)
    replica_lost: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LiveResult:
    replicas: int
    replicas_real: bool  # False: the aggregator has no replica support; one process ran
    batches: int
    copies: int
    acked: int
    reconnects: int
    stored: int
    check: NodeCheck
    alerts: list[AlertEvent]
    cost: Cost
    wall_s: float
    chaos: ChaosResult | None
    complete: bool
    duplicates_dropped: int = 0


class LiveFleet:
    """The live publisher processes; a context manager that always stops them."""

    def __init__(self, specs: list[LiveSpec]) -> None:
        self._specs = specs
        self.anchor = _CTX.Value("q", 0)
        self._go = _CTX.Event()
        self.finish = _CTX.Event()
        self._results: multiprocessing.Queue[object] = _CTX.Queue()
        self._procs: list[SpawnProcess] = []

    def __enter__(self) -> LiveFleet:
        for spec in self._specs:
            proc = _CTX.Process(
                target=run_live_publisher,
                args=(spec, self.anchor, self._go, self.finish, self._results),
                name=f"scale-publisher-{spec.index}",
                daemon=True,
            )
            proc.start()
            self._procs.append(proc)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.finish.set()
        # Unwinding from an error or Ctrl-C: a publisher still sending its nodes' statuses
        # does not look at `finish`, and waiting 10 s for each made a stop take a minute.
        patience = 10.0 if exc_type is None else 1.0
        for proc in self._procs:
            proc.join(timeout=patience)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)

    def next_report(self, timeout_s: float) -> object | None:
        try:
            return self._results.get(timeout=timeout_s)
        except queue.Empty:
            dead = [p.name for p in self._procs if p.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"publisher process failed: {', '.join(dead)}") from None
            return None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        ready = 0
        while ready < len(self._specs):
            if time.monotonic() > deadline:
                raise BenchError("publishers did not publish their nodes' statuses in time")
            if self.next_report(0.5) is not None:
                ready += 1

    def go(self, anchor_wall_ms: int) -> None:
        self.anchor.value = anchor_wall_ms
        self._go.set()


def live_specs(opts: LiveOptions, urls: list[str]) -> list[LiveSpec]:
    groups = [tuple(range(p, opts.plan.nodes, opts.publishers)) for p in range(opts.publishers)]
    return [
        LiveSpec(i, tuple(urls), opts.plan, nodes, opts.rate, ack_timeout_s=opts.ack_timeout_s)
        for i, nodes in enumerate(groups)
    ]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _ChaosState:
    chaos: Chaos
    anchor_ms: int
    rate: float
    broker_done: bool = False
    replica_done: bool = False
    notes: list[str] = field(default_factory=list)

    def due(self, minute: int) -> bool:
        return _wall_ms() >= self.anchor_ms + minute * 60_000 / self.rate

    def step(self, broker: Broker, aggs: list[AggregatorProcess], kill_broker: bool) -> None:
        c = self.chaos
        if kill_broker and not self.broker_done and self.due(c.broker_minute):
            self.broker_done = True
            say(f"chaos: SIGKILL broker server 1 (pid {broker.pid(1)})")
            broker.kill(1)
            time.sleep(c.down_s)  # the outage itself: the cluster runs on two servers
            started = time.monotonic()
            broker.start_server(1)
            self.notes.append(f"broker server 1 back after {time.monotonic() - started:.1f} s")
        if not self.replica_done and self.due(c.replica_minute):
            self.replica_done = True
            victim = min(1, len(aggs) - 1)  # replica 1; the only one when there is one
            say(f"chaos: SIGKILL replica {victim} (pid {aggs[victim].pid})")
            aggs[victim].kill()
            time.sleep(c.down_s)  # the outage: its nodes wait at the broker
            started = time.monotonic()
            aggs[victim].start()
            self.notes.append(
                f"replica {victim} healthy again after {time.monotonic() - started:.1f} s"
            )


def _collect(
    fleet: LiveFleet, count: int, deadline: float, tick: Callable[[], None]
) -> list[LiveReport]:
    reports: list[LiveReport] = []
    while len(reports) < count:
        if time.monotonic() > deadline:
            fleet.finish.set()
        if time.monotonic() > deadline + 60:
            raise BenchError("publishers did not report")
        item = fleet.next_report(SAMPLE_S)
        if isinstance(item, LiveReport):
            reports.append(item)
        tick()
    return reports


def live_run(
    opts: LiveOptions, replicas: int, workdir: Path, chaos: Chaos | None = None
) -> LiveResult:
    plan = opts.plan
    directory = workdir / (f"live-{replicas}" + ("-chaos" if chaos else ""))
    real = replicas_supported()
    processes = replicas if real else 1
    with ExitStack() as stack:
        broker = stack.enter_context(open_broker(opts.broker, directory))
        influxd = stack.enter_context(Influxd(directory / "influxd"))
        influxd.query(f"CREATE DATABASE {DATABASE}")
        fleet = stack.enter_context(LiveFleet(live_specs(opts, broker.urls)))
        say(f"publishers: {plan.nodes} nodes' retained statuses")
        fleet.wait_ready(opts.deadline_s)
        started = time.monotonic()
        anchor_ms = _wall_ms() + int((LEAD_S + 8.0 * processes) * 1000)
        clock: dict[str, TomlScalar] = {
            "origin_ms": plan.origin_ms, "anchor_wall_ms": anchor_ms, "rate": opts.rate,
        }  # fmt: skip
        setups = replica_setups(
            directory, broker, influxd.url, plan.node_ids(), processes, clock, opts.log_level,
            opts.readings,
        )  # fmt: skip
        aggs = [stack.enter_context(AggregatorProcess(s)) for s in setups]
        for agg in aggs:
            agg.wait_subscribed(port_of(broker.urls[0]))
        if _wall_ms() > anchor_ms:
            say(f"replicas ready {(_wall_ms() - anchor_ms) / 1000:.1f} s after the anchor")
        fleet.go(anchor_ms)
        servers = len(broker.urls)
        watch = Watch(aggs, broker, servers)
        sampler = watch.sampler()
        sampler.start()
        chaos_state = _ChaosState(chaos, anchor_ms, opts.rate) if chaos else None
        kill_broker = opts.broker == "nats"

        def tick() -> None:
            watch.sample()
            if chaos_state is not None:
                chaos_state.step(broker, aggs, kill_broker)

        deadline = time.monotonic() + opts.deadline_s
        reports = _collect(fleet, opts.publishers, deadline, tick)
        cpu = sampler.stop()
        watch.cost.agg_cpu_pct = cpu["aggregator"]
        watch.cost.broker_cpu_pct = cpu["broker"]
        errors = [f"publisher {r.index}: {r.error}" for r in reports if r.error]
        if errors:
            say("; ".join(errors))
        expected = plan.nodes * plan.readings_per_node()
        stored = count_readings(influxd.url)
        while stored < expected and time.monotonic() < deadline:
            time.sleep(1.0)
            stored = count_readings(influxd.url)
        alerts = settled_alerts(influxd.url, deadline + 60)
        check, stored = check_nodes(influxd.url, plan)
        # Copies the aggregators' dedup dropped (a replaced replica's count is gone with it).
        dropped = sum(
            value
            for a in aggs
            for key, value in a.metrics().items()
            if key.partition("{")[0] == "envnet_duplicate_batches_total"
        )
        chaos_result = None
        if chaos is not None and chaos_state is not None:
            chaos_result = ChaosResult(
                _span_lost(influxd.url, plan, chaos.broker_minute) if kill_broker else None,
                _span_lost(influxd.url, plan, chaos.replica_minute),
                tuple(chaos_state.notes),
            )
        wall_s = time.monotonic() - started
    return LiveResult(
        replicas=processes,
        replicas_real=real,
        batches=sum(r.batches for r in reports),
        copies=sum(r.copies for r in reports),
        acked=sum(r.acked for r in reports),
        reconnects=sum(r.reconnects for r in reports),
        stored=stored,
        check=check,
        alerts=alerts,
        cost=watch.cost,
        wall_s=wall_s,
        chaos=chaos_result,
        complete=stored >= expected,
        duplicates_dropped=int(dropped),
    )


def _span_lost(influx_url: str, plan: LivePlan, minute: int) -> int:
    """Readings lost among those sent from two minutes before a kill to four after it (the
    outage and the recovery span of the event clock at bench rates)."""
    span = range(max(0, minute - 2), min(plan.minutes, minute + 5))
    check, _ = check_nodes(influx_url, plan, span)
    return check.lost


# -- the catch-up run ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatchupResult:
    nodes: int
    readings: int
    stored: int
    seconds: float
    complete: bool
    replicas_real: bool


def catchup_run(
    nodes: int, hours: int, publishers: int, broker_kind: BrokerKind, workdir: Path,
    deadline_s: float, log_level: str,
) -> CatchupResult:  # fmt: skip
    shape = SHAPES["catchup"]
    samples_per_batch = shape.readings // len(shape.sample)
    messages_per_node = hours * 60 // samples_per_batch
    per_publisher = max(1, nodes // publishers)
    groups = node_ids(publishers, per_publisher)
    flat = tuple(n for g in groups for n in g)
    readings = len(flat) * messages_per_node * shape.readings
    directory = workdir / "catchup"
    with ExitStack() as stack:
        broker = stack.enter_context(open_broker(broker_kind, directory))
        influxd = stack.enter_context(Influxd(directory / "influxd"))
        influxd.query(f"CREATE DATABASE {DATABASE}")
        publish_statuses(broker.urls[0], flat)
        setup = replica_setups(directory, broker, influxd.url, flat, 1, None, log_level)[0]
        agg = stack.enter_context(AggregatorProcess(setup))
        agg.wait_subscribed(port_of(broker.urls[0]))
        t0 = start_ts_ms()
        sent_ms = int(time.time() * 1000)
        specs = [
            PublisherSpec(
                index=i,
                port=port_of(broker.urls[i % len(broker.urls)]),
                nodes=g,
                mode="catchup",
                t0_ms=t0,
                sent_ms=sent_ms,
                seconds=deadline_s,
                window=20,
                messages_per_node=messages_per_node,
            )
            for i, g in enumerate(groups)
        ]
        with PublisherFleet(specs) as fleet:
            fleet.wait_ready()
            fleet.go()
            timeline = Timeline()
            sent = fleet.wait_sent(deadline_s)
            if sent.errors:
                say("; ".join(sent.errors))
            end = time.perf_counter() + deadline_s
            ended, complete, counted = wait_stored(
                stored_counter(agg), influxd.url, sent.readings, end, timeline
            )
        seconds = ended - sent.first_publish
    return CatchupResult(len(flat), readings, counted, seconds, complete, replicas_supported())
