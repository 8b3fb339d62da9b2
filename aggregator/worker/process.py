"""The alerting side in a process of its own, so standards evaluation runs on another core.

Evaluating the standards (windows, health checks, AQI, the alert lifecycle) costs about as
much CPU per reading as decoding and storing it. In one process the two share one core and
the aggregator stored about 100k readings/s instead of 180k (bench/README.md); split, the
event loop stores and acks while the worker evaluates.

Protocol: length-prefixed msgpack frames over a socketpair. The service (`AlertingWorker`,
asyncio) sends what happened; the worker (`serve`, blocking) answers each request with what
came of it: storage lines, alert transitions (already saved to the state store: a restart
can neither repeat nor lose them), and metric updates, which the service applies to its own
registry. The service writes with backpressure (`drain`): when the worker falls behind,
storing slows down with it rather than queueing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import pickle
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import msgspec

from aggregator.config import AggregatorConfig
from aggregator.engine.lifecycle import Transition
from aggregator.engine.liveness import history_verdict
from aggregator.fleet import Fleet, NodeInfo
from aggregator.gc_tuning import tune_gc
from aggregator.intake.checks import AcceptedBatch
from aggregator.metrics import Metrics
from aggregator.service_health import WorkerObservation
from aggregator.storage.influx import InfluxTarget
from aggregator.worker.alerting import Alerting, LinesSink, TransitionSink
from aggregator.worker.event_clock import EventClock
from schemas.messages import Alert, AlertEventKind, Reading, ReadingValues, StatusMessage
from schemas.runtime.logs import LogFormat, configure_logging, get_logger, logging_settings

log = get_logger("aggregator.worker.process")

_HEADER: Final = struct.Struct("!I")
MAX_FRAME: Final = 256 * 1024 * 1024
# Enough to keep the worker busy while the service writes the next chunks, few enough that
# evaluation (and so the acks, which wait for it) never lags storage by more than seconds.
MAX_STORED_IN_FLIGHT: Final = 4
# Kernel room for whole Stored frames (a 5000-reading write is about 400 kB): the worker then
# reads its next request at once instead of waiting for the service's event loop, busy with
# intake, to push the rest of it. Linux caps this at net.core.wmem_max, silently.
SOCKET_BUFFER_BYTES: Final = 4 * 1024 * 1024


class WorkerError(RuntimeError):
    """The alerting worker died or broke the protocol."""


# -- messages -------------------------------------------------------------------------------


class Open(msgspec.Struct, tag=True, array_like=True):
    state_dir: str


class Warm(msgspec.Struct, tag=True, array_like=True):
    target: InfluxTarget


class StoredBatch(msgspec.Struct, array_like=True):
    node: str
    seq: int
    backlog: bool
    # Checked when they arrived: decoded unchecked here (ReadingValues), at less than half
    # the cost. The service encodes its Readings; the fields are the same.
    readings: Sequence[ReadingValues]


class Stored(msgspec.Struct, tag=True, array_like=True):
    """Every batch of one InfluxDB write: one request per write, not per message, so that
    live traffic (a few readings per message) costs the worker few round trips."""

    batches: list[StoredBatch]


class HeardNode(msgspec.Struct, array_like=True):
    node: str
    arrival_ms: int
    readings: list[ReadingValues]  # the newest reading of each quantity
    # Whether the node's latest telling batch was history (aggregator.engine.liveness).
    history: bool | None = None


class Heard(msgspec.Struct, tag=True, array_like=True):
    nodes: list[HeardNode]


class Status(msgspec.Struct, tag=True, array_like=True):
    status: StatusMessage
    arrival_ms: int


class Command(msgspec.Struct, tag=True, array_like=True):
    payload: bytes


class Tick(msgspec.Struct, tag=True, array_like=True):
    now_ms: int
    intake_live: bool


class Checkpoint(msgspec.Struct, tag=True, array_like=True):
    pass


class Gauges(msgspec.Struct, tag=True, array_like=True):
    pass


class Close(msgspec.Struct, tag=True, array_like=True):
    pass


class Reload(msgspec.Struct, tag=True, array_like=True):
    """A new fleet inventory (hot reload); nodes missing from it are retired."""

    nodes: dict[str, NodeInfo]
    at_ms: int


Request = (
    Open | Warm | Stored | Heard | Status | Command | Tick | Checkpoint | Gauges | Close | Reload
)

MetricOp = tuple[Literal["inc", "set"], str, tuple[str, ...], float]


class Event(msgspec.Struct, array_like=True):
    event: AlertEventKind
    alert: Alert
    at_ms: int


class Reply(msgspec.Struct, array_like=True):
    lines: list[str] = []
    events: list[Event] = []
    metrics: list[MetricOp] = []
    live_alerts: list[Alert] = []
    error: str | None = None


_REQUEST: Final = msgspec.msgpack.Decoder(Request)
_REPLY: Final = msgspec.msgpack.Decoder(Reply)
_ENCODER: Final = msgspec.msgpack.Encoder()


def frame(message: Request | Reply) -> bytes:
    body = _ENCODER.encode(message)
    return _HEADER.pack(len(body)) + body


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
    """The metrics Alerting touches, as operations to replay on the service's registry."""

    ops: list[MetricOp] = field(default_factory=list)

    def __getattr__(self, name: str) -> _Family:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Family(self.ops, name)

    def take(self) -> list[MetricOp]:
        ops, self.ops[:] = list(self.ops), []
        return ops


def apply_ops(metrics: Metrics, ops: list[MetricOp]) -> None:
    for kind, name, labels, value in ops:
        family: Any = getattr(metrics, name)
        target = family.labels(*labels) if labels else family
        if kind == "inc":
            target.inc(value)
        else:
            target.set(value)


# -- the worker process ---------------------------------------------------------------------


class _Worker:
    def __init__(self, config: AggregatorConfig, fleet: Fleet) -> None:
        self.out = Reply()
        self.metrics = RecordedMetrics()
        self.alerting = Alerting(
            config.alerts,
            fleet,
            self.metrics,  # type: ignore[arg-type]
            self._add_lines,
            self._add_transition,
            EventClock(config.clock),
            config.cluster.parsed(),
        )
        self.fleet = fleet

    def _add_lines(self, lines: list[str]) -> None:
        self.out.lines.extend(lines)

    def _add_transition(self, t: Transition) -> None:
        self.out.events.append(Event(t.event, t.alert, t.at_ms))

    def handle(self, request: Request) -> Reply:
        self.out.lines, self.out.events, self.out.live_alerts = [], [], []
        self._dispatch(request)
        if self.out.events:
            # Saved before anyone hears of it.
            self.alerting.save_alerts()
        return Reply(self.out.lines, self.out.events, self.metrics.take(), self.out.live_alerts)

    async def _warm(self, target: InfluxTarget) -> None:
        """Windows from the stored readings, then open alerts another replica's state file
        holds (aggregator.engine.adoption): the live alerts are answered again, with them."""
        await self.alerting.warm_start(target)
        await self.alerting.adopt_open_alerts(target)
        self.out.live_alerts = list(self.alerting.book.live())

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
            case Warm(target):
                asyncio.run(self._warm(target))
                gc.freeze()  # the rebuilt windows live as long as the process
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


# What the worker is started with: the configuration, the inventory and the log settings.
Bootstrap = tuple[AggregatorConfig, Fleet, tuple[str, LogFormat]]


def run_child(fd: int) -> None:
    """The worker process's main (`python -m aggregator.worker FD`): the first frame on its end
    of the socket pair is the pickled Bootstrap, then requests follow."""
    sock = socket.socket(fileno=fd)
    header = _read_exact(sock, _HEADER.size)
    body = _read_exact(sock, _HEADER.unpack(header)[0]) if header is not None else None
    if body is None:
        sock.close()
        return
    # Pickled by the service that started this process (both ends are this package), as
    # multiprocessing would pass a child's arguments.
    config, fleet, logging = cast(Bootstrap, pickle.loads(body))  # noqa: S301
    serve(sock, config, fleet, logging)


def serve(
    sock: socket.socket, config: AggregatorConfig, fleet: Fleet, logging: tuple[str, LogFormat]
) -> None:
    """The worker's main: answer requests until Close or end of stream."""
    configure_logging(*logging)
    tune_gc()
    worker = _Worker(config, fleet)
    with sock:
        while True:
            header = _read_exact(sock, _HEADER.size)
            if header is None:
                return
            body = _read_exact(sock, _HEADER.unpack(header)[0])
            if body is None:
                return
            try:
                request = _REQUEST.decode(body)
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


# -- the service's side ---------------------------------------------------------------------


class AlertingWorker:
    """The service's handle on the worker: the same calls as Alerting, sent over a socket."""

    def __init__(
        self,
        config: AggregatorConfig,
        fleet: Fleet,
        metrics: Metrics,
        lines: LinesSink,
        transitions: TransitionSink,
    ) -> None:
        self._config = config
        self._fleet = fleet
        self._metrics = metrics
        self._lines = lines
        self._transitions = transitions
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # One entry per request sent, in order: a future for calls awaiting their reply.
        self._waiters: deque[asyncio.Future[Reply] | None] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        # Stored requests the worker has not answered yet: beyond this, storing waits.
        self._room = asyncio.Semaphore(MAX_STORED_IN_FLIGHT)
        # Newest reading per (node, quantity) heard since the last tick, with its arrival,
        # and the latest history verdict (aggregator.engine.liveness.history_verdict).
        self._heard: dict[str, tuple[int, dict[str, ReadingValues], bool | None]] = {}
        self.live_alerts: list[Alert] = []
        self._last_reply_at: float | None = None

    @property
    def pid(self) -> int | None:
        """The worker process's id, once started."""
        return self._process.pid if self._process is not None else None

    def observation(self) -> WorkerObservation:
        """For /healthz: whether the process runs, and when it last answered."""
        process_alive = self._process is not None and self._process.returncode is None
        pump_alive = self._pump is not None and not self._pump.done()
        return WorkerObservation(
            alive=process_alive and pump_alive,
            last_reply_at=self._last_reply_at,
            unanswered=len(self._waiters),
        )

    async def start(self, state_dir: Path) -> None:
        ours, theirs = socket.socketpair()
        for end, option in ((ours, socket.SO_SNDBUF), (theirs, socket.SO_RCVBUF)):
            end.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        # A plain child process rather than multiprocessing's spawn, which also starts its
        # resource tracker: another Python process (about 14 MiB resident) this worker has
        # no use for. The worker ends when its socket closes (the service gone).
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aggregator.worker", str(theirs.fileno()),
            pass_fds=(theirs.fileno(),),
        )  # fmt: skip
        theirs.close()
        self._reader, self._writer = await asyncio.open_connection(sock=ours)
        bootstrap: Bootstrap = (self._config, self._fleet, logging_settings())
        body = pickle.dumps(bootstrap)
        self._writer.write(_HEADER.pack(len(body)) + body)
        self._pump = asyncio.create_task(self._read_replies(), name="alerting-replies")
        reply = await self.call(Open(str(state_dir)))
        if reply.error is not None:
            raise WorkerError(f"alerting state: {reply.error}")
        self.live_alerts = reply.live_alerts

    async def warm_start(self, target: InfluxTarget) -> None:
        """Warm the windows and adopt open alerts; the live alerts (retained states to
        publish again, Alertmanager's seed) then include the adopted ones."""
        reply = await self.call(Warm(target.target()))
        if reply.error is None:
            self.live_alerts = reply.live_alerts

    async def sync(self) -> None:
        """Wait until the worker has answered everything sent so far."""
        await self.call(Gauges())

    async def call(self, request: Request) -> Reply:
        """Send and wait for this request's reply (replies come back in order)."""
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._write(request, waiter)
        assert self._writer is not None
        await self._writer.drain()
        return await waiter

    async def send(self, request: Request) -> None:
        """Send with backpressure: waits while the worker is behind."""
        self.post(request)
        await self._drain()

    async def _drain(self) -> None:
        """Wait while the worker is behind. A worker that died meanwhile can make the socket
        fail here before the reply reader has seen the end: that is the same WorkerError."""
        assert self._writer is not None
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise WorkerError(f"the alerting worker stopped: {exc}") from None

    def post(self, request: Request) -> None:
        """Send without waiting (small messages)."""
        self._write(request, None)

    def _write(self, request: Request, waiter: asyncio.Future[Reply] | None) -> None:
        if self._writer is None or self._writer.is_closing():
            raise WorkerError("the alerting worker is not running")
        self._waiters.append(waiter)
        self._writer.write(frame(request))

    async def stored(self, batches: list[AcceptedBatch]) -> asyncio.Future[Reply]:
        """Hand stored batches over for evaluation; the future resolves once they are
        evaluated and their alert transitions saved (or fails if the worker is gone)."""
        await self._room.acquire()
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(lambda _: self._room.release())
        request = Stored([StoredBatch(b.info.node, b.seq, b.backlog, b.readings) for b in batches])
        try:
            self._write(request, waiter)
        except WorkerError:
            waiter.cancel()
            raise
        # `waiter` is queued: if the worker is gone, the reply reader fails it with the
        # worker's end (it fails every queued request, then closes the writer).
        with contextlib.suppress(WorkerError):
            await self._drain()
        return waiter

    def status(self, status: StatusMessage, arrival_ms: int) -> None:
        self.post(Status(status, arrival_ms))

    def command(self, payload: bytes) -> None:
        self.post(Command(payload))

    def tick(self, now_ms: int, intake_live: bool) -> None:
        self._send_heard()
        self.post(Tick(now_ms, intake_live))

    def _send_heard(self) -> None:
        if self._heard:
            heard, self._heard = self._heard, {}
            nodes = [HeardNode(n, at, list(rs.values()), h) for n, (at, rs, h) in heard.items()]
            self.post(Heard(nodes))

    def checkpoint(self) -> None:
        self.post(Checkpoint())

    def reload(self, fleet: Fleet, at_ms: int) -> None:
        """Hand the worker a new inventory (also used if the worker is started again)."""
        self._fleet = fleet
        self._send_heard()  # what was heard so far, judged under the inventory it came in
        self.post(Reload({info.node: info for info in fleet}, at_ms))

    def update_gauges(self) -> None:
        self.post(Gauges())

    def heard(
        self,
        node: str,
        readings: list[Reading],
        arrival_ms: int,
        sent_ms: int | None = None,
        backlog: bool = False,
    ) -> None:
        """Note what arrived (`sent_ms`: the node's clock when it sent them); sent to the
        worker with the next tick (liveness works in seconds to minutes, so one message a
        second is plenty)."""
        entry = self._heard.get(node)
        newest = entry[1] if entry is not None else {}
        for r in readings:
            seen = newest.get(r.quantity)
            if seen is None or r.ts >= seen.ts:
                newest[r.quantity] = r
        history = history_verdict(
            readings,
            arrival_ms if sent_ms is None else sent_ms,
            backlog,
            self._config.alerts.late_after_s,
        )
        if history is None and entry is not None:
            history = entry[2]
        self._heard[node] = (arrival_ms, newest, history)

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None and not self._writer.is_closing():
            try:
                await asyncio.wait_for(self.call(Close()), 30)
            except (TimeoutError, WorkerError, ConnectionError) as exc:
                log.error("alerting_close_failed", error=str(exc))
            self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
        if self._process is not None:
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    async def _read_replies(self) -> None:
        assert self._reader is not None
        try:
            while True:
                header = await self._reader.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(header)
                if size > MAX_FRAME:
                    raise WorkerError(f"reply of {size} bytes")
                reply = _REPLY.decode(await self._reader.readexactly(size))
                self._last_reply_at = time.time()
                waiter = self._waiters.popleft() if self._waiters else None
                self._apply(reply)
                if waiter is not None and not waiter.done():
                    waiter.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, WorkerError, msgspec.DecodeError):
            if not self._closing:
                log.error("alerting_worker_gone", note="alerts are not evaluated until restart")
                self._metrics.alerting_worker_failures.inc()
            gone = WorkerError("the alerting worker stopped")
            for waiter in self._waiters:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(gone)
            self._waiters.clear()
            if self._writer is not None:
                self._writer.close()

    def _apply(self, reply: Reply) -> None:
        if reply.error is not None:
            log.error("alerting_worker_error", error=reply.error)
            self._metrics.alerting_worker_failures.inc()
        apply_ops(self._metrics, reply.metrics)
        if reply.lines:
            self._lines(reply.lines)
        for event in reply.events:
            self._transitions(Transition(event.event, event.alert, event.at_ms))
