"""The aggregator's alerting side: standards engine, liveness, alert book and their state.

The service hands it what was stored and what was heard (`stored`, `heard`, `status`,
`command`) and calls `tick` on its clock; it hands back storage lines (windows, AQI, water
quality, alert transitions) and transitions to publish, through two callbacks. Its own "now"
(lateness, acknowledgements, warm start) is the injected clock of both sides:
aggregator.worker.event_clock, the wall clock or a scenario's scaled event clock. State lives in
aggregator.worker.state_store: alerts row by row as they change, health and liveness as snapshots at
each checkpoint; windows are rebuilt from InfluxDB at start (aggregator.storage.warm_start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aggregator.cluster.partition import SOLO, Replica
from aggregator.engine.adoption import StoredEvent, plan_adoption
from aggregator.engine.evaluator import Evaluation, Evaluator
from aggregator.engine.lifecycle import AckRefusedError, AlertBook, Transition
from aggregator.engine.liveness import Liveness, LivenessSnapshotError
from aggregator.engine.observations import Observation
from aggregator.engine.sensor_health import HealthMonitor, HealthSnapshotError
from aggregator.engine.settings import EngineSettings
from aggregator.fleet import Fleet, NodeInfo
from aggregator.storage.records import WindowLines, alert_line, aqi_line, water_line
from aggregator.worker.event_clock import EventClock
from aggregator.worker.state_store import StateStore
from schemas import codec
from schemas.codec import ContractError
from schemas.messages import ReadingValues, StatusMessage
from schemas.runtime.logs import get_logger

if TYPE_CHECKING:
    # The type only: the worker process records metric operations instead
    # (aggregator.worker.process.RecordedMetrics) and never imports the registry.
    from aggregator.metrics import Metrics

log = get_logger("aggregator.worker.alerting")

HEALTH: Final = "health"
LIVENESS: Final = "liveness"
# How often late episodes are checked against their node's clock (expire_late), wall ms.
LATE_EXPIRY_EVERY_MS: Final = 60_000
# At most one future_readings warning per node this often, wall ms.
FUTURE_LOG_EVERY_MS: Final = 60_000

LinesSink = Callable[[list[str]], None]
TransitionSink = Callable[[Transition], None]


class Alerting:
    def __init__(
        self,
        settings: EngineSettings,
        fleet: Fleet,
        metrics: Metrics,
        lines: LinesSink,
        transitions: TransitionSink,
        clock: EventClock | None = None,
        replica: Replica = SOLO,
    ) -> None:
        # The nodes this process owns (aggregator.cluster.partition); `fleet` holds only them.
        self._replica = replica
        # Every "now" of the alert logic: the wall clock, or a scenario's scaled event clock.
        self._clock = clock or EventClock()
        self._settings = settings
        self._fleet = fleet
        self._metrics = metrics
        self._lines = lines
        self._transitions = transitions
        self.evaluator = Evaluator.of(settings)
        self.liveness = Liveness(settings.liveness)
        self.book = AlertBook(settings.lifecycle.table())
        self._store: StateStore | None = None
        self._next_liveness_ms = 0
        self._next_late_expiry_ms = 0
        self._window_counts: dict[str, int] = {}
        self._window_lines = WindowLines()
        # Nodes that sent backlog batches since they last said their journal was empty.
        self._backlog_nodes: set[str] = set()
        self._next_future_log_ms: dict[str, int] = {}

    # -- state ----------------------------------------------------------------------------

    def open(self, directory: Path) -> None:
        """Load alerts and evaluator snapshots. Blocking: run in a thread."""
        store = self._store = StateStore(directory / "state.sqlite")
        lanes: dict[tuple[str, str], dict[str, object]] = {}
        for key, lane, track in store.load_tracks():
            # Replicas on one host share the file, each reading and writing only the rows
            # of its own nodes: after a change of replica count, a moved node's open alerts
            # are found by its new owner (docs/cluster/replicas.md).
            if self._replica.owns(key[0]):
                lanes.setdefault(key, {})[lane] = track
        for key, tracks in lanes.items():
            self.book.load(key, tracks.get("live"), tracks.get("late"))  # type: ignore[arg-type]
        self._restore_snapshots(store)
        log.info("state_loaded", path=str(store.path), alerts=len(lanes))

    def _snapshot_name(self, name: str) -> str:
        """Health and liveness snapshots are whole-engine blobs: one per replica layout (a
        replica of another layout starts those fresh; alerts and windows do not)."""
        replica = self._replica
        return name if replica.solo else f"{name}@{replica.index}of{replica.count}"

    def _restore_snapshots(self, store: StateStore) -> None:
        health = store.load_snapshot(self._snapshot_name(HEALTH))
        if health is not None:
            try:
                self.evaluator.health = HealthMonitor.restore(health[0], self._settings.health)
            except HealthSnapshotError as exc:
                self._metrics.state_saves.labels("health_unreadable").inc()
                log.error("health_state_unreadable", error=str(exc), note="starting fresh")
        liveness = store.load_snapshot(self._snapshot_name(LIVENESS))
        if liveness is not None:
            try:
                self.liveness = Liveness.restore(
                    liveness[0], self._clock.now_ms(), self._settings.liveness
                )
            except LivenessSnapshotError as exc:
                self._metrics.state_saves.labels("liveness_unreadable").inc()
                log.error("liveness_state_unreadable", error=str(exc), note="starting fresh")

    def save_alerts(self) -> None:
        """Persist changed alert tracks. Blocking: run in a thread, before publishing."""
        dirty = self.book.take_dirty()
        if dirty and self._store is not None:
            self._store.save_tracks(dirty)
            self._metrics.state_saves.labels("alerts").inc()

    def checkpoint(self) -> None:
        """Persist health and liveness whole. Blocking: run in a thread."""
        if self._store is None:
            return
        snapshots = {
            self._snapshot_name(HEALTH): self.evaluator.health.snapshot(),
            self._snapshot_name(LIVENESS): self.liveness.snapshot(),
        }
        self._store.save_snapshots(snapshots, self._clock.now_ms())
        self._metrics.state_saves.labels("evaluators").inc()

    def close(self) -> None:
        if self._store is not None:
            self.save_alerts()
            self.checkpoint()
            self._store.close()
            self._store = None

    def warm(self, by_node: Mapping[str, list[ReadingValues]]) -> None:
        """Replay the readings InfluxDB holds for the late horizon into the windows, silently
        (the service reads them back, aggregator.storage.warm_start)."""
        for node, readings in by_node.items():
            info = self._fleet.get(node)
            if info is not None:
                readings.sort(key=lambda r: r.ts)
                self.evaluator.warm(info, readings, self._clock.now_ms())

    def adopt(self, events: Sequence[StoredEvent]) -> tuple[int, int]:
        """Rebuild the open alerts of this replica's nodes that the state file does not know
        of from the `alerts` points InfluxDB holds (aggregator.engine.adoption; the service
        reads them back, aggregator.storage.alert_history): a node's previous owner on
        another host or pod had them open. Returns how many tracks were adopted, and how
        many local ones they superseded."""
        plan = plan_adoption(events, self.book.live_tracks(), self._fleet.get, self._clock.now_ms())
        for key, track in plan.tracks().items():
            self.book.install(key, track)
        self.save_alerts()
        for how, tracks in (("adopted", plan.adopted), ("superseded", plan.superseded)):
            if tracks:
                self._metrics.alerts_adopted.labels(how).inc(len(tracks))
        return len(plan.adopted), len(plan.superseded)

    # -- input ----------------------------------------------------------------------------

    def reload(self, fleet: Fleet, at_ms: int) -> None:
        """A new inventory (hot reload): nodes gone from it are retired, their open alerts
        resolved through the normal path (stored, published, sent to the sinks)."""
        retired = [info.node for info in self._fleet if info.node not in fleet]
        self._fleet = fleet
        for node in retired:
            self.liveness.forget(node)
            self._backlog_nodes.discard(node)
            self._emit_all(self.book.retire(node, f"node {node} retired from the inventory", at_ms))

    def heard(
        self,
        info: NodeInfo,
        readings: Iterable[ReadingValues],
        arrival_ms: int,
        history: bool | None = None,
    ) -> None:
        self.liveness.seen_batch(info.node, readings, arrival_ms, history)

    def status(self, status: StatusMessage, arrival_ms: int) -> None:
        """A node's status. The deadman runs on arrival time (aggregator.engine.liveness): the
        node's own `ts` is in its clock, which may run accelerated or wrong. An offline status
        or an empty journal means the node has sent all it has: its windows close up to its
        newest reading (aggregator.engine.window_closing); and its late episodes close if its data
        has ended (offline) or its backlog is drained."""
        node = status.node
        online = status.state == "online"
        self.liveness.status(node, online, arrival_ms, status.reason)
        info = self._fleet.get(node)
        drained = status.journal is not None and status.journal.depth == 0
        if info is None or not (drained or not online):
            return
        until = self.evaluator.clocks.drained(node)
        if until is not None:
            self._judge(info, self.evaluator.close(info, until, arrival_ms), arrival_ms)
        if not online:
            self._backlog_nodes.discard(node)
            self._emit_all(self.book.close_late(node, f"node {node} went offline"))
        elif node in self._backlog_nodes:
            self._backlog_nodes.discard(node)
            self._emit_all(self.book.close_late(node, "backlog ended"))

    def stored(self, info: NodeInfo, readings: Sequence[ReadingValues], backlog: bool) -> None:
        """Judge a batch that is now stored (`backlog`: it came from the node's backlog)."""
        self._stored(info, readings, backlog, self._clock.now_ms())

    def stored_all(self, batches: Iterable[tuple[NodeInfo, Sequence[ReadingValues], bool]]) -> None:
        """`stored` for the batches of one write, judged at one reading of the clock (they
        were stored together; a live write holds hundreds of one-message batches)."""
        wall = self._clock.now_ms()
        for info, readings, backlog in batches:
            self._stored(info, readings, backlog, wall)

    def _stored(
        self, info: NodeInfo, readings: Sequence[ReadingValues], backlog: bool, wall: int
    ) -> None:
        future = self.evaluator.future_readings
        result = self.evaluator.evaluate(info, readings, backlog, wall)
        if backlog:
            self._backlog_nodes.add(info.node)
        if self.evaluator.future_readings > future:
            self._warn_future(info.node, self.evaluator.future_readings - future, wall)
        self._judge(info, result, wall)

    def _judge(self, info: NodeInfo, result: Evaluation, wall: int) -> None:
        # Most live batches close no window and change nothing: skip the empty passes.
        if result.windows or result.aqi or result.water:
            self._store_derived(info, result)
        if result.observations:
            self._apply(result.observations, wall)
        skipped = self.evaluator.skipped
        if skipped:
            for reason, count in skipped.items():
                self._metrics.rules_skipped.labels(reason).inc(count)
            skipped.clear()

    def _warn_future(self, node: str, count: int, wall: int) -> None:
        """Readings too far ahead of our clock are stored but not judged: say so (they are
        also counted, envnet_window_readings_total{kind="future"}), once a minute a node."""
        if wall < self._next_future_log_ms.get(node, 0):
            return
        self._next_future_log_ms[node] = wall + FUTURE_LOG_EVERY_MS
        log.warning(
            "future_readings",
            node=node,
            readings=count,
            max_future_s=self._settings.windows.max_future_s,
            note="stored but not judged: the node's clock is ahead of ours (a clock fault, "
            "or an accelerated simulation: set [alerts.windows] max_future_s = 0)",
        )

    def command(self, payload: bytes) -> None:
        try:
            command = codec.ALERT_COMMAND.decode(payload)
        except ContractError as exc:
            if self._replica.index == 0:  # names no node: one replica speaks for all
                self._metrics.alert_commands.labels("invalid").inc()
                log.warning("alert_command_invalid", error=exc.detail[:200])
            return
        if not self._replica.owns(command.node):
            # Every replica hears every command; the node's owner alone acts and counts it.
            return
        try:
            transition = self.book.acknowledge(
                command.node, command.rule, command.by, command.note, self._clock.now_ms()
            )
        except AckRefusedError as exc:
            self._metrics.alert_commands.labels("refused").inc()
            log.warning("alert_command_refused", error=str(exc), by=command.by)
            return
        self._metrics.alert_commands.labels("accepted").inc()
        self._emit(transition)

    def tick(self, wall_ms: int, intake_live: bool) -> None:
        """Work on the clock (`wall_ms` is the service's: the wall clock, or a scenario's
        scaled event clock): re-notifications, windows over in their node's clock, late
        episodes their node's clock has left behind, and the liveness deadman (windows and
        deadman held back while intake is not live, so our own outage neither pages nor
        closes windows whose readings wait at the broker)."""
        self._emit_all(self.book.tick(wall_ms))
        if not intake_live:
            self.liveness.grace(wall_ms)
            self.evaluator.clocks.grace(wall_ms)
            return
        self._close_due(wall_ms)
        if wall_ms >= self._next_late_expiry_ms:
            self._next_late_expiry_ms = wall_ms + LATE_EXPIRY_EVERY_MS
            self._expire_late()
        if wall_ms >= self._next_liveness_ms:
            self._next_liveness_ms = wall_ms + int(self._settings.liveness.check_interval_s * 1000)
            self._apply(self.liveness.check(wall_ms), wall_ms)

    def _close_due(self, wall_ms: int) -> None:
        for node, until in self.evaluator.clocks.due(wall_ms):
            info = self._fleet.get(node)
            if info is not None:
                self._judge(info, self.evaluator.close(info, until, wall_ms), wall_ms)

    def _expire_late(self) -> None:
        clocks = self.evaluator.clocks
        newest = {i.node: t for i in self._fleet if (t := clocks.newest_ms(i.node)) is not None}
        horizon_ms = self._settings.windows.late_horizon_h * 3_600_000
        self._emit_all(self.book.expire_late(newest, horizon_ms))

    def update_gauges(self) -> None:
        windows = self.evaluator.windows
        counters = windows.counters
        totals = {
            "late": counters.late_readings,
            "too_late": counters.too_late,
            "duplicate": counters.duplicates,
            "not_windowed": counters.not_windowed,
            "future": self.evaluator.future_readings,
        }
        for kind, total in totals.items():
            delta = total - self._window_counts.get(kind, 0)
            if delta > 0:
                self._metrics.window_readings.labels(kind).inc(delta)
            self._window_counts[kind] = total
        self._metrics.window_series.set(windows.series_count)
        self._metrics.window_held_readings.set(windows.held_readings)
        self._metrics.alerts_firing.set(len(self.book.firing()))

    # -- output ---------------------------------------------------------------------------

    def _apply(self, observations: list[Observation], wall_ms: int) -> None:
        for obs in observations:
            info = self._fleet.get(obs.node)
            if info is None:
                continue
            transition = self.book.apply(obs, info, wall_ms)
            if transition is not None:
                self._emit(transition)

    def _store_derived(self, info: NodeInfo, result: Evaluation) -> None:
        window_line = self._window_lines.line
        lines = [line for w in result.windows if (line := window_line(w, info)) is not None]
        lines.extend(line for a in result.aqi if (line := aqi_line(a, info)) is not None)
        lines.extend(water_line(w, info) for w in result.water)
        if lines:
            self._lines(lines)

    def _emit_all(self, transitions: Iterable[Transition]) -> None:
        for transition in transitions:
            self._emit(transition)

    def _emit(self, transition: Transition) -> None:
        alert = transition.alert
        self._metrics.alert_transitions.labels(transition.event, alert.kind).inc()
        # Live transitions are news; late ones (a node draining days of backlog can raise
        # thousands) are recorded in InfluxDB and on the event stream, and logged quietly.
        emit = log.debug if alert.late else log.warning
        emit(
            "alert",
            transition=transition.event,
            node=alert.node,
            rule=alert.rule,
            value=alert.value,
            limit=alert.limit,
            late=alert.late,
            suspect=alert.suspect,
            message=alert.message,
        )
        self._lines([alert_line(alert, transition.event, transition.at_ms)])
        self._transitions(transition)
