"""The aggregator service: intake → storage pipeline → acks and alerts, in one task group.

Shutdown order matters, and is: stop intake (the broker queues for our persistent session),
handle what was already received, flush the pipeline, send the last acks and alerts (stopping
the outbox task only between two flushes, `_close_outbox`), give the webhooks and Alertmanager
up to `[state] shutdown_drain_s` to deliver what they hold, and only then close the publishing
connection.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import msgspec

from aggregator.calibration.batch import calibrate_batch
from aggregator.calibration.book import CalibrationBook
from aggregator.calibration.file import load_calibrations
from aggregator.cluster.partition import Replica
from aggregator.cluster.subscriptions import (
    NodeSubscriptions,
    SubscriptionPlan,
    session_client_id,
)
from aggregator.config import AggregatorConfig
from aggregator.delivery import AlertmanagerSink
from aggregator.engine.lifecycle import Transition
from aggregator.fleet import Fleet, NodeInfo
from aggregator.intake.checks import AcceptedBatch, Intake, Refusal
from aggregator.intake.fleet_watch import FleetChange, FleetWatcher, Outcome, fleet_change
from aggregator.intake.mqtt_session import Publisher, Subscriber
from aggregator.intake.refusal_notices import RefusalNotices
from aggregator.intake.refusals import RefusalReporter
from aggregator.intake.seqs import SeqState, SeqTracker
from aggregator.metrics import Metrics
from aggregator.metrics_http import MetricsServer, make_app
from aggregator.service_health import BrokerObservation, HealthReport, evaluate
from aggregator.storage.deadletter import DeadLetters
from aggregator.storage.influx import InfluxWriter
from aggregator.storage.inventory import inventory_lines, stored_node_ids
from aggregator.storage.pipeline import PendingBatch, Pipeline, PipelineSettings
from aggregator.storage.records import ReadingLines, node_lines, status_line
from aggregator.storage.setup import prepare_storage
from aggregator.webhook import WebhookSink
from aggregator.worker.client import AlertingWorker, WorkerError
from aggregator.worker.event_clock import EventClock, wall_ms
from schemas import codec, topics
from schemas.messages import (
    ACK_SCHEMA,
    ALERT_EVENT_SCHEMA,
    MAX_SEQS_PER_ACK,
    AckMessage,
    AlertEvent,
    RefusalMessage,
)
from schemas.runtime.logs import get_logger

log = get_logger("aggregator.service")

ACK_LINGER_S: Final = 0.1
# How often a waiting outbox says so (debug log) while the publisher is not connected.
PUBLISHER_WAIT_S: Final = 5.0


def _ack_messages(node: str, journal: str, seqs: list[int]) -> list[AckMessage]:
    return [
        AckMessage(ACK_SCHEMA, node, seqs[start : start + MAX_SEQS_PER_ACK], journal or None)
        for start in range(0, len(seqs), MAX_SEQS_PER_ACK)
    ]


def owned_fleet(fleet: Fleet, replica: Replica) -> Fleet:
    """The part of the inventory a replica evaluates: all of it for one replica."""
    if replica.solo:
        return fleet
    return Fleet({info.node: info for info in fleet if replica.owns(info.node)})


def _node_of(topic: str) -> str | None:
    """The node a node topic names, None for any other topic (left to intake to refuse)."""
    try:
        return topics.parse_node_topic(topic).node
    except topics.TopicError:
        return None


def _topic_kind(topic: str) -> str:
    """The kind of a received message, a metric label: from our own subscriptions only."""
    if topic == topics.ALERT_COMMANDS:
        return "alert_command"
    for kind in ("readings", "status"):
        if topic.endswith(f"/{kind}"):
            return kind
    return "other"


async def _first(awaitable: Awaitable[object], task: asyncio.Task[None]) -> None:
    """Wait for `awaitable`, or until `task` ends (so a failing task is not waited on)."""
    waiter = asyncio.ensure_future(awaitable)
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


# What an ack needs of a stored batch: (node, journal, seq).
AckKey = tuple[str, str, int]


def ack_keys(batches: list[AcceptedBatch]) -> list[AckKey]:
    return [(batch.info.node, batch.journal, batch.seq) for batch in batches]


@dataclass(slots=True)
class _Outbox:
    """Acks and alert transitions waiting for the publisher, coalesced per node and journal."""

    acks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    refusals: list[RefusalMessage] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, batch: AcceptedBatch) -> None:
        self.acks.setdefault((batch.info.node, batch.journal), []).append(batch.seq)
        self.ready.set()

    def ack_all(self, keys: list[AckKey]) -> None:
        """`ack` of each (the batches of one write), waking the publisher once."""
        acks = self.acks
        for node, journal, seq in keys:
            key = (node, journal)
            seqs = acks.get(key)
            if seqs is None:
                acks[key] = [seq]
            else:
                seqs.append(seq)
        if keys:
            self.ready.set()

    def alert(self, transition: Transition) -> None:
        self.transitions.append(transition)
        self.ready.set()

    def refusal(self, message: RefusalMessage) -> None:
        self.refusals.append(message)
        self.ready.set()

    def take_refusals(self) -> list[RefusalMessage]:
        refusals, self.refusals = self.refusals, []
        return refusals

    def take(self) -> tuple[dict[tuple[str, str], list[int]], list[Transition]]:
        acks, transitions = self.acks, self.transitions
        self.acks, self.transitions = {}, []
        self.ready.clear()
        return acks, transitions


class AggregatorService:
    def __init__(
        self,
        config: AggregatorConfig,
        fleet: Fleet,
        metrics: Metrics | None = None,
        fleet_path: Path | None = None,
    ) -> None:
        self._config = config
        self._fleet = fleet
        # This process's share of the fleet (aggregator.cluster, docs/cluster/replicas.md):
        # it subscribes to, stores, acks and evaluates its own nodes alone.
        self._replica = replica = config.cluster.parsed()
        self._solo = replica.solo  # read per message
        self._owned = owned_fleet(fleet, replica)
        self._node_topics = NodeSubscriptions(replica, config.cluster.readings)
        self._mqtt = msgspec.structs.replace(
            config.mqtt, client_id=session_client_id(config.mqtt.client_id, replica)
        )
        # The alert logic's "now" (heard, status arrival, ticks, retirements); storage,
        # notices, the inventory and Alertmanager stay on the wall clock (event_clock).
        self._clock = EventClock(config.clock)
        self.metrics = metrics or Metrics()
        # Given the file the fleet was read from, the service reloads it when it changes.
        self.fleet_watcher = (
            FleetWatcher(fleet_path, config.fleet.reload_s, self.reload_fleet, self._count_reload)
            if fleet_path is not None
            else None
        )
        self._intake = Intake(fleet, config.mqtt.max_payload_bytes)
        self._refusals = RefusalReporter(self.metrics)
        self._notices = RefusalNotices()
        self._seqs = SeqTracker(config.mqtt.dedup_batches_per_node)
        self._lines: dict[str, ReadingLines] = {}
        # No calibration file: every line is built exactly as before calibration existed.
        path = config.calibration.path
        self._calibration: CalibrationBook | None = (
            load_calibrations(Path(path)) if path is not None else None
        )
        tally, received = self.metrics.tally, self.metrics.messages_received
        self._readings_messages = tally(received.labels("readings"))
        self._readings_received = tally(self.metrics.readings_received)
        self._status_messages = tally(received.labels("status"))
        # Standards evaluation runs in a process of its own (aggregator/worker/process.py).
        self._alerting = AlertingWorker(
            config, self._owned, self.metrics, self._submit_lines, self._publish_later
        )
        self._webhooks = [
            WebhookSink(hook, self._count_webhook, hook.token(os.environ))
            for hook in config.alerts.webhooks
        ]
        am = config.alertmanager if config.alertmanager.urls else None
        self._alertmanager = (
            None
            if am is None
            else AlertmanagerSink(am, fleet.get, self._count_alertmanager, clock_ms=wall_ms)
        )
        self._outbox = _Outbox()
        # Held by a flush from its take() to its last publish: see _close_outbox.
        self._flush_lock = asyncio.Lock()
        self._publisher = Publisher(self._mqtt)
        self._pipeline: Pipeline | None = None
        self._subscriber: Subscriber | None = None
        self.metrics_port: int | None = None
        self._intake_connected = False
        self._intake_paused = False
        self._started_at = self._intake_changed_at = time.time()
        self.started = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        config = self._config
        replica = self._replica
        # Replicas on one host may share the state directory (and its state.sqlite).
        name = "dead-letters" if replica.solo else f"dead-letters-r{replica.index}"
        dead = DeadLetters(Path(config.state.dir) / f"{name}.jsonl")
        if self._clock.scaled:
            clock = config.clock
            log.warning(
                "scaled_clock",
                origin_ms=clock.origin_ms,
                anchor_wall_ms=clock.anchor_wall_ms,
                rate=clock.rate,
                event_now_ms=self._clock.now_ms(),
                note="alerts are judged on a scaled event clock, not the wall clock: for "
                "accelerated scenarios only ([clock] of agg.toml, ENVNET_CLOCK)",
            )
        await prepare_storage(config.influx)
        await self._alerting.start(Path(config.state.dir))
        try:
            await self._alerting.warm_start(config.influx)
            await self._serve(stop, config.influx, dead)
        finally:
            await self._alerting.close()
        log.info("aggregator_stopped")

    async def _serve(
        self, stop: asyncio.Event, settings: PipelineSettings, dead: DeadLetters
    ) -> None:
        config = self._config
        async with InfluxWriter(config.influx) as writer:
            pipeline = self._pipeline = Pipeline(writer, settings, self.metrics, dead, self._stored)
            await self.record_inventory(self._fleet)
            plan = await self._subscription_plan()
            subscriber = self._subscriber = Subscriber(
                self._mqtt,
                list(plan.keep),
                self._handle,
                read_buffer=config.mqtt.read_buffer_messages,
                read_buffer_bytes=config.mqtt.read_buffer_bytes,
                pause_after_s=config.mqtt.pause_after_s,
                wait_resumable=lambda: pipeline.budget.wait_for_room(0.5),
                on_state=self._on_intake_state,
                on_pause=self._on_intake_pause,
                unsubscribe_first=plan.drop,
                on_subscribed=self.metrics.mqtt_subscriptions.set,
            )
            server = MetricsServer(
                make_app(self.metrics, self._health_report),
                config.metrics.host,
                config.metrics.port,
            )
            await server.start()
            self.metrics_port = server.port
            log.info(
                "aggregator_started",
                influx=writer.target.display,
                brokers=",".join(e.display for e in config.mqtt.endpoints()),
                nodes=len(self._fleet),
                replica=self._replica.label,
                replica_readings=config.cluster.readings,
                owned_nodes=len(self._owned),
                metrics_port=server.port,
                calibrations=len(self._calibration) if self._calibration is not None else 0,
            )
            try:
                async with asyncio.TaskGroup() as group:
                    publisher = group.create_task(self._publisher.run(), name="mqtt-publisher")
                    flusher = group.create_task(pipeline.run(), name="influx-flusher")
                    outbox = group.create_task(self._publish_outbox(), name="outbox")
                    gauges = group.create_task(self._update_gauges(), name="gauges")
                    ticker = group.create_task(self._tick(), name="alert-ticker")
                    checkpoints = group.create_task(self._checkpoints(), name="checkpoints")
                    hooks = [
                        group.create_task(hook.run(), name=f"webhook-{i}")
                        for i, hook in enumerate(self._webhooks)
                    ]
                    if self.fleet_watcher is not None:
                        watch = self.fleet_watcher.run()
                        hooks.append(group.create_task(watch, name="fleet-watch"))
                    if self._alertmanager is not None:
                        self._alertmanager.seed(self._alerting.live_alerts)
                        hooks.append(group.create_task(self._alertmanager.run(), name="am"))
                    await self._publisher.wait_ready(timeout_s=5.0)
                    await self._republish_alert_states()
                    intake = group.create_task(subscriber.run(), name="mqtt-subscriber")
                    await _first(subscriber.subscribed.wait(), intake)
                    self.started.set()
                    await stop.wait()
                    log.info("aggregator_stopping")
                    intake.cancel()
                    await asyncio.wait([intake])
                    await self._finish(subscriber, pipeline)
                    await self._close_outbox(outbox)
                    await self._drain_sinks(config.state.shutdown_drain_s)
                    for task in (ticker, checkpoints, gauges, flusher, publisher, *hooks):
                        task.cancel()
            finally:
                await server.stop()

    async def _subscription_plan(self) -> SubscriptionPlan:
        """The topics to read. A replica of several subscribes per node, to the nodes of
        the inventory and those InfluxDB has stored (`nodes`, e.g. enrolled and since
        retired, or written by an earlier layout) that it owns; the status wildcard tells it
        of the rest as they appear (aggregator.cluster.subscriptions)."""
        if not self._replica.solo:
            stored = await stored_node_ids(self._config.influx.target())
            self._node_topics.learn([*(info.node for info in self._fleet), *stored])
        return self._node_topics.plan()

    def _learn_nodes(self, nodes: list[str]) -> None:
        over = self._node_topics.over_limit
        new = self._node_topics.learn(nodes)
        if self._node_topics.over_limit > over:
            self.metrics.foreign_messages.labels("over_limit").inc(
                self._node_topics.over_limit - over
            )
        if new and self._subscriber is not None:
            self._subscriber.add([(topic, 1) for topic in new])
            log.info("replica_subscribed", replica=self._replica.label, nodes=len(new))

    async def _finish(self, subscriber: Subscriber, pipeline: Pipeline) -> None:
        drain_s = self._config.state.shutdown_drain_s
        try:
            await asyncio.wait_for(subscriber.drain_received(), drain_s)
        except TimeoutError:
            log.warning(
                "shutdown_unhandled",
                messages=subscriber.backlog,
                note="not acked; nodes will resend them",
            )
        if not await pipeline.drain(drain_s):
            log.warning(
                "shutdown_unstored",
                readings=pipeline.budget.used,
                note="not acked; nodes will resend them",
            )
        # Let the worker finish evaluating what was stored (their acks wait for it), then
        # store what it derived (windows, AQI, alert records) before the last acks go out.
        try:
            await asyncio.wait_for(self._alerting.sync(), drain_s)
        except (TimeoutError, WorkerError) as exc:
            log.warning("shutdown_unevaluated", error=str(exc) or "timeout")
        await pipeline.drain(drain_s)
        await self._flush_outbox()

    async def _close_outbox(self, outbox: asyncio.Task[None]) -> None:
        """Stop the outbox task without losing what it holds, then send what is left.

        A flush takes the outbox (acks, transitions) before it publishes them one by one, so
        a flush cancelled midway loses what it took. Every flush holds `_flush_lock` from its
        take() to its last publish; cancelled while we hold the lock, the task is waiting for
        `ready`, lingering, or waiting for the lock, and has taken nothing. The flush after
        that sends whatever arrived since `_finish`'s flush."""
        async with self._flush_lock:
            outbox.cancel()
            await asyncio.wait([outbox])
        await self._flush_outbox()

    async def _drain_sinks(self, drain_s: float) -> None:
        """Give the webhooks and Alertmanager up to `drain_s` (together) to deliver what the
        last flush offered them; what they still hold is logged, then dropped with them.
        Alertmanager gets the firing alerts again at the next start (`seed`), webhooks not."""
        am = self._alertmanager
        drains = [hook.drain(drain_s) for hook in self._webhooks]
        if am is not None:
            drains.append(am.drain(drain_s))
        left = await asyncio.gather(*drains)
        webhooks = sum(left[: len(self._webhooks)])
        alertmanager = sum(left[len(self._webhooks) :])
        if webhooks or alertmanager:
            log.warning(
                "shutdown_undelivered",
                webhooks=webhooks,
                alertmanager=alertmanager,
                drain_s=drain_s,
                note="webhook events lost; Alertmanager is sent firing alerts again at start",
            )

    def reload_fleet(self, fleet: Fleet) -> FleetChange:
        """Put a new inventory in force (hot reload). Each holder swaps it in one assignment
        on this event loop: intake judges each message by the old or the new one; batches
        accepted before are stored and acked as usual; the worker retires missing nodes."""
        change = fleet_change(self._fleet, fleet)
        self._fleet = fleet
        self._owned = owned = owned_fleet(fleet, self._replica)
        self._intake.replace_fleet(fleet)
        self._learn_nodes(list(change.added))
        self._update_replica_gauges()
        for node in (*change.retired, *change.changed):
            self._lines.pop(node, None)  # their cached series carry the old site
        # The map's node metadata follows the inventory: retired nodes leave it.
        retired = [node for node in change.retired if self._replica.owns(node)]
        self._submit_lines(node_lines(owned, retired, wall_ms()))
        try:
            self._alerting.reload(owned, self._clock.now_ms())
        except WorkerError as exc:  # already counted and logged as alerting_worker_gone
            log.error(
                "fleet_reload_not_evaluated", error=str(exc), retired=",".join(change.retired)
            )
        return change

    def _count_reload(self, outcome: Outcome) -> None:
        self.metrics.fleet_reloads.labels(outcome).inc()

    async def record_inventory(self, fleet: Fleet) -> None:
        """Queue the inventory's `nodes` points (the map's node metadata): at start, and
        again by whatever replaces the inventory while running (hot reload)."""
        owned = owned_fleet(fleet, self._replica)
        target = self._config.influx.target()
        lines = await inventory_lines(target, owned, wall_ms(), self._replica.owns)
        self._submit_lines(lines)
        self._update_replica_gauges()
        log.info("inventory_recorded", nodes=len(owned), points=len(lines))

    def _update_replica_gauges(self) -> None:
        replica = self._replica
        self.metrics.replica_info.labels(str(replica.index), str(replica.count)).set(1)
        self.metrics.replica_nodes.set(len(self._owned))

    def _count_webhook(self, outcome: str) -> None:
        self.metrics.webhook_deliveries.labels(outcome).inc()

    def _count_alertmanager(self, outcome: str) -> None:
        self.metrics.alertmanager_posts.labels(outcome).inc()

    def _on_intake_state(self, connected: bool) -> None:
        if connected != self._intake_connected:
            self._intake_changed_at = time.time()
        if connected:
            self._intake_paused = False
        self._intake_connected = connected
        self.metrics.mqtt_connected.set(1 if connected else 0)

    def _on_intake_pause(self) -> None:
        self._intake_paused = True
        self.metrics.intake_pauses.inc()

    def _health_report(self) -> HealthReport:
        pipeline = self._pipeline
        assert pipeline is not None
        broker = BrokerObservation(
            intake_connected=self._intake_connected,
            intake_paused=self._intake_paused,
            intake_changed_at=self._intake_changed_at,
            publisher_connected=self._publisher.connected,
            publisher_changed_at=self._publisher.changed_at,
        )
        return evaluate(
            pipeline.storage_observation(),
            self._alerting.observation(),
            broker,
            now=time.time(),
            started_at=self._started_at,
            limits=self._config.metrics,
        )

    # -- intake ---------------------------------------------------------------------------

    async def _handle(self, topic: str, payload: bytes) -> None:
        # Dispatched here rather than in a coroutine of its own: one fewer per message.
        try:
            if topic.endswith("/readings"):
                await self._handle_readings(topic, payload)
            elif topic.endswith("/status"):
                self._handle_status(topic, payload)
            elif topic == topics.ALERT_COMMANDS:
                self._alerting.command(payload)
            else:
                self._refusals.report(
                    Refusal("bad_topic", f"unexpected topic {topic[:120]!r}"), time.monotonic()
                )
        except Exception as exc:  # noqa: BLE001 - the last resort, see below
            # Every decoder refuses bad input itself, counted under its reason. A failure that
            # still escapes is a bug, and must cost one message, never the service: with
            # Restart=always one hostile node could otherwise keep the aggregator down.
            self._refusals.report_failure(_topic_kind(topic), exc, time.monotonic())

    async def _handle_readings(self, topic: str, payload: bytes) -> None:
        self._readings_messages.inc()
        if not self._solo and not self._mine(topic):
            return
        result = self._intake.readings(topic, payload)
        if isinstance(result, Refusal):
            self._refuse(result, "readings")
            return
        node, seq = result.info.node, result.seq
        if result.bad_readings:
            first = result.bad_readings[0]
            detail = f"seq {seq} reading {first.index}: {first.detail}"
            self._refusals.report_readings(node, len(result.bad_readings), detail, time.monotonic())
        key = (node, result.journal, seq, result.digest)
        # A batch to write is in flight from here on: every way out below stores or abandons it.
        state = self._seqs.claim(*key)
        if state is SeqState.IN_FLIGHT or state is SeqState.STORED:
            self.metrics.duplicates.inc()
            if state is SeqState.STORED:
                self._outbox.ack(result)
            return
        try:
            if state is SeqState.CONFLICT:
                # The seq came again with other readings (a node that reused it): store these
                # too, since the ack will say they are stored. Rewriting a point is idempotent.
                self.metrics.seq_conflicts.inc()
            readings = result.readings
            self._readings_received.inc(len(readings))
            self._alerting.heard(
                node, readings, self._clock.now_ms(), result.sent_ms, result.backlog
            )
            if not readings:
                await self._stored([result])
                return
            # From here on the batch carries calibrated readings: the standards judge those.
            pending = self._pending(result)
            pipeline = self._pipeline
            assert pipeline is not None
            # Most messages find room at once, and then need no coroutine of submit's own.
            if not pipeline.try_submit(pending):
                await pipeline.submit(pending)
        except BaseException:  # cancelled (a pause), or a failure that _handle counts
            self._seqs.abandon(*key)
            raise

    def _mine(self, topic: str) -> bool:
        """Whether a node topic's node is ours; a foreign one is counted and left alone
        (not stored, not acked: its owner does both). Readings of a foreign node come with
        `[cluster] readings = "wildcard"` (all of them), or from a session planned for another
        layout, before its UNSUBSCRIBE took effect."""
        node = _node_of(topic)
        if node is None:
            # Names no valid node (a status topic only: readings come per node): replica 0
            # alone refuses and counts it, as it does bad alert commands.
            return self._replica.index == 0
        if self._replica.owns(node):
            return True
        self.metrics.foreign_messages.labels(_topic_kind(topic)).inc()
        return False

    def _handle_status(self, topic: str, payload: bytes) -> None:
        self._status_messages.inc()
        if not self._replica.solo:
            # Every replica reads every status (the retained wildcard): that is how it
            # learns of its nodes. It judges and stores its own alone.
            if not self._mine(topic):
                return
            node = _node_of(topic)
            if node is not None:
                self._learn_nodes([node])
        result = self._intake.status(topic, payload)
        if isinstance(result, Refusal):
            self._refuse(result, "status")
            return
        assert self._pipeline is not None
        arrival = self._clock.now_ms()
        self._alerting.status(result.status, arrival)
        line = status_line(result.status, result.info, arrival)
        self._pipeline.submit_internal(PendingBatch([line]))

    def _refuse(self, refusal: Refusal, kind: Literal["readings", "status"]) -> None:
        """Count and log a refused message, and tell the node why, on its refusal topic,
        within the rate limits."""
        self._refusals.report(refusal, time.monotonic())
        notice = self._notices.notice(refusal, kind, wall_ms())
        if isinstance(notice, RefusalMessage):
            self._outbox.refusal(notice)
        elif notice == "suppressed":
            self.metrics.refusal_notices.labels("suppressed").inc()

    def _pending(self, batch: AcceptedBatch) -> PendingBatch:
        builder = self._node_lines(batch.info)
        if self._calibration is None:
            # Formatted when written, not held as text while buffered (PendingBatch).
            return PendingBatch([], batch, builder=builder)
        calibrated = calibrate_batch(builder, self._calibration, batch.readings)
        counter = self.metrics.calibrations
        for result, n in (
            ("applied", calibrated.applied),
            ("no_record", calibrated.no_record),
            ("out_of_bounds", calibrated.out_of_bounds),
        ):
            if n:
                counter.labels(result).inc(n)
        if calibrated.readings is not batch.readings:
            batch = msgspec.structs.replace(batch, readings=calibrated.readings)
        return PendingBatch(calibrated.lines, batch)

    def _node_lines(self, info: NodeInfo) -> ReadingLines:
        lines = self._lines.get(info.node)
        if lines is None:
            lines = self._lines[info.node] = ReadingLines(info)
        return lines

    # -- after storage --------------------------------------------------------------------

    async def _stored(self, batches: list[AcceptedBatch]) -> None:
        for batch in batches:
            self._seqs.stored(batch.info.node, batch.journal, batch.seq, batch.digest)
        keys = ack_keys(batches)
        try:
            evaluated = await self._alerting.stored(batches)
        except WorkerError:
            self._evaluated(keys)  # stored is stored: the alerts are what is lost
            return
        # The acks wait for the evaluation: an acked batch has had its alerts judged and
        # saved, so a crash cannot lose an alert whose readings the node has deleted. The
        # wait holds only the batches' keys: their readings (about 250 B each, up to
        # MAX_STORED_IN_FLIGHT writes of them) are the worker's now, and freed here.
        evaluated.add_done_callback(functools.partial(self._evaluated, keys))

    def _evaluated(self, keys: list[AckKey], _: object = None) -> None:
        self._outbox.ack_all(keys)

    def _submit_lines(self, lines: list[str]) -> None:
        """What the alerting side derived: windows, AQI, water quality, alert records."""
        assert self._pipeline is not None
        self._pipeline.submit_internal(PendingBatch(lines, derived=True))

    def _publish_later(self, transition: Transition) -> None:
        self._outbox.alert(transition)

    # -- publishing -----------------------------------------------------------------------

    async def _publish_outbox(self) -> None:
        while True:
            await self._outbox.ready.wait()
            # Let acks gather for a moment: under load a node then gets one ack for many
            # batches instead of one per write, and a node waits at most this long more.
            await asyncio.sleep(ACK_LINGER_S)
            # Hold what waits while the publisher is (re)connecting, rather than flush it into
            # a closed connection: acks would be dropped and each node would wait for its ack
            # timeout to send again, and alert events would be lost.
            while not await self._publisher.wait_ready(timeout_s=PUBLISHER_WAIT_S):
                log.debug("outbox_waiting_for_publisher")
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        # Under the lock from take() to the last publish: what a flush took is published
        # before shutdown can stop the outbox task (_close_outbox).
        async with self._flush_lock:
            acks, transitions = self._outbox.take()
            # A flush may hold acks for hundreds of nodes: published together, with one wait
            # for all of their PUBACKs rather than one each.
            sends = [
                (topics.ack(node), codec.ACK.encode(message))
                for (node, journal), seqs in acks.items()
                for message in _ack_messages(node, journal, seqs)
            ]
            self.metrics.acks_sent.inc(await self._publisher.publish_all(sends))
            await self._publish_refusals(self._outbox.take_refusals())
            for transition in transitions:
                await self._publish_transition(transition)

    async def _publish_refusals(self, refusals: list[RefusalMessage]) -> None:
        sends = [(topics.refusal(r.node), codec.REFUSAL.encode(r)) for r in refusals]
        self.metrics.refusal_notices.labels("sent").inc(await self._publisher.publish_all(sends))

    async def _publish_transition(self, transition: Transition) -> None:
        alert = transition.alert
        if transition.retained:
            state_topic = topics.alert(alert.node, alert.rule)
            await self._publisher.publish(state_topic, codec.ALERT.encode(alert), retain=True)
        event = AlertEvent(ALERT_EVENT_SCHEMA, transition.event, transition.at_ms, alert)
        await self._publisher.publish(topics.ALERT_EVENTS, codec.ALERT_EVENT.encode(event))
        for hook in self._webhooks:
            hook.offer(transition)
        if self._alertmanager is not None:
            self._alertmanager.offer(transition)

    async def _republish_alert_states(self) -> None:
        """Publish every saved alert's retained state again. A crash between saving a change
        and publishing it would otherwise leave the retained topic stale for good."""
        sends = [
            self._publisher.publish(
                topics.alert(a.node, a.rule), codec.ALERT.encode(a), retain=True
            )
            for a in self._alerting.live_alerts
        ]
        await asyncio.gather(*sends)

    async def _tick(self) -> None:
        """Alert work on the alert logic's clock: re-notifications, idle late episodes,
        liveness (ticked every wall second)."""
        while True:
            await asyncio.sleep(1.0)
            self._alerting.tick(self._clock.now_ms(), intake_live=self._intake_connected)

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self._config.state.checkpoint_s)
            self._alerting.checkpoint()

    async def _update_gauges(self) -> None:
        while True:
            self.metrics.flush()  # the per-message tallies, also between scrapes
            if self._subscriber is not None:
                self.metrics.mqtt_backlog.set(self._subscriber.backlog)
                switches = self.metrics.mqtt_broker_switches
                switches.labels("subscriber").set(self._subscriber.brokers.switches)
                switches.labels("publisher").set(self._publisher.brokers.switches)
            self._alerting.update_gauges()
            if self._alertmanager is not None:
                self.metrics.alertmanager_alerts.set(self._alertmanager.held)
            await asyncio.sleep(2.0)
