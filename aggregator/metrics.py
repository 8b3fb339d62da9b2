"""The aggregator's own metrics, in Prometheus format, on a registry it owns (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aggregator.intake.checks import REFUSAL_REASONS
from aggregator.service_health import STATE_VALUE, HealthReport

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.messages_received = Counter(
            "envnet_messages_received", "MQTT messages received", ["kind"], registry=r
        )
        self.readings_received = Counter(
            "envnet_readings_received", "Readings in accepted messages", registry=r
        )
        self.readings_stored = Counter(
            "envnet_readings_stored", "Readings written to InfluxDB", registry=r
        )
        self.refused = Counter(
            "envnet_refused", "Messages refused, by reason", ["reason"], registry=r
        )
        self.message_failures = Counter(
            "envnet_message_failures",
            "Messages whose handling failed with an unexpected error (a bug): dropped, counted "
            "and logged, and the service carries on",
            ["kind"],
            registry=r,
        )
        self.refusal_notices = Counter(
            "envnet_refusal_notices",
            "Refusals told to the refused node on its refusal topic (sent), or held back by "
            "the rate limit (suppressed)",
            ["outcome"],
            registry=r,
        )
        self.readings_refused = Counter(
            "envnet_readings_refused",
            "Single readings refused inside otherwise valid messages, or rejected by the database",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "envnet_duplicate_batches", "Batches received again after being stored", registry=r
        )
        self.seq_conflicts = Counter(
            "envnet_batches_seq_conflict",
            "Batches whose (node, journal, seq) was already seen with other readings; stored",
            registry=r,
        )
        self.write_latency = Histogram(
            "envnet_write_latency_seconds",
            "InfluxDB write request latency (successful writes)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.write_failures = Counter(
            "envnet_write_failures", "Failed InfluxDB write attempts", ["kind"], registry=r
        )
        self.queue_depth = Gauge(
            "envnet_queue_depth", "Readings accepted and not yet stored", registry=r
        )
        self.mqtt_backlog = Gauge(
            "envnet_mqtt_backlog",
            "Messages received from the broker, not yet processed",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "envnet_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.intake_pauses = Counter(
            "envnet_intake_pauses", "Times intake paused for backpressure", registry=r
        )
        self.acks_sent = Counter("envnet_acks_sent", "Ack messages published", registry=r)
        self.alert_transitions = Counter(
            "envnet_alert_transitions", "Alert transitions", ["event", "kind"], registry=r
        )
        self.alerts_firing = Gauge("envnet_alerts_firing", "Alerts currently firing", registry=r)
        self.alert_commands = Counter(
            "envnet_alert_commands",
            "Operator alert commands, by result (accepted, refused, invalid)",
            ["result"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "envnet_webhook_deliveries",
            "Webhook deliveries by outcome (delivered, rejected, gave_up, dropped)",
            ["outcome"],
            registry=r,
        )
        self.window_series = Gauge(
            "envnet_window_series", "Series with averaging-window state", registry=r
        )
        self.window_held_readings = Gauge(
            "envnet_window_held_readings",
            "Reading parts held for late re-evaluation of windows (memory)",
            registry=r,
        )
        self.window_readings = Counter(
            "envnet_window_readings",
            "Readings the windows treated specially: late (re-evaluated), too_late (beyond the "
            "late horizon), duplicate, not_windowed (period > 1 h), future (clock fault)",
            ["kind"],
            registry=r,
        )
        self.alerting_worker_failures = Counter(
            "envnet_alerting_worker_failures",
            "Errors in the alerting worker process, and its loss",
            registry=r,
        )
        self.state_saves = Counter(
            "envnet_state_saves", "Saves of alert and evaluator state", ["what"], registry=r
        )
        self.rules_skipped = Counter(
            "envnet_rules_skipped",
            "Rule evaluations skipped, e.g. node lacks the classification a rule needs",
            ["reason"],
            registry=r,
        )
        self.calibrations = Counter(
            "envnet_calibrations",
            "Readings with a sensor serial, by calibration result: applied, no_record, "
            "out_of_bounds (the calibrated value was outside the physical bounds; raw kept)",
            ["result"],
            registry=r,
        )
        self.health_state = Gauge(
            "envnet_health_state",
            "The aggregator's health as /healthz reports it: 0 ok, 1 degraded, 2 failing; "
            "component overall, storage, worker or broker",
            ["component"],
            registry=r,
        )
        self.storage_last_write_age = Gauge(
            "envnet_storage_last_write_age_seconds",
            "Seconds since the last successful InfluxDB write (absent before the first)",
            registry=r,
        )
        self.storage_failing = Gauge(
            "envnet_storage_failing_seconds",
            "Seconds InfluxDB writes have been failing without a success; 0 when they work",
            registry=r,
        )
        self.worker_up = Gauge(
            "envnet_alerting_worker_up", "1 while the alerting worker process runs", registry=r
        )
        self.worker_reply_age = Gauge(
            "envnet_alerting_worker_reply_age_seconds",
            "Seconds since the alerting worker last answered",
            registry=r,
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
