"""The aggregator service: intake → storage pipeline → acks and alerts, in one task group.

Shutdown order matters, and is: stop intake (the broker queues for our persistent session),
handle what was already received, flush the pipeline, send the last acks and alerts, and only
then close the publishing connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aggregator.alerts import AlertBook, Transition
from aggregator.config import AggregatorConfig
from aggregator.deadletter import DeadLetters
from aggregator.fleet import Fleet, NodeInfo
from aggregator.influx import InfluxTarget, InfluxWriter
from aggregator.intake import AcceptedBatch, Intake, Refusal
from aggregator.metrics import Metrics
from aggregator.metrics_http import MetricsServer, make_app
from aggregator.mqtt_session import Publisher, SessionSettings, Subscriber
from aggregator.pipeline import PendingBatch, Pipeline, PipelineSettings
from aggregator.records import ReadingLines, alert_line, status_line
from aggregator.refusals import RefusalReporter
from aggregator.rules import Evaluator, LocalTime
from aggregator.seqs import SeqState, SeqTracker
from envnet.logs import get_logger
from schemas import codec, topics
from schemas.messages import (
    ACK_SCHEMA,
    ALERT_EVENT_SCHEMA,
    MAX_SEQS_PER_ACK,
    AckMessage,
    AlertEvent,
)

log = get_logger("aggregator.service")

ACK_LINGER_S: Final = 0.1


def _ack_messages(node: str, seqs: list[int]) -> list[AckMessage]:
    return [
        AckMessage(ACK_SCHEMA, node, seqs[start : start + MAX_SEQS_PER_ACK])
        for start in range(0, len(seqs), MAX_SEQS_PER_ACK)
    ]


async def _first(awaitable: Awaitable[object], task: asyncio.Task[None]) -> None:
    """Wait for `awaitable`, or until `task` ends (so a failing task is not waited on)."""
    waiter = asyncio.ensure_future(awaitable)
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


def influx_target(config: AggregatorConfig) -> InfluxTarget:
    influx = config.influx
    return InfluxTarget(
        url=influx.url,
        api=influx.resolved_api(),
        database=influx.database,
        retention_policy=influx.retention_policy,
        username=influx.username,
        password=influx.password,
        org=influx.org,
        bucket=influx.bucket,
        token=influx.token,
        gzip=influx.gzip,
        timeout_s=influx.timeout_s,
    )


def session_settings(config: AggregatorConfig) -> SessionSettings:
    mqtt = config.mqtt
    return SessionSettings(
        endpoint=mqtt.endpoint(),
        client_id=mqtt.client_id,
        keepalive_s=mqtt.keepalive_s,
        ca_file=mqtt.ca_file,
        reconnect_initial_s=mqtt.reconnect_initial_s,
        reconnect_cap_s=mqtt.reconnect_cap_s,
    )


@dataclass(slots=True)
class _Outbox:
    """Acks and alert transitions waiting for the publisher, coalesced per node."""

    acks: dict[str, list[int]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, node: str, seq: int) -> None:
        self.acks.setdefault(node, []).append(seq)
        self.ready.set()

    def alert(self, transition: Transition) -> None:
        self.transitions.append(transition)
        self.ready.set()

    def take(self) -> tuple[dict[str, list[int]], list[Transition]]:
        acks, transitions = self.acks, self.transitions
        self.acks, self.transitions = {}, []
        self.ready.clear()
        return acks, transitions


class AggregatorService:
    def __init__(
        self, config: AggregatorConfig, fleet: Fleet, metrics: Metrics | None = None
    ) -> None:
        self._config = config
        self._fleet = fleet
        self.metrics = metrics or Metrics()
        self._intake = Intake(fleet, config.mqtt.max_payload_bytes)
        self._refusals = RefusalReporter(self.metrics)
        self._seqs = SeqTracker()
        self._lines: dict[str, ReadingLines] = {}
        self._readings_messages = self.metrics.messages_received.labels("readings")
        self._status_messages = self.metrics.messages_received.labels("status")
        alerts = config.alerts
        local = LocalTime(alerts.utc_offset_h, alerts.day_starts_h, alerts.night_starts_h)
        self._evaluator = Evaluator(alerts.air_edition, local)
        self._book = AlertBook()
        self._outbox = _Outbox()
        self._publisher = Publisher(session_settings(config))
        self._pipeline: Pipeline | None = None
        self._subscriber: Subscriber | None = None
        self.metrics_port: int | None = None
        self._intake_connected = False
        self.started = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        config = self._config
        influx = config.influx
        settings = PipelineSettings(
            batch_readings=influx.batch_readings,
            linger_s=influx.linger_ms / 1000,
            max_inflight=influx.max_inflight,
            max_buffered_readings=influx.max_buffered_readings,
            retry_initial_s=influx.retry_initial_s,
            retry_cap_s=influx.retry_cap_s,
        )
        dead = DeadLetters(Path(config.state.dir) / "dead-letters.jsonl")
        async with InfluxWriter(influx_target(config)) as writer:
            pipeline = self._pipeline = Pipeline(writer, settings, self.metrics, dead, self._stored)
            subscriber = self._subscriber = Subscriber(
                session_settings(config),
                [(topics.READINGS_FILTER, 1), (topics.STATUS_FILTER, 1)],
                self._handle,
                read_buffer=config.mqtt.read_buffer_messages,
                pause_after_s=config.mqtt.pause_after_s,
                wait_resumable=lambda: pipeline.budget.wait_for_room(0.5),
                on_state=self._on_intake_state,
                on_pause=self.metrics.intake_pauses.inc,
            )
            server = MetricsServer(
                make_app(self.metrics, self._health), config.metrics.host, config.metrics.port
            )
            await server.start()
            self.metrics_port = server.port
            log.info(
                "aggregator_started",
                influx=writer.target.display,
                nodes=len(self._fleet),
                metrics_port=server.port,
            )
            try:
                async with asyncio.TaskGroup() as group:
                    publisher = group.create_task(self._publisher.run(), name="mqtt-publisher")
                    flusher = group.create_task(pipeline.run(), name="influx-flusher")
                    outbox = group.create_task(self._publish_outbox(), name="outbox")
                    gauges = group.create_task(self._update_gauges(), name="gauges")
                    await self._publisher.wait_ready(timeout_s=5.0)
                    intake = group.create_task(subscriber.run(), name="mqtt-subscriber")
                    await _first(subscriber.subscribed.wait(), intake)
                    self.started.set()
                    await stop.wait()
                    log.info("aggregator_stopping")
                    intake.cancel()
                    await asyncio.wait([intake])
                    await self._finish(subscriber, pipeline)
                    for task in (outbox, gauges, flusher, publisher):
                        task.cancel()
            finally:
                await server.stop()
        log.info("aggregator_stopped")

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
        await self._flush_outbox()

    def _on_intake_state(self, connected: bool) -> None:
        self._intake_connected = connected
        self.metrics.mqtt_connected.set(1 if connected else 0)

    def _health(self) -> tuple[bool, str]:
        if self._intake_connected:
            return True, "ok"
        return False, "intake not connected to the broker (paused or reconnecting)"

    # -- intake ---------------------------------------------------------------------------

    async def _handle(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/readings"):
            await self._handle_readings(topic, payload)
        elif topic.endswith("/status"):
            self._handle_status(topic, payload)
        else:
            self._refusals.report(
                Refusal("bad_topic", f"unexpected topic {topic[:120]!r}"), time.monotonic()
            )

    async def _handle_readings(self, topic: str, payload: bytes) -> None:
        self._readings_messages.inc()
        result = self._intake.readings(topic, payload)
        if isinstance(result, Refusal):
            self._refusals.report(result, time.monotonic())
            return
        node, seq = result.info.node, result.seq
        if result.bad_readings:
            first = result.bad_readings[0]
            detail = f"seq {seq} reading {first.index}: {first.detail}"
            self._refusals.report_readings(node, len(result.bad_readings), detail, time.monotonic())
        state = self._seqs.state(node, seq)
        if state is not SeqState.NEW:
            self.metrics.duplicates.inc()
            if state is SeqState.STORED:
                self._outbox.ack(node, seq)
            return
        self.metrics.readings_received.inc(len(result.readings))
        self._seqs.begin(node, seq)
        if not result.readings:
            await self._stored([result])
            return
        lines = self._node_lines(result.info).lines(result.readings)
        assert self._pipeline is not None
        try:
            await self._pipeline.submit(PendingBatch(lines, result))
        except asyncio.CancelledError:
            self._seqs.abandon(node, seq)
            raise

    def _handle_status(self, topic: str, payload: bytes) -> None:
        self._status_messages.inc()
        result = self._intake.status(topic, payload)
        if isinstance(result, Refusal):
            self._refusals.report(result, time.monotonic())
            return
        assert self._pipeline is not None
        line = status_line(result.status, result.info, int(time.time() * 1000))
        self._pipeline.submit_internal(PendingBatch([line]))

    def _node_lines(self, info: NodeInfo) -> ReadingLines:
        lines = self._lines.get(info.node)
        if lines is None:
            lines = self._lines[info.node] = ReadingLines(info)
        return lines

    # -- after storage --------------------------------------------------------------------

    async def _stored(self, batches: list[AcceptedBatch]) -> None:
        for batch in batches:
            node = batch.info.node
            self._seqs.stored(node, batch.seq)
            self._outbox.ack(node, batch.seq)
            observations = self._evaluator.evaluate(batch.info, batch.readings, late=batch.backlog)
            for obs in observations:
                transition = self._book.apply(obs, batch.info)
                if transition is not None:
                    self._on_transition(transition)
        for reason, count in self._evaluator.skipped.items():
            self.metrics.rules_skipped.labels(reason).inc(count)
        self._evaluator.skipped.clear()

    def _on_transition(self, transition: Transition) -> None:
        alert = transition.alert
        self.metrics.alert_transitions.labels(transition.event, alert.kind).inc()
        log.warning(
            "alert",
            transition=transition.event,
            node=alert.node,
            rule=alert.rule,
            value=alert.value,
            limit=alert.limit,
            late=alert.late,
            message=alert.message,
        )
        self._outbox.alert(transition)
        assert self._pipeline is not None
        line = alert_line(alert, transition.event, alert.late)
        self._pipeline.submit_internal(PendingBatch([line]))

    # -- publishing -----------------------------------------------------------------------

    async def _publish_outbox(self) -> None:
        while True:
            await self._outbox.ready.wait()
            # Let acks gather for a moment: under load a node then gets one ack for many
            # batches instead of one per write, and a node waits at most this long more.
            await asyncio.sleep(ACK_LINGER_S)
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        acks, transitions = self._outbox.take()
        # Published concurrently: each publish waits for its PUBACK, and a flush may hold
        # acks for hundreds of nodes.
        sends = [
            self._publisher.publish(topics.ack(node), codec.ACK.encode(message))
            for node, seqs in acks.items()
            for message in _ack_messages(node, seqs)
        ]
        self.metrics.acks_sent.inc(sum(await asyncio.gather(*sends)))
        for transition in transitions:
            await self._publish_transition(transition)

    async def _publish_transition(self, transition: Transition) -> None:
        alert = transition.alert
        state_topic = topics.alert(alert.node, alert.rule)
        await self._publisher.publish(state_topic, codec.ALERT.encode(alert), retain=True)
        event = AlertEvent(ALERT_EVENT_SCHEMA, transition.event, alert.updated_ms, alert)
        await self._publisher.publish(topics.ALERT_EVENTS, codec.ALERT_EVENT.encode(event))

    async def _update_gauges(self) -> None:
        while True:
            if self._subscriber is not None:
                self.metrics.mqtt_backlog.set(self._subscriber.backlog)
            self.metrics.alerts_firing.set(len(self._book.firing()))
            await asyncio.sleep(1.0)
