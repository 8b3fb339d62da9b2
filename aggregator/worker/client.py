"""The service's handle on the alerting worker process (aggregator.worker.process).

`AlertingWorker` starts the worker, sends it what happened (aggregator.worker.protocol) and
applies what comes back: storage lines, alert transitions, metric operations. It writes with
backpressure (`drain`): when the worker falls behind, storing slows down with it rather than
queueing without bound. At start it also reads back from InfluxDB what the worker needs
(aggregator.worker.readback), since the worker does no network I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from aggregator.config import AggregatorConfig
from aggregator.engine.lifecycle import Transition
from aggregator.engine.liveness import history_verdict
from aggregator.fleet import Fleet
from aggregator.intake.checks import AcceptedBatch
from aggregator.metrics import Metrics
from aggregator.service_health import WorkerObservation
from aggregator.storage.alert_history import AlertHistoryError, EventCounts
from aggregator.storage.influx import InfluxTarget
from aggregator.storage.warm_start import ParseCounts, WarmStartError
from aggregator.worker.event_clock import EventClock
from aggregator.worker.protocol import (
    HEADER,
    MAX_FRAME,
    REPLIES,
    Adopt,
    Bootstrap,
    Checkpoint,
    Close,
    Command,
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
    frame,
)
from aggregator.worker.readback import alert_events, recent_readings
from schemas.messages import Alert, Reading, ReadingValues, StatusMessage
from schemas.runtime.logs import get_logger, logging_settings

if TYPE_CHECKING:
    # Types only: the engine and its state store run in the worker; the service need not
    # load them (about 1.4 MiB).
    from aggregator.worker.alerting import LinesSink, TransitionSink

log = get_logger("aggregator.worker.client")

# Enough to keep the worker busy while the service writes the next chunks, few enough that
# evaluation (and so the acks, which wait for it) never lags storage by more than seconds.
MAX_STORED_IN_FLIGHT: Final = 4
# Kernel room for whole Stored frames (a 5000-reading write is about 400 kB): the worker then
# reads its next request at once instead of waiting for the service's event loop, busy with
# intake, to push the rest of it. Linux caps this at net.core.wmem_max, silently.
SOCKET_BUFFER_BYTES: Final = 4 * 1024 * 1024


class WorkerError(RuntimeError):
    """The alerting worker died or broke the protocol."""


def apply_ops(metrics: Metrics, ops: list[MetricOp]) -> None:
    for kind, name, labels, value in ops:
        family: Any = getattr(metrics, name)
        target = family.labels(*labels) if labels else family
        if kind == "inc":
            target.inc(value)
        else:
            target.set(value)


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
        if config.alerts.late_idle_s is not None:
            log.warning(
                "config_obsolete",
                field="alerts.late_idle_s",
                note="ignored: late episodes close in event time (README: Replays, backlogs "
                "and event time)",
            )

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
        bootstrap: Bootstrap = (self._config.worker_settings(), self._fleet, logging_settings())
        body = pickle.dumps(bootstrap)
        self._writer.write(HEADER.pack(len(body)) + body)
        self._pump = asyncio.create_task(self._read_replies(), name="alerting-replies")
        reply = await self.call(Open(str(state_dir)))
        if reply.error is not None:
            raise WorkerError(f"alerting state: {reply.error}")
        self.live_alerts = reply.live_alerts

    async def warm_start(self, target: InfluxTarget) -> None:
        """Warm the windows and adopt open alerts; the live alerts (retained states to
        publish again, Alertmanager's seed) then include the adopted ones. A failure of
        either read is logged and counted, and the aggregator carries on without it."""
        await self._warm_windows(target)
        await self._adopt_open_alerts(target)

    async def _warm_windows(self, target: InfluxTarget) -> None:
        """Windows from the readings InfluxDB holds for the late horizon."""
        alerts = self._config.alerts
        replica = self._config.cluster.parsed()
        if not replica.solo and len(self._fleet) == 0:
            log.info("warm_start", readings=0, skipped=0, nodes=0, note="this replica owns none")
            return
        since = EventClock(self._config.clock).now_ms() - alerts.windows.late_horizon_h * 3_600_000
        counts, nodes = ParseCounts(), set[str]()
        replay = True
        try:
            async for by_node in recent_readings(target, since, self._fleet, replica, counts):
                if by_node:
                    nodes.update(by_node)
                    await self.send(WarmReadings(by_node))
        except WarmStartError as exc:
            self._metrics.state_saves.labels("warm_start_failed").inc()
            log.error("warm_start_failed", error=str(exc), note="windows start empty")
            replay = False
        # Replays what was sent, or (after a failure) drops it: all or nothing, as before.
        await self.call(Warm(replay))
        if replay:
            log.info("warm_start", readings=counts.rows, skipped=counts.skipped, nodes=len(nodes))

    async def _adopt_open_alerts(self, target: InfluxTarget) -> None:
        """Open alerts of this replica's nodes that the state file does not know of, from the
        `alerts` points InfluxDB holds (aggregator.engine.adoption). A failure leaves the
        state file's tracks as they are (the windows warm start's policy)."""
        lookback_h = self._config.alerts.adopt_lookback_h
        if lookback_h == 0 or len(self._fleet) == 0:
            return
        since = EventClock(self._config.clock).now_ms() - lookback_h * 3_600_000
        counts = EventCounts()
        try:
            events = await alert_events(target, since, self._fleet, counts)
        except AlertHistoryError as exc:
            self._metrics.state_saves.labels("alert_adoption_failed").inc()
            log.error(
                "alert_adoption_failed",
                error=str(exc),
                note="open alerts of another replica's state file are not adopted",
            )
            return
        reply = await self.call(Adopt(events))
        if reply.error is not None:
            return
        self.live_alerts = reply.live_alerts
        log.info(
            "alert_tracks_adopted",
            count=reply.adopted[0],
            superseded=reply.adopted[1],
            points=counts.rows,
            skipped=counts.skipped,
            lookback_h=lookback_h,
        )

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
                header = await self._reader.readexactly(HEADER.size)
                (size,) = HEADER.unpack(header)
                if size > MAX_FRAME:
                    raise WorkerError(f"reply of {size} bytes")
                reply = REPLIES.decode(await self._reader.readexactly(size))
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
