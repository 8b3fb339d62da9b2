"""The alerting side in a process of its own, so standards evaluation runs on another core.

Evaluating the standards (windows, health checks, AQI, the alert lifecycle) costs about as
much CPU per reading as decoding and storing it. In one process the two share one core and
the aggregator stored about 100k readings/s instead of 180k (bench/README.md); split, the
event loop stores and acks while the worker evaluates.

This is the worker's side (`serve`, blocking): it answers each request of the service
(aggregator.worker.client) in turn (aggregator.worker.protocol). It does no network I/O of
its own: what it needs from InfluxDB at start, the service reads back and sends. So the
process imports no event loop, HTTP or MQTT client, nor the metrics registry: about 20 MiB
less resident than with them (bench/README.md, "Memory").
"""

from __future__ import annotations

import gc
import pickle
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import msgspec

from aggregator.engine.lifecycle import Transition
from aggregator.fleet import Fleet
from aggregator.gc_tuning import tune_gc
from aggregator.worker.alerting import Alerting
from aggregator.worker.event_clock import EventClock
from aggregator.worker.protocol import (
    HEADER,
    REQUESTS,
    Adopt,
    Bootstrap,
    Checkpoint,
    Close,
    Command,
    Event,
    Gauges,
    Heard,
    HeardNode,
    MetricOp,
    Open,
    Reload,
    Reply,
    Request,
    Status,
    Stored,
    StoredBatch,
    Tick,
    Warm,
    WarmReadings,
    WorkerSettings,
    frame,
)
from schemas.messages import ReadingValues
from schemas.runtime.logs import LogFormat, configure_logging, get_logger

log = get_logger("aggregator.worker.process")


# -- metrics, recorded in the worker and applied in the service ----------------------------


@dataclass(slots=True)
class _Child:
    ops: list[MetricOp]
    name: str
    labels: tuple[str, ...]

    def inc(self, amount: float = 1.0) -> None:
        self.ops.append(("inc", self.name, self.labels, float(amount)))

    def set(self, value: float) -> None:
        self.ops.append(("set", self.name, self.labels, float(value)))


@dataclass(slots=True)
class _Family:
    ops: list[MetricOp]
    name: str

    def labels(self, *values: str) -> _Child:
        return _Child(self.ops, self.name, values)

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def set(self, value: float) -> None:
        self.labels().set(value)


@dataclass(slots=True)
class RecordedMetrics:
    """The metrics Alerting touches, as operations to replay on the service's registry
    (aggregator.worker.client.apply_ops)."""

    ops: list[MetricOp] = field(default_factory=list)

    def __getattr__(self, name: str) -> _Family:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Family(self.ops, name)

    def take(self) -> list[MetricOp]:
        ops, self.ops[:] = list(self.ops), []
        return ops


# -- the worker process ---------------------------------------------------------------------


class _Worker:
    def __init__(self, settings: WorkerSettings, fleet: Fleet) -> None:
        self.out = Reply()
        self.metrics = RecordedMetrics()
        self.alerting = Alerting(
            settings.engine,
            fleet,
            self.metrics,  # type: ignore[arg-type]
            self._add_lines,
            self._add_transition,
            EventClock(settings.clock),
            settings.replica,
        )
        self.fleet = fleet
        # Warm start: the readings sent so far, by node, until Warm replays them.
        self._warming: dict[str, list[ReadingValues]] = {}

    def _add_lines(self, lines: list[str]) -> None:
        self.out.lines.extend(lines)

    def _add_transition(self, t: Transition) -> None:
        self.out.events.append(Event(t.event, t.alert, t.at_ms))

    def handle(self, request: Request) -> Reply:
        self.out.lines, self.out.events, self.out.live_alerts = [], [], []
        self.out.adopted = (0, 0)
        self._dispatch(request)
        if self.out.events:
            # Saved before anyone hears of it.
            self.alerting.save_alerts()
        return Reply(
            self.out.lines,
            self.out.events,
            self.metrics.take(),
            self.out.live_alerts,
            adopted=self.out.adopted,
        )

    def _warm_readings(self, readings: Mapping[str, Sequence[ReadingValues]]) -> None:
        for node, rs in readings.items():
            self._warming.setdefault(node, []).extend(rs)

    def _warm(self, replay: bool) -> None:
        warming, self._warming = self._warming, {}
        if replay:
            self.alerting.warm(warming)
        del warming
        gc.freeze()  # the rebuilt windows live as long as the process

    def _adopt(self, adopt: Adopt) -> None:
        """Open alerts another replica's state file holds: the live alerts are answered
        again, with them."""
        self.out.adopted = self.alerting.adopt(adopt.events)
        self.out.live_alerts = list(self.alerting.book.live())

    def _start(self, request: WarmReadings | Warm | Adopt) -> None:
        """What the service read back from InfluxDB at start (aggregator.worker.readback)."""
        match request:
            case WarmReadings(readings):
                self._warm_readings(readings)
            case Warm(replay):
                self._warm(replay)
            case Adopt():
                self._adopt(request)

    def _stored(self, batches: list[StoredBatch]) -> None:
        get = self.fleet.get
        self.alerting.stored_all(
            (info, b.readings, b.backlog) for b in batches if (info := get(b.node)) is not None
        )

    def _heard(self, nodes: list[HeardNode]) -> None:
        for h in nodes:
            if (info := self.fleet.get(h.node)) is not None:
                self.alerting.heard(info, h.readings, h.arrival_ms, h.history)

    def _dispatch(self, request: Request) -> None:
        match request:
            case Open(state_dir):
                self.alerting.open(Path(state_dir))
                self.out.live_alerts = list(self.alerting.book.live())
            case WarmReadings() | Warm() | Adopt():
                self._start(request)
            case Stored(batches):
                self._stored(batches)
            case Heard(nodes):
                self._heard(nodes)
            case Status(status, arrival_ms):
                self.alerting.status(status, arrival_ms)
            case Command(payload):
                self.alerting.command(payload)
            case Tick(now_ms, intake_live):
                self.alerting.tick(now_ms, intake_live)
            case Checkpoint():
                self.alerting.checkpoint()
            case Gauges():
                self.alerting.update_gauges()
            case Close():
                self.alerting.close()
            case Reload(nodes, at_ms):
                self.fleet = Fleet(nodes)
                self.alerting.reload(self.fleet, at_ms)


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def run_child(fd: int) -> None:
    """The worker process's main (`python -m aggregator.worker FD`): the first frame on its end
    of the socket pair is the pickled Bootstrap, then requests follow."""
    sock = socket.socket(fileno=fd)
    header = _read_exact(sock, HEADER.size)
    body = _read_exact(sock, HEADER.unpack(header)[0]) if header is not None else None
    if body is None:
        sock.close()
        return
    # Pickled by the service that started this process (both ends are this package), as
    # multiprocessing would pass a child's arguments.
    settings, fleet, logging = cast(Bootstrap, pickle.loads(body))  # noqa: S301
    serve(sock, settings, fleet, logging)


def serve(
    sock: socket.socket, settings: WorkerSettings, fleet: Fleet, logging: tuple[str, LogFormat]
) -> None:
    """The worker's main: answer requests until Close or end of stream."""
    configure_logging(*logging)
    tune_gc()
    worker = _Worker(settings, fleet)
    with sock:
        while True:
            header = _read_exact(sock, HEADER.size)
            if header is None:
                return
            body = _read_exact(sock, HEADER.unpack(header)[0])
            if body is None:
                return
            try:
                request = REQUESTS.decode(body)
            except msgspec.DecodeError as exc:
                # Both ends are this package: a bad frame is a bug, reported, not fatal.
                sock.sendall(frame(Reply(error=f"undecodable request: {exc}"[:500])))
                continue
            try:
                reply = worker.handle(request)
            # Any failure of one request is reported to the service (which counts and logs
            # it) rather than ending the worker: the next batch may evaluate fine.
            except Exception as exc:
                log.exception("alerting_request_failed", request=type(request).__name__)
                reply = Reply(error=f"{type(exc).__name__}: {exc}"[:500])
            sock.sendall(frame(reply))
            if isinstance(request, Close):
                return
