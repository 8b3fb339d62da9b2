"""The aggregator's own metrics, in Prometheus format, on a registry it owns (no globals)."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aggregator.intake.checks import REFUSAL_REASONS
from aggregator.service_health import STATE_VALUE, HealthReport

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Declare:
    """Declares counters and gauges on one registry: a name, its help and its label names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self._registry)

    def gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self._registry)


class Tally:
    """A counter bumped per message, kept as a plain int and added to its Prometheus counter
    when the metrics are read (`Metrics.render`): a Prometheus `inc` takes a lock, and at
    thousands of messages a second those were a few % of the service's time."""

    __slots__ = ("_counter", "count")

    def __init__(self, counter: _Incrementable) -> None:
        self._counter = counter
        self.count = 0

    def inc(self, amount: int = 1) -> None:
        self.count += amount

    def flush(self) -> None:
        if self.count:
            self._counter.inc(self.count)
            self.count = 0


class _Incrementable(Protocol):
    def inc(self, amount: float = 1, /) -> None: ...


class Metrics:
    def __init__(self) -> None:
        self._tallies: list[Tally] = []
        self.registry = r = CollectorRegistry(auto_describe=True)
        declare = _Declare(r)
        self.messages_received = declare.counter(
            "envnet_messages_received", "MQTT messages received", "kind"
        )
        self.readings_received = declare.counter(
            "envnet_readings_received", "Readings in accepted messages"
        )
        self.readings_stored = declare.counter(
            "envnet_readings_stored", "Readings written to InfluxDB"
        )
        self.refused = declare.counter("envnet_refused", "Messages refused, by reason", "reason")
        self.message_failures = declare.counter(
            "envnet_message_failures",
            "Messages whose handling failed with an unexpected error (a bug): dropped, counted "
            "and logged, and the service carries on",
            "kind",
        )
        self.refusal_notices = declare.counter(
            "envnet_refusal_notices",
            "Refusals told to the refused node on its refusal topic (sent), or held back by "
            "the rate limit (suppressed)",
            "outcome",
        )
        self.readings_refused = declare.counter(
            "envnet_readings_refused",
            "Single readings refused inside otherwise valid messages, or rejected by the database",
            "reason",
        )
        self.replica_info = declare.gauge(
            "envnet_replica_info",
            "This aggregator's partition of the fleet: replica `index` of `count` (always 1)",
            "index",
            "count",
        )
        self.mqtt_subscriptions = declare.gauge(
            "envnet_mqtt_subscriptions",
            "Topic filters the intake session has subscribed (the broker has acknowledged): "
            "3 wildcards for one replica, the status and command topics and one readings "
            "topic per owned node for a partitioned replica",
        )
        self.replica_nodes = declare.gauge(
            "envnet_replica_nodes", "Nodes of the inventory this replica owns"
        )
        self.foreign_messages = declare.counter(
            "envnet_replica_foreign_messages",
            "Messages about nodes another replica owns: statuses (read for discovery only) "
            "and readings left in a session by an earlier layout (neither stored nor acked); "
            "over_limit: owned nodes not subscribed, beyond the per-replica topic limit",
            "kind",
        )
        self.duplicates = declare.counter(
            "envnet_duplicate_batches", "Batches received again after being stored"
        )
        self.seq_conflicts = declare.counter(
            "envnet_batches_seq_conflict",
            "Batches whose (node, journal, seq) was already seen with other readings; stored",
        )
        self.write_latency = Histogram(
            "envnet_write_latency_seconds",
            "InfluxDB write request latency (successful writes)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.write_failures = declare.counter(
            "envnet_write_failures", "Failed InfluxDB write attempts", "kind"
        )
        self.queue_depth = declare.gauge(
            "envnet_queue_depth", "Readings accepted and not yet stored"
        )
        self.mqtt_backlog = declare.gauge(
            "envnet_mqtt_backlog", "Messages received from the broker, not yet processed"
        )
        self.mqtt_connected = declare.gauge(
            "envnet_mqtt_connected", "1 while connected to the broker"
        )
        # A count that only grows, kept by the connections themselves (BrokerChoice) and
        # copied here with the other gauges.
        self.mqtt_broker_switches = declare.gauge(
            "envnet_mqtt_broker_switches",
            "Moves to another broker of [mqtt] urls since start, per connection",
            "connection",
        )
        self.intake_pauses = declare.counter(
            "envnet_intake_pauses", "Times intake paused for backpressure"
        )
        self.acks_sent = declare.counter("envnet_acks_sent", "Ack messages published")
        self.fleet_reloads = declare.counter(
            "envnet_fleet_reloads",
            "Fleet inventory reloads by outcome (reloaded, refused: the old one stays)",
            "outcome",
        )
        self.alert_transitions = declare.counter(
            "envnet_alert_transitions", "Alert transitions", "event", "kind"
        )
        self.alerts_firing = declare.gauge("envnet_alerts_firing", "Alerts currently firing")
        self.alert_commands = declare.counter(
            "envnet_alert_commands",
            "Operator alert commands, by result (accepted, refused, invalid)",
            "result",
        )
        self.webhook_deliveries = declare.counter(
            "envnet_webhook_deliveries",
            "Webhook deliveries by outcome (delivered, rejected, gave_up, dropped)",
            "outcome",
        )
        self.alertmanager_posts = declare.counter(
            "envnet_alertmanager_posts",
            "POSTs of alerts to an Alertmanager by outcome (delivered, rejected, gave_up)",
            "outcome",
        )
        self.alertmanager_alerts = declare.gauge(
            "envnet_alertmanager_alerts", "Alerts held for Alertmanager (firing or resolving)"
        )
        self.window_series = declare.gauge(
            "envnet_window_series", "Series with averaging-window state"
        )
        self.window_held_readings = declare.gauge(
            "envnet_window_held_readings",
            "Reading parts held for late re-evaluation of windows (memory)",
        )
        self.window_readings = declare.counter(
            "envnet_window_readings",
            "Readings the windows treated specially: late (re-evaluated), too_late (beyond the "
            "late horizon), duplicate, not_windowed (period > 1 h), future (clock fault)",
            "kind",
        )
        self.alerting_worker_failures = declare.counter(
            "envnet_alerting_worker_failures", "Errors in the alerting worker process, and its loss"
        )
        self.state_saves = declare.counter(
            "envnet_state_saves", "Saves of alert and evaluator state", "what"
        )
        self.alerts_adopted = declare.counter(
            "envnet_alerts_adopted",
            "Alert tracks rebuilt at start from the alerts stored in InfluxDB: adopted (open, "
            "unknown to the state file), superseded (a stale local firing track, resolved since)",
            "how",
        )
        self.rules_skipped = declare.counter(
            "envnet_rules_skipped",
            "Rule evaluations skipped, e.g. node lacks the classification a rule needs",
            "reason",
        )
        self.calibrations = declare.counter(
            "envnet_calibrations",
            "Readings with a sensor serial, by calibration result: applied, no_record, "
            "out_of_bounds (the calibrated value was outside the physical bounds; raw kept)",
            "result",
        )
        self.health_state = declare.gauge(
            "envnet_health_state",
            "The aggregator's health as /healthz reports it: 0 ok, 1 degraded, 2 failing; "
            "component overall, storage, worker or broker",
            "component",
        )
        self.storage_last_write_age = declare.gauge(
            "envnet_storage_last_write_age_seconds",
            "Seconds since the last successful InfluxDB write (absent before the first)",
        )
        self.storage_failing = declare.gauge(
            "envnet_storage_failing_seconds",
            "Seconds InfluxDB writes have been failing without a success; 0 when they work",
        )
        self.worker_up = declare.gauge(
            "envnet_alerting_worker_up", "1 while the alerting worker process runs"
        )
        self.worker_reply_age = declare.gauge(
            "envnet_alerting_worker_reply_age_seconds",
            "Seconds since the alerting worker last answered",
        )
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason)

    def record_health(self, report: HealthReport) -> None:
        for component, state in report.states().items():
            self.health_state.labels(component).set(STATE_VALUE[state])
        storage, worker = report.components.storage, report.components.worker
        if storage.last_write_age_s is not None:
            self.storage_last_write_age.set(storage.last_write_age_s)
        self.storage_failing.set(storage.failing_for_s or 0.0)
        self.worker_up.set(1 if worker.alive else 0)
        if worker.last_reply_age_s is not None:
            self.worker_reply_age.set(worker.last_reply_age_s)

    def tally(self, counter: _Incrementable) -> Tally:
        """A per-message counter for `counter` (a Counter or one of its labelled children)."""
        tally = Tally(counter)
        self._tallies.append(tally)
        return tally

    def flush(self) -> None:
        """Add what the tallies counted to their counters."""
        for tally in self._tallies:
            tally.flush()

    def render(self) -> bytes:
        self.flush()
        return generate_latest(self.registry)
